"""Dispatch throughput: N queued messages through the engine's dispatcher to a loopback fake
gateway (tests/fakes/sink.py, its own process, one request per message over keep-alive
connections) on SQLite, against a bare httpx client sending the same N requests to the same fake
with the same concurrency, in the same run. Then the same N messages through a batching provider
(100 per request). Reports messages/second, the engine/bare ratio and peak RSS.

    .venv/bin/python -m bench.dispatch                          # 100,000 messages
    .venv/bin/python -m bench.dispatch --messages 20000 --profile /tmp/dispatch.html   # pyinstrument

The engine here is exactly what `smsconsole serve` runs (Dispatcher.run: pipelined batches,
routing, guards, rate-limit and circuit checks, bulk writes); only the lease and listener are left
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
from pathlib import Path

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


async def bare(url: str, messages: int, concurrency: int) -> float:
    """Seconds for a bare httpx client to POST `messages` JSON bodies, `concurrency` at a time."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in range(messages):
            queue.put_nowait(n)

        async def worker() -> None:
            while not queue.empty():
                n = queue.get_nowait()
                body = json.dumps({"ref": f"bare-{n}", "to": f"+1415{n:07d}", "text": f"Hello {n}"})
                response = await client.post(f"{url}/send", content=body,
                                             headers={"content-type": "application/json"})
                response.raise_for_status()
                response.json()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started


async def engine(workdir: Path, url: str, messages: int, concurrency: int, batch_size: int, per_request: int,
                 profile: str | None) -> tuple[float, int]:
    """Seconds for the dispatcher to send `messages` queued messages; and how many were sent."""
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
            settings = DispatchSettings(batch_size=batch_size, provider_concurrency=concurrency, pipeline_depth=3)
            dispatcher = Dispatcher(rt.factory, rt.box, client, settings)
            stop, wake = asyncio.Event(), asyncio.Event()
            profiler = None
            if profile:
                from pyinstrument import Profiler

                profiler = Profiler(async_mode="enabled")
                profiler.start()
            started = time.perf_counter()
            runner = asyncio.create_task(dispatcher.run(stop, wake, 0.05))
            while True:
                await asyncio.sleep(0.25)
                async with rt.factory() as session:
                    open_count = await session.scalar(
                        select(func.count()).select_from(Message).where(Message.state.in_(("queued", "sending"))))
                if not open_count:
                    break
            elapsed = time.perf_counter() - started
            stop.set()
            await runner
            if profiler is not None:
                profiler.stop()
                Path(profile).write_text(profiler.output_html())
                print(profiler.output_text(unicode=True, color=False, show_all=False)[:6000])
        async with rt.factory() as session:
            sent = await session.scalar(select(func.count()).select_from(Message).where(Message.state == "sent"))
        return elapsed, sent or 0
    finally:
        await rt.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=500, help="messages claimed per batch")
    parser.add_argument("--profile", help="write a pyinstrument HTML profile of the engine run here")
    parser.add_argument("--skip-batching", action="store_true")
    args = parser.parse_args()
    sink = Sink()
    results = {}
    try:
        with tempfile.TemporaryDirectory(prefix="smsconsole-dispatch-bench-") as tmp:
            workdir = Path(tmp)
            bare_seconds = await bare(sink.url, args.messages, args.concurrency)
            results["bare httpx"] = (bare_seconds, args.messages)
            print(f"bare httpx: {args.messages / bare_seconds:,.0f} requests/s ({bare_seconds:.1f} s)", flush=True)
            seconds, sent = await engine(workdir, sink.url, args.messages, args.concurrency, args.batch_size, 1,
                                         args.profile)
            results["engine, 1 per request"] = (seconds, sent)
            print(f"engine: {sent / seconds:,.0f} messages/s ({seconds:.1f} s, {sent:,} sent); "
                  f"{(sent / seconds) / (args.messages / bare_seconds):.0%} of bare", flush=True)
            if not args.skip_batching:
                seconds, sent = await engine(workdir, sink.url, args.messages, args.concurrency,
                                             args.batch_size, 100, None)
                results["engine, 100 per request"] = (seconds, sent)
                print(f"engine, batching 100/request: {sent / seconds:,.0f} messages/s ({seconds:.1f} s, "
                      f"{sent:,} sent)", flush=True)
        received = sink.count()
    finally:
        sink.stop()
    expected = args.messages * (3 if not args.skip_batching else 2)
    print(f"fake received {received:,} messages (expected {expected:,}); peak RSS {peak_rss_mib():.0f} MiB; "
          f"pid {os.getpid()}")


if __name__ == "__main__":
    asyncio.run(main())
