"""Helpers for the dispatch tests: providers, groups, profiles and outbox rows written directly."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

from sqlalchemy import insert, select, update

from smsconsole import clock
from smsconsole.models import (
    Message,
    MessageAttempt,
    Profile,
    ProviderGroup,
    ProviderGroupMember,
)
from smsconsole.models import Provider as ProviderRow
from smsconsole.runtime import Runtime
from smsconsole.services import providers


async def add_provider(rt: Runtime, name: str, kind: str = "sandbox", base_url: str | None = None,
                       **values: str) -> int:
    async with rt.factory() as session, session.begin():
        view = await providers.create_provider(session, rt.box, kind=kind, name=name, values=values,
                                               base_url=base_url, actor="test")
    return view.id


async def set_provider(rt: Runtime, provider_id: int, **columns: Any) -> None:
    async with rt.factory() as session, session.begin():
        await session.execute(update(ProviderRow).where(ProviderRow.id == provider_id)
                              .values(updated_at=clock.now(), **columns))


async def add_group(rt: Runtime, name: str, provider_ids: list[int], *, countries: tuple[str, ...] = (),
                    default: bool = False) -> int:
    now = clock.now()
    async with rt.factory() as session, session.begin():
        group = ProviderGroup(name=name, is_default=default, countries=list(countries), created_at=now, updated_at=now)
        session.add(group)
        await session.flush()
        for position, provider_id in enumerate(provider_ids, start=1):
            session.add(ProviderGroupMember(group_id=group.id, provider_id=provider_id, position=position))
        return group.id


async def add_profile(rt: Runtime, phone: str, subscription: str, user_id: str | None = None) -> int:
    now = clock.now()
    async with rt.factory() as session, session.begin():
        profile = Profile(user_id=user_id, phone=phone, phone_raw=phone, phone_status="valid", sms_capable=True,
                          subscription=subscription, properties={}, created_at=now, updated_at=now)
        session.add(profile)
        await session.flush()
        return profile.id


def message_row(n: int = 0, **fields: Any) -> dict[str, Any]:
    now = clock.now()
    row: dict[str, Any] = {
        "kind": "transactional", "priority": 0, "provider_id": None, "provider_name": None, "group_id": None,
        "profile_id": None, "country": None, "to_number": f"+1415555{n:04d}", "sender": None,
        "body": f"message {n}", "encoding": "GSM-7", "segments": 1, "state": "queued", "attempts": 0,
        "created_at": now, "updated_at": now,
    }
    row.update(fields)
    return row


async def queue(rt: Runtime, *rows: dict[str, Any]) -> list[int]:
    async with rt.factory() as session, session.begin():
        before = await session.scalar(select(Message.id).order_by(Message.id.desc()).limit(1)) or 0
        await session.execute(insert(Message), list(rows))
        ids = list(await session.scalars(select(Message.id).where(Message.id > before).order_by(Message.id)))
    return ids


async def message(rt: Runtime, message_id: int) -> Message:
    async with rt.factory() as session:
        row = await session.get(Message, message_id)
        assert row is not None
        return row


async def path(rt: Runtime, message_id: int) -> list[tuple[str | None, str]]:
    """(provider name, outcome) of every attempt, in order: the message's path."""
    async with rt.factory() as session:
        rows = await session.execute(
            select(MessageAttempt.provider_name, MessageAttempt.outcome)
            .where(MessageAttempt.message_id == message_id).order_by(MessageAttempt.id)
        )
        return [(name, outcome) for name, outcome in rows]


async def provider_row(rt: Runtime, provider_id: int) -> ProviderRow:
    async with rt.factory() as session:
        row = await session.get(ProviderRow, provider_id)
        assert row is not None
        return row


async def eventually(condition: Callable[[], object], timeout: float = 15.0) -> None:
    """Wait until `condition()` (or what it returns, awaited) is true; fail after `timeout` s."""
    for _ in range(int(timeout / 0.02)):
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the condition did not hold in time")
