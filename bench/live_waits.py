"""Live campaigns at scale: the waits part of bench/live.py (its docstring, part 2, says what is
measured; `python -m bench.live waits` runs it). Pending waits inserted set-based, the table's
size, the engine's RSS with none and with all pending, and the live tick firing 10,000 due waits."""

from __future__ import annotations

import asyncio
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.engine import make_url

from bench.live_common import (
    Engine,
    backend,
    create_live,
    fresh_database,
    generate_profiles,
    load,
    make_config,
    seed_catalog,
)


def waits_document() -> dict[str, Any]:
    return {"name": "Abandoned cart", "type": "inaction", "when": {"timezone": "UTC"},
            "who": {"trigger": {"event": "add_to_cart", "cancel_event": "checkout", "within_minutes": 5,
                                "reeligible": "every_time"}},
            "what": {"route": {"provider": "sink"}, "body": "Your cart is waiting: finish your order today"}}


async def _open(url: str) -> tuple[Any, Any]:
    from smsconsole.db import open_database, session_factory

    engine = await open_database(url, migrate=False)
    return engine, session_factory(engine)


async def _waits_setup(url: str, config: Any, profiles: int) -> tuple[int, int, float]:
    """Profiles, a provider, the catalog, the campaign scheduled and its live run started by
    `start_due_runs` (what the engine's job calls). Returns (campaign, run, seconds generating)."""
    from smsconsole import clock
    from smsconsole.models import CampaignRun
    from smsconsole.runtime import Runtime
    from smsconsole.services import providers
    from smsconsole.services.campaigns.runs import start_due_runs
    from smsconsole.services.settings import update_settings
    from tests.fakes.sink import generic_config

    rt = await Runtime.open(config)
    try:
        now = datetime.now(UTC)
        started = time.perf_counter()
        async with rt.factory() as session, session.begin():
            await generate_profiles(session, profiles, now)
        generating = time.perf_counter() - started
        async with rt.factory() as session, session.begin():
            # The gateway is not needed: nothing is sent here (the fired messages stay queued).
            await providers.create_provider(session, rt.box, kind="generic", name="sink",
                                            values=generic_config("http://127.0.0.1:9", 1), actor="bench")
            await seed_catalog(session, {"add_to_cart": {"amount": 1}, "checkout": {"amount": 1}})
            # A cart reminder is promotional and a live campaign sends at any hour, which US quiet
            # hours block; this bench measures the waits, not the compliance rules: warn only.
            await update_settings(session, {"compliance_enforcement": "warn"}, actor="bench")
        async with rt.factory() as session, session.begin():
            campaign_id = await create_live(session, waits_document())
        await start_due_runs(rt.factory, now=clock.now())
        async with rt.factory() as session:
            run = await session.scalar(select(CampaignRun).where(CampaignRun.campaign_id == campaign_id))
        if run is None or run.state != "live":
            raise SystemExit(f"start_due_runs did not start a live run (run: {run and run.state})")
        return campaign_id, run.id, generating
    finally:
        await rt.close()


async def insert_waits(url: str, campaign_id: int, run_id: int, count: int, spread_at: datetime,
                       burst_at: datetime, later_at: datetime) -> float:
    """`count` pending waits for the first `count` profiles, one INSERT … SELECT: profiles with
    id % 100 == 0 due in the minute from `spread_at` (one every few ms, over its 60 seconds), id % 100
    == 1 all due at `burst_at`, the rest spread over the day from `later_at`. Each started five
    minutes before it is due."""
    from smsconsole.models import UTCDateTime

    engine, factory = await _open(url)
    try:
        async with factory() as session, session.begin():
            if session.get_bind().dialect.name == "postgresql":
                def at(base: str, seconds: str) -> str:
                    return f"({base} + ({seconds}) * interval '1 second')"
            else:
                def at(base: str, seconds: str) -> str:
                    return f"(strftime('%Y-%m-%d %H:%M:%S', {base}, ({seconds}) || ' seconds') || '.000000')"
            due = (f"CASE WHEN p.id % 100 = 0 THEN {at(':spread', 'p.id / 100 % 60')}"
                   f" WHEN p.id % 100 = 1 THEN {at(':burst', '0')} ELSE {at(':later', 'p.id % 86400')} END")
            started_at = (f"CASE WHEN p.id % 100 = 0 THEN {at(':spread', 'p.id / 100 % 60 - 300')}"
                          f" WHEN p.id % 100 = 1 THEN {at(':burst', '-300')} ELSE {at(':later', 'p.id % 86400 - 300')} END")
            statement = text(
                "INSERT INTO campaign_waits (campaign_id, run_id, profile_id, event_id, started_at, due_at, state,"
                f" created_at) SELECT :campaign, :run, p.id, NULL, {started_at}, {due}, 'pending', :now"
                " FROM profiles p WHERE p.user_id LIKE 'u%' ORDER BY p.id LIMIT :count")
            typed = [bindparam(name, type_=UTCDateTime()) for name in ("spread", "burst", "later", "now")]
            started = time.perf_counter()
            await session.execute(statement.bindparams(*typed), {
                "campaign": campaign_id, "run": run_id, "count": count, "spread": spread_at, "burst": burst_at,
                "later": later_at, "now": datetime.now(UTC)})
        seconds = time.perf_counter() - started
        async with factory() as session, session.begin():
            await session.execute(text("ANALYZE"))
        return seconds
    finally:
        await engine.dispose()


async def waits_size(url: str) -> dict[str, Any]:
    """Bytes on disk of campaign_waits and of each of its indexes."""
    engine, factory = await _open(url)
    try:
        async with factory() as session:
            if session.get_bind().dialect.name == "postgresql":
                table = await session.scalar(text("SELECT pg_table_size('campaign_waits')"))
                indexes = dict((await session.execute(text(
                    "SELECT indexrelname, pg_relation_size(indexrelid) FROM pg_stat_user_indexes"
                    " WHERE relname = 'campaign_waits'"))).all())
            else:
                names = list(await session.scalars(text(
                    "SELECT name FROM sqlite_master WHERE tbl_name = 'campaign_waits' AND type = 'index'")))
                sizes = dict((await session.execute(text(
                    "SELECT name, SUM(pgsize) FROM dbstat WHERE name IN ('campaign_waits', "
                    + ", ".join(f"'{n}'" for n in names) + ") GROUP BY name"))).all())
                table = sizes.pop("campaign_waits", 0)
                indexes = sizes
        return {"table": int(table or 0), "indexes": {k: int(v or 0) for k, v in indexes.items()},
                "total": int(table or 0) + sum(int(v or 0) for v in indexes.values())}
    finally:
        await engine.dispose()


def database_bytes(url: str) -> int | None:
    if backend(url) != "sqlite":
        return None
    path = Path(make_url(url).database or "")
    return sum(Path(f"{path}{s}").stat().st_size for s in ("", "-wal") if Path(f"{path}{s}").exists())


def engine_rss(config: Any, url: str, seconds: float) -> dict[str, float]:
    """RSS of `smsconsole serve` over `seconds` from when it holds the lease (its live tick going
    every second): the largest VmRSS sampled each half second, and the kernel's high-water mark."""
    engine = Engine(config, url)
    samples = []
    try:
        deadline = time.monotonic() + 120
        while "engine lease acquired" not in engine.log_path.read_text(errors="replace"):
            if time.monotonic() > deadline or engine.process.poll() is not None:
                raise SystemExit(f"the engine did not take the lease; see {engine.log_path}")
            time.sleep(0.2)
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            time.sleep(0.5)
            if engine.process.poll() is not None:
                raise SystemExit(f"the engine exited; see {engine.log_path}")
            samples.append(engine.status_kb("VmRSS"))
        hwm = engine.status_kb("VmHWM")
    finally:
        engine.stop()
    return {"rss_mb": round(max(samples) / 1024, 1), "hwm_mb": round(hwm / 1024, 1),
            "rss_last_mb": round(samples[-1] / 1024, 1)}


async def _fire(factory: Any, now: datetime) -> Any:
    """One call of fire_due_waits, as the engine's live tick makes it (given the session factory)."""
    from smsconsole.services.campaigns.live.waits import fire_due_waits

    return await fire_due_waits(factory, now=now)


async def _tick(scheduler: Any, now: datetime) -> Any:
    """One live tick of the engine (engine/campaigns.py `CampaignScheduler.live_tick`: fire_due_waits,
    the date campaigns' due times, settle_live), the clock frozen at `now`."""
    from smsconsole import clock

    clock.freeze(now)
    return await scheduler.live_tick()


async def _wait_states(factory: Any, campaign_id: int) -> dict[str, int]:
    from smsconsole.models import CampaignWait

    async with factory() as session:
        return dict((await session.execute(select(CampaignWait.state, func.count()).where(
            CampaignWait.campaign_id == campaign_id).group_by(CampaignWait.state))).all())


async def _queued(factory: Any, campaign_id: int) -> int:
    from smsconsole.models import Message

    async with factory() as session:
        return int(await session.scalar(select(func.count()).select_from(Message).where(
            Message.campaign_id == campaign_id, Message.wait_id.is_not(None))) or 0)


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak_rss() -> int:
    """This process's RSS now, its high-water mark reset to it (Linux: clear_refs 5)."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_kb("VmRSS")


async def fire_phases(url: str, campaign_id: int, spread_at: datetime, burst_at: datetime) -> dict[str, Any]:
    """(a) ticks with nothing due, (b) the spread minute: one live tick per second, the simulated
    clock at each second of the minute (what the engine does on the real clock), (c) the burst: all
    due at the same second, ticks until none of them is pending. Ticks run back to back: the figure
    is the work, not the waiting between ticks."""
    from smsconsole import clock
    from smsconsole.engine.campaigns import CampaignScheduler
    from smsconsole.models import CampaignWait

    engine, factory = await _open(url)
    pokes = []
    scheduler = CampaignScheduler(factory, poke=lambda: pokes.append(time.perf_counter()))
    out: dict[str, Any] = {}
    try:
        idle_fire, idle_tick = [], []
        for n in range(5):
            moment = spread_at - timedelta(minutes=30) + timedelta(seconds=n)
            clock.freeze(moment)
            started = time.perf_counter()
            await _fire(factory, moment)
            idle_fire.append(time.perf_counter() - started)
            started = time.perf_counter()
            await _tick(scheduler, moment)
            idle_tick.append(time.perf_counter() - started)
        out["idle_ms"] = {"fire_due_waits_median": 1000 * sorted(idle_fire)[2], "fire_due_waits_max": 1000 * max(idle_fire),
                          "live_tick_median": 1000 * sorted(idle_tick)[2], "live_tick_max": 1000 * max(idle_tick)}
        print(f"           nothing due: fire_due_waits median {out['idle_ms']['fire_due_waits_median']:.1f} ms"
              f" (max {out['idle_ms']['fire_due_waits_max']:.1f}); the whole live tick median"
              f" {out['idle_ms']['live_tick_median']:.1f} ms (max {out['idle_ms']['live_tick_max']:.1f})", flush=True)

        before = await _queued(factory, campaign_id)
        ticks = []
        for second in range(61):
            moment = spread_at + timedelta(seconds=second, milliseconds=500)
            started = time.perf_counter()
            await _tick(scheduler, moment)
            ticks.append(time.perf_counter() - started)
        spread_queued = await _queued(factory, campaign_id) - before
        states = await _wait_states(factory, campaign_id)
        out["spread"] = {"ticks": len(ticks), "seconds_total": sum(ticks), "tick_max_ms": 1000 * max(ticks),
                         "tick_median_ms": 1000 * sorted(ticks)[len(ticks) // 2], "queued": spread_queued,
                         "waits": states, "load": load()}
        print(f"           due over one minute: 61 ticks took {sum(ticks):.2f} s in all (a tick at most"
              f" {1000 * max(ticks):.0f} ms, median {out['spread']['tick_median_ms']:.0f} ms); {spread_queued:,} queued;"
              f" waits {states} ({load()})", flush=True)

        before = await _queued(factory, campaign_id)
        calls = []
        moment = burst_at + timedelta(milliseconds=500)
        rss_before = _reset_peak_rss()
        started = time.perf_counter()
        for _ in range(60):
            tick_started = time.perf_counter()
            await _tick(scheduler, moment)
            calls.append(time.perf_counter() - tick_started)
            async with factory() as session:
                left = await session.scalar(select(func.count()).select_from(CampaignWait).where(
                    CampaignWait.campaign_id == campaign_id, CampaignWait.state == "pending",
                    CampaignWait.due_at <= moment))
            if not left:
                break
            moment += timedelta(seconds=1)
        elapsed = time.perf_counter() - started
        burst_queued = await _queued(factory, campaign_id) - before
        states = await _wait_states(factory, campaign_id)
        peak = _status_kb("VmHWM")
        out["burst"] = {"ticks": len(calls), "seconds": elapsed, "tick_seconds": calls, "queued": burst_queued,
                        "waits": states, "load": load(), "rss_before_mb": rss_before / 1024, "peak_rss_mb": peak / 1024}
        print(f"           due at the same second: {len(calls)} tick(s), {elapsed:.2f} s to fire them all"
              f" ({', '.join(f'{c:.2f}' for c in calls)} s); {burst_queued:,} queued; waits {states}; RSS of the ticking"
          f" process {rss_before / 1024:.0f} MB before, peak {peak / 1024:.0f} MB ({load()})",
              flush=True)
    finally:
        clock.freeze(None)
        await engine.dispose()
    return out


async def _existing_waits(url: str) -> tuple[int, int, datetime, int] | None:
    """A waits database this bench generated before: (campaign, run, first due time, waits), its
    fired waits put back to pending and their messages and counters deleted; None when there is none."""
    from smsconsole.models import (
        Campaign,
        CampaignLiveDay,
        CampaignRun,
        CampaignWait,
        Message,
    )

    try:
        engine, factory = await _open(url)
    except Exception:  # noqa: BLE001 - no database there yet, or not one this bench made: generate
        return None
    try:
        async with factory() as session, session.begin():
            row = (await session.execute(select(Campaign.id, CampaignRun.id).join(
                CampaignRun, CampaignRun.campaign_id == Campaign.id).where(
                Campaign.name == waits_document()["name"], CampaignRun.state == "live"))).first()
            if row is None:
                return None
            campaign_id, run_id = row
            first, count = (await session.execute(select(func.min(CampaignWait.due_at), func.count()).where(
                CampaignWait.campaign_id == campaign_id))).one()
            if not count or first < datetime.now(UTC) + timedelta(minutes=15):
                return None
            await session.execute(text("UPDATE campaign_waits SET state = 'pending', reason = NULL, ended_at = NULL"
                                       " WHERE campaign_id = :c AND state <> 'pending'"), {"c": campaign_id})
            await session.execute(Message.__table__.delete().where(Message.campaign_id == campaign_id))
            await session.execute(CampaignLiveDay.__table__.delete().where(CampaignLiveDay.campaign_id == campaign_id))
        return campaign_id, run_id, first, count
    except Exception:  # noqa: BLE001 - an older schema or another database: generate afresh
        return None
    finally:
        await engine.dispose()


def waits(url: str, count: int, profiles: int, rss_seconds: float, reuse: bool) -> dict[str, Any]:
    parsed = make_url(url)
    workdir = Path("/tmp/smsconsole-live-bench") / f"waits-{parsed.get_backend_name()}-{Path(parsed.database or 'db').stem}"
    config = make_config(url, workdir)
    result: dict[str, Any] = {"database": backend(url), "profiles": profiles, "waits": count}
    existing = asyncio.run(_existing_waits(url)) if reuse else None
    if existing is None:
        fresh_database(url)
        shutil.rmtree(workdir, ignore_errors=True)
        print(f"{backend(url):10} generating {profiles:,} profiles ({load()})", flush=True)
        campaign_id, run_id, generating = asyncio.run(_waits_setup(url, config, profiles))
        print(f"           generated in {generating:.1f} s; campaign {campaign_id} live (run {run_id})", flush=True)
        result["generate_profiles_s"] = generating
        result["rss_no_waits"] = engine_rss(config, url, rss_seconds)
        print(f"           engine RSS with no waits: {result['rss_no_waits']}", flush=True)
        # Due a day from now: an engine running in real time meanwhile (the RSS runs) fires none.
        spread_at = (datetime.now(UTC) + timedelta(days=1)).replace(second=0, microsecond=0)
        size_before = database_bytes(url)
        seconds = asyncio.run(insert_waits(url, campaign_id, run_id, count, spread_at,
                                           spread_at + timedelta(minutes=10), spread_at + timedelta(minutes=70)))
        size_after = database_bytes(url)
        result["insert_waits_s"] = seconds
        if size_before is not None and size_after is not None:
            result["file_growth"] = size_after - size_before
        print(f"           {count:,} waits inserted in {seconds:.1f} s", flush=True)
    else:
        campaign_id, run_id, spread_at, count = existing
        result["waits"] = count
        print(f"{backend(url):10} reusing {count:,} waits of campaign {campaign_id} (fired ones put back to pending)"
              f" ({load()})", flush=True)
    size = asyncio.run(waits_size(url))
    result["size"] = size
    mib = 1024 * 1024
    print(f"           campaign_waits: table {size['table'] / mib:.1f} MiB, indexes "
          + ", ".join(f"{k} {v / mib:.1f} MiB" for k, v in size["indexes"].items())
          + f"; total {size['total'] / mib:.1f} MiB ({size['total'] / max(count, 1):.0f} bytes a wait)"
          + (f"; the file grew {result['file_growth'] / mib:.1f} MiB" if "file_growth" in result else ""), flush=True)
    result["rss_waits"] = engine_rss(config, url, rss_seconds)
    print(f"           engine RSS with {count:,} waits pending: {result['rss_waits']}", flush=True)
    result.update(asyncio.run(fire_phases(url, campaign_id, spread_at, spread_at + timedelta(minutes=10))))
    return result
