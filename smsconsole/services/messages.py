"""The outbox seen from the console: queue test messages, read messages, count outcomes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole import clock
from smsconsole.models import (
    CampaignRun,
    Message,
    MessageAttempt,
    ProviderGroup,
    ProviderGroupMember,
)
from smsconsole.models import Provider as ProviderRow
from smsconsole.phone import parse_number
from smsconsole.providers import REGISTRY
from smsconsole.providers.base import CREDITS
from smsconsole.services import audit
from smsconsole.services.campaigns.definition import campaign_code
from smsconsole.services.errors import NotFound, ValidationError
from smsconsole.services.smart_encoding import route_smart_encodes
from smsconsole.sms import analyze, has_lookalikes, replace_lookalikes

# `control`: a campaign's control-group row (held out: recorded, never claimed nor sent).
STATES = ("queued", "claimed", "sending", "sent", "delivered", "undelivered", "failed", "suppressed", "unknown",
          "control")
OPEN_STATES = ("queued", "claimed", "sending")
STATE_WORDS = {"control": "held out (control)"}  # a state as an operator reads it, where it differs
PRIORITY_TEST = 100
# The dispatcher's countdown at the end of a retry reason ("…; retrying in 30s"): stale as soon as
# it is written, so views give the next attempt's time instead.
_COUNTDOWN = re.compile(r";\s*retrying in \d+(?:\.\d+)?s\s*$")


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
    group_name: str | None = None  # the group it was sent through, when one was named
    country: str | None = None  # the destination's region
    next_attempt_at: datetime | None = None  # when the engine tries a queued message again
    campaign_id: int | None = None  # a campaign's message: its campaign,
    campaign: str | None = None  # its Campaign ID as people read it ("C12"),
    run_id: int | None = None  # and its run
    run_number: int | None = None  # (1, 2, ... within the campaign)
    price: float | None = None  # what the provider said it cost (send answer or receipt), when it said
    price_currency: str | None = None
    variant: str | None = None  # a campaign message's arm: "A"…"E", or "control" on a held-out row

    @property
    def price_text(self) -> str | None:
        """The price as people read it ("0.0666 EUR", "2 credits"); None when none was reported."""
        return price_words(self.price, self.price_currency)

    @property
    def settled(self) -> bool:
        return self.state not in OPEN_STATES

    @property
    def retrying(self) -> bool:
        """Queued again after a failed attempt, to be tried at `next_attempt_at`."""
        return self.state == "queued" and self.attempts > 0 and self.next_attempt_at is not None

    @property
    def shown_state(self) -> str:
        """The state as an operator reads it: `retrying` rather than `queued` after a failed attempt,
        "held out (control)" for a control row (machine output keeps `state`)."""
        return "retrying" if self.retrying else state_words(self.state)

    @property
    def shown_reason(self) -> str | None:
        """The reason without a retry countdown (show `next_attempt_at` beside it instead)."""
        return _COUNTDOWN.sub("", self.reason) if self.reason else self.reason


def message_view(row: Message, group_name: str | None = None, run_number: int | None = None) -> MessageView:
    return MessageView(
        row.id, row.kind, row.provider_name, row.to_number, row.body, row.encoding, row.segments,
        row.state, row.reason, row.error_code, row.provider_message_id, row.attempts, row.created_at,
        row.sent_at, row.updated_at, group_name, row.country, row.next_attempt_at, row.campaign_id,
        campaign_code(row.campaign_id) if row.campaign_id is not None else None, row.run_id, run_number,
        row.price, row.price_currency, row.variant,
    )


def state_words(state: str) -> str:
    """A message state as an operator reads it ("held out (control)" for `control`)."""
    return STATE_WORDS.get(state, state)


def price_words(price: float | None, currency: str | None) -> str | None:
    """A provider's price in words: up to 4 decimals, trailing zeros dropped, with its currency
    ("0.0333 EUR"), or "N credits" for a provider's own credits; None for no price."""
    if price is None:
        return None
    amount = f"{price:.4f}".rstrip("0").rstrip(".") if price else "0"
    if currency == CREDITS:
        return f"{amount} credit{'' if amount == '1' else 's'}"
    return f"{amount} {currency}" if currency else amount


async def _group_names(session: AsyncSession, rows: list[Message]) -> dict[int, str]:
    ids = {row.group_id for row in rows if row.group_id is not None}
    if not ids:
        return {}
    found = await session.execute(select(ProviderGroup.id, ProviderGroup.name).where(ProviderGroup.id.in_(ids)))
    return {key: value for key, value in found.all()}


async def _run_numbers(session: AsyncSession, rows: list[Message]) -> dict[int, int]:
    ids = {row.run_id for row in rows if row.run_id is not None}
    if not ids:
        return {}
    found = await session.execute(select(CampaignRun.id, CampaignRun.number).where(CampaignRun.id.in_(ids)))
    return {key: value for key, value in found.all()}


async def message_views(session: AsyncSession, rows: list[Message]) -> list[MessageView]:
    """Views of outbox rows with their group's name and campaign run's number (a query each, only
    when some row has one)."""
    names = await _group_names(session, rows)
    numbers = await _run_numbers(session, rows)
    return [message_view(row, names.get(row.group_id) if row.group_id is not None else None,
                         numbers.get(row.run_id) if row.run_id is not None else None) for row in rows]


async def queue_test_message(
    session: AsyncSession, *, provider_name: str = "", group_name: str = "", to: str, body: str,
    default_region: str | None, actor: str, smart_encoding: bool = False,
    options: Mapping[str, str] | None = None, campaign_id: int | None = None,
) -> MessageView:
    """Validate and queue one test message through a provider or a group (exactly one); the
    engine sends it like any other, routing a group's message to its first healthy provider.
    A campaign's test send names its campaign and carries the provider options it would send
    with (DLT fields, Generic values)."""
    problems: list[tuple[str, str]] = []
    provider = None
    group = None
    body_limits: list[tuple[int, str]] = []  # (max characters, who) of every provider it may go through
    provider_name, group_name = (provider_name or "").strip(), (group_name or "").strip()
    if provider_name and group_name:
        problems.append(("provider", "choose a provider or a group, not both"))
    elif not provider_name and not group_name:
        problems.append(("provider", "choose a provider or a group"))
    elif provider_name:
        provider = await session.scalar(select(ProviderRow).where(ProviderRow.name == provider_name))
        if provider is None:
            problems.append(("provider", f"no provider named {provider_name!r}"))
        elif not provider.enabled:
            problems.append(("provider", f"provider {provider_name!r} is disabled"))
        else:
            body_limits.append(_body_limit(provider))
    else:
        group = await session.scalar(select(ProviderGroup).where(ProviderGroup.name == group_name))
        if group is None:
            problems.append(("group", f"no group named {group_name!r}"))
        else:
            members = list(await session.scalars(
                select(ProviderRow).join(ProviderGroupMember, ProviderGroupMember.provider_id == ProviderRow.id)
                .where(ProviderGroupMember.group_id == group.id, ProviderRow.enabled.is_(True))
            ))
            if not members:
                problems.append(("group", f"group {group_name!r} has no enabled provider"))
            body_limits.extend(_body_limit(member) for member in members)
    number = parse_number(to, default_region or None)
    if not number.valid:
        problems.append(("to", number.reason or "is not a valid phone number"))
    if smart_encoding:
        body, _ = replace_lookalikes(body)
    if not body.strip():
        problems.append(("body", "is required"))
    else:
        limit, who = min(body_limits, default=(1600, "providers"))
        length = len(body)
        if length > limit:
            problems.append(("body", f"is {length:,} characters; {who} accepts at most {limit:,}"))
    if problems:
        raise ValidationError(problems)
    assert (provider or group) is not None and number.e164 is not None
    # The body goes as typed; a route whose provider smart-encodes (Twilio) bills the replaced text.
    billed_smart = not smart_encoding and has_lookalikes(body) and await route_smart_encodes(
        session, provider_id=provider.id if provider else None, group_id=group.id if group else None)
    info = analyze(body, smart_encoding=billed_smart)
    now = clock.now()
    row = Message(
        kind="test", priority=PRIORITY_TEST, provider_id=provider.id if provider else None,
        provider_name=provider.name if provider else None, group_id=group.id if group else None,
        country=number.region, to_number=number.e164, body=body, encoding=info.encoding,
        segments=info.segments, state="queued", attempts=0, created_at=now, updated_at=now,
        options=dict(options) if options else None, campaign_id=campaign_id,
    )
    session.add(row)
    await session.flush()
    target = provider.name if provider else f"group:{group.name}" if group else None
    await audit.record(session, actor, "message.test", target, message_id=row.id, to=number.e164)
    return message_view(row, group.name if group else None)


def _body_limit(provider: ProviderRow) -> tuple[int, str]:
    cls = REGISTRY.get(provider.kind)
    if cls is None:
        return 1600, provider.name
    return cls.capabilities.max_body_chars, f"{cls.display_name} ({provider.name})"


async def get_message(session: AsyncSession, message_id: int) -> MessageView:
    row = await session.get(Message, message_id, populate_existing=True)
    if row is None:
        raise NotFound(f"no message {message_id}")
    return (await message_views(session, [row]))[0]


async def get_messages(session: AsyncSession, message_ids: list[int]) -> list[MessageView]:
    rows = await session.scalars(
        select(Message).where(Message.id.in_(message_ids)).execution_options(populate_existing=True)
    )
    return await message_views(session, list(rows))


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
    return await message_views(session, list(rows))


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
