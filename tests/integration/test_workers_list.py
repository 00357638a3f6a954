"""The live engine processes, as `smsconsole workers` and the Home section show them: rows of
engine_workers that are unexpired, the scheduler first; dead ones left out; a renewal that finds
its row lapsed reports it (the caller starts a new tenure)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from sqlalchemy import update

from smsconsole import clock
from smsconsole.config import Config
from smsconsole.engine.lease import Holder
from smsconsole.engine.workers import WorkerRegistry, live_workers
from smsconsole.models import EngineWorker
from smsconsole.runtime import Runtime
from tests.tui.support import make_app, wait_for


async def _register(rt: Runtime, host: str, pid: int, role: str) -> WorkerRegistry:
    registry = WorkerRegistry(rt.factory, Holder(f"{host}:{pid}:x", host, pid), 30.0)
    registry.role = role
    await registry.register()
    return registry


async def test_live_workers_scheduler_first_dead_ones_left_out(runtime: Runtime) -> None:
    await _register(runtime, "b-host", 20, "worker")
    await _register(runtime, "z-host", 30, "scheduler")
    dead = await _register(runtime, "a-host", 10, "worker")
    async with runtime.factory() as session, session.begin():
        await session.execute(update(EngineWorker).where(EngineWorker.pid == 10)
                              .values(expires_at=clock.now() - timedelta(seconds=1)))
    async with runtime.factory() as session:
        workers = await live_workers(session)
    assert [(w.host, w.pid, w.role) for w in workers] == [("z-host", 30, "scheduler"), ("b-host", 20, "worker")]
    assert await dead.heartbeat() is False  # its row lapsed: a new tenure, a new token
    token = dead.token
    assert await dead.register() != token


async def test_a_heartbeat_counts_the_processes_that_dispatch(runtime: Runtime) -> None:
    """What the dispatcher divides the rate limits' claim horizon by: live scheduler and worker
    rows, this one included; standbys and dead rows left out."""
    me = await _register(runtime, "a-host", 1, "worker")
    assert me.dispatching == 1  # before any heartbeat: alone
    await _register(runtime, "b-host", 2, "scheduler")
    await _register(runtime, "c-host", 3, "standby")
    await _register(runtime, "d-host", 4, "worker")
    assert await me.heartbeat() and me.dispatching == 3
    async with runtime.factory() as session, session.begin():
        await session.execute(update(EngineWorker).where(EngineWorker.pid == 4)
                              .values(expires_at=clock.now() - timedelta(seconds=1)))
    assert await me.heartbeat() and me.dispatching == 2


async def test_the_figures_are_the_last_minutes(runtime: Runtime) -> None:
    totals = [0, 0]
    registry = WorkerRegistry(runtime.factory, Holder("h:1:x", "h", 1), 30.0, lambda: (totals[0], totals[1]))
    await registry.register()
    totals[:] = [500, 480]
    assert await registry.heartbeat() is True
    async with runtime.factory() as session:
        (worker,) = await live_workers(session)
    assert (worker.claimed_per_minute, worker.sent_per_minute) == (500, 480)
    await registry.deregister()
    async with runtime.factory() as session:
        assert await live_workers(session) == []


def test_workers_command_lists_them(config: Config, cli: Any) -> None:
    code, out, err = cli("workers")
    assert (code, err) == (0, "")
    assert out == "no engine is running: start one with `smsconsole serve` (or open the console)\n"

    async def seed() -> None:
        rt = await Runtime.open(config)
        try:
            totals = [0, 0]
            registry = WorkerRegistry(rt.factory, Holder("box-1:4242:x", "box-1", 4242), 30.0,
                                      lambda: (totals[0], totals[1]))
            registry.role = "scheduler"
            await registry.register()
            totals[:] = [120, 118]  # claimed and sent since it registered
            assert await registry.heartbeat()
            await _register(rt, "box-2", 77, "worker")
        finally:
            await rt.close()

    asyncio.run(seed())
    code, out, err = cli("workers")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["HOST", "PID", "ROLE", "CLAIMED/MIN", "SENT/MIN", "STARTED", "(UTC)", "LISTENING"]
    assert lines[1].split()[:5] == ["box-1", "4242", "scheduler", "120", "118"]
    assert lines[2].split()[:5] == ["box-2", "77", "worker", "0", "0"]
    assert lines[3] == "2 workers, 118 sent/min; 120 claimed/min"
    code, out, _ = cli("workers", "--json")
    assert [(w["host"], w["role"], w["sent_per_minute"]) for w in json.loads(out)] == [
        ("box-1", "scheduler", 118), ("box-2", "worker", 0)]


async def test_home_sums_the_workers_when_several_share_the_work(runtime: Runtime) -> None:
    await _register(runtime, "box-1", 4242, "scheduler")
    await _register(runtime, "box-2", 77, "worker")
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(120, 36)) as pilot:
        detail = app.screen.query_one("#home-engine-detail")
        await wait_for(pilot, lambda: "2 workers" in str(detail.render()), what="the workers line")
        text = str(detail.render())
        assert "2 workers, 0 sent/min" in text
        assert " sched box-1:4242 0/min" in text and " work box-2:77 0/min" in text
