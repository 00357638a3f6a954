"""Transactional messages: one message to one person, asked for by another system through
`POST /v1/messages` (an order update, a one-time code, an alert), queued in the same outbox as
every other message and sent by the engine's dispatcher.

A request is read in three steps, so a SQLite writer never holds a read snapshot it must upgrade:
`parse_request` (no database), `prepare_send` (reads only: the recipient, the routes, the guards
asked for, the rendered body; raises ValidationError or Suppressed), then `queue_send` (writes
only: the idempotency key first, then the message and its escalation steps). Opt-out is always
enforced, here and again when the dispatcher claims the message; frequency caps and quiet hours
only when the request asks (`respect`), since an order update is not marketing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from liquid import RenderContext
from liquid.exceptions import LiquidError
from liquid.output import LimitedStringIO
from sqlalchemy import case, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole import clock
from smsconsole.models import (
    IdempotencyKey,
    Message,
    MessageEscalation,
    Profile,
    ProviderGroup,
    ProviderGroupMember,
)
from smsconsole.models import Provider as ProviderRow
from smsconsole.phone import parse_number
from smsconsole.services.campaigns.render import (
    ENV,
    LINKED_TAG,
    TRACK_FILTER,
    RenderProblem,
    _error_text,
    _where,
    profile_context,
)
from smsconsole.services.campaigns.schedule import dnd_shift, recipient_zone
from smsconsole.services.errors import NotFound, ValidationError
from smsconsole.services.message_templates import find_template
from smsconsole.services.messages import (
    AttemptView,
    MessageView,
    get_message,
    message_attempts,
)
from smsconsole.services.settings import campaign_limits_from, get_settings
from smsconsole.services.transactional_request import (  # noqa: F401 (callers read them from here)
    DEFAULT_PRIORITY,
    DEFAULT_QUIET,
    MAX_AFTER_MINUTES,
    MAX_PRIORITY,
    MAX_SENDER,
    MAX_STEPS,
    QUIET_FIELDS,
    RECIPIENT_FIELDS,
    REQUEST_FIELDS,
    RESPECT,
    STEP_FIELDS,
    EscalationRequest,
    SendRequest,
    parse_request,
    request_hash,
)
from smsconsole.sms import analyze

KIND = "transactional"
MAX_BODY_CHARS = 1600
IDEMPOTENCY_TTL = timedelta(hours=24)
MAX_IDEMPOTENCY_KEY = 255
# Kinds whose messages count towards the frequency caps of a request that respects them.
CAPPED_KINDS = ("campaign", KIND)
CAP_COUNTED_STATES = ("sending", "sent", "delivered", "undelivered", "unknown", "failed")


class Suppressed(Exception):
    """The recipient may not get this message now (opted out; a cap or quiet hours it asked to
    respect): nothing is written."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class IdempotencyMismatch(Exception):
    """The Idempotency-Key was first used with another request body."""


@dataclass(frozen=True)
class PreparedSend:
    """Everything `queue_send` writes, decided by `prepare_send`."""

    to_number: str
    country: str | None
    profile_id: int | None
    body: str
    encoding: str
    segments: int
    provider_id: int | None
    provider_name: str | None
    group_id: int | None
    priority: int
    sender: str | None
    not_before: datetime | None
    escalate: tuple[EscalationRequest, ...]


@dataclass(frozen=True)
class EscalationView:
    position: int
    after_minutes: int
    due_at: datetime
    action: str
    group: str | None
    webhook: str | None
    state: str
    result: str | None
    message_id: int | None  # the message it sent, for a group step
    http_status: int | None
    fired_at: datetime | None


@dataclass(frozen=True)
class TransactionalView:
    message: MessageView
    user_id: str | None
    attempts: list[AttemptView]
    escalations: list[EscalationView]
    escalation_of: int | None  # the message this one re-sends, when an escalation sent it


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    response: dict[str, Any]


# --- preparing (reads only) ------------------------------------------------------------------------


def template_problems(body: str) -> list[str]:
    """Like campaign bodies (same Liquid environment, same error text), with `profile` and `data`."""
    try:
        template = ENV.from_string(body)
        analysis = template.analyze()
    except LiquidError as err:
        return [_error_text(err, body)]
    found: list[tuple[int, str]] = []
    for name, spans in analysis.filters.items():
        if name not in ENV.filters:
            found.extend((span.index, f"unknown filter {name!r}") for span in spans)
        elif name == TRACK_FILTER:
            found.extend((span.index, "tracked links (| track) are only available in campaigns") for span in spans[:1])
    for name, spans in analysis.tags.items():
        if name == LINKED_TAG:
            reason = f"{LINKED_TAG} (linked content) is only available in campaigns; put the values in \"data\""
            found.extend((span.index, reason) for span in spans[:1])
    for name, variables in analysis.globals.items():
        if name not in ("profile", "data"):
            found.extend((v.span.index, f"unknown variable {name!r}: use profile.<field> or data.<key>")
                         for v in variables[:1])
    return [f"{_where(body, index)}: {text}" for index, text in sorted(found)]


async def render_body(body: str, profile: Mapping[str, Any], data: Mapping[str, Any]) -> str:
    """The body rendered for its recipient; RenderProblem with a line and column when it fails."""
    problems = template_problems(body)
    if problems:
        raise RenderProblem(f"the template has an error at {problems[0]}")
    template = ENV.from_string(body)
    context = RenderContext(template, globals=template.make_globals(
        {"profile": profile_context(profile), "data": dict(data)}))
    buffer = LimitedStringIO(limit=ENV.output_stream_limit)
    try:
        await template.render_with_context_async(context, buffer)
    except LiquidError as err:
        raise RenderProblem(_error_text(err, body)) from err
    except (ValueError, TypeError, ArithmeticError, KeyError, AttributeError, RecursionError) as err:
        raise RenderProblem(f"{type(err).__name__}: {err}") from err
    return buffer.getvalue()


async def prepare_send(session: AsyncSession, request: SendRequest) -> PreparedSend:
    """Check the request against the database and decide every value of the message.
    ValidationError names every bad field; Suppressed says why the recipient may not get it."""
    settings = await get_settings(session)
    problems: list[tuple[str, str]] = []
    profile: Profile | None = None
    number = None
    if request.user_id is not None:
        profile = await session.scalar(select(Profile).where(Profile.user_id == request.user_id))
        if profile is None:
            problems.append(("to.user_id", f"no profile with user_id {request.user_id!r}"))
        elif profile.phone_status != "valid" or not profile.phone:
            problems.append(("to.user_id", "this profile has no valid phone number"))
        else:
            number = parse_number(profile.phone, None)
            if not number.valid:
                problems.append(("to.user_id", f"this profile's phone number is not valid: {number.reason}"))
    else:
        number = parse_number(request.phone or "", settings.get("default_region") or None)
        if not number.valid:
            problems.append(("to.phone", number.reason or "is not a valid phone number"))
        else:
            profile = await session.scalar(select(Profile).where(Profile.phone == number.e164).order_by(Profile.id)
                                           .limit(1))
    provider_id = provider_name = group_id = None
    if request.provider:
        row = await session.scalar(select(ProviderRow).where(ProviderRow.name == request.provider))
        if row is None:
            problems.append(("provider", f"no provider named {request.provider!r}"))
        elif not row.enabled:
            problems.append(("provider", f"provider {request.provider!r} is disabled"))
        else:
            provider_id, provider_name = row.id, row.name
    if request.group:
        group_id = await _group_id(session, request.group, "group", problems)
    for index, step in enumerate(request.escalate):
        if step.group:
            await _group_id(session, step.group, f"escalate[{index}].group", problems)
    text, body, body_field = "", request.body, "body"
    if request.template is not None:
        body_field = "template"
        saved = await find_template(session, request.template)
        if saved is None:
            problems.append(("template", f"no saved template named {request.template!r}"))
            body = ""
        else:
            body = saved.body
    if number is not None and number.valid and body:
        mapping = _profile_mapping(profile, number.e164)
        try:
            text = await render_body(body, mapping, request.data)
        except RenderProblem as exc:
            problems.append((body_field, str(exc)))
        else:
            if not text.strip():
                problems.append((body_field, "the message came out empty"))
            elif len(text) > MAX_BODY_CHARS:
                problems.append((body_field, f"is {len(text):,} characters once rendered; at most {MAX_BODY_CHARS:,}"))
    if problems:
        raise ValidationError(problems)
    assert number is not None and number.e164 is not None
    await _check_opt_out(session, profile, number.e164)
    now = clock.now()
    if "caps" in request.respect:
        await _check_caps(session, settings, profile, number.e164, now)
    not_before = None
    if request.quiet_hours is not None:
        zone = recipient_zone(profile.timezone if profile else None, number.e164,
                              settings.get("default_timezone") or "UTC")
        shifted = dnd_shift(now, zone, request.quiet_hours)
        if shifted is None:
            raise Suppressed(f"quiet hours in the recipient's time zone ({zone}); the request asked to discard")
        if shifted > now:
            not_before = shifted
    info = analyze(text)
    return PreparedSend(
        to_number=number.e164, country=number.region, profile_id=profile.id if profile else None, body=text,
        encoding=info.encoding, segments=info.segments, provider_id=provider_id, provider_name=provider_name,
        group_id=group_id, priority=request.priority, sender=request.sender, not_before=not_before,
        escalate=request.escalate,
    )


def _profile_mapping(profile: Profile | None, phone: str | None) -> dict[str, Any]:
    if profile is None:
        return {"user_id": None, "phone": phone, "name": None, "country": None, "timezone": None, "properties": {}}
    return {"user_id": profile.user_id, "phone": profile.phone, "name": profile.name, "country": profile.country,
            "timezone": profile.timezone, "properties": dict(profile.properties or {})}


async def _group_id(session: AsyncSession, name: str, field_name: str, problems: list[tuple[str, str]]) -> int | None:
    group = await session.scalar(select(ProviderGroup).where(ProviderGroup.name == name))
    if group is None:
        problems.append((field_name, f"no provider group named {name!r}"))
        return None
    enabled = await session.scalar(
        select(func.count()).select_from(ProviderGroupMember)
        .join(ProviderRow, ProviderRow.id == ProviderGroupMember.provider_id)
        .where(ProviderGroupMember.group_id == group.id, ProviderRow.enabled.is_(True)))
    if not enabled:
        problems.append((field_name, f"provider group {name!r} has no enabled provider"))
    return group.id


async def _check_opt_out(session: AsyncSession, profile: Profile | None, phone: str) -> None:
    """Never to the opted out: the profile, or the number when the latest subscription change
    among the profiles holding it is an unsubscribe (the dispatcher's rule)."""
    if profile is not None and profile.subscription == "unsubscribed":
        raise Suppressed("the recipient unsubscribed from SMS")
    latest = (await session.execute(
        select(Profile.subscription).where(Profile.phone == phone, Profile.subscription.in_(("subscribed", "unsubscribed")))
        .order_by(Profile.subscription_at.desc().nulls_last(), (Profile.subscription == "unsubscribed").desc())
        .limit(1)
    )).scalar()
    if latest == "unsubscribed":
        raise Suppressed("this number unsubscribed from SMS")


async def _check_caps(session: AsyncSession, settings: Mapping[str, str], profile: Profile | None, phone: str,
                      now: datetime) -> None:
    limits = campaign_limits_from(dict(settings))
    if limits.cap_day is None and limits.cap_week is None:
        return
    recipient = Message.profile_id == profile.id if profile is not None else Message.to_number == phone
    since = now - (timedelta(days=7) if limits.cap_week is not None else timedelta(hours=24))
    day = func.sum(case((Message.sending_at >= now - timedelta(hours=24), 1), else_=0))
    row = (await session.execute(
        select(func.count(), day).where(recipient, Message.kind.in_(CAPPED_KINDS), Message.sending_at >= since,
                                        Message.state.in_(CAP_COUNTED_STATES)))).one()
    week, in_day = int(row[0] or 0), int(row[1] or 0)
    if limits.cap_day is not None and in_day >= limits.cap_day:
        raise Suppressed(f"frequency cap: {limits.cap_day} SMS per day")
    if limits.cap_week is not None and week >= limits.cap_week:
        raise Suppressed(f"frequency cap: {limits.cap_week} SMS per week")


# --- writing -----------------------------------------------------------------------------------


async def stored_answer(session: AsyncSession, api_key_id: int, key: str, digest: str) -> StoredAnswer | None:
    """The first answer given to this key within 24 hours, or None. IdempotencyMismatch when the key
    came with another request body."""
    row = await session.scalar(select(IdempotencyKey).where(
        IdempotencyKey.api_key_id == api_key_id, IdempotencyKey.key == key,
        IdempotencyKey.created_at > clock.now() - IDEMPOTENCY_TTL).execution_options(populate_existing=True))
    if row is None:
        return None
    if row.request_hash != digest:
        raise IdempotencyMismatch(key)
    return StoredAnswer(row.status, dict(row.response))


async def claim_key(session: AsyncSession, api_key_id: int, key: str, digest: str) -> IdempotencyKey:
    """The key's row, written first in the transaction (a unique pair: a concurrent request with
    the same key fails here with IntegrityError). An expired row of the same key goes first."""
    now = clock.now()
    await session.execute(delete(IdempotencyKey).where(
        IdempotencyKey.api_key_id == api_key_id, IdempotencyKey.key == key,
        IdempotencyKey.created_at <= now - IDEMPOTENCY_TTL))
    row = IdempotencyKey(api_key_id=api_key_id, key=key, request_hash=digest, status=0, response={},
                         created_at=now)
    session.add(row)
    await session.flush()
    return row


async def queue_send(session: AsyncSession, prepared: PreparedSend) -> int:
    """Queue the message and its escalation steps; its id. The caller commits."""
    now = clock.now()
    row = Message(
        kind=KIND, priority=prepared.priority, provider_id=prepared.provider_id, provider_name=prepared.provider_name,
        group_id=prepared.group_id, profile_id=prepared.profile_id, country=prepared.country,
        to_number=prepared.to_number, sender=prepared.sender, body=prepared.body, encoding=prepared.encoding,
        segments=prepared.segments, state="queued", attempts=0, next_attempt_at=prepared.not_before,
        created_at=now, updated_at=now,
    )
    session.add(row)
    await session.flush()
    start = max(now, prepared.not_before or now)
    for position, step in enumerate(prepared.escalate, start=1):
        session.add(MessageEscalation(
            message_id=row.id, position=position, after_minutes=step.after_minutes,
            due_at=start + timedelta(minutes=step.after_minutes), action="group" if step.group else "webhook",
            group_name=step.group, webhook_url=step.webhook, state="pending", created_at=now,
        ))
    await session.flush()
    return row.id


async def forget_expired_keys(session: AsyncSession) -> int:
    """Delete idempotency keys older than 24 hours; how many. The caller commits."""
    result = await session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at <= clock.now() - IDEMPOTENCY_TTL))
    return result.rowcount or 0  # type: ignore[attr-defined]


# --- reading -----------------------------------------------------------------------------------


async def get_transactional(session: AsyncSession, message_id: int) -> TransactionalView:
    """A transactional message with its attempts and escalation steps; NotFound for any other id."""
    kind = await session.scalar(select(Message.kind).where(Message.id == message_id))
    if kind != KIND:
        raise NotFound(f"no message {message_id}")
    view = await get_message(session, message_id)
    user_id = None
    if view.kind == KIND:
        user_id = await session.scalar(select(Profile.user_id).join(Message, Message.profile_id == Profile.id)
                                       .where(Message.id == message_id))
    steps = await session.scalars(select(MessageEscalation).where(MessageEscalation.message_id == message_id)
                                  .order_by(MessageEscalation.position)
                                  .execution_options(populate_existing=True))
    escalations = [EscalationView(s.position, s.after_minutes, s.due_at, s.action, s.group_name, s.webhook_url,
                                  s.state, s.result, s.sent_message_id, s.http_status, s.fired_at) for s in steps]
    origin = await session.scalar(select(MessageEscalation.message_id)
                                  .where(MessageEscalation.sent_message_id == message_id).limit(1))
    return TransactionalView(view, user_id, await message_attempts(session, message_id), escalations, origin)

