"""Segment reach at scale: 1M profiles and 10M events, five representative segments, each
`estimate_reach` timed against a hand-written SQL query for the same question, on the same
database, in the same run. Counts must agree; the goal is a ratio within 1.2.

    python -m bench.segments                                   # SQLite file under /tmp
    python -m bench.segments --reuse                           # keep the generated file
    python -m bench.segments --database-url postgresql://postgres@127.0.0.1:5432/smsc_bench
    python -m bench.segments --profiles 100000 --events 1000000 --runs 3   # a quick look

The data is deterministic (seeded) and written straight to the tables with bulk inserts (COPY on
PostgreSQL); secondary indexes are dropped for the load and re-created from their own definitions,
so the schema is exactly what the migrations made. Hand-written SQL is fine here: it is the
yardstick, not product code.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole.db import open_database, session_factory
from smsconsole.services import segments

NOW = datetime(2026, 3, 1, tzinfo=UTC)
HISTORY_DAYS = 180
DEFAULT_URL = "sqlite:////tmp/smsconsole-segments-bench/segments.db"

COUNTRIES = [("IN", 40, "Asia/Kolkata", "+91"), ("GB", 15, "Europe/London", "+44"),
             ("US", 15, "America/New_York", "+1"), ("DE", 8, "Europe/Berlin", "+49"),
             ("FR", 7, "Europe/Paris", "+33"), ("BR", 5, "America/Sao_Paulo", "+55"),
             ("AU", 4, "Australia/Sydney", "+61"), (None, 6, "UTC", "+999")]
PLANS = [("free", 50), ("silver", 25), ("gold", 15), ("platinum", 10)]
TAGS = ["news", "sports", "deals", "tech"]
EVENT_NAMES = [("app_open", 40), ("page_view", 30), ("login", 10), ("search", 7), ("add_to_cart", 8), ("order", 5)]
PROFILE_TYPES = {"plan": "string", "score": "number", "vip": "boolean", "renewal": "date", "last_seen": "date",
                 "tags": "list"}
EVENT_TYPES = {"order": {"amount": "number", "sku": "string", "gift": "boolean"},
               "add_to_cart": {"amount": "number", "sku": "string"}, "page_view": {"page": "string"},
               "search": {"query": "string"}}


def _picker(weighted: list[tuple[Any, ...]]) -> Callable[[float], tuple[Any, ...]]:
    total = sum(w[1] for w in weighted)
    bounds, acc = [], 0.0
    for item in weighted:
        acc += item[1] / total
        bounds.append((acc, item))

    def pick(r: float) -> tuple[Any, ...]:
        for bound, item in bounds:
            if r < bound:
                return item
        return bounds[-1][1]
    return pick


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- data ----------------------------------------------------------------------------------------


def profile_rows(count: int, seed: int) -> Iterator[tuple[Any, ...]]:
    """(id, user_id, phone, phone_status, sms_capable, timezone, country, properties, subscription,
    created_at) with realistic gaps: 5% no phone, 3% invalid, 5% of valid not mobile, 10%
    unsubscribed, 15% never opted in, properties sometimes missing."""
    rng = random.Random(seed)
    country_of, plan_of = _picker(COUNTRIES), _picker(PLANS)
    for pid in range(1, count + 1):
        country, _, tz, prefix = country_of(rng.random())
        r = rng.random()
        if r < 0.05:
            phone, status, capable = None, "missing", False
        elif r < 0.08:
            phone, status, capable = None, "invalid", False
        else:
            phone, status, capable = f"{prefix}7{pid:09d}", "valid", rng.random() >= 0.05
        r = rng.random()
        subscription = "subscribed" if r < 0.75 else "unsubscribed" if r < 0.85 else "never"
        props: dict[str, Any] = {}
        if rng.random() < 0.95:
            props["plan"] = plan_of(rng.random())[0]
        props["score"] = rng.randint(0, 1000)
        if rng.random() < 0.3:
            props["vip"] = rng.random() < 0.33
        if rng.random() < 0.6:
            props["renewal"] = _iso(NOW + timedelta(seconds=rng.randint(-365 * 86400, 365 * 86400)))
        if rng.random() < 0.9:
            props["last_seen"] = _iso(NOW - timedelta(seconds=int(120 * 86400 * rng.random() ** 2)))
        if rng.random() < 0.5:
            props["tags"] = [t for t in TAGS if rng.random() < 0.3]
        created = NOW - timedelta(seconds=rng.randint(200 * 86400, 730 * 86400))
        yield (pid, f"u{pid:08d}", phone, status, capable, tz, country, props, subscription, created)


def event_rows(count: int, profiles: int, seed: int) -> Iterator[tuple[int, int, str, int, dict[str, Any]]]:
    """(id, profile_id, name, seconds before NOW, properties); active people have many more
    events than most (profile drawn as N·r²)."""
    rng = random.Random(seed + 1)
    name_of = _picker(EVENT_NAMES)
    span = HISTORY_DAYS * 86400
    for eid in range(1, count + 1):
        profile_id = 1 + int(profiles * rng.random() ** 2)
        name = name_of(rng.random())[0]
        ago = int(span * rng.random())
        if name in ("order", "add_to_cart"):
            props: dict[str, Any] = {"amount": rng.randint(1, 500), "sku": f"{'ABCDEFGH'[rng.randrange(8)]}-{rng.randrange(10)}"}
            if name == "order" and rng.random() < 0.05:
                props["gift"] = True
        elif name == "page_view":
            props = {"page": f"/p/{rng.randrange(1000)}"}
        elif name == "search":
            props = {"query": f"q{rng.randrange(500)}"}
        else:
            props = {}
        yield (eid, profile_id, name, ago, props)


def _chunks(rows: Iterator[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _progress(label: str, done: int, total: int, started: float) -> None:
    print(f"  {label}: {done:,}/{total:,} ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)


def load_sqlite(path: str, profiles: int, events: int, seed: int) -> None:
    import sqlite3

    db = sqlite3.connect(path, isolation_level=None)
    db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-1000000; "
                     "PRAGMA temp_store=MEMORY;")
    indexes = [sql for (sql,) in db.execute(
        "SELECT sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL AND tbl_name IN ('profiles','events')")]
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='index' AND sql IS NOT NULL "
                              "AND tbl_name IN ('profiles','events')").fetchall():
        db.execute(f'DROP INDEX "{name}"')
    stamp = NOW.strftime("%Y-%m-%d %H:%M:%S.000000")
    started = time.perf_counter()
    db.execute("BEGIN")
    for chunk in _chunks(profile_rows(profiles, seed), 50_000):
        db.executemany(
            "INSERT INTO profiles (id, user_id, phone, phone_raw, phone_status, sms_capable, timezone, country,"
            " properties, subscription, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [(pid, uid, phone, phone, status, int(capable), tz, country, json.dumps(props), sub,
              created.strftime("%Y-%m-%d %H:%M:%S.000000"), stamp)
             for pid, uid, phone, status, capable, tz, country, props, sub, created in chunk])
        _progress("profiles", chunk[-1][0], profiles, started)
    db.execute("COMMIT")
    base = NOW - timedelta(days=HISTORY_DAYS + 1)
    day_text = [(base + timedelta(days=d)).strftime("%Y-%m-%d") for d in range(HISTORY_DAYS + 3)]
    end = int((NOW - base).total_seconds())

    def stamp_of(ago: int) -> str:
        s = end - ago
        day, rest = divmod(s, 86400)
        return f"{day_text[day]} {rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}.000000"

    db.execute("BEGIN")
    for chunk in _chunks(event_rows(events, profiles, seed), 100_000):
        db.executemany(
            "INSERT INTO events (id, profile_id, name, at, properties, dedupe) VALUES (?,?,?,?,?,?)",
            [(eid, pid, name, stamp_of(ago), json.dumps(props), f"b{eid:012d}") for eid, pid, name, ago, props in chunk])
        if chunk[-1][0] % 1_000_000 == 0 or chunk[-1][0] == events:
            _progress("events", chunk[-1][0], events, started)
    db.execute("COMMIT")
    _write_catalog_sqlite(db)
    for sql in indexes:
        db.execute(sql)
        _progress("index " + sql.split('"')[1] if '"' in sql else sql.split()[2], 0, 0, started)
    db.execute("PRAGMA journal_mode=WAL")
    db.close()


def _catalog_rows() -> list[tuple[str, str, str]]:
    rows = [("profile", name, type_) for name, type_ in PROFILE_TYPES.items()]
    rows += [(f"event:{event}", name, type_) for event, types in EVENT_TYPES.items() for name, type_ in types.items()]
    return rows


def _write_catalog_sqlite(db: Any) -> None:
    db.executemany("INSERT OR IGNORE INTO property_defs (scope, name, type) VALUES (?,?,?)", _catalog_rows())


async def load_postgresql(url: str, profiles: int, events: int, seed: int) -> None:
    import asyncpg

    parsed = make_url(url)
    conn = await asyncpg.connect(user=parsed.username or "postgres", password=parsed.password,
                                 host=parsed.host or "127.0.0.1", port=parsed.port or 5432, database=parsed.database)
    try:
        indexes = await conn.fetch("SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('profiles','events')"
                                   " AND indexname LIKE 'ix_%'")
        for row in indexes:
            await conn.execute(f'DROP INDEX "{row["indexname"]}"')
        started = time.perf_counter()
        for chunk in _chunks(profile_rows(profiles, seed), 100_000):
            await conn.copy_records_to_table(
                "profiles", columns=["id", "user_id", "phone", "phone_raw", "phone_status", "sms_capable", "timezone",
                                     "country", "properties", "subscription", "created_at", "updated_at"],
                records=[(pid, uid, phone, phone, status, capable, tz, country, json.dumps(props), sub, created, NOW)
                         for pid, uid, phone, status, capable, tz, country, props, sub, created in chunk])
            _progress("profiles", chunk[-1][0], profiles, started)
        for chunk in _chunks(event_rows(events, profiles, seed), 200_000):
            await conn.copy_records_to_table(
                "events", columns=["id", "profile_id", "name", "at", "properties", "dedupe"],
                records=[(eid, pid, name, NOW - timedelta(days=HISTORY_DAYS + 1) + timedelta(
                    seconds=(HISTORY_DAYS + 1) * 86400 - ago), json.dumps(props), f"b{eid:012d}")
                    for eid, pid, name, ago, props in chunk])
            if chunk[-1][0] % 1_000_000 == 0 or chunk[-1][0] == events:
                _progress("events", chunk[-1][0], events, started)
        await conn.executemany("INSERT INTO property_defs (scope, name, type) VALUES ($1,$2,$3) ON CONFLICT DO NOTHING",
                               _catalog_rows())
        for row in indexes:
            await conn.execute(row["indexdef"])
        await conn.execute("SELECT setval(pg_get_serial_sequence('profiles','id'), $1)", profiles)
        await conn.execute("SELECT setval(pg_get_serial_sequence('events','id'), $1)", events)
        for table in ("profiles", "events", "property_defs"):  # what autovacuum would soon do
            await conn.execute(f"VACUUM (ANALYZE) {table}")
    finally:
        await conn.close()


# --- the five segments and their yardsticks ---------------------------------------------------------


@dataclass(frozen=True)
class Case:
    title: str
    definition: dict[str, Any]
    where: dict[str, str]  # dialect → hand-written WHERE over `profiles p`
    params: dict[str, Any]


def _moment_param(dialect: str, moment: datetime) -> Any:
    # events.at as each database stores it: SQLite text (SQLAlchemy's format), PostgreSQL timestamptz
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f") if dialect == "sqlite" else moment


def cases(dialect: str) -> list[Case]:
    m = lambda moment: _moment_param(dialect, moment)  # noqa: E731
    return [
        Case("plan equals gold", {"conditions": [{"property": "plan", "op": "equals", "value": "gold"}]},
             {"sqlite": "json_extract(p.properties, '$.plan') = 'gold'",
              "postgresql": "p.properties ->> 'plan' = 'gold'"}, {}),
        Case("last_seen within the last 30 days",
             {"conditions": [{"property": "last_seen", "op": "within_last_days", "value": 30}]},
             {"sqlite": "json_extract(p.properties, '$.last_seen') BETWEEN :since AND :now_text",
              "postgresql": "p.properties ->> 'last_seen' BETWEEN :since AND :now_text"},
             {"since": _iso(NOW - timedelta(days=30)), "now_text": _iso(NOW)}),
        Case("did order ≥ 3 times in the last 30 days",
             {"conditions": [{"event": "order", "count": {"op": "at_least", "value": 3}, "window": {"last_days": 30}}]},
             {d: "p.id IN (SELECT e.profile_id FROM events e WHERE e.name = 'order' AND e.at >= :since AND e.at <= :now"
                 " GROUP BY e.profile_id HAVING count(*) >= 3)" for d in ("sqlite", "postgresql")},
             {"since": m(NOW - timedelta(days=30)), "now": m(NOW)}),
        Case("no app_open in 60 days AND country in IN, GB",
             {"conditions": [{"event": "app_open", "did": False, "window": {"last_days": 60}},
                             {"field": "country", "op": "in", "value": ["IN", "GB"]}]},
             {d: "p.country IN ('IN', 'GB') AND NOT EXISTS (SELECT 1 FROM events e WHERE e.profile_id = p.id"
                 " AND e.name = 'app_open' AND e.at >= :since AND e.at <= :now)" for d in ("sqlite", "postgresql")},
             {"since": m(NOW - timedelta(days=60)), "now": m(NOW)}),
        Case("vip OR did order with amount > 400",
             {"match": "any", "conditions": [
                 {"property": "vip", "op": "equals", "value": True},
                 {"event": "order", "where": [{"property": "amount", "op": "greater", "value": 400}]}]},
             {"sqlite": "json_extract(p.properties, '$.vip') = 1 OR EXISTS (SELECT 1 FROM events e WHERE"
                        " e.profile_id = p.id AND e.name = 'order' AND json_extract(e.properties, '$.amount') > 400)",
              "postgresql": "p.properties -> 'vip' = 'true'::jsonb OR EXISTS (SELECT 1 FROM events e WHERE"
                            " e.profile_id = p.id AND e.name = 'order' AND (e.properties ->> 'amount')::numeric > 400)"},
             {}),
    ]


HAND_REACH = """
SELECT p.country,
       count(*),
       sum(CASE WHEN p.phone_status NOT IN ('missing', 'invalid') AND p.sms_capable AND p.subscription = 'subscribed'
                THEN 1 ELSE 0 END),
       sum(CASE WHEN p.phone_status = 'missing' THEN 1 ELSE 0 END),
       sum(CASE WHEN p.phone_status = 'invalid' THEN 1 ELSE 0 END),
       sum(CASE WHEN p.phone_status = 'valid' AND NOT p.sms_capable THEN 1 ELSE 0 END),
       sum(CASE WHEN p.phone_status = 'valid' AND p.sms_capable AND p.subscription = 'unsubscribed' THEN 1 ELSE 0 END),
       sum(CASE WHEN p.phone_status = 'valid' AND p.sms_capable AND p.subscription = 'never' THEN 1 ELSE 0 END)
FROM profiles p
WHERE {where}
GROUP BY p.country
"""


async def hand_written(session: AsyncSession, case: Case, dialect: str) -> tuple[Any, ...]:
    rows = (await session.execute(text(HAND_REACH.format(where=case.where[dialect])), case.params)).all()
    by_country = sorted(((r[0], r[1], r[2]) for r in rows), key=lambda c: (-c[1], c[0] is None, c[0] or ""))
    reasons = tuple(sum(r[i] for r in rows) for i in range(3, 8))
    return sum(r[1] for r in rows), sum(r[2] for r in rows), reasons, by_country


async def compiled(session: AsyncSession, case: Case) -> tuple[Any, ...]:
    reach = await segments.estimate_reach(session, case.definition, now=NOW)
    return (reach.qualified, reach.reachable, tuple(n for _, n in reach.unreachable.items()),
            [(c.country, c.qualified, c.reachable) for c in reach.by_country])


# --- running --------------------------------------------------------------------------------------


async def prepare(url: str, profiles: int, events: int, seed: int, reuse: bool) -> None:
    is_sqlite = make_url(url).get_backend_name() == "sqlite"
    if is_sqlite:
        path = Path(make_url(url).database or "")
        if path.exists() and not reuse:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = await open_database(url)
    try:
        async with engine.connect() as conn:
            have_profiles = (await conn.execute(text("SELECT coalesce(max(id), 0) FROM profiles"))).scalar()
            have_events = (await conn.execute(text("SELECT coalesce(max(id), 0) FROM events"))).scalar()
    finally:
        await engine.dispose()
    if (have_profiles, have_events) == (profiles, events) and reuse:
        print(f"reusing {profiles:,} profiles and {events:,} events", file=sys.stderr)
        return
    if have_profiles or have_events:
        raise SystemExit(f"the database already holds other data ({have_profiles} profiles, {have_events} events);"
                         " give an empty database or a new file")
    started = time.perf_counter()
    if is_sqlite:
        await asyncio.to_thread(load_sqlite, make_url(url).database or "", profiles, events, seed)
    else:
        await load_postgresql(url, profiles, events, seed)
    print(f"generated in {time.perf_counter() - started:.0f} s", file=sys.stderr)


async def run(url: str, runs: int) -> list[dict[str, Any]]:
    engine = await open_database(url)
    dialect = engine.dialect.name
    factory = session_factory(engine)
    results = []
    try:
        async with factory() as session:
            started = time.perf_counter()
            catalog = await segments.segment_catalog(session)
            catalog_ms = (time.perf_counter() - started) * 1000
        print(f"catalog ({len(catalog.events)} event names, {len(catalog.properties)} properties): {catalog_ms:.1f} ms")
        for case in cases(dialect):
            timings: dict[str, list[float]] = {"compiled": [], "hand": []}
            answers: dict[str, Any] = {}
            for attempt in range(runs + 1):  # the first round warms the cache and is not counted
                for kind in (("compiled", "hand") if attempt % 2 == 0 else ("hand", "compiled")):
                    async with factory() as session:
                        started = time.perf_counter()
                        answer = await (compiled(session, case) if kind == "compiled" else hand_written(session, case, dialect))
                        elapsed = time.perf_counter() - started
                    answers[kind] = answer
                    if attempt:
                        timings[kind].append(elapsed)
            if answers["compiled"] != answers["hand"]:
                raise SystemExit(f"{case.title}: counts differ\n compiled {answers['compiled']}\n hand     {answers['hand']}")
            compiled_s, hand_s = statistics.median(timings["compiled"]), statistics.median(timings["hand"])
            qualified, reachable = answers["compiled"][0], answers["compiled"][1]
            result = {"segment": case.title, "qualified": qualified, "reachable": reachable,
                      "compiled_s": compiled_s, "hand_s": hand_s, "ratio": compiled_s / hand_s}
            results.append(result)
            print(f"{case.title:48} qualified {qualified:>9,}  reachable {reachable:>9,}  "
                  f"estimate_reach {compiled_s:7.3f} s  hand-written {hand_s:7.3f} s  ratio {compiled_s / hand_s:5.2f}",
                  flush=True)
    finally:
        await engine.dispose()
    return results


def quick(profiles: int = 50_000, events: int = 500_000) -> list[dict[str, Any]]:
    """For bench/run: the five segments on a small generated audience (a temp SQLite file, and
    PostgreSQL when SMSCONSOLE_BENCH_DATABASE_URL names a server), median of three runs after a
    warm-up; the worst estimate_reach / hand-written ratio against the 1.2× goal."""
    import tempfile

    from bench._quick import backend, postgres_url, scratch_database, under

    rows = []
    with tempfile.TemporaryDirectory(prefix="smsc-segments-") as tmp:
        for url in [f"sqlite:///{tmp}/segments.db"] + ([postgres_url()] if postgres_url() else []):
            with scratch_database(url, "segments") as target:
                asyncio.run(prepare(target, profiles, events, 20260301, False))
                results = asyncio.run(run(target, 3))
            worst = max(results, key=lambda r: r["ratio"])
            slowest = max(r["compiled_s"] for r in results)
            rows.append(under(f"segment reach, {backend(url)}: estimate_reach / hand-written SQL, worst of "
                              f"{len(results)} segments ({profiles:,} profiles, {events:,} events)",
                              f"{worst['ratio']:.2f}× ({worst['segment']}); slowest estimate {slowest:.3f} s",
                              "≤ 1.2× (at 1M profiles, 10M events)", worst["ratio"], 1.2))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=20260301)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per query (median reported)")
    parser.add_argument("--reuse", action="store_true", help="reuse a database this script generated before")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    asyncio.run(prepare(args.database_url, args.profiles, args.events, args.seed, args.reuse))
    results = asyncio.run(run(args.database_url, args.runs))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
