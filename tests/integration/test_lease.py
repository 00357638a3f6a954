"""Exactly one engine per database: the lease, its takeover after expiry, and clean shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import update

from smsconsole.config import Config
from smsconsole.engine import lease
from smsconsole.engine.runner import Engine, EngineState
from smsconsole.models import EngineLease
from smsconsole.runtime import Runtime


async def _until(predicate, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def _current(rt: Runtime) -> lease.LeaseInfo | None:
    async with rt.factory() as session:
        return await lease.current(session)


async def test_two_engines_one_lease(runtime: Runtime, config: Config) -> None:
    first = Engine(runtime.factory, runtime.box, config)
    second = Engine(runtime.factory, runtime.box, config)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(first.run(stop))]

    async def first_running() -> bool:
        return first.state is EngineState.RUNNING

    await _until(first_running)
    tasks.append(asyncio.create_task(second.run(stop)))

    async def second_standing_by() -> bool:
        return second.state is EngineState.STANDBY and second.other_holder is not None

    await _until(second_standing_by)
    await asyncio.sleep(config.lease_ttl_seconds * 1.5)  # heartbeats keep the first one's lease alive
    assert first.state is EngineState.RUNNING
    assert second.state is EngineState.STANDBY
    assert second.other_holder is not None and second.other_holder.holder == first.holder.id
    assert f"pid {first.holder.pid}" in second.status.describe()
    stop.set()
    await asyncio.gather(*tasks)
    assert await _current(runtime) is None  # released on clean stop


async def test_engine_that_loses_its_lease_stands_by(runtime: Runtime, config: Config) -> None:
    engine = Engine(runtime.factory, runtime.box, config)
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))

    async def running() -> bool:
        return engine.state is EngineState.RUNNING

    await _until(running)
    from datetime import timedelta

    from smsconsole import clock

    far = clock.now() + timedelta(hours=1)
    async with runtime.factory() as session, session.begin():
        await session.execute(update(EngineLease).values(holder="other:1:x", host="other", pid=1, expires_at=far))

    async def standing_by() -> bool:
        return engine.state is EngineState.STANDBY

    await _until(standing_by)
    stop.set()
    await task
    info = await _current(runtime)
    assert info is not None and info.holder == "other:1:x"  # a standby engine does not release others' lease


def _serve(config: Config, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SMSCONSOLE_CONFIG_DIR": str(config.config_dir),
        "SMSCONSOLE_DATA_DIR": str(config.data_dir),
        "SMSCONSOLE_DATABASE_URL": config.database_url,
        "SMSCONSOLE_LEASE_TTL_SECONDS": str(config.lease_ttl_seconds),
        "SMSCONSOLE_HEARTBEAT_SECONDS": str(config.heartbeat_seconds),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "smsconsole", "serve"], env=env,
        stdout=subprocess.PIPE, stderr=(tmp_path / "serve.err").open("wb"),
    )


async def test_killed_holder_is_taken_over_after_expiry(runtime: Runtime, config: Config, tmp_path: Path) -> None:
    proc = _serve(config, tmp_path)
    try:
        async def served_by_child() -> bool:
            info = await _current(runtime)
            return info is not None and info.pid == proc.pid and info.alive

        await _until(served_by_child, timeout=30)
        engine = Engine(runtime.factory, runtime.box, config)
        stop = asyncio.Event()
        task = asyncio.create_task(engine.run(stop))

        async def standing_by() -> bool:
            return engine.state is EngineState.STANDBY

        await _until(standing_by)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        dead = await _current(runtime)
        assert dead is not None and dead.pid == proc.pid

        async def running() -> bool:
            return engine.state is EngineState.RUNNING

        await _until(running, timeout=config.lease_ttl_seconds * 5)
        taken = await _current(runtime)
        assert taken is not None and taken.holder == engine.holder.id
        assert taken.heartbeat_at >= dead.expires_at  # not before the dead holder's lease expired
        stop.set()
        await task
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_serve_shuts_down_cleanly(runtime: Runtime, config: Config, tmp_path: Path, sig: int) -> None:
    proc = _serve(config, tmp_path)
    try:
        async def served() -> bool:
            info = await _current(runtime)
            return info is not None and info.pid == proc.pid

        await _until(served, timeout=30)
        proc.send_signal(sig)
        assert await asyncio.to_thread(proc.wait, 15) == 0
        assert await _current(runtime) is None
        err = (tmp_path / "serve.err").read_text()
        assert "shut down cleanly" in err and "Traceback" not in err
        assert (config.data_dir / "smsconsole.log").read_text().count("engine lease acquired") == 1
    finally:
        if proc.poll() is None:
            proc.kill()


async def test_a_renewal_committed_after_the_lease_ended_starts_a_new_tenure(runtime: Runtime, config: Config) -> None:
    """The heartbeat's UPDATE waits for the database (another writer holds it) past the lease's
    end, then commits with the time it read before waiting: the lease looks renewed, but outbox
    writes fenced on it in the gap were refused, leaving their messages `sending`. The engine must
    not carry on under that token: it starts a new tenure, whose recovery settles them."""
    from datetime import timedelta

    from sqlalchemy import insert, select

    from smsconsole import clock
    from smsconsole.models import Message

    engine = Engine(runtime.factory, runtime.box, config)
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))

    async def running() -> bool:
        return engine.state is EngineState.RUNNING and engine._token is not None

    await _until(running)
    first = engine._token
    now = clock.now()
    async with runtime.factory() as session, session.begin():  # a send whose outcome write the fence refused
        stranded = (await session.execute(insert(Message).returning(Message.id), [{
            "kind": "transactional", "priority": 0, "to_number": "+447400123401", "body": "x", "encoding": "GSM-7",
            "segments": 1, "state": "sending", "attempts": 1, "claim_token": first, "created_at": now,
            "updated_at": now}])).scalar_one()
    # The next renewal commits after the lease's end as this process set it (as when its UPDATE
    # waited behind another writer with the time it read before): the row says renewed, the gap
    # happened. Set that end into the past rather than race a lock against the heartbeat.
    engine._expires = clock.now() - timedelta(seconds=1)

    async def settled() -> bool:  # a new tenure, and its recovery (which runs once it holds the lease) done
        if engine.state is not EngineState.RUNNING or engine._token in (None, first):
            return False
        async with runtime.factory() as session:
            return await session.scalar(select(Message.state).where(Message.id == stranded)) != "sending"

    await _until(settled)
    async with runtime.factory() as session:
        row = await session.scalar(select(Message).where(Message.id == stranded))
        assert row is not None
        assert row.state == "unknown" and "not resent" in (row.reason or "")
    stop.set()
    await task
    assert clock.now() - now < timedelta(minutes=1)
