"""Dispatch throughput on PostgreSQL with 1 and with N engine processes (`serve --workers N`).

Each run: a fresh PostgreSQL database, a fake gateway in its own process (tests/fakes/sink.py),
M messages queued to a Generic provider (one per request, or 100 per request), then
`smsconsole serve --workers N`; the figure is messages received by the fake divided by the time
from its first to its last message (process start-up left out). Every message must arrive exactly
once.

    python bench/workers.py [--database-url postgresql://postgres@127.0.0.1:5432/postgres]
                            [--workers 1,3] [--messages 10000] [--batched-messages 60000]

Needs a PostgreSQL server (SQLite takes one writer: `--workers` is refused there). On a machine
with fewer cores than workers the processes share the cores: the figure says what the extra
processes buy here, not on a larger box.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._quick import _admin, postgres_url  # noqa: E402
from bench.dispatch import BATCH, Sink, free_port  # noqa: E402
from smsconsole import clock  # noqa: E402
from smsconsole.config import Config  # noqa: E402
from smsconsole.models import Message  # noqa: E402
from smsconsole.runtime import Runtime  # noqa: E402
from smsconsole.services import providers  # noqa: E402
from tests.fakes.sink import generic_config  # noqa: E402

DEFAULT_URL = os.environ.get("SMSCONSOLE_TEST_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"


async def _database(url: str, create: bool, name: str) -> str:
    await _admin(url, f'CREATE DATABASE "{name}"' if create else f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def _queue(config: Config, sink_url: str, messages: int, per_request: int) -> None:
    rt = await Runtime.open(config)
    try:
        async with rt.factory() as session, session.begin():
            view = await providers.create_provider(session, rt.box, kind="generic", name="sink", actor="bench",
                                                   values=generic_config(sink_url, per_request))
        now = clock.now()
        async with rt.factory() as session, session.begin():
            for start in range(0, messages, 5_000):
                await session.execute(insert(Message), [
                    {"kind": "transactional", "priority": 0, "provider_id": view.id, "provider_name": "sink",
                     "to_number": f"+1415{n:07d}", "body": f"Hello {n}", "encoding": "GSM-7", "segments": 1,
                     "state": "queued", "attempts": 0, "created_at": now, "updated_at": now,
                     "dedupe_key": f"bench:{n}"}
                    for n in range(start, min(messages, start + 5_000))])
    finally:
        await rt.close()


def _refs(sink: Sink) -> list[str]:
    with urllib.request.urlopen(f"{sink.url}/refs", timeout=30) as answer:
        return [line for line in answer.read().decode().splitlines() if line]


async def run(base_url: str, workers: int, messages: int, per_request: int, say: Any = print) -> dict[str, Any]:
    """One run; returns {workers, per_request, messages, seconds, rate, received, duplicates}."""
    name = f"smsc_bench_{uuid.uuid4().hex[:10]}"
    url = await _database(base_url, True, name)
    sink = Sink()
    proc: subprocess.Popen[bytes] | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="smsc-bench-workers-") as tmp:
            work = Path(tmp)
            config = Config(config_dir=work / "config", data_dir=work / "data", database_url=url)
            await _queue(config, sink.url, messages, per_request)
            env = {**os.environ, "SMSCONSOLE_CONFIG_DIR": str(config.config_dir),
                   "SMSCONSOLE_DATA_DIR": str(config.data_dir), "SMSCONSOLE_DATABASE_URL": url,
                   "SMSCONSOLE_LISTEN_PORT": str(free_port()), "SMSCONSOLE_DISPATCH_INTERVAL_SECONDS": "0.05"}
            env.pop("SMSCONSOLE_SECRET_KEY", None)
            with (work / "serve.log").open("ab") as log:
                proc = subprocess.Popen([sys.executable, "-m", "smsconsole", "serve", "--workers", str(workers)],
                                        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
            first: float | None = None
            last_count, last_change = 0, time.monotonic()
            while True:
                count = sink.count()
                now = time.monotonic()
                if count and first is None:
                    first = now
                if count != last_count:
                    last_count, last_change = count, now
                if count >= messages or now - last_change > 60 or proc.poll() is not None:
                    break
                await asyncio.sleep(0.02)
            end = last_change
            refs = _refs(sink)
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
            if len(refs) < messages:
                say((work / "serve.log").read_text()[-2000:])
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        sink.stop()
        await _database(base_url, False, name)
    seconds = max(1e-9, end - (first or end))
    return {"workers": workers, "per_request": per_request, "messages": messages, "seconds": seconds,
            "rate": len(refs) / seconds, "received": len(set(refs)), "duplicates": len(refs) - len(set(refs))}


def rows_of(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Table rows for bench/run: each multi-worker run against the 1-worker run of the same
    request shape (no goal is set for the ratio; exactly once is the goal)."""
    rows = []
    for result in results:
        base = next((r for r in results if r["workers"] == 1 and r["per_request"] == result["per_request"]), None)
        shape = "one per request" if result["per_request"] == 1 else f"{result['per_request']} per request"
        ratio = round(result["rate"] / base["rate"], 2) if base and result is not base else None
        rows.append({
            "measure": f"dispatch on PostgreSQL, {result['workers']} worker(s), {shape}",
            "figure": f"{result['rate']:,.0f} msg/s ({result['received']:,} of {result['messages']:,} received, "
                      f"{result['duplicates']} twice)",
            "goal": "every message once", "ratio": ratio,
            "holds": result["received"] == result["messages"] and result["duplicates"] == 0})
    return rows


async def measure(url: str, worker_counts: list[int], messages: int, batched: int,
                  say: Any = print) -> list[dict[str, Any]]:
    results = []
    for per_request, count in ((1, messages), (BATCH, batched)):
        if not count:
            continue
        for workers in worker_counts:
            result = await run(url, workers, count, per_request, say)
            say(f"{workers} worker(s), {per_request} per request: {result['rate']:,.0f} msg/s over "
                f"{result['seconds']:.1f} s; {result['received']:,} of {count:,} received, "
                f"{result['duplicates']} twice")
            results.append(result)
    return results


def quick() -> list[dict[str, Any]]:
    """A small run for bench/run on its PostgreSQL server (`--database-url`): 1 and 3 workers,
    4,000 messages one per request and 20,000 at 100 per request. Without one, a row saying so."""
    url = postgres_url()
    if not url:
        return [{"measure": "dispatch on PostgreSQL, 1 vs 3 workers", "figure": "not run: needs --database-url",
                 "goal": "every message once", "ratio": None, "holds": None}]
    return rows_of(asyncio.run(measure(url, [1, 3], 4_000, 20_000, say=lambda line: None)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=DEFAULT_URL, help="a PostgreSQL server (a database is made per run)")
    parser.add_argument("--workers", default="1,3", help="comma-separated worker counts")
    parser.add_argument("--messages", type=int, default=10_000, help="messages one per request (0: skip)")
    parser.add_argument("--batched-messages", type=int, default=60_000, help=f"messages {BATCH} per request (0: skip)")
    args = parser.parse_args()
    try:
        counts = [int(part) for part in args.workers.split(",") if part.strip()]
    except ValueError:
        parser.error("--workers: comma-separated whole numbers, e.g. 1,3")
    results = asyncio.run(measure(args.database_url, counts, args.messages, args.batched_messages))
    print()
    for row in rows_of(results):
        ratio = f"; {row['ratio']:.2f}x one worker" if row["ratio"] is not None else ""
        print(f"{row['measure']}: {row['figure']}{ratio}")


if __name__ == "__main__":
    main()
