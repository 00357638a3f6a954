"""On-a-date campaigns (services/campaigns/live/due.py) on both databases, on a frozen clock: the
backfill (due day = the property's date ± the offset, from yesterday on, resumable), due times
in the campaign's zone and in each recipient's zone across daylight-saving changes, firing once
per due day, late due times, a changed date cancelling and recomputing, dates held by events, and
the event's properties in the body sent by the dispatcher."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, event, insert, select, update

from smsconsole import clock
from smsconsole.engine.dispatcher import Dispatcher, DispatchSettings
from smsconsole.models import (
    Campaign,
    CampaignDue,
    CampaignLiveDay,
    CampaignRun,
    Event,
    Message,
    Profile,
)
from smsconsole.runtime import Runtime
from smsconsole.services.campaigns.live import due
from smsconsole.services.campaigns.live.common import LiveCampaign, live_campaigns
from smsconsole.services.profiles import (
    AudienceDefaults,
    prepare_event,
    prepare_profile,
)
from smsconsole.services.profiles.writing import record_events, upsert_profiles
from tests.integration.dispatch_support import add_provider

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
DEFAULTS = AudienceDefaults(region="GB", timezone="UTC")


def date_document(*, timezone: str = "Europe/London", user_timezone: bool = False, body: str | None = None,
                  route: dict[str, str] | None = None, **trigger: Any) -> dict[str, Any]:
    return {"name": "Trip reminder", "type": "date",
            "when": {"timezone": timezone, "user_timezone": user_timezone},
            "who": {"trigger": {"property": "travel_date", "offset_days": -1, "at": "09:00", **trigger}},
            "what": {"route": route or {}, "body": body or "Your trip is tomorrow, {{ profile.name }}"}}


async def add_live(rt: Runtime, document: dict[str, Any], *, since: datetime = NOW) -> tuple[int, int]:
    async with rt.factory() as session, session.begin():
        campaign = Campaign(name=document["name"], type=document["type"], state="running", document=document,
                            created_at=since, updated_at=since, scheduled_at=since)
        session.add(campaign)
        await session.flush()
        run = CampaignRun(campaign_id=campaign.id, number=1, planned_at=since, state="live", document=document,
                          started_at=since, materialized_at=since, suppressed={}, updated_at=since)
        session.add(run)
        await session.flush()
        return campaign.id, run.id


async def the_live(rt: Runtime) -> LiveCampaign:
    async with rt.factory() as session:
        [live] = await live_campaigns(session, types=("date",), include_paused=True)
        return live


async def add_people(rt: Runtime, rows: list[dict[str, Any]]) -> list[int]:
    """Profiles written directly (a date property in its stored form, ISO UTC text)."""
    base = {"phone_raw": None, "phone_status": "valid", "sms_capable": True, "country": "GB", "timezone": None,
            "subscription": "subscribed", "properties": {}, "subscription_at": NOW, "created_at": NOW, "updated_at": NOW}
    async with rt.factory() as session, session.begin():
        result = await session.execute(insert(Profile).returning(Profile.id),
                                       [{**base, "phone": f"+4477009{n:05d}", **row} for n, row in enumerate(rows)])
        return list(result.scalars().all())


def travel(day: str) -> dict[str, Any]:
    return {"properties": {"travel_date": f"{day}T00:00:00Z"}}


async def upsert(rt: Runtime, rows: list[dict[str, Any]]) -> list[int]:
    """Profiles through the import door (upsert_profiles), which tells the date campaigns."""
    types: dict[str, str] = {}
    async with rt.factory() as session, session.begin():
        prepared = [prepare_profile(row, DEFAULTS, types) for row in rows]
        return (await upsert_profiles(session, prepared, source="import", defaults=DEFAULTS)).profile_ids


async def dues(rt: Runtime, campaign_id: int) -> list[tuple[Any, ...]]:
    async with rt.factory() as session:
        rows = await session.execute(
            select(CampaignDue.profile_id, CampaignDue.anchor, CampaignDue.due_day, CampaignDue.state,
                   CampaignDue.due_at, CampaignDue.reason)
            .where(CampaignDue.campaign_id == campaign_id).order_by(CampaignDue.profile_id, CampaignDue.due_day))
        return [tuple(row) for row in rows]


async def tick(rt: Runtime, at: datetime) -> int:
    """What the engine's live tick does for date campaigns at `at`: resolve, then fire."""
    clock.freeze(at)
    async with rt.factory() as session, session.begin():
        await due.resolve_due(session, now=at)
        return await due.fire_due(session, now=at)


async def campaign_messages(rt: Runtime, campaign_id: int) -> list[Message]:
    async with rt.factory() as session:
        return list(await session.scalars(select(Message).where(Message.campaign_id == campaign_id)
                                          .order_by(Message.id)))


async def counters(rt: Runtime, campaign_id: int) -> dict[str, int]:
    async with rt.factory() as session:
        rows = list(await session.scalars(select(CampaignLiveDay).where(CampaignLiveDay.campaign_id == campaign_id)))
    return {name: sum(getattr(r, name) for r in rows) for name in ("triggered", "queued", "late", "not_in_filter")}


# --- backfill -----------------------------------------------------------------------------------------


async def test_backfill_writes_a_due_day_per_dated_person_from_yesterday_on(runtime: Runtime) -> None:
    clock.freeze(NOW)
    campaign_id, run_id = await add_live(runtime, date_document())
    later, today, yesterday, _gone_by, _none, _text, number = await add_people(runtime, [
        travel("2026-12-24"), travel("2026-12-02"), travel("2026-12-01"), travel("2026-11-30"), {},
        {"properties": {"travel_date": "soon"}}, {"properties": {"travel_date": 20261224}}])
    inserted = await due.backfill_due(runtime.factory, await the_live(runtime), chunk=2)
    assert inserted == 3
    # offset -1: the day before; 2026-11-30 would be due 11-29, before yesterday (11-30): dropped
    assert await dues(runtime, campaign_id) == [
        (later, "profile", date(2026, 12, 23), "pending", None, None),
        (today, "profile", date(2026, 12, 1), "pending", None, None),
        (yesterday, "profile", date(2026, 11, 30), "pending", None, None)]
    async with runtime.factory() as session:
        run = await session.get(CampaignRun, run_id)
        assert run is not None and (run.qualified, run.cursor) == (3, number)
    # Done once: a second call writes nothing.
    assert await due.backfill_due(runtime.factory, await the_live(runtime)) == 0


async def test_backfill_resumes_from_its_cursor(runtime: Runtime) -> None:
    clock.freeze(NOW)
    campaign_id, run_id = await add_live(runtime, date_document())
    first, second = await add_people(runtime, [travel("2026-12-10"), travel("2026-12-11")])
    async with runtime.factory() as session, session.begin():  # as if killed after the first chunk
        await session.execute(update(CampaignRun).where(CampaignRun.id == run_id).values(cursor=first))
    assert await due.backfill_due(runtime.factory, await the_live(runtime), chunk=1) == 1
    assert [row[0] for row in await dues(runtime, campaign_id)] == [second]


# --- due times and firing ----------------------------------------------------------------------------


@pytest.mark.parametrize(("timezone", "travel_day", "at", "due_at"), [
    # New York springs forward at 02:00 on 2027-03-14: 02:30 does not exist, the first instant after is 03:00 EDT
    ("America/New_York", "2027-03-15", "02:30", datetime(2027, 3, 14, 7, 0, tzinfo=UTC)),
    # ... and falls back at 02:00 on 2027-11-07: 01:30 happens twice, the first (EDT) counts
    ("America/New_York", "2027-11-08", "01:30", datetime(2027, 11, 7, 5, 30, tzinfo=UTC)),
    ("Europe/London", "2027-06-11", "09:00", datetime(2027, 6, 10, 8, 0, tzinfo=UTC)),
    ("Asia/Kolkata", "2027-01-01", "09:00", datetime(2026, 12, 31, 3, 30, tzinfo=UTC)),
], ids=["spring-forward-gap", "fall-back-repeat", "london-summer", "kolkata"])
async def test_due_time_in_the_campaign_zone_fires_once_at_its_time(
        runtime: Runtime, timezone: str, travel_day: str, at: str, due_at: datetime) -> None:
    since = due_at - timedelta(days=5)
    clock.freeze(since)
    campaign_id, _ = await add_live(runtime, date_document(timezone=timezone, at=at), since=since)
    [person] = await add_people(runtime, [travel(travel_day)])
    await due.backfill_due(runtime.factory, await the_live(runtime))
    assert await tick(runtime, since) == 0
    assert (await dues(runtime, campaign_id))[0][4] is None  # not resolved while the day is far
    assert await tick(runtime, due_at - timedelta(days=1)) == 0
    [row] = await dues(runtime, campaign_id)
    assert (row[3], row[4]) == ("pending", due_at)
    assert await tick(runtime, due_at - timedelta(seconds=1)) == 0
    assert await tick(runtime, due_at) == 1
    assert await tick(runtime, due_at + timedelta(minutes=1)) == 0
    [message] = await campaign_messages(runtime, campaign_id)
    [row] = await dues(runtime, campaign_id)
    async with runtime.factory() as session:
        due_id = await session.scalar(select(CampaignDue.id).where(CampaignDue.campaign_id == campaign_id))
    assert (message.profile_id, message.dedupe_key, message.state, message.render, message.event_id) == (
        person, f"live:{campaign_id}:due:{due_id}", "queued", True, None)
    assert row[3] == "fired"
    assert (await counters(runtime, campaign_id))["queued"] == 1


async def test_user_time_zones_one_due_time_per_zone_across_the_european_spring_forward(runtime: Runtime) -> None:
    # London springs forward at 01:00 UTC on 2027-03-28: 01:30 local does not exist (-> 02:00 BST).
    since = datetime(2027, 3, 26, 12, 0, tzinfo=UTC)
    clock.freeze(since)
    campaign_id, _ = await add_live(runtime, date_document(timezone="UTC", user_timezone=True, at="01:30",
                                                           offset_days=0), since=since)
    tokyo, london, by_phone, bad_zone = await add_people(runtime, [
        {"timezone": "Asia/Tokyo", **travel("2027-03-28")},
        {"timezone": "Europe/London", **travel("2027-03-28")},
        {"phone": "+12125550100", **travel("2027-03-28")},  # no zone: the phone tells (America/New_York)
        {"timezone": "Mars/Olympus", "phone": "+12125550101", **travel("2027-03-28")}])
    await due.backfill_due(runtime.factory, await the_live(runtime))
    await tick(runtime, since)
    resolved = {row[0]: row[4] for row in await dues(runtime, campaign_id)}
    assert resolved == {tokyo: datetime(2027, 3, 27, 16, 30, tzinfo=UTC),
                        london: datetime(2027, 3, 28, 1, 0, tzinfo=UTC),  # in the gap: 02:00 BST
                        by_phone: datetime(2027, 3, 28, 5, 30, tzinfo=UTC),  # EDT since 03-14
                        bad_zone: datetime(2027, 3, 28, 5, 30, tzinfo=UTC)}
    assert await tick(runtime, datetime(2027, 3, 27, 16, 30, tzinfo=UTC)) == 1
    assert await tick(runtime, datetime(2027, 3, 28, 1, 0, tzinfo=UTC)) == 1
    assert await tick(runtime, datetime(2027, 3, 28, 5, 30, tzinfo=UTC)) == 2
    assert [m.profile_id for m in await campaign_messages(runtime, campaign_id)] == [tokyo, london, by_phone,
                                                                                     bad_zone]


# --- changes --------------------------------------------------------------------------------------------


async def test_a_changed_date_cancels_the_pending_due_and_computes_the_new_one(runtime: Runtime) -> None:
    clock.freeze(NOW)
    [ann] = await upsert(runtime, [{"user_id": "ann", "phone": "+447400123401", "travel_date": "2026-12-24"}])
    campaign_id, _ = await add_live(runtime, date_document())
    await due.backfill_due(runtime.factory, await the_live(runtime))
    assert [(r[2], r[3]) for r in await dues(runtime, campaign_id)] == [(date(2026, 12, 23), "pending")]

    await upsert(runtime, [{"user_id": "ann", "travel_date": "2026-12-28"}])
    assert [(r[2], r[3], r[5]) for r in await dues(runtime, campaign_id)] == [
        (date(2026, 12, 23), "cancelled", "the date changed"), (date(2026, 12, 27), "pending", None)]
    # Another property changes: the due stays.
    await upsert(runtime, [{"user_id": "ann", "name": "Ann", "tier": "gold"}])
    assert [r[3] for r in await dues(runtime, campaign_id)] == ["cancelled", "pending"]
    # Back to the first date: that day is pending again, once.
    await upsert(runtime, [{"user_id": "ann", "travel_date": "2026-12-24"}])
    assert [(r[2], r[3]) for r in await dues(runtime, campaign_id)] == [
        (date(2026, 12, 23), "pending"), (date(2026, 12, 27), "cancelled")]
    # A date in the past: nothing pending.
    await upsert(runtime, [{"user_id": "ann", "travel_date": "2026-10-01"}])
    assert [r[3] for r in await dues(runtime, campaign_id)] == ["cancelled", "cancelled"]
    # Someone new with a date gets a due day at once.
    [bob] = await upsert(runtime, [{"user_id": "bob", "phone": "+447400123402", "travel_date": "2027-01-10"}])
    assert [r for r in await dues(runtime, campaign_id) if r[0] == bob] == [
        (bob, "profile", date(2027, 1, 9), "pending", None, None)]
    assert ann != bob


async def test_a_fired_due_day_never_fires_again_when_the_date_comes_back(runtime: Runtime) -> None:
    clock.freeze(NOW)
    [ann] = await upsert(runtime, [{"user_id": "ann", "phone": "+447400123401", "travel_date": "2026-12-03",
                                    "optin_at": NOW.isoformat()}])
    campaign_id, _ = await add_live(runtime, date_document())
    await due.backfill_due(runtime.factory, await the_live(runtime))
    assert await tick(runtime, datetime(2026, 12, 2, 9, 0, tzinfo=UTC)) == 1
    clock.freeze(datetime(2026, 12, 2, 9, 5, tzinfo=UTC))
    await upsert(runtime, [{"user_id": "ann", "travel_date": "2026-12-04"}])
    await upsert(runtime, [{"user_id": "ann", "travel_date": "2026-12-03"}])
    assert [(r[2], r[3]) for r in await dues(runtime, campaign_id)] == [
        (date(2026, 12, 2), "fired"), (date(2026, 12, 3), "cancelled")]
    assert await tick(runtime, datetime(2026, 12, 2, 9, 6, tzinfo=UTC)) == 0
    assert len(await campaign_messages(runtime, campaign_id)) == 1 and ann


async def test_a_new_zone_resolves_the_due_time_again(runtime: Runtime) -> None:
    clock.freeze(NOW)
    await upsert(runtime, [{"user_id": "ann", "phone": "+447400123401", "timezone": "Europe/London",
                            "travel_date": "2026-12-03"}])
    campaign_id, _ = await add_live(runtime, date_document(timezone="UTC", user_timezone=True))
    await due.backfill_due(runtime.factory, await the_live(runtime))
    await tick(runtime, NOW)
    assert (await dues(runtime, campaign_id))[0][4] == datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    await upsert(runtime, [{"user_id": "ann", "timezone": "Asia/Kolkata"}])
    await tick(runtime, NOW)
    assert (await dues(runtime, campaign_id))[0][4] == datetime(2026, 12, 2, 3, 30, tzinfo=UTC)


async def test_profile_changes_cost_one_query_when_no_date_campaign_is_live(runtime: Runtime) -> None:
    clock.freeze(NOW)
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engine = runtime.factory.kw["bind"].sync_engine
    async with runtime.factory() as session, session.begin():
        event.listen(engine, "before_cursor_execute", count)
        try:
            await due.on_profiles_changed(session, [1, 2, 3], {"travel_date"}, now=NOW, moved=[2])
        finally:
            event.remove(engine, "before_cursor_execute", count)
    assert len(statements) == 1


# --- dates held by events -----------------------------------------------------------------------------


async def record(rt: Runtime, rows: list[dict[str, Any]], *, may_trigger: bool = True) -> None:
    types: dict[str, str] = {}
    async with rt.factory() as session, session.begin():
        prepared = [prepare_event(row, DEFAULTS, types) for row in rows]
        await record_events(session, prepared, source="api", defaults=DEFAULTS, may_trigger=may_trigger)


async def test_event_anchored_dates_one_due_per_event_and_the_backfill_takes_earlier_events(runtime: Runtime) -> None:
    clock.freeze(NOW - timedelta(days=3))
    await record(runtime, [{"user_id": "ann", "phone": "+447400123401", "name": "booking",
                            "properties": {"travel_date": "2026-12-20", "class": "first"}},
                           {"user_id": "bob", "phone": "+447400123402", "name": "booking",
                            "properties": {"travel_date": "2026-12-21", "class": "economy"}}],
                 may_trigger=False)
    clock.freeze(NOW)
    campaign_id, _ = await add_live(runtime, date_document(
        event="booking", where=[{"property": "class", "op": "equals", "value": "first"}]))
    await due.backfill_due(runtime.factory, await the_live(runtime))
    rows = await dues(runtime, campaign_id)
    assert [(r[1].startswith("event:"), r[2]) for r in rows] == [(True, date(2026, 12, 19))]  # bob's is economy
    # New events come through the triggers: a second booking of Ann's is a second due day.
    await record(runtime, [{"user_id": "ann", "name": "booking", "at": NOW.isoformat(),
                            "properties": {"travel_date": "2026-12-02", "class": "first"}}])
    rows = await dues(runtime, campaign_id)
    assert [r[2] for r in rows] == [date(2026, 12, 1), date(2026, 12, 19)]
    assert len({r[1] for r in rows}) == 2


async def test_event_properties_reach_the_body_sent_by_the_dispatcher(runtime: Runtime) -> None:
    await add_provider(runtime, "sb")
    clock.freeze(NOW)
    campaign_id, _ = await add_live(runtime, date_document(
        event="booking", route={"provider": "sb"},
        body="{{ profile.name | default: 'Hi' }}, {{ event.destination | default: 'your trip' }} "
             "on {{ event.travel_date | date: '%d %b' }} ({{ event.name }})"))
    await upsert(runtime, [{"user_id": "ann", "phone": "+447400123401", "name": "Ann", "optin_at": NOW.isoformat()},
                           {"user_id": "bob", "phone": "+447400123402", "name": "Bob", "optin_at": NOW.isoformat()}])
    await record(runtime, [{"user_id": "ann", "name": "booking", "at": NOW.isoformat(),
                            "properties": {"travel_date": "2026-12-03", "destination": "Lisbon"}},
                           {"user_id": "bob", "name": "booking", "at": NOW.isoformat(),
                            "properties": {"travel_date": "2026-12-03", "destination": "Oslo"}}])
    assert await tick(runtime, datetime(2026, 12, 2, 9, 0, tzinfo=UTC)) == 2
    messages = await campaign_messages(runtime, campaign_id)
    assert all(m.event_id is not None for m in messages)
    async with runtime.factory() as session, session.begin():  # Bob's event is gone: his message still goes
        [bobs] = [m for m in messages if m.to_number == "+447400123402"]
        await session.execute(delete(Event).where(Event.id == bobs.event_id))
    async with httpx.AsyncClient(timeout=5) as client:
        dispatcher = Dispatcher(runtime.factory, runtime.box, client, DispatchSettings(batch_size=10))
        while await dispatcher.run_once():
            pass
    sent = {m.to_number: (m.state, m.body) for m in await campaign_messages(runtime, campaign_id)}
    assert sent == {"+447400123401": ("sent", "Ann, Lisbon on 03 Dec (booking)"),
                    "+447400123402": ("sent", "Bob, your trip on  ()")}


async def test_an_edited_date_rule_starts_over_and_a_new_time_resolves_again(runtime: Runtime) -> None:
    clock.freeze(NOW)
    document = date_document()
    campaign_id, run_id = await add_live(runtime, document)
    [person] = await add_people(runtime, [travel("2026-12-10")])
    await due.backfill_due(runtime.factory, await the_live(runtime))
    await tick(runtime, datetime(2026, 12, 8, 12, 0, tzinfo=UTC))
    assert [(r[2], r[4]) for r in await dues(runtime, campaign_id)] == [
        (date(2026, 12, 9), datetime(2026, 12, 9, 9, 0, tzinfo=UTC))]

    async def edit(new: dict[str, Any]) -> None:
        async with runtime.factory() as session, session.begin():
            await due.on_document_changed(session, campaign_id, document, new, now=clock.now())
            await session.execute(update(CampaignRun).where(CampaignRun.id == run_id).values(document=new))

    # A new time of day: the pending due time is computed again.
    later = date_document(at="18:30")
    await edit(later)
    document = later
    await tick(runtime, datetime(2026, 12, 8, 12, 1, tzinfo=UTC))
    assert [(r[2], r[4]) for r in await dues(runtime, campaign_id)] == [
        (date(2026, 12, 9), datetime(2026, 12, 9, 18, 30, tzinfo=UTC))]
    # A new offset: the pending row is cancelled and the backfill (run again) writes the new day.
    week_before = date_document(at="18:30", offset_days=-2)
    await edit(week_before)
    assert await due.backfill_due(runtime.factory, await the_live(runtime)) == 1
    assert [(r[0], r[2], r[3], r[5]) for r in await dues(runtime, campaign_id)] == [
        (person, date(2026, 12, 8), "pending", None),
        (person, date(2026, 12, 9), "cancelled", due.REASON_RULE)]
    assert await tick(runtime, datetime(2026, 12, 8, 18, 30, tzinfo=UTC)) == 1


async def test_through_the_engine_scheduled_live_backfilled_fired_and_sent(runtime: Runtime) -> None:
    """The whole way: scheduled through the campaign service (its trigger checked against the
    catalog), live at its start, backfilled, then the engine's live tick fires the due time and
    the dispatcher sends the rendered body; a changed date made through the import door moves
    the next one."""
    from smsconsole.engine.campaigns import CampaignScheduler
    from smsconsole.services.campaigns import crud
    from smsconsole.services.campaigns.runs import start_due_runs

    clock.freeze(NOW)
    await add_provider(runtime, "sb")
    await upsert(runtime, [{"user_id": "ann", "phone": "+447400123401", "name": "Ann", "optin_at": NOW.isoformat(),
                            "travel_date": "2026-12-03"}])
    document = date_document(route={"provider": "sb"}, body="{{ profile.name }}, you travel on "
                             "{{ profile.travel_date | date: '%d %B' }}")
    async with runtime.factory() as session, session.begin():
        view = await crud.create_campaign(session, document, actor="test")
        await crud.schedule_campaign(session, view.code, actor="test")
    await start_due_runs(runtime.factory, now=NOW)
    live = await the_live(runtime)
    assert live.campaign_id == view.id and live.run_state == "live"
    assert await due.backfill_due(runtime.factory, live) == 1
    scheduler = CampaignScheduler(runtime.factory)
    async with httpx.AsyncClient(timeout=5) as client:
        dispatcher = Dispatcher(runtime.factory, runtime.box, client, DispatchSettings(batch_size=10))
        for at in (datetime(2026, 12, 2, 8, 59, tzinfo=UTC), datetime(2026, 12, 2, 9, 0, 1, tzinfo=UTC)):
            clock.freeze(at)
            await scheduler.live_tick()
            while await dispatcher.run_once():
                pass
    [message] = await campaign_messages(runtime, view.id)
    assert (message.state, message.body) == ("sent", "Ann, you travel on 03 December")
    clock.freeze(datetime(2026, 12, 2, 10, 0, tzinfo=UTC))
    await upsert(runtime, [{"user_id": "ann", "travel_date": "2026-12-20"}])
    assert [(r[2], r[3]) for r in await dues(runtime, view.id)] == [
        (date(2026, 12, 2), "fired"), (date(2026, 12, 19), "pending")]
