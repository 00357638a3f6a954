"""Replies for the Inbox, Stats and Home tests: a STOP, a HELP, a plain reply and an ARRÊT through
the real `record_inbound`, at fixed times (the clock is frozen by the caller)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from smsconsole import clock
from smsconsole.models import Provider as ProviderRow
from smsconsole.providers.base import InboundReport
from smsconsole.runtime import Runtime
from smsconsole.services.replies import record_inbound
from tests.tui.seed import FROZEN

REPLIES = [
    # (minutes before FROZEN, sender, text)
    (12, "+447400123451", "Thanks, got it!"),
    (9, "+447400123452", "HELP"),
    (6, "+33612345678", "Arrêt"),
    (3, "+447400123451", " Stop. "),
]


async def seed_replies(runtime: Runtime) -> None:
    async with runtime.factory() as session:
        provider_id = await session.scalar(select(ProviderRow.id).where(ProviderRow.name == "sandbox"))
    for index, (minutes, sender, text) in enumerate(REPLIES):
        clock.freeze(FROZEN - timedelta(minutes=minutes))
        async with runtime.factory() as session, session.begin():
            await record_inbound(session, provider_id=provider_id, provider_name="sandbox", via="poll",
                                 report=InboundReport(provider_message_id=f"MO{index}", sender=sender,
                                                      recipient="SANDBOX", text=text))
    clock.freeze(FROZEN)
