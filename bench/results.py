"""Home, Stats and a campaign report at scale: a database of 1,000,000 messages over 10 days and
10,000,000 events, then the time of a Home refresh (what screens/home.py runs each second), a Stats
refresh (what screens/stats.py runs: delivery_stats and the latest messages) and a campaign report
(services.campaigns.report.build_report), each the median of --runs after a warm-up, each in a
fresh session as the screens use. Goal: under 50 ms each on SQLite and PostgreSQL.

    .venv/bin/python -m bench.results                              # SQLite, /tmp/smsconsole-results-bench
    .venv/bin/python -m bench.results --database-url postgresql://postgres@127.0.0.1:5432/results_bench
    .venv/bin/python -m bench.results --reuse                      # keep the generated database
    .venv/bin/python -m bench.results --messages 100000 --events 1000000   # a quick look

The data is written set-based in the database (a recursive CTE on SQLite, generate_series on
PostgreSQL; nothing row by row from Python), through the migrations' schema and triggers: the
messages go in in chunks of 100,000, one transaction each, so the rollup triggers build
stat_traffic, stat_campaign and stat_series as they would in production (PostgreSQL: one slot per
transaction, then `rollups.compact` folds them — timed too). 10 campaigns with 10 daily runs each
(A/B and a 10% control), 4 providers, 6 countries, every state; 50,000 replies (70% linked to a
campaign), 30,000 conversions, 100,000 profiles and the events. For comparison, the queries Home ran
before the rollups (GROUP BY over messages for the hour, today and the per-minute throughput) are
timed on the same data."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Integer, cast, func, insert, select, text, update

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from smsconsole import clock
from smsconsole.config import Config
from smsconsole.engine import lease
from smsconsole.models import Campaign, CampaignRun, Message
from smsconsole.runtime import Runtime
from smsconsole.services import providers, rollups
from smsconsole.services.campaigns.alerts import blocked_campaigns
from smsconsole.services.providers import list_providers
from smsconsole.services.stats import (
    counts_by_provider,
    delivery_stats,
    recent_messages,
    window_start,
)

DAYS = 10
SPAN = DAYS * 86400
CAMPAIGNS = 10
PROFILES = 100_000
REPLIES = 50_000
CONVERSIONS = 30_000
PROVIDERS = ("alpha", "beta", "gamma", "delta")
CHUNK = 100_000
EVENT_CHUNK = 1_000_000
EVENT_SPAN = 30 * 86400


def _case(expr: str, values: list[str]) -> str:
    whens = " ".join(f"WHEN {i} THEN {v}" for i, v in enumerate(values))
    return f"(CASE ({expr}) % {len(values)} {whens} END)"


class Sql:
    """The few expressions that differ between the two databases."""

    def __init__(self, dialect: str) -> None:
        self.postgres = dialect == "postgresql"

    def series(self, lo: int, hi: int) -> str:
        """A relation g(n) of the integers lo..hi-1."""
        if self.postgres:
            return f"generate_series(CAST({lo} AS BIGINT), {hi - 1}) AS g(n)"  # n * SPAN passes 2^31
        return f"(WITH RECURSIVE s(n) AS (SELECT {lo} UNION ALL SELECT n + 1 FROM s WHERE n < {hi - 1}) " \
               f"SELECT n FROM s) AS g"

    def ago(self, seconds: str) -> str:
        """A timestamp `seconds` before :now (epoch seconds)."""
        if self.postgres:
            return f"to_timestamp(:now - ({seconds}))"
        return f"datetime(:now - ({seconds}), 'unixepoch')"

    def digits(self, expr: str, width: int) -> str:
        if self.postgres:
            return f"lpad(CAST({expr} AS TEXT), {width}, '0')"
        return f"printf('%0{width}d', {expr})"

    def false(self) -> str:
        return "false" if self.postgres else "0"


def messages_sql(sql: Sql, lo: int, hi: int, total: int) -> str:
    """Messages n = lo..hi-1; n = 0 is the newest, ages spread evenly over DAYS."""
    age = f"(n * {SPAN} / {total})"
    campaign = f"(CASE WHEN n % 10 < 7 THEN 1 + (n / 10) % {CAMPAIGNS} END)"
    variant = ("(CASE WHEN n % 10 < 7 THEN (CASE WHEN (n / 100) % 10 = 0 THEN 'control' "
               "WHEN (n / 100) % 2 = 0 THEN 'A' ELSE 'B' END) END)")
    kind = "(CASE WHEN n % 10 < 7 THEN 'campaign' WHEN n % 10 < 9 THEN 'transactional' ELSE 'test' END)"
    inner = f"SELECT n, {age} AS age, {kind} AS kind, {campaign} AS campaign_id, {variant} AS variant, " \
            f"(n * 37) % 1000 AS st FROM {sql.series(lo, hi)}"
    state = ("(CASE WHEN variant = 'control' THEN 'control' "
             "WHEN n < 2000 THEN (CASE WHEN st < 500 THEN 'queued' WHEN st < 600 THEN 'sending' ELSE 'sent' END) "
             "WHEN st < 800 THEN 'delivered' WHEN st < 850 THEN 'undelivered' WHEN st < 890 THEN 'failed' "
             "WHEN st < 900 THEN 'unknown' WHEN st < 950 THEN 'suppressed' ELSE 'sent' END)")
    middle = f"SELECT i.*, {state} AS state FROM ({inner}) i"
    provider = _case("n", [f"'{p}'" for p in PROVIDERS])
    left = "state IN ('sent', 'delivered', 'undelivered', 'unknown')"
    columns = {
        "kind": "kind", "priority": "0", "to_number": f"'+1415' || {sql.digits('n % 10000000', 7)}",
        "body": "'Hello, your offer is waiting'", "encoding": "'GSM-7'",
        "segments": "(CASE WHEN n % 7 = 0 THEN 2 ELSE 1 END)", "state": "state",
        "attempts": f"(CASE WHEN {left} OR state = 'failed' THEN 1 ELSE 0 END)", "render": sql.false(),
        "provider_name": f"(CASE WHEN state IN ('control', 'queued', 'suppressed') THEN NULL ELSE {provider} END)",
        "profile_id": f"(CASE WHEN campaign_id IS NOT NULL THEN 1 + n % {PROFILES} END)",
        "country": _case("n / 3", ["'IN'", "'GB'", "'US'", "'DE'", "'FR'", "'BR'"]),
        "campaign_id": "campaign_id",
        "run_id": f"(CASE WHEN campaign_id IS NOT NULL THEN (campaign_id - 1) * {DAYS} + {DAYS} - age / 86400 END)",
        "variant": "variant",
        "error_code": ("(CASE WHEN state = 'failed' THEN " + _case("n", ["'21211'", "'30007'", "'30008'"])
                       + " WHEN state = 'undelivered' THEN " + _case("n", ["'30003'", "'30005'"]) + " END)"),
        "reason": ("(CASE WHEN state = 'suppressed' THEN "
                   + _case("n", ["'frequency cap: 3 per day'", "'unsubscribed'", "'DND hours'",
                                 "'safety: blocked prefix'"])
                   + " WHEN state = 'failed' THEN 'rejected by the provider' "
                   "WHEN state = 'unknown' THEN 'no answer in time' END)"),
        "price": "(CASE WHEN state IN ('delivered', 'undelivered') AND n % 4 < 2 THEN 0.0075 END)",
        "price_currency": "(CASE WHEN state IN ('delivered', 'undelivered') AND n % 4 < 2 THEN 'USD' END)",
        "created_at": sql.ago("age"),
        "updated_at": sql.ago("age"),
        "sent_at": f"(CASE WHEN {left} THEN {sql.ago('age - 2')} END)",
        "finished_at": (f"(CASE WHEN state IN ('delivered', 'undelivered') THEN {sql.ago('age - 2 - n % 90')} "
                        f"WHEN state IN ('failed', 'suppressed', 'control') THEN {sql.ago('age')} END)"),
    }
    return (f"INSERT INTO messages ({', '.join(columns)}) SELECT {', '.join(columns.values())} "
            f"FROM ({middle}) m")


def profiles_sql(sql: Sql) -> str:
    return ("INSERT INTO profiles (id, user_id, phone, phone_status, sms_capable, properties, subscription, "
            "country, created_at, updated_at) "
            f"SELECT n + 1, 'u' || n, '+1415' || {sql.digits('n', 7)}, 'valid', true, '{{}}', 'subscribed', "
            f"'US', {sql.ago(str(SPAN))}, {sql.ago(str(SPAN))} FROM {sql.series(0, PROFILES)}")


def events_sql(sql: Sql, lo: int, hi: int, total: int) -> str:
    name = _case("n", ["'app_open'", "'page_view'", "'login'", "'add_to_cart'", "'search'", "'order'"])
    properties = "(CASE WHEN n % 6 = 5 THEN '{\"amount\": 12.5}' ELSE '{}' END)"
    if sql.postgres:
        properties = f"CAST({properties} AS JSONB)"
    return ("INSERT INTO events (profile_id, name, at, properties, dedupe) "
            f"SELECT 1 + (n * 7919) % {PROFILES}, {name}, {sql.ago(f'n * {EVENT_SPAN} / {total}')}, {properties}, "
            f"'b' || n FROM {sql.series(lo, hi)}")


def replies_sql(sql: Sql) -> str:
    campaign = f"(CASE WHEN n % 10 < 7 THEN 1 + (n / 10) % {CAMPAIGNS} END)"
    age = f"(n * {SPAN} / {REPLIES})"
    return ("INSERT INTO inbound_messages (provider_name, provider_message_id, sender, text, action, via, "
            "received_at, campaign_id, run_id, variant) "
            f"SELECT {_case('n', [repr(p) for p in PROVIDERS])}, 'in' || n, '+1415' || {sql.digits('n', 7)}, "
            "(CASE WHEN n % 20 = 0 THEN 'STOP' ELSE 'thanks' END), "
            "(CASE WHEN n % 20 = 0 THEN 'opt_out' ELSE 'reply' END), 'poll', "
            f"{sql.ago(age)}, {campaign}, "
            f"(CASE WHEN n % 10 < 7 THEN ({campaign} - 1) * {DAYS} + {DAYS} - {age} / 86400 END), "
            "(CASE WHEN n % 10 < 7 THEN (CASE WHEN n % 2 = 0 THEN 'A' ELSE 'B' END) END) "
            f"FROM {sql.series(0, REPLIES)}")


def conversions_sql(sql: Sql) -> str:
    age = f"(n * {SPAN} / {CONVERSIONS})"
    campaign = f"(1 + n % {CAMPAIGNS})"
    return ("INSERT INTO campaign_conversions (campaign_id, run_id, variant, profile_id, event_id, converted_at, "
            "revenue, created_at, updated_at) "
            f"SELECT {campaign}, ({campaign} - 1) * {DAYS} + {DAYS} - {age} / 86400, "
            "(CASE WHEN n % 10 = 0 THEN 'control' WHEN n % 2 = 0 THEN 'A' ELSE 'B' END), "
            f"1 + n, n, {sql.ago(age)}, (CASE WHEN n % 3 = 0 THEN 25.0 END), {sql.ago(age)}, {sql.ago(age)} "
            f"FROM {sql.series(0, CONVERSIONS)}")


def step(label: str, started: float) -> float:
    now = time.perf_counter()
    print(f"  {label}: {now - started:.1f} s", flush=True)
    return now


async def build(rt: Runtime, messages: int, events: int) -> None:
    dialect = rt.factory.kw["bind"].dialect.name
    sql = Sql(dialect)
    now = clock.now()
    params = {"now": int(now.timestamp())}
    t = time.perf_counter()
    print(f"building {messages:,} messages and {events:,} events on {dialect}", flush=True)
    async with rt.factory() as session, session.begin():
        for name in PROVIDERS:
            await providers.create_provider(session, rt.box, kind="sandbox", name=name, values={}, actor="bench")
        document = {"what": {"variants": [{"body": "Offer A", "split": 45}, {"body": "Offer B", "split": 45}],
                             "control": 10},
                    "goal": {"event": "order", "window": "24h", "value": "amount"}}
        for c in range(1, CAMPAIGNS + 1):
            session.add(Campaign(id=c, name=f"Campaign {c}", type="recurring", state="running", document=document,
                                 created_at=now - timedelta(days=DAYS + 1), updated_at=now))
        await session.flush()
        for c in range(1, CAMPAIGNS + 1):
            for k in range(1, DAYS + 1):
                planned = now - timedelta(days=DAYS - k + 1)
                session.add(CampaignRun(id=(c - 1) * DAYS + k, campaign_id=c, number=k, planned_at=planned,
                                        state="finished" if k < DAYS else "running", document=document,
                                        started_at=planned, finished_at=planned + timedelta(hours=1) if k < DAYS
                                        else None, qualified=messages // (CAMPAIGNS * DAYS),
                                        suppressed={"unsubscribed": 120, "frequency cap: 3 per day": 40},
                                        updated_at=now))
        await session.execute(text(profiles_sql(sql)), params)
    t = step("providers, campaigns, runs, 100,000 profiles", t)
    for lo in range(0, messages, CHUNK):
        async with rt.factory() as session, session.begin():
            await session.execute(text(messages_sql(sql, lo, min(lo + CHUNK, messages), messages)), params)
    t = step(f"{messages:,} messages (triggers building the rollups), {CHUNK:,} a transaction", t)
    async with rt.factory() as session, session.begin():
        await session.execute(text(replies_sql(sql)), params)
        await session.execute(text(conversions_sql(sql)), params)
    t = step(f"{REPLIES:,} replies, {CONVERSIONS:,} conversions", t)
    for lo in range(0, events, EVENT_CHUNK):
        async with rt.factory() as session, session.begin():
            await session.execute(text(events_sql(sql, lo, min(lo + EVENT_CHUNK, events), events)), params)
    t = step(f"{events:,} events", t)
    async with rt.factory() as session, session.begin():
        folded = await rollups.compact(session)
    t = step(f"rollups.compact: {folded:,} slot rows folded", t)
    async with rt.factory.kw["bind"].connect() as conn:
        if dialect == "postgresql":
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("VACUUM (ANALYZE)")
        else:
            await conn.exec_driver_sql("ANALYZE")
            await conn.commit()
    step("ANALYZE", t)


# --- what each screen runs ----------------------------------------------------------------------


async def home_refresh(rt: Runtime) -> None:
    """screens/home.py refresh_home: providers, the hour's stats, today's counts, the lease, alerts."""
    async with rt.factory() as session:
        await list_providers(session)
        await delivery_stats(session, "hour")
        await counts_by_provider(session, window_start("today"))
        await lease.current(session)
        await blocked_campaigns(session)


async def stats_refresh(rt: Runtime, window: str) -> None:
    """screens/stats.py refresh_stats."""
    async with rt.factory() as session:
        await delivery_stats(session, window)
        await recent_messages(session, limit=50)


async def old_home_queries(rt: Runtime) -> None:
    """The three scans of messages Home ran every second before the rollups (hour, today, throughput)."""
    async with rt.factory() as session:
        for since in (window_start("hour"), window_start("today")):
            await session.execute(select(Message.provider_name, Message.state, func.count())
                                  .where(Message.created_at >= since).group_by(Message.provider_name, Message.state))
        first = (int(clock.now().timestamp()) // 60 - 59) * 60
        since = datetime.fromtimestamp(first, tz=UTC)
        if session.get_bind().dialect.name == "postgresql":
            minute = cast(func.floor(func.extract("epoch", Message.sent_at) / 60), Integer)
        else:
            minute = cast(func.strftime("%s", Message.sent_at), Integer) // 60
        await session.execute(select(Message.provider_name, minute.label("m"), func.count())
                              .where(Message.sent_at >= since).group_by(Message.provider_name, "m"))


async def trigger_cost(url: str, workdir: Path, rows: int = 20_000, batch: int = 500) -> None:
    """What the rollup triggers add to the dispatcher's writes: `rows` messages queued, then moved
    in batches of `batch` as the dispatcher moves them (claimed, sending, sent with provider and
    sent_at, delivered with finished_at: one UPDATE … WHERE id IN (…) per batch and step; campaign
    messages, so all three rollups are written), with the triggers and again, on fresh rows, without
    them."""
    rt = await Runtime.open(Config(config_dir=workdir / "config", data_dir=workdir / "data", database_url=url))
    try:
        dialect = rt.factory.kw["bind"].dialect.name
        now = clock.now()
        results = {}
        async with rt.factory() as session, session.begin():
            campaign = Campaign(name="Trigger cost", type="one_time", state="running", document={}, created_at=now,
                                updated_at=now)
            session.add(campaign)
            await session.flush()
            campaign_id = campaign.id
        for label in ("with the rollup triggers", "without them"):
            async with rt.factory() as session, session.begin():
                await session.execute(text("DELETE FROM messages"))
                first = (await session.execute(insert(Message).returning(Message.id), [
                    {"kind": "campaign", "priority": 0, "to_number": f"+1415{n:07d}", "body": "x",
                     "encoding": "GSM-7", "segments": 1, "state": "queued", "attempts": 0, "campaign_id": campaign_id,
                     "variant": "A", "country": "US",
                     "created_at": now, "updated_at": now} for n in range(rows)])).scalars().all()
            ids = sorted(first)
            steps = [{"state": "claimed", "claim_token": "t"}, {"state": "sending"},
                     {"state": "sent", "provider_name": "alpha", "sent_at": now},
                     {"state": "delivered", "finished_at": now + timedelta(seconds=3)}]
            started = time.perf_counter()
            for values in steps:
                for lo in range(0, rows, batch):
                    async with rt.factory() as session, session.begin():
                        await session.execute(update(Message).where(Message.id.in_(ids[lo:lo + batch]))
                                              .values(**values, updated_at=now))
            results[label] = time.perf_counter() - started
            print(f"{label}: {len(steps) * rows:,} row moves in {results[label]:.2f} s "
                  f"({results[label] / (len(steps) * rows / batch) * 1000:.1f} ms a {batch}-row UPDATE)", flush=True)
            async with rt.factory() as session, session.begin():
                if dialect == "postgresql":
                    for op_name in ("ins", "upd", "del"):
                        await session.execute(text(f"DROP TRIGGER IF EXISTS trg_messages_rollup_{op_name} ON messages"))
                else:
                    names = (await session.execute(text(
                        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'messages' "
                        "AND name LIKE 'trg_messages_stat_%'"))).scalars().all()
                    for name in names:
                        await session.execute(text(f"DROP TRIGGER {name}"))
        ratio = results["with the rollup triggers"] / results["without them"]
        print(f"the triggers cost {ratio - 1:+.0%} on these writes ({dialect})")
    finally:
        await rt.close()


async def timed(label: str, runs: int, work: Callable[[], Awaitable[Any]]) -> float:
    await work()  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await work()
        times.append((time.perf_counter() - started) * 1000)
    median = statistics.median(times)
    print(f"{label:<44} median {median:8.1f} ms  (min {min(times):.1f}, max {max(times):.1f}, {runs} runs)",
          flush=True)
    return median


async def _quick(url: str, workdir: Path, messages: int, events: int, runs: int) -> dict[str, float]:
    rt = await Runtime.open(Config(config_dir=workdir / "config", data_dir=workdir / "data", database_url=url))
    try:
        await build(rt, messages, events)
        from smsconsole.services.campaigns.report import build_report

        async def report() -> None:
            async with rt.factory() as session:
                await build_report(session, 1)

        async def report_run() -> None:
            async with rt.factory() as session:
                await build_report(session, 1, run_number=DAYS - 1)

        return {"Home refresh": await timed("Home refresh", runs, lambda: home_refresh(rt)),
                "Stats refresh, last hour": await timed("Stats, hour", runs, lambda: stats_refresh(rt, "hour")),
                "Stats refresh, today": await timed("Stats, today", runs, lambda: stats_refresh(rt, "today")),
                "campaign report, all 10 runs": await timed("report", runs, report),
                "campaign report, one run": await timed("report, one run", runs, report_run)}
    finally:
        await rt.close()


def quick(messages: int = 100_000, events: int = 200_000, runs: int = 5) -> list[dict[str, object]]:
    """For bench/run: the screens' refreshes on a tenth of the messages and a fiftieth of the events
    (a temp SQLite file, and PostgreSQL when SMSCONSOLE_BENCH_DATABASE_URL names a server), median
    of `runs`. Not extrapolated: the refreshes read rollup rows, whose count grows with the keys and
    minutes (10 days either way), not in proportion to the messages."""
    import contextlib
    import io
    import tempfile

    from bench._quick import backend, postgres_url, scratch_database, under

    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="smsc-results-") as tmp:
        for server in [f"sqlite:///{tmp}/results.db"] + ([postgres_url()] if postgres_url() else []):
            with scratch_database(server, "results") as url, contextlib.redirect_stdout(io.StringIO()):
                figures = asyncio.run(_quick(url, Path(tmp) / backend(server), messages, events, runs))
            for name, ms in figures.items():
                rows.append(under(f"{name}, {backend(server)} ({messages:,} messages, {events:,} events; median "
                                  f"of {runs})", f"{ms:.1f} ms", "< 50 ms (at 1M messages, 10M events)", ms, 50.0))
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="default: a SQLite file in --workdir")
    parser.add_argument("--workdir", default="/tmp/smsconsole-results-bench")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--reuse", action="store_true", help="keep and reuse a database already built")
    parser.add_argument("--trigger-cost", action="store_true",
                        help="only time the dispatcher's batch UPDATEs with and without the rollup triggers, in a "
                             "fresh database (SQLite in --workdir, or an empty --database-url; it drops the triggers)")
    args = parser.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if args.trigger_cost:
        (workdir / "triggers.db").unlink(missing_ok=True)
        await trigger_cost(args.database_url or f"sqlite:///{workdir / 'triggers.db'}", workdir)
        return
    url = args.database_url or f"sqlite:///{workdir / 'results.db'}"
    if url.startswith("sqlite") and not args.reuse:
        (workdir / "results.db").unlink(missing_ok=True)
    rt = await Runtime.open(Config(config_dir=workdir / "config", data_dir=workdir / "data", database_url=url))
    try:
        async with rt.factory() as session:
            existing = await session.scalar(select(func.count()).select_from(Message))
        if existing and not args.reuse:
            raise SystemExit(f"{url} already holds {existing:,} messages: give an empty database or --reuse")
        if not existing:
            await build(rt, args.messages, args.events)
        try:
            from smsconsole.services.campaigns.report import build_report
        except ImportError:
            build_report = None  # type: ignore[assignment]
            print("services.campaigns.report.build_report is not there yet: the report is not measured")
        await timed("Home refresh (screens/home.py)", args.runs, lambda: home_refresh(rt))
        await timed("Stats refresh, last hour (screens/stats.py)", args.runs, lambda: stats_refresh(rt, "hour"))
        await timed("Stats refresh, today", args.runs, lambda: stats_refresh(rt, "today"))
        if build_report is not None:
            async def report() -> None:
                async with rt.factory() as session:
                    await build_report(session, 1)

            async def report_run() -> None:
                async with rt.factory() as session:
                    await build_report(session, 1, run_number=DAYS - 1)

            await timed("campaign report, 10 runs (build_report)", args.runs, report)
            await timed("campaign report, one run", args.runs, report_run)
        await timed("before: Home's three scans of messages", max(3, args.runs // 3), lambda: old_home_queries(rt))
        async with rt.factory() as session:
            sizes = {name: await session.scalar(text(f"SELECT count(*) FROM {name}"))
                     for name in ("messages", "events", "stat_traffic", "stat_campaign", "stat_series")}
        print("rows: " + ", ".join(f"{name} {n:,}" for name, n in sizes.items()))
    finally:
        await rt.close()


if __name__ == "__main__":
    asyncio.run(main())
