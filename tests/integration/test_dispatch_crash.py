"""Crash safety (DESIGN.md invariants 2 and 3): a 20,000-message send by `smsconsole serve` in its
own process, killed with SIGKILL at several seeded random points and restarted, against a loopback
fake gateway that records every message it receives. At the end every message was received
exactly once, except those the engine recorded `unknown` (received at most once, never resent).

SQLite only (the engine's worst case: one writer). The fake takes 10 messages per request so the
test stays well under a minute on two cores; the requests, claims and kills are real."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import insert

from smsconsole import clock
from smsconsole.models import Message
from smsconsole.runtime import Runtime
from smsconsole.services import providers
from tests.conftest import make_config
from tests.fakes.server import serve
from tests.fakes.sink import SmsSink, generic_config

MESSAGES = 20_000
KILLS = 4
SEED = 20251
PER_REQUEST = 10


def _open_count(database: Path) -> tuple[int, int]:
    """(queued or sending, settled) messages, read with the stdlib driver (no event loop needed)."""
    with sqlite3.connect(database, timeout=30) as conn:
        rows = dict(conn.execute("SELECT state IN ('queued', 'sending'), count(*) FROM messages GROUP BY 1").fetchall())
    return rows.get(1, 0), rows.get(0, 0)


def _states(database: Path) -> dict[str, str]:
    with sqlite3.connect(database, timeout=30) as conn:
        return {str(message_id): state for message_id, state in conn.execute("SELECT id, state FROM messages")}


def _start_engine(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "smsconsole", "serve"], env=env, stdout=out,
                                stderr=subprocess.STDOUT)


async def test_kill_9_at_random_points_loses_nothing_and_sends_nothing_twice(tmp_path: Path) -> None:
    database = tmp_path / "crash.db"
    config = make_config(tmp_path, f"sqlite:///{database}")
    sink = SmsSink()
    with serve(sink) as server:
        rt = await Runtime.open(config)
        try:
            async with rt.factory() as session, session.begin():
                view = await providers.create_provider(session, rt.box, kind="generic", name="sink",
                                                       values=generic_config(server.url, PER_REQUEST), actor="test")
            now = clock.now()
            async with rt.factory() as session, session.begin():
                await session.execute(insert(Message), [
                    {"kind": "transactional", "priority": 0, "provider_id": view.id, "provider_name": "sink",
                     "to_number": f"+1415{n:07d}", "body": f"message {n}", "encoding": "GSM-7", "segments": 1,
                     "state": "queued", "attempts": 0, "created_at": now, "updated_at": now,
                     "dedupe_key": f"run:1:profile:{n}"}
                    for n in range(MESSAGES)
                ])
        finally:
            await rt.close()

        env = {**os.environ, "SMSCONSOLE_CONFIG_DIR": str(config.config_dir),
               "SMSCONSOLE_DATA_DIR": str(config.data_dir), "SMSCONSOLE_DATABASE_URL": f"sqlite:///{database}",
               "SMSCONSOLE_LEASE_TTL_SECONDS": "1", "SMSCONSOLE_HEARTBEAT_SECONDS": "0.2",
               "SMSCONSOLE_DISPATCH_BATCH_SIZE": "200", "SMSCONSOLE_DISPATCH_INTERVAL_SECONDS": "0.05"}
        env.pop("SMSCONSOLE_SECRET_KEY", None)
        log = tmp_path / "engine.log"
        rng = random.Random(SEED)
        kill_at = sorted(rng.sample(range(1_000, MESSAGES - 2_000), KILLS))
        kills = 0
        for threshold in kill_at:
            engine = _start_engine(env, log)
            deadline = time.monotonic() + 60
            while len(sink.received) < threshold and engine.poll() is None and time.monotonic() < deadline:
                time.sleep(rng.uniform(0.001, 0.02))
            assert engine.poll() is None, log.read_text()[-3000:]
            engine.send_signal(signal.SIGKILL)
            engine.wait(10)
            kills += 1
        engine = _start_engine(env, log)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                open_messages, _ = _open_count(database)
                if open_messages == 0:
                    break
                assert engine.poll() is None, log.read_text()[-3000:]
                time.sleep(0.2)
        finally:
            engine.send_signal(signal.SIGTERM)
            engine.wait(20)

    assert kills == KILLS
    states = _states(database)
    received = Counter(sink.received)
    assert len(states) == MESSAGES
    by_state = Counter(states.values())
    assert set(by_state) <= {"sent", "unknown"}, by_state
    twice = [ref for ref, times in received.items() if times > 1]
    assert twice == [], f"{len(twice)} message(s) sent twice"
    not_received = [ref for ref, state in states.items() if state == "sent" and received[ref] != 1]
    assert not_received == []
    assert set(received) <= set(states)
    # A kill leaves at most the batches in flight unknown: claimed, possibly sent, never resent.
    assert by_state["unknown"] <= KILLS * 3 * 200, by_state
