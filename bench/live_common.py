"""The helpers bench/live.py and bench/live_waits.py share: a database made fresh, the engine as a
`smsconsole serve` process (optionally with SQL statistics), the loopback fake gateway that notes
when each request arrived, and the set-based data (profiles, the event catalog, a live campaign)."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import bindparam, text
from sqlalchemy.engine import make_url


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
