"""Inaction waits on both databases, on a frozen clock advanced by hand, through the calls the
engine makes (start_due_runs, the scheduler's live tick, the real Dispatcher with the Sandbox
provider, settle_runs) and the door events come through (profiles.record_events): the
abandoned-cart race (the follow-up event just before and just after the window ends, and one that
happened in time but was recorded after its wait fired), waits that outlive an engine (a new
scheduler fires them; an outage longer than the misfire grace expires them instead), a retried
chunk queues nothing twice, 10,000 waits due in the same minute fire in one tick, and a wait that
fires in do-not-disturb hours is sent when they end."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, insert, select

from smsconsole import clock
from smsconsole.engine.campaigns import CampaignScheduler
from smsconsole.engine.dispatcher import Dispatcher, DispatchSettings
from smsconsole.models import (
    Campaign,
    CampaignLiveDay,
    CampaignRun,
    CampaignWait,
    Message,
    Profile,
    Setting,
)
from smsconsole.models import Provider as ProviderRow
from smsconsole.runtime import Runtime
from smsconsole.services import profiles
from smsconsole.services.campaigns import crud
from smsconsole.services.campaigns.live.waits import fire_due_waits
from smsconsole.services.campaigns.runs import settle_runs, start_due_runs
from tests.integration.dispatch_support import add_provider

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
FOLLOWED_UP = "follow-up event checkout arrived in time"


def cart_document(name: str = "Abandoned cart", *, within: str = "5m", who: dict[str, Any] | None = None,
                  when: dict[str, Any] | None = None, body: str = "Hi {{ profile.name }}, your cart is waiting",
                  ) -> dict[str, Any]:
    return {"name": name, "type": "inaction", "when": {"timezone": "UTC", **(when or {})},
            "who": {"trigger": {"event": "add_to_cart", "cancel_event": "checkout", "within_minutes": within},
                    **(who or {})},
            "what": {"route": {"provider": "sbx"}, "body": body}}


async def people(rt: Runtime, names: list[str], **columns: Any) -> dict[str, int]:
    """Subscribed GB profiles with user id = name; name -> profile id."""
    now = clock.now()
    start = await _count(rt, Profile)
    async with rt.factory() as session, session.begin():
        result = await session.execute(insert(Profile).returning(Profile.id, Profile.user_id), [
            {"user_id": name, "name": name.title(), "phone": f"+4477009{start + n:05d}", "phone_status": "valid",
             "sms_capable": True, "country": "GB", "subscription": "subscribed", "properties": {},
             "subscription_at": now, "created_at": now, "updated_at": now, **columns} for n, name in enumerate(names)])
        return {user_id: profile_id for profile_id, user_id in result.all()}


async def _count(rt: Runtime, model: Any, *conditions: Any) -> int:
    async with rt.factory() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*conditions)) or 0


async def go_live(rt: Runtime, doc: dict[str, Any]) -> int:
    """Create and schedule the campaign (adding the Sandbox provider it names, once); the engine's
    next start makes its run live (now)."""
    if not await _count(rt, ProviderRow, ProviderRow.name == "sbx"):
        await add_provider(rt, "sbx")
    async with rt.factory() as session, session.begin():
        view = await crud.create_campaign(session, doc, actor="test")
        await crud.schedule_campaign(session, view.code, actor="test")
    assert await start_due_runs(rt.factory, now=clock.now()) == []
    return view.id


async def event(rt: Runtime, user_id: str, name: str, at: datetime, **properties: Any) -> None:
    """An event through the door every event uses (the API and imports call the same service)."""
    async with rt.factory() as session, session.begin():
        defaults = await profiles.audience_defaults(session)
        prepared = profiles.prepare_event({"user_id": user_id, "name": name, "at": at.isoformat(),
                                           "properties": properties}, defaults, {})
        await profiles.record_events(session, [prepared], source="api", defaults=defaults)


async def dispatch(rt: Runtime, client: httpx.AsyncClient) -> None:
    dispatcher = Dispatcher(rt.factory, rt.box, client, DispatchSettings(batch_size=500))
    while await dispatcher.run_once():
        pass


async def turn(rt: Runtime, scheduler: CampaignScheduler, at: datetime, client: httpx.AsyncClient) -> int:
    """One engine turn at `at`: start what is due, the live tick, send, settle. The messages queued."""
    clock.freeze(at)
    await start_due_runs(rt.factory, now=at)
    queued = await scheduler.live_tick()
    await dispatch(rt, client)
    await settle_runs(rt.factory, now=at)
    return queued


async def waits(rt: Runtime, campaign_id: int) -> dict[int, CampaignWait]:
    """Each person's latest wait, by profile id."""
    async with rt.factory() as session:
        rows = await session.scalars(select(CampaignWait).where(CampaignWait.campaign_id == campaign_id)
                                     .order_by(CampaignWait.id))
        return {row.profile_id: row for row in rows}


async def messages(rt: Runtime, campaign_id: int) -> dict[int, Message]:
    async with rt.factory() as session:
        rows = list(await session.scalars(select(Message).where(Message.campaign_id == campaign_id)))
    by_profile = {row.profile_id: row for row in rows}
    assert len(by_profile) == len(rows), "a person got two messages"
    return by_profile  # type: ignore[return-value]


async def day_counts(rt: Runtime, campaign_id: int) -> dict[str, int]:
    async with rt.factory() as session:
        rows = list(await session.scalars(select(CampaignLiveDay).where(CampaignLiveDay.campaign_id == campaign_id)))
    names = ("triggered", "queued", "waits_started", "waits_cancelled", "limited", "late", "unreachable")
    return {name: sum(getattr(row, name) for row in rows) for name in names}


async def add_waits(rt: Runtime, campaign_id: int, profile_ids: list[int], due_at: datetime | list[datetime],
                    ) -> None:
    """Pending waits written straight into the table (as the triggers arm them)."""
    async with rt.factory() as session, session.begin():
        run_id = await session.scalar(select(CampaignRun.id).where(CampaignRun.campaign_id == campaign_id))
        dues = due_at if isinstance(due_at, list) else [due_at] * len(profile_ids)
        await session.execute(insert(CampaignWait), [
            {"campaign_id": campaign_id, "run_id": run_id, "profile_id": profile_id, "event_id": None,
             "started_at": due - timedelta(minutes=5), "due_at": due, "state": "pending", "created_at": clock.now()}
            for profile_id, due in zip(profile_ids, dues, strict=True)])


async def test_the_abandoned_cart_race(runtime: Runtime) -> None:
    """A: add_to_cart, B: checkout, within 5 minutes. B just before T cancels the wait; B just after
    T does not (the message goes); B that happened just before T but was recorded after its wait
    fired stops the message at claim; nobody else is affected, and nobody gets two."""
    clock.freeze(T0)
    ids = await people(runtime, ["ann", "bob", "cy", "dee", "eve"])
    campaign_id = await go_live(runtime, cart_document())
    scheduler = CampaignScheduler(runtime.factory)
    added = T0 + timedelta(seconds=10)
    due = added + timedelta(minutes=5)
    async with httpx.AsyncClient(timeout=5) as client:
        clock.freeze(added)
        for name in ("ann", "bob", "cy", "dee"):
            await event(runtime, name, "add_to_cart", added, amount=120)
        await event(runtime, "eve", "add_to_cart", added + timedelta(seconds=10))
        armed = await waits(runtime, campaign_id)
        assert {armed[ids[n]].due_at for n in ("ann", "bob", "cy", "dee")} == {due}
        assert {w.state for w in armed.values()} == {"pending"}

        assert await turn(runtime, scheduler, due - timedelta(seconds=2), client) == 0
        clock.freeze(due - timedelta(seconds=1))
        await event(runtime, "ann", "checkout", due - timedelta(seconds=1))  # just before T: cancelled
        assert (await waits(runtime, campaign_id))[ids["ann"]].state == "cancelled"

        clock.freeze(due)
        assert await scheduler.live_tick() == 3  # T: bob, cy and dee fire
        clock.freeze(due + timedelta(milliseconds=300))
        # cy checked out just before T, but the event reaches us after the wait fired.
        await event(runtime, "cy", "checkout", due - timedelta(milliseconds=500))
        await dispatch(runtime, client)
        clock.freeze(due + timedelta(seconds=1))
        await event(runtime, "bob", "checkout", due + timedelta(seconds=1))  # just after T: too late
        # eve's window ends 10 s later; her checkout 1 s after it, before any tick saw it due.
        clock.freeze(due + timedelta(seconds=11))
        await event(runtime, "eve", "checkout", due + timedelta(seconds=11))
        await turn(runtime, scheduler, due + timedelta(seconds=12), client)
        for minutes in (1, 10, 60):
            assert await turn(runtime, scheduler, due + timedelta(minutes=minutes), client) == 0

    final = await waits(runtime, campaign_id)
    sent = await messages(runtime, campaign_id)
    assert {name: final[ids[name]].state for name in ids} == {
        "ann": "cancelled", "bob": "fired", "cy": "fired", "dee": "fired", "eve": "fired"}
    assert final[ids["ann"]].reason == FOLLOWED_UP and ids["ann"] not in sent
    assert {name: sent[ids[name]].state for name in ("bob", "cy", "dee", "eve")} == {
        "bob": "sent", "cy": "suppressed", "dee": "sent", "eve": "sent"}
    assert sent[ids["cy"]].reason == FOLLOWED_UP
    assert sent[ids["dee"]].body == "Hi Dee, your cart is waiting"
    assert sent[ids["bob"]].dedupe_key == f"live:{campaign_id}:wait:{final[ids['bob']].id}"
    assert sent[ids["bob"]].wait_id == final[ids["bob"]].id
    counts = await day_counts(runtime, campaign_id)
    assert (counts["waits_started"], counts["waits_cancelled"], counts["queued"]) == (5, 1, 4)


async def test_waits_outlive_the_engine_and_expire_after_a_long_outage(runtime: Runtime) -> None:
    """Waits live in the database: a new scheduler (a restarted engine) fires those due within the
    misfire grace; those due longer ago than the grace expire, counted late, and send nothing."""
    clock.freeze(T0)
    async with runtime.factory() as session, session.begin():
        session.add(Setting(key="campaign_misfire_grace", value="600", updated_at=T0))
    ids = await people(runtime, ["ann", "bob", "cy"])
    campaign_id = await go_live(runtime, cart_document())
    async with httpx.AsyncClient(timeout=5) as client:
        first = CampaignScheduler(runtime.factory)
        for name in ids:
            await event(runtime, name, "add_to_cart", T0 + timedelta(seconds=1))
        await turn(runtime, first, T0 + timedelta(minutes=1), client)
        await first.stop()  # the engine goes away with three waits pending
        assert {w.state for w in (await waits(runtime, campaign_id)).values()} == {"pending"}

        # Back 8 minutes later (due 3 minutes ago, within the 10-minute grace): they fire.
        second = CampaignScheduler(runtime.factory)
        assert await turn(runtime, second, T0 + timedelta(minutes=8), client) == 3
        await second.stop()
        assert {m.state for m in (await messages(runtime, campaign_id)).values()} == {"sent"}

        # The same three add to their carts again; the engine is away for an hour this time.
        for name in ids:
            await event(runtime, name, "add_to_cart", T0 + timedelta(minutes=9))
        third = CampaignScheduler(runtime.factory)
        assert await turn(runtime, third, T0 + timedelta(minutes=75), client) == 0
    final = list((await waits(runtime, campaign_id)).values())
    assert {w.state for w in final} == {"expired"}
    assert all("misfire grace (10 min)" in (w.reason or "") for w in final)
    assert await _count(runtime, Message, Message.campaign_id == campaign_id) == 3
    assert (await day_counts(runtime, campaign_id))["late"] == 3


async def test_a_retried_chunk_queues_nothing_twice(runtime: Runtime) -> None:
    """The wait's state and its message commit together; should a message exist already (its key
    is the wait's), firing again marks the wait fired and inserts nothing."""
    clock.freeze(T0)
    ids = await people(runtime, ["ann", "bob"])
    campaign_id = await go_live(runtime, cart_document())
    await add_waits(runtime, campaign_id, list(ids.values()), T0 + timedelta(minutes=5))
    at = T0 + timedelta(minutes=5)
    clock.freeze(at)
    async with runtime.factory() as session, session.begin():  # a first attempt that rolls back
        assert (await fire_due_waits(session, now=at)).queued == 2
        await session.rollback()
    assert {w.state for w in (await waits(runtime, campaign_id)).values()} == {"pending"}
    async with runtime.factory() as session, session.begin():
        first = await fire_due_waits(session, now=at)
    async with runtime.factory() as session, session.begin():
        again = await fire_due_waits(session, now=at)
    assert (first.queued, first.fired, again.fired) == (2, 2, 0)
    assert {w.state for w in (await waits(runtime, campaign_id)).values()} == {"fired"}
    assert len(await messages(runtime, campaign_id)) == 2


async def test_ten_thousand_waits_due_in_the_same_minute_fire_in_one_tick(runtime: Runtime) -> None:
    clock.freeze(T0)
    count = 10_000
    now = T0
    async with runtime.factory() as session, session.begin():
        await session.execute(insert(Profile), [
            {"user_id": f"u{n}", "phone": f"+4477{n:08d}", "phone_status": "valid", "sms_capable": True,
             "country": "GB", "subscription": "subscribed", "properties": {}, "subscription_at": now, "created_at": now, "updated_at": now}
            for n in range(count)])
    campaign_id = await go_live(runtime, cart_document())
    async with runtime.factory() as session:
        ids = list(await session.scalars(select(Profile.id).order_by(Profile.id)))
    minute = T0 + timedelta(minutes=30)
    await add_waits(runtime, campaign_id, ids, [minute + timedelta(milliseconds=5 * n) for n in range(count)])
    scheduler = CampaignScheduler(runtime.factory)
    clock.freeze(minute + timedelta(seconds=59))
    assert await scheduler.live_tick() == count
    states = Counter(w.state for w in (await waits(runtime, campaign_id)).values())
    assert states == {"fired": count}
    assert await _count(runtime, Message, Message.campaign_id == campaign_id, Message.state == "queued") == count
    assert (await day_counts(runtime, campaign_id))["queued"] == count


async def test_a_wait_that_fires_in_do_not_disturb_hours_is_sent_when_they_end(runtime: Runtime) -> None:
    clock.freeze(T0)
    ids = await people(runtime, ["ann"], timezone="Europe/London")
    campaign_id = await go_live(runtime, cart_document(
        within="1h", when={"timezone": "Europe/London", "dnd": {"start": "21:00", "end": "09:00", "action": "delay"}}))
    evening = datetime(2026, 12, 2, 20, 30, tzinfo=UTC)  # 20:30 in London (GMT)
    scheduler = CampaignScheduler(runtime.factory)
    async with httpx.AsyncClient(timeout=5) as client:
        clock.freeze(evening)
        await event(runtime, "ann", "add_to_cart", evening)
        assert await turn(runtime, scheduler, evening + timedelta(hours=1), client) == 1  # 21:30: inside DND
        message = (await messages(runtime, campaign_id))[ids["ann"]]
        assert message.state == "queued" and message.next_attempt_at == datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
        assert "do not disturb" in (message.reason or "")
        await turn(runtime, scheduler, datetime(2026, 12, 3, 8, 59, tzinfo=UTC), client)
        assert (await messages(runtime, campaign_id))[ids["ann"]].state == "queued"
        await turn(runtime, scheduler, datetime(2026, 12, 3, 9, 0, tzinfo=UTC), client)
    assert (await messages(runtime, campaign_id))[ids["ann"]].state == "sent"
    assert (await waits(runtime, campaign_id))[ids["ann"]].state == "fired"


async def test_waits_of_a_campaign_that_is_not_live_stay_pending(runtime: Runtime) -> None:
    """Only live campaigns' waits fire: a paused campaign's wait waits (see test_live_lifecycle)."""
    clock.freeze(T0)
    ids = await people(runtime, ["ann"])
    campaign_id = await go_live(runtime, cart_document())
    await add_waits(runtime, campaign_id, [ids["ann"]], T0 + timedelta(minutes=5))
    async with runtime.factory() as session, session.begin():
        await crud.pause_campaign(session, campaign_id, actor="test")
    async with runtime.factory() as session:
        assert (await session.get(Campaign, campaign_id)).state == "paused"  # type: ignore[union-attr]
    clock.freeze(T0 + timedelta(minutes=6))
    assert (await fire_due_waits(runtime.factory, now=clock.now())).fired == 0
    assert (await waits(runtime, campaign_id))[ids["ann"]].state == "pending"


async def test_the_claim_check_applies_the_follow_up_events_conditions(runtime: Runtime) -> None:
    """B is a checkout with paid = true. Two checkouts just before T that reach us after the waits
    fired: the unpaid one is no follow-up (the message goes), the paid one stops its message."""
    clock.freeze(T0)
    await people(runtime, ["someone"])
    await event(runtime, "someone", "checkout", T0 - timedelta(days=1), paid=True)  # the catalog learns `paid`
    ids = await people(runtime, ["ann", "bob"])
    doc = cart_document()
    doc["who"]["trigger"]["cancel_where"] = [{"property": "paid", "op": "equals", "value": True}]
    campaign_id = await go_live(runtime, doc)
    scheduler = CampaignScheduler(runtime.factory)
    due = T0 + timedelta(minutes=5, seconds=1)
    async with httpx.AsyncClient(timeout=5) as client:
        clock.freeze(T0 + timedelta(seconds=1))
        for name in ids:
            await event(runtime, name, "add_to_cart", T0 + timedelta(seconds=1))
        clock.freeze(due)
        assert await scheduler.live_tick() == 2
        clock.freeze(due + timedelta(seconds=1))
        await event(runtime, "ann", "checkout", due - timedelta(seconds=1), paid=False)
        await event(runtime, "bob", "checkout", due - timedelta(seconds=1), paid=True)
        await dispatch(runtime, client)
    sent = await messages(runtime, campaign_id)
    assert (sent[ids["ann"]].state, sent[ids["bob"]].state) == ("sent", "suppressed")
    assert sent[ids["bob"]].reason == FOLLOWED_UP
