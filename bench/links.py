"""Short-link redirects per second through the engine's listener, with N codes stored.

The listener (the same Starlette app under the embedded uvicorn) runs in this process against a
fresh database holding N short links (random codes, one campaign, one profile per 1,000 links);
a second process fires R requests at random stored codes over loopback with C keep-alive
connections, in three rounds of the same run: a no-op route (the app's floor: routing, the
request log, uvicorn), link previews (a bot's User-Agent: lookup + a counter UPDATE) and clicks
(lookup, counter UPDATE, the `link_click` event, conversions and live triggers: one transaction).
Reported: answers per second of each round, and each as a share of the no-op route's.

    .venv/bin/python bench/links.py                          # 10,000,000 codes, 5,000 requests a round
    .venv/bin/python bench/links.py --codes 1000000 --requests 3000 --concurrency 16
    .venv/bin/python bench/links.py --database-url postgresql://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import func, insert, select
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from smsconsole import clock
from smsconsole.config import Config
from smsconsole.listener.app import create_app
from smsconsole.listener.server import Listener
from smsconsole.models import Event, Profile, ShortLink
from smsconsole.runtime import Runtime
from smsconsole.services.links import NewLink, create_links, new_code

DEADLINE_SECONDS = 300.0
CHUNK = 20_000
BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Safari/604.1"
BOT = "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"


def _load(url: str, paths: list[str], agent: str, concurrency: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """The second process: GET every path (no redirects followed), report (ok, failed, seconds)."""

    async def run() -> tuple[int, int, float]:
        queue: asyncio.Queue[str] = asyncio.Queue()
        for path in paths:
            queue.put_nowait(path)
        ok = failed = 0
        deadline = time.monotonic() + DEADLINE_SECONDS
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30, follow_redirects=False,
                                     headers={"User-Agent": agent}) as client:

            async def worker() -> None:
                nonlocal ok, failed
                while not queue.empty() and time.monotonic() < deadline:
                    response = await client.get(queue.get_nowait())
                    if response.status_code in (200, 302):
                        ok += 1
                    else:
                        failed += 1

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return ok, failed, time.perf_counter() - started

    out.put(asyncio.run(run()))


async def _round(address: str, paths: list[str], agent: str, concurrency: int) -> tuple[int, int, float]:
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    process = context.Process(target=_load, args=(address, paths, agent, concurrency, out))
    process.start()
    try:
        while process.is_alive() and out.empty():
            await asyncio.sleep(0.05)
        return out.get(timeout=5)
    finally:
        process.join(timeout=10)


async def _store(runtime: Runtime, count: int) -> list[str]:
    """N links in chunks; returns a sample of their codes to request."""
    now = clock.now()
    async with runtime.factory() as session, session.begin():
        await session.execute(insert(Profile), [
            {"user_id": f"u{n}", "phone": f"+1415{n:07d}", "phone_status": "valid", "sms_capable": True,
             "subscription": "subscribed", "properties": {}, "created_at": now, "updated_at": now}
            for n in range(max(1, count // 1000))])
        first_profile = await session.scalar(select(func.min(Profile.id)))
    sample: list[str] = []
    started = time.perf_counter()
    for start in range(0, count, CHUNK):
        links = [NewLink(new_code(), f"https://shop.example.com/cart?u={n}", n, 0, first_profile + n // 1000, 1, 1, "A")
                 for n in range(start, min(count, start + CHUNK))]
        async with runtime.factory() as session, session.begin():  # the service's path: a taken code is redrawn
            await create_links(session, links, retention_days=90, now=now)
        if len(sample) < 50_000:
            sample.extend(link.code for link in links[:500])
        if (start // CHUNK) % 50 == 0:
            print(f"  stored {start + len(links):,} links ({time.perf_counter() - started:.0f} s)", flush=True)
    return sample


async def measure(database_url: str, codes: int, requests: int, concurrency: int,
                  workdir: Path | None = None) -> tuple[str, dict[str, tuple[int, int, float]], tuple[int, int, int]]:
    """Store `codes` links, run the three rounds; (url, {round: (ok, failed, seconds)},
    (clicks, previews, link_click events) committed)."""
    workdir = workdir or Path(tempfile.mkdtemp(prefix="smsconsole-bench-links-"))
    url = database_url or f"sqlite:///{workdir / 'bench.db'}"
    runtime = await Runtime.open(Config(config_dir=workdir / "config", data_dir=workdir / "data", database_url=url))
    sample = await _store(runtime, codes)

    async def noop(request: Request) -> Response:
        return PlainTextResponse("ok")

    app = create_app(runtime.factory, box=runtime.box)
    app.router.routes.insert(0, Route("/noop", noop, methods=["GET"]))
    listener = Listener(app, "127.0.0.1", 0)
    await listener.start()
    pick = random.Random(7)
    results = {}
    try:
        results["no-op route"] = await _round(listener.address, ["/noop"] * requests, BROWSER, concurrency)
        for name, agent in (("previews (bot)", BOT), ("clicks", BROWSER)):
            paths = [f"/{pick.choice(sample)}" for _ in range(requests)]
            results[name] = await _round(listener.address, paths, agent, concurrency)
    finally:
        await listener.stop()
    async with runtime.factory() as session:
        clicks = await session.scalar(select(func.sum(ShortLink.clicks)))
        previews = await session.scalar(select(func.sum(ShortLink.previews)))
        events = await session.scalar(select(func.count()).select_from(Event).where(Event.name == "link_click"))
    await runtime.close()
    return url, results, (clicks or 0, previews or 0, events or 0)


def quick(codes: int = 100_000, requests: int = 1000) -> list[dict[str, object]]:
    """For bench/run: `codes` links stored, `requests` requests a round over 16 connections (a temp
    SQLite file, and PostgreSQL when SMSCONSOLE_BENCH_DATABASE_URL names a server), against the
    issue's 1,000 redirects/s (which it set with 10,000,000 codes)."""
    from bench._quick import at_least, backend, postgres_url, row, scratch_database

    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="smsc-links-") as tmp:
        for server in [""] + ([postgres_url()] if postgres_url() else []):
            with scratch_database(server, "links") as target:
                url, results, committed = asyncio.run(measure(target, codes, requests, 16, Path(tmp) / backend(server)))
            rates = {name: ok / seconds for name, (ok, _, seconds) in results.items()}
            floor = rates["no-op route"]
            where = f"{backend(url)}, {codes:,} codes, {requests:,} requests, 16 connections"
            rows.append(row(f"short links, {where}: the no-op route (the floor)", f"{floor:,.0f}/s", "—"))
            for name in ("previews (bot)", "clicks"):
                failures = f", {results[name][1]:,} failed" if results[name][1] else ""
                rows.append(at_least(f"short links, {where}: {name}", f"{rates[name]:,.0f}/s "
                                     f"({rates[name] / floor:.0%} of the floor{failures})",
                                     "≥ 1,000/s (with 10M codes)", rates[name], 1000.0))
            answered = (results["clicks"][0], results["previews (bot)"][0], results["clicks"][0])
            rows.append(row(f"short links, {backend(url)}: every answered click and preview committed",
                            f"{committed[0]:,} clicks, {committed[1]:,} previews, {committed[2]:,} events",
                            "all", None, committed == answered))
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codes", type=int, default=10_000_000)
    parser.add_argument("--requests", type=int, default=5000, help="requests per round")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    url, results, (clicks, previews, events) = await measure(args.database_url, args.codes, args.requests,
                                                             args.concurrency)

    backend = "PostgreSQL" if url.startswith("postgres") else "SQLite"
    floor = results["no-op route"][0] / results["no-op route"][2]
    print(f"{backend}, {args.codes:,} codes stored, {args.requests:,} requests a round, {args.concurrency} connections")
    for name, (ok, failed, seconds) in results.items():
        rate = ok / seconds
        print(f"  {name:<15} {ok:>7,} ok {failed:>5,} failed in {seconds:6.1f} s = {rate:>7,.0f}/s "
              f"({rate / floor:.0%} of the no-op route)")
    print(f"  committed: {clicks or 0:,} clicks, {previews or 0:,} previews, {events or 0:,} link_click events")


if __name__ == "__main__":
    asyncio.run(main())
