"""Conversions (services/campaigns/conversions.py) on both databases, with events recorded through
the doors people use (record_events as the API calls it, an import without --trigger-campaigns, a
reply logged as an event): the window at its edges (exactly at the send counts, exactly at send +
window does not, microseconds kept on SQLite), events before the send, one conversion per run and
person with the earliest event winning (a late, earlier event replaces a later one and its revenue
follows), idempotency, control rows converting from their would-be send time, `where` conditions,
the send race caught by the engine's sweep, recompute equal to attribution on arrival, the
stat_campaign rollup following, the goal checks when scheduling, and `campaigns attribute`."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update

from smsconsole import clock
from smsconsole.config import Config
from smsconsole.engine.campaigns import CampaignScheduler
from smsconsole.models import Campaign, CampaignConversion, CampaignRun, Event, Message, Profile
from smsconsole.providers.base import InboundReport
from smsconsole.runtime import Runtime
from smsconsole.services import imports, providers, replies, rollups
from smsconsole.services.campaigns.conversions import REACHED_STATES, on_events, recompute
from smsconsole.services.campaigns.definition import parse_document
from smsconsole.services.campaigns.records import reference_problems
from smsconsole.services.profiles import AudienceDefaults, prepare_event, record_events

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
SENT = datetime(2026, 12, 2, 9, 59, 59, 999_999, tzinfo=UTC)  # a fraction SQLite must not round
DEFAULTS = AudienceDefaults(region="GB", timezone="UTC")
US = timedelta(microseconds=1)


def document(goal: dict[str, Any] | None, name: str = "Winter sale") -> dict[str, Any]:
    doc: dict[str, Any] = {"name": name, "type": "one_time", "when": {"at": "2026-12-02T10:00", "timezone": "UTC"},
                           "who": {"segment": "everyone"}, "what": {"route": {}, "body": "Sale today"}}
    if goal is not None:
        doc["goal"] = goal
    return doc


async def add_campaign(rt: Runtime, goal: dict[str, Any] | None, *, runs: int = 1, state: str = "completed",
                       name: str = "Winter sale") -> tuple[int, list[int]]:
    async with rt.factory() as session, session.begin():
        campaign = Campaign(name=name, type="one_time", state=state, document=document(goal, name),
                            created_at=SENT - timedelta(days=1), updated_at=SENT - timedelta(days=1))
        session.add(campaign)
        await session.flush()
        run_ids = []
        for number in range(1, runs + 1):
            run = CampaignRun(campaign_id=campaign.id, number=number, planned_at=SENT + timedelta(days=number - 1),
                              state="completed", suppressed={}, updated_at=SENT)
            session.add(run)
            await session.flush()
            run_ids.append(run.id)
        return campaign.id, run_ids


async def set_goal(rt: Runtime, campaign_id: int, goal: dict[str, Any] | None, at: datetime) -> None:
    async with rt.factory() as session, session.begin():
        await session.execute(update(Campaign).where(Campaign.id == campaign_id)
                              .values(document=document(goal), updated_at=at))


async def add_people(rt: Runtime, count: int) -> list[int]:
    async with rt.factory() as session, session.begin():
        result = await session.execute(insert(Profile).returning(Profile.id), [
            {"user_id": f"u{n}", "phone": f"+4477009{n:05d}", "phone_raw": None, "phone_status": "valid",
             "sms_capable": True, "country": "GB", "timezone": None, "subscription": "subscribed", "properties": {},
             "subscription_at": SENT, "created_at": SENT - timedelta(days=2), "updated_at": SENT - timedelta(days=2)} for n in range(count)])
        return list(result.scalars().all())


async def add_message(rt: Runtime, campaign_id: int, run_id: int, profile_id: int, *, state: str = "sent",
                      sent_at: datetime | None = SENT, created_at: datetime | None = None,
                      variant: str = "A") -> int:
    created = created_at or (sent_at or SENT) - timedelta(minutes=1)
    async with rt.factory() as session, session.begin():
        return int(await session.scalar(insert(Message).returning(Message.id).values(
            kind="campaign", to_number=f"+4477009{profile_id:05d}", body="" if state == "control" else "Sale today",
            encoding="GSM-7", segments=0 if state == "control" else 1, state=state, campaign_id=campaign_id,
            run_id=run_id, profile_id=profile_id, variant=variant, render=False, country="GB",
            provider_name=None if state == "control" else "sbx", created_at=created,
            sent_at=sent_at if state != "control" else None,
            finished_at=created if state == "control" else None, updated_at=created)))


def ev(user: int, at: datetime, name: str = "order", **properties: Any) -> dict[str, Any]:
    return {"user_id": f"u{user}", "name": name, "at": at.isoformat(), "properties": properties}


async def record(rt: Runtime, *events: dict[str, Any], may_trigger: bool = True) -> int:
    types: dict[str, dict[str, str]] = {}
    prepared = [prepare_event(e, DEFAULTS, types.setdefault(e["name"], {})) for e in events]
    async with rt.factory() as session, session.begin():
        return (await record_events(session, prepared, source="api", defaults=DEFAULTS, may_trigger=may_trigger)).recorded


async def conversions(rt: Runtime, campaign_id: int) -> dict[tuple[int, int], tuple[Any, ...]]:
    """(run, person) -> (variant, message, event time, revenue)."""
    async with rt.factory() as session:
        rows = (await session.scalars(select(CampaignConversion).where(CampaignConversion.campaign_id == campaign_id)
                                      .execution_options(populate_existing=True))).all()
    return {(c.run_id, c.profile_id): (c.variant, c.message_id, c.converted_at, c.revenue) for c in rows}


async def rollup(rt: Runtime, campaign_id: int) -> dict[tuple[int, str], tuple[int, float]]:
    async with rt.factory() as session:
        rows = await rollups.campaign_rows(session, campaign_id)
    return {(r.run_id, r.variant): (r.n, round(r.amount, 6)) for r in rows if r.state == "converted"}


async def prime_catalog(rt: Runtime) -> None:
    """The catalog knows the order's amount (number) and coupon (string), as after a first order."""
    await record(rt, ev(999, datetime(2020, 1, 1, tzinfo=UTC), amount=1, coupon="x"))


GOAL = {"event": "order", "window": "1h", "value": "amount"}


async def test_the_window_at_its_edges(runtime: Runtime) -> None:
    clock.freeze(NOW)
    campaign_id, [run] = await add_campaign(runtime, GOAL)
    people = await add_people(runtime, 5)
    messages = [await add_message(runtime, campaign_id, run, person) for person in people]
    window_end = SENT + timedelta(hours=1)
    await record(runtime,
                 ev(0, SENT, amount=10),                   # exactly at the send: counts
                 ev(1, window_end, amount=11),             # exactly at send + window: does not
                 ev(2, window_end - US, amount=12),        # a microsecond before the end: counts
                 ev(3, SENT - US, amount=13),              # a microsecond before the send: does not
                 ev(4, SENT + timedelta(minutes=5), name="page_view", amount=14))  # not the goal event
    found = await conversions(runtime, campaign_id)
    assert found == {(run, people[0]): ("A", messages[0], SENT, 10.0),
                     (run, people[2]): ("A", messages[2], window_end - US, 12.0)}
    assert await rollup(runtime, campaign_id) == {(run, "A"): (2, 22.0)}


async def test_once_per_run_and_person_the_earliest_event_wins(runtime: Runtime) -> None:
    clock.freeze(NOW)
    campaign_id, [run] = await add_campaign(runtime, GOAL)
    [person] = await add_people(runtime, 1)
    message = await add_message(runtime, campaign_id, run, person)
    at = SENT + timedelta(minutes=30)
    # Two orders in one batch: one conversion, the earlier.
    await record(runtime, ev(0, at + timedelta(minutes=5), amount=40), ev(0, at, amount=30))
    assert await conversions(runtime, campaign_id) == {(run, person): ("A", message, at, 30.0)}
    # A later order changes nothing.
    await record(runtime, ev(0, at + timedelta(minutes=10), amount=99))
    assert await conversions(runtime, campaign_id) == {(run, person): ("A", message, at, 30.0)}
    # An order that happened earlier but arrives late replaces it, and its revenue follows.
    earlier = SENT + timedelta(minutes=2)
    await record(runtime, ev(0, earlier, amount=25.5))
    assert await conversions(runtime, campaign_id) == {(run, person): ("A", message, earlier, 25.5)}
    assert await rollup(runtime, campaign_id) == {(run, "A"): (1, 25.5)}


async def test_the_same_event_again_changes_nothing(runtime: Runtime) -> None:
    clock.freeze(NOW)
    campaign_id, [run] = await add_campaign(runtime, GOAL)
    [person] = await add_people(runtime, 1)
    await add_message(runtime, campaign_id, run, person)
    order = ev(0, SENT + timedelta(minutes=3), amount=7)
    assert await record(runtime, order) == 1
    before = await conversions(runtime, campaign_id)
    clock.freeze(NOW + timedelta(minutes=1))
    assert await record(runtime, order) == 0  # delivered twice: recorded once
    async with runtime.factory() as session, session.begin():
        event_id = await session.scalar(select(Event.id).where(Event.name == "order", Event.profile_id == person))
        assert event_id is not None
        assert await on_events(session, [event_id, event_id], now=clock.now()) == 0  # handed over again
    async with runtime.factory() as session:
        [row] = (await session.scalars(select(CampaignConversion))).all()
    assert await conversions(runtime, campaign_id) == before and row.updated_at == NOW
    assert await rollup(runtime, campaign_id) == {(run, "A"): (1, 7.0)}


async def test_only_reached_rows_convert_and_control_from_its_would_be_send_time(runtime: Runtime) -> None:
    clock.freeze(NOW)
    campaign_id, [run] = await add_campaign(runtime, GOAL)
    other_id, [other_run] = await add_campaign(runtime, None, name="No goal")
    people = await add_people(runtime, 8)
    held_out = SENT + timedelta(minutes=7)
    control = await add_message(runtime, campaign_id, run, people[0], state="control", sent_at=None,
                                created_at=held_out, variant="control")
    for person, state in zip(people[1:6], ("delivered", "undelivered", "unknown", "failed", "queued"), strict=True):
        await add_message(runtime, campaign_id, run, person, state=state, sent_at=None if state == "queued" else SENT,
                          variant="B")
    await add_message(runtime, campaign_id, run, people[6], state="unknown", sent_at=None, created_at=SENT,
                      variant="B")  # no sent_at: anchored at created_at
    await add_message(runtime, other_id, other_run, people[7])  # a campaign without a goal
    await record(runtime, ev(0, held_out - US, amount=1), ev(0, held_out, amount=2),
                 *[ev(n, SENT + timedelta(minutes=10), amount=n) for n in range(1, 8)])
    found = await conversions(runtime, campaign_id)
    assert found[(run, people[0])] == ("control", control, held_out, 2.0)
    assert sorted(person for _, person in found) == [people[0], people[1], people[2], people[3], people[6]]
    assert await conversions(runtime, other_id) == {}
    assert await rollup(runtime, campaign_id) == {(run, "control"): (1, 2.0), (run, "B"): (4, 1 + 2 + 3 + 6)}
    assert set(REACHED_STATES) == {"sent", "delivered", "undelivered", "unknown", "control"}


async def test_where_conditions_filter_and_a_value_that_is_no_number_gives_no_revenue(runtime: Runtime) -> None:
    clock.freeze(NOW)
    await prime_catalog(runtime)
    goal = {"event": "order", "window": "24h", "value": "coupon",
            "where": [{"property": "amount", "op": "greater", "value": 100}]}
    campaign_id, [run] = await add_campaign(runtime, goal)
    people = await add_people(runtime, 2)
    for person in people:
        await add_message(runtime, campaign_id, run, person)
    await record(runtime, ev(0, SENT + timedelta(hours=1), amount=50, coupon="A"),
                 ev(0, SENT + timedelta(hours=2), amount=150, coupon="B"),
                 ev(1, SENT + timedelta(hours=3), amount=100, coupon="C"))
    found = await conversions(runtime, campaign_id)
    assert list(found) == [(run, people[0])]
    assert found[(run, people[0])][2:] == (SENT + timedelta(hours=2), None)


async def test_one_conversion_per_run_of_a_recurring_campaign(runtime: Runtime) -> None:
    clock.freeze(NOW + timedelta(days=2))
    campaign_id, runs = await add_campaign(runtime, {"event": "order", "window": "2d"}, runs=2)
    [person] = await add_people(runtime, 1)
    first = await add_message(runtime, campaign_id, runs[0], person)
    second = await add_message(runtime, campaign_id, runs[1], person, sent_at=SENT + timedelta(days=1))
    await record(runtime, ev(0, SENT + timedelta(hours=1)), ev(0, SENT + timedelta(days=1, hours=1)))
    found = await conversions(runtime, campaign_id)
    assert found == {(runs[0], person): ("A", first, SENT + timedelta(hours=1), None),
                     (runs[1], person): ("A", second, SENT + timedelta(days=1, hours=1), None)}


async def test_an_import_that_may_not_trigger_campaigns_still_attributes(runtime: Runtime, tmp_path: Path) -> None:
    clock.freeze(NOW)
    campaign_id, [run] = await add_campaign(runtime, GOAL)
    people = await add_people(runtime, 2)
    for person in people:
        await add_message(runtime, campaign_id, run, person)
    path = tmp_path / "orders.csv"
    path.write_text("user_id,name,at,amount\n"
                    f"u0,order,{(SENT + timedelta(minutes=20)).isoformat()},19.5\n"
                    f"u1,order,{(SENT + timedelta(hours=2)).isoformat()},5\n")
    summary = await imports.run_import(runtime.factory, path, "events", actor="tester", defaults=DEFAULTS)
    assert (summary.events_recorded, summary.bad_rows) == (2, 0)
    found = await conversions(runtime, campaign_id)
    assert list(found) == [(run, people[0])] and found[(run, people[0])][3] == 19.5


async def test_a_reply_logged_as_an_event_converts(runtime: Runtime) -> None:
    clock.freeze(NOW)
    campaign_id, [run] = await add_campaign(runtime, {"event": replies.REPLY_EVENT, "window": "1d"})
    [person] = await add_people(runtime, 1)
    message = await add_message(runtime, campaign_id, run, person)
    async with runtime.factory() as session, session.begin():
        await session.execute(update(Profile).where(Profile.id == person).values(phone="+447400123456"))
        view = await providers.create_provider(session, runtime.box, kind="sandbox", name="sbx", values={},
                                               actor="test")
    for _ in range(2):  # the same reply delivered twice is recorded once
        async with runtime.factory() as session, session.begin():
            await replies.record_inbound(session, provider_id=view.id, provider_name="sbx", via="poll",
                                         report=InboundReport(provider_message_id="MO1", sender="+447400123456",
                                                              recipient="SANDBOX", text="Tell me more"))
    found = await conversions(runtime, campaign_id)
    assert list(found) == [(run, person)] and found[(run, person)][:2] == ("A", message)


async def test_a_changed_goal_applies_to_new_events_and_recompute_applies_it_to_old_ones(runtime: Runtime) -> None:
    clock.freeze(NOW)
    campaign_id, [run] = await add_campaign(runtime, None)
    people = await add_people(runtime, 2)
    for person in people:
        await add_message(runtime, campaign_id, run, person)
    await record(runtime, ev(0, SENT + timedelta(minutes=5), name="signup"))
    assert await conversions(runtime, campaign_id) == {}
    await set_goal(runtime, campaign_id, {"event": "signup", "window": "1h"}, NOW)
    await record(runtime, ev(1, SENT + timedelta(minutes=6), name="signup"))
    assert [p for _, p in await conversions(runtime, campaign_id)] == [people[1]]
    async with runtime.factory() as session, session.begin():
        assert await recompute(session, campaign_id) == 2
    assert sorted(p for _, p in await conversions(runtime, campaign_id)) == people
    # The goal removed: recompute leaves nothing, and the rollup follows.
    await set_goal(runtime, campaign_id, None, NOW + US)
    async with runtime.factory() as session, session.begin():
        assert await recompute(session, campaign_id) == 0
    assert await conversions(runtime, campaign_id) == {} and await rollup(runtime, campaign_id) == {}


async def test_an_event_recorded_while_its_message_was_sending_is_caught_by_the_engine_sweep(runtime: Runtime) -> None:
    clock.freeze(NOW)
    campaign_id, [run] = await add_campaign(runtime, GOAL)
    [person] = await add_people(runtime, 1)
    message = await add_message(runtime, campaign_id, run, person, state="sending", sent_at=None)
    engine = CampaignScheduler(runtime.factory)  # its conversions-sweep job, called as the job would
    sweep = engine.sweep_conversions
    assert await sweep() == 0  # nothing to catch yet
    sent_at = NOW - timedelta(seconds=2)
    await record(runtime, ev(0, NOW - timedelta(seconds=1), amount=3))  # the send has not committed
    assert await conversions(runtime, campaign_id) == {}
    async with runtime.factory() as session, session.begin():
        await session.execute(update(Message).where(Message.id == message)
                              .values(state="sent", sent_at=sent_at, updated_at=NOW))
    assert await sweep() == 1
    assert await conversions(runtime, campaign_id) == {(run, person): ("A", message, NOW - timedelta(seconds=1), 3.0)}
    assert await sweep() == 0  # seen again: nothing changes
    assert await sweep() == 0  # out of the sweep's range now


async def test_recompute_equals_attribution_on_arrival_in_any_order(runtime: Runtime) -> None:
    """A randomized campaign: variants and control, reached and unreached rows, two runs, goal
    events in and out of the window in shuffled batches; recompute gives the same conversions,
    and the rollup counts them."""
    clock.freeze(NOW + timedelta(days=3))
    rng = random.Random(15)
    await prime_catalog(runtime)
    goal = {"event": "order", "window": "6h", "value": "amount",
            "where": [{"property": "coupon", "op": "not_equals", "value": "staff"}]}
    campaign_id, runs = await add_campaign(runtime, goal, runs=2)
    people = await add_people(runtime, 60)
    events: list[dict[str, Any]] = []
    for index, person in enumerate(people):
        for day, run in enumerate(runs):
            state = rng.choice(["sent", "delivered", "delivered", "undelivered", "unknown", "failed", "queued",
                                "control"])
            anchor = SENT + timedelta(days=day, minutes=rng.randrange(0, 120), microseconds=rng.randrange(10 ** 6))
            await add_message(runtime, campaign_id, run, person, state=state,
                              sent_at=None if state in ("control", "queued") else anchor,
                              created_at=anchor if state == "control" else anchor - timedelta(minutes=1),
                              variant="control" if state == "control" else rng.choice("AB"))
        for _ in range(rng.randrange(0, 5)):
            at = SENT + timedelta(minutes=rng.randrange(-60, 2 * 24 * 60))
            events.append(ev(index, at, amount=rng.choice([5, 12.5, 40]), coupon=rng.choice(["x", "staff"])))
    rng.shuffle(events)
    for start in range(0, len(events), 7):
        await record(runtime, *events[start:start + 7])
    arrived = await conversions(runtime, campaign_id)
    assert arrived  # the seed gives some conversions
    counted = await rollup(runtime, campaign_id)
    async with runtime.factory() as session, session.begin():
        total = await recompute(session, campaign_id)
    recomputed = await conversions(runtime, campaign_id)
    assert total == len(recomputed) and recomputed == arrived
    assert await rollup(runtime, campaign_id) == counted
    expected: dict[tuple[int, str], tuple[int, float]] = {}
    for (run, _), (variant, _, _, revenue) in arrived.items():
        n, amount = expected.get((run, variant), (0, 0.0))
        expected[(run, variant)] = (n + 1, round(amount + (revenue or 0), 6))
    assert counted == expected


async def test_scheduling_checks_the_goal_against_the_catalog(runtime: Runtime) -> None:
    await prime_catalog(runtime)

    async def problems(goal: dict[str, Any]) -> list[tuple[str, str]]:
        parsed, _ = parse_document(document(goal))
        async with runtime.factory() as session:
            return [p for p in await reference_problems(session, parsed) if p[0].startswith("goal")]

    assert await problems({"event": "order", "value": "amount",
                           "where": [{"property": "amount", "op": "greater", "value": 0}]}) == []
    [(field, reason)] = await problems({"event": "purchase"})
    assert field == "goal.event" and "no event 'purchase'" in reason
    [(field, reason)] = await problems({"event": "order", "value": "coupon"})
    assert field == "goal.value" and "holds string values" in reason
    [(field, reason)] = await problems({"event": "order", "value": "total"})
    assert field == "goal.value" and "no property 'total'" in reason
    found = await problems({"event": "order", "where": [{"property": "size", "op": "equals", "value": "L"}]})
    assert found and found[0][0].startswith("goal.where.1")


def test_the_cli_recomputes_a_campaign(cli, config: Config) -> None:  # type: ignore[no-untyped-def]
    async def seed() -> int:
        rt = await Runtime.open(config)
        try:
            campaign_id, [run] = await add_campaign(rt, GOAL)
            [person] = await add_people(rt, 1)
            await add_message(rt, campaign_id, run, person)
            async with rt.factory() as session, session.begin():
                await session.execute(insert(Event).values(profile_id=person, name="order", at=SENT + US,
                                                           properties={"amount": 8}, dedupe="direct"))
            return campaign_id
        finally:
            await rt.close()

    campaign_id = asyncio.run(seed())
    code, out, err = cli("campaigns", "attribute", f"C{campaign_id}")
    assert code == 0, err
    assert out.strip() == f"C{campaign_id} 'Winter sale': 1 conversion attributed"
    code, out, err = cli("campaigns", "attribute", "C999")
    assert code != 0 and "Traceback" not in err and len(err.strip().splitlines()) == 1
