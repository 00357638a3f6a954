"""Campaign runs at scale.

1. Materialization: a run over the segment bench's audience (bench/segments.py's profile
   generator, seeded; by default 1,540,000 profiles so about 1,000,000 are reachable) turned into
   outbox rows by `materialize_run`, timed, with the peak RSS of the process doing it (a fresh
   subprocess per case, so the data generation does not count). Three cases: a plain run (everyone
   reachable, not-before null), a run delivered in each user's time zone with a DND window
   (the not-before join), and an A/B/C run with a 10% control group (each row's arm, encoding
   and parts computed in the INSERT).
2. Latency: a 10,000-recipient one-time campaign scheduled a few seconds ahead, `smsconsole serve`
   running, a loopback fake gateway recording the moment of its first request; the figure is that
   moment minus the scheduled time.

    .venv/bin/python -m bench.campaigns                                  # SQLite files under /tmp
    .venv/bin/python -m bench.campaigns --database-url postgresql://postgres@127.0.0.1:5432/smsc_campaigns \\
        --latency-url postgresql://postgres@127.0.0.1:5432/smsc_campaigns_latency
    .venv/bin/python -m bench.campaigns --profiles 200000 --skip-latency  # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import segments as segment_bench  # noqa: E402
from smsconsole.db import open_database, session_factory  # noqa: E402
from smsconsole.models import Campaign, CampaignRun, Message, Profile  # noqa: E402

DEFAULT_URL = "sqlite:////tmp/smsconsole-campaigns-bench/campaigns.db"
DEFAULT_LATENCY_URL = "sqlite:////tmp/smsconsole-campaigns-bench/latency.db"
PLANNED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # the segment bench's NOW plus 12 h


def _document(name: str, *, user_timezone: bool = False, route: dict[str, str] | None = None,
              at: datetime = PLANNED, arms: bool = False) -> dict[str, Any]:
    when: dict[str, Any] = {"timezone": "UTC", "at": at.strftime("%Y-%m-%d %H:%M:%S")}
    if user_timezone:
        when.update(user_timezone=True, late="next_day", dnd={"start": "21:00", "end": "09:00", "action": "delay"})
    body = "Hi {{ profile.name | default: \"there\" }}, 20% off today"
    what: dict[str, Any] = {"route": route or {}, "body": body}
    if arms:  # three variants (one UCS-2, one two parts) and a 10% control group
        what = {"route": route or {}, "control": 10, "variants": [
            {"body": body, "split": 30}, {"body": body + " 🎉", "split": 30}, {"body": body + " " + "x" * 140}]}
    return {"name": name, "type": "one_time", "when": when,
            "who": {},  # no segment: everyone (qualified = every profile, the unreachable held back)
            "what": what}


# --- 1. materialization --------------------------------------------------------------------------


async def _warn_only(session: Any) -> None:
    """The run's compliance preflight still runs when it starts, but only warns: the generated
    audience (no opt-in times, US numbers at any hour) would be blocked, and this bench measures
    materialization and start latency, not the rules (bench/preflight.py measures the preflight)."""
    from smsconsole.services.settings import update_settings

    await update_settings(session, {"compliance_enforcement": "warn"}, actor="bench")


async def _new_run(url: str, name: str, user_timezone: bool, arms: bool = False) -> int:
    """A scheduled campaign and its started run (start_due_runs), the outbox emptied first."""
    from smsconsole.services.campaigns.runs import start_due_runs

    engine = await open_database(url)
    factory = session_factory(engine)
    try:
        async with factory() as session, session.begin():
            await session.execute(delete(Message))
            await session.execute(delete(CampaignRun))
            await session.execute(delete(Campaign))
            await _warn_only(session)
        async with factory() as session, session.begin():
            session.add(Campaign(name=name, type="one_time", state="scheduled",
                                 document=_document(name, user_timezone=user_timezone, arms=arms),
                                 next_run_at=PLANNED, created_at=PLANNED, updated_at=PLANNED, scheduled_at=PLANNED))
        # Started when it is due: for user time zones, when the planned wall time first arrives (UTC+14).
        [run_id] = await start_due_runs(factory, now=PLANNED - timedelta(hours=14 if user_timezone else 0))
        return run_id
    finally:
        await engine.dispose()


async def _materialize(url: str, run_id: int, chunk: int) -> dict[str, Any]:
    """Runs in its own process: materialize, and report seconds, rows and this process's peak RSS."""
    from smsconsole import clock
    from smsconsole.services.campaigns.materialize import materialize_run

    engine = await open_database(url, migrate=False)
    factory = session_factory(engine)
    try:
        async with factory() as session:
            run = await session.get(CampaignRun, run_id)
            assert run is not None
            clock.freeze(run.started_at)
        rss_before = _reset_peak_rss()
        cpu_before = _cpu_seconds()
        started = time.perf_counter()
        rows = await materialize_run(factory, run_id, chunk=chunk)
        seconds = time.perf_counter() - started
        cpu = _cpu_seconds() - cpu_before
        async with factory() as session:
            run = await session.get(CampaignRun, run_id)
            assert run is not None
            held_back = dict(run.suppressed)
            qualified = run.qualified
    finally:
        await engine.dispose()
    return {"rows": rows, "seconds": seconds, "cpu_seconds": cpu, "qualified": qualified, "held_back": held_back,
            "peak_rss_mb": _status_kb("VmHWM") / 1024, "rss_before_mb": rss_before / 1024}


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak_rss() -> int:
    """This process's RSS now, with the kernel's high-water mark reset to it (Linux: clear_refs 5).
    ru_maxrss would not do: Linux carries it over from the parent across fork and exec."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_kb("VmRSS")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


CASES = (("plain", False, False), ("user time zone + DND", True, False), ("A/B/C + 10% control", False, True))


def materialization(url: str, profiles: int, chunk: int, reuse: bool,
                    cases: list[str] | None = None) -> list[dict[str, Any]]:
    # No events (a campaign here selects on profiles); PostgreSQL gets one, as the segment bench's
    # loader sets the events id sequence and a sequence cannot be set to 0.
    events = 1 if make_url(url).get_backend_name() == "postgresql" else 0
    asyncio.run(segment_bench.prepare(url, profiles, events, 20260301, reuse))
    results = []
    for name, user_timezone, arms in CASES:
        if cases and name not in cases:
            continue
        run_id = asyncio.run(_new_run(url, name, user_timezone, arms))
        out = subprocess.run([sys.executable, "-m", "bench.campaigns", "--database-url", url, "--materialize-run",
                              str(run_id), "--chunk", str(chunk)], cwd=ROOT, capture_output=True, text=True,
                             check=False)
        if out.returncode:
            raise SystemExit(out.stderr[-3000:])
        result = {"case": name, **json.loads(out.stdout.strip().splitlines()[-1])}
        results.append(result)
        print(f"{make_url(url).get_backend_name():10} {name:22} {result['rows']:>9,} rows in {result['seconds']:6.1f} s"
              f" ({result['rows'] / max(result['seconds'], 1e-9):,.0f} rows/s, CPU {result['cpu_seconds']:.1f} s), peak RSS {result['peak_rss_mb']:.0f} MB"
              f" (at start {result['rss_before_mb']:.0f} MB); held back {result['held_back']}", flush=True)
    return results


# --- 2. scheduled time -> first provider request ---------------------------------------------------


class FirstRequest:
    """A loopback gateway (the test sink) that remembers when the first request arrived."""

    def __init__(self) -> None:
        from tests.fakes.sink import SmsSink

        self.sink = SmsSink()
        self.first: float | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and self.first is None:
            self.first = time.time()
        await self.sink(scope, receive, send)


async def _latency_setup(url: str, recipients: int, gateway_url: str, lead: float) -> tuple[datetime, Any]:
    from smsconsole.config import Config
    from smsconsole.runtime import Runtime
    from smsconsole.services import providers
    from tests.fakes.sink import generic_config

    config = Config(database_url=url, config_dir=Path(tempfile.mkdtemp(prefix="smsc-bench-")) / "config",
                    data_dir=Path(tempfile.mkdtemp(prefix="smsc-bench-")) / "data")
    rt = await Runtime.open(config)
    try:
        now = datetime.now(UTC)
        async with rt.factory() as session, session.begin():
            await providers.create_provider(session, rt.box, kind="generic", name="sink",
                                            values=generic_config(gateway_url, 100), actor="bench")
            await _warn_only(session)
            await session.execute(insert(Profile), [
                {"user_id": f"b{n}", "phone": f"+1415{n:07d}", "phone_raw": None, "phone_status": "valid",
                 "sms_capable": True, "subscription": "subscribed", "properties": {}, "country": "US",
                 "created_at": now, "updated_at": now} for n in range(recipients)])
        at = (now + timedelta(seconds=lead)).replace(microsecond=0)
        async with rt.factory() as session, session.begin():
            session.add(Campaign(name="latency", type="one_time", state="scheduled",
                                 document=_document("latency", route={"provider": "sink"}, at=at),
                                 next_run_at=at, created_at=now, updated_at=now, scheduled_at=now))
    finally:
        await rt.close()
    return at, config


async def _fresh_postgres(url: str) -> None:
    """Drop and create the latency database (it is the bench's own: everything in it goes)."""
    import asyncpg

    parsed = make_url(url)
    conn = await asyncpg.connect(user=parsed.username or "postgres", password=parsed.password,
                                 host=parsed.host or "127.0.0.1", port=parsed.port or 5432, database="postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{parsed.database}"')
    finally:
        await conn.close()


def latency(url: str, recipients: int, lead: float) -> dict[str, Any]:
    from tests.fakes.server import serve

    if make_url(url).get_backend_name() == "sqlite":
        path = Path(make_url(url).database or "")
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    else:
        asyncio.run(_fresh_postgres(url))
    gateway = FirstRequest()
    with serve(gateway) as server:
        at, config = asyncio.run(_latency_setup(url, recipients, server.url, lead))
        env = {**os.environ, "SMSCONSOLE_CONFIG_DIR": str(config.config_dir),
               "SMSCONSOLE_DATA_DIR": str(config.data_dir), "SMSCONSOLE_DATABASE_URL": url,
               "SMSCONSOLE_DISPATCH_BATCH_SIZE": "500"}
        env.pop("SMSCONSOLE_SECRET_KEY", None)
        engine = subprocess.Popen([sys.executable, "-m", "smsconsole", "serve"], env=env, cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = at.timestamp() + 60
            while (gateway.first is None or len(gateway.sink.received) < recipients) and time.time() < deadline:
                time.sleep(0.01)
            finished = time.time()
        finally:
            engine.send_signal(signal.SIGTERM)
            engine.wait(30)
    if gateway.first is None:
        raise SystemExit("no request reached the gateway within 60 s of the scheduled time")
    result = {"recipients": recipients, "first_request_s": gateway.first - at.timestamp(),
              "all_sent_s": finished - at.timestamp(), "received": len(gateway.sink.received)}
    print(f"{make_url(url).get_backend_name():10} scheduled -> first provider request {result['first_request_s']:.3f} s;"
          f" all {result['received']:,} sent {result['all_sent_s']:.1f} s after the scheduled time", flush=True)
    return result


def quick(profiles: int = 150_000, recipients: int = 2_000) -> list[dict[str, Any]]:
    """For bench/run: materialization on `profiles` generated profiles (three cases, each in its own
    process), its time scaled linearly to a million recipients, and the latency of a
    `recipients`-recipient campaign (a temp SQLite file, and PostgreSQL when
    SMSCONSOLE_BENCH_DATABASE_URL names a server)."""
    import contextlib
    import io

    from bench._quick import backend, postgres_url, scratch_database, under

    rows = []
    with tempfile.TemporaryDirectory(prefix="smsc-campaigns-") as tmp:
        for server in [""] + ([postgres_url()] if postgres_url() else []):
            name = backend(server)
            with scratch_database(server or f"sqlite:///{tmp}/campaigns.db", "campaigns") as url, \
                    contextlib.redirect_stdout(io.StringIO()):
                results = materialization(url, profiles, 50_000, False)
            for result in results:
                scale = 1_000_000 / max(result["rows"], 1)
                rows.append(under(f"campaign materialization, {name}, {result['case']}: a million recipients "
                                  f"(extrapolated from {result['rows']:,})",
                                  f"{result['seconds']:.1f} s (CPU {result['cpu_seconds']:.1f} s) ≈ "
                                  f"{result['seconds'] * scale:.1f} s for a million", "< 30 s",
                                  result["seconds"] * scale, 30.0))
            peak = max(result["peak_rss_mb"] for result in results)
            rows.append(under(f"campaign materialization, {name}: peak RSS of the materializing process "
                              f"({max(r['rows'] for r in results):,} rows; not extrapolated)", f"{peak:.0f} MB",
                              "< 500 MB (at 1M)", peak, 500.0))
            with scratch_database(server or f"sqlite:///{tmp}/latency.db", "campaigns_latency") as url, \
                    contextlib.redirect_stdout(io.StringIO()):
                result = latency(url, recipients, 8.0)
            rows.append(under(f"campaign latency, {name}: scheduled time → first provider request "
                              f"({recipients:,} recipients)",
                              f"{result['first_request_s']:.2f} s (all {result['received']:,} sent after "
                              f"{result['all_sent_s']:.1f} s)", "< 2 s (10,000 recipients)",
                              result["first_request_s"], 2.0))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--latency-url", default=DEFAULT_LATENCY_URL)
    parser.add_argument("--profiles", type=int, default=1_540_000)
    parser.add_argument("--chunk", type=int, default=50_000)
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--lead", type=float, default=8.0, help="seconds between setup and the scheduled time")
    parser.add_argument("--reuse", action="store_true", help="reuse a database this script generated before")
    parser.add_argument("--skip-materialize", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--case", action="append", choices=[name for name, _, _ in CASES],
                        help="materialize only this case (repeatable; default: every case)")
    parser.add_argument("--materialize-run", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.materialize_run:
        print(json.dumps(asyncio.run(_materialize(args.database_url, args.materialize_run, args.chunk))))
        return
    results: dict[str, Any] = {}
    if not args.skip_materialize:
        results["materialize"] = materialization(args.database_url, args.profiles, args.chunk, args.reuse, args.case)
    if not args.skip_latency:
        results["latency"] = latency(args.latency_url, args.recipients, args.lead)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
