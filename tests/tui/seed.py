"""Deterministic data for console tests and snapshots: providers with fixed health, test messages
in every interesting state with fixed ids and times, a default region and a few audit entries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from smsconsole import clock
from smsconsole.models import Message, Provider as ProviderRow
from smsconsole.runtime import Runtime
from smsconsole.services import providers as provider_service
from smsconsole.services.messages import queue_test_message
from smsconsole.services.settings import update_settings

FROZEN = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
TWILIO_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "tok_5ecr3t_value_123456"


async def add_provider(runtime: Runtime, kind: str, name: str, **values: str) -> provider_service.ProviderView:
    async with runtime.factory() as session, session.begin():
        return await provider_service.create_provider(session, runtime.box, kind=kind, name=name, values=values,
                                                      actor="seed")


async def set_region(runtime: Runtime, region: str) -> None:
    async with runtime.factory() as session, session.begin():
        await update_settings(session, {"default_region": region}, "seed")


async def seed_providers(runtime: Runtime) -> None:
    await add_provider(runtime, "sandbox", "sandbox")
    await add_provider(runtime, "sandbox", "sandbox-fail", fail_pattern=r"^\+44")
    await add_provider(runtime, "twilio", "twilio-us", account_sid=TWILIO_SID, auth_token=TWILIO_TOKEN,
                       sender="+14155552671")
    health = {
        "sandbox": ("healthy", "sandbox is always reachable; no message leaves this machine", 12),
        "twilio-us": ("unhealthy", "[20003] Authentication failed: check the Account SID and auth token", 5),
    }
    async with runtime.factory() as session, session.begin():
        for name, (state, detail, minutes_ago) in health.items():
            await session.execute(
                update(ProviderRow).where(ProviderRow.name == name)
                .values(health=state, health_detail=detail, health_checked_at=FROZEN - timedelta(minutes=minutes_ago))
            )


MESSAGES = [
    # (to, body, provider, state, provider message id, error code, reason)
    ("+447400123451", "Your code is 123456", "sandbox", "delivered", "SBX00000000000000000001", None, None),
    ("+447400123452", "Hello from smsconsole 👋", "sandbox", "sent", "SBX00000000000000000002", None, None),
    ("+447400123453", "Rejected on purpose", "sandbox-fail", "failed", None, "SANDBOX-REJECTED",
     "sandbox: recipient matches the fail pattern"),
    ("+14155550123", "Timeout test", "twilio-us", "unknown", None, None,
     "no answer from api.twilio.com in time; not resent"),
    ("+447400123455", "Still waiting", "sandbox", "queued", None, None, None),
]


async def seed_messages(runtime: Runtime) -> None:
    for index, (to, body, provider, state, provider_id, code, reason) in enumerate(MESSAGES):
        async with runtime.factory() as session, session.begin():
            queued = await queue_test_message(session, provider_name=provider, to=to, body=body, default_region="GB",
                                              actor="seed")
            created = FROZEN - timedelta(minutes=20 - index * 3)
            done = state not in ("queued", "sending")
            await session.execute(
                update(Message).where(Message.id == queued.id).values(
                    state=state, provider_message_id=provider_id, error_code=code, reason=reason,
                    attempts=0 if state == "queued" else 1, created_at=created, updated_at=created,
                    sent_at=created + timedelta(seconds=2) if provider_id else None,
                    finished_at=created + timedelta(seconds=2) if done else None,
                )
            )


async def seed_demo(runtime: Runtime) -> None:
    """Everything the snapshots show."""
    await seed_providers(runtime)
    await set_region(runtime, "GB")
    await seed_messages(runtime)


def frozen() -> None:
    clock.freeze(FROZEN)


# --- audience and API keys (used by the Audience and API key tests; seed_demo leaves them out) ---

AUDIENCE = [
    # national numbers are read in GB (seed_demo sets the default region)
    {"user_id": "cust-1001", "phone": "07400 123456", "name": "Ann Smith", "plan": "gold", "score": 7,
     "vip": True, "optin_at": "2026-10-01T08:00:00Z"},
    {"user_id": "cust-1002", "phone": "+44 7400 123457", "name": "Bob Jones", "plan": "silver", "score": 3,
     "optin_at": "2026-10-02T08:00:00Z", "optout_at": "2026-11-01T12:00:00Z"},
    {"user_id": "cust-1003", "phone": "+1 415 555 0123", "name": "Carla Díaz", "timezone": "America/Chicago"},
    {"user_id": "cust-1004", "phone": "12345", "name": "Dev Patel", "plan": "gold"},
    {"user_id": "cust-1005", "phone": "+44 121 234 5678", "name": "Eve Smith"},
]
EVENTS = [
    # (user id, event, minutes before FROZEN, properties)
    ("cust-1001", "app_launched", 600, {"platform": "ios"}),
    ("cust-1001", "product_viewed", 590, {"category": "shoes", "price": 59.9}),
    ("cust-1001", "added_to_cart", 585, {"category": "shoes"}),
    ("cust-1001", "order_completed", 580, {"amount": 59.9, "category": "shoes"}),
    ("cust-1001", "app_launched", 30, {"platform": "ios"}),
    ("cust-1002", "app_launched", 120, {"platform": "android"}),
]


async def seed_audience(runtime: Runtime) -> None:
    """Five profiles (a subscriber, an opted-out one, one never asked, an invalid phone, a
    landline) and a few events, all at fixed times."""
    from smsconsole.services import profiles

    defaults = profiles.AudienceDefaults(region="GB", timezone="UTC")
    async with runtime.factory() as session, session.begin():
        prepared = [profiles.prepare_profile(row, defaults) for row in AUDIENCE]
        await profiles.upsert_profiles(session, prepared, source="import", defaults=defaults)
        events = [profiles.prepare_event({"user_id": user_id, "name": name,
                                          "at": (FROZEN - timedelta(minutes=minutes)).isoformat(),
                                          "properties": props}, defaults)
                  for user_id, name, minutes, props in EVENTS]
        await profiles.record_events(session, events, source="api", defaults=defaults)


API_KEYS = [
    # (name, prefix, days before FROZEN it was created, minutes ago last used or None, revoked days ago or None)
    ("signup-service", "k7p2m9qa", 30, 5, None),
    ("crm-sync", "b4x8n1ze", 12, None, None),
    ("old-website", "w0q3r6ty", 90, 60 * 24 * 40, 20),
]


async def seed_api_keys(runtime: Runtime) -> None:
    """API keys with fixed prefixes and times (created keys get random ones)."""
    from smsconsole.models import ApiKey
    from smsconsole.services.api_keys import hash_key

    async with runtime.factory() as session, session.begin():
        for name, prefix, created_days, used_minutes, revoked_days in API_KEYS:
            session.add(ApiKey(
                name=name, prefix=prefix, key_hash=hash_key(f"smsc_{prefix}_{'x' * 40}"),
                created_at=FROZEN - timedelta(days=created_days),
                last_used_at=FROZEN - timedelta(minutes=used_minutes) if used_minutes is not None else None,
                revoked_at=FROZEN - timedelta(days=revoked_days) if revoked_days is not None else None,
            ))
