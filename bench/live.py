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
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select

from bench.live_common import (  # noqa: E402  (after ROOT is on sys.path)
    Engine,
    RecorderProcess,
    backend,
    create_live,
    free_port,
    fresh_database,
    load,
    make_config,
    percentile,
    phone_of,
    print_sql_stats,
    seed_catalog,
    serve_recorder,
    serve_traced,
)

DEFAULT_LATENCY_URL = "sqlite:////tmp/smsconsole-live-bench/latency.db"
DEFAULT_WAITS_URL = "sqlite:////tmp/smsconsole-live-bench/waits.db"
BODY = "Thanks for your order of {{ event.amount }}"


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


def quick(rate: float = 100.0, seconds: float = 10.0, count: int = 1_000_000) -> list[dict[str, Any]]:
    """For bench/run: trigger latency at the goal's rate for `seconds` (not 60: a backlog only grows
    with time, so a miss here is a miss at 60 s, a pass here is not a pass there), and the waits
    part at its full size with 5-second RSS samples; a temp SQLite file, and PostgreSQL when
    SMSCONSOLE_BENCH_DATABASE_URL names a server."""
    import contextlib
    import io

    from bench._quick import backend as backend_name
    from bench._quick import postgres_url, row, scratch_database, under
    from bench.live_waits import (
        waits,  # the waits part lives apart (it imports this module's helpers)
    )

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
        from bench.live_waits import waits

        result = waits(args.database_url, args.waits, args.profiles or args.waits, args.rss_seconds, args.reuse)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
