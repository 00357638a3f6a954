"""Demo data: a Sandbox provider and a realistic audience (profiles across countries and time
zones, typed properties, consent, and a few months of events), deterministic for a given seed,
written through the same services as real imports."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import phonenumbers
from phonenumbers import PhoneNumberType
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsconsole import clock
from smsconsole.models import (
    ApiKey,
    AuditEntry,
    Consent,
    Event,
    Message,
    MessageAttempt,
    Profile,
    PropertyDef,
    Provider,
    Segment,
    Setting,
)
from smsconsole.secrets import SecretBox
from smsconsole.services import profiles, providers
from smsconsole.services.profiles import AudienceDefaults

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


@dataclass(frozen=True)
class DemoSummary:
    profiles: int
    events: int
    provider: str


async def has_data(session: AsyncSession) -> bool:
    for model in (Profile, Provider, Message):
        if await session.scalar(select(func.count()).select_from(model)):
            return True
    return False


async def reset(session: AsyncSession) -> None:
    """Empty every table the demo fills (the schema stays)."""
    for model in (MessageAttempt, Message, Event, Consent, Profile, PropertyDef, Segment, ApiKey, Provider,
                  Setting, AuditEntry):
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
    """Fill an empty database with the demo audience. Call `reset` first for a used one."""
    rng = random.Random(seed)
    now = clock.now().replace(microsecond=0)
    defaults = AudienceDefaults(region=None, timezone="UTC")
    async with factory() as session, session.begin():
        await providers.create_provider(session, box, kind="sandbox", name="sandbox",
                                        values={"fail_pattern": r"^\+1555"}, actor="demo")
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
        if len(pending) >= 5000 or index == len(rows) - 1:
            async with factory() as session, session.begin():
                result = await profiles.record_events(session, pending, source="import", defaults=defaults)
            total_events += result.recorded
            pending = []
            if progress:
                progress("events", index + 1, len(rows))
    return DemoSummary(profiles=len(rows), events=total_events, provider="sandbox")
