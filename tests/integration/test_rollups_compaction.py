"""The lease holder's compaction job: the campaign scheduler runs `rollups.compact` on an interval,
which folds PostgreSQL's per-transaction slots into slot 0 and drops rollup rows that sum to
nothing (on both databases), without changing what Home and Stats read."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from smsconsole import clock
from smsconsole.engine.campaigns import CampaignScheduler
from smsconsole.models import Message, StatSeries, StatTraffic
from smsconsole.runtime import Runtime
from smsconsole.services import stats

NOW = datetime(2026, 11, 23, 9, 30, 20, tzinfo=UTC)


def _row(n: int, state: str, provider: str) -> dict[str, Any]:
    left = state in ("sent", "delivered")
    return {"kind": "test", "to_number": f"+1415555{n:04d}", "body": "x", "encoding": "GSM-7", "segments": 1,
            "state": state, "provider_name": provider, "created_at": NOW - timedelta(minutes=n % 3),
            "sent_at": NOW if left else None, "updated_at": NOW}


async def _rollup_rows(rt: Runtime) -> tuple[int, int, int]:
    """(rows in slots other than 0, rows summing to zero in slot 0, all rows) of the traffic and
    series rollups."""
    async with rt.factory() as session:
        slotted = zero = total = 0
        for table in (StatTraffic, StatSeries):
            slotted += await session.scalar(select(func.count()).select_from(table).where(table.slot != 0)) or 0
            zero += await session.scalar(select(func.count()).select_from(table)
                                         .where(table.slot == 0, table.n == 0)) or 0
            total += await session.scalar(select(func.count()).select_from(table)) or 0
        return slotted, zero, total


async def _traffic(rt: Runtime) -> tuple[tuple[int, int, int], list[int]]:
    async with rt.factory() as session:
        hour = await stats.delivery_stats(session, "hour")
    return (hour.total.sent, hour.total.delivered, hour.total.waiting), hour.per_minute


async def test_the_scheduler_compacts_the_rollups_on_its_interval(runtime: Runtime) -> None:
    clock.freeze(NOW)
    postgres = runtime.config.effective_database_url.startswith("postgresql")
    for batch in range(3):  # three transactions: three slots per key on PostgreSQL
        async with runtime.factory() as session, session.begin():
            await session.execute(insert(Message), [_row(batch * 10 + n, "queued", "alpha") for n in range(10)])
    async with runtime.factory() as session, session.begin():  # moves, then a delete: rows that net to zero
        await session.execute(update(Message).where(Message.id % 2 == 0).values(state="sent", sent_at=NOW))
        await session.execute(update(Message).where(Message.id % 5 == 0).values(provider_name="beta"))
        await session.execute(delete(Message).where(Message.provider_name == "beta"))
    before = await _traffic(runtime)
    assert before[0][0] > 0 and before[0][2] > 0
    slotted, zero, total = await _rollup_rows(runtime)
    assert zero or slotted  # something to compact on either database
    assert (slotted > 0) == postgres

    scheduler = CampaignScheduler(runtime.factory, rebuild_seconds=3600, live_tick_seconds=3600,
                                  settle_seconds=3600, compact_seconds=0.2)
    await scheduler.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            slotted, zero, after_total = await _rollup_rows(runtime)
            if not slotted and not zero:
                break
            await asyncio.sleep(0.1)
    finally:
        await scheduler.stop()
    assert (slotted, zero) == (0, 0)
    assert after_total < total
    assert await _traffic(runtime) == before  # the same counts, from fewer rows


async def test_compaction_keeps_later_writes(runtime: Runtime) -> None:
    """Writes committed after a compaction land in new slots and are folded by the next one."""
    clock.freeze(NOW)
    scheduler = CampaignScheduler(runtime.factory)
    async with runtime.factory() as session, session.begin():
        await session.execute(insert(Message), [_row(n, "sent", "alpha") for n in range(4)])
    await scheduler.compact_rollups()
    async with runtime.factory() as session, session.begin():
        await session.execute(insert(Message), [_row(n, "delivered", "alpha") for n in range(4, 6)])
    counts, per_minute = await _traffic(runtime)
    assert counts == (6, 2, 0) and per_minute[-1] == 6
    await scheduler.compact_rollups()
    assert (await _rollup_rows(runtime))[:2] == (0, 0)
    assert await _traffic(runtime) == (counts, per_minute)
