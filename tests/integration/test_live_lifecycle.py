"""A live campaign's life on both databases, on a frozen clock advanced by hand, through the
engine's calls (tests/integration/test_live_waits.py `turn`): it goes live at its start with one
run that settling never completes; pause keeps its waits pending and takes no trigger, resume
fires them (or expires those past the misfire grace), stop ends them; the target limit and the end
time end it (what was pending ends, the campaign completes once its messages are out); the daily
limit holds a day's extra waits back; an edit reaches the live run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select

from smsconsole import clock
from smsconsole.engine.campaigns import CampaignScheduler
from smsconsole.models import Campaign, CampaignRun, Profile, Setting
from smsconsole.runtime import Runtime
from smsconsole.services.campaigns import crud
from smsconsole.services.campaigns.runs import settle_runs, start_due_runs
from smsconsole.services.errors import ValidationError
from tests.integration.test_live_waits import (
    T0,
    add_waits,
    cart_document,
    day_counts,
    dispatch,
    event,
    go_live,
    messages,
    people,
    turn,
    waits,
)


async def campaign_and_runs(rt: Runtime, campaign_id: int) -> tuple[Campaign, list[CampaignRun]]:
    async with rt.factory() as session:
        campaign = await session.get(Campaign, campaign_id)
        assert campaign is not None
        runs = list(await session.scalars(select(CampaignRun).where(CampaignRun.campaign_id == campaign_id)))
        return campaign, runs


async def test_it_goes_live_at_its_start_with_one_run_that_settling_never_completes(runtime: Runtime) -> None:
    clock.freeze(T0)
    ids = await people(runtime, ["ann"])
    doc = cart_document(when={"timezone": "Europe/London", "start": "2026-12-02 10:00"})
    start = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    campaign_id = await go_live(runtime, doc)
    campaign, runs = await campaign_and_runs(runtime, campaign_id)
    assert (campaign.state, campaign.next_run_at, runs) == ("scheduled", start, [])
    scheduler = CampaignScheduler(runtime.factory)
    async with httpx.AsyncClient(timeout=5) as client:
        clock.freeze(start - timedelta(minutes=10))
        await event(runtime, "ann", "add_to_cart", start - timedelta(minutes=10))  # before it is live: nothing
        await turn(runtime, scheduler, start - timedelta(seconds=1), client)
        assert (await campaign_and_runs(runtime, campaign_id))[1] == []
        await turn(runtime, scheduler, start + timedelta(seconds=2), client)
        campaign, [run] = await campaign_and_runs(runtime, campaign_id)
        assert (campaign.state, campaign.next_run_at) == ("running", None)
        assert (run.state, run.planned_at, run.started_at, run.number) == ("live", start, start + timedelta(seconds=2), 1)
        assert run.document["who"]["trigger"]["event"] == "add_to_cart"
        for hours in (1, 24, 24 * 40):
            await turn(runtime, scheduler, start + timedelta(hours=hours), client)
    campaign, runs = await campaign_and_runs(runtime, campaign_id)
    assert [(r.state, r.number) for r in runs] == [("live", 1)] and campaign.state == "running"
    assert await waits(runtime, campaign_id) == {} and ids["ann"] not in await messages(runtime, campaign_id)


async def test_the_engine_job_of_a_live_campaign_is_at_its_start(runtime: Runtime) -> None:
    """Even on a date campaign delivering in each user's time zone (whose due times, not its run,
    follow the recipients' clocks): the run starts at the start, not a day before."""
    from smsconsole.models import PropertyDef

    async with runtime.factory() as session, session.begin():
        session.add(PropertyDef(scope="profile", name="travel_date", type="date"))
    doc = {"name": "Trip reminder", "type": "date",
           "when": {"timezone": "Asia/Kolkata", "start": "2099-01-01 10:00", "user_timezone": True},
           "who": {"trigger": {"property": "travel_date", "offset_days": -1, "at": "09:00"}},
           "what": {"route": {"provider": "sbx"}, "body": "Your trip is tomorrow"}}
    campaign_id = await go_live(runtime, doc)
    start = datetime(2099, 1, 1, 4, 30, tzinfo=UTC)
    assert (await campaign_and_runs(runtime, campaign_id))[0].next_run_at == start
    scheduler = CampaignScheduler(runtime.factory, rebuild_seconds=3600)
    await scheduler.start()
    try:
        assert scheduler.job_times() == {campaign_id: start}
        assert scheduler._scheduler is not None and scheduler._scheduler.get_job("campaigns-live") is not None
    finally:
        await scheduler.stop()


async def test_an_end_already_past_is_refused_when_scheduling(runtime: Runtime) -> None:
    clock.freeze(T0)
    async with runtime.factory() as session, session.begin():
        view = await crud.create_campaign(session, cart_document(when={"end": "2026-12-01 00:00"}), actor="test")
    async with runtime.factory() as session, session.begin():
        try:
            await crud.schedule_campaign(session, view.code, actor="test")
        except ValidationError as exc:
            problems = exc.problems
        else:
            problems = []
    assert ("when.end", "is in the past; choose a later end, or none") in problems


async def test_pause_resume_and_stop(runtime: Runtime) -> None:
    """Paused: pending waits stay pending and no event triggers; resumed: a wait that fell due
    during the pause fires (within the misfire grace); stopped: pending waits end and a queued
    message is suppressed, both "campaign stopped"."""
    clock.freeze(T0)
    ids = await people(runtime, ["ann", "bob", "cy", "dee"])
    campaign_id = await go_live(runtime, cart_document())
    scheduler = CampaignScheduler(runtime.factory)
    async with httpx.AsyncClient(timeout=5) as client:
        clock.freeze(T0 + timedelta(minutes=1))
        await event(runtime, "ann", "add_to_cart", T0 + timedelta(minutes=1))
        async with runtime.factory() as session, session.begin():
            await crud.pause_campaign(session, campaign_id, actor="test")
        campaign, [run] = await campaign_and_runs(runtime, campaign_id)
        assert (campaign.state, run.state) == ("paused", "paused")
        clock.freeze(T0 + timedelta(minutes=2))
        await event(runtime, "bob", "add_to_cart", T0 + timedelta(minutes=2))  # paused: triggers nothing
        assert await turn(runtime, scheduler, T0 + timedelta(minutes=8), client) == 0  # ann's wait is due
        assert {p: w.state for p, w in (await waits(runtime, campaign_id)).items()} == {ids["ann"]: "pending"}

        async with runtime.factory() as session, session.begin():
            await crud.resume_campaign(session, campaign_id, actor="test")
        campaign, [run] = await campaign_and_runs(runtime, campaign_id)
        assert (campaign.state, run.state) == ("running", "live")
        assert await turn(runtime, scheduler, T0 + timedelta(minutes=9), client) == 1
        assert (await messages(runtime, campaign_id))[ids["ann"]].state == "sent"

        clock.freeze(T0 + timedelta(minutes=10))
        await event(runtime, "cy", "add_to_cart", T0 + timedelta(minutes=10))
        await event(runtime, "dee", "add_to_cart", T0 + timedelta(minutes=6))
        clock.freeze(T0 + timedelta(minutes=11, seconds=1))
        assert await scheduler.live_tick() == 1  # dee's is due; not sent yet when the stop comes
        async with runtime.factory() as session, session.begin():
            await crud.stop_campaign(session, campaign_id, actor="test")
        for minutes in (12, 20, 60):
            await turn(runtime, scheduler, T0 + timedelta(minutes=minutes), client)
    campaign, [run] = await campaign_and_runs(runtime, campaign_id)
    assert (campaign.state, run.state) == ("stopped", "stopped")
    final = await waits(runtime, campaign_id)
    assert (final[ids["cy"]].state, final[ids["cy"]].reason) == ("ended", "campaign stopped")
    sent = await messages(runtime, campaign_id)
    assert (sent[ids["dee"]].state, sent[ids["dee"]].reason) == ("suppressed", "campaign stopped")
    assert ids["bob"] not in sent and ids["bob"] not in final and ids["cy"] not in sent


async def test_a_long_pause_expires_the_waits_that_fell_due(runtime: Runtime) -> None:
    clock.freeze(T0)
    async with runtime.factory() as session, session.begin():
        session.add(Setting(key="campaign_misfire_grace", value="300", updated_at=T0))
    ids = await people(runtime, ["ann", "bob"])
    campaign_id = await go_live(runtime, cart_document(within="1h"))
    scheduler = CampaignScheduler(runtime.factory)
    async with httpx.AsyncClient(timeout=5) as client:
        clock.freeze(T0 + timedelta(minutes=1))
        await event(runtime, "ann", "add_to_cart", T0 + timedelta(minutes=1))
        clock.freeze(T0 + timedelta(hours=1, minutes=58))
        await event(runtime, "bob", "add_to_cart", T0 + timedelta(hours=1, minutes=58))
        async with runtime.factory() as session, session.begin():
            await crud.pause_campaign(session, campaign_id, actor="test")
        await turn(runtime, scheduler, T0 + timedelta(hours=2, minutes=30), client)
        clock.freeze(T0 + timedelta(hours=3))  # ann's fell due 2 h ago, bob's 2 min ago
        async with runtime.factory() as session, session.begin():
            await crud.resume_campaign(session, campaign_id, actor="test")
        assert await turn(runtime, scheduler, T0 + timedelta(hours=3, seconds=1), client) == 1
    final = await waits(runtime, campaign_id)
    assert (final[ids["ann"]].state, final[ids["bob"]].state) == ("expired", "fired")
    assert "misfire grace (5 min)" in (final[ids["ann"]].reason or "")
    assert list(await messages(runtime, campaign_id)) == [ids["bob"]]


async def test_the_target_limit_ends_the_campaign(runtime: Runtime) -> None:
    """Target 2: of three waits due together two fire and one is limited; the campaign ends (a
    later pending wait ends "target limit reached") and completes once its messages are sent."""
    clock.freeze(T0)
    ids = await people(runtime, ["ann", "bob", "cy", "dee"])
    campaign_id = await go_live(runtime, cart_document(who={"target_limit": 2}))
    await add_waits(runtime, campaign_id, [ids["ann"], ids["bob"], ids["cy"]], T0 + timedelta(minutes=5))
    await add_waits(runtime, campaign_id, [ids["dee"]], T0 + timedelta(minutes=30))
    scheduler = CampaignScheduler(runtime.factory)
    async with httpx.AsyncClient(timeout=5) as client:
        clock.freeze(T0 + timedelta(minutes=5))
        assert await scheduler.live_tick() == 2
        campaign, [run] = await campaign_and_runs(runtime, campaign_id)
        assert (campaign.state, run.state, run.reason) == ("running", "running", "target limit reached")
        await settle_runs(runtime.factory, now=clock.now())
        assert (await campaign_and_runs(runtime, campaign_id))[0].state == "running"  # two messages still queued
        await dispatch(runtime, client)
        await turn(runtime, scheduler, T0 + timedelta(minutes=6), client)
        await turn(runtime, scheduler, T0 + timedelta(minutes=31), client)
    campaign, [run] = await campaign_and_runs(runtime, campaign_id)
    assert (campaign.state, run.state, run.reason) == ("completed", "completed", "target limit reached")
    final = await waits(runtime, campaign_id)
    assert sorted(w.state for w in final.values()) == ["ended", "fired", "fired", "limited"]
    assert final[ids["dee"]].reason == "target limit reached"
    assert [m.state for m in (await messages(runtime, campaign_id)).values()] == ["sent", "sent"]
    counts = await day_counts(runtime, campaign_id)
    assert (counts["queued"], counts["limited"]) == (2, 1)


async def test_the_daily_limit_holds_back_the_rest_of_the_day(runtime: Runtime) -> None:
    clock.freeze(T0)
    ids = await people(runtime, ["ann", "bob", "cy"])
    campaign_id = await go_live(runtime, cart_document(who={"daily_limit": 1}))
    await add_waits(runtime, campaign_id, [ids["ann"], ids["bob"]], T0 + timedelta(minutes=5))
    await add_waits(runtime, campaign_id, [ids["cy"]], T0 + timedelta(days=1))
    scheduler = CampaignScheduler(runtime.factory)
    async with httpx.AsyncClient(timeout=5) as client:
        assert await turn(runtime, scheduler, T0 + timedelta(minutes=5), client) == 1
        assert await turn(runtime, scheduler, T0 + timedelta(days=1), client) == 1
    final = await waits(runtime, campaign_id)
    assert sorted(w.state for w in final.values()) == ["fired", "fired", "limited"]
    assert [w.reason for w in final.values() if w.state == "limited"] == [
        "the campaign's daily or target limit was reached"]
    assert final[ids["cy"]].state == "fired"
    campaign, [run] = await campaign_and_runs(runtime, campaign_id)
    assert (campaign.state, run.state) == ("running", "live")


async def test_the_end_time_ends_the_campaign(runtime: Runtime) -> None:
    """A wait due before the end fires; one due after it never does ("campaign ended"), events
    after the end trigger nothing, and the campaign completes."""
    clock.freeze(T0)
    ids = await people(runtime, ["ann", "bob", "cy"])
    campaign_id = await go_live(runtime, cart_document(when={"end": "2026-12-02 10:00"}))
    end = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    scheduler = CampaignScheduler(runtime.factory)
    async with httpx.AsyncClient(timeout=5) as client:
        clock.freeze(end - timedelta(minutes=7))
        await event(runtime, "ann", "add_to_cart", end - timedelta(minutes=7))
        clock.freeze(end - timedelta(minutes=2))
        await event(runtime, "bob", "add_to_cart", end - timedelta(minutes=2))
        await turn(runtime, scheduler, end - timedelta(minutes=1), client)
        # The engine comes back after the end: ann's wait (due before it) still fires, bob's does not.
        await turn(runtime, scheduler, end + timedelta(minutes=4), client)
        clock.freeze(end + timedelta(minutes=5))
        await event(runtime, "cy", "add_to_cart", end + timedelta(minutes=5))
        await turn(runtime, scheduler, end + timedelta(minutes=15), client)
    campaign, [run] = await campaign_and_runs(runtime, campaign_id)
    assert (campaign.state, run.state, run.reason) == ("completed", "completed", "campaign ended")
    final = await waits(runtime, campaign_id)
    assert (final[ids["bob"]].state, final[ids["bob"]].reason) == ("ended", "campaign ended")
    assert ids["cy"] not in final
    assert [(p, m.state) for p, m in (await messages(runtime, campaign_id)).items()] == [(ids["ann"], "sent")]


async def test_an_edit_reaches_the_live_run(runtime: Runtime) -> None:
    clock.freeze(T0)
    ids = await people(runtime, ["ann", "bob"])
    campaign_id = await go_live(runtime, cart_document())
    scheduler = CampaignScheduler(runtime.factory)
    async with httpx.AsyncClient(timeout=5) as client:
        clock.freeze(T0 + timedelta(minutes=1))
        await event(runtime, "ann", "add_to_cart", T0 + timedelta(minutes=1))
        await turn(runtime, scheduler, T0 + timedelta(minutes=6), client)
        async with runtime.factory() as session, session.begin():
            await crud.update_campaign(session, campaign_id, cart_document(body="Still thinking, {{ profile.name }}?"),
                                       actor="test")
            try:
                await crud.update_campaign(session, campaign_id, {**cart_document(), "type": "action"}, actor="test")
            except ValidationError as exc:
                assert exc.problems[0][0] == "type"
            else:
                raise AssertionError("a live campaign changed its type")
        clock.freeze(T0 + timedelta(minutes=7))
        await event(runtime, "bob", "add_to_cart", T0 + timedelta(minutes=7))
        await turn(runtime, scheduler, T0 + timedelta(minutes=13), client)
    sent = await messages(runtime, campaign_id)
    assert (sent[ids["ann"]].body, sent[ids["bob"]].body) == ("Hi Ann, your cart is waiting", "Still thinking, Bob?")
    _, [run] = await campaign_and_runs(runtime, campaign_id)
    assert run.state == "live" and run.document["what"]["body"] == "Still thinking, {{ profile.name }}?"
    assert await start_due_runs(runtime.factory, now=clock.now()) == []


async def test_the_engine_backfills_a_date_campaign_when_it_goes_live(runtime: Runtime) -> None:
    """When the engine's scheduler starts it writes a live date campaign's due times (the people
    holding the date) in a task, and its live tick resolves the near ones (real clock, the
    scheduler's own jobs)."""
    import asyncio
    import time as _time

    from smsconsole.models import CampaignDue, PropertyDef

    today = clock.now().date()
    async with runtime.factory() as session, session.begin():
        session.add(PropertyDef(scope="profile", name="travel_date", type="date"))
    ids = await people(runtime, ["ann", "bob"])
    async with runtime.factory() as session, session.begin():
        for name, days in (("ann", 1), ("bob", 30)):
            profile = await session.get(Profile, ids[name])
            assert profile is not None
            profile.properties = {"travel_date": (today + timedelta(days=days)).isoformat()}
    doc = {"name": "Trip reminder", "type": "date", "when": {"timezone": "UTC"},
           "who": {"trigger": {"property": "travel_date", "offset_days": -1, "at": "09:00"}},
           "what": {"route": {"provider": "sbx"}, "body": "Your trip is tomorrow"}}
    campaign_id = await go_live(runtime, doc)  # live now; the scheduler, when it starts, backfills it
    scheduler = CampaignScheduler(runtime.factory, rebuild_seconds=3600, live_tick_seconds=0.2)
    await scheduler.start()
    try:
        deadline = _time.monotonic() + 20
        rows: list[CampaignDue] = []
        while _time.monotonic() < deadline:
            async with runtime.factory() as session:
                rows = list(await session.scalars(select(CampaignDue).where(CampaignDue.campaign_id == campaign_id)
                                                  .order_by(CampaignDue.profile_id)))
            if len(rows) == 2 and rows[0].due_at is not None:
                break
            await asyncio.sleep(0.1)
    finally:
        await scheduler.stop()
    assert [(r.profile_id, r.due_day) for r in rows] == [(ids["ann"], today), (ids["bob"], today + timedelta(days=29))]
    assert rows[0].due_at is not None and rows[1].due_at is None  # only the near one is resolved
    _, [run] = await campaign_and_runs(runtime, campaign_id)
    assert run.state == "live" and run.qualified == 2


async def test_a_campaign_paused_past_its_end_ends_once_resumed(runtime: Runtime) -> None:
    clock.freeze(T0)
    ids = await people(runtime, ["ann"])
    campaign_id = await go_live(runtime, cart_document(when={"end": "2026-12-02 10:00"}))
    scheduler = CampaignScheduler(runtime.factory)
    async with httpx.AsyncClient(timeout=5) as client:
        clock.freeze(T0 + timedelta(minutes=1))
        await event(runtime, "ann", "add_to_cart", T0 + timedelta(minutes=1))
        async with runtime.factory() as session, session.begin():
            await crud.pause_campaign(session, campaign_id, actor="test")
        await turn(runtime, scheduler, T0 + timedelta(hours=3), client)
        campaign, [run] = await campaign_and_runs(runtime, campaign_id)
        assert (campaign.state, run.state, run.reason) == ("paused", "paused", None)
        async with runtime.factory() as session, session.begin():
            await crud.resume_campaign(session, campaign_id, actor="test")
        await turn(runtime, scheduler, T0 + timedelta(hours=3, seconds=1), client)
    campaign, [run] = await campaign_and_runs(runtime, campaign_id)
    assert (campaign.state, run.state, run.reason) == ("completed", "completed", "campaign ended")
    assert (await waits(runtime, campaign_id))[ids["ann"]].state == "expired"  # due long before: not sent late
    assert await messages(runtime, campaign_id) == {}
