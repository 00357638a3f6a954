"""The outbox seen from the console: queue test messages, read messages, count outcomes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole import clock
from smsconsole.models import Message, MessageAttempt, Provider as ProviderRow
from smsconsole.phone import parse_number
from smsconsole.providers import REGISTRY
from smsconsole.services import audit
from smsconsole.services.errors import NotFound, ValidationError
from smsconsole.sms import analyze, replace_lookalikes

STATES = ("queued", "sending", "sent", "delivered", "undelivered", "failed", "suppressed", "unknown")
OPEN_STATES = ("queued", "sending")
PRIORITY_TEST = 100


@dataclass(frozen=True)
class AttemptView:
    provider_name: str | None
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    http_status: int | None
    error_code: str | None
    error_message: str | None


@dataclass(frozen=True)
class MessageView:
    id: int
    kind: str
    provider_name: str | None
    to_number: str
    body: str
    encoding: str
    segments: int
    state: str
    reason: str | None
    error_code: str | None
    provider_message_id: str | None
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    updated_at: datetime

    @property
    def settled(self) -> bool:
        return self.state not in OPEN_STATES


def message_view(row: Message) -> MessageView:
    return MessageView(
        row.id, row.kind, row.provider_name, row.to_number, row.body, row.encoding, row.segments,
        row.state, row.reason, row.error_code, row.provider_message_id, row.attempts, row.created_at,
        row.sent_at, row.updated_at,
    )


async def queue_test_message(
    session: AsyncSession, *, provider_name: str, to: str, body: str, default_region: str | None,
    actor: str, smart_encoding: bool = False,
) -> MessageView:
    """Validate and queue one test message; the engine sends it like any other."""
    problems: list[tuple[str, str]] = []
    provider = None
    if not provider_name:
        problems.append(("provider", "choose a provider"))
    else:
        provider = await session.scalar(select(ProviderRow).where(ProviderRow.name == provider_name))
        if provider is None:
            problems.append(("provider", f"no provider named {provider_name!r}"))
        elif not provider.enabled:
            problems.append(("provider", f"provider {provider_name!r} is disabled"))
    number = parse_number(to, default_region or None)
    if not number.valid:
        problems.append(("to", number.reason or "is not a valid phone number"))
    if smart_encoding:
        body, _ = replace_lookalikes(body)
    if not body.strip():
        problems.append(("body", "is required"))
    else:
        limit = REGISTRY[provider.kind].capabilities.max_body_chars if provider else 1600
        length = len(body)
        if length > limit:
            who = REGISTRY[provider.kind].display_name if provider else "providers"
            problems.append(("body", f"is {length:,} characters; {who} accepts at most {limit:,}"))
    if problems:
        raise ValidationError(problems)
    assert provider is not None and number.e164 is not None
    info = analyze(body)
    now = clock.now()
    row = Message(
        kind="test", priority=PRIORITY_TEST, provider_id=provider.id, provider_name=provider.name,
        to_number=number.e164, body=body, encoding=info.encoding, segments=info.segments,
        state="queued", attempts=0, created_at=now, updated_at=now,
    )
    session.add(row)
    await session.flush()
    await audit.record(session, actor, "message.test", provider.name, message_id=row.id, to=number.e164)
    return message_view(row)


async def get_message(session: AsyncSession, message_id: int) -> MessageView:
    row = await session.get(Message, message_id, populate_existing=True)
    if row is None:
        raise NotFound(f"no message {message_id}")
    return message_view(row)


async def get_messages(session: AsyncSession, message_ids: list[int]) -> list[MessageView]:
    rows = await session.scalars(
        select(Message).where(Message.id.in_(message_ids)).execution_options(populate_existing=True)
    )
    return [message_view(row) for row in rows]


async def message_attempts(session: AsyncSession, message_id: int) -> list[AttemptView]:
    rows = await session.scalars(
        select(MessageAttempt).where(MessageAttempt.message_id == message_id).order_by(MessageAttempt.id)
    )
    return [
        AttemptView(r.provider_name, r.started_at, r.finished_at, r.outcome, r.http_status, r.error_code,
                    r.error_message)
        for r in rows
    ]


async def recent_messages(session: AsyncSession, *, kind: str | None = "test", limit: int = 50) -> list[MessageView]:
    query = select(Message).order_by(Message.id.desc()).limit(limit)
    if kind:
        query = query.where(Message.kind == kind)
    rows = await session.scalars(query.execution_options(populate_existing=True))
    return [message_view(row) for row in rows]


async def counts_since(session: AsyncSession, since: datetime) -> dict[str, int]:
    """Messages created since `since`, by state (every state present, zero when none)."""
    rows = await session.execute(
        select(Message.state, func.count()).where(Message.created_at >= since).group_by(Message.state)
    )
    counts = dict.fromkeys(STATES, 0)
    counts.update({state: count for state, count in rows.all()})
    return counts


def start_of_today() -> datetime:
    now = clock.now()
    return now - timedelta(hours=now.hour, minutes=now.minute, seconds=now.second,
                           microseconds=now.microsecond)
