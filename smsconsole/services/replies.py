"""Replies (MO): what a person sent us, and what it does. Both doors (pollers, webhook listener) and
the Sandbox hand every inbound message to `record_inbound`, which in the caller's transaction:

- takes a long message whole: its parts are held until every one is there, then the whole text
  goes through once (services/inbound_parts.py);
- keeps it once (a repeat of the same provider message id returns the first row, doing nothing; a
  message without an id is a replay when the same sender, recipient, text and provider time — or,
  without a time, the same within REPLAY_WINDOW — arrived before);
- finds the sender's profile by phone, or creates one;
- links it to the message it answers (the latest one sent to that number, auto-responses left
  out), and to that message's campaign, run and variant (copied, so replies and opt-outs count
  per arm from the (campaign_id, run_id) index: `replies_by_arm`); a reply that picks one of a
  campaign's reply options answers that campaign's message (services/campaigns/reply_options.py);
- acts on a keyword: opt-out unsubscribes at once (consent source "keyword"), suppresses every
  message still queued to that number and queues the confirmation as the last message; opt-in
  re-subscribes; help answers; a custom keyword logs its event; anything else is an `sms_reply`
  event. Auto-responses go through the same provider, in the priority lane, and a repeated keyword
  within AUTO_RESPONSE_WINDOW does not answer again (no ping-pong with auto-responders)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import and_, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole import clock
from smsconsole.models import Event, InboundMessage, Message, Profile, PropertyDef, Provider as ProviderRow
from smsconsole.phone import parse_number
from smsconsole.providers.base import InboundReport
from smsconsole.services import inbound_parts
from smsconsole.services import keywords as keyword_service
from smsconsole.services import profiles as profile_service
from smsconsole.services.campaigns import reply_options
from smsconsole.services.campaigns.definition import campaign_code
from smsconsole.services.errors import NotFound, ValidationError
from smsconsole.services.receipts import safe_text, stored_id
from smsconsole.services.settings import get_settings
from smsconsole.services.smart_encoding import route_smart_encodes
from smsconsole.sms import analyze, has_lookalikes

PRIORITY_AUTO = 1000  # ahead of test (100) and campaign messages
AUTO_RESPONSE_WINDOW = timedelta(minutes=10)
REPLAY_WINDOW = timedelta(minutes=10)  # an id-less message repeated within this is a replay (up to twice as long)
REPLY_EVENT = "sms_reply"
ACTION_EVENTS = {"opt_out": profile_service.OPTOUT_EVENT, "opt_in": profile_service.OPTIN_EVENT}
INBOUND_ACTIONS = ("opt_out", "opt_in", "help", "custom", "option", "reply")
SUPPRESSED_REASON = "recipient replied {word}: opted out"
TEXT_MAX = 1600  # longer texts are kept whole in the row, cut in the event


@dataclass(frozen=True)
class InboundView:
    id: int
    provider_name: str | None
    provider_message_id: str | None
    sender: str
    recipient: str | None
    text: str
    profile_id: int | None
    profile_name: str | None
    profile_key: str | None  # what ProfileScreen / `profiles show` takes: user id, else phone
    keyword: str | None
    action: str | None
    answers_message_id: int | None
    answers_body: str | None
    response_message_id: int | None
    via: str
    received_at: datetime
    duplicate: bool = False  # this call found it already recorded and did nothing
    suppressed: int = 0  # queued messages this reply suppressed (opt-out)
    answers_campaign_id: int | None = None  # the campaign of the message it answers,
    answers_campaign: str | None = None  # as its Campaign ID ("C12"),
    answers_run_id: int | None = None  # its run
    answers_variant: str | None = None  # and its variant ("A"…"E")
    reply_option: str | None = None  # the campaign reply option it picked ("C"; "8" for a score)

    @property
    def answers_arm(self) -> str | None:
        """The campaign and variant it answers as people read them ("C12/B"; "C12" without a variant)."""
        if self.answers_campaign is None:
            return None
        return f"{self.answers_campaign}/{self.answers_variant}" if self.answers_variant else self.answers_campaign


class ArmReplies(NamedTuple):
    """Replies to one run and variant of a campaign that led to one action (opt_out: its STOPs)."""

    run_id: int | None
    variant: str | None
    action: str | None
    count: int


def _insert_ignore(session: AsyncSession, model: type, index_elements: list[str]) -> Any:
    module = postgresql if session.bind.dialect.name == "postgresql" else sqlite
    return module.insert(model).on_conflict_do_nothing(index_elements=index_elements)


async def record_inbound(session: AsyncSession, *, provider_id: int | None, provider_name: str | None,
                         report: InboundReport, via: str) -> InboundView | None:
    """Keep one inbound message and act on it (see the module docstring). A part of a long message
    is held until its set is whole (services/inbound_parts.py): None while it waits (or when it is
    a repeat of a part still held); the part that completes the set returns the whole message, a
    repeat of a part already recorded returns that message as a duplicate. The caller commits."""
    if inbound_parts.is_part(report):
        held = await inbound_parts.hold_part(session, provider_id=provider_id, provider_name=provider_name,
                                             report=report, via=via)
        if isinstance(held, inbound_parts.Whole):
            return await record_whole(session, held)
        recorded = await session.get(InboundMessage, held) if held is not None else None
        return await _inbound_view(session, recorded, duplicate=True) if recorded is not None else None
    return await _record(session, provider_id=provider_id, provider_name=provider_name, report=report, via=via)


async def record_whole(session: AsyncSession, whole: inbound_parts.Whole) -> InboundView:
    """A long message made whole from its parts, through the same pipeline, dated at its first part."""
    view = await _record(session, provider_id=whole.provider_id, provider_name=whole.provider_name,
                         report=whole.report, via=whole.via, received_at=whole.received_at)
    await inbound_parts.mark_recorded(session, whole, view.id)
    return view


async def _record(session: AsyncSession, *, provider_id: int | None, provider_name: str | None,
                  report: InboundReport, via: str, received_at: datetime | None = None) -> InboundView:
    now = clock.now()
    settings = await get_settings(session)
    region = settings["default_region"] or None
    raw_sender = safe_text(report.sender or "")
    number = parse_number(raw_sender, region) if raw_sender else None
    # kept as sent when it is no phone number (a short code, a name): stored, never answered
    sender = (number.e164 if number is not None and number.valid and number.e164 else raw_sender.strip())[:32]
    recipient = safe_text(report.recipient)[:64] if report.recipient else None
    text = safe_text(report.text or "")
    provider_message_id = stored_id(report.provider_message_id) or None

    same_provider = (InboundMessage.provider_id.is_(None) if provider_id is None
                     else InboundMessage.provider_id == provider_id)
    dedupe_keys: list[str] = []
    if provider_message_id is None:
        dedupe_keys = _replay_keys(provider_id, sender, recipient, text, report.at, now)
        replayed = await session.scalar(select(InboundMessage).where(
            same_provider, InboundMessage.dedupe_key.in_(dedupe_keys)).order_by(InboundMessage.id).limit(1))
        if replayed is not None:
            return await _inbound_view(session, replayed, duplicate=True)
    values = {
        "provider_id": provider_id, "provider_name": provider_name,
        "provider_message_id": provider_message_id, "dedupe_key": dedupe_keys[0] if dedupe_keys else None,
        "sender": sender, "recipient": recipient, "text": text,
        "via": via[:8], "occurred_at": report.at, "received_at": received_at or now,
    }
    unique = ["provider_id", "provider_message_id"] if provider_message_id else ["provider_id", "dedupe_key"]
    inserted = await session.execute(
        _insert_ignore(session, InboundMessage, unique).returning(InboundMessage.__table__.c.id), [values],
    )
    new_id = inserted.scalar()
    if new_id is None:  # seen before: the first one did the work
        existing = await session.scalar(select(InboundMessage).where(
            same_provider, InboundMessage.provider_message_id == provider_message_id if provider_message_id
            else InboundMessage.dedupe_key == values["dedupe_key"]))
        assert existing is not None
        return await _inbound_view(session, existing, duplicate=True)
    row = await session.get(InboundMessage, new_id)
    assert row is not None

    reachable = number is not None and number.valid
    profile = await _profile_for(session, sender, region, settings) if reachable else None
    answers = await session.scalar(  # an auto-response is never what a reply answers (STOP after "Thanks!")
        select(Message).where(Message.to_number == sender, Message.sent_at.is_not(None), Message.kind != "auto")
        .order_by(Message.sent_at.desc(), Message.id.desc()).limit(1)
    ) if reachable else None
    keyword = await keyword_service.match_keyword(session, row.text)
    action = keyword.action if keyword is not None else "reply"
    # not a keyword (they always win): an answer to a campaign's reply options, within their window
    picked = await reply_options.find_answer(session, sender, row.text, min(report.at or now, now)) \
        if keyword is None and reachable else None
    if picked is not None:
        action, answers = reply_options.OPTION_ACTION, picked.message
        row.reply_option = picked.match.label
    row.profile_id = profile.id if profile is not None else None
    row.keyword = keyword.word if keyword is not None else None
    row.action = action
    row.answers_message_id = answers.id if answers is not None else None
    if answers is not None and answers.campaign_id is not None:
        row.campaign_id, row.run_id, row.variant = answers.campaign_id, answers.run_id, answers.variant

    suppressed = 0
    if action == "opt_out":
        # An opt-out belongs to the number: every profile holding it is unsubscribed.
        for holder in await _holders(session, sender) if profile is not None else []:
            if holder.subscription != "unsubscribed":
                await profile_service.set_subscription(session, holder.id, "unsubscribed", source="keyword", at=now,
                                                       detail=f"replied {keyword.word} via {provider_name or '-'}")
        suppressed = await suppress_queued(session, sender, keyword.word if keyword else "STOP")
    elif action == "opt_in" and profile is not None:
        # The number opts back in: its profile, and every other holder the number's opt-out reached.
        for holder in await _holders(session, sender):
            if holder.subscription == "unsubscribed" or (holder.id == profile.id and holder.subscription != "subscribed"):
                await profile_service.set_subscription(session, holder.id, "subscribed", source="keyword", at=now,
                                                       detail=f"replied {keyword.word} via {provider_name or '-'}")

    if profile is not None:
        properties: dict[str, Any] = {"text": row.text[:TEXT_MAX], "number": sender, "inbound_id": row.id}
        if provider_name:
            properties["provider"] = provider_name
        if keyword is not None:
            properties["keyword"] = keyword.word
        if answers is not None:
            properties["answers_message_id"] = answers.id
            properties["answers_kind"] = answers.kind
            if answers.campaign_id is not None:
                properties["answers_campaign"] = campaign_code(answers.campaign_id)
        if picked is not None:
            properties.update(_option_properties(picked))
        name = (keyword.event_name if action == "custom" and keyword is not None else
                picked.match.option.event if picked is not None else
                ACTION_EVENTS.get(action) or (REPLY_EVENT if action == "reply" else None))
        if name:
            await _log_event(session, profile.id, name, report.at or now, properties, row.id)

    response_body = (keyword.response if keyword is not None else
                     picked.match.option.answer if picked is not None and profile is not None
                     and profile.subscription != "unsubscribed" else None)
    if response_body and reachable and not await _answered_recently(
            session, sender, action, now, row.id, row.reply_option):
        response = _auto_response(response_body, provider_id, provider_name, profile, sender,
                                  report.recipient, now, row.id, number.region if number else None)
        if has_lookalikes(response.body) and await route_smart_encodes(session, provider_id=provider_id, group_id=None):
            billed = analyze(response.body, smart_encoding=True)  # as a smart-encoding provider bills it
            response.encoding, response.segments = billed.encoding, billed.segments
        session.add(response)
        await session.flush()
        row.response_message_id = response.id
    row.processed_at = clock.now()
    await session.flush()
    return await _inbound_view(session, row, suppressed=suppressed)


async def simulate_reply(session: AsyncSession, provider_name: str, sender: str, text: str,
                         *, default_region: str | None = None) -> InboundView:
    """A reply from `sender` to a Sandbox provider, through the same inbound door as a real one
    (keywords, opt-out, auto-responses). Raises ValidationError naming the bad field. The caller
    commits."""
    problems: list[tuple[str, str]] = []
    provider = await session.scalar(select(ProviderRow).where(ProviderRow.name == provider_name))
    if provider is None:
        raise NotFound(f"no provider named {provider_name!r}")
    if provider.kind != "sandbox":
        problems.append(("provider", f"{provider_name!r} is a {provider.kind} provider; replies can be "
                                     "simulated only through a Sandbox provider"))
    number = parse_number(sender, default_region or None)
    if not number.valid or number.e164 is None:
        problems.append(("from", number.reason or "is not a valid phone number"))
    if not text.strip():
        problems.append(("text", "is required"))
    elif len(text) > 1600:
        problems.append(("text", f"is {len(text):,} characters; at most 1,600"))
    if problems:
        raise ValidationError(problems)
    assert number.e164 is not None
    recipient = str((provider.config or {}).get("sender") or "SANDBOX")
    report = InboundReport(provider_message_id=f"SBXMO{uuid.uuid4().hex[:20].upper()}", sender=number.e164,
                           recipient=recipient, text=text, at=clock.now())
    return await _record(session, provider_id=provider.id, provider_name=provider.name, report=report, via="sandbox")


def _replay_keys(provider_id: int | None, sender: str, recipient: str | None, text: str, at: datetime | None,
                 now: datetime) -> list[str]:
    """The keys an id-less message is known by: with the provider's time, one for exactly that
    message; without, one for this REPLAY_WINDOW-long slot (stored) and one for the slot before."""
    def key(moment: str) -> str:
        basis = "\x1f".join((str(provider_id or ""), sender, recipient or "", text, moment))
        return hashlib.sha256(basis.encode("utf-8")).hexdigest()

    if at is not None:
        return [key(at.isoformat())]
    slot = int(now.timestamp() // REPLAY_WINDOW.total_seconds())
    return [key(f"slot:{slot}"), key(f"slot:{slot - 1}")]


async def suppress_queued(session: AsyncSession, to_number: str, word: str) -> int:
    """Every message still queued (or claimed, not yet sent) to this number becomes `suppressed`
    (one UPDATE). Messages already handed to a provider cannot be called back; the dispatcher's
    send gate re-checks the number right before each request."""
    now = clock.now()
    result = await session.execute(
        update(Message).where(Message.to_number == to_number, Message.state.in_(("queued", "claimed")))
        .values(state="suppressed", reason=SUPPRESSED_REASON.format(word=word), finished_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


async def _holders(session: AsyncSession, phone: str) -> list[Profile]:
    """Every profile holding this number, oldest first."""
    return list(await session.scalars(select(Profile).where(Profile.phone == phone).order_by(Profile.id)))


async def _profile_for(session: AsyncSession, phone: str, region: str | None,
                       settings: dict[str, str]) -> Profile:
    found = await session.scalar(select(Profile).where(Profile.phone == phone).order_by(Profile.id).limit(1))
    if found is not None:
        return found
    defaults = profile_service.AudienceDefaults(region=region, timezone=settings["default_timezone"] or "UTC")
    prepared = profile_service.prepare_profile({"phone": phone}, defaults)
    result = await profile_service.upsert_profiles(session, [prepared], source="keyword", defaults=defaults)
    created = await session.get(Profile, result.profile_ids[0])
    assert created is not None
    return created


async def _log_event(session: AsyncSession, profile_id: int, name: str, at: datetime,
                     properties: dict[str, Any], inbound_id: int) -> None:
    """An event row (not through record_events: the subscription was already changed above, with
    source "keyword"), its property types in the catalog segments read, and the live triggers."""
    await log_system_event(session, profile_id, name, at, properties, dedupe_source=f"inbound:{inbound_id}:{name}",
                           now=clock.now())


async def log_system_event(session: AsyncSession, profile_id: int, name: str, at: datetime,
                           properties: dict[str, Any], *, dedupe_source: str, now: datetime) -> int:
    """An event smsconsole itself records on a profile (a reply, a link click): the row (once per
    `dedupe_source`), its property types in the catalog segments read, then, like any event, its
    conversions and the live campaigns' triggers. Returns the messages the triggers queued (the
    caller pokes the dispatcher); 0 when the event was recorded before."""
    types = {key: "number" if isinstance(value, int) else "string" for key, value in properties.items()}
    await session.execute(_insert_ignore(session, PropertyDef, ["scope", "name"]),
                          [{"scope": f"event:{name}", "name": key, "type": t} for key, t in types.items()])
    dedupe = hashlib.sha1(dedupe_source.encode()).hexdigest()
    inserted = await session.execute(
        _insert_ignore(session, Event, ["dedupe"]).returning(Event.__table__.c.id),
        [{"profile_id": profile_id, "name": name, "at": at, "properties": properties, "dedupe": dedupe}])
    new_ids = list(inserted.scalars().all())
    if not new_ids:
        return 0
    # an event like any other: it may convert, and live campaigns may take it as their trigger
    from smsconsole.services.campaigns.conversions import on_events as attribute  # lazy: loaded by the first one
    from smsconsole.services.campaigns.live.triggers import on_events

    await attribute(session, new_ids, now=now)
    return (await on_events(session, new_ids, now=now)).queued


async def _answered_recently(session: AsyncSession, sender: str, action: str, now: datetime,
                             inbound_id: int, option: str | None = None) -> bool:
    """This number was answered for the same action (the same campaign option) within
    AUTO_RESPONSE_WINDOW: no second answer (no ping-pong with an auto-responder)."""
    same = [InboundMessage.reply_option == option] if option is not None else []
    earlier = await session.scalar(
        select(func.count()).select_from(InboundMessage).where(
            InboundMessage.sender == sender, InboundMessage.action == action, *same,
            InboundMessage.response_message_id.is_not(None), InboundMessage.id != inbound_id,
            InboundMessage.received_at >= now - AUTO_RESPONSE_WINDOW)
    )
    return bool(earlier)


def _option_properties(picked: reply_options.Answer) -> dict[str, Any]:
    """What an option's event says beside the reply: the campaign, run and variant it answers, the
    option, and the score of a number option."""
    message = picked.message
    properties: dict[str, Any] = {"option": picked.match.label}
    if message.campaign_id is not None:
        properties["campaign"] = campaign_code(message.campaign_id)
        properties["campaign_id"] = message.campaign_id
    if message.run_id is not None:
        properties["run_id"] = message.run_id
    if message.variant:
        properties["variant"] = message.variant
    if picked.match.score is not None:
        properties[reply_options.SCORE_PROPERTY] = picked.match.score
    return properties


def _auto_response(body: str, provider_id: int | None, provider_name: str | None, profile: Profile | None,
                   to: str, our_number: str | None, now: datetime, inbound_id: int,
                   country: str | None) -> Message:
    info = analyze(body)
    return Message(
        kind="auto", priority=PRIORITY_AUTO, provider_id=provider_id, provider_name=provider_name,
        profile_id=profile.id if profile is not None else None, country=country, to_number=to,
        sender=(our_number or None) and our_number[:64], body=body, encoding=info.encoding, segments=info.segments,
        state="queued", attempts=0, dedupe_key=f"auto:inbound:{inbound_id}", created_at=now, updated_at=now,
    )


async def _inbound_view(session: AsyncSession, row: InboundMessage, *, duplicate: bool = False,
                        suppressed: int = 0) -> InboundView:
    profile = await session.get(Profile, row.profile_id) if row.profile_id else None
    answers = await session.get(Message, row.answers_message_id) if row.answers_message_id else None
    return InboundView(
        row.id, row.provider_name, row.provider_message_id, row.sender, row.recipient, row.text, row.profile_id,
        profile.name if profile else None, _profile_key(profile), row.keyword, row.action, row.answers_message_id,
        answers.body if answers else None, row.response_message_id, row.via, row.received_at, duplicate, suppressed,
        *_campaign(row.campaign_id if row.campaign_id is not None else answers.campaign_id if answers else None),
        row.run_id, row.variant, row.reply_option,
    )


def _campaign(campaign_id: int | None) -> tuple[int | None, str | None]:
    return campaign_id, campaign_code(campaign_id) if campaign_id is not None else None


def _profile_key(profile: Profile | None) -> str | None:
    if profile is None:
        return None
    return profile.user_id or profile.phone or str(profile.id)


# --- reading -----------------------------------------------------------------------------------


async def count_inbound(session: AsyncSession) -> int:
    """Every reply received, whatever it matched."""
    return int(await session.scalar(select(func.count()).select_from(InboundMessage)) or 0)


async def recent_inbound(session: AsyncSession, *, limit: int = 200, action: str | None = None,
                         keyword: str | None = None) -> list[InboundView]:
    """The latest replies, newest first, with profile and answered message (one query)."""
    answered = Message.__table__.alias("answered")
    query = (
        select(InboundMessage, Profile.name, Profile.user_id, Profile.phone, answered.c.body, answered.c.campaign_id)
        .outerjoin(Profile, Profile.id == InboundMessage.profile_id)
        .outerjoin(answered, and_(answered.c.id == InboundMessage.answers_message_id))
        .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
        .limit(max(1, min(limit, 10_000)))
    )
    if action:
        if action not in INBOUND_ACTIONS:
            raise ValidationError([("action", f"must be one of {', '.join(INBOUND_ACTIONS)}")])
        query = query.where(InboundMessage.action == action)
    if keyword:
        query = query.where(InboundMessage.keyword == keyword_service.normalize(keyword))
    rows = await session.execute(query.execution_options(populate_existing=True))
    views = []
    for row, name, user_id, phone, body, campaign_id in rows.all():
        key = user_id or phone or (str(row.profile_id) if row.profile_id else None)
        views.append(InboundView(
            row.id, row.provider_name, row.provider_message_id, row.sender, row.recipient, row.text, row.profile_id,
            name, key, row.keyword, row.action, row.answers_message_id, body, row.response_message_id, row.via,
            row.received_at, False, 0, *_campaign(row.campaign_id if row.campaign_id is not None else campaign_id),
            row.run_id, row.variant, row.reply_option,
        ))
    return views


async def replies_by_arm(session: AsyncSession, campaign_id: int,
                         run_ids: Iterable[int] | None = None) -> list[ArmReplies]:
    """Replies to a campaign's messages counted by run, variant and action (`opt_out`: the opt-outs
    it caused), read through the (campaign_id, run_id) index; only `run_ids` when given. Ordered
    by run, variant, action."""
    query = (select(InboundMessage.run_id, InboundMessage.variant, InboundMessage.action, func.count())
             .where(InboundMessage.campaign_id == campaign_id)
             .group_by(InboundMessage.run_id, InboundMessage.variant, InboundMessage.action))
    if run_ids is not None:
        wanted = sorted(set(run_ids))
        if not wanted:
            return []
        query = query.where(InboundMessage.run_id.in_(wanted))
    rows = [ArmReplies(run_id, variant, action, int(count)) for run_id, variant, action, count in
            (await session.execute(query)).all()]
    return sorted(rows, key=lambda r: (r.run_id or 0, r.variant or "", r.action or ""))
