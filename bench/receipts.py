"""Receipts per second accepted and committed through the webhook listener.

The engine's listener (the same Starlette app and embedded uvicorn) runs in this process against
a fresh database holding N sent messages of one provider; a second process fires N delivery
receipts at it over loopback with C concurrent connections (bounded in count and time), each a
real callback the adapter verifies (a Generic provider's ?token=, or Twilio's HMAC signature).
Reported: receipts answered 2xx per second, then a check that every one was committed (every
message delivered, one receipt row each).

    .venv/bin/python bench/receipts.py                       # 5,000 receipts, 16 connections, SQLite
    .venv/bin/python bench/receipts.py --count 20000 --concurrency 32 --kind twilio
    .venv/bin/python bench/receipts.py --database-url postgresql://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
from sqlalchemy import func, insert, select

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
DEADLINE_SECONDS = 300.0


def _request(kind: str, index: int) -> tuple[str, dict[str, str], bytes]:
    if kind == "twilio":
        path = "/callbacks/bench/status"
        params = {"MessageSid": f"SM{index:032x}", "MessageStatus": "delivered", "To": "+447400123456"}
        signature = compute_signature(PUBLIC + path, params, AUTH_TOKEN)
        return path, {"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature}, \
            urlencode(params).encode()
    return (f"/callbacks/bench/status?token={TOKEN}", {"content-type": "application/x-www-form-urlencoded"},
            urlencode({"id": f"M{index}", "status": "DELIVRD"}).encode())


def _load(url: str, kind: str, count: int, concurrency: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """The second process: fire `count` receipts at `url`, report (ok, failed, seconds)."""

    async def run() -> tuple[int, int, float]:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for index in range(count):
            queue.put_nowait(index)
        ok = failed = 0
        deadline = time.monotonic() + DEADLINE_SECONDS
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

            async def worker() -> None:
                nonlocal ok, failed
                while not queue.empty() and time.monotonic() < deadline:
                    index = queue.get_nowait()
                    path, headers, body = _request(kind, index)
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
            return ok, failed, time.perf_counter() - started

    out.put(asyncio.run(run()))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--kind", choices=("generic", "twilio"), default="generic")
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="smsconsole-bench-receipts-"))
    url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    runtime = await Runtime.open(Config(config_dir=workdir / "config", data_dir=workdir / "data", database_url=url))
    values = ({"account_sid": "AC" + "0123456789abcdef" * 2, "auth_token": AUTH_TOKEN, "sender": "+15005550006"}
              if args.kind == "twilio" else
              {"url": "https://gw.example.com/send", "params": "to=$$To\ntext=$$Body", "webhook_token": TOKEN})
    async with runtime.factory() as session, session.begin():
        await settings.update_settings(session, {"public_base_url": PUBLIC}, actor="bench")
        await providers.create_provider(session, runtime.box, kind=args.kind, name="bench", values=values,
                                        actor="bench")
        provider_id = await session.scalar(select(ProviderRow.id))
        now = clock.now()
        pmids = [(f"SM{i:032x}" if args.kind == "twilio" else f"M{i}") for i in range(args.count)]
        await session.execute(insert(Message), [
            {"kind": "test", "priority": 0, "provider_id": provider_id, "provider_name": "bench",
             "to_number": "+447400123456", "body": "hi", "encoding": "GSM-7", "segments": 1, "state": "sent",
             "provider_message_id": pmid, "attempts": 1, "created_at": now, "updated_at": now, "sent_at": now}
            for pmid in pmids])
    listener = Listener(create_app(runtime.factory, box=runtime.box), "127.0.0.1", 0)
    await listener.start()
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    process = context.Process(
        target=_load, args=(listener.address, args.kind, args.count, args.concurrency, out))
    try:
        process.start()
        while process.is_alive() and out.empty():
            await asyncio.sleep(0.1)
        ok, failed, seconds = out.get(timeout=5)
    finally:
        process.join(timeout=10)
        await listener.stop()
    async with runtime.factory() as session:
        delivered = await session.scalar(select(func.count()).select_from(Message)
                                         .where(Message.state == "delivered"))
        receipts = await session.scalar(select(func.count()).select_from(Receipt))
    await runtime.close()
    backend = "PostgreSQL" if url.startswith("postgres") else "SQLite"
    print(f"{backend}, {args.kind}, {args.count} receipts, {args.concurrency} connections: {ok} accepted, "
          f"{failed} refused in {seconds:.1f} s = {ok / seconds:,.0f} receipts/s; committed: {delivered} delivered, "
          f"{receipts} receipt rows")


if __name__ == "__main__":
    asyncio.run(main())
