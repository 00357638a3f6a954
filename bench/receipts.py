"""Receipts per second accepted and committed through the webhook listener, against a no-op route
on the same listener with the same load generator, in the same run.

The engine's listener (the same Starlette app, middleware and embedded uvicorn) runs in this
process against a fresh database holding the `sent` messages the receipts name; a second process
fires requests at it over loopback with C keep-alive connections (bounded in count and time), in
three phases:

1. no-op: POST /bench/noop, a route added to the same app that reads the body and answers 200;
2. one receipt per request: real callbacks the adapter verifies (a Generic provider's ?token=, or
   Twilio's HMAC signature), each committed before its 200 (group commit: concurrent callbacks
   share a transaction);
3. batched: a Generic provider with `receipt_items`, 100 receipts per JSON request.

Reported: requests (and receipts) answered 2xx per second, the ratio of phase 2 to phase 1, and a
check that every accepted receipt was committed (its message delivered, one receipt row each).
On PostgreSQL a fresh database is created next to the one named and dropped afterwards.

    .venv/bin/python bench/receipts.py                       # SQLite: 5,000 + 5,000 requests, 200 × 100
    .venv/bin/python bench/receipts.py --count 20000 --concurrency 32 --kind twilio
    .venv/bin/python bench/receipts.py --database-url postgresql://postgres@127.0.0.1:5432/postgres

`quick()` runs a small size on SQLite, and on PostgreSQL when SMSCONSOLE_BENCH_DATABASE_URL (or
SMSCONSOLE_TEST_DATABASE_URL) names a server, and returns one row per measure for `bench/run`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx
from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

if __package__ in (None, ""):  # run as a script: the project root on the path, like `-m bench.receipts`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from smsconsole import clock
from smsconsole.config import Config
from smsconsole.listener.app import create_app
from smsconsole.listener.server import Listener
from smsconsole.models import Message, Provider as ProviderRow, Receipt
from smsconsole.providers.twilio import compute_signature
from smsconsole.runtime import Runtime
from smsconsole.services import providers, settings

TOKEN = "bench-token-0123456789abcdef"
AUTH_TOKEN = "f00dfacef00dfacef00dfacef00dface"
PUBLIC = "https://console.example.com"
DEADLINE_SECONDS = 300.0  # per phase
BATCH = 100  # receipts per batched request
RATIO_GOAL = 0.8
BATCHED_GOAL = 3000.0


def _single(kind: str, index: int) -> tuple[str, dict[str, str], bytes]:
    if kind == "twilio":
        path = "/callbacks/bench/status"
        params = {"MessageSid": f"SM{index:032x}", "MessageStatus": "delivered", "To": "+447400123456"}
        signature = compute_signature(PUBLIC + path, params, AUTH_TOKEN)
        return path, {"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature}, \
            urlencode(params).encode()
    return (f"/callbacks/bench/status?token={TOKEN}", {"content-type": "application/x-www-form-urlencoded"},
            urlencode({"id": f"M{index}", "status": "DELIVRD"}).encode())


def _batched(index: int) -> tuple[str, dict[str, str], bytes]:
    items = [{"id": f"B{index * BATCH + i}", "status": "DELIVRD"} for i in range(BATCH)]
    return (f"/callbacks/bulk/status?token={TOKEN}", {"content-type": "application/json"},
            json.dumps({"results": items}).encode())


def _noop(index: int) -> tuple[str, dict[str, str], bytes]:
    return "/bench/noop", {"content-type": "application/x-www-form-urlencoded"}, \
        urlencode({"id": f"M{index}", "status": "DELIVRD"}).encode()


def _load(url: str, kind: str, phases: list[tuple[str, int, int]], concurrency: int,
          out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """The second process: for each (phase, first, count) fire requests first…first+count-1 at
    `url` and report (phase, ok, failed, seconds), phase after phase, on the same client."""

    async def phase(client: httpx.AsyncClient, name: str, first: int, count: int) -> tuple[str, int, int, float]:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for index in range(first, first + count):
            queue.put_nowait(index)
        ok = failed = 0
        deadline = time.monotonic() + DEADLINE_SECONDS

        async def worker() -> None:
            nonlocal ok, failed
            while not queue.empty() and time.monotonic() < deadline:
                index = queue.get_nowait()
                path, headers, body = (_noop(index) if name == "noop" else _single(kind, index) if name == "single"
                                       else _batched(index))
                for _ in range(5):  # a 503 (database busy) is retried, as providers do
                    response = await client.post(path, headers=headers, content=body)
                    if response.status_code != 503:
                        break
                    await asyncio.sleep(0.05)
                if response.status_code < 300:
                    ok += 1
                else:
                    failed += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return name, ok, failed, time.perf_counter() - started

    async def run() -> None:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
            await phase(client, "noop", 0, 200)  # warm the connections
            for name, first, count in phases:
                out.put(await phase(client, name, first, count))

    asyncio.run(run())


@dataclass(frozen=True)
class Result:
    backend: str
    kind: str
    concurrency: int
    noop: tuple[int, int, float]  # ok, failed, seconds
    single: tuple[int, int, float]
    batched: tuple[int, int, float]
    delivered: int
    receipts: int
    expected: int
    per_commit: dict[str, float]  # callbacks per transaction in each phase (about: phases meet)

    @property
    def noop_rate(self) -> float:
        return self.noop[0] / self.noop[2]

    @property
    def single_rate(self) -> float:
        return self.single[0] / self.single[2]

    @property
    def batched_rate(self) -> float:  # receipts per second
        return self.batched[0] * BATCH / self.batched[2]

    @property
    def ratio(self) -> float:
        return self.single_rate / self.noop_rate if self.noop_rate else 0.0

    @property
    def committed(self) -> bool:
        return self.delivered == self.receipts == self.expected

    def lines(self) -> list[str]:
        return [
            f"{self.backend}, {self.concurrency} connections:",
            f"  no-op route          {self.noop[0]:>7,} requests, {self.noop[1]} refused, {self.noop[2]:5.1f} s = "
            f"{self.noop_rate:8,.0f} req/s",
            f"  one receipt/request  {self.single[0]:>7,} requests, {self.single[1]} refused, {self.single[2]:5.1f} s = "
            f"{self.single_rate:8,.0f} receipts/s  ({self.kind}) = {self.ratio:.2f}× the no-op route "
            f"(goal ≥ {RATIO_GOAL}×); {self.per_commit.get('single', 0):.1f} callbacks per commit",
            f"  {BATCH} receipts/request {self.batched[0]:>7,} requests, {self.batched[1]} refused, "
            f"{self.batched[2]:5.1f} s = {self.batched_rate:8,.0f} receipts/s (goal ≥ {BATCHED_GOAL:,.0f}); "
            f"{self.per_commit.get('batched', 0):.1f} callbacks per commit",
            f"  committed: {self.delivered:,} delivered, {self.receipts:,} receipt rows of {self.expected:,} accepted"
            + ("" if self.committed else "  ← MISMATCH"),
        ]


async def _fresh_postgres(url: str) -> str:
    import asyncpg

    base = make_url(url)
    name = f"smsc_bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(user=base.username or "postgres", password=base.password,
                                 host=base.host or "127.0.0.1", port=base.port or 5432,
                                 database=base.database or "postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return base.set(database=name).render_as_string(hide_password=False)


async def _drop_postgres(url: str, admin: str) -> None:
    import asyncpg

    base, target = make_url(admin), make_url(url)
    conn = await asyncpg.connect(user=base.username or "postgres", password=base.password,
                                 host=base.host or "127.0.0.1", port=base.port or 5432,
                                 database=base.database or "postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')
    finally:
        await conn.close()


async def measure(database_url: str = "", *, count: int = 5000, batches: int = 200, concurrency: int = 16,
                  kind: str = "generic", rounds: int = 3) -> Result:
    """One run: a fresh database (SQLite in a temp dir, or a new database on the PostgreSQL server
    `database_url` names), the three phases taken in turn `rounds` times (so a neighbour's load on
    a shared machine falls on all three alike), each phase's figures summed, the committed counts."""
    workdir = Path(tempfile.mkdtemp(prefix="smsconsole-bench-receipts-"))
    url = await _fresh_postgres(database_url) if database_url else f"sqlite:///{workdir / 'bench.db'}"
    try:
        return await _measure(url, workdir, count, batches, concurrency, kind, max(1, rounds))
    finally:
        if database_url:
            await _drop_postgres(url, database_url)
        shutil.rmtree(workdir, ignore_errors=True)


async def _measure(url: str, workdir: Path, count: int, batches: int, concurrency: int, kind: str,
                   rounds: int) -> Result:
    runtime = await Runtime.open(Config(config_dir=workdir / "config", data_dir=workdir / "data", database_url=url))
    values = ({"account_sid": "AC" + "0123456789abcdef" * 2, "auth_token": AUTH_TOKEN, "sender": "+15005550006"}
              if kind == "twilio" else
              {"url": "https://gw.example.com/send", "params": "to=$$To\ntext=$$Body", "webhook_token": TOKEN})
    bulk = {"url": "https://gw.example.com/send", "params": "to=$$To\ntext=$$Body", "webhook_token": TOKEN,
            "receipt_items": "results"}
    async with runtime.factory() as session, session.begin():
        await settings.update_settings(session, {"public_base_url": PUBLIC}, actor="bench")
        await providers.create_provider(session, runtime.box, kind=kind, name="bench", values=values, actor="bench")
        await providers.create_provider(session, runtime.box, kind="generic", name="bulk", values=bulk,
                                        actor="bench")
        ids = dict((await session.execute(select(ProviderRow.name, ProviderRow.id))).all())
        now = clock.now()
        singles = [("bench", f"SM{i:032x}" if kind == "twilio" else f"M{i}") for i in range(count)]
        batched = [("bulk", f"B{i}") for i in range(batches * BATCH)]
        rows = [{"kind": "test", "priority": 0, "provider_id": ids[name], "provider_name": name,
                 "to_number": "+447400123456", "body": "hi", "encoding": "GSM-7", "segments": 1, "state": "sent",
                 "provider_message_id": pmid, "attempts": 1, "created_at": now, "updated_at": now, "sent_at": now}
                for name, pmid in singles + batched]
        for start in range(0, len(rows), 5000):
            await session.execute(insert(Message), rows[start:start + 5000])
    app = create_app(runtime.factory, box=runtime.box)

    async def noop(request: Request) -> Response:  # what the listener costs without the database
        await request.body()
        return Response("", status_code=200, media_type="text/plain")

    app.router.routes.insert(0, Route("/bench/noop", noop, methods=["POST"]))
    listener = Listener(app, "127.0.0.1", 0)
    await listener.start()
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    phases = []
    for round_ in range(rounds):
        for name, total in (("noop", count), ("single", count), ("batched", batches)):
            first, last = total * round_ // rounds, total * (round_ + 1) // rounds
            phases.append((name, first, last - first))
    process = context.Process(target=_load, args=(listener.address, kind, phases, concurrency, out))
    got: dict[str, tuple[int, int, float]] = {}
    reported = 0
    batches = _Batches()
    committer_log = logging.getLogger("smsconsole.listener.receipts")
    committer_log.addHandler(batches)
    committer_log.setLevel(logging.DEBUG)
    commits: dict[str, list[int]] = {}
    try:
        process.start()
        while reported < len(phases) and (process.is_alive() or not out.empty()):
            while not out.empty():
                name, ok, failed, seconds = out.get()
                before = got.get(name, (0, 0, 0.0))
                got[name] = (before[0] + ok, before[1] + failed, before[2] + seconds)
                done = commits.setdefault(name, [0, 0])
                done[0], done[1] = done[0] + batches.commits, done[1] + batches.callbacks
                batches.commits = batches.callbacks = 0
                reported += 1
            await asyncio.sleep(0.1)
    finally:
        if process.pid is not None:
            process.join(timeout=10)
        await listener.stop()
        committer_log.removeHandler(batches)
        committer_log.setLevel(logging.NOTSET)
    async with runtime.factory() as session:
        delivered = await session.scalar(select(func.count()).select_from(Message)
                                         .where(Message.state == "delivered"))
        receipts = await session.scalar(select(func.count()).select_from(Receipt))
    await runtime.close()
    missing = (0, 0, 1.0)
    expected = got.get("single", missing)[0] + got.get("batched", missing)[0] * BATCH
    return Result("PostgreSQL" if url.startswith("postgres") else "SQLite", kind, concurrency,
                  got.get("noop", missing), got.get("single", missing), got.get("batched", missing),
                  int(delivered or 0), int(receipts or 0), expected,
                  {name: callbacks / n for name, (n, callbacks) in commits.items() if n})


class _Batches(logging.Handler):
    """Counts the group committer's transactions and the callbacks they carried (its DEBUG line)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.commits = self.callbacks = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("receipts batch:") and isinstance(record.args, tuple):
            self.commits += 1
            self.callbacks += int(record.args[0])


def _rows(result: Result) -> list[dict[str, object]]:
    return [
        {"measure": f"receipts, one per request vs no-op route ({result.backend})",
         "figure": f"{result.single_rate:,.0f}/s vs {result.noop_rate:,.0f} req/s"
                   + ("" if result.committed else " (NOT all committed)"),
         "goal": f"≥ {RATIO_GOAL}× no-op", "ratio": round(result.ratio, 2),
         "holds": result.ratio >= RATIO_GOAL and result.committed},
        {"measure": f"receipts, {BATCH} per request ({result.backend})",
         "figure": f"{result.batched_rate:,.0f} receipts/s" + ("" if result.committed else " (NOT all committed)"),
         "goal": f"≥ {BATCHED_GOAL:,.0f} receipts/s", "ratio": round(result.batched_rate / BATCHED_GOAL, 2),
         "holds": result.batched_rate >= BATCHED_GOAL and result.committed},
    ]


def quick() -> list[dict[str, object]]:
    """A small run (about a minute): 1,500 no-op and 1,500 single-receipt requests, 60 batched
    requests of 100, on SQLite and (when a server is named in SMSCONSOLE_BENCH_DATABASE_URL or
    SMSCONSOLE_TEST_DATABASE_URL) PostgreSQL."""
    rows: list[dict[str, object]] = []
    servers = [""]
    postgres = os.environ.get("SMSCONSOLE_BENCH_DATABASE_URL") or os.environ.get("SMSCONSOLE_TEST_DATABASE_URL")
    if postgres:
        servers.append(postgres)
    for server in servers:
        rows += _rows(asyncio.run(measure(server, count=1500, batches=60)))
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000, help="no-op requests, and single-receipt requests")
    parser.add_argument("--batches", type=int, default=200, help=f"requests of {BATCH} receipts")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--kind", choices=("generic", "twilio"), default="generic")
    parser.add_argument("--rounds", type=int, default=3, help="the three phases are taken in turn this many times")
    parser.add_argument("--database-url", default="",
                        help="a PostgreSQL server (any database on it): the bench creates a fresh one and drops it")
    args = parser.parse_args()
    result = await measure(args.database_url, count=args.count, batches=args.batches,
                           concurrency=args.concurrency, kind=args.kind, rounds=args.rounds)
    print("\n".join(result.lines()))


if __name__ == "__main__":
    asyncio.run(main())
