"""Demo data: a Sandbox provider and a realistic audience (profiles across countries and time
zones, typed properties, consent, and a few months of events), written through the same services
as real imports, then a week of traffic: messages in every state with their attempts and receipts,
and replies (plain ones, HELP, and STOPs that unsubscribe their profiles) through the same inbound
door as real replies. Then yesterday's A/B campaign with a control group and a conversion goal
(order_completed, revenue its amount): its run, messages per arm, replies, and orders after it
that the conversions service attributes, so its page and `campaigns report` show real results.
The Sandbox gets compliance data (senders, a 10DLC campaign, DLT templates, prices) chosen so a
promotional campaign's preflight has something to say (services/demo_compliance.py).
Deterministic for a given seed (and the time it is made)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import phonenumbers
from phonenumbers import PhoneNumberType
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsconsole import clock
from smsconsole.models import (
    ApiKey,
    AuditEntry,
    Campaign,
    CampaignConversion,
    CampaignRun,
    Consent,
    Event,
    InboundMessage,
    Message,
    MessageAttempt,
    MessagePart,
    PollCursor,
    Profile,
    PropertyDef,
    Provider,
    ProviderGroup,
    ProviderGroupMember,
    Receipt,
    Segment,
    Setting,
)
from smsconsole.models.compliance import DltTemplate, Price, Sender, TenDlcCampaign
from smsconsole.providers.base import InboundReport
from smsconsole.secrets import SecretBox
from smsconsole.services import profiles, providers, replies
from smsconsole.services.campaigns import crud as campaigns
from smsconsole.services.campaigns.arms import CONTROL
from smsconsole.services.demo_compliance import create_compliance
from smsconsole.services.profiles import AudienceDefaults
from smsconsole.sms import analyze

# (region, share of profiles, time zone used when the phone cannot tell, first names)
COUNTRIES = [
    ("US", 0.30, "America/New_York", ["Ava", "Liam", "Mia", "Noah", "Emma", "Ethan"]),
    ("IN", 0.22, "Asia/Kolkata", ["Aarav", "Diya", "Vihaan", "Ananya", "Arjun", "Isha"]),
    ("GB", 0.14, "Europe/London", ["Oliver", "Amelia", "George", "Isla", "Harry", "Freya"]),
    ("DE", 0.08, "Europe/Berlin", ["Lukas", "Lena", "Finn", "Mia", "Jonas", "Emilia"]),
    ("BR", 0.10, "America/Sao_Paulo", ["Miguel", "Helena", "Arthur", "Alice", "Heitor", "Laura"]),
    ("AU", 0.06, "Australia/Sydney", ["Jack", "Charlotte", "William", "Olivia", "Lucas", "Ruby"]),
    ("ZA", 0.05, "Africa/Johannesburg", ["Thabo", "Lerato", "Sipho", "Naledi", "Pieter", "Anika"]),
    ("SG", 0.05, "Asia/Singapore", ["Wei", "Hui Min", "Ryan", "Chloe", "Arun", "Siti"]),
]
SURNAMES = ["Smith", "Patel", "Garcia", "Müller", "Silva", "Nguyen", "Khan", "Brown", "Tan", "Naidoo"]
PLANS = [("free", 0.55), ("plus", 0.30), ("pro", 0.15)]
CATEGORIES = ["shoes", "electronics", "books", "beauty", "home", "toys"]
INTERESTS = ["sports", "music", "travel", "fashion", "gaming", "cooking", "tech"]


# A week of traffic: (state, share) of the messages that went out; `sent` ones are the last few
# minutes' (their receipts arrive once the engine runs), `unknown` ones timed out without an id.
STATES = [("delivered", 0.86), ("undelivered", 0.05), ("failed", 0.05), ("unknown", 0.01), ("sent", 0.03)]
RECEIPTS = {  # state → (Sandbox status, letter in its message id, error code, error kind, reason)
    "delivered": ("DELIVRD", "D", None, None, None),
    "undelivered": ("UNDELIV", "U", "SANDBOX-UNDELIVERED", "transient",
                    "sandbox: the handset was unreachable (undelivered pattern or rate)"),
    "failed": ("REJECTD", "F", "SANDBOX-FAILED", "permanent", "sandbox: the carrier rejected it (failed receipt pattern)"),
}
BODIES = [
    "Hi {first}, your order {order} has shipped and arrives in 2-3 days.",
    "Your verification code is {code}. It expires in 10 minutes.",
    "{first}, your plan renews on {date}. Manage it in the app. Reply STOP to opt out.",
    "Flash sale: 20% off {category} today only 🛍️ Reply STOP to opt out.",
    "Hi {first}, items in your cart are selling fast. Reply STOP to opt out.",
]
REPLIES = ["Thanks!", "When will it arrive?", "ok 👍", "Can I change the delivery address?", "Great, thank you"]
TRAFFIC_DAYS = 7
MAX_MESSAGES = 5_000


@dataclass(frozen=True)
class DemoSummary:
    profiles: int
    events: int
    provider: str
    messages: int = 0  # the week of traffic (campaign rows apart)
    receipts: int = 0
    replies: int = 0
    opt_outs: int = 0
    campaign: str | None = None  # the A/B campaign's Campaign ID
    campaign_messages: int = 0  # its run's rows (control rows included)
    conversions: int = 0


async def has_data(session: AsyncSession) -> bool:
    for model in (Profile, Provider, Message):
        if await session.scalar(select(func.count()).select_from(model)):
            return True
    return False


async def reset(session: AsyncSession) -> None:
    """Empty every table the demo fills (the schema stays)."""
    for model in (InboundMessage, Receipt, MessagePart, MessageAttempt, Message, CampaignConversion, CampaignRun,
                  Campaign, Event, Consent, Profile, PropertyDef, Segment, ApiKey, PollCursor, ProviderGroupMember,
                  ProviderGroup, Sender, Price, DltTemplate, TenDlcCampaign, Provider, Setting, AuditEntry):
        await session.execute(delete(model))


def _weighted(rng: random.Random, choices: list[tuple[str, float]]) -> str:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def _phone(rng: random.Random, region: str, kind: PhoneNumberType) -> str:
    example = phonenumbers.example_number_for_type(region, kind)
    digits = str(example.national_number)
    for _ in range(20):
        candidate = digits[:-4] + f"{rng.randrange(10000):04d}"
        number = phonenumbers.parse(f"+{example.country_code}{candidate}")
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _profile_row(rng: random.Random, index: int, now: datetime) -> dict[str, object]:
    region, _, tz, names = rng.choices(COUNTRIES, weights=[c[1] for c in COUNTRIES])[0]
    row: dict[str, object] = {"user_id": f"demo-{index:05d}", "name": f"{rng.choice(names)} {rng.choice(SURNAMES)}"}
    roll = rng.random()
    if roll < 0.03:
        pass  # no phone
    elif roll < 0.05:
        row["phone"] = "+" + "".join(rng.choice("0123456789") for _ in range(5))  # invalid
    elif roll < 0.09:
        row["phone"] = _phone(rng, region, PhoneNumberType.FIXED_LINE)
    else:
        row["phone"] = _phone(rng, region, PhoneNumberType.MOBILE)
    if rng.random() < 0.5:
        row["timezone"] = tz
    row["country"] = region
    signup = now - timedelta(days=rng.randint(5, 720), minutes=rng.randint(0, 1440))
    consent = rng.random()
    if consent < 0.72:
        row["optin_at"] = _iso(signup + timedelta(minutes=rng.randint(1, 600)))
    elif consent < 0.84:
        row["optin_at"] = _iso(signup + timedelta(minutes=5))
        row["optout_at"] = _iso(signup + timedelta(days=rng.randint(1, 60)))
    plan = _weighted(rng, PLANS)
    row.update(
        plan=plan,
        signup_date=_iso(signup),
        renewal_date=_iso(now + timedelta(days=rng.randint(-20, 60))) if plan != "free" else "",
        lifetime_value=round(rng.lognormvariate(3.5, 1.0), 2),
        vip=rng.random() < 0.08,
        interests=rng.sample(INTERESTS, rng.randint(0, 3)),
        app_version=rng.choice(["3.2.0", "3.3.1", "3.4.0"]),
    )
    return row


def _events_for(rng: random.Random, user_id: str, plan: str, now: datetime, days: int) -> list[dict[str, object]]:
    events: list[dict[str, object]] = []
    activity = rng.choice([0.0, 0.02, 0.05, 0.1, 0.25])  # launches per day
    for day in range(days):
        if rng.random() >= activity:
            continue
        moment = now - timedelta(days=day, minutes=rng.randint(0, 1439))
        events.append({"user_id": user_id, "name": "app_launched", "at": _iso(moment),
                       "properties": {"platform": rng.choice(["ios", "android"])}})
        if rng.random() < 0.5:
            category = rng.choice(CATEGORIES)
            events.append({"user_id": user_id, "name": "product_viewed", "at": _iso(moment + timedelta(minutes=2)),
                           "properties": {"category": category, "price": round(rng.uniform(5, 300), 2)}})
            if rng.random() < 0.3:
                events.append({"user_id": user_id, "name": "added_to_cart", "at": _iso(moment + timedelta(minutes=4)),
                               "properties": {"category": category}})
                if rng.random() < 0.5:
                    events.append({"user_id": user_id, "name": "order_completed",
                                   "at": _iso(moment + timedelta(minutes=9)),
                                   "properties": {"amount": round(rng.uniform(10, 400), 2), "category": category}})
    if plan != "free":
        for month in range(days // 30):
            moment = now - timedelta(days=30 * month + rng.randint(0, 29))
            events.append({"user_id": user_id, "name": "subscription_renewed", "at": _iso(moment),
                           "properties": {"plan": plan}})
    return events


async def create_demo(
    factory: async_sessionmaker[AsyncSession], box: SecretBox, *, profiles_count: int = 10_000,
    days: int = 120, seed: int = 7, progress: Callable[[str, int, int], None] | None = None,
) -> DemoSummary:
    """Fill an empty database with the demo audience and a week of traffic. Call `reset` first
    for a used one. `progress(stage, done, total)` is called as each stage moves on."""
    rng = random.Random(seed)
    now = clock.now().replace(microsecond=0)
    defaults = AudienceDefaults(region=None, timezone="UTC")
    async with factory() as session, session.begin():
        await providers.create_provider(session, box, kind="sandbox", name="sandbox",
                                        values={"fail_pattern": r"^\+1555"}, actor="demo")
        provider_id = int(await session.scalar(select(Provider.id).where(Provider.name == "sandbox")) or 0)
        await create_compliance(session, "sandbox")
    import httpx  # the Sandbox's connection test contacts nothing; it is run as an operator would

    async with httpx.AsyncClient() as client:
        await providers.test_provider(factory, box, "sandbox", client, "demo")
    rows = [_profile_row(rng, i, now) for i in range(profiles_count)]
    batch = 2000
    for start in range(0, len(rows), batch):
        chunk = [profiles.prepare_profile(r, defaults) for r in rows[start:start + batch]]
        async with factory() as session, session.begin():
            await profiles.upsert_profiles(session, chunk, source="import", defaults=defaults)
        if progress:
            progress("profiles", min(start + batch, len(rows)), len(rows))
    total_events = 0
    pending: list[profiles.PreparedEvent] = []
    for index, row in enumerate(rows):
        for event in _events_for(rng, str(row["user_id"]), str(row["plan"]), now, days):
            pending.append(profiles.prepare_event(event, defaults))
        if len(pending) >= 20_000 or index == len(rows) - 1:
            async with factory() as session, session.begin():
                result = await profiles.record_events(session, pending, source="import", defaults=defaults,
                                                         may_trigger=False)
            total_events += result.recorded
            pending = []
            if progress:
                progress("events", index + 1, len(rows))
    messages, receipts = await _create_traffic(factory, provider_id, rng, now, progress)
    answered, opt_outs = await _create_replies(factory, provider_id, rng, now, progress)
    campaign = await _create_campaign(factory, provider_id, rng, now, progress)
    return DemoSummary(profiles=len(rows), events=total_events, provider="sandbox", messages=messages,
                       receipts=receipts, replies=answered + campaign.replies, opt_outs=opt_outs + campaign.opt_outs,
                       campaign=campaign.code, campaign_messages=campaign.messages, conversions=campaign.conversions)


def _sandbox_id(rng: random.Random, sent: datetime, letter: str) -> str:
    """A message id as the Sandbox makes them (its sent time and outcome inside), so the engine
    settles the demo's `sent` messages as it does real ones."""
    return f"SBX{int(sent.timestamp() * 1000):012X}{letter}{rng.getrandbits(32):08X}"


def _traffic_plan(rng: random.Random, count: int, now: datetime) -> list[tuple[str, datetime]]:
    """(state, queued at) for `count` messages over the last week, busier lately: a tenth in the
    last hour, a quarter earlier today, the rest over the week. Every state appears at least once."""
    plan: list[tuple[str, datetime]] = []
    weights = [w for _, w in STATES]
    for index in range(count):
        state = STATES[index][0] if index < len(STATES) else rng.choices([s for s, _ in STATES], weights=weights)[0]
        if state == "sent":  # still waiting for its receipt
            age = timedelta(seconds=rng.randint(20, 240))
        else:
            roll = rng.random()
            span = 3600 if roll < 0.10 else 86_400 if roll < 0.35 else TRAFFIC_DAYS * 86_400
            age = timedelta(seconds=rng.randint(300, span))
        plan.append((state, now - age))
    return sorted(plan, key=lambda item: item[1])


async def _create_traffic(factory: async_sessionmaker[AsyncSession], provider_id: int, rng: random.Random,
                          now: datetime, progress: Callable[[str, int, int], None] | None) -> tuple[int, int]:
    """A week of messages to subscribed, reachable profiles, with their attempts and receipts, in a
    few set-based inserts. Returns (messages, receipts)."""
    async with factory() as session:
        recipients = (await session.execute(
            select(Profile.id, Profile.phone, Profile.name, Profile.country)
            .where(Profile.subscription == "subscribed", Profile.phone_status == "valid",
                   Profile.sms_capable.is_(True))
            .order_by(Profile.id)
        )).all()
    if not recipients:
        return 0, 0
    count = min(MAX_MESSAGES, max(len(STATES) * 4, len(recipients) // 3))
    messages: list[dict[str, Any]] = []
    for index, (state, created) in enumerate(_traffic_plan(rng, count, now)):
        profile_id, phone, name, country = rng.choice(recipients)
        body = rng.choice(BODIES).format(
            first=(name or "there").split()[0], order=f"#{rng.randint(10_000, 99_999)}",
            code=f"{rng.randint(0, 999_999):06d}", date=(now + timedelta(days=rng.randint(3, 20))).strftime("%d %b"),
            category=rng.choice(CATEGORIES))
        info = analyze(body)
        sent = created + timedelta(seconds=1)
        finished = sent + timedelta(seconds=rng.randint(2, 40))
        receipt = RECEIPTS.get(state)
        messages.append({
            "kind": "transactional", "priority": 0, "provider_id": provider_id, "provider_name": "sandbox",
            "profile_id": profile_id, "country": country, "to_number": phone, "body": body,
            "encoding": str(info.encoding), "segments": info.segments, "state": state,
            "reason": receipt[4] if receipt else ("no answer from the sandbox in time; not resent"
                                                  if state == "unknown" else None),
            "error_code": receipt[2] if receipt else None,
            "provider_message_id": None if state == "unknown" else _sandbox_id(rng, sent, receipt[1] if receipt else "D"),
            "attempts": 1, "dedupe_key": f"demo:{index}", "created_at": created, "sending_at": created,
            "sent_at": None if state == "unknown" else sent,
            "finished_at": finished if receipt else (sent + timedelta(seconds=15) if state == "unknown" else None),
            "updated_at": finished if state != "sent" else sent,
        })
    async with factory() as session, session.begin():
        ids = (await session.execute(
            insert(Message).returning(Message.id, sort_by_parameter_order=True), messages)).scalars().all()
        await session.execute(insert(MessageAttempt), [{
            "message_id": message_id, "provider_id": provider_id, "provider_name": "sandbox",
            "started_at": m["sending_at"], "finished_at": m["sent_at"] or m["finished_at"],
            "outcome": "unknown" if m["state"] == "unknown" else "sent",
            "error_message": m["reason"] if m["state"] == "unknown" else None,
        } for message_id, m in zip(ids, messages, strict=True)])
        receipts = [{
            "provider_id": provider_id, "provider_name": "sandbox", "provider_message_id": m["provider_message_id"],
            "message_id": message_id, "recipient": m["to_number"], "provider_status": RECEIPTS[m["state"]][0],
            "state": m["state"], "error_code": RECEIPTS[m["state"]][2], "error_kind": RECEIPTS[m["state"]][3],
            "reason": RECEIPTS[m["state"]][4], "part": 0, "via": "poll", "occurred_at": m["finished_at"],
            "received_at": m["finished_at"], "applied_at": m["finished_at"],
        } for message_id, m in zip(ids, messages, strict=True) if m["state"] in RECEIPTS]
        if receipts:
            await session.execute(insert(Receipt), receipts)
    if progress:
        progress("messages and receipts", len(messages), len(messages))
    return len(messages), len(receipts)


async def _create_replies(factory: async_sessionmaker[AsyncSession], provider_id: int, rng: random.Random,
                          now: datetime, progress: Callable[[str, int, int], None] | None) -> tuple[int, int]:
    """Replies to the last message some people got: plain ones, a HELP, and STOPs, through the
    inbound door (keywords, opt-out of every profile holding the number, events, auto-responses),
    dated after that message. Returns (replies, opt-outs)."""
    async with factory() as session:  # each number's last message, if it was not in the last ten minutes
        latest = func.max(Message.created_at)
        last = (await session.execute(
            select(Message.to_number, latest).where(Message.kind == "transactional")
            .group_by(Message.to_number).having(latest < now - timedelta(minutes=10)).order_by(Message.to_number)
        )).all()
    if len(last) < 2:
        return 0, 0
    chosen = rng.sample(last, min(len(last), max(3, len(last) // 25)))
    texts = ["STOP", "HELP", rng.choice(REPLIES)][:len(chosen)] + [
        rng.choice(["STOP", "STOP", *REPLIES]) if n % 4 == 0 else rng.choice(REPLIES) for n in range(len(chosen) - 3)]
    planned = sorted(((last_at + timedelta(minutes=rng.randint(1, 90)), number, text)
                      for (number, last_at), text in zip(chosen, texts, strict=True)), key=lambda item: item[0])
    opt_outs = 0
    async with factory() as session, session.begin():
        for index, (at, number, text) in enumerate(planned):
            at = min(at, now - timedelta(seconds=60 + index))  # after its number's last message, before now
            report = InboundReport(provider_message_id=f"SBXMODEMO{index:011d}", sender=number, recipient="SANDBOX",
                                   text=text, at=at)
            view = await replies.record_inbound(session, provider_id=provider_id, provider_name="sandbox",
                                                report=report, via="sandbox")
            await _date_reply(session, view.id, number, at, rng)
            opt_outs += view.action == "opt_out"
            if progress:
                progress("replies", index + 1, len(planned))
    return len(planned), opt_outs


async def _date_reply(session: AsyncSession, inbound_id: int, number: str, at: datetime, rng: random.Random) -> None:
    """Move what a demo reply did to its own time: its receipt, the consent it changed, and its
    auto-response (sent and delivered a few seconds later, as the engine would have)."""
    row = await session.get(InboundMessage, inbound_id)
    assert row is not None
    row.received_at = row.processed_at = at
    await session.execute(update(Consent).where(Consent.phone == number, Consent.source == "keyword").values(at=at))
    await session.execute(update(Profile).where(Profile.phone == number, Profile.subscription == "unsubscribed")
                          .values(subscription_at=at))
    if row.response_message_id is None:
        return
    sent, finished = at + timedelta(seconds=2), at + timedelta(seconds=6)
    provider_message_id = _sandbox_id(rng, sent, "D")
    await session.execute(update(Message).where(Message.id == row.response_message_id).values(
        state="delivered", provider_message_id=provider_message_id, attempts=1, created_at=at, sending_at=sent,
        sent_at=sent, finished_at=finished, updated_at=finished))
    await session.execute(insert(MessageAttempt), [{
        "message_id": row.response_message_id, "provider_id": row.provider_id, "provider_name": row.provider_name,
        "started_at": sent, "finished_at": sent, "outcome": "sent"}])
    await session.execute(insert(Receipt), [{
        "provider_id": row.provider_id, "provider_name": row.provider_name, "provider_message_id": provider_message_id,
        "message_id": row.response_message_id, "recipient": number, "provider_status": "DELIVRD",
        "state": "delivered", "part": 0, "via": "poll", "occurred_at": finished, "received_at": finished,
        "applied_at": finished}])


# --- yesterday's A/B campaign ---------------------------------------------------------------------

CAMPAIGN_DOCUMENT: dict[str, Any] = {
    "name": "Winter sale A/B",
    "type": "one_time",
    "who": {"segment": "Everyone", "reach_percent": 50},
    "what": {"route": {"provider": "sandbox"},
             "variants": [{"body": "Winter sale: 20% off everything today. Reply STOP to opt out.", "split": 45},
                          {"body": "{{ profile.name | default: \"Hi\" }}, your 20% winter code WINTER20 works today "
                                   "only. Reply STOP to opt out.", "split": 45}],
             "control": 10},
    "goal": {"event": "order_completed", "where": [{"property": "amount", "op": "greater", "value": 0}],
             "window": "24h", "value": "amount"},
}
# arm → the chance a reached person orders within the day (control: without the message)
ORDER_RATES = {"A": 0.07, "B": 0.10, CONTROL: 0.04}
CAMPAIGN_STATES = [("delivered", 0.90), ("undelivered", 0.035), ("failed", 0.025), ("unknown", 0.01),
                   ("suppressed", 0.03)]
SUPPRESSED_WHY = ["frequency cap: 2 campaign SMS per day", "do not disturb hours"]
CAMPAIGN_REPLIES = ["Thanks!", "Is WINTER20 valid online too?", "Bought it 🙌", "STOP", "STOP"]


@dataclass(frozen=True)
class _CampaignMade:
    code: str
    messages: int
    receipts: int
    replies: int
    opt_outs: int
    conversions: int


def _held_back_code(phone_status: str, sms_capable: bool, subscription: str) -> str | None:
    """Why a profile is not reachable, as a run records it (queries/reach.UNREACHABLE_REASONS)."""
    if phone_status == "missing":
        return "no_phone"
    if phone_status == "invalid":
        return "invalid_phone"
    if not sms_capable:
        return "not_mobile_capable"
    if subscription == "unsubscribed":
        return "unsubscribed"
    return None if subscription == "subscribed" else "never_opted_in"


def _arm(rng: random.Random) -> str:
    """A, B or control in the campaign's split (45/45/10), from the demo's seeded random: the demo
    writes the run's rows itself, and stays the same when remade (ids move on in PostgreSQL)."""
    roll = rng.random() * 100
    return "A" if roll < 45 else "B" if roll < 90 else CONTROL


async def _create_campaign(factory: async_sessionmaker[AsyncSession], provider_id: int, rng: random.Random,
                           now: datetime, progress: Callable[[str, int, int], None] | None) -> _CampaignMade:
    """The campaign as its run left it a day ago: half of the reachable people (reach 50%) split
    45/45/10 into A, B and control, sent over 90 minutes through the Sandbox; some reply (a few
    STOP, only where its message was their last); some order within the day, more in B."""
    from smsconsole.services.campaigns import conversions  # lazy: the campaigns' SQL
    from smsconsole.services.segments import create_segment

    start = (now - timedelta(hours=26)).replace(second=0)
    async with factory() as session, session.begin():
        await create_segment(session, name="Everyone", definition={"conditions": []}, actor="demo")
        view = await campaigns.create_campaign(session, {**CAMPAIGN_DOCUMENT, "when": {
            "timezone": "UTC", "at": start.strftime("%Y-%m-%d %H:%M")}}, actor="demo")
        await session.execute(update(Campaign).where(Campaign.id == view.id).values(
            state="completed", scheduled_at=start - timedelta(days=1), next_run_at=None))
        people = (await session.execute(
            select(Profile.id, Profile.user_id, Profile.phone, Profile.name, Profile.country, Profile.phone_status,
                   Profile.sms_capable, Profile.subscription).order_by(Profile.id))).all()
        held_back: dict[str, int] = {}
        chosen = []
        for person in people:
            code = _held_back_code(person.phone_status, bool(person.sms_capable), person.subscription)
            if code is None and rng.random() >= 0.5:
                code = "sampled_out"
            if code is None:
                chosen.append(person)
            else:
                held_back[code] = held_back.get(code, 0) + 1
        run = CampaignRun(campaign_id=view.id, number=1, planned_at=start, state="completed", started_at=start,
                          materialized_at=start, finished_at=start + timedelta(hours=2), qualified=len(people),
                          materialized=len(chosen), suppressed=held_back, document=view.document, updated_at=start)
        session.add(run)
        await session.flush()
        rows = [_campaign_row(rng, person, index, len(chosen), start, view.id, run.id, provider_id)
                for index, person in enumerate(chosen)]
        if not rows:
            return _CampaignMade(view.code, 0, 0, 0, 0, 0)
        ids = (await session.execute(
            insert(Message).returning(Message.id, sort_by_parameter_order=True), rows)).scalars().all()
        tried = [(message_id, m) for message_id, m in zip(ids, rows, strict=True) if m["sending_at"] is not None]
        await session.execute(insert(MessageAttempt), [{
            "message_id": message_id, "provider_id": provider_id, "provider_name": "sandbox",
            "started_at": m["sending_at"], "finished_at": m["sent_at"] or m["finished_at"],
            "outcome": "unknown" if m["state"] == "unknown" else "sent",
            "error_message": m["reason"] if m["state"] == "unknown" else None} for message_id, m in tried])
        receipts = [{
            "provider_id": provider_id, "provider_name": "sandbox", "provider_message_id": m["provider_message_id"],
            "message_id": message_id, "recipient": m["to_number"], "provider_status": RECEIPTS[m["state"]][0],
            "state": m["state"], "error_code": RECEIPTS[m["state"]][2], "error_kind": RECEIPTS[m["state"]][3],
            "reason": RECEIPTS[m["state"]][4], "part": 0, "via": "poll", "occurred_at": m["finished_at"],
            "received_at": m["finished_at"], "applied_at": m["finished_at"]}
            for message_id, m in tried if m["state"] in RECEIPTS]
        if receipts:
            await session.execute(insert(Receipt), receipts)
    if progress:
        progress("campaign messages", len(rows), len(rows))
    answered, opt_outs = await _campaign_replies(factory, provider_id, rng, now, rows)
    users = {person.id: person.user_id for person in chosen}
    orders = []
    for m in rows:
        if m["state"] in ("delivered", "undelivered", "unknown", CONTROL) and rng.random() < ORDER_RATES[m["variant"]]:
            at = min((m["sent_at"] or m["created_at"]) + timedelta(minutes=rng.randint(3, 20 * 60)),
                     now - timedelta(minutes=1))
            orders.append({"user_id": users[m["profile_id"]], "name": "order_completed", "at": _iso(at),
                           "properties": {"amount": round(rng.uniform(12, 240), 2), "category": rng.choice(CATEGORIES)}})
    defaults = AudienceDefaults(region=None, timezone="UTC")
    async with factory() as session, session.begin():
        if orders:  # recorded as an import would: each converts as it is stored
            await profiles.record_events(session, [profiles.prepare_event(o, defaults) for o in orders],
                                         source="import", defaults=defaults, may_trigger=False)
        converted = await conversions.recompute(session, view.id, now=now)  # earlier orders in the window too
    if progress:
        progress("conversions", converted, converted)
    return _CampaignMade(view.code, len(rows), len(receipts), answered, opt_outs, converted)


def _campaign_row(rng: random.Random, person: Any, index: int, count: int, start: datetime, campaign_id: int,
                  run_id: int, provider_id: int) -> dict[str, Any]:
    """One person's row of the run: a control row, or their variant's message in some state."""
    arm = _arm(rng)
    created = start + timedelta(seconds=int(5400 * index / max(count, 1)))
    base: dict[str, Any] = {
        "kind": "campaign", "priority": 0, "profile_id": person.id, "country": person.country,
        "to_number": person.phone, "campaign_id": campaign_id, "run_id": run_id, "variant": arm,
        "dedupe_key": f"run:{run_id}:profile:{person.id}", "created_at": created, "updated_at": created,
        "render": False, "attempts": 0, "reason": None, "error_code": None, "provider_message_id": None,
        "sending_at": None, "sent_at": None, "finished_at": None}
    if arm == CONTROL:  # held out: recorded at the would-be send time, never sent
        return {**base, "state": CONTROL, "body": "", "encoding": "GSM-7", "segments": 0, "finished_at": created}
    template = CAMPAIGN_DOCUMENT["what"]["variants"][0 if arm == "A" else 1]["body"]
    body = template.replace('{{ profile.name | default: "Hi" }}', (person.name or "Hi").split()[0])
    info = analyze(body)
    message = {**base, "body": body, "encoding": str(info.encoding), "segments": info.segments}
    state = rng.choices([s for s, _ in CAMPAIGN_STATES], weights=[w for _, w in CAMPAIGN_STATES])[0]
    if state == "suppressed":
        return {**message, "state": state, "reason": rng.choice(SUPPRESSED_WHY), "finished_at": created}
    sent = created + timedelta(seconds=1)
    receipt = RECEIPTS.get(state)
    finished = sent + timedelta(seconds=rng.choice([2, 3, 4, 6, 9, 14, 25, 45, 80]))
    return {**message, "state": state, "provider_id": provider_id, "provider_name": "sandbox", "attempts": 1,
            "sending_at": created, "sent_at": None if state == "unknown" else sent,
            "provider_message_id": None if state == "unknown" else _sandbox_id(rng, sent, receipt[1] if receipt else "D"),
            "reason": receipt[4] if receipt else "no answer from the sandbox in time; not resent",
            "error_code": receipt[2] if receipt else None,
            "finished_at": finished if receipt else sent + timedelta(seconds=15), "updated_at": finished}


async def _campaign_replies(factory: async_sessionmaker[AsyncSession], provider_id: int, rng: random.Random,
                            now: datetime, rows: list[dict[str, Any]]) -> tuple[int, int]:
    """Replies to the campaign from some who got it, where it was the last message to their number
    (so nothing is sent after a STOP); they link to its run and variant as real ones do."""
    sent = {m["to_number"]: m for m in rows if m["state"] == "delivered"}
    async with factory() as session:
        latest = dict((await session.execute(
            select(Message.to_number, func.max(Message.created_at)).where(Message.to_number.in_(list(sent)))
            .group_by(Message.to_number))).all()) if sent else {}
    candidates = sorted(number for number, m in sent.items() if latest.get(number) == m["created_at"])
    chosen = rng.sample(candidates, min(len(candidates), max(2, len(candidates) // 30)))
    opt_outs = 0
    async with factory() as session, session.begin():
        for index, number in enumerate(chosen):
            text = rng.choice(CAMPAIGN_REPLIES)
            at = min(sent[number]["finished_at"] + timedelta(minutes=rng.randint(1, 120)),
                     now - timedelta(seconds=600 + index))
            report = InboundReport(provider_message_id=f"SBXMOCAMP{index:011d}", sender=number,
                                   recipient="SANDBOX", text=text, at=at)
            view = await replies.record_inbound(session, provider_id=provider_id, provider_name="sandbox",
                                                report=report, via="sandbox")
            await _date_reply(session, view.id, number, at, rng)
            opt_outs += view.action == "opt_out"
    return len(chosen), opt_outs
