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
