"""Guards run when a message is claimed, and again in the send gate just before it is sent
(DESIGN.md invariant 1). In order (DESIGN.md "Guards at claim"): the campaign still running, the
number not opted out and consent, the frequency caps, do-not-disturb hours.

A guard is a function `(ClaimedMessage, GuardContext) -> Verdict`: None lets the message go; a
string suppresses it with that reason; `Hold` puts it back to `held` (its campaign is paused: it
leaves when the campaign resumes); `Defer` puts it back to the queue, due at `until` (DND delay).
Only the send gate (engine/gate.py) applies Hold and Defer; `check`, the claim-time question,
reports suppressions only and lets held or deferred messages on to the gate.

Anything a guard needs per message belongs in GuardContext, loaded in `load_context` once per
batch: the recipients' profiles (one query); for campaign messages, the settings (one query),
their campaigns' and runs' states with the runs' documents (one query), when a cap is set,
the recipients' campaign messages of the last 7 days (one query), and, when the batch holds
messages of inaction campaigns (fired from a wait), whether each one's follow-up event arrived
within its wait after all (one query). A batch without campaign messages costs one query."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole import clock
from smsconsole.engine.many import in_values
from smsconsole.models import Campaign, CampaignRun, CampaignWait, Event, Message, Profile
from smsconsole.services.campaigns.definition import Dnd, Trigger, parse_document
from smsconsole.services.campaigns.schedule import dnd_shift, recipient_zone
from smsconsole.services.settings import CampaignLimits, campaign_limits_from, get_settings

log = logging.getLogger("smsconsole.dispatch")

# Kinds exempt from consent: an auto-response (a STOP confirmation, a HELP answer) must reach the
# person who just wrote to us, even after STOP.
CONSENT_EXEMPT_KINDS = frozenset({"auto"})
# Kinds that need an explicit opt-in (subscription "subscribed"); others only need "not opted out".
OPT_IN_REQUIRED_KINDS = frozenset({"campaign"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CAMPAIGN_KIND = "campaign"
# Campaign messages that count towards the frequency caps once their request has left (sending_at
# within the window): whatever became of them after.
CAP_COUNTED_STATES = ("sending", "sent", "delivered", "undelivered", "unknown", "failed")
DAY, WEEK = timedelta(hours=24), timedelta(days=7)


class ClaimedMessage(Protocol):
    """A claimed outbox row (campaign messages also carry `campaign_id` and `run_id`)."""

    id: int
    kind: str
    profile_id: int | None
    to_number: str


@dataclass(frozen=True)
class Hold:
    """Not sent and not settled: back to `held` until its campaign resumes."""

    reason: str


@dataclass(frozen=True)
class Defer:
    """Not sent now: back to the queue, due again at `until`."""

    until: datetime
    reason: str


Verdict = str | Hold | Defer | None


@dataclass(frozen=True)
class Recipient:
    profile_id: int
    subscription: str  # subscribed | unsubscribed | never
    subscription_at: datetime | None = None
    timezone: str | None = None


@dataclass(frozen=True)
class CampaignFacts:
    """What the guards need to know of a campaign message's campaign and run."""

    campaign_state: str | None
    run_state: str | None
    deleted: bool = False
    dnd: Dnd | None = None
    ignore_global_limits: bool = False


@dataclass
class GuardContext:
    by_profile: dict[int, Recipient] = field(default_factory=dict)
    by_phone: dict[str, list[Recipient]] = field(default_factory=dict)
    now: datetime = field(default_factory=clock.now)
    default_timezone: str = "UTC"
    limits: CampaignLimits | None = None
    campaigns: dict[int, CampaignFacts] = field(default_factory=dict)  # by message id
    # Campaign messages already sent to each profile (or, without one, number): [last 24 h, last 7 days].
    sent_to_profile: dict[int, list[int]] = field(default_factory=dict)
    sent_to_number: dict[str, list[int]] = field(default_factory=dict)
    # Messages fired from an inaction wait whose follow-up event arrived in time: message id -> event name.
    followed_up: dict[int, str] = field(default_factory=dict)

    def sent_count(self, message: ClaimedMessage) -> list[int]:
        if message.profile_id is not None:
            return self.sent_to_profile.setdefault(message.profile_id, [0, 0])
        return self.sent_to_number.setdefault(message.to_number, [0, 0])

    def admitted(self, message: ClaimedMessage) -> None:
        """A campaign message passed every guard: it counts towards its recipient's caps for the
        rest of the batch."""
        if message.kind == CAMPAIGN_KIND:
            counts = self.sent_count(message)
            counts[0] += 1
            counts[1] += 1

    def recipients(self, message: ClaimedMessage) -> list[Recipient]:
        """The profile a message names, else every profile with its number."""
        if message.profile_id is not None:
            found = self.by_profile.get(message.profile_id)
            return [found] if found else []
        return self.by_phone.get(message.to_number, [])

    def number_opted_out(self, number: str) -> bool:
        """An opt-out belongs to the phone number: the number is opted out when the latest
        subscription change among the profiles holding it is an unsubscribe (a later, explicit
        opt-in of one of them, such as START, gives the number back; ties go to the opt-out)."""
        holders = self.by_phone.get(number, [])
        changed = [r for r in holders if r.subscription in ("subscribed", "unsubscribed")]
        if not changed:
            return False
        latest = max(changed, key=lambda r: (r.subscription_at or _EPOCH, r.subscription == "unsubscribed"))
        return latest.subscription == "unsubscribed"


Guard = Callable[[ClaimedMessage, GuardContext], Verdict]


def campaign_state_guard(message: ClaimedMessage, context: GuardContext) -> Verdict:
    """Nothing of a paused campaign (or paused run) leaves until it resumes; nothing of a stopped
    or deleted one leaves at all."""
    facts = context.campaigns.get(message.id)
    if facts is None or message.kind != CAMPAIGN_KIND:
        return None
    if facts.deleted:
        return "campaign deleted"
    if facts.campaign_state == "stopped" or facts.run_state == "stopped":
        return "campaign stopped"
    if facts.run_state == "failed":
        return "campaign run failed"
    if facts.campaign_state == "paused" or facts.run_state == "paused":
        return Hold("campaign paused")
    if facts.run_state == "blocked":
        return Hold("campaign run blocked by its safety check")
    return None


def follow_up_guard(message: ClaimedMessage, context: GuardContext) -> Verdict:
    """A message fired from an inaction wait does not leave when the follow-up event (B) turns out
    to have happened within the wait: recorded after the wait fired, it still came in time."""
    event = context.followed_up.get(message.id)
    return f"follow-up event {event} arrived in time" if event is not None else None


def consent_guard(message: ClaimedMessage, context: GuardContext) -> Verdict:
    """Never to the opted-out (the profile, or the number whoever holds it); campaign traffic only
    to those who opted in."""
    if message.kind in CONSENT_EXEMPT_KINDS:
        return None
    recipients = context.recipients(message)
    if any(r.subscription == "unsubscribed" for r in recipients):
        return "the recipient unsubscribed from SMS"
    if context.number_opted_out(message.to_number):
        return "this number unsubscribed from SMS (on another profile holding it)"
    if message.kind in OPT_IN_REQUIRED_KINDS and not any(r.subscription == "subscribed" for r in recipients):
        return "the recipient never opted in to SMS" if recipients else "no profile with this number has opted in to SMS"
    return None


def frequency_cap_guard(message: ClaimedMessage, context: GuardContext) -> Verdict:
    """At most `campaign_cap_day` campaign SMS per person in any 24 hours and `campaign_cap_week`
    in any 7 days, across campaigns (a campaign may opt out with ignore_global_limits)."""
    limits = context.limits
    if message.kind != CAMPAIGN_KIND or limits is None or (limits.cap_day is None and limits.cap_week is None):
        return None
    facts = context.campaigns.get(message.id)
    if facts is not None and facts.ignore_global_limits:
        return None
    day, week = context.sent_count(message)
    if limits.cap_day is not None and day >= limits.cap_day:
        return f"frequency cap: {_sms(limits.cap_day)} per day"
    if limits.cap_week is not None and week >= limits.cap_week:
        return f"frequency cap: {_sms(limits.cap_week)} per week"
    return None


def dnd_guard(message: ClaimedMessage, context: GuardContext) -> Verdict:
    """Do-not-disturb hours of the message's run, on the recipient's own clock: inside them the
    message waits for the window's end (delay) or is dropped (discard)."""
    facts = context.campaigns.get(message.id)
    if message.kind != CAMPAIGN_KIND or facts is None or facts.dnd is None:
        return None
    profile = context.by_profile.get(message.profile_id) if message.profile_id is not None else None
    zone = recipient_zone(profile.timezone if profile else None, message.to_number, context.default_timezone)
    shifted = dnd_shift(context.now, zone, facts.dnd)
    if shifted is None:
        return "do not disturb hours"
    if shifted > context.now:
        local = shifted.astimezone(ZoneInfo(zone))
        return Defer(shifted, f"do not disturb hours: waiting until {local:%H:%M} ({zone})")
    return None


def _sms(count: int) -> str:
    return f"{count} campaign SMS"


GUARDS: list[Guard] = [campaign_state_guard, follow_up_guard, consent_guard, frequency_cap_guard, dnd_guard]


async def load_context(session: AsyncSession, messages: Iterable[ClaimedMessage]) -> GuardContext:
    """What the guards need for a batch: the recipients' profiles, by id where a message names one,
    and every profile holding each message's number (an opt-out on any of them counts), one query;
    for campaign messages, their campaigns, runs, the settings and the caps' counts (see the
    module's docstring)."""
    batch = list(messages)
    context = GuardContext(now=clock.now())
    checked = [m for m in batch if m.kind not in CONSENT_EXEMPT_KINDS]
    profile_ids = {m.profile_id for m in checked if m.profile_id is not None}
    phones = {m.to_number for m in checked}
    if profile_ids or phones:
        dialect = session.get_bind().dialect
        for profile_id, phone, subscription, at, zone in await session.execute(
            select(Profile.id, Profile.phone, Profile.subscription, Profile.subscription_at, Profile.timezone)
            .where(or_(in_values(Profile.id, profile_ids, dialect), in_values(Profile.phone, phones, dialect)))
        ):
            recipient = Recipient(profile_id, subscription, at, zone)
            if profile_id in profile_ids:
                context.by_profile[profile_id] = recipient
            if phone in phones:
                context.by_phone.setdefault(phone, []).append(recipient)
    campaign_messages = [m for m in batch if m.kind == CAMPAIGN_KIND and _campaign_id(m) is not None]
    if campaign_messages:
        await _load_campaigns(session, context, campaign_messages)
    return context


async def _load_campaigns(session: AsyncSession, context: GuardContext, batch: list[ClaimedMessage]) -> None:
    values = await get_settings(session)
    context.default_timezone = values.get("default_timezone") or "UTC"
    context.limits = campaign_limits_from(values)
    ids = [m.id for m in batch]
    run_ids = {_run_id(m) for m in batch} - {None}
    campaigns: dict[int, tuple[str, bool]] = {}
    runs: dict[int, tuple[str, Dnd | None, bool]] = {}
    follow_ups: dict[int, Trigger] = {}  # inaction runs: their trigger (the follow-up event B)
    # The batch's campaigns, each with its runs in the batch (a run's document once).
    for campaign_id, campaign_state, deleted_at, run_id, run_state, document in await session.execute(
        select(Campaign.id, Campaign.state, Campaign.deleted_at, CampaignRun.id, CampaignRun.state,
               CampaignRun.document)
        .outerjoin(CampaignRun, (CampaignRun.campaign_id == Campaign.id) & CampaignRun.id.in_(run_ids))
        .where(Campaign.id.in_({_campaign_id(m) for m in batch}))
    ):
        campaigns[campaign_id] = (campaign_state, deleted_at is not None)
        if run_id is not None:
            dnd, ignore, trigger = _run_rules(document, context.default_timezone)
            runs[run_id] = (run_state, dnd, ignore)
            if trigger is not None:
                follow_ups[run_id] = trigger
    for message in batch:
        campaign = campaigns.get(_campaign_id(message))  # type: ignore[arg-type]
        if campaign is None:
            continue
        run_state, dnd, ignore = runs.get(_run_id(message), (None, None, False))  # type: ignore[arg-type]
        context.campaigns[message.id] = CampaignFacts(campaign[0], run_state, campaign[1], dnd, ignore)
    if follow_ups:
        await _load_follow_ups(session, context, [m for m in batch if _run_id(m) in follow_ups], follow_ups)
    limits = context.limits
    if limits.cap_day is None and limits.cap_week is None:
        return
    capped = [m for m in batch
              if not (m.id in context.campaigns and context.campaigns[m.id].ignore_global_limits)]
    profile_ids = {m.profile_id for m in capped if m.profile_id is not None}
    numbers = {m.to_number for m in capped if m.profile_id is None}
    if not profile_ids and not numbers:
        return
    day_since = context.now - DAY
    week_since = context.now - (WEEK if limits.cap_week is not None else DAY)
    in_day = func.sum(case((Message.sending_at >= day_since, 1), else_=0))
    recipients = []
    if profile_ids:
        recipients.append(Message.profile_id.in_(profile_ids))
    if numbers:
        recipients.append(Message.to_number.in_(numbers))
    for profile_id, number, day, week in await session.execute(
        select(Message.profile_id, Message.to_number, in_day, func.count())
        .where(Message.kind == CAMPAIGN_KIND, Message.sending_at >= week_since,
               Message.state.in_(CAP_COUNTED_STATES), Message.id.not_in(ids), or_(*recipients))
        .group_by(Message.profile_id, Message.to_number)
    ):
        if profile_id is not None and profile_id in profile_ids:
            counts = context.sent_to_profile.setdefault(profile_id, [0, 0])
            counts[0] += int(day or 0)
            counts[1] += int(week or 0)
        if number in numbers:
            counts = context.sent_to_number.setdefault(number, [0, 0])
            counts[0] += int(day or 0)
            counts[1] += int(week or 0)


def _campaign_id(message: ClaimedMessage) -> int | None:
    return getattr(message, "campaign_id", None)


def _run_id(message: ClaimedMessage) -> int | None:
    return getattr(message, "run_id", None)


def _run_rules(document: Mapping[str, Any] | None, default_timezone: str,
               ) -> tuple[Dnd | None, bool, Trigger | None]:
    """A run's do-not-disturb window, whether it ignores the global caps, and, for an inaction
    campaign, its trigger (whose follow-up event the guard checks), from its document."""
    if not document:
        return None, False, None
    try:
        parsed, _ = parse_document(document, default_timezone=default_timezone, strict=False)
    except Exception:  # a document that cannot be read at all: no window, caps applied
        log.exception("could not read a campaign run's document for its guards")
        return None, False, None
    trigger = parsed.who.trigger
    follow_up = trigger if parsed.type == "inaction" and trigger is not None and trigger.cancel_event else None
    return parsed.when.dnd, bool(parsed.when.ignore_global_limits), follow_up


async def _load_follow_ups(session: AsyncSession, context: GuardContext, batch: list[ClaimedMessage],
                           follow_ups: dict[int, Trigger]) -> None:
    """Which of the batch's messages fired from a wait whose follow-up event (its name, and its
    conditions) happened within the wait (started_at <= B.at <= due_at): one query."""
    from smsconsole.services.campaigns.live.waits import follow_up_condition  # lazy: the live package

    conditions = []
    for run_id, trigger in follow_ups.items():
        condition = await follow_up_condition(session, trigger, now=context.now)
        if condition is not None:
            conditions.append(and_(Message.run_id == run_id, condition))
    if not conditions or not batch:
        return
    rows = await session.execute(
        select(Message.id, Event.name).select_from(Message)
        .join(CampaignWait, CampaignWait.id == Message.wait_id)
        .join(Event, and_(Event.profile_id == CampaignWait.profile_id, Event.at >= CampaignWait.started_at,
                          Event.at <= CampaignWait.due_at))
        .where(Message.id.in_([m.id for m in batch]), or_(*conditions)))
    for message_id, name in rows:
        context.followed_up[message_id] = name


def decide(message: ClaimedMessage, context: GuardContext, guards: Iterable[Guard]) -> Verdict:
    """The first verdict a guard gives, or None when the message may leave (it then counts
    towards its recipient's caps for the rest of the batch)."""
    for guard in guards:
        verdict = guard(message, context)
        if verdict:
            return verdict
    context.admitted(message)
    return None


def check(message: ClaimedMessage, context: GuardContext, guards: Iterable[Guard]) -> str | None:
    """The first suppression reason a guard gives, or None. A message to hold or defer is not
    suppressed: it goes on to the send gate, which puts it back (see `decide`)."""
    verdict = decide(message, context, guards)
    return verdict if isinstance(verdict, str) else None
