"""Several engine processes on one PostgreSQL (issue 17): three `smsconsole serve` processes share
a send to a loopback gateway that records every message it gets and when. One holds the scheduler
lease, all three dispatch (FOR UPDATE SKIP LOCKED claims, writes fenced on each worker's own row).

- Killed at random (SIGKILL, the scheduler among them) and restarted, 30,000 messages arrive
  exactly once each, except those recorded `unknown` (at most once, never resent); nothing is left
  queued, claimed or sending.
- The provider's rate limit (shared in the database) holds across the three together: the
  steady rate is within 2% of the limit, and no window is over it by more than the bucket's burst.
- `serve --workers N` on SQLite is refused with one line; on PostgreSQL it starts N processes that
  list themselves in engine_workers, restarts one that is killed, and stops them all on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from smsconsole import clock
from smsconsole.config import Config
from smsconsole.engine.workers import live_workers
from smsconsole.models import Message
from smsconsole.runtime import Runtime
from smsconsole.services import providers
from tests.conftest import PG_URL, _create_pg_database, _drop_pg_database, make_config
from tests.fakes.server import serve
from tests.fakes.sink import SmsSink, generic_config
from tests.integration.serve_support import message_states, open_count, start_serve

pytestmark = pytest.mark.skipif(not PG_URL, reason="workers need PostgreSQL (SMSCONSOLE_TEST_DATABASE_URL)")

PER_REQUEST = 10
SEED = 20261203


class TimedSink(SmsSink):
    """The sink, also noting when each request's messages arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[tuple[float, int]] = []  # (monotonic time, messages in the request)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        before = len(self.received)
        await super().__call__(scope, receive, send)
        if len(self.received) > before:
            self.arrivals.append((time.monotonic(), len(self.received) - before))


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    url = await _create_pg_database(migrated=True)
    try:
        yield url
    finally:
        await _drop_pg_database(url)


def _env(config: Config, url: str) -> dict[str, str]:
    env = {**os.environ, "SMSCONSOLE_CONFIG_DIR": str(config.config_dir), "SMSCONSOLE_DATA_DIR": str(config.data_dir),
           "SMSCONSOLE_DATABASE_URL": url, "SMSCONSOLE_LEASE_TTL_SECONDS": "3", "SMSCONSOLE_HEARTBEAT_SECONDS": "0.5",
           "SMSCONSOLE_DISPATCH_BATCH_SIZE": "200", "SMSCONSOLE_DISPATCH_INTERVAL_SECONDS": "0.05"}
    env.pop("SMSCONSOLE_SECRET_KEY", None)
    return env


async def _queue(rt: Runtime, server_url: str, count: int, rate: float | None) -> None:
    async with rt.factory() as session, session.begin():
        view = await providers.create_provider(session, rt.box, kind="generic", name="sink", rate_limit=rate,
                                               values=generic_config(server_url, PER_REQUEST), actor="test")
    now = clock.now()
    async with rt.factory() as session, session.begin():
        for start in range(0, count, 5_000):
            await session.execute(insert(Message), [
                {"kind": "transactional", "priority": 0, "provider_id": view.id, "provider_name": "sink",
                 "to_number": f"+1415{n:07d}", "body": f"message {n}", "encoding": "GSM-7", "segments": 1,
                 "state": "queued", "attempts": 0, "created_at": now, "updated_at": now,
                 "dedupe_key": f"run:1:profile:{n}"}
                for n in range(start, min(count, start + 5_000))
            ])


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _max_in_window(arrivals: list[tuple[float, int]], window: float) -> int:
    """The most messages that arrived within any `window` seconds."""
    best = total = 0
    start = 0
    for end in range(len(arrivals)):
        total += arrivals[end][1]
        while arrivals[end][0] - arrivals[start][0] > window:
            total -= arrivals[start][1]
            start += 1
        best = max(best, total)
    return best


async def test_three_workers_killed_at_random_send_each_message_once(tmp_path: Path, pg_url: str) -> None:
    messages, kills, rate = 30_000, 6, 2_000.0
    config = make_config(tmp_path, pg_url)
    sink = TimedSink()
    rng = random.Random(SEED)
    log = tmp_path / "engines.log"
    with serve(sink) as server:
        rt = await Runtime.open(config)
        procs: list[subprocess.Popen[bytes]] = []
        try:
            await _queue(rt, server.url, messages, rate)
            env = _env(config, pg_url)
            procs = [start_serve(env, log) for _ in range(3)]
            kill_at = sorted(rng.sample(range(2_000, messages - 4_000), kills))
            for threshold in kill_at:
                deadline = time.monotonic() + 90
                while len(sink.received) < threshold and time.monotonic() < deadline:
                    await asyncio.sleep(rng.uniform(0.001, 0.02))
                victim = rng.randrange(len(procs))
                assert procs[victim].poll() is None, log.read_text()[-3000:]
                procs[victim].send_signal(signal.SIGKILL)
                procs[victim].wait(10)
                await asyncio.sleep(rng.uniform(0.0, 1.0))  # down for a moment, then back
                procs[victim] = start_serve(env, log)
            deadline = time.monotonic() + 180
            while await open_count(rt) and time.monotonic() < deadline:
                assert all(proc.poll() is None for proc in procs), log.read_text()[-3000:]
                await asyncio.sleep(0.2)
            async with rt.factory() as session:
                workers = await live_workers(session)
            states = await message_states(rt)
        finally:
            _stop(procs)
            await rt.close()

    by_state = Counter(states.values())
    received = Counter(sink.received)
    print(f"\n{kills} kills: {dict(by_state)}; {len(sink.received)} received; "
          f"busiest second {_max_in_window(sink.arrivals, 1.0)} (limit {rate:.0f}/s)")
    assert len(states) == messages
    assert set(by_state) <= {"sent", "unknown"}, by_state
    assert [ref for ref, times in received.items() if times > 1] == [], "sent twice"
    assert [ref for ref, state in states.items() if state == "sent" and received[ref] != 1] == []
    assert set(received) <= set(states)
    assert sorted(w.role for w in workers) == ["scheduler", "worker", "worker"], workers
    # the shared limit held with processes dying and starting: no second took more than the rate
    # and one burst (BURST_SECONDS of it), whoever was sending
    assert _max_in_window(sink.arrivals, 1.0) <= rate * 1.5 + PER_REQUEST * 3


async def test_the_rate_limit_holds_across_workers_within_two_percent(tmp_path: Path, pg_url: str) -> None:
    messages, rate = 10_000, 300.0  # a rate the three keep up with on a loaded two-core machine
    config = make_config(tmp_path, pg_url)
    sink = TimedSink()
    log = tmp_path / "engines.log"
    with serve(sink) as server:
        rt = await Runtime.open(config)
        procs: list[subprocess.Popen[bytes]] = []
        try:
            env = _env(config, pg_url)
            procs = [start_serve(env, log) for _ in range(3)]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # all three up and dispatching before the queue fills
                async with rt.factory() as session:
                    if len(await live_workers(session)) == 3:
                        break
                await asyncio.sleep(0.2)
            await _queue(rt, server.url, messages, rate)
            deadline = time.monotonic() + 120
            while await open_count(rt) and time.monotonic() < deadline:
                assert all(proc.poll() is None for proc in procs), log.read_text()[-3000:]
                await asyncio.sleep(0.2)
            async with rt.factory() as session:
                per_worker = {w.pid: (w.role, w.claimed_per_minute, w.sent_per_minute)
                              for w in await live_workers(session)}
                sending = list(await session.scalars(select(Message.sending_at)))
        finally:
            _stop(procs)
            await rt.close()

    assert len(sink.received) == messages
    # The steady state, by the times the workers let each request go (the send gate's `sending_at`,
    # written after the limiter admitted it): from the 1,000th message (the bucket's burst spent) to
    # the last. The gateway's arrival times would add its own event loop's stalls to the figure.
    times = sorted(sending)
    seconds = (times[-1] - times[999]).total_seconds()
    achieved = (len(times) - 1_000) / seconds
    print(f"\nshared limit {rate:.0f}/s: {achieved:.1f}/s over {seconds:.1f} s by three workers {per_worker}")
    assert abs(achieved - rate) <= rate * 0.02, achieved
    assert sum(1 for _, _, sent in per_worker.values() if sent > 0) >= 2, per_worker  # the work was shared


def test_workers_on_sqlite_are_refused_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "SMSCONSOLE_CONFIG_DIR": str(tmp_path / "c"), "SMSCONSOLE_DATA_DIR": str(tmp_path / "d")}
    env.pop("SMSCONSOLE_DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-m", "smsconsole", "serve", "--workers", "2"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "smsconsole: error: --workers needs PostgreSQL: SQLite takes one writer at a time, so the engine runs in "
        "one process (set database_url to a postgresql:// URL, or leave out --workers)"]
    assert done.stdout == ""


async def test_serve_workers_starts_restarts_and_stops_its_processes(tmp_path: Path, pg_url: str) -> None:
    config = make_config(tmp_path, pg_url)
    rt = await Runtime.open(config)
    log = tmp_path / "pool.log"
    pool = start_serve(_env(config, pg_url), log, "--workers", "2")
    try:
        async def pids(count: int, exclude: frozenset[int] = frozenset()) -> set[int]:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                assert pool.poll() is None, log.read_text()[-3000:]
                async with rt.factory() as session:
                    found = {w.pid for w in await live_workers(session) if w.pid not in exclude}
                if len(found) == count:
                    return found
                await asyncio.sleep(0.2)
            raise AssertionError(f"expected {count} workers: {log.read_text()[-3000:]}")

        first = await pids(2)
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        await pids(2, exclude=frozenset({victim}))  # its row expires; the pool starts another
        assert "was killed by signal 9; restarting it" in log.read_text()
        pool.send_signal(signal.SIGTERM)
        assert pool.wait(40) == 0
        async with rt.factory() as session:
            assert await live_workers(session) == []  # each deleted its row on the way out
    finally:
        if pool.poll() is None:
            pool.kill()
        await rt.close()
