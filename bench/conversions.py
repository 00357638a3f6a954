"""Conversion attribution at volume (issue 15): 100,000 goal events attributed, goal < 30 s.

A fresh, migrated database gets (seeded, the same rows on either database):

- P profiles (default 200,000) and, for a completed A/B + control campaign with the goal
  {event: order, where amount > 0, window 24h, value amount}, one row per person: 45% A and 45% B
  (sent or delivered, sent_at spread over an hour), 10% control rows (the would-be send time). A
  second campaign with another goal (signup) and a third with none, each with a row per person,
  so the join has other campaigns' rows to skip.
- Background events (default 1,000,000: page_view, app_open, signup) over the same days.

Then:

1. **On arrival.** N goal events (default 100,000; `order`, amount 0-200, a person drawn at
   random so some convert twice, times from 2 h before that person's send to 30 h after) go
   through `record_events` exactly as the ingestion API and imports hand them over, in batches
   (default 1,000), each its own transaction. Timed: the whole ingestion, and the part spent
   in `conversions.on_events` (measured around the call the hook makes).
2. **Recompute.** `conversions.recompute` of the campaign (delete + one INSERT … SELECT), timed
   in one transaction; its conversions must equal those attributed on arrival (count and
   revenue), or the run stops.
3. **One big batch.** The same N events handed to `on_events` in one call (an import batch that
   large; chunks of 1,000 ids): idempotent, timed.

    .venv/bin/python -m bench.conversions                                   # SQLite, /tmp/smsconsole-conversions-bench
    .venv/bin/python -m bench.conversions --database-url postgresql://postgres@127.0.0.1:5432/smsc_conversions
    .venv/bin/python -m bench.conversions --people 20000 --events 10000 --background 100000   # a quick look

A PostgreSQL database named here is the bench's own: it is dropped and created again. Figures in
bench/README.md ("Conversions")."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select, text

from bench.live_common import backend, fresh_database, load, make_config

DEFAULT_URL = "sqlite:////tmp/smsconsole-conversions-bench/conversions.db"
SENT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
GOAL = {"event": "order", "where": [{"property": "amount", "op": "greater", "value": 0}], "window": "24h",
        "value": "amount"}
ROWS = 20_000  # rows per executemany or COPY while generating


def document(name: str, goal: dict[str, Any] | None) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": name, "type": "one_time", "when": {"at": "2026-12-01T09:00", "timezone": "UTC"},
                           "who": {"segment": "everyone"}, "what": {"route": {}, "body": "Sale today"}}
    if goal:
        doc["goal"] = goal
    return doc


async def bulk(session: Any, model: Any, rows: list[dict[str, Any]]) -> None:
    """Rows into a table: COPY on PostgreSQL (the rollup triggers fire once per COPY), an
    executemany on SQLite."""
    if session.get_bind().dialect.name != "postgresql":
        await session.execute(insert(model), rows)
        return
    columns = list(rows[0])
    connection = await (await session.connection()).get_raw_connection()
    records = [tuple(json.dumps(row[c]) if isinstance(row[c], dict) else row[c] for c in columns) for row in rows]
    await connection.driver_connection.copy_records_to_table(model.__tablename__, columns=columns, records=records)


async def generate(rt: Any, people: int, background: int, rng: random.Random) -> tuple[int, list[int],
                                                                                          dict[int, datetime]]:
    """Profiles, three campaigns with a row per person, background events. Returns the goal
    campaign's id, the profile ids and each person's anchor in it."""
    from smsconsole.models import (
        Campaign,
        CampaignRun,
        Event,
        Message,
        Profile,
        PropertyDef,
    )

    started = time.perf_counter()
    async with rt.factory() as session, session.begin():
        for start in range(0, people, ROWS):
            await bulk(session, Profile, [
                {"user_id": f"u{n}", "phone": f"+447{n:09d}", "phone_raw": None, "phone_status": "valid",
                 "sms_capable": True, "country": "GB", "timezone": None, "subscription": "subscribed",
                 "properties": {}, "created_at": SENT - timedelta(days=30), "updated_at": SENT - timedelta(days=30)}
                for n in range(start, min(start + ROWS, people))])
        ids = list(await session.scalars(select(Profile.id).order_by(Profile.id)))
        await session.execute(insert(PropertyDef), [{"scope": "event:order", "name": "amount", "type": "number"},
                                                    {"scope": "event:signup", "name": "plan", "type": "string"}])
        campaigns = []
        for name, goal in (("Winter sale A/B", GOAL), ("Signup push", {"event": "signup", "window": "2d"}),
                           ("Newsletter", None)):
            campaign = Campaign(name=name, type="one_time", state="completed", document=document(name, goal),
                                created_at=SENT - timedelta(days=1), updated_at=SENT - timedelta(days=1))
            session.add(campaign)
            await session.flush()
            run = CampaignRun(campaign_id=campaign.id, number=1, planned_at=SENT, state="completed", suppressed={},
                              updated_at=SENT)
            session.add(run)
            await session.flush()
            campaigns.append((campaign.id, run.id))
    anchors: dict[int, datetime] = {}
    for index, (campaign_id, run_id) in enumerate(campaigns):
        async with rt.factory() as session, session.begin():
            for start in range(0, people, ROWS):
                rows = []
                for pid in ids[start:start + ROWS]:
                    at = SENT + timedelta(days=index, seconds=rng.randrange(3600), microseconds=rng.randrange(10 ** 6))
                    draw = rng.random()
                    control = draw < 0.10
                    variant = "control" if control else ("A" if draw < 0.55 else "B")
                    state = "control" if control else ("delivered" if rng.random() < 0.8 else "sent")
                    if index == 0:
                        anchors[pid] = at
                    rows.append({"kind": "campaign", "priority": 0, "attempts": 0, "to_number": "+44", "body": "", "encoding": "GSM-7",
                                 "segments": 0 if control else 1, "state": state, "campaign_id": campaign_id,
                                 "run_id": run_id, "profile_id": pid, "variant": variant, "render": False,
                                 "country": "GB", "provider_name": None if control else "sbx",
                                 "created_at": at if control else at - timedelta(seconds=30),
                                 "sent_at": None if control else at,
                                 "finished_at": at if control else at + timedelta(seconds=5), "updated_at": at})
                await bulk(session, Message, rows)
    names = ("page_view", "app_open", "signup")
    for start in range(0, background, ROWS):
        async with rt.factory() as session, session.begin():
            await bulk(session, Event, [
                {"profile_id": rng.choice(ids), "name": rng.choice(names),
                 "at": SENT + timedelta(seconds=rng.randrange(-3 * 86400, 3 * 86400)), "properties": {},
                 "dedupe": f"bg{n}"} for n in range(start, min(start + ROWS, background))])
    print(f"generated {people:,} people, {3 * people:,} campaign rows, {background:,} background events in "
          f"{time.perf_counter() - started:.1f} s", flush=True)
    return campaigns[0][0], ids, anchors


def goal_events(ids: list[int], anchors: dict[int, datetime], count: int, rng: random.Random) -> list[dict[str, Any]]:
    events = []
    for n in range(count):
        pid = rng.choice(ids)
        at = anchors[pid] + timedelta(seconds=rng.randrange(-2 * 3600, 30 * 3600), microseconds=rng.randrange(10 ** 6))
        events.append({"user_id": f"u{pid - ids[0]}", "name": "order", "at": at.isoformat(),
                       "properties": {"amount": rng.choice([0, 5, 12.5, 40, 99, 200]), "sku": f"S{n % 97}"}})
    return events


async def totals(rt: Any, campaign_id: int) -> tuple[int, float]:
    from smsconsole.models import CampaignConversion

    async with rt.factory() as session:
        row = (await session.execute(select(func.count(), func.coalesce(func.sum(CampaignConversion.revenue), 0))
                                     .where(CampaignConversion.campaign_id == campaign_id))).one()
    return int(row[0]), round(float(row[1]), 2)


async def main_async(args: argparse.Namespace, workdir: Path = Path("/tmp/smsconsole-conversions-bench")) -> dict[str, Any]:
    from smsconsole import clock
    from smsconsole.models import Event
    from smsconsole.runtime import Runtime
    from smsconsole.services.campaigns import conversions
    from smsconsole.services.profiles import (
        AudienceDefaults,
        prepare_event,
        record_events,
    )

    rt = await Runtime.open(make_config(args.database_url, workdir))
    rng = random.Random(15)
    try:
        campaign_id, ids, anchors = await generate(rt, args.people, args.background, rng)
        if backend(args.database_url) == "postgresql":
            async with rt.factory.kw["bind"].connect() as connection:  # what autovacuum would soon do
                connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
                await connection.execute(text("VACUUM ANALYZE"))
        events = goal_events(ids, anchors, args.events, rng)
        clock.freeze(SENT + timedelta(days=3))
        defaults = AudienceDefaults(region="GB", timezone="UTC")

        # 1. On arrival, through record_events in batches; the hook's share measured around it.
        inner = conversions.on_events
        spent = [0.0]

        async def timed(session: Any, event_ids: Any, *, now: datetime) -> int:
            begun = time.perf_counter()
            try:
                return await inner(session, event_ids, now=now)
            finally:
                spent[0] += time.perf_counter() - begun

        conversions.on_events = timed  # type: ignore[assignment]
        started = time.perf_counter()
        for start in range(0, len(events), args.batch):
            types: dict[str, dict[str, str]] = {}
            prepared = [prepare_event(e, defaults, types.setdefault(e["name"], {}))
                        for e in events[start:start + args.batch]]
            async with rt.factory() as session, session.begin():
                await record_events(session, prepared, source="api", defaults=defaults, may_trigger=False)
        ingest = time.perf_counter() - started
        conversions.on_events = inner  # type: ignore[assignment]
        arrived = await totals(rt, campaign_id)
        print(f"on arrival: {len(events):,} order events in batches of {args.batch:,}: ingestion {ingest:.1f} s, "
              f"attribution {spent[0]:.1f} s → {arrived[0]:,} conversions, revenue {arrived[1]:,}  ({load()})",
              flush=True)

        # 2. Recompute.
        started = time.perf_counter()
        async with rt.factory() as session, session.begin():
            count = await conversions.recompute(session, campaign_id)
        recompute = time.perf_counter() - started
        again = await totals(rt, campaign_id)
        print(f"recompute: {count:,} conversions in {recompute:.1f} s  ({load()})", flush=True)
        if again != arrived or count != arrived[0]:
            raise SystemExit(f"recompute {again} differs from on arrival {arrived}")

        # 3. All the events in one call (idempotent).
        async with rt.factory() as session:
            event_ids = list(await session.scalars(select(Event.id).where(Event.name == "order")))
        started = time.perf_counter()
        async with rt.factory() as session, session.begin():
            written = await conversions.on_events(session, event_ids, now=clock.now())
        one_call = time.perf_counter() - started
        print(f"one call: {len(event_ids):,} event ids → {written} written in {one_call:.1f} s  ({load()})", flush=True)
        if await totals(rt, campaign_id) != arrived:
            raise SystemExit("handing the events over again changed the conversions")
        print(f"| {backend(args.database_url)} | {args.events:,} | {ingest:.1f} s | {spent[0]:.1f} s | "
              f"{recompute:.1f} s | {one_call:.1f} s | {arrived[0]:,} |")
        return {"ingest_s": ingest, "attribution_s": spent[0], "recompute_s": recompute, "one_call_s": one_call,
                "conversions": arrived[0]}
    finally:
        await rt.close()


def quick(people: int = 20_000, events: int = 10_000, background: int = 100_000) -> list[dict[str, Any]]:
    """For bench/run: the "quick look" size (a temp SQLite file, and PostgreSQL when
    SMSCONSOLE_BENCH_DATABASE_URL names a server); attribution scaled to 100,000 goal events and
    recompute to 200,000 people (its cost grows with the campaign's audience), each against < 30 s."""
    import contextlib
    import io
    import tempfile

    from bench._quick import backend as backend_name
    from bench._quick import postgres_url, scratch_database, under

    rows = []
    with tempfile.TemporaryDirectory(prefix="smsc-conversions-") as tmp:
        for server in [f"sqlite:///{tmp}/conversions.db"] + ([postgres_url()] if postgres_url() else []):
            with scratch_database(server, "conversions") as url:
                args = argparse.Namespace(database_url=url, people=people, events=events, background=background,
                                          batch=1_000)
                with contextlib.redirect_stdout(io.StringIO()):
                    figures = asyncio.run(main_async(args, Path(tmp)))
            per_events, per_people = 100_000 / events, 200_000 / people
            name = backend_name(server)
            rows.append(under(f"conversions, {name}: attribution on arrival of 100,000 goal events "
                              f"(extrapolated from {events:,}, batches of 1,000)",
                              f"{figures['attribution_s']:.2f} s ≈ {figures['attribution_s'] * per_events:.1f} s "
                              f"(whole ingestion {figures['ingest_s']:.1f} s)", "< 30 s",
                              figures["attribution_s"] * per_events, 30.0))
            rows.append(under(f"conversions, {name}: recompute of a 200,000-person campaign "
                              f"(extrapolated from {people:,}; {figures['conversions']:,} conversions)",
                              f"{figures['recompute_s']:.2f} s ≈ {figures['recompute_s'] * per_people:.1f} s",
                              "< 30 s", figures["recompute_s"] * per_people, 30.0))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--people", type=int, default=200_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--background", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1_000)
    args = parser.parse_args()
    print(f"conversions bench on {backend(args.database_url)}, pid {os.getpid()}", flush=True)
    Path("/tmp/smsconsole-conversions-bench").mkdir(parents=True, exist_ok=True)
    fresh_database(args.database_url)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
