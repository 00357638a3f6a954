"""The rollups (migration 0010) equal a full recount of the messages and conversions after a
randomized run of inserts, sends, receipts, failures, suppressions, price reports, provider
changes, deletes and rolled-back ("killed") transactions, on both databases; and `compact` folds
PostgreSQL's per-transaction slots without changing a sum."""

from __future__ import annotations

import contextlib
import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select, update

from smsconsole import clock
from smsconsole.models import (
    Campaign,
    CampaignConversion,
    CampaignRun,
    Message,
    RollupDefer,
    StatCampaign,
    StatSeries,
    StatSeriesHour,
    StatTraffic,
    StatTrafficHour,
)
from smsconsole.runtime import Runtime
from smsconsole.services import rollup_batch, rollups

NOW = datetime(2026, 11, 23, 9, 30, 20, tzinfo=UTC)
EDGES = rollups.LATENCY_EDGES


def _minute(at: datetime | None) -> int:
    assert at is not None
    return int(at.timestamp()) // 60


def _state(state: str) -> str:
    return "queued" if state in ("claimed", "sending") else state


def _detail(m: Any) -> str:
    if m.state in ("failed", "undelivered", "unknown"):
        return (m.error_code or m.reason or "")[:120]
    if m.state == "suppressed":
        return (m.reason or "")[:120]
    return ""


def _bucket(seconds: float) -> str:
    return next((str(edge) for edge in EDGES if seconds < edge), "inf")


async def recount(session: Any) -> tuple[Counter, ...]:
    """The rollups computed in Python from the rows, independently of the triggers: traffic,
    campaign, series, and traffic and series by the hour."""
    traffic: Counter = Counter()
    campaign: Counter = Counter()
    series: Counter = Counter()
    for m in (await session.scalars(select(Message).execution_options(populate_existing=True))).all():
        provider, variant = m.provider_name or "", m.variant or ""
        traffic[(_minute(m.created_at), provider, m.campaign_id or 0, _state(m.state))] += 1
        if m.campaign_id is not None:
            key = (m.campaign_id, m.run_id or 0, variant, provider, m.country or "")
            campaign[(*key, _state(m.state), _detail(m), "n")] += 1
            campaign[(*key, _state(m.state), _detail(m), "segments")] += m.segments
            campaign[(*key, _state(m.state), _detail(m), "amount")] += round(m.price or 0, 6)
            if m.state == "delivered" and m.sent_at and m.finished_at:
                campaign[(*key, "latency", _bucket((m.finished_at - m.sent_at).total_seconds()), "n")] += 1
        if m.sent_at:
            series[(_minute(m.sent_at), m.campaign_id or 0, variant, provider, "sent")] += 1
        if m.state == "delivered" and m.finished_at:
            series[(_minute(m.finished_at), m.campaign_id or 0, variant, provider, "delivered")] += 1
        if m.state in ("failed", "undelivered") and m.finished_at:
            series[(_minute(m.finished_at), m.campaign_id or 0, variant, provider, "failed")] += 1
    for c in (await session.scalars(select(CampaignConversion))).all():
        key = (c.campaign_id, c.run_id, c.variant or "", "", "", "converted", "")
        campaign[(*key, "n")] += 1
        campaign[(*key, "amount")] += round(c.revenue or 0, 6)
        series[(_minute(c.converted_at), c.campaign_id, c.variant or "", "", "converted")] += 1
    return (+traffic, +Counter({k: v for k, v in campaign.items() if v}), +series, _hourly(traffic), _hourly(series))


def _hourly(counts: Counter) -> Counter:
    out: Counter = Counter()
    for (minute, *rest), n in counts.items():
        out[(minute // 60, *rest)] += n
    return +out


async def read_rollups(session: Any) -> tuple[Counter, ...]:
    traffic: Counter = Counter()
    for row in (await session.execute(select(StatTraffic.minute, StatTraffic.provider, StatTraffic.campaign_id,
                                             StatTraffic.state, func.sum(StatTraffic.n))
                                      .group_by(StatTraffic.minute, StatTraffic.provider, StatTraffic.campaign_id,
                                                StatTraffic.state))).all():
        traffic[tuple(row[:4])] += int(row[4])
    campaign: Counter = Counter()
    keys = (StatCampaign.campaign_id, StatCampaign.run_id, StatCampaign.variant, StatCampaign.provider,
            StatCampaign.country, StatCampaign.state, StatCampaign.detail)
    for row in (await session.execute(select(*keys, func.sum(StatCampaign.n), func.sum(StatCampaign.segments),
                                             func.sum(StatCampaign.amount)).group_by(*keys))).all():
        campaign[(*row[:7], "n")] += int(row[7])
        campaign[(*row[:7], "segments")] += int(row[8])
        campaign[(*row[:7], "amount")] += round(float(row[9]), 6)
    series: Counter = Counter()
    skeys = (StatSeries.minute, StatSeries.campaign_id, StatSeries.variant, StatSeries.provider, StatSeries.metric)
    for row in (await session.execute(select(*skeys, func.sum(StatSeries.n)).group_by(*skeys))).all():
        series[tuple(row[:5])] += int(row[5])
    traffic_hour: Counter = Counter()
    hkeys = (StatTrafficHour.hour, StatTrafficHour.provider, StatTrafficHour.campaign_id, StatTrafficHour.state)
    for row in (await session.execute(select(*hkeys, func.sum(StatTrafficHour.n)).group_by(*hkeys))).all():
        traffic_hour[tuple(row[:4])] += int(row[4])
    series_hour: Counter = Counter()
    shkeys = (StatSeriesHour.hour, StatSeriesHour.campaign_id, StatSeriesHour.variant, StatSeriesHour.provider,
              StatSeriesHour.metric)
    for row in (await session.execute(select(*shkeys, func.sum(StatSeriesHour.n)).group_by(*shkeys))).all():
        series_hour[tuple(row[:5])] += int(row[5])
    return (+traffic, +Counter({k: round(v, 6) for k, v in campaign.items() if round(v, 6)}), +series,
            +traffic_hour, +series_hour)


async def _campaigns(rt: Runtime) -> list[int]:
    async with rt.factory() as session, session.begin():
        ids = []
        for name in ("one", "two"):
            row = Campaign(name=name, type="one_time", state="running", document={}, created_at=NOW, updated_at=NOW)
            session.add(row)
            await session.flush()
            ids.append(row.id)
        for number in (1, 2, 7):
            session.add(CampaignRun(id=number, campaign_id=ids[0], number=number, planned_at=NOW + timedelta(days=number),
                                    state="running", updated_at=NOW))
        return ids


def _new_message(rng: random.Random, campaigns: list[int], at: datetime) -> dict[str, Any]:
    campaign = rng.choice([None, *campaigns])
    return {"kind": "campaign" if campaign else "test", "to_number": f"+1415555{rng.randrange(10000):04d}",
            "body": "x", "encoding": "GSM-7", "segments": rng.choice([1, 1, 2, 3]), "state": "queued",
            "provider_name": rng.choice([None, None, "alpha"]), "country": rng.choice([None, "US", "GB"]),
            "campaign_id": campaign, "run_id": rng.choice([1, 2]) if campaign else None,
            "variant": rng.choice(["A", "B", "control"]) if campaign else None,
            "created_at": at, "updated_at": at}


def _step(rng: random.Random, row: Any, at: datetime) -> dict[str, Any] | None:
    """A random legal-looking move of one message."""
    state = row.state
    if state == "queued":
        return rng.choice([{"state": "claimed"}, {"state": "sending", "provider_name": rng.choice(["alpha", "beta"])},
                           {"state": "suppressed", "reason": rng.choice(["frequency cap: 3 per day", "unsubscribed"]),
                            "finished_at": at}])
    if state in ("claimed", "sending"):
        return rng.choice([{"state": "sent", "sent_at": at, "provider_name": rng.choice(["alpha", "beta"])},
                           {"state": "failed", "error_code": rng.choice(["21211", None]), "reason": "bad number",
                            "finished_at": at},
                           {"state": "unknown", "reason": "timed out"}, {"state": "queued", "provider_name": None}])
    if state == "sent":
        later = at + timedelta(seconds=rng.choice([0.5, 4, 70, 4000, 90000]))
        return rng.choice([{"state": "delivered", "finished_at": later, "price": rng.choice([None, 0.0075])},
                           {"state": "undelivered", "error_code": "30003", "finished_at": later},
                           {"price": 0.01, "price_currency": "USD"}])
    if state == "unknown":
        return {"state": "sent", "sent_at": at}
    return None


@pytest.mark.parametrize("batched", [False, True], ids=["per-row", "per-batch"])
@pytest.mark.parametrize("seed", [15, 16, 17])
async def test_rollups_equal_a_recount_after_a_random_run(runtime: Runtime, seed: int, batched: bool,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rollup_batch, "DEFER_FROM", 1)  # defer even the smallest batch
    rng = random.Random(seed)
    clock.freeze(NOW)
    campaigns = await _campaigns(runtime)
    at = NOW
    for round_ in range(40):
        at += timedelta(seconds=rng.choice([5, 30, 61]))
        async with runtime.factory() as session:
            kill = rng.random() < 0.2
            await session.begin()
            # a set-based insert (as a run's materialization writes them), then single-row moves
            new = [_new_message(rng, campaigns, at) for _ in range(rng.randint(1, 8))]
            await session.execute(insert(Message), new)
            rows = (await session.scalars(select(Message).order_by(func.random()).limit(6))).all()
            # as the dispatcher's outcome writer: the rollups kept per batch (on SQLite) or per row
            async with (rollup_batch.deferred(session, [row.id for row in rows]) if batched
                        else contextlib.nullcontext()):
                for row in rows:
                    change = _step(rng, row, at)
                    if change:
                        await session.execute(update(Message).where(Message.id == row.id)
                                              .values(**change, updated_at=at))
            if round_ % 7 == 3:  # a set-based move, as a kill or an abort does
                await session.execute(update(Message).where(Message.state == "queued", Message.campaign_id.is_not(None))
                                      .values(state="suppressed", reason="run aborted: stopped", finished_at=at))
            if round_ % 11 == 5:
                victim = await session.scalar(select(Message.id).order_by(Message.id).limit(1))
                if victim is not None:
                    await session.execute(delete(Message).where(Message.id == victim))
            if rng.random() < 0.3:
                run = rng.choice([1, 2])
                await session.execute(insert(CampaignConversion).values(
                    campaign_id=rng.choice(campaigns), run_id=run, variant=rng.choice(["A", "control"]),
                    profile_id=rng.randrange(10**6), event_id=round_, converted_at=at,
                    revenue=rng.choice([None, 12.5]), created_at=at, updated_at=at))
            if kill:
                await session.rollback()
            else:
                await session.commit()
    async with runtime.factory() as session:
        expected = await recount(session)
        got = await read_rollups(session)
    assert sum(expected[0].values()) > 50
    for name, have, want in zip(("traffic", "campaign", "series", "traffic_hour", "series_hour"), got, expected,
                                strict=True):
        assert have == want, name

    async with runtime.factory() as session, session.begin():
        await rollups.compact(session)
    async with runtime.factory() as session:
        assert await read_rollups(session) == expected
        slots = await session.scalar(select(func.count()).select_from(StatCampaign).where(StatCampaign.slot != 0))
        assert slots == 0
        assert await session.scalar(select(func.count()).select_from(RollupDefer)) == 0  # never committed held


async def _sending(rt: Runtime, count: int) -> list[int]:
    """`count` campaign messages in flight (`sending`), at a frozen NOW; their ids."""
    clock.freeze(NOW)
    campaigns = await _campaigns(rt)
    base = {"kind": "campaign", "to_number": "+14155550100", "body": "x", "encoding": "GSM-7", "segments": 1,
            "campaign_id": campaigns[0], "run_id": 1, "variant": "A", "country": "US", "provider_name": "alpha",
            "state": "sending", "created_at": NOW, "updated_at": NOW}
    async with rt.factory() as session, session.begin():
        return list((await session.scalars(insert(Message).returning(Message.id), [base] * count)).all())


async def test_a_deferred_batch_writes_its_rollups_once_on_the_way_out(runtime: Runtime) -> None:
    """On SQLite the per-row update triggers stand aside inside `deferred` (the batch's rollups
    move once, on the way out); other rows' updates are never deferred; on PostgreSQL the
    statement triggers run as always."""
    ids = await _sending(runtime, 12)
    batch, other = ids[:rollup_batch.DEFER_FROM], ids[-1]

    async def sent_now(session: Any) -> int:
        return int(await session.scalar(select(func.coalesce(func.sum(StatTraffic.n), 0))
                                        .where(StatTraffic.state == "sent")) or 0)

    sqlite = runtime.db.dialect.name == "sqlite"
    async with runtime.factory() as session, session.begin():
        async with rollup_batch.deferred(session, batch):
            await session.execute(update(Message).where(Message.id.in_(batch)).values(state="sent", sent_at=NOW))
            assert await sent_now(session) == (0 if sqlite else len(batch))  # not yet, on SQLite
        assert await sent_now(session) == len(batch)
        await session.execute(update(Message).where(Message.id == other).values(state="sent", sent_at=NOW))
        assert await sent_now(session) == len(batch) + 1  # the triggers are back
        async with rollup_batch.deferred(session, ids[:2]):  # too few to defer: the triggers count them
            await session.execute(update(Message).where(Message.id.in_(ids[:2])).values(state="queued"))
            assert await sent_now(session) == len(batch) - 1
    async with runtime.factory() as session:
        assert await session.scalar(select(func.count()).select_from(RollupDefer)) == 0
        assert await read_rollups(session) == await recount(session)


async def test_an_error_inside_a_deferred_batch_never_leaves_the_triggers_aside(runtime: Runtime) -> None:
    """A caller that catches an error from inside the block and commits anyway (none should) still
    leaves rollups equal to the rows and the hold released."""
    ids = await _sending(runtime, 10)
    async with runtime.factory() as session, session.begin():
        with contextlib.suppress(RuntimeError):
            async with rollup_batch.deferred(session, ids):
                await session.execute(update(Message).where(Message.id.in_(ids[:5])).values(state="sent", sent_at=NOW))
                raise RuntimeError("a bug between two statements")
    async with runtime.factory() as session:
        assert await session.scalar(select(func.count()).select_from(RollupDefer)) == 0
        assert await read_rollups(session) == await recount(session)
    async with runtime.factory() as session, session.begin():  # and the triggers work again
        await session.execute(update(Message).where(Message.id == ids[9]).values(state="sent", sent_at=NOW))
    async with runtime.factory() as session:
        assert await read_rollups(session) == await recount(session)


async def test_readers_sum_the_rollups(runtime: Runtime) -> None:
    clock.freeze(NOW)
    campaigns = await _campaigns(runtime)
    async with runtime.factory() as session, session.begin():
        base = {"kind": "campaign", "to_number": "+14155550100", "body": "x", "encoding": "GSM-7", "segments": 2,
                "campaign_id": campaigns[0], "run_id": 7, "variant": "B", "country": "US", "provider_name": "alpha",
                "created_at": NOW, "updated_at": NOW}
        await session.execute(insert(Message), [
            {**base, "state": "delivered", "sent_at": NOW, "finished_at": NOW + timedelta(seconds=4), "price": 0.5},
            {**base, "state": "delivered", "sent_at": NOW, "finished_at": NOW + timedelta(seconds=40), "price": 0.25},
            {**base, "state": "failed", "error_code": "30003", "finished_at": NOW},
            {**base, "state": "claimed", "created_at": NOW - timedelta(hours=2)},
        ])
    async with runtime.factory() as session:
        rows = await rollups.campaign_rows(session, campaigns[0])
        by_state = defaultdict(int)
        for row in rows:
            by_state[(row.state, row.detail)] += row.n
        assert by_state == {("delivered", ""): 2, ("failed", "30003"): 1, ("queued", ""): 1,
                            ("latency", "5"): 1, ("latency", "60"): 1}
        assert sum(r.amount for r in rows if r.state == "delivered") == 0.75
        assert sum(r.segments for r in rows if r.state != "latency") == 8
        recent = await rollups.traffic(session, NOW - timedelta(minutes=5))
        assert sorted((r.state, r.n) for r in recent) == [("delivered", 2), ("failed", 1)]
        minute = rollups.minute_of(NOW)
        sent = await rollups.series(session, minute - 10, minute + 10, campaign_id=campaigns[0], metrics=["sent"])
        assert [(r.minute, r.n) for r in sent] == [(minute, 2)]
        by_variant = await rollups.series(session, minute - 10, minute + 10, by_variant=True, bucket=5)
        assert {(r.variant, r.metric, r.n) for r in by_variant} == {("B", "sent", 2), ("B", "delivered", 2),
                                                                    ("B", "failed", 1)}
        hour_start = minute - minute % 60
        hourly = await rollups.series(session, hour_start - 120, hour_start + 59, by_variant=True, bucket=60)
        assert {(r.minute, r.variant, r.metric, r.n) for r in hourly} == {
            (hour_start, "B", "sent", 2), (hour_start, "B", "delivered", 2), (hour_start, "B", "failed", 1)}
        today = await rollups.traffic(session, NOW - timedelta(hours=5))  # minutes, then whole hours
        assert sorted((r.state, r.n) for r in today) == [("delivered", 2), ("failed", 1), ("queued", 1)]
        assert rollups.latency_percentiles({"5": 1, "60": 1}) == {0.5: "≤ 5 s", 0.9: "≤ 1 min", 0.99: "≤ 1 min"}


@pytest.mark.fresh_database
async def test_upgrading_a_database_with_messages_builds_its_rollups(database_url: str) -> None:
    """A database at 0009 holding messages gets rollups equal to a recount when it is upgraded,
    and the triggers keep them from then on; downgrading to 0009 removes the triggers."""
    from alembic import command

    from smsconsole.db import _alembic_config, create_engine, session_factory

    engine = create_engine(database_url)
    cfg = _alembic_config(engine.url.render_as_string(hide_password=False))

    async def migrate(revision: str, down: bool = False) -> None:
        def run(sync_conn: Any) -> None:
            cfg.attributes["connection"] = sync_conn
            (command.downgrade if down else command.upgrade)(cfg, revision)

        async with engine.begin() as conn:
            await conn.run_sync(run)

    try:
        await migrate("0009")
        columns = "kind, to_number, body, encoding, segments, state, provider_name, priority, attempts, render, " \
                  "sent_at, finished_at, created_at, updated_at"
        async with engine.begin() as conn:
            for index, state in enumerate(("queued", "sent", "delivered", "failed", "delivered")):
                sent = "'2026-11-23 09:30:00'" if state in ("sent", "delivered") else "NULL"
                finished = "'2026-11-23 09:30:07'" if state in ("delivered", "failed") else "NULL"
                await conn.exec_driver_sql(
                    f"INSERT INTO messages ({columns}) VALUES ('test', '+1415555010{index}', 'x', 'GSM-7', 1, "
                    f"'{state}', 'alpha', 0, 0, false, {sent}, {finished}, '2026-11-23 09:29:00', "
                    f"'2026-11-23 09:29:00')")
            await conn.exec_driver_sql(
                "INSERT INTO campaigns (id, name, type, state, document, created_at, updated_at) "
                "VALUES (5, 'c', 'one_time', 'running', '{}', '2026-11-23 09:00:00', '2026-11-23 09:00:00')")
            await conn.exec_driver_sql(
                "INSERT INTO campaign_runs (id, campaign_id, number, planned_at, state, suppressed, updated_at) "
                "VALUES (6, 5, 1, '2026-11-23 09:00:00', 'running', '{}', '2026-11-23 09:00:00')")
            await conn.exec_driver_sql(
                f"INSERT INTO messages ({columns}, campaign_id, run_id, variant) VALUES ('campaign', '+14155550199', "
                "'x', 'GSM-7', 1, 'sent', 'alpha', 0, 0, false, '2026-11-23 09:30:00', NULL, '2026-11-23 09:29:00', "
                "'2026-11-23 09:29:00', 5, 6, 'B')")
            await conn.exec_driver_sql(
                "INSERT INTO inbound_messages (sender, text, answers_message_id, via, received_at) "
                "SELECT '+14155550199', 'STOP', id, 'webhook', '2026-11-23 09:40:00' FROM messages WHERE run_id = 6")
        await migrate("head")
        async with engine.connect() as conn:  # the reply received before is linked to its campaign arm
            linked = (await conn.exec_driver_sql("SELECT campaign_id, run_id, variant FROM inbound_messages")).all()
            assert [tuple(row) for row in linked] == [(5, 6, "B")]
        factory = session_factory(engine)
        async with factory() as session:
            expected = await recount(session)
            assert sum(expected[0].values()) == 6
            assert await read_rollups(session) == expected
        async with factory() as session, session.begin():
            await session.execute(update(Message).where(Message.state == "queued").values(state="sent", sent_at=NOW))
        async with factory() as session:
            assert await read_rollups(session) == await recount(session)
        await migrate("0009", down=True)
        async with engine.begin() as conn:  # no trigger left to write to the dropped tables
            await conn.exec_driver_sql("UPDATE messages SET state = 'delivered'")
    finally:
        await engine.dispose()


async def test_a_long_campaigns_chart_reads_whole_hours(runtime: Runtime) -> None:
    """Over four days the report's series takes hour buckets from stat_series_hour; its points
    add up to the messages sent, delivered and failed, each in the bucket of its time."""
    from smsconsole.services.campaigns.report import build_report

    clock.freeze(NOW)
    campaigns = await _campaigns(runtime)
    base = {"kind": "campaign", "to_number": "+14155550100", "body": "x", "encoding": "GSM-7", "segments": 1,
            "campaign_id": campaigns[0], "run_id": 1, "variant": "A", "country": "US", "provider_name": "alpha"}
    rows = []
    for hours in range(0, 96, 5):
        at = NOW - timedelta(hours=hours, minutes=hours)
        rows.append({**base, "state": "delivered", "sent_at": at, "finished_at": at + timedelta(seconds=3),
                     "created_at": at, "updated_at": at})
        rows.append({**base, "state": "failed", "finished_at": at, "created_at": at, "updated_at": at})
    async with runtime.factory() as session, session.begin():
        await session.execute(insert(Message), rows)
    async with runtime.factory() as session:
        report = await build_report(session, campaigns[0])
    assert report.bucket_minutes % 60 == 0 and len(report.series) <= 60
    assert sum(p.sent for p in report.series) == 20
    assert sum(p.delivered for p in report.series) == 20 and sum(p.failed for p in report.series) == 20
    for point in report.series:  # every count sits in the bucket of its time
        span = (point.at, point.at + timedelta(minutes=report.bucket_minutes))
        inside = [r for r in rows if r["state"] == "delivered" and span[0] <= r["sent_at"] < span[1]]
        assert point.sent == len(inside)
