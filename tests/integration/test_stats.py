"""Delivery stats on both databases: counts by provider and state for a window, replies by
provider, per-minute throughput buckets, and one message's whole path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from smsconsole import clock
from smsconsole.models import InboundMessage, Message, MessageAttempt, Receipt
from smsconsole.models import Provider as ProviderRow
from smsconsole.runtime import Runtime
from smsconsole.services import messages, providers, stats

NOW = datetime(2026, 11, 23, 9, 30, 20, tzinfo=UTC)


async def _setup(rt: Runtime) -> dict[str, int]:
    clock.freeze(NOW)
    async with rt.factory() as session, session.begin():
        for name in ("alpha", "beta"):
            await providers.create_provider(session, rt.box, kind="sandbox", name=name, values={}, actor="t")
    # (provider, state, minutes before NOW it was queued and sent)
    plan = [("alpha", "delivered", 1), ("alpha", "delivered", 1), ("alpha", "undelivered", 3),
            ("alpha", "failed", 5), ("beta", "sent", 0), ("beta", "unknown", 10), ("beta", "queued", 0),
            ("alpha", "delivered", 90), ("beta", "delivered", 60 * 5)]  # the last two: today, not this hour
    ids: dict[str, int] = {}
    for index, (provider, state, minutes) in enumerate(plan):
        async with rt.factory() as session, session.begin():
            view = await messages.queue_test_message(session, provider_name=provider, to="+447400123456",
                                                     body=f"m{index}", default_region=None, actor="t")
            at = NOW - timedelta(minutes=minutes)
            left = state in ("sent", "delivered", "undelivered")
            await session.execute(update(Message).where(Message.id == view.id).values(
                state=state, created_at=at, sent_at=at if left else None, updated_at=at))
            ids[f"{provider}-{index}"] = view.id
    async with rt.factory() as session, session.begin():
        alpha = await session.scalar(ProviderRow.__table__.select().with_only_columns(ProviderRow.id)
                                     .where(ProviderRow.name == "alpha"))
        for n, minutes in enumerate((2, 70)):
            session.add(InboundMessage(provider_id=alpha, provider_name="alpha", provider_message_id=f"in{n}",
                                       sender="+447400123456", text="hi", action="reply", via="poll",
                                       received_at=NOW - timedelta(minutes=minutes)))
        await session.execute(update(ProviderRow).where(ProviderRow.name == "beta").values(
            circuit_state="open", circuit_failures=5, circuit_until=NOW + timedelta(seconds=30)))
    return ids


async def test_counts_by_provider_for_the_last_hour_and_today(runtime: Runtime) -> None:
    await _setup(runtime)
    async with runtime.factory() as session:
        hour = await stats.delivery_stats(session, "hour")
        today = await stats.delivery_stats(session, "today")
    a, b = hour.by_provider["alpha"], hour.by_provider["beta"]
    assert (a.sent, a.delivered, a.undelivered, a.failed, a.unknown, a.replies) == (3, 2, 1, 1, 0, 1)
    assert (b.sent, b.delivered, b.unknown, b.waiting) == (1, 0, 1, 1)
    assert (hour.total.sent, hour.total.replies, hour.total.waiting) == (4, 1, 1)
    assert a.settled == 4 and a.delivery_rate == 2 / 4 and b.delivery_rate is None  # the failed one counts
    assert (today.total.sent, today.total.delivered, today.total.replies) == (6, 4, 2)
    health = {p.name: p for p in hour.providers}
    assert health["beta"].circuit_state == "open" and health["beta"].circuit_failures == 5
    assert health["alpha"].circuit_state == "closed"


async def test_the_rate_is_delivered_of_settled_and_says_of_how_many(runtime: Runtime) -> None:
    """6 sent, 2 delivered and 4 awaiting their receipts: 100% of the 2 that settled, not of the 6."""
    clock.freeze(NOW)
    async with runtime.factory() as session, session.begin():
        await providers.create_provider(session, runtime.box, kind="sandbox", name="sbx", values={}, actor="t")
    for index, state in enumerate(["delivered"] * 2 + ["sent"] * 4):
        async with runtime.factory() as session, session.begin():
            view = await messages.queue_test_message(session, provider_name="sbx", to="+447400123456",
                                                     body=f"m{index}", default_region=None, actor="t")
            await session.execute(update(Message).where(Message.id == view.id).values(state=state, sent_at=NOW))
    async with runtime.factory() as session:
        counts = (await stats.delivery_stats(session, "hour")).by_provider["sbx"]
    assert (counts.sent, counts.delivered, counts.awaiting_receipt, counts.settled) == (6, 2, 4, 2)
    assert counts.delivery_rate == 1.0
    assert stats.describe_rate(counts) == "100% of 2"
    assert stats.describe_rate(stats.DeliveryCounts(sent=3)) == "-"


async def test_throughput_per_minute_buckets(runtime: Runtime) -> None:
    await _setup(runtime)
    async with runtime.factory() as session:
        total, per_provider = await stats.throughput(session, minutes=60)
    assert len(total) == 60
    assert total[-1] == 1  # beta, this minute
    assert total[-2] == 2  # two alpha deliveries a minute ago
    assert total[-4] == 1  # the undelivered one, three minutes ago
    assert sum(total) == 4  # failed/unknown never left; the 90-minute-old one is outside
    assert per_provider["alpha"][-2] == 2 and per_provider["beta"][-1] == 1


async def test_message_path_in_time_order(runtime: Runtime) -> None:
    ids = await _setup(runtime)
    message_id = ids["alpha-0"]
    async with runtime.factory() as session, session.begin():
        at = NOW - timedelta(minutes=1)
        session.add(MessageAttempt(message_id=message_id, provider_name="alpha", started_at=at + timedelta(seconds=1),
                                   finished_at=at + timedelta(seconds=2), outcome="transient", http_status=503))
        session.add(MessageAttempt(message_id=message_id, provider_name="alpha", started_at=at + timedelta(seconds=2),
                                   finished_at=at + timedelta(seconds=3), outcome="sent", http_status=200))
        session.add(Receipt(provider_name="alpha", provider_message_id="SBX1", message_id=message_id,
                            provider_status="DELIVRD", state="delivered", via="webhook",
                            occurred_at=at + timedelta(seconds=3), received_at=at + timedelta(seconds=4),
                            applied_at=at + timedelta(seconds=4)))
        session.add(InboundMessage(provider_name="alpha", provider_message_id="in-x", sender="+447400123456",
                                   text="thanks", action="reply", via="poll", answers_message_id=message_id,
                                   received_at=at + timedelta(seconds=30)))
    async with runtime.factory() as session:
        path = await stats.message_path(session, message_id)
    assert [what for _, what, _ in path.timeline] == [
        "queued", "attempt: transient", "attempt: sent", "receipt: delivered", "reply: reply"]
    assert "HTTP 503" in path.timeline[1][2] and "DELIVRD" in path.timeline[3][2]
