"""SMPP throughput: messages/second through one bind to the loopback SMSC (tests/fakes/smsc.py, its
own process), with a window of 10 and of 100 outstanding submit_sm, for an SMSC that answers at
once and for one that takes 10 ms per submit_sm_resp (what a real SMSC or aggregator takes at
best; the window exists for that latency); and the engine's dispatcher (SQLite) through the same
bind at window 100.

With latency L and window W a bind can do at most W / L submits a second; the goal is 0.8 of that
bound or more (below it, our side is the limit). With no latency there is no bound to compare:
the rows report the figure and the CPU a message costs.

    .venv/bin/python -m bench.smpp                      # 20,000 messages a run
    .venv/bin/python -m bench.smpp --messages 50000 --latency 0.02

`quick()` runs 3,000 messages a run (well under a minute) and returns the rows bench/run prints."""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import tempfile
import time
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
from smsconsole.providers.base import OutboundMessage  # noqa: E402
from smsconsole.providers.smpp.adapter import SmppProvider  # noqa: E402
from smsconsole.providers.smpp.session import BindState  # noqa: E402
from smsconsole.runtime import Runtime  # noqa: E402
from smsconsole.services import providers  # noqa: E402

GOAL_OF_BOUND = 0.8  # of window / latency
LIMIT = 1_000.0  # msg/s, the throughput limit the "limited" run sets
CHUNK = 2_000  # messages handed to one send() at a time (the dispatcher hands a window's worth × its concurrency)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Smsc:
    """The fake SMSC in its own process."""

    def __init__(self, latency: float) -> None:
        self.port = free_port()
        self.process = subprocess.Popen([sys.executable, "-m", "tests.fakes.smsc", "--port", str(self.port),
                                         "--delay", str(latency)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("the fake SMSC did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def settings(port: int, window: int, throughput: float = 0) -> dict[str, str]:
    return {"host": "127.0.0.1", "port": str(port), "system_id": "acme", "password": "secret", "sender": "ACME",
            "window_size": str(window), "response_timeout": "60", "throughput": f"{throughput:g}"}


@dataclass
class Run:
    name: str
    window: int
    latency: float
    seconds: float
    messages: int  # accepted by the SMSC
    cpu: float
    throughput: float = 0.0  # the bind's throughput limit (0: none)

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    @property
    def bound(self) -> float | None:
        return self.window / self.latency if self.latency else None


async def through_adapter(port: int, window: int, messages: int,
                          throughput: float = 0) -> tuple[float, int, float]:
    adapter = SmppProvider(settings(port, window, throughput))
    adapter.start()
    while adapter.bind_status.state is not BindState.BOUND:
        await asyncio.sleep(0.01)
    try:
        accepted = 0
        started, cpu_started = time.perf_counter(), time.process_time()
        for start in range(0, messages, CHUNK):
            batch = [OutboundMessage(ref=str(n), to=f"+1415{n:07d}", body=f"Hello {n}")
                     for n in range(start, min(messages, start + CHUNK))]
            accepted += sum(1 for outcome in await adapter.send(batch) if outcome.accepted)
        return time.perf_counter() - started, accepted, time.process_time() - cpu_started
    finally:
        await adapter.aclose()


async def through_engine(workdir: Path, port: int, window: int, messages: int) -> tuple[float, int, float]:
    """The dispatcher (claims, guards, gate, outcome writes on SQLite) sending `messages` through one bind."""
    config = Config(config_dir=workdir / "config", data_dir=workdir / "data",
                    database_url=f"sqlite:///{workdir / f'smpp-{window}.db'}")
    rt = await Runtime.open(config)
    try:
        async with rt.factory() as session, session.begin():
            view = await providers.create_provider(session, rt.box, kind="smpp", name="smsc",
                                                   values=settings(port, window), actor="bench")
        now = clock.now()
        rows = [{"kind": "transactional", "priority": 0, "provider_id": view.id, "provider_name": view.name,
                 "to_number": f"+1415{n:07d}", "body": f"Hello {n}", "encoding": "GSM-7", "segments": 1,
                 "state": "queued", "attempts": 0, "created_at": now, "updated_at": now,
                 "dedupe_key": f"run:1:profile:{n}"} for n in range(messages)]
        for start in range(0, messages, 10_000):
            async with rt.factory() as session, session.begin():
                await session.execute(insert(Message), rows[start:start + 10_000])
        async with httpx.AsyncClient() as client:
            adapters = providers.Adapters(rt.box, client, rt.factory)
            dispatcher = Dispatcher(rt.factory, rt.box, client, DispatchSettings(), adapters=adapters)
            stop, wake = asyncio.Event(), asyncio.Event()
            started, cpu_started = time.perf_counter(), time.process_time()
            runner = asyncio.create_task(dispatcher.run(stop, wake, 0.05))
            while True:
                await asyncio.sleep(0.1)
                async with rt.factory() as session:
                    still_open = await session.scalar(select(func.count()).select_from(Message).where(
                        Message.state.in_(("queued", "claimed", "sending"))))
                if not still_open:
                    break
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            stop.set()
            await runner
            await adapters.aclose()
        async with rt.factory() as session:
            sent = await session.scalar(select(func.count()).select_from(Message).where(Message.state == "sent"))
        return elapsed, sent or 0, cpu
    finally:
        await rt.close()


async def measure(messages: int, latency: float, engine: bool = True, say: Any = print) -> list[Run]:
    runs: list[Run] = []
    for delay in (0.0, latency):
        smsc = Smsc(delay)
        try:
            for window in (10, 100):
                seconds, accepted, cpu = await through_adapter(smsc.port, window, messages)
                runs.append(Run("adapter", window, delay, seconds, accepted, cpu))
                say(f"window {window}, SMSC latency {delay * 1000:.0f} ms: {runs[-1].rate:,.0f} msg/s "
                    f"({accepted:,} accepted in {seconds:.1f} s; {cpu / max(1, accepted) * 1e6:,.0f} us CPU a message)")
            if not delay:  # the throughput limit holds the bind to it (a quarter of the messages, at 1,000/s)
                seconds, accepted, cpu = await through_adapter(smsc.port, 100, messages // 4, LIMIT)
                runs.append(Run("limited", 100, delay, seconds, accepted, cpu, LIMIT))
                say(f"window 100, throughput limit {LIMIT:,.0f}/s: {runs[-1].rate:,.0f} msg/s")
            if engine and delay:
                with tempfile.TemporaryDirectory(prefix="smsconsole-smpp-bench-") as tmp:
                    seconds, sent, cpu = await through_engine(Path(tmp), smsc.port, 100, messages)
                runs.append(Run("engine", 100, delay, seconds, sent, cpu))
                say(f"engine (dispatcher, SQLite), window 100, latency {delay * 1000:.0f} ms: {runs[-1].rate:,.0f} "
                    f"msg/s ({sent:,} sent in {seconds:.1f} s)")
        finally:
            smsc.stop()
    return runs


def table_rows(runs: list[Run], messages: int) -> list[dict[str, Any]]:
    rows = []
    for run in runs:
        if run.name == "limited":
            rows.append({"measure": f"smpp, window 100, throughput limit {run.throughput:,.0f}/s, {messages // 4:,} messages",
                         "figure": f"{run.rate:,.0f} msg/s", "goal": f"<= {run.throughput:,.0f} msg/s (within 2%)",
                         "ratio": round(run.rate / run.throughput, 2),
                         "holds": run.rate <= run.throughput * 1.02 and run.messages == messages // 4})
            continue
        where = "through the engine's dispatcher (SQLite)" if run.name == "engine" else "through one bind"
        measure_name = (f"smpp, window {run.window}, SMSC latency {run.latency * 1000:.0f} ms, {where}, "
                        f"{messages:,} messages")
        figure = f"{run.rate:,.0f} msg/s ({run.messages:,} accepted; {run.cpu / max(1, run.messages) * 1e6:,.0f} us CPU/msg)"
        bound = run.bound
        if bound is None or run.name == "engine":
            rows.append({"measure": measure_name, "figure": figure, "goal": "— (no bound to compare)",
                         "ratio": None, "holds": None if run.messages == messages else False})
            continue
        ratio = run.rate / bound
        rows.append({"measure": measure_name, "figure": figure,
                     "goal": f">= {GOAL_OF_BOUND} of window/latency = {bound:,.0f} msg/s",
                     "ratio": round(ratio, 2), "holds": ratio >= GOAL_OF_BOUND and run.messages == messages})
    return rows


def quick() -> list[dict[str, Any]]:
    """3,000 messages a run (under a minute); rows {measure, figure, goal, ratio, holds}."""
    messages = 3_000
    return table_rows(asyncio.run(measure(messages, 0.01, say=lambda line: None)), messages)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--latency", type=float, default=0.01, help="seconds the SMSC takes per submit_sm_resp")
    parser.add_argument("--skip-engine", action="store_true")
    args = parser.parse_args()
    runs = await measure(args.messages, args.latency, engine=not args.skip_engine)
    print()
    for row in table_rows(runs, args.messages):
        print(" | ".join(str(row[key]) for key in ("measure", "figure", "goal", "ratio", "holds")))


if __name__ == "__main__":
    asyncio.run(main())
