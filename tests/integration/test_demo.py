"""The demo database has something on every screen: a week of messages in each state with their
attempts and receipts, replies and STOPs (whose profiles are unsubscribed, and who get nothing
after), the same for the same seed and time."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from smsconsole import clock
from smsconsole.models import Consent, InboundMessage, Message, MessageAttempt, Profile, Receipt
from smsconsole.runtime import Runtime
from smsconsole.services import demo
from smsconsole.services.stats import delivery_stats, recent_messages

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


async def _traffic(runtime: Runtime) -> list[tuple[str, str, str, str | None]]:
    async with runtime.factory() as session:
        rows = await session.execute(select(Message.to_number, Message.state, Message.body, Message.provider_message_id)
                                     .order_by(Message.id))
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def test_the_demo_has_messages_in_each_state_receipts_replies_and_stops(runtime: Runtime) -> None:
    clock.freeze(NOW)
    summary = await demo.create_demo(runtime.factory, runtime.box, profiles_count=300, days=14)
    async with runtime.factory() as session:
        states = dict((await session.execute(
            select(Message.state, func.count()).where(Message.kind == "transactional").group_by(Message.state))).all())
        assert {"delivered", "undelivered", "failed", "sent", "unknown"} <= set(states), states
        assert sum(states.values()) == summary.messages
        oldest = await session.scalar(select(func.min(Message.created_at)))
        assert oldest is not None and (NOW - oldest).days >= 3  # spread over the week, not one burst

        # every settled message has its attempt and a receipt saying the same
        receipts = (await session.execute(
            select(Receipt.state, Message.state).join(Message, Message.id == Receipt.message_id)
            .where(Message.kind == "transactional"))).all()
        assert receipts and all(receipt == message for receipt, message in receipts)
        assert {state for state, _ in receipts} >= {"delivered", "undelivered", "failed"}
        assert summary.receipts == len(receipts)
        without_attempt = await session.scalar(select(func.count()).select_from(Message).where(
            Message.state.not_in(("queued", "suppressed", "control")),  # those never left: no attempt
            ~select(MessageAttempt.id).where(MessageAttempt.message_id == Message.id).exists()))
        assert without_attempt == 0

        inbound = list(await session.scalars(select(InboundMessage).order_by(InboundMessage.received_at)))
        assert len(inbound) == summary.replies >= 3
        assert {"opt_out", "help", "reply"} <= {i.action for i in inbound}
        assert all(i.received_at <= NOW and i.answers_message_id is not None for i in inbound)
        stops = [i for i in inbound if i.action == "opt_out"]
        assert stops and summary.opt_outs == len(stops)
        for stop in stops:
            holders = list(await session.scalars(select(Profile).where(Profile.phone == stop.sender)))
            assert holders and all(p.subscription == "unsubscribed" and p.subscription_at == stop.received_at
                                   for p in holders)
            consent = await session.scalar(select(Consent).where(Consent.phone == stop.sender,
                                                                 Consent.source == "keyword"))
            assert consent is not None and consent.state == "unsubscribed" and consent.at == stop.received_at
            later = await session.scalar(select(func.count()).select_from(Message).where(
                Message.to_number == stop.sender, Message.kind != "auto", Message.created_at > stop.received_at))
            assert later == 0  # nothing was sent to a number after its STOP
        auto = list(await session.scalars(select(Message).where(Message.kind == "auto")))
        assert auto and all(m.state == "delivered" and m.sent_at is not None for m in auto)

        # what Home and Stats show: a tested provider, the last hour and the Stats list not empty
        hour = await delivery_stats(session, "hour")
        assert [(p.name, p.health) for p in hour.providers] == [("sandbox", "healthy")]
        assert hour.total.sent and hour.total.delivered and sum(hour.per_minute)
        assert len(await recent_messages(session, limit=20)) == 20


async def test_the_demo_is_the_same_for_the_same_seed_and_time(runtime: Runtime) -> None:
    clock.freeze(NOW)
    await demo.create_demo(runtime.factory, runtime.box, profiles_count=60, days=7)
    first = await _traffic(runtime)
    async with runtime.factory() as session, session.begin():
        await demo.reset(session)
    await demo.create_demo(runtime.factory, runtime.box, profiles_count=60, days=7)
    assert await _traffic(runtime) == first and first


async def test_the_demo_has_an_ab_campaign_with_results(runtime: Runtime) -> None:
    """Yesterday's A/B campaign with a control group: its report has every arm, conversions the
    conversions service attributed, replies linked to their arm, and control rows never sent."""
    from smsconsole.services.campaigns.report import build_report
    from smsconsole.services.replies import replies_by_arm

    clock.freeze(NOW)
    summary = await demo.create_demo(runtime.factory, runtime.box, profiles_count=600, days=14)
    async with runtime.factory() as session:
        campaign_id = int(summary.campaign[1:]) if summary.campaign else 0
        report = await build_report(session, campaign_id)
        assert report.goal and report.state == "completed" and report.qualified == 600
        arms = {arm.arm: arm for arm in report.arms}
        assert set(arms) == {"A", "B", "control"} and all(arm.reached for arm in arms.values())
        assert report.total.assigned == summary.campaign_messages
        assert report.total.conversions == summary.conversions > 0
        assert [lift.variant for lift in report.lift] == ["A", "B"]
        assert report.series and report.latency and report.held_back["sampled_out"] > 0
        linked = await replies_by_arm(session, campaign_id)
        assert sum(r.count for r in linked) == report.total.replies > 0
        control = list(await session.scalars(select(Message).where(Message.variant == "control")))
        assert control and all(m.state == "control" and m.sent_at is None for m in control)
