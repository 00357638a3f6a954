"""Bind limits: how many engine processes may hold a bind to one provider at once.

An SMSC account allows so many simultaneous binds (often one); an SMPP provider's `bind_limit`
setting says how many engine processes may bind to it. Each process takes a slot of that limit at
every heartbeat (`take_slots`: a row of provider_binds keyed by provider and slot, so two
processes never hold the same one; a slot whose holder's token no live tenure carries is free
again) and binds only the providers it holds a slot for (services/adapters.Adapters).

A process without a slot sends nothing through that provider: the dispatcher hands such a
message back to the queue with `needs_bind_id` set to the provider (`hand_off`), and the claim of
every process that holds no slot for it passes it over (`claimable`), so the processes holding a
bind claim it and send it from that provider of its route on. A provider whose slots are all
free (its holder died, or nobody has bound yet) is taken at the next heartbeat."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping

from sqlalchemy import ColumnElement, and_, delete, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsconsole import clock
from smsconsole.engine.lease import Tenure, live_tokens
from smsconsole.models import Message, ProviderBind

log = logging.getLogger("smsconsole.engine")


async def take_slots(factory: async_sessionmaker[AsyncSession], token: str, limits: Mapping[int, int]) -> set[int]:
    """Hold a slot of each provider's bind limit (`limits`: provider id → how many processes may
    bind) for `token`, where one is free; give back this token's slots of providers no longer in
    `limits` or above a lowered limit, and clear slots of tenures that are gone. Returns the ids of
    the providers `token` holds a slot for now."""
    now = clock.now()
    async with factory() as session, session.begin():
        live = set(await session.scalars(live_tokens()))
        rows = (await session.execute(select(ProviderBind.provider_id, ProviderBind.slot, ProviderBind.token)
                                      .order_by(ProviderBind.provider_id, ProviderBind.slot))).all()
        held: set[int] = set()
        taken: dict[int, set[int]] = {}
        for provider_id, slot, holder in rows:
            limit = limits.get(provider_id, 0)
            mine = holder == token
            if mine and slot < limit and provider_id not in held:  # one slot a process (a second: given back)
                held.add(provider_id)
            elif not mine and holder in live:
                taken.setdefault(provider_id, set()).add(slot)
            else:  # ours but no longer wanted, or its tenure is gone
                await session.execute(delete(ProviderBind).where(
                    ProviderBind.provider_id == provider_id, ProviderBind.slot == slot, ProviderBind.token == holder))
        insert = (postgresql if session.bind.dialect.name == "postgresql" else sqlite).insert
        for provider_id, limit in limits.items():
            if provider_id in held:
                continue
            for slot in range(limit):
                if slot in taken.get(provider_id, ()):
                    continue
                result = await session.execute(
                    insert(ProviderBind).values(provider_id=provider_id, slot=slot, token=token, taken_at=now)
                    .on_conflict_do_nothing(index_elements=["provider_id", "slot"]))
                if result.rowcount:
                    held.add(provider_id)
                    break
    return held


async def give_back(factory: async_sessionmaker[AsyncSession], token: str) -> None:
    """The end of a tenure: its slots are free at once (not only when its token lapses)."""
    async with factory() as session, session.begin():
        await session.execute(delete(ProviderBind).where(ProviderBind.token == token))


def claimable(blocked: Collection[int]) -> ColumnElement[bool]:
    """The claim's condition for a process without a slot for the providers `blocked`: messages
    handed back for one of those providers' binds are left to the processes that hold one."""
    if not blocked:
        return true()
    return or_(Message.needs_bind_id.is_(None), Message.needs_bind_id.not_in(sorted(blocked)))


async def hand_off(factory: async_sessionmaker[AsyncSession], tenure: Tenure, provider_id: int,
                   message_ids: Collection[int]) -> int:
    """Messages this tenure claimed but cannot send through `provider_id` (it holds no bind to it)
    go back to the queue for a process that does. Nothing of theirs left: they were never past
    the send gate. Returns how many went back."""
    if not message_ids:
        return 0
    now = clock.now()
    async with factory() as session, session.begin():
        result = await session.execute(
            update(Message)
            .where(Message.id.in_(list(message_ids)), Message.state == "claimed",
                   and_(Message.claim_token == tenure.token, tenure.fence()))
            .values(state="queued", claim_token=None, needs_bind_id=provider_id, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    log.debug("handed %d message(s) to the processes bound to provider %d", result.rowcount, provider_id)
    return result.rowcount
