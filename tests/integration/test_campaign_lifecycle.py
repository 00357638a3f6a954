"""Campaigns end to end on an advancing frozen clock, through the same calls the engine makes
(start_due_runs → materialize_run → the real Dispatcher with the Sandbox provider → settle_runs):
a daily campaign across a daylight-saving change runs once a day at the right instants and
reaches each person once per run; a one-time "now" campaign runs once; pause and stop mid-run."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import insert, select

from smsconsole import clock
from smsconsole.engine.dispatcher import DispatchSettings, Dispatcher
from smsconsole.models import Campaign, CampaignRun, Message, Profile
from smsconsole.runtime import Runtime
from smsconsole.services.campaigns import crud
from smsconsole.services.campaigns.materialize import materialize_run
from smsconsole.services.campaigns.runs import run_counts, settle_runs, start_due_runs
from tests.integration.dispatch_support import add_provider

GB = {"conditions": [{"field": "country", "op": "equals", "value": "GB"}]}


def document(name: str, type_: str, when: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "type": type_, "when": when, "who": {"definition": GB},
            "what": {"route": {"provider": "sbx"}, "body": "Hi {{ profile.name | default: \"there\" }}"}}


async def people(rt: Runtime, count: int) -> None:
    now = clock.now()
    async with rt.factory() as session, session.begin():
        await session.execute(insert(Profile), [
            {"phone": f"+4477009{n:05d}", "phone_status": "valid", "sms_capable": True, "country": "GB",
             "subscription": "subscribed", "name": f"P{n}", "properties": {}, "subscription_at": now, "created_at": now, "updated_at": now}
            for n in range(count)])


async def scheduled(rt: Runtime, doc: dict[str, Any]) -> int:
    async with rt.factory() as session, session.begin():
        view = await crud.create_campaign(session, doc, actor="test")
        await crud.schedule_campaign(session, view.code, actor="test")
        return view.id


async def tick(rt: Runtime, at: datetime, client: httpx.AsyncClient, *, batch_size: int = 50,
               batches: int | None = None) -> list[int]:
    """One engine turn at `at`: start what is due, write its rows, send (all, or `batches`
    batches), settle."""
    clock.freeze(at)
    started = await start_due_runs(rt.factory, now=at)
    for run_id in started:
        await materialize_run(rt.factory, run_id)
    dispatcher = Dispatcher(rt.factory, rt.box, client, DispatchSettings(batch_size=batch_size))
    done = 0
    while (batches is None or done < batches) and await dispatcher.run_once():
        done += 1
    await settle_runs(rt.factory, now=at)
    return started


async def rows(rt: Runtime, campaign_id: int) -> tuple[list[CampaignRun], list[Message], Campaign]:
    async with rt.factory() as session:
        runs = list(await session.scalars(select(CampaignRun).where(CampaignRun.campaign_id == campaign_id)
                                          .order_by(CampaignRun.planned_at)))
        messages = list(await session.scalars(select(Message).where(Message.campaign_id == campaign_id)))
        campaign = await session.get(Campaign, campaign_id)
        assert campaign is not None
        return runs, messages, campaign


async def test_a_daily_campaign_across_spring_forward_runs_once_a_day_at_the_right_instants(
        runtime: Runtime) -> None:
    clock.freeze(datetime(2027, 3, 26, 12, 0, tzinfo=UTC))
    await add_provider(runtime, "sbx")
    await people(runtime, 3)
    # 01:30 London does not exist on Sunday 28 March 2027 (01:00 GMT -> 02:00 BST): that day's run
    # goes at 02:00 BST, the first instant after the gap.
    campaign_id = await scheduled(runtime, document("Daily", "recurring", {
        "timezone": "Europe/London",
        "recurrence": {"every": "day", "time": "01:30", "start": "2027-03-27", "end": "2027-03-29"}}))
    at = datetime(2027, 3, 26, 12, 0, tzinfo=UTC)
    async with httpx.AsyncClient(timeout=5) as client:
        while at < datetime(2027, 3, 30, 12, 0, tzinfo=UTC):
            await tick(runtime, at, client)
            at += timedelta(minutes=15)
    runs, messages, campaign = await rows(runtime, campaign_id)
    assert [r.planned_at for r in runs] == [datetime(2027, 3, 27, 1, 30, tzinfo=UTC),   # 01:30 GMT
                                            datetime(2027, 3, 28, 1, 0, tzinfo=UTC),    # 02:00 BST (gap)
                                            datetime(2027, 3, 29, 0, 30, tzinfo=UTC)]   # 01:30 BST
    assert [r.state for r in runs] == ["completed"] * 3
    # Each run started at its time (the clock ticks every 15 minutes) and reached everyone once.
    assert all(timedelta(0) <= r.started_at - r.planned_at < timedelta(minutes=15) for r in runs)
    assert Counter((m.run_id, m.profile_id) for m in messages).most_common(1)[0][1] == 1
    assert len(messages) == 9 and {m.state for m in messages} == {"sent"}
    assert sorted({m.body for m in messages}) == ["Hi P0", "Hi P1", "Hi P2"]
    assert campaign.state == "completed" and campaign.next_run_at is None


async def test_a_one_time_campaign_sent_now_runs_once(runtime: Runtime) -> None:
    now = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    clock.freeze(now)
    await add_provider(runtime, "sbx")
    await people(runtime, 4)
    campaign_id = await scheduled(runtime, document("Now", "one_time", {"at": "now"}))
    async with httpx.AsyncClient(timeout=5) as client:
        assert len(await tick(runtime, now, client)) == 1
        for minutes in (1, 5, 60, 24 * 60):
            assert await tick(runtime, now + timedelta(minutes=minutes), client) == []
    runs, messages, campaign = await rows(runtime, campaign_id)
    assert len(runs) == 1 and runs[0].state == "completed"
    assert len(messages) == 4 and {m.state for m in messages} == {"sent"}
    assert campaign.state == "completed"


async def test_pause_mid_run_holds_the_rest_until_resume_and_nobody_gets_two(runtime: Runtime) -> None:
    now = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    clock.freeze(now)
    await add_provider(runtime, "sbx")
    await people(runtime, 30)
    campaign_id = await scheduled(runtime, document("Paused", "one_time", {"at": "now"}))
    async with httpx.AsyncClient(timeout=5) as client:
        await tick(runtime, now, client, batch_size=5, batches=2)
        async with runtime.factory() as session, session.begin():
            await crud.pause_campaign(session, "Paused", actor="test")
        await tick(runtime, now + timedelta(minutes=1), client, batch_size=5)
        runs, messages, campaign = await rows(runtime, campaign_id)
        assert Counter(m.state for m in messages) == {"sent": 10, "held": 20}
        assert (runs[0].state, campaign.state) == ("paused", "paused")
        async with runtime.factory() as session, session.begin():
            await crud.resume_campaign(session, "Paused", actor="test")
        await tick(runtime, now + timedelta(minutes=2), client, batch_size=5)
    runs, messages, campaign = await rows(runtime, campaign_id)
    assert Counter(m.state for m in messages) == {"sent": 30}
    assert len({m.profile_id for m in messages}) == 30
    async with runtime.factory() as session:
        counts = (await run_counts(session, [runs[0].id]))[runs[0].id]
    assert (counts.sent, counts.queued, counts.held) == (30, 0, 0)
    assert (runs[0].state, campaign.state) == ("completed", "completed")


async def test_stop_mid_run_suppresses_the_rest_and_sends_nothing_more(runtime: Runtime) -> None:
    now = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    clock.freeze(now)
    await add_provider(runtime, "sbx")
    await people(runtime, 30)
    campaign_id = await scheduled(runtime, document("Stopped", "one_time", {"at": "now"}))
    async with httpx.AsyncClient(timeout=5) as client:
        await tick(runtime, now, client, batch_size=5, batches=2)
        async with runtime.factory() as session, session.begin():
            await crud.stop_campaign(session, "Stopped", actor="test")
        for minutes in (1, 60):
            await tick(runtime, now + timedelta(minutes=minutes), client, batch_size=5)
    runs, messages, campaign = await rows(runtime, campaign_id)
    assert Counter(m.state for m in messages) == {"sent": 10, "suppressed": 20}
    assert {m.reason for m in messages if m.state == "suppressed"} == {"campaign stopped"}
    assert (runs[0].state, campaign.state) == ("stopped", "stopped")


async def test_monthly_on_the_31st_and_multiple_dates_through_the_engine(runtime: Runtime) -> None:
    """Ticking every 6 hours for four months (misfire grace a day): the 31st falls on each shorter
    month's last day; a list of dates runs once per date, in its zone, and nothing else runs."""
    from smsconsole.models import Setting

    start = datetime(2027, 1, 15, 0, 0, tzinfo=UTC)
    clock.freeze(start)
    await add_provider(runtime, "sbx")
    await people(runtime, 2)
    async with runtime.factory() as session, session.begin():
        session.add(Setting(key="campaign_misfire_grace", value="86400", updated_at=start))
    monthly = await scheduled(runtime, document("Month end", "recurring", {
        "timezone": "America/New_York",
        "recurrence": {"every": "month", "day_of_month": 31, "time": "18:00", "end": "2027-04-30"}}))
    dates = await scheduled(runtime, document("Dates", "multiple_dates", {
        "timezone": "Asia/Kolkata", "dates": ["2027-02-14 09:30", "2027-03-10 20:00"]}))
    at = start
    async with httpx.AsyncClient(timeout=5) as client:
        while at < datetime(2027, 5, 15, tzinfo=UTC):
            await tick(runtime, at, client)
            at += timedelta(hours=6)
    runs, messages, campaign = await rows(runtime, monthly)
    assert [r.planned_at for r in runs] == [datetime(2027, 1, 31, 23, 0, tzinfo=UTC),   # 18:00 EST
                                            datetime(2027, 2, 28, 23, 0, tzinfo=UTC),   # the last day
                                            datetime(2027, 3, 31, 22, 0, tzinfo=UTC),   # 18:00 EDT
                                            datetime(2027, 4, 30, 22, 0, tzinfo=UTC)]   # the last day
    assert {r.state for r in runs} == {"completed"} and len(messages) == 8
    assert campaign.state == "completed"
    runs, messages, campaign = await rows(runtime, dates)
    assert [r.planned_at for r in runs] == [datetime(2027, 2, 14, 4, 0, tzinfo=UTC),    # 09:30 IST
                                            datetime(2027, 3, 10, 14, 30, tzinfo=UTC)]  # 20:00 IST
    assert {r.state for r in runs} == {"completed"} and len(messages) == 4
    assert campaign.state == "completed"
