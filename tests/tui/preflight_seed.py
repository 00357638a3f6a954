"""A draft whose preflight blocks: its audience has US and GB recipients and its provider (the
Sandbox, with a sender registered so it is checked) sends only from the alphanumeric ACME, which
the US does not allow; GB is priced at 0.04 USD a segment, the US not at all. Seeded through the
services (profiles, segments, senders, prices, campaigns). Times relative to tests.tui.seed.FROZEN."""

from __future__ import annotations

import copy
from typing import Any

from smsconsole.runtime import Runtime
from smsconsole.services import profiles as P
from smsconsole.services.compliance.prices import set_price
from smsconsole.services.compliance.senders import add_sender
from tests.tui.campaign_seed import ONE_TIME, create
from tests.tui.seed import seed_providers
from tests.tui.segment_seed import save_segment

DEFAULTS = P.AudienceDefaults(region=None, timezone="UTC")
OPTIN = "2026-01-01"
PROFILES: list[dict[str, Any]] = [
    {"user_id": "u1", "phone": "+14155550101", "optin_at": OPTIN, "name": "Ana", "timezone": "America/New_York"},
    {"user_id": "u2", "phone": "+14155550102", "optin_at": OPTIN, "name": "Ben", "timezone": "America/New_York"},
    {"user_id": "u3", "phone": "+14155550103", "optin_at": OPTIN, "name": "Cy", "timezone": "America/New_York"},
    {"user_id": "g1", "phone": "+447400123456", "optin_at": OPTIN, "name": "Dee", "timezone": "Europe/London"},
    {"user_id": "g2", "phone": "+447400123457", "optin_at": OPTIN, "name": "Eli", "timezone": "Europe/London"},
]
US_GB: dict[str, Any] = {"match": "all", "conditions": [{"field": "country", "op": "in", "value": ["US", "GB"]}]}
DOCUMENT: dict[str, Any] = {
    **copy.deepcopy(ONE_TIME), "name": "Winter notice",
    "when": {"timezone": "UTC", "at": "2026-11-24 16:00"},  # 11:00 in New York, 16:00 in London
    "who": {**ONE_TIME["who"], "segment": "us-gb", "run_limit": None},
    "compliance": {"category": "transactional", "on_block": "hold"},
}
DOCUMENT["what"] = {**DOCUMENT["what"], "body": "Hi {{ profile.name }}, your order has shipped. Reply STOP to opt out"}


async def seed_preflight(runtime: Runtime) -> Any:
    """The providers, the audience, the segment, ACME on the Sandbox, a GB price; the draft's view."""
    await seed_providers(runtime)
    async with runtime.factory() as session, session.begin():
        prepared = [P.prepare_profile(row, DEFAULTS, {}) for row in PROFILES]
        await P.upsert_profiles(session, prepared, source="import", defaults=DEFAULTS)
    await save_segment(runtime, "us-gb", US_GB)
    async with runtime.factory() as session, session.begin():
        await add_sender(session, provider="sandbox", value="ACME", type="alphanumeric", actor="seed")
        await set_price(session, provider="sandbox", country="GB", amount=0.04, currency="USD", actor="seed")
    return await create(runtime, DOCUMENT)
