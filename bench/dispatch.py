"""Dispatch throughput: queued messages through the engine's dispatcher to a loopback fake gateway
(tests/fakes/sink.py, its own process) on SQLite, each against a bare httpx client sending the
same requests to the same fake with the same concurrency, in the same run:

- one request per message: N messages, bare client then engine;
- the Generic provider batching 100 messages per request: M messages, bare client (the same
  `{"messages": [100 items]}` bodies, built with json.dumps per request, answers read as JSON)
  then engine.

Reports messages/second, the engine/bare ratio against the goals (>= 0.8x bare both ways, and
>= 20,000 msg/s batched), what the fake received, and peak RSS.

    .venv/bin/python -m bench.dispatch                       # 20,000 one per request, 200,000 batched
    .venv/bin/python -m bench.dispatch --skip-single --batched-messages 40000 --profile-batching /tmp/b.prof
    .venv/bin/python -m bench.dispatch --messages 10000 --skip-batching --profile /tmp/dispatch.html

`quick()` runs a small size (about a minute) and returns the rows bench/run prints.

The engine here is exactly what `smsconsole serve` runs (Dispatcher.run with its default
DispatchSettings apart from the concurrency: pipelined batch claims, routing, guards, the send
gate, rate-limit and circuit checks, bulk outcome writes); only the lease and listener are left
out, which cost nothing per message.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, insert, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from smsconsole import clock  # noqa: E402
from smsconsole.config import Config  # noqa: E402
from smsconsole.engine.dispatcher import DispatchSettings, Dispatcher  # noqa: E402
from smsconsole.models import Message  # noqa: E402
from smsconsole.runtime import Runtime  # noqa: E402
from smsconsole.services import providers  # noqa: E402
from tests.fakes.sink import generic_config  # noqa: E402

BATCH = 100  # messages per request through the batching provider
GOAL_RATIO = 0.8  # of a bare httpx client sending the same requests to the same fake
GOAL_BATCHED = 20_000  # messages/s through the batching provider


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Sink:
    """The fake gateway in its own process."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([sys.executable, "-m", "tests.fakes.sink", "--port", str(self.port)],
                                        cwd=ROOT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                self.count()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the fake gateway did not start")

    def count(self) -> int:
        with urllib.request.urlopen(f"{self.url}/count", timeout=5) as answer:
            return int(answer.read())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bare_body(start: int, count: int) -> str:
    """The JSON body the bare client sends for messages start … start+count-1: one message as the
    Generic provider configured by tests.fakes.sink.generic_config renders it, or a batch."""
    items = [{"ref": f"bare-{n}", "to": f"+1415{n:07d}", "text": f"Hello {n}"} for n in range(start, start + count)]
    return json.dumps(items[0] if count == 1 else {"messages": items}, ensure_ascii=False)


async def bare(url: str, messages: int, concurrency: int, per_request: int = 1) -> tuple[float, float]:
    """Seconds for a bare httpx client to POST `messages` messages, `per_request` to a JSON body,
    `concurrency` requests at a time: the same requests the engine makes, each body built and each
    answer read (as JSON) as the engine does, and nothing else. Returns the seconds and the CPU
    seconds they took."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for start in range(0, messages, per_request):
            queue.put_nowait(start)

        async def worker() -> None:
            while not queue.empty():
                start = queue.get_nowait()
                count = min(per_request, messages - start)
                response = await client.post(f"{url}/send", content=bare_body(start, count).encode("utf-8"),
                                             headers={"content-type": "application/json"})
                response.raise_for_status()
                answer = response.json()
                if count > 1 and len(answer["results"]) != count:
                    raise RuntimeError("the fake answered for the wrong number of messages")

        started, cpu_started = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, time.process_time() - cpu_started


async def engine(workdir: Path, url: str, messages: int, concurrency: int, per_request: int,
                 batch_size: int | None = None, pipeline_depth: int | None = None,
                 profile: str | None = None) -> tuple[float, int, float]:
    """Seconds for the dispatcher to send `messages` queued messages, how many were sent, and the
    CPU seconds this process spent meanwhile (every thread: the loop's and SQLite's).
    `batch_size` and `pipeline_depth` default to DispatchSettings' own (what `serve` runs)."""
    database = workdir / f"dispatch-{per_request}.db"
    config = Config(config_dir=workdir / "config", data_dir=workdir / "data", database_url=f"sqlite:///{database}")
    rt = await Runtime.open(config)
    try:
        async with rt.factory() as session, session.begin():
            view = await providers.create_provider(session, rt.box, kind="generic", name=f"sink{per_request}",
                                                   values=generic_config(url, per_request), actor="bench")
        now = clock.now()
        rows = [{"kind": "transactional" if n % 100 else "test", "priority": 0 if n % 100 else 100, "provider_id": view.id,
                 "provider_name": view.name, "to_number": f"+1415{n:07d}", "body": f"Hello {n}",
                 "encoding": "GSM-7", "segments": 1, "state": "queued", "attempts": 0, "created_at": now,
                 "updated_at": now, "dedupe_key": f"run:1:profile:{n}"} for n in range(messages)]
        for start in range(0, messages, 10_000):
            async with rt.factory() as session, session.begin():
                await session.execute(insert(Message), rows[start:start + 10_000])
        del rows
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            values: dict[str, int] = {"provider_concurrency": concurrency}
            if batch_size:
                values["batch_size"] = batch_size
            if pipeline_depth:
                values["pipeline_depth"] = pipeline_depth
            dispatcher = Dispatcher(rt.factory, rt.box, client, DispatchSettings(**values))  # type: ignore[arg-type]
            stop, wake = asyncio.Event(), asyncio.Event()
            stop_profile = _start_profile(profile)
            open_states = ("queued", "claimed", "sending")
            started, cpu_started = time.perf_counter(), time.process_time()
            runner = asyncio.create_task(dispatcher.run(stop, wake, 0.05))
            while True:
                await asyncio.sleep(0.1)
                async with rt.factory() as session:
                    open_count = await session.scalar(
                        select(func.count()).select_from(Message).where(Message.state.in_(open_states)))
                if not open_count:
                    break
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            stop.set()
            await runner
            stop_profile()
        async with rt.factory() as session:
            sent = await session.scalar(select(func.count()).select_from(Message).where(Message.state == "sent"))
        return elapsed, sent or 0, cpu
    finally:
        await rt.close()


def _start_profile(path: str | None) -> Callable[[], None]:
    """Profile the engine run: cProfile statistics for a path ending .prof (the event loop's
    thread only), else a pyinstrument HTML page. Returns the function that stops and writes it."""
    if not path:
        return lambda: None
    if path.endswith(".prof"):
        import cProfile
        import pstats

        cprofile = cProfile.Profile()
        cprofile.enable()

        def stop_cprofile() -> None:
            cprofile.disable()
            cprofile.dump_stats(path)
            pstats.Stats(path).sort_stats("tottime").print_stats(40)

        return stop_cprofile
    from pyinstrument import Profiler

    profiler = Profiler(async_mode="enabled")
    profiler.start()

    def stop_pyinstrument() -> None:
        profiler.stop()
        Path(path).write_text(profiler.output_html())
        print(profiler.output_text(unicode=True, color=False, show_all=False)[:6000])

    return stop_pyinstrument


@dataclass
class Run:
    name: str
    seconds: float
    messages: int  # sent (engine) or posted (bare)
    requests: int
    cpu: float  # CPU seconds of the bench process during the run (the fake is another process)

    @property
    def cpu_us(self) -> float:
        """CPU microseconds a message: steadier than the rate on a shared machine."""
        return self.cpu / self.messages * 1e6 if self.messages else 0.0

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


async def measure(messages: int, batched_messages: int, concurrency: int = 16, batch_size: int | None = None,
                  pipeline_depth: int | None = None, single: bool = True, batching: bool = True,
                  profile: str | None = None, profile_batching: str | None = None,
                  say: Callable[[str], None] = print) -> tuple[list[Run], int, int]:
    """Every run against one fake, in this order: bare and engine one request per message, then
    bare and engine 100 per request. Returns the runs, what the fake counted and expected."""
    sink = Sink()
    runs: list[Run] = []
    expected = 0
    try:
        with tempfile.TemporaryDirectory(prefix="smsconsole-dispatch-bench-") as tmp:
            workdir = Path(tmp)
            for per_request, count, wanted, prof in ((1, messages, single, profile),
                                                     (BATCH, batched_messages, batching, profile_batching)):
                if not wanted:
                    continue
                requests = -(-count // per_request)
                seconds, cpu = await bare(sink.url, count, concurrency, per_request)
                runs.append(Run(f"bare httpx, {per_request} per request", seconds, count, requests, cpu))
                say(f"{runs[-1].name}: {runs[-1].rate:,.0f} msg/s ({seconds:.1f} s; "
                    f"{runs[-1].cpu_us:,.0f} us CPU a message)")
                seconds, sent, cpu = await engine(workdir, sink.url, count, concurrency, per_request, batch_size,
                                                  pipeline_depth, prof)
                runs.append(Run(f"engine, {per_request} per request", seconds, sent, requests, cpu))
                bare_rate = runs[-2].rate
                say(f"{runs[-1].name}: {runs[-1].rate:,.0f} msg/s ({seconds:.1f} s, {sent:,} sent; "
                    f"{runs[-1].cpu_us:,.0f} us CPU a message); {runs[-1].rate / bare_rate:.2f}x bare")
                expected += 2 * count
        received = sink.count()
    finally:
        sink.stop()
    return runs, received, expected


def table_rows(runs: list[Run]) -> list[dict[str, Any]]:
    """One row per engine run against its bare yardstick, for bench/run's table."""
    by_name = {run.name: run for run in runs}
    rows: list[dict[str, Any]] = []
    for per_request in (1, BATCH):
        engine_run = by_name.get(f"engine, {per_request} per request")
        bare_run = by_name.get(f"bare httpx, {per_request} per request")
        if engine_run is None or bare_run is None:
            continue
        ratio = engine_run.rate / bare_run.rate if bare_run.rate else 0.0
        if per_request == 1:
            measure_name = "dispatch, 1 request per message, vs bare httpx"
            goal = f">= {GOAL_RATIO}x bare httpx"
            holds = ratio >= GOAL_RATIO
        else:
            measure_name = f"dispatch, batching {BATCH} per request, vs bare httpx"
            goal = f">= {GOAL_RATIO}x bare httpx and >= {GOAL_BATCHED:,} msg/s"
            holds = ratio >= GOAL_RATIO and engine_run.rate >= GOAL_BATCHED
        figure = (f"{engine_run.rate:,.0f} msg/s vs bare {bare_run.rate:,.0f} msg/s "
                  f"({engine_run.messages:,} messages; CPU {engine_run.cpu_us:,.0f} vs {bare_run.cpu_us:,.0f} us/msg)")
        rows.append({"measure": measure_name, "figure": figure, "goal": goal, "ratio": round(ratio, 2),
                     "holds": holds})
    return rows


def quick() -> list[dict[str, Any]]:
    """A small run for bench/run (about a minute on the 2-core machine): 3,000 messages one per
    request, 40,000 batched; rows {measure, figure, goal, ratio, holds}. Call it outside an
    event loop (it runs its own)."""
    runs, received, expected = asyncio.run(measure(3_000, 40_000, say=lambda line: None))
    rows = table_rows(runs)
    if received != expected:
        rows.append({"measure": "dispatch, every message received once", "figure": f"{received:,} of {expected:,}",
                     "goal": "all", "ratio": None, "holds": False})
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000, help="messages sent one per request")
    parser.add_argument("--batched-messages", type=int, default=200_000, help=f"messages sent {BATCH} per request")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--batch-size", type=int, help="messages claimed per batch (default: the dispatcher's)")
    parser.add_argument("--pipeline-depth", type=int, help="batches in flight (default: the dispatcher's)")
    parser.add_argument("--profile", help="profile the one-per-request engine run: a .prof path (cProfile) "
                                          "or an HTML path (pyinstrument)")
    parser.add_argument("--profile-batching", help="the same for the batching engine run")
    parser.add_argument("--skip-single", action="store_true")
    parser.add_argument("--skip-batching", action="store_true")
    args = parser.parse_args()
    runs, received, expected = await measure(
        args.messages, args.batched_messages, args.concurrency, args.batch_size, args.pipeline_depth,
        single=not args.skip_single, batching=not args.skip_batching,
        profile=args.profile, profile_batching=args.profile_batching)
    print()
    for row in table_rows(runs):
        print(f"{row['measure']}: {row['figure']}; {row['ratio']:.2f}x; goal {row['goal']}: "
              f"{'holds' if row['holds'] else 'MISSED'}")
    print(f"fake received {received:,} messages (expected {expected:,}); peak RSS {peak_rss_mib():.0f} MiB; "
          f"pid {os.getpid()}")


if __name__ == "__main__":
    asyncio.run(main())
