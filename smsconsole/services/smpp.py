"""What an SMPP bind receives, stored: the sink an SMPP adapter's bind hands its deliver_sm
batches to (`SmppProvider.attach(receipt_sink(...))`). Receipts go to the receipts service and
replies to the replies pipeline (keywords, STOP) in one transaction that commits before the sink
returns, so the bind answers deliver_sm_resp only for what is stored; when the store fails the
bind answers ESME_RX_T_APPN and the SMSC delivers it again (a receipt stored twice is a no-op, a
reply stored twice is recognised as a replay). A receipt that arrives before the dispatcher has
recorded its submit_sm_resp is kept pending and applied when the message appears
(`apply_pending_receipts`, which the engine's pollers run every tick; it runs here too)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsconsole.providers.base import InboundReport, StatusReport
from smsconsole.services.receipts import apply_pending_receipts, apply_status_reports
from smsconsole.services.replies import record_inbound

VIA = "smpp"

ReportSink = Callable[[list[StatusReport], list[InboundReport]], Awaitable[None]]


async def store_deliveries(session: AsyncSession, provider_id: int | None, provider_name: str | None,
                           statuses: list[StatusReport], inbound: list[InboundReport]) -> None:
    """Store one batch of a bind's deliver_sm: receipts, then replies in the order received. The
    caller commits."""
    if statuses:
        await apply_status_reports(session, provider_id, provider_name, statuses, VIA)
    for report in inbound:
        await record_inbound(session, provider_id=provider_id, provider_name=provider_name, report=report, via=VIA)


def receipt_sink(factory: async_sessionmaker[AsyncSession], provider_id: int | None,
                 provider_name: str | None) -> ReportSink:
    """The sink for one provider's bind: each batch in its own committed transaction."""

    async def sink(statuses: list[StatusReport], inbound: list[InboundReport]) -> None:
        async with factory() as session, session.begin():
            await store_deliveries(session, provider_id, provider_name, statuses, inbound)
        if statuses:  # receipts kept pending earlier whose message has since been recorded
            async with factory() as session, session.begin():
                await apply_pending_receipts(session)

    return sink
