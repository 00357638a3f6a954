"""A small audience for the Segments section whose every count is worked out below, and saved
segments over it. Times are relative to tests.tui.seed.FROZEN (the console tests' clock).

    user  phone            country  subscription   reach reason         orders in the last 30 days
    a1    +91 mobile       IN       subscribed     reachable            3
    a2    +91 mobile       IN       subscribed     reachable            2
    a3    +91 mobile       IN       unsubscribed   unsubscribed         2
    a4    +44 mobile       GB       never          never opted in       2
    a5    +44 landline     GB       subscribed     not mobile-capable   2
    a6    "+4412" invalid  GB       subscribed     invalid phone        2
    a7    none             IN       subscribed     no phone             2
    a8    +44 mobile       GB       subscribed     reachable            1 (and one 40 days ago)
    a9    +33 mobile       FR       subscribed     reachable            2

"ordered at least twice in the last 30 days AND country in IN, GB" is a1–a7: 7 qualify, 2 are
reachable (a1, a2), one under each unreachable reason; IN 4 (2 reachable), GB 3 (0 reachable).
Everyone: 9 qualify, 4 reachable (a1, a2, a8, a9)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from smsconsole.runtime import Runtime
from smsconsole.services import profiles as P
from smsconsole.services import segments as segment_service
from tests.tui.seed import FROZEN

DEFAULTS = P.AudienceDefaults(region=None, timezone="UTC")
TYPES = {"plan": "string", "lifetime_value": "number"}
OPTIN = "2026-01-01"
PROFILES: list[dict[str, Any]] = [
    {"user_id": "a1", "phone": "+919876543210", "optin_at": OPTIN, "name": "Asha Rao", "plan": "gold",
     "lifetime_value": 420},
    {"user_id": "a2", "phone": "+919876543211", "optin_at": OPTIN, "plan": "silver", "lifetime_value": 120},
    {"user_id": "a3", "phone": "+919876543212", "optin_at": OPTIN, "optout_at": "2026-02-01", "plan": "gold",
     "lifetime_value": 80},
    {"user_id": "a4", "phone": "+447400123456", "plan": "bronze", "lifetime_value": 15},
    {"user_id": "a5", "phone": "+442071838750", "optin_at": OPTIN, "plan": "gold", "lifetime_value": 900},
    {"user_id": "a6", "phone": "+4412", "country": "GB", "optin_at": OPTIN, "plan": "silver"},
    {"user_id": "a7", "country": "IN", "optin_at": OPTIN, "plan": "silver"},
    {"user_id": "a8", "phone": "+447123456789", "optin_at": OPTIN, "plan": "gold", "lifetime_value": 60},
    {"user_id": "a9", "phone": "+33612345678", "optin_at": OPTIN, "plan": "bronze", "lifetime_value": 33},
]
ORDERS_IN_30_DAYS = {"a1": 3, "a2": 2, "a3": 2, "a4": 2, "a5": 2, "a6": 2, "a7": 2, "a8": 1, "a9": 2}

ORDERED_TWICE_IN_IN_GB: dict[str, Any] = {"match": "all", "conditions": [
    {"event": "order", "did": True, "count": {"op": "at_least", "value": 2}, "window": {"last_days": 30}},
    {"field": "country", "op": "in", "value": ["IN", "GB"]},
]}
GOLD: dict[str, Any] = {"match": "all", "conditions": [{"property": "plan", "op": "equals", "value": "gold"}]}
INDIA: dict[str, Any] = {"match": "all", "conditions": [{"field": "country", "op": "in", "value": ["IN"]}]}


async def seed_audience(runtime: Runtime) -> None:
    async with runtime.factory() as session, session.begin():
        prepared = [P.prepare_profile(row, DEFAULTS, TYPES) for row in PROFILES]
        await P.upsert_profiles(session, prepared, source="import", defaults=DEFAULTS)
    events = []
    for user, count in ORDERS_IN_30_DAYS.items():
        for index in range(count):
            at = FROZEN - timedelta(days=2 + 5 * index, hours=index)
            events.append({"user_id": user, "name": "order", "at": at.isoformat(),
                           "properties": {"amount": 40 + 10 * index}})
    events.append({"user_id": "a8", "name": "order", "at": (FROZEN - timedelta(days=40)).isoformat(),
                   "properties": {"amount": 75}})
    events.append({"user_id": "a1", "name": "app_open", "at": (FROZEN - timedelta(hours=3)).isoformat()})
    async with runtime.factory() as session, session.begin():
        await P.record_events(session, [P.prepare_event(e, DEFAULTS, {"amount": "number"}) for e in events],
                              source="api", defaults=DEFAULTS)


async def save_segment(runtime: Runtime, name: str, definition: dict[str, Any]) -> segment_service.SegmentView:
    async with runtime.factory() as session, session.begin():
        return await segment_service.create_segment(session, name=name, definition=definition, actor="seed")


async def seed_segments(runtime: Runtime) -> None:
    """The audience and two saved segments: gold-plan (4 qualify) and india (4 qualify)."""
    await seed_audience(runtime)
    await save_segment(runtime, "gold-plan", GOLD)
    await save_segment(runtime, "india", INDIA)
