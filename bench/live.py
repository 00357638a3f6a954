"""Live campaigns at speed and at scale (issue 14).

1. Trigger latency. A live `action` campaign (trigger event "order", body with `{{ event.amount }}`)
   is created and scheduled through the services; `smsconsole serve` runs with its ingestion
   listener on a loopback port; the Generic provider sends one message per request to a loopback
   fake gateway (its own process) that notes when each request arrived. This process posts single
   events to `POST /v1/events` at a fixed rate (open loop: each handed to one of N kept-alive
   connections at its planned moment, whether or not the earlier ones were answered), each for a
   different person. A message's latency is the
   fake's arrival time of that person's send minus the moment the 2xx answer to the event reached
   this process. Reported: p50/p90/p99/max, and events sent against messages received.
2. Waits at scale. An inaction campaign goes live (services: create, schedule, `start_due_runs`)
   over N profiles (generated set-based in SQL); N pending waits are inserted set-based straight
   into `campaign_waits`. Reported: the table's and its indexes' size on disk, the RSS of a
   `smsconsole serve` process with no waits and with the N pending, the cost of one live tick with
   nothing due, and the time the engine's own live tick (`CampaignScheduler.live_tick`, which calls
   `fire_due_waits`), run once per simulated second, takes to fire 10,000 waits due within one
   minute — spread over its seconds, and all at the same second.

    .venv/bin/python -m bench.live latency                               # SQLite, 100 events/s for 60 s
    .venv/bin/python -m bench.live latency --database-url postgresql://postgres@127.0.0.1:5432/smsc_live_latency
    .venv/bin/python -m bench.live waits                                  # SQLite, 1,000,000 waits
    .venv/bin/python -m bench.live waits --database-url postgresql://postgres@127.0.0.1:5432/smsc_live_waits
    .venv/bin/python -m bench.live waits --waits 100000 --profiles 100000 # a quick look

bench/README.md ("Live campaigns") has the figures and what bounds them.

A PostgreSQL database named here is the bench's own: it is dropped and created again.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.engine import make_url

DEFAULT_LATENCY_URL = "sqlite:////tmp/smsconsole-live-bench/latency.db"
DEFAULT_WAITS_URL = "sqlite:////tmp/smsconsole-live-bench/waits.db"
BODY = "Thanks for your order of {{ event.amount }}"


# --- shared -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def backend(url: str) -> str:
    return make_url(url).get_backend_name()


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def percentile(values: list[float], p: float) -> float:
    """Nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def fresh_database(url: str) -> None:
    """An empty database at `url` (the bench's own: a SQLite file is deleted, a PostgreSQL database
    dropped and created)."""
    if backend(url) == "sqlite":
        path = Path(make_url(url).database or "")
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return

    async def recreate() -> None:
        import asyncpg

        parsed = make_url(url)
        conn = await asyncpg.connect(user=parsed.username or "postgres", password=parsed.password,
                                     host=parsed.host or "127.0.0.1", port=parsed.port or 5432, database="postgres")
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{parsed.database}"')
        finally:
            await conn.close()

    asyncio.run(recreate())


def make_config(url: str, workdir: Path) -> Any:
    from smsconsole.config import Config

    return Config(database_url=url, config_dir=workdir / "config", data_dir=workdir / "data")


class Engine:
    """`smsconsole serve` in its own process (exactly what an operator runs), its log kept."""

    def __init__(self, config: Any, url: str, listen_port: int = 0, profile: Path | None = None,
                 sql_stats: Path | None = None) -> None:
        env = {**os.environ, "SMSCONSOLE_CONFIG_DIR": str(config.config_dir),
               "SMSCONSOLE_DATA_DIR": str(config.data_dir), "SMSCONSOLE_DATABASE_URL": url}
        if listen_port:
            env["SMSCONSOLE_LISTEN_PORT"] = str(listen_port)
        env.pop("SMSCONSOLE_SECRET_KEY", None)
        self.log_path = Path(config.data_dir) / "serve.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        # pyinstrument samples the main thread (everything on PostgreSQL; SQLite's statements run
        # in aiosqlite's threads, seen here as waits)
        profiler = ["-m", "pyinstrument", "-r", "text", "-o", str(profile)] if profile else []
        command = (["-m", "bench.live", "serve-traced", "--stats", str(sql_stats)] if sql_stats
                   else ["-m", "smsconsole", "serve"])
        self.process = subprocess.Popen([sys.executable, *profiler, *command], env=env, cwd=ROOT,
                                        stdout=self._log, stderr=self._log)

    def status_kb(self, field: str) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        return 0

    def cpu_seconds(self) -> float:
        """User + system CPU of the engine process so far (all its threads)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()


# --- the fake gateway ---------------------------------------------------------------------------


class Recorder:
    """A loopback gateway speaking the Generic provider's single-message JSON request
    (tests/fakes/sink.py's `generic_config(url, 1)`): `POST /send {"ref", "to", "text"}` answers
    `{"id": "rec-<ref>"}` and notes (to, arrival time, text); the arrival time is taken when the
    request reaches the app (its head read), with time.time(), which every process on this machine
    shares. `GET /log` answers every note as JSON."""

    def __init__(self) -> None:
        self.log: list[tuple[str, float, str]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        arrived = time.time()
        chunks = []
        while True:
            event = await receive()
            chunks.append(event.get("body", b""))
            if not event.get("more_body"):
                break
        if scope["method"] == "GET":
            body = json.dumps(self.log).encode()
        else:
            document = json.loads(b"".join(chunks))
            self.log.append((document["to"], arrived, document["text"]))
            body = json.dumps({"id": f"rec-{document['ref']}"}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def serve_traced(stats: Path) -> None:
    """`smsconsole serve` with every SQL statement timed (wall time from the cursor's execute to its
    end, as the engine's event loop sees it); on exit the totals by statement are written to
    `stats` as JSON, largest first."""
    import atexit

    from sqlalchemy import event
    from sqlalchemy.engine import Engine as SyncEngine

    totals: dict[str, list[float]] = {}

    @event.listens_for(SyncEngine, "before_cursor_execute")
    def before(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    @event.listens_for(SyncEngine, "after_cursor_execute")
    def after(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        seconds = time.perf_counter() - conn.info["bench_started"].pop()
        entry = totals.setdefault(" ".join(statement.split()), [0, 0.0])
        entry[0] += 1
        entry[1] += seconds

    def dump() -> None:
        rows = sorted(([n, t, q] for q, (n, t) in totals.items()), key=lambda row: -row[1])
        stats.write_text(json.dumps(rows, indent=1))

    atexit.register(dump)
    from smsconsole.cli import main as cli_main

    sys.argv = ["smsconsole", "serve"]
    raise SystemExit(cli_main())


def print_sql_stats(stats: Path, events: int, top: int = 12) -> None:
    rows = json.loads(stats.read_text())
    total = sum(t for _, t, _ in rows)
    print(f"           SQL as the engine saw it: {sum(n for n, _, _ in rows):,} statements, {total:.1f} s"
          f" ({sum(n for n, _, _ in rows) / max(events, 1):.0f} statements and {1000 * total / max(events, 1):.1f} ms"
          " an event); the largest:", flush=True)
    for n, t, query in rows[:top]:
        print(f"             {t:7.2f} s {n:7,}x  {query[:150]}", flush=True)


def serve_recorder(port: int) -> None:
    import uvicorn

    uvicorn.run(Recorder(), host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off",
                backlog=4096)


class RecorderProcess:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([sys.executable, "-m", "bench.live", "recorder", "--port", str(self.port)],
                                        cwd=ROOT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                self.log()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the fake gateway did not start")

    def log(self) -> list[tuple[str, float, str]]:
        with urllib.request.urlopen(f"{self.url}/log", timeout=30) as answer:
            return [tuple(row) for row in json.loads(answer.read())]  # type: ignore[misc]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


# --- set-based data ---------------------------------------------------------------------------------


def phone_of(n: int) -> str:
    return f"+1415{n:07d}"


async def generate_profiles(session: Any, count: int, now: datetime) -> None:
    """Profiles u1..u<count>, each with a valid US mobile number (+1415 and the number on 7
    digits), subscribed; one INSERT … SELECT over a generated series."""
    from smsconsole.models import UTCDateTime

    columns = ("user_id, phone, phone_status, sms_capable, country, properties, subscription, subscription_at, "
               "created_at, updated_at")
    if session.get_bind().dialect.name == "postgresql":
        statement = text(
            f"INSERT INTO profiles ({columns}) SELECT 'u' || i, '+1415' || lpad(i::text, 7, '0'), 'valid', true,"
            " 'US', '{}'::jsonb, 'subscribed', :now, :now, :now FROM generate_series(1, :count) AS i")
    else:
        statement = text(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count) "
            f"INSERT INTO profiles ({columns}) SELECT 'u' || i, '+1415' || substr('0000000' || i, -7, 7), 'valid', 1,"
            " 'US', '{}', 'subscribed', :now, :now, :now FROM n")
    await session.execute(statement.bindparams(bindparam("now", type_=UTCDateTime())), {"now": now, "count": count})


async def seed_catalog(session: Any, names_properties: dict[str, dict[str, Any]]) -> None:
    """One event of each name for a person outside the bench, through the profile service, so the
    property catalog knows the names and types (as after the first real event)."""
    from smsconsole.services.profiles import (
        audience_defaults,
        prepare_event,
        property_types,
        record_events,
    )

    defaults = await audience_defaults(session)
    prepared = []
    for name, properties in names_properties.items():
        types = dict(await property_types(session, f"event:{name}"))
        prepared.append(prepare_event({"user_id": "bench-catalog", "name": name, "properties": properties,
                                       "at": "2020-01-01T00:00:00Z"}, defaults, types))
    await record_events(session, prepared, source="api", defaults=defaults)


async def create_live(session: Any, document: dict[str, Any]) -> int:
    """Create and schedule the campaign through the services (the CLI's and the console's path)."""
    from smsconsole.services.campaigns import crud, lifecycle
    from smsconsole.services.errors import ValidationError

    view = await crud.create_campaign(session, document, actor="bench")
    try:
        await lifecycle.schedule_campaign(session, view.id, actor="bench")
    except ValidationError as exc:
        raise SystemExit(f"the campaign could not be scheduled: {exc}") from None
    return view.id


# --- 1. trigger latency ---------------------------------------------------------------------------


def latency_document(body: str = BODY) -> dict[str, Any]:
    return {"name": "Order thanks", "type": "action", "when": {"timezone": "UTC"},
            "who": {"trigger": {"event": "order"}},
            "what": {"route": {"provider": "sink"}, "body": body},
            # an order confirmation; the schedule's compliance preflight checks it as such
            "compliance": {"category": "transactional"}}


async def _latency_setup(url: str, config: Any, people: int, gateway_url: str, body: str,
                         campaign: bool = True) -> tuple[str, int]:
    from sqlalchemy import insert

    from smsconsole.models import Profile
    from smsconsole.runtime import Runtime
    from smsconsole.services import api_keys, providers
    from tests.fakes.sink import generic_config

    rt = await Runtime.open(config)
    try:
        now = datetime.now(UTC)
        async with rt.factory() as session, session.begin():
            await providers.create_provider(session, rt.box, kind="generic", name="sink",
                                            values=generic_config(gateway_url, 1), actor="bench")
            _, key = await api_keys.create_api_key(session, "bench", actor="bench")
            for start in range(0, people, 10_000):
                await session.execute(insert(Profile), [
                    {"user_id": f"u{n}", "phone": phone_of(n), "phone_raw": None, "phone_status": "valid",
                     "sms_capable": True, "subscription": "subscribed", "subscription_at": now, "properties": {},
                     "country": "US", "created_at": now, "updated_at": now}
                    for n in range(start, min(people, start + 10_000))])
        async with rt.factory() as session, session.begin():
            await seed_catalog(session, {"order": {"amount": 1}})
        campaign_id = 0
        if campaign:
            async with rt.factory() as session, session.begin():
                campaign_id = await create_live(session, latency_document(body))
    finally:
        await rt.close()
    return key, campaign_id


class _Closed(Exception):
    """The server closed a kept-alive connection before answering (nothing of the answer read)."""


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, bool]:
    """Send one HTTP/1.1 request, read its answer: (status, whether the server closes the connection)."""
    writer.write(request)
    await writer.drain()
    status_line = await reader.readline()
    if not status_line:
        raise _Closed
    status = int(status_line.split()[1])
    length, close = 0, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
        elif name.strip().lower() == "connection" and "close" in value.lower():
            close = True
    await reader.readexactly(length)
    return status, close


async def _post_events(address: str, key: str, first: int, count: int, rate: float,
                       connections: int = 32) -> list[tuple[int, float, float, int, float]]:
    """POST one event per person first..first+count-1 at `rate` per second, open loop, over up to
    `connections` kept-alive connections (a request waits in this client when all are busy; that
    wait is reported, it does not hold back the later requests). A bare HTTP/1.1 client on asyncio
    streams: a general client's pool bookkeeping (httpx) cost more CPU than the server under a
    backlog. Each result: (person, request sent, answer read, status (0: no answer), how long the
    request waited past its planned moment for a connection)."""
    parsed = urllib.parse.urlsplit(address)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    results: list[tuple[int, float, float, int, float]] = []

    async def worker() -> None:
        reader = writer = None
        while (item := await queue.get()) is not None:
            n, planned = item
            lag = max(0.0, time.monotonic() - planned)
            body = json.dumps({"user_id": f"u{n}", "name": "order", "properties": {"amount": 100 + n % 900}}).encode()
            request = (f"POST /v1/events HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {key}\r\n"
                       f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
            status, close = 0, True
            started = time.time()
            for _ in (1, 2):  # a kept-alive connection the server closed meanwhile: once more on a new one
                try:
                    if reader is None or writer is None:
                        reader, writer = await asyncio.open_connection(host, port)
                    started = time.time()
                    status, close = await _exchange(reader, writer, request)
                    break
                except (_Closed, OSError, ValueError, IndexError, asyncio.IncompleteReadError):
                    if writer is not None:
                        writer.close()
                    reader = writer = None
                    status, close = 0, True
            results.append((n, started, time.time(), status, lag))
            if close and writer is not None:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    t0 = time.monotonic()
    for i in range(count):
        planned = t0 + i / rate
        delay = planned - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((first + i, planned))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    return results


async def _wait_live(url: str, campaign_id: int, timeout: float) -> bool:
    from smsconsole.db import open_database, session_factory
    from smsconsole.models import CampaignRun

    engine = await open_database(url, migrate=False)
    try:
        factory = session_factory(engine)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            async with factory() as session:
                state = await session.scalar(select(CampaignRun.state).where(CampaignRun.campaign_id == campaign_id))
            if state == "live":
                return True
            await asyncio.sleep(0.2)
        return False
    finally:
        await engine.dispose()


async def _outcomes(url: str, campaign_id: int) -> dict[str, Any]:
    from smsconsole.db import open_database, session_factory
    from smsconsole.models import CampaignLiveDay, Message

    engine = await open_database(url, migrate=False)
    try:
        async with session_factory(engine)() as session:
            states = dict((await session.execute(select(Message.state, func.count()).where(
                Message.campaign_id == campaign_id).group_by(Message.state))).all())
            counters: Counter[str] = Counter()
            for row in await session.scalars(select(CampaignLiveDay).where(CampaignLiveDay.campaign_id == campaign_id)):
                for name in ("triggered", "queued", "not_in_filter", "unreachable", "not_eligible", "limited", "late"):
                    counters[name] += getattr(row, name) or 0
        return {"messages": states, "counters": dict(counters)}
    finally:
        await engine.dispose()


def _health(address: str) -> bool:
    try:
        with urllib.request.urlopen(f"{address}/healthz", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def latency(url: str, rate: float, seconds: float, warmup: int, body: str = BODY, connections: int = 32,
            baseline: bool = False, profile: Path | None = None, sql_stats: Path | None = None) -> dict[str, Any]:
    count = int(rate * seconds)
    fresh_database(url)
    workdir = Path(tempfile.mkdtemp(prefix="smsconsole-live-bench-"))
    config = make_config(url, workdir)
    recorder = RecorderProcess()
    engine: Engine | None = None
    try:
        key, campaign_id = asyncio.run(_latency_setup(url, config, count + warmup, recorder.url, body,
                                                          campaign=not baseline))
        port = free_port()
        address = f"http://127.0.0.1:{port}"
        engine = Engine(config, url, port, profile, sql_stats)
        deadline = time.monotonic() + 60
        while not _health(address):
            if time.monotonic() > deadline or engine.process.poll() is not None:
                raise SystemExit(f"the engine's listener did not answer; see {engine.log_path}")
            time.sleep(0.2)
        if not baseline and not asyncio.run(_wait_live(url, campaign_id, 60)):
            raise SystemExit(f"the campaign's run did not go live within 60 s; see {engine.log_path}")
        # Warm-up (connections, caches, the first trigger's catalog reads): people count.., not counted.
        asyncio.run(_post_events(address, key, count, warmup, 10.0))
        time.sleep(2)
        idle_before = engine.cpu_seconds()
        time.sleep(5)
        idle_cpu = (engine.cpu_seconds() - idle_before) / 5
        before = load()
        print(f"{backend(url):10} posting {count:,} events at {rate:g}/s ({before})", flush=True)
        cpu_before, own_before = engine.cpu_seconds(), time.process_time()
        results = asyncio.run(_post_events(address, key, 0, count, rate, connections))
        after = load()
        finished = time.monotonic()
        cpu_posting, own_cpu = engine.cpu_seconds() - cpu_before, time.process_time() - own_before
        wanted = {phone_of(n) for n, _, _, status, _ in results if 200 <= status < 300 and not baseline}
        seen = 0
        settled = time.monotonic()
        while time.monotonic() - finished < 120:
            log = recorder.log()
            got = {to for to, _, _ in log if to in wanted}
            if len(got) >= len(wanted):
                break
            if len(got) != seen:
                seen, settled = len(got), time.monotonic()
            elif time.monotonic() - settled > 20:
                break
            time.sleep(1)
        log = recorder.log()
        cpu_total = engine.cpu_seconds() - cpu_before
    finally:
        if engine is not None:
            engine.stop()
        recorder.stop()
    outcomes = asyncio.run(_outcomes(url, campaign_id))

    arrivals: dict[str, list[float]] = {}
    sample_text = ""
    for to, arrived, text_sent in log:
        arrivals.setdefault(to, []).append(arrived)
        sample_text = sample_text or text_sent
    answered = {n: (started, done) for n, started, done, status, _ in results if 200 <= status < 300}
    statuses = Counter(status for _, _, _, status, _ in results)
    latencies = [min(arrivals[phone_of(n)]) - done for n, (_, done) in answered.items() if phone_of(n) in arrivals]
    response_times = [done - started for started, done in answered.values()]
    duplicates = sum(len(times) - 1 for to, times in arrivals.items() if len(times) > 1)
    result: dict[str, Any] = {
        "database": backend(url), "baseline": baseline, "rate": rate,
        "connections": connections, "seconds": seconds, "events": count,
        "answered_2xx": len(answered), "statuses": {str(k): v for k, v in statuses.items()},
        "sent": len(latencies), "duplicate_sends": duplicates, "sample_text": sample_text,
        "client_wait_ms": {name: 1000 * percentile([lag for *_, lag in results], p) for name, p in
                           (("p50", 50), ("p99", 99), ("max", 100))},
        "load_before": before, "load_after": after, **outcomes,
        "engine_cpu_s": cpu_total, "engine_idle_cpu_per_s": idle_cpu, "engine_cpu_while_posting_s": cpu_posting, "load_generator_cpu_s": own_cpu,
    }
    if latencies:
        result["latency_ms"] = {name: 1000 * percentile(latencies, p) for name, p in
                                (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))}
        result["latency_ms"]["min"] = 1000 * min(latencies)
    if response_times:
        result["response_ms"] = {name: 1000 * percentile(response_times, p) for name, p in
                                 (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))}
    lat = result.get("latency_ms")
    print(f"{backend(url):10} {count:,} events at {rate:g}/s: {len(answered):,} answered 2xx {dict(statuses)}, "
          f"{len(latencies):,} sent ({duplicates} twice); latency 2xx -> provider "
          + (f"p50 {lat['p50']:.0f} ms, p90 {lat['p90']:.0f} ms, p99 {lat['p99']:.0f} ms, max {lat['max']:.0f} ms"
             if lat else "n/a")
          + (f"; API answer p50 {result['response_ms']['p50']:.0f} ms, p99 {result['response_ms']['p99']:.0f} ms"
             if response_times else "")
          + f"; requests waited for a free connection p50 {result['client_wait_ms']['p50']:.0f} ms,"
            f" max {result['client_wait_ms']['max']:.0f} ms; {before} / after: {after}; outbox {outcomes['messages']}, counters {outcomes['counters']}",
          flush=True)
    print(f"           CPU: the engine process {cpu_total:.1f} s in all ({1000 * cpu_total / max(count, 1):.1f} ms an event;"
          f" {cpu_posting:.1f} s while the events were posted over {seconds:g} s), this load generator"
          f" {own_cpu:.1f} s; the engine idle (no events): {idle_cpu:.2f} s of CPU a second", flush=True)
    if sql_stats is not None and sql_stats.exists():
        print_sql_stats(sql_stats, count + warmup)
    if sample_text:
        print(f"           a message as the provider got it: {sample_text!r}", flush=True)
    return result


# --- 2. waits at scale --------------------------------------------------------------------------------


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


def quick(rate: float = 100.0, seconds: float = 10.0, count: int = 1_000_000) -> list[dict[str, Any]]:
    """For bench/run: trigger latency at the goal's rate for `seconds` (not 60: a backlog only grows
    with time, so a miss here is a miss at 60 s, a pass here is not a pass there), and the waits
    part at its full size with 5-second RSS samples; a temp SQLite file, and PostgreSQL when
    SMSCONSOLE_BENCH_DATABASE_URL names a server."""
    import contextlib
    import io

    from bench._quick import backend as backend_name
    from bench._quick import postgres_url, row, scratch_database, under

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="smsc-live-") as tmp:
        for server in [""] + ([postgres_url()] if postgres_url() else []):
            name = backend_name(server)
            with scratch_database(server or f"sqlite:///{tmp}/latency.db", "live_latency") as url, \
                    contextlib.redirect_stdout(io.StringIO()):
                result = latency(url, rate, seconds, 20)
            where = f"live trigger, {name}, {rate:g} events/s for {seconds:g} s (goal at 60 s)"
            lat = result.get("latency_ms")
            if lat is None:
                rows.append(row(f"{where}: 2xx → provider request", "no message reached the provider",
                                "p50 < 100 ms, p99 < 500 ms", None, False))
            else:
                rows.append(under(f"{where}: 2xx → provider request, p50", f"{lat['p50']:,.0f} ms", "< 100 ms",
                                  lat["p50"], 100.0))
                rows.append(under(f"{where}: 2xx → provider request, p99", f"{lat['p99']:,.0f} ms (max "
                                  f"{lat['max']:,.0f})", "< 500 ms", lat["p99"], 500.0))
            others = {("no answer" if code == "0" else code): n for code, n in result["statuses"].items()
                      if not code.startswith("2")}
            rows.append(row(f"{where}: every event answered 2xx",
                            f"{result['answered_2xx']:,} of {result['events']:,}"
                            + (f" (others: {others}; no answer = the connection failed twice)" if others else ""),
                            "all", None, result["answered_2xx"] == result["events"]))
            rows.append(row(f"{where}: every answered event sent once",
                            f"{result['sent']:,} of {result['answered_2xx']:,} sent, {result['duplicate_sends']} "
                            "twice", "all, once", None,
                            result["sent"] == result["answered_2xx"] and result["duplicate_sends"] == 0))
            with scratch_database(server or f"sqlite:///{tmp}/waits.db", "live_waits") as url, \
                    contextlib.redirect_stdout(io.StringIO()):
                result = waits(url, count, count, 5.0, False)
            spread, burst = result["spread"], result["burst"]
            where = f"live waits, {name}, {count:,} pending"
            rows.append(under(f"{where}: 10,000 due over one minute, 61 ticks in all",
                              f"{spread['seconds_total']:.2f} s (a tick at most {spread['tick_max_ms']:,.0f} ms)",
                              "within the minute", spread["seconds_total"], 60.0))
            rows.append(under(f"{where}: 10,000 due at the same second", f"{burst['ticks']} tick(s), "
                              f"{burst['seconds']:.2f} s", "within the minute", burst["seconds"], 60.0))
            before, after = result["rss_no_waits"]["rss_mb"], result["rss_waits"]["rss_mb"]
            rows.append(row(f"{where}: `smsconsole serve` RSS, none → all pending (5 s samples)",
                            f"{before:.1f} → {after:.1f} MB; table + indexes "
                            f"{result['size']['total'] / 1024 / 1024:.0f} MiB", "flat (within 10%)",
                            after / before, after <= before * 1.1))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="part", required=True)
    lat = sub.add_parser("latency", help="/v1/events 2xx -> the provider's fake receiving the send")
    lat.add_argument("--database-url", default=DEFAULT_LATENCY_URL)
    lat.add_argument("--rate", type=float, default=100.0, help="events per second")
    lat.add_argument("--seconds", type=float, default=60.0)
    lat.add_argument("--warmup", type=int, default=20, help="events before the measured ones (not counted)")
    lat.add_argument("--connections", type=int, default=32, help="kept-alive connections of the load generator")
    lat.add_argument("--body", default=BODY, help="the message body (Liquid)")
    lat.add_argument("--baseline", action="store_true",
                     help="no campaign: how the ingestion API alone answers the same load")
    lat.add_argument("--profile", type=Path, help="run the engine under pyinstrument (pip install -e '.[bench]'), its report written here")
    lat.add_argument("--sql-stats", type=Path, help="time every SQL statement of the engine; totals written here")
    lat.add_argument("--json", type=Path)
    wts = sub.add_parser("waits", help="1,000,000 pending waits: size, engine RSS, 10,000 firing in a minute")
    wts.add_argument("--database-url", default=DEFAULT_WAITS_URL)
    wts.add_argument("--waits", type=int, default=1_000_000)
    wts.add_argument("--profiles", type=int, default=None, help="default: as many as waits")
    wts.add_argument("--rss-seconds", type=float, default=20.0)
    wts.add_argument("--reuse", action="store_true",
                     help="reuse the waits this bench generated before (fired ones are put back to pending)")
    wts.add_argument("--json", type=Path)
    traced = sub.add_parser("serve-traced", help=argparse.SUPPRESS)
    traced.add_argument("--stats", type=Path, required=True)
    rec = sub.add_parser("recorder", help=argparse.SUPPRESS)
    rec.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    if args.part == "recorder":
        serve_recorder(args.port)
        return
    if args.part == "serve-traced":
        serve_traced(args.stats)
        return
    if args.part == "latency":
        result = latency(args.database_url, args.rate, args.seconds, args.warmup, args.body, args.connections,
                         args.baseline, args.profile,
                         args.sql_stats)
    else:
        result = waits(args.database_url, args.waits, args.profiles or args.waits, args.rss_seconds, args.reuse)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
