"""Profile import at scale: generate a deterministic CSV (default 1,000,000 rows, about 1% of them
bad in the ways real exports are), import it into a fresh database with
`services.imports.run_import` (on SQLite, or PostgreSQL with --database-url), and report time,
CPU time and memory. The figures go in bench/README.md.

    .venv/bin/python bench/imports.py                      # 1M rows into /tmp/smsconsole-bench (SQLite)
    .venv/bin/python bench/imports.py --database-url postgresql://postgres@127.0.0.1/bench_imports
    .venv/bin/python bench/imports.py --rows 100000 --rerun
    .venv/bin/python bench/imports.py --rows 50000 --no-parallel --profile /tmp/import.prof   # cProfile

`quick()` runs 100,000 rows on SQLite and returns the rows of `bench/run`'s table.

Peak RSS is the largest sum, sampled every 0.2 s from /proc, of the resident memory of this
process and all its descendants (the preparing pool's workers); CPU time is this process's plus
its reaped children's (resource.getrusage); with --database-url the local PostgreSQL server's CPU time
is given apart (its processes read from /proc; a shared server's other clients included).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from smsconsole.config import Config  # noqa: E402
from smsconsole.runtime import Runtime  # noqa: E402
from smsconsole.services import imports  # noqa: E402
from smsconsole.services.profiles import AudienceDefaults  # noqa: E402

GOAL_SECONDS = 60.0  # per 1,000,000 rows
GOAL_RSS_MB = 500.0
PLANS = ("free", "basic", "pro", "enterprise")
ZONES = ("Europe/London", "America/New_York", "", "", "")


def generate(path: Path, rows: int) -> int:
    """Write the CSV (same bytes for the same `rows`); returns the number of bad rows in it."""
    bad = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("user_id,phone,name,timezone,optin_at,plan,score,zip,vip\n")
        for i in range(rows):
            phone = f"+447400{i % 1_000_000:06d}" if i % 2 == 0 else f"+1212{2_000_000 + i % 1_000_000:07d}"
            day = 1 + i % 28
            optin = f"2026-01-{day:02d}T{i % 24:02d}:{i % 60:02d}:00Z" if i % 3 else ""
            zone = ZONES[i % len(ZONES)]
            score = str(i % 1000)
            if i % 100 == 37:
                bad += 1
                kind = (i // 100) % 4
                if kind == 0:
                    zone = "Mars/Olympus"
                elif kind == 1:
                    optin = "yesterday"
                elif kind == 2:
                    score = "n/a"
                else:
                    out.write(f"u{i},{phone},Name {i}\n")  # too few fields
                    continue
            out.write(f"u{i},{phone},Name {i},{zone},{optin},{PLANS[i % 4]},{score},{i % 90000 + 10000:05d},"
                      f"{'yes' if i % 7 == 0 else 'no'}\n")
    return bad


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _descendants(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


class RssSampler:
    """The largest sum of the resident memory of this process and its descendants, sampled."""

    def __init__(self, every: float = 0.2) -> None:
        self.every, self.peak_kib, self.children = every, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = _descendants(os.getpid())
            self.children = max(self.children, len(pids) - 1)
            self.peak_kib = max(self.peak_kib, sum(_rss_kib(pid) for pid in pids))
            self._stop.wait(self.every)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mib(self) -> float:
        return self.peak_kib / 1024


def rss_mib() -> float:
    return _rss_kib(os.getpid()) / 1024


def server_cpu_seconds() -> float | None:
    """CPU seconds of the local PostgreSQL server so far: its processes' own, plus what the
    postmaster has reaped of its exited backends; None when no local server runs. On a shared
    server this includes other clients' work."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, found = 0, False
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                name, rest = stat.read().rsplit(")", 1)
        except OSError:
            continue
        if not name.endswith("(postgres"):
            continue
        fields = rest.split()
        found = True
        total += int(fields[11]) + int(fields[12])  # utime, stime
        if fields[1] == "1" or not fields[1].isdigit():
            total += int(fields[13]) + int(fields[14])  # the postmaster's reaped children
    return total / ticks if found else None


def cpu_seconds() -> float:
    return sum(cpu_split())


def cpu_split() -> tuple[float, float]:
    """(this process's CPU seconds, its reaped children's: the pool's workers once shut down)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


async def run(csv_path: Path, db_path: Path, batch_size: int, database_url: str | None = None,
              parallel: bool | None = None, quiet: bool = False) -> imports.ImportSummary:
    config = Config(config_dir=db_path.parent / "config", data_dir=db_path.parent / "data",
                    database_url=database_url or f"sqlite:///{db_path}")
    runtime = await Runtime.open(config)
    last = [0.0]

    def progress(done: int, read: int, size: int) -> None:
        now = time.monotonic()
        if now - last[0] > 5 and not quiet:
            last[0] = now
            print(f"  {done:>9,} rows  {read / max(size, 1):6.1%}  rss {rss_mib():6.0f} MiB", flush=True)

    try:
        return await imports.run_import(runtime.factory, csv_path, "profiles", actor="bench", progress=progress,
                                        batch_size=batch_size, defaults=AudienceDefaults(region="GB"),
                                        parallel=parallel)
    finally:
        await runtime.close()


async def empty_postgres(database_url: str, db_path: Path) -> None:
    """A fresh audience in the PostgreSQL database (migrated first if need be)."""
    from sqlalchemy import text

    config = Config(config_dir=db_path.parent / "config", data_dir=db_path.parent / "data", database_url=database_url)
    runtime = await Runtime.open(config)
    try:
        async with runtime.factory() as session, session.begin():
            await session.execute(text("TRUNCATE profiles, consents, property_defs CASCADE"))
    finally:
        await runtime.close()


def report(label: str, summary: imports.ImportSummary, cpu: float | None = None, peak: float | None = None,
           split: tuple[float, float] | None = None, server: float | None = None) -> None:
    rate = summary.rows_read / summary.elapsed_seconds if summary.elapsed_seconds else 0
    extra = f"; CPU {cpu:,.1f} s" if cpu is not None else ""
    if split is not None and summary.rows_read:
        extra += (f" ({split[0] * 1e6 / summary.rows_read:,.0f} us a row in the importing process, "
                  f"{split[1] * 1e6 / summary.rows_read:,.0f} in the pool)")
    if server is not None and summary.rows_read:
        extra += f"; local PostgreSQL server CPU {server:,.1f} s ({server * 1e6 / summary.rows_read:,.0f} us a row)"
    extra += f"; peak RSS with the pool {peak:,.0f} MiB" if peak is not None else ""
    print(f"{label}: {summary.rows_read:,} rows in {summary.elapsed_seconds:,.1f} s ({rate:,.0f} rows/s); "
          f"created {summary.created:,}, updated {summary.updated:,}, unchanged {summary.unchanged:,}, "
          f"bad {summary.bad_rows:,}{extra}", flush=True)


def measured(csv_path: Path, db_path: Path, batch_size: int, database_url: str | None = None,
             parallel: bool | None = None, quiet: bool = False,
             ) -> tuple[imports.ImportSummary, float, float, tuple[float, float]]:
    """(summary, CPU seconds, peak RSS MiB of this process and its children, (CPU seconds of this
    process, of the pool)) of one import."""
    summary, cpu, peak, split, _ = measured_with_server(csv_path, db_path, batch_size, database_url, parallel, quiet)
    return summary, cpu, peak, split


def measured_with_server(csv_path: Path, db_path: Path, batch_size: int, database_url: str | None = None,
                         parallel: bool | None = None, quiet: bool = False,
                         ) -> tuple[imports.ImportSummary, float, float, tuple[float, float], float | None]:
    """`measured`, and the local PostgreSQL server's CPU seconds meanwhile (None on SQLite or
    without a local server)."""
    own, pool = cpu_split()
    server = server_cpu_seconds() if database_url else None
    with RssSampler() as sampler:
        summary = asyncio.run(run(csv_path, db_path, batch_size, database_url, parallel, quiet))
    own_after, pool_after = cpu_split()
    server_after = server_cpu_seconds() if server is not None else None
    split = (own_after - own, pool_after - pool)
    return (summary, sum(split), sampler.peak_mib, split,
            server_after - server if server is not None and server_after is not None else None)


def quick(rows: int = 100_000) -> list[dict[str, object]]:
    """The import at `rows` rows on SQLite (a fresh temp database) and, when bench/run is given a
    PostgreSQL server, on a fresh database there too; the time extrapolated to a million rows. Rows
    of `bench/run`'s table: measure, figure, goal, ratio (measured / goal), holds."""
    from bench._quick import backend, postgres_url, scratch_database

    found: list[dict[str, object]] = []
    for url in ["", *([postgres_url()] if postgres_url() else [])]:
        with tempfile.TemporaryDirectory(prefix="smsconsole-bench-imports-") as folder, \
                scratch_database(url, "imports") as database_url:
            csv_path, db_path = Path(folder) / "profiles.csv", Path(folder) / "import.db"
            generate(csv_path, rows)
            summary, cpu, peak, _ = measured(csv_path, db_path, 2000, database_url or None, quiet=True)
        per_million = summary.elapsed_seconds * 1_000_000 / rows
        where = backend(url)
        found += [
            {"measure": f"profile import, {where}, {rows:,} rows (× {1_000_000 / rows:g} for a million)",
             "figure": f"{summary.elapsed_seconds:,.1f} s ≈ {per_million:,.0f} s per million (CPU {cpu:,.0f} s)",
             "goal": f"< {GOAL_SECONDS:.0f} s per million", "ratio": round(per_million / GOAL_SECONDS, 2),
             "holds": per_million < GOAL_SECONDS},
            {"measure": f"profile import peak RSS with the pool's workers, {where}, {rows:,} rows",
             "figure": f"{peak:,.0f} MiB", "goal": f"< {GOAL_RSS_MB:.0f} MB",
             "ratio": round(peak * 1.048576 / GOAL_RSS_MB, 2), "holds": peak * 1.048576 < GOAL_RSS_MB},
        ]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/smsconsole-bench"))
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--database-url", help="PostgreSQL database to import into (emptied first); default SQLite")
    parser.add_argument("--no-parallel", action="store_true", help="prepare rows in-process, without the pool")
    parser.add_argument("--rerun", action="store_true", help="import the same file a second time")
    parser.add_argument("--tracemalloc", action="store_true", help="also report peak Python allocations")
    parser.add_argument("--profile", type=Path, help="write cProfile stats of the first import here")
    args = parser.parse_args()

    args.dir.mkdir(parents=True, exist_ok=True)
    csv_path = args.dir / f"profiles-{args.rows}.csv"
    db_path = args.dir / f"import-{args.rows}.db"
    for stale in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
        stale.unlink(missing_ok=True)
    if args.database_url:
        asyncio.run(empty_postgres(args.database_url, db_path))
    started = time.monotonic()
    bad = generate(csv_path, args.rows)
    print(f"generated {csv_path} ({csv_path.stat().st_size / 2**20:,.0f} MiB, {bad:,} bad rows) "
          f"in {time.monotonic() - started:.1f} s; rss {rss_mib():.0f} MiB", flush=True)

    parallel = False if args.no_parallel else None
    if args.tracemalloc:
        tracemalloc.start()
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        summary = profiler.runcall(asyncio.run, run(csv_path, db_path, args.batch_size, args.database_url, parallel))
        profiler.dump_stats(args.profile)
        report("import", summary)
    else:
        summary, cpu, peak, split, server = measured_with_server(csv_path, db_path, args.batch_size,
                                                                 args.database_url, parallel)
        report("import", summary, cpu, peak, split, server)
    assert summary.bad_rows == bad, (summary.bad_rows, bad)
    if args.tracemalloc:
        print(f"peak Python allocations (tracemalloc): {tracemalloc.get_traced_memory()[1] / 2**20:,.0f} MiB")
    if args.rerun:
        again, cpu, peak, split, server = measured_with_server(csv_path, db_path, args.batch_size,
                                                               args.database_url, parallel)
        report("re-import", again, cpu, peak, split, server)
    if not args.database_url:
        print(f"database {db_path.stat().st_size / 2**20:,.0f} MiB", end="; ")
    print(f"errors in {summary.error_file}; load average {', '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"(1, 5, 15 min; {os.cpu_count()} cores, shared)")


if __name__ == "__main__":
    main()
