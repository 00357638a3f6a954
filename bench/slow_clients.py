"""Sending while slow clients hold the listener: the engine (dispatcher + listener, as `smsconsole
serve` runs them) sends N messages to a loopback fake gateway (tests/fakes/sink.py, its own
process) with no other clients, then N more while 1,000 slow connections (another process: half
idle, half sending a request line and one header but never finishing) are held open against the
listener. Reports both rates, their ratio (the issue's bar: at least 90%), and whether a normal
request was answered during the flood. The process's descriptor limit is set to 1,024 (as in the
issue) unless --fd-limit says otherwise.

    .venv/bin/python -m bench.slow_clients                       # 3,000 messages per phase, SQLite
    .venv/bin/python -m bench.slow_clients --messages 5000 --slow 1000 --fd-limit 1024
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import func, insert, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.dispatch import Sink  # noqa: E402
from smsconsole import clock  # noqa: E402
from smsconsole.config import Config  # noqa: E402
from smsconsole.engine.runner import Engine  # noqa: E402
from smsconsole.models import Message  # noqa: E402
from smsconsole.runtime import Runtime  # noqa: E402
from smsconsole.services import providers  # noqa: E402
from tests.fakes.sink import generic_config  # noqa: E402
from tests.integration.test_listener_hostile import SLOW_CLIENT_SCRIPT  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def send_phase(rt: Runtime, engine: Engine, provider_id: int, messages: int, offset: int) -> float:
    """Messages per second for `messages` queued at once, until the last one is sent."""
    now = clock.now()
    rows = [{"kind": "transactional", "priority": 0, "provider_id": provider_id, "provider_name": "sink",
             "to_number": f"+1415{(offset + n) % 10_000_000:07d}", "body": f"Hello {n}", "encoding": "GSM-7",
             "segments": 1, "state": "queued", "attempts": 0, "created_at": now, "updated_at": now}
            for n in range(messages)]
    async with rt.factory() as session, session.begin():
        before = await session.scalar(select(func.count()).select_from(Message).where(Message.state == "sent")) or 0
        await session.execute(insert(Message), rows)
    started = time.perf_counter()
    engine.poke()
    while True:
        async with rt.factory() as session:
            sent = await session.scalar(select(func.count()).select_from(Message).where(Message.state == "sent")) or 0
        if sent - before >= messages:
            return messages / (time.perf_counter() - started)
        await asyncio.sleep(0.05)


async def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--slow", type=int, default=1000)
    parser.add_argument("--fd-limit", type=int, default=1024)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    quiet, flooded, held, answered, limit = await measure(args.messages, args.slow, args.fd_limit, args.database_url)
    print(f"descriptor limit {limit}; {args.messages:,} messages per phase")
    print(f"no slow clients:             {quiet:8.0f} messages/s")
    print(f"{held:,} slow connections open: {flooded:8.0f} messages/s ({flooded / quiet:.0%} of the quiet rate)")
    print(f"a normal request during the flood: {answered}")


async def measure(messages: int, slow_count: int, fd_limit: int,
                  database_url: str = "") -> tuple[float, float, int, int | str, int]:
    """(quiet rate, rate with the slow clients, slow connections held, /healthz during the flood,
    the descriptor limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(fd_limit, hard), hard))
    sink = Sink()
    work = Path(tempfile.mkdtemp(prefix="smsconsole-slow-"))
    port = free_port()
    config = Config(config_dir=work / "config", data_dir=work / "data",
                    database_url=database_url or f"sqlite:///{work / 'bench.db'}",
                    listen_port=port, dispatch_interval_seconds=0.05)
    rt = await Runtime.open(config)
    engine = Engine(rt.factory, rt.box, config)
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    slow: subprocess.Popen[str] | None = None
    try:
        async with rt.factory() as session, session.begin():
            view = await providers.create_provider(session, rt.box, kind="generic", name="sink",
                                                   values=generic_config(sink.url), actor="bench")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            for _ in range(300):
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        await send_phase(rt, engine, view.id, min(500, messages), 0)  # warm-up
        quiet = await send_phase(rt, engine, view.id, messages, 1_000_000)
        slow = subprocess.Popen([sys.executable, "-c", SLOW_CLIENT_SCRIPT, str(port), str(slow_count)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert slow.stdout is not None
        ready = (await asyncio.to_thread(slow.stdout.readline)).split()
        held = int(ready[1]) if len(ready) == 2 else 0
        flooded_task = asyncio.create_task(send_phase(rt, engine, view.id, messages, 2_000_000))
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
                answered = (await http.get("/healthz")).status_code
        except OSError as exc:
            answered = f"no ({type(exc).__name__})"
        flooded = await flooded_task
        return quiet, flooded, held, answered, min(fd_limit, hard)
    finally:
        if slow is not None and slow.stdin is not None:
            slow.stdin.close()
            slow.wait(30)
        stop.set()
        await asyncio.wait_for(task, timeout=30)
        await rt.close()
        sink.stop()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))




def quick(messages: int = 1000, slow_count: int = 1000) -> list[dict[str, object]]:
    """For bench/run: `messages` a phase, SQLite in a temp dir (and PostgreSQL when
    SMSCONSOLE_BENCH_DATABASE_URL names a server), descriptor limit 1,024."""
    from bench._quick import at_least, backend, postgres_url, row, scratch_database

    rows: list[dict[str, object]] = []
    for server in [""] + ([postgres_url()] if postgres_url() else []):
        with scratch_database(server, "slow") as target:
            quiet, flooded, held, answered, limit = asyncio.run(measure(messages, slow_count, 1024, target))
        rows.append(at_least(f"slow clients, {backend(server)}: send rate with {held:,} slow connections open / "
                             f"without ({messages:,} messages a phase, descriptor limit {limit:,})",
                             f"{flooded:,.0f}/s against {quiet:,.0f}/s = {flooded / quiet:.0%}", "≥ 90%",
                             flooded / quiet, 0.9))
        rows.append(row(f"slow clients, {backend(server)}: /healthz answered during the flood", str(answered), "200",
                        None, answered == 200))
    return rows


if __name__ == "__main__":
    asyncio.run(_main())
