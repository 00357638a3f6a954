"""The compliance and cost preflight at scale: `preflight_campaign` of a one-time promotional
campaign to about 1,000,000 reachable recipients (the segment bench's profile generator, seeded;
1,540,000 profiles by default), goal under 10 s.

The audience gets the demo's compliance data (services/demo_compliance.py: a Sandbox with a 10DLC
long code, a pending toll-free number, an alphanumeric id, two India DLT headers and their
templates, prices per segment), and opt-in times for all subscribed profiles but every 50th (so
consent findings have something to count). Each measured call runs in a fresh subprocess (the
data generation does not count toward its memory), and reports the whole call and its parts:
the audience GROUP BY (country, time zone, with the consent count), the sample (its population
count, the pseudo-random ordered pick of SAMPLE people, the render of each), and the rest (routes,
senders, windows, DLT matching, prices: in-process work on a few dozen groups and the sample).

    .venv/bin/python -m bench.preflight                                     # SQLite file under /tmp
    .venv/bin/python -m bench.preflight --database-url postgresql://postgres@127.0.0.1:5432/smsc_preflight
    .venv/bin/python -m bench.preflight --profiles 150000 --runs 1          # a quick look
    .venv/bin/python -m bench.preflight --reuse --profile-call              # pyinstrument the call
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import segments as segment_bench
from bench.campaigns import _cpu_seconds, _reset_peak_rss, _status_kb
from smsconsole.db import open_database, session_factory
from smsconsole.models import Profile, Provider

DEFAULT_URL = "sqlite:////tmp/smsconsole-preflight-bench/preflight.db"
NOW = segment_bench.NOW  # 2026-03-01 00:00 UTC, the generator's clock
PLANNED = NOW + timedelta(hours=12)  # 12:00 UTC: 07:00 in New York (quiet hours), 17:30 in India
GOAL_SECONDS = 10.0
BODY = 'Hi {{ profile.name | default: "there" }}, winter sale: 20% off everything today. Reply STOP to opt out.'


def document() -> dict[str, Any]:
    return {"name": "preflight bench", "type": "one_time",
            "when": {"timezone": "UTC", "at": PLANNED.strftime("%Y-%m-%d %H:%M:%S")},
            "who": {},  # no segment: everyone (the unreachable are left out by the preflight)
            "what": {"route": {"provider": "sandbox"}, "body": BODY},
            "compliance": {"category": "promotional"}}


# --- data ----------------------------------------------------------------------------------------


async def _compliance(url: str) -> None:
    """The Sandbox with the demo's compliance data, and opt-in times (once; kept on --reuse)."""
    from smsconsole.config import Config
    from smsconsole.runtime import Runtime
    from smsconsole.services import providers
    from smsconsole.services.demo_compliance import create_compliance

    scratch = Path(tempfile.mkdtemp(prefix="smsc-preflight-bench-"))
    rt = await Runtime.open(Config(database_url=url, config_dir=scratch / "config", data_dir=scratch / "data"))
    try:
        async with rt.factory() as session, session.begin():
            if await session.scalar(select(func.count()).select_from(Provider).where(Provider.name == "sandbox")):
                return
            await providers.create_provider(session, rt.box, kind="sandbox", name="sandbox", values={}, actor="bench")
            await create_compliance(session, "sandbox")
        async with rt.factory() as session, session.begin():
            await session.execute(update(Profile).where(Profile.subscription == "subscribed", Profile.id % 50 != 0)
                                  .values(subscription_at=Profile.created_at))
    finally:
        await rt.close()


def prepare(url: str, profiles: int, reuse: bool) -> None:
    # No events (the preflight reads profiles); PostgreSQL gets one, as the segment bench's loader
    # sets the events id sequence and a sequence cannot be set to 0.
    events = 1 if make_url(url).get_backend_name() == "postgresql" else 0
    asyncio.run(segment_bench.prepare(url, profiles, events, 20260301, reuse))
    started = time.perf_counter()
    asyncio.run(_compliance(url))
    print(f"compliance data and opt-in times in {time.perf_counter() - started:.0f} s", file=sys.stderr)


# --- one measured call (its own process) ------------------------------------------------------------


async def _measure(url: str, profile_call: bool) -> dict[str, Any]:
    from smsconsole import clock
    from smsconsole.services.campaigns.definition import parse_document
    from smsconsole.services.compliance import cost as costs
    from smsconsole.services.compliance import preflight as preflight_module

    parts = {"audience": 0.0, "sample": 0.0}
    parts_cpu = {"audience": 0.0, "sample": 0.0}

    def timed(name: str, fn: Any) -> Any:
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            started, cpu = time.perf_counter(), _cpu_seconds()
            try:
                return await fn(*args, **kwargs)
            finally:
                parts[name] += time.perf_counter() - started
                parts_cpu[name] += _cpu_seconds() - cpu
        return wrapper

    # The parts are timed by wrapping the two functions the preflight calls (looked up at call time).
    preflight_module._audience = timed("audience", preflight_module._audience)  # type: ignore[attr-defined]
    costs.sample_messages = timed("sample", costs.sample_messages)  # type: ignore[assignment]

    engine = await open_database(url, migrate=False)
    factory = session_factory(engine)
    try:
        clock.freeze(NOW)
        parsed, _ = parse_document(document(), default_timezone="UTC", strict=False)
        rss_before = _reset_peak_rss()
        cpu_before = _cpu_seconds()
        profiler = None
        if profile_call:
            from pyinstrument import Profiler

            profiler = Profiler(async_mode="enabled")
            profiler.start()
        started = time.perf_counter()
        async with factory() as session:
            checked = await preflight_module.preflight_campaign(session, parsed, now=NOW, planned_at=PLANNED)
        seconds = time.perf_counter() - started
        cpu = _cpu_seconds() - cpu_before
        if profiler is not None:
            profiler.stop()
            print(profiler.output_text(unicode=True, color=False, show_all=False), file=sys.stderr)
    finally:
        await engine.dispose()
    return {"seconds": seconds, "audience_s": parts["audience"], "sample_s": parts["sample"],
            "rest_s": seconds - parts["audience"] - parts["sample"], "cpu_seconds": cpu,
            "audience_cpu_s": parts_cpu["audience"], "sample_cpu_s": parts_cpu["sample"],
            "rest_cpu_s": cpu - parts_cpu["audience"] - parts_cpu["sample"],
            "peak_rss_mb": _status_kb("VmHWM") / 1024, "rss_before_mb": rss_before / 1024,
            "recipients": checked.recipients, "sampled": checked.cost.sampled, "margin": checked.cost.margin,
            "countries": len(checked.countries), "cost": dict(checked.cost.totals),
            "findings": sorted({f"{f.code}:{f.country or 'all'}" for f in checked.findings})}


def measure(url: str, runs: int, profile_call: bool) -> list[dict[str, Any]]:
    results = []
    backend = make_url(url).get_backend_name()
    for number in range(1, runs + 1):
        out = subprocess.run([sys.executable, "-m", "bench.preflight", "--database-url", url, "--measure"]
                             + (["--profile-call"] if profile_call else []),
                             cwd=ROOT, capture_output=True, text=True, check=False)
        if out.returncode:
            raise SystemExit(out.stderr[-3000:])
        if profile_call:
            print(out.stderr, file=sys.stderr)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["load_average"] = os.getloadavg()
        results.append(result)
        print(f"{backend:10} run {number}: {result['recipients']:,} recipients in {result['countries']} countries,"
              f" preflight {result['seconds']:.2f} s, CPU {result['cpu_seconds']:.2f} s (audience GROUP BY"
              f" {result['audience_s']:.2f} s, CPU {result.get('audience_cpu_s', 0):.2f}; sample of {result['sampled']:,}"
              f" {result['sample_s']:.2f} s, CPU {result.get('sample_cpu_s', 0):.2f}; rest {result['rest_s']:.2f} s,"
              f" CPU {result.get('rest_cpu_s', 0):.2f}), peak RSS {result['peak_rss_mb']:.0f} MB (at start"
              f" {result['rss_before_mb']:.0f} MB); load average {result['load_average'][0]:.2f}", flush=True)
    if results:
        best = min(r["seconds"] for r in results)
        median = statistics.median(r["seconds"] for r in results)
        verdict = "met" if median < GOAL_SECONDS else "MISSED"
        print(f"{backend:10} median {median:.2f} s, best {best:.2f} s: goal < {GOAL_SECONDS:.0f} s {verdict};"
              f" findings {', '.join(results[-1]['findings'])}; cost {results[-1]['cost']}", flush=True)
    return results


def quick(profiles: int = 200_000) -> list[dict[str, Any]]:
    """For bench/run: one preflight call on `profiles` generated profiles (a fresh temp SQLite
    file, and PostgreSQL when SMSCONSOLE_BENCH_DATABASE_URL names a server), scaled to a million
    reachable recipients against the 10 s goal: the parts that scan the audience linearly, the
    rest as measured."""
    from bench._quick import backend, postgres_url, scratch_database, under

    rows = []
    with tempfile.TemporaryDirectory(prefix="smsc-preflight-") as tmp:
        urls = [f"sqlite:///{tmp}/preflight.db"] + ([postgres_url()] if postgres_url() else [])
        for url in urls:
            with scratch_database(url, "preflight") as target:
                prepare(target, profiles, False)
                result = measure(target, 1, False)[0]
            # the audience GROUP BY and the sample's scans grow with the audience; the rest (routes,
            # windows, DLT, prices over a few dozen groups and the fixed 2,000-message sample) does not
            scale = 1_000_000 / max(result["recipients"], 1)
            per_million = (result["audience_s"] + result["sample_s"]) * scale + result["rest_s"]
            rows.append(under(f"preflight, {backend(url)}: a campaign to everyone, a million reachable "
                              f"(extrapolated from {result['recipients']:,}: audience and sample × {scale:.1f}, "
                              f"the rest as measured)",
                              f"{result['seconds']:.2f} s (CPU {result['cpu_seconds']:.2f} s) ≈ {per_million:.1f} s "
                              f"for a million", "< 10 s for ≈1,000,000", per_million, GOAL_SECONDS))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--profiles", type=int, default=1_540_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reuse", action="store_true", help="reuse a database this script generated before")
    parser.add_argument("--profile-call", action="store_true", help="print a pyinstrument profile of each call")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(asyncio.run(_measure(args.database_url, args.profile_call))))
        return
    prepare(args.database_url, args.profiles, args.reuse)
    results = measure(args.database_url, args.runs, args.profile_call)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
