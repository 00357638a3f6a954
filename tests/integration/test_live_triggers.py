"""Live triggers (services/campaigns/live/triggers.py) on both databases, with a frozen clock and
events written through the doors people use (record_events as the API and imports call it, the
ingestion API itself, replies): single action (filters on the event's properties, delay, Who
filter, re-eligibility, limits), inaction waits armed and cancelled (the follow-up in time, too
early, too late, several in one batch), idempotency, opted-out people, stale events and events
from before the campaign went live, paused campaigns, the cost when nothing is live, and the
scheduling check of a trigger's conditions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import insert, select, update

from smsconsole import clock
from smsconsole.listener.app import create_app
from smsconsole.models import (
    Campaign,
    CampaignDue,
    CampaignLiveDay,
    CampaignRun,
    CampaignWait,
    Event,
    Message,
    Profile,
)
from smsconsole.providers.base import InboundReport
from smsconsole.runtime import Runtime
from smsconsole.services import api_keys, providers, replies
from smsconsole.services.campaigns.definition import parse_document
from smsconsole.services.campaigns.live.triggers import TriggerResult, on_events, trigger_problems
from smsconsole.services.campaigns.records import reference_problems
from smsconsole.services.profiles import AudienceDefaults, EventsResult, prepare_event, record_events

NOW = datetime(2026, 12, 24, 10, 0, tzinfo=UTC)
LIVE_SINCE = NOW - timedelta(hours=3)
DEFAULTS = AudienceDefaults(region=None, timezone="UTC")
COUNTERS = ("triggered", "queued", "waits_started", "waits_cancelled", "not_in_filter", "unreachable",
            "not_eligible", "limited", "late")


def action(trigger: dict[str, Any] | None = None, name: str = "Order thanks", **who: Any) -> dict[str, Any]:
    return {"name": name, "type": "action", "when": {"timezone": "UTC"},
            "who": {"trigger": {"event": "order", **(trigger or {})}, **who},
            "what": {"route": {}, "body": "Thanks for your order of {{ event.amount }}"}}


def inaction(trigger: dict[str, Any] | None = None, name: str = "Abandoned cart", **who: Any) -> dict[str, Any]:
    return {"name": name, "type": "inaction", "when": {"timezone": "UTC"},
            "who": {"trigger": {"event": "add_to_cart", "cancel_event": "checkout", "within_minutes": "5m",
                                **(trigger or {})}, **who},
            "what": {"route": {}, "body": "Your cart is waiting"}}


async def add_live(rt: Runtime, doc: dict[str, Any], *, run_state: str = "live", state: str = "running",
                   live_since: datetime = LIVE_SINCE) -> int:
    async with rt.factory() as session, session.begin():
        campaign = Campaign(name=doc["name"], type=doc["type"], state=state, document=doc, created_at=live_since,
                            updated_at=live_since, scheduled_at=live_since)
        session.add(campaign)
        await session.flush()
        session.add(CampaignRun(campaign_id=campaign.id, number=1, planned_at=live_since, state=run_state,
                                document=doc, started_at=live_since, materialized_at=live_since, suppressed={},
                                updated_at=live_since))
        return campaign.id


async def add_people(rt: Runtime, *rows: dict[str, Any]) -> list[int]:
    base = {"phone_raw": None, "phone_status": "valid", "sms_capable": True, "country": "GB", "timezone": None,
            "subscription": "subscribed", "properties": {}, "subscription_at": LIVE_SINCE, "created_at": LIVE_SINCE, "updated_at": LIVE_SINCE}
    async with rt.factory() as session, session.begin():
        result = await session.execute(insert(Profile).returning(Profile.id), [
            {**base, "user_id": f"u{n}", "phone": f"+4477009{n:05d}", **row} for n, row in enumerate(rows)])
        return list(result.scalars().all())


def ev(user: int, name: str, at: datetime | None = None, **properties: Any) -> dict[str, Any]:
    return {"user_id": f"u{user}", "name": name, "at": (at or clock.now()).isoformat(), "properties": properties}


async def record(rt: Runtime, *events: dict[str, Any], may_trigger: bool = True) -> EventsResult:
    types: dict[str, dict[str, str]] = {}
    prepared = [prepare_event(e, DEFAULTS, types.setdefault(e["name"], {})) for e in events]
    async with rt.factory() as session, session.begin():
        return await record_events(session, prepared, source="api", defaults=DEFAULTS, may_trigger=may_trigger)


async def outbox(rt: Runtime, campaign_id: int) -> list[Message]:
    async with rt.factory() as session:
        return list(await session.scalars(select(Message).where(Message.campaign_id == campaign_id)
                                          .order_by(Message.id)))


async def counters(rt: Runtime, campaign_id: int) -> dict[str, int]:
    async with rt.factory() as session:
        rows = list(await session.scalars(select(CampaignLiveDay).where(CampaignLiveDay.campaign_id == campaign_id)))
    return {name: sum(getattr(row, name) for row in rows) for name in COUNTERS if any(getattr(r, name) for r in rows)}


async def waits(rt: Runtime, campaign_id: int) -> list[CampaignWait]:
    async with rt.factory() as session:
        return list(await session.scalars(select(CampaignWait).where(CampaignWait.campaign_id == campaign_id)
                                          .order_by(CampaignWait.id)))


async def event_id(rt: Runtime, name: str, at: datetime) -> int:
    async with rt.factory() as session:
        found = await session.scalar(select(Event.id).where(Event.name == name, Event.at == at))
        assert found is not None
        return found


# --- single action ------------------------------------------------------------------------------


async def test_an_event_queues_its_message_once_with_the_event_and_its_key(runtime: Runtime) -> None:
    clock.freeze(NOW)
    campaign_id = await add_live(runtime, action())
    [person] = await add_people(runtime, {})
    result = await record(runtime, ev(0, "order", amount=120))
    assert (result.recorded, result.queued) == (1, 1)
    [message] = await outbox(runtime, campaign_id)
    order = await event_id(runtime, "order", NOW)
    assert (message.profile_id, message.event_id, message.dedupe_key, message.state, message.kind, message.render,
            message.next_attempt_at) == (person, order, f"live:{campaign_id}:ev:{order}", "queued", "campaign", True,
                                         None)
    # The same event again (an API retry, a re-sent batch) is no new event: nothing more is queued.
    again = await record(runtime, ev(0, "order", amount=120))
    assert (again.recorded, again.duplicates, again.queued) == (0, 1, 0)
    assert len(await outbox(runtime, campaign_id)) == 1
    # Handing the same event to the triggers twice (a retried transaction) queues nothing either.
    async with runtime.factory() as session, session.begin():
        assert (await on_events(session, [order], now=NOW)).queued == 0
    assert len(await outbox(runtime, campaign_id)) == 1
    assert (await counters(runtime, campaign_id))["queued"] == 1


async def test_other_events_and_events_failing_the_where_conditions_trigger_nothing(runtime: Runtime) -> None:
    clock.freeze(NOW)
    campaign_id = await add_live(runtime, action({"where": [{"property": "amount", "op": "greater", "value": 100},
                                                            {"property": "currency", "op": "equals", "value": "GBP"}]}))
    people = await add_people(runtime, {}, {}, {}, {})
    await record(runtime, ev(0, "order", amount=150, currency="GBP"), ev(1, "order", amount=50, currency="GBP"),
                 ev(2, "order", amount=150, currency="EUR"), ev(3, "order", currency="GBP"),
                 ev(1, "page_view", amount=500, currency="GBP"))
    assert [m.profile_id for m in await outbox(runtime, campaign_id)] == [people[0]]
    assert await counters(runtime, campaign_id) == {"triggered": 1, "queued": 1}


async def test_delay_sends_after_the_event(runtime: Runtime) -> None:
    clock.freeze(NOW)
    campaign_id = await add_live(runtime, action({"delay_minutes": "2h"}))
    await add_people(runtime, {})
    at = NOW - timedelta(minutes=10)
    await record(runtime, ev(0, "order", at=at))
    [message] = await outbox(runtime, campaign_id)
    assert message.next_attempt_at == at + timedelta(hours=2)


async def test_an_opted_out_person_s_event_is_recorded_and_sends_nothing(runtime: Runtime) -> None:
    clock.freeze(NOW)
    campaign_id = await add_live(runtime, action())
    await add_people(runtime, {"subscription": "unsubscribed"}, {"phone_status": "missing", "phone": None})
    result = await record(runtime, ev(0, "order"), ev(1, "order"))
    assert (result.recorded, result.queued) == (2, 0)
    assert await outbox(runtime, campaign_id) == []
    assert await counters(runtime, campaign_id) == {"triggered": 2, "unreachable": 2}
    # An opt-out in the same batch as the trigger: the subscription changes first, nothing is queued.
    await add_people(runtime, {"user_id": "stopper"})
    stop_at = (NOW - timedelta(seconds=1)).isoformat()
    await record(runtime, {"user_id": "stopper", "name": "sms_optout", "at": stop_at},
                 {"user_id": "stopper", "name": "order", "at": NOW.isoformat()})
    assert await outbox(runtime, campaign_id) == []
    assert await counters(runtime, campaign_id) == {"triggered": 3, "unreachable": 3}


async def test_who_filter_reeligibility_and_limits_apply(runtime: Runtime) -> None:
    clock.freeze(NOW)
    gb = {"conditions": [{"field": "country", "op": "equals", "value": "GB"}]}
    campaign_id = await add_live(runtime, action({"reeligible": "once"}, definition=gb, daily_limit=2))
    people = await add_people(runtime, {}, {"country": "US"}, {}, {})
    await record(runtime, ev(0, "order", NOW - timedelta(minutes=3)), ev(0, "order", NOW - timedelta(minutes=2)),
                 ev(1, "order", NOW - timedelta(minutes=3)))
    assert [m.profile_id for m in await outbox(runtime, campaign_id)] == [people[0]]
    # The daily budget keeps the earliest events.
    await record(runtime, ev(0, "order", NOW - timedelta(minutes=1)), ev(3, "order"),
                 ev(2, "order", NOW - timedelta(seconds=30)))
    assert [m.profile_id for m in await outbox(runtime, campaign_id)] == [people[0], people[2]]
    assert await counters(runtime, campaign_id) == {"triggered": 6, "queued": 2, "not_in_filter": 1,
                                                    "not_eligible": 2, "limited": 1}


async def test_stale_events_are_counted_late_and_earlier_ones_are_ignored(runtime: Runtime) -> None:
    clock.freeze(NOW)
    campaign_id = await add_live(runtime, action())
    await add_people(runtime, {}, {}, {})
    await record(runtime, ev(0, "order", NOW - timedelta(hours=1, seconds=1)),  # recorded too late
                 ev(1, "order", LIVE_SINCE - timedelta(seconds=1)),  # before the campaign went live
                 ev(2, "order", NOW - timedelta(minutes=59)))
    assert len(await outbox(runtime, campaign_id)) == 1
    assert await counters(runtime, campaign_id) == {"triggered": 2, "queued": 1, "late": 1}


async def test_paused_stopped_and_ended_campaigns_take_no_trigger(runtime: Runtime) -> None:
    clock.freeze(NOW)
    paused = await add_live(runtime, action(name="Paused"), run_state="paused", state="paused")
    stopped = await add_live(runtime, action(name="Stopped"), run_state="stopped", state="stopped")
    ended = await add_live(runtime, {**action(name="Ended"), "when": {"timezone": "UTC", "end": "2026-12-24 09:00"}})
    await add_people(runtime, {})
    result = await record(runtime, ev(0, "order"))
    assert (result.recorded, result.queued) == (1, 0)
    for campaign_id in (paused, stopped, ended):
        assert await outbox(runtime, campaign_id) == []
        assert await counters(runtime, campaign_id) == {}


async def test_a_campaign_whose_segment_is_gone_is_skipped_and_the_event_still_recorded(runtime: Runtime) -> None:
    clock.freeze(NOW)
    broken = await add_live(runtime, action(name="Broken", segment="Deleted VIP"))
    working = await add_live(runtime, action(name="Working"))
    await add_people(runtime, {})
    result = await record(runtime, ev(0, "order"))
    assert (result.recorded, result.queued) == (1, 1)
    assert (await outbox(runtime, broken), len(await outbox(runtime, working))) == ([], 1)


async def test_record_events_can_leave_the_triggers_out(runtime: Runtime) -> None:
    clock.freeze(NOW)
    campaign_id = await add_live(runtime, action())
    await add_people(runtime, {})
    result = await record(runtime, ev(0, "order"), may_trigger=False)
    assert (result.recorded, result.queued) == (1, 0)
    assert await outbox(runtime, campaign_id) == []


async def test_several_campaigns_take_the_same_event(runtime: Runtime) -> None:
    clock.freeze(NOW)
    first = await add_live(runtime, action(name="First"))
    second = await add_live(runtime, action({"where": [{"property": "amount", "op": "less", "value": 10}]},
                                            name="Second"))
    cart = await add_live(runtime, inaction({"event": "order"}))
    await add_people(runtime, {})
    result = await record(runtime, ev(0, "order", amount=5))
    assert (result.queued, len(await outbox(runtime, first)), len(await outbox(runtime, second))) == (2, 1, 1)
    assert [w.state for w in await waits(runtime, cart)] == ["pending"]


# --- inaction ----------------------------------------------------------------------------------


async def test_a_trigger_event_arms_one_wait_and_the_follow_up_in_time_cancels_it(runtime: Runtime) -> None:
    clock.freeze(NOW)
    campaign_id = await add_live(runtime, inaction())
    [person] = await add_people(runtime, {})
    result = await record(runtime, ev(0, "add_to_cart"))
    assert (result.queued, result.recorded) == (0, 1)
    [wait] = await waits(runtime, campaign_id)
    cart = await event_id(runtime, "add_to_cart", NOW)
    assert (wait.profile_id, wait.event_id, wait.state, wait.started_at, wait.due_at, wait.run_id is not None) == (
        person, cart, "pending", NOW, NOW + timedelta(minutes=5), True)
    # Another add_to_cart while waiting is part of the same wait.
    clock.freeze(NOW + timedelta(minutes=1))
    await record(runtime, ev(0, "add_to_cart", item="socks"))
    assert len(await waits(runtime, campaign_id)) == 1
    # The checkout just before the end of the window cancels it.
    clock.freeze(NOW + timedelta(minutes=5))
    await record(runtime, ev(0, "checkout"))
    [wait] = await waits(runtime, campaign_id)
    checkout = await event_id(runtime, "checkout", NOW + timedelta(minutes=5))
    assert (wait.state, wait.ended_event_id, wait.ended_at, wait.reason) == (
        "cancelled", checkout, NOW + timedelta(minutes=5), "follow-up event checkout arrived in time")
    assert await outbox(runtime, campaign_id) == []
    assert await counters(runtime, campaign_id) == {"triggered": 2, "waits_started": 1, "waits_cancelled": 1}
    # A new add_to_cart arms a new wait.
    await record(runtime, ev(0, "add_to_cart", item="hat"))
    assert [w.state for w in await waits(runtime, campaign_id)] == ["cancelled", "pending"]


async def test_a_follow_up_too_early_or_too_late_cancels_nothing(runtime: Runtime) -> None:
    clock.freeze(NOW)
    campaign_id = await add_live(runtime, inaction())
    await add_people(runtime, {}, {})
    # Person 0 checked out before adding to the cart; person 1 after the window closed (the engine
    # has not fired the wait yet).
    await record(runtime, ev(0, "checkout", NOW - timedelta(seconds=1)), ev(0, "add_to_cart"),
                 ev(1, "add_to_cart"))
    clock.freeze(NOW + timedelta(minutes=5, seconds=1))
    await record(runtime, ev(1, "checkout"))
    assert [w.state for w in await waits(runtime, campaign_id)] == ["pending", "pending"]
    assert (await counters(runtime, campaign_id)).get("waits_cancelled") is None


async def test_one_batch_is_taken_in_time_order(runtime: Runtime) -> None:
    clock.freeze(NOW)
    campaign_id = await add_live(runtime, inaction())
    [person] = await add_people(runtime, {})
    # Given out of order: add_to_cart, checkout, add_to_cart again.
    await record(runtime, ev(0, "add_to_cart", NOW - timedelta(minutes=1), item="hat"),
                 ev(0, "checkout", NOW - timedelta(minutes=3)), ev(0, "add_to_cart", NOW - timedelta(minutes=4)))
    first, second = await waits(runtime, campaign_id)
    assert (first.state, first.started_at, first.ended_at) == ("cancelled", NOW - timedelta(minutes=4),
                                                               NOW - timedelta(minutes=3))
    assert (second.state, second.started_at, second.due_at, second.profile_id) == (
        "pending", NOW - timedelta(minutes=1), NOW + timedelta(minutes=4), person)
    assert await counters(runtime, campaign_id) == {"triggered": 2, "waits_started": 2, "waits_cancelled": 1}
    # The next batch checks out (ending the pending wait) and fills a new cart: a new wait takes its place.
    await record(runtime, ev(0, "add_to_cart", NOW, item="scarf"), ev(0, "checkout", NOW - timedelta(seconds=30)))
    assert [(w.state, w.started_at) for w in await waits(runtime, campaign_id)][1:] == [
        ("cancelled", NOW - timedelta(minutes=1)), ("pending", NOW)]


async def test_cancel_where_decides_which_follow_up_counts(runtime: Runtime) -> None:
    clock.freeze(NOW)
    campaign_id = await add_live(runtime, inaction({"cancel_where": [
        {"property": "status", "op": "equals", "value": "paid"}]}))
    await add_people(runtime, {})
    await record(runtime, ev(0, "add_to_cart"))
    clock.freeze(NOW + timedelta(minutes=1))
    await record(runtime, ev(0, "checkout", status="failed"))
    assert [w.state for w in await waits(runtime, campaign_id)] == ["pending"]
    clock.freeze(NOW + timedelta(minutes=2))
    await record(runtime, ev(0, "checkout", status="paid"))
    assert [w.state for w in await waits(runtime, campaign_id)] == ["cancelled"]


async def test_when_the_follow_up_is_the_trigger_event_the_next_one_restarts_the_wait(runtime: Runtime) -> None:
    clock.freeze(NOW)
    campaign_id = await add_live(runtime, inaction({"event": "visit", "cancel_event": "visit", "within_minutes": "1d"}))
    await add_people(runtime, {})
    await record(runtime, ev(0, "visit"))
    assert [w.state for w in await waits(runtime, campaign_id)] == ["pending"]
    clock.freeze(NOW + timedelta(hours=3))
    # Back within the day: no reminder for the first visit, the day starts again from this one.
    await record(runtime, ev(0, "visit"))
    first, second = await waits(runtime, campaign_id)
    assert (first.state, second.state, second.started_at) == ("cancelled", "pending", NOW + timedelta(hours=3))


async def test_a_person_the_reeligibility_rule_leaves_out_gets_no_wait(runtime: Runtime) -> None:
    clock.freeze(NOW)
    campaign_id = await add_live(runtime, inaction({"reeligible": "after_days", "reeligible_days": 7}))
    people = await add_people(runtime, {}, {})
    async with runtime.factory() as session, session.begin():  # person 0 had this campaign's message 2 days ago
        session.add(Message(kind="campaign", profile_id=people[0], to_number="+447700900000", body="", encoding="GSM-7",
                            segments=1, state="delivered", campaign_id=campaign_id, dedupe_key="earlier",
                            created_at=NOW - timedelta(days=2), updated_at=NOW - timedelta(days=2)))
    await record(runtime, ev(0, "add_to_cart"), ev(1, "add_to_cart"))
    assert [w.profile_id for w in await waits(runtime, campaign_id)] == [people[1]]
    assert await counters(runtime, campaign_id) == {"triggered": 2, "waits_started": 1, "not_eligible": 1}


async def test_stale_trigger_events_arm_nothing_but_late_follow_ups_still_cancel(runtime: Runtime) -> None:
    clock.freeze(NOW)
    campaign_id = await add_live(runtime, inaction({"within_minutes": "2h"}))
    people = await add_people(runtime, {}, {})
    await record(runtime, ev(0, "add_to_cart", NOW - timedelta(hours=1, minutes=1)), ev(1, "add_to_cart"))
    [wait] = await waits(runtime, campaign_id)
    assert wait.profile_id == people[1]
    # The checkout happened 10 minutes after the cart but is recorded 70 minutes late: it still
    # proves the person checked out in time.
    clock.freeze(NOW + timedelta(hours=1, minutes=10))
    await record(runtime, ev(1, "checkout", NOW + timedelta(minutes=10)))
    [wait] = await waits(runtime, campaign_id)
    assert wait.state == "cancelled"
    assert await counters(runtime, campaign_id) == {"triggered": 2, "waits_started": 1, "waits_cancelled": 1,
                                                    "late": 1}


async def test_a_concurrently_armed_wait_is_kept_and_none_is_added(runtime: Runtime) -> None:
    clock.freeze(NOW)
    campaign_id = await add_live(runtime, inaction())
    [person] = await add_people(runtime, {})
    await record(runtime, ev(0, "add_to_cart", NOW - timedelta(minutes=1)))
    # Another transaction's view: the same person's new add_to_cart arrives; the unique pending
    # wait per (campaign, person) keeps one.
    async with runtime.factory() as session, session.begin():
        await session.execute(update(CampaignWait).values(due_at=NOW - timedelta(seconds=1)))
    await record(runtime, ev(0, "add_to_cart"))
    rows = await waits(runtime, campaign_id)
    assert [(w.state, w.profile_id) for w in rows] == [("pending", person)]


# --- on a date, anchored on an event -----------------------------------------------------------


async def test_a_date_campaign_takes_its_dates_from_fresh_matching_events(runtime: Runtime) -> None:
    clock.freeze(NOW)
    await add_people(runtime, {}, {}, {})
    await record(runtime, ev(0, "booking", NOW - timedelta(days=30), travel_date="2026-01-01", seats=1))  # the catalog
    campaign_id = await add_live(runtime, {
        "name": "Trip tomorrow", "type": "date", "when": {"timezone": "UTC"},
        "who": {"trigger": {"event": "booking", "property": "travel_date", "offset_days": -1, "at": "09:00",
                            "where": [{"property": "seats", "op": "greater", "value": 1}]}},
        "what": {"route": {}, "body": "Your trip is tomorrow"}})
    await record(runtime, ev(0, "booking", travel_date="2026-12-30", seats=2),
                 ev(1, "booking", travel_date="2026-12-30", seats=1),  # fails the where
                 ev(2, "booking", NOW - timedelta(hours=2), travel_date="2026-12-30", seats=2))  # late
    async with runtime.factory() as session:
        dues = list(await session.scalars(select(CampaignDue).where(CampaignDue.campaign_id == campaign_id)))
    booking = await event_id(runtime, "booking", NOW)
    assert [(d.event_id, d.due_day.isoformat(), d.state) for d in dues] == [(booking, "2026-12-29", "pending")]
    assert (await counters(runtime, campaign_id))["late"] == 1


# --- other doors -------------------------------------------------------------------------------


async def test_the_ingestion_api_triggers_and_pokes_the_dispatcher(runtime: Runtime) -> None:
    clock.freeze(NOW)
    campaign_id = await add_live(runtime, action())
    await add_people(runtime, {})
    async with runtime.factory() as session, session.begin():
        _, key = await api_keys.create_api_key(session, "tests", "test")
    pokes: list[int] = []
    app = create_app(runtime.factory, box=runtime.box, engine_state=lambda: "running", poke=lambda: pokes.append(1))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://listener.test") as client:
        headers = {"Authorization": f"Bearer {key}"}
        body = {"user_id": "u0", "name": "order", "at": NOW.isoformat(), "properties": {"amount": 12}}
        first = await client.post("/v1/events", json=body, headers=headers)
        retry = await client.post("/v1/events", json=body, headers=headers)
        other = await client.post("/v1/events", json={**body, "name": "page_view"}, headers=headers)
    assert [first.status_code, retry.status_code, other.status_code] == [201, 200, 201]
    assert len(await outbox(runtime, campaign_id)) == 1
    assert pokes == [1]


async def test_a_reply_recorded_as_an_event_triggers(runtime: Runtime) -> None:
    clock.freeze(NOW)
    campaign_id = await add_live(runtime, action({"event": replies.REPLY_EVENT}))
    [person] = await add_people(runtime, {"phone": "+447400123456"})
    async with runtime.factory() as session, session.begin():
        view = await providers.create_provider(session, runtime.box, kind="sandbox", name="sbx", values={},
                                               actor="test")
    for _ in range(2):  # the same reply delivered twice is recorded once
        async with runtime.factory() as session, session.begin():
            await replies.record_inbound(session, provider_id=view.id, provider_name="sbx", via="poll", report=InboundReport(
                provider_message_id="MO1", sender="+447400123456", recipient="+14155552671", text="Tell me more"))
    [message] = await outbox(runtime, campaign_id)
    assert message.profile_id == person and message.event_id is not None


# --- cost ---------------------------------------------------------------------------------------


@pytest.fixture
async def statements(runtime: Runtime) -> AsyncIterator[list[str]]:
    seen: list[str] = []
    engine = runtime.factory.kw["bind"].sync_engine

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    sa_event.listen(engine, "before_cursor_execute", count)
    yield seen
    sa_event.remove(engine, "before_cursor_execute", count)


async def test_with_no_live_campaign_a_batch_costs_one_query(runtime: Runtime, statements: list[str]) -> None:
    clock.freeze(NOW)
    await add_live(runtime, action(name="Paused"), run_state="paused", state="paused")
    await add_people(runtime, {})
    await record(runtime, ev(0, "order", NOW - timedelta(seconds=2)))  # the catalog learns the event
    types: dict[str, str] = {}
    prepared = [prepare_event(ev(0, "order"), DEFAULTS, types)]
    async with runtime.factory() as session, session.begin():
        statements.clear()
        await record_events(session, prepared, source="api", defaults=DEFAULTS, may_trigger=False)
        without = len(statements)
    prepared = [prepare_event(ev(0, "order", NOW - timedelta(seconds=1)), DEFAULTS, types)]
    async with runtime.factory() as session, session.begin():
        statements.clear()
        await record_events(session, prepared, source="api", defaults=DEFAULTS)
        with_triggers = len(statements)
    assert with_triggers == without + 1
    async with runtime.factory() as session:
        statements.clear()
        assert await on_events(session, [1, 2, 3], now=NOW) == TriggerResult()
        assert len(statements) == 1


# --- checking a trigger when it is scheduled --------------------------------------------------


async def test_trigger_problems_check_conditions_and_the_date_property_against_the_catalog(runtime: Runtime) -> None:
    clock.freeze(NOW)
    await add_people(runtime, {})
    await record(runtime, ev(0, "order", amount=12, placed="2026-12-01"), ev(0, "checkout", status="paid"))

    async def problems(doc: dict[str, Any]) -> list[tuple[str, str]]:
        parsed, _ = parse_document(doc)
        async with runtime.factory() as session:
            return await trigger_problems(session, parsed)

    assert await problems(action({"where": [{"property": "amount", "op": "greater", "value": 100}]})) == []
    found = await problems(action({"where": [{"property": "amount", "op": "greater", "value": 100},
                                             {"property": "amout", "op": "greater", "value": 1},
                                             {"property": "amount", "op": "contains", "value": "x"}]}))
    assert [path for path, _ in found] == ["who.trigger.where.2.property", "who.trigger.where.3.op"]
    assert "unknown property of event 'order' 'amout'" in found[0][1] and "'amount'" in found[0][1]
    found = await problems(inaction({"cancel_where": [{"property": "status", "op": "greater", "value": 1}]}))
    assert [path for path, _ in found] == ["who.trigger.cancel_where.1.op"]
    date_doc = {"name": "Trip", "type": "date", "when": {"timezone": "UTC"},
                "who": {"trigger": {"event": "order", "property": "placed", "offset_days": -1}},
                "what": {"body": "Tomorrow!"}}
    assert await problems(date_doc) == []
    date_doc["who"]["trigger"]["property"] = "amount"
    assert await problems(date_doc) == [
        ("who.trigger.property", "'amount' of event 'order' holds number values; an on-a-date campaign needs a "
                                 "date property")]
    date_doc["who"]["trigger"] = {"property": "renewal"}
    assert await problems(date_doc) == [
        ("who.trigger.property", "no date property 'renewal' is known for profiles; record one first")]


async def test_scheduling_checks_the_trigger_with_the_other_references(runtime: Runtime) -> None:
    parsed, _ = parse_document(action({"where": [{"property": "amount", "op": "greater", "value": 100}]}),
                               strict=True)
    async with runtime.factory() as session:
        found = await reference_problems(session, parsed)
    assert ("who.trigger.where.1.property", "unknown property of event 'order' 'amount'") in found
