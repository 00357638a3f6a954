"""Profile import at scale: generate a deterministic CSV (default 1,000,000 rows, about 1% of them
bad in the ways real exports are), import it into a fresh SQLite database with
`services.imports.run_import`, and report time and memory. The figures go in bench/README.md.

    .venv/bin/python bench/imports.py                      # 1M rows into /tmp/smsconsole-bench
    .venv/bin/python bench/imports.py --rows 100000 --rerun
    .venv/bin/python bench/imports.py --rows 50000 --profile /tmp/import.prof   # cProfile

Peak RSS is the process's high-water mark (resource.getrusage), so it includes Python, SQLAlchemy
and phonenumbers' metadata; `--tracemalloc` adds the peak of Python allocations (slower run).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from smsconsole.config import Config  # noqa: E402
from smsconsole.runtime import Runtime  # noqa: E402
from smsconsole.services import imports  # noqa: E402
from smsconsole.services.profiles import AudienceDefaults  # noqa: E402

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


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def run(csv_path: Path, db_path: Path, batch_size: int) -> imports.ImportSummary:
    config = Config(config_dir=db_path.parent / "config", data_dir=db_path.parent / "data",
                    database_url=f"sqlite:///{db_path}")
    runtime = await Runtime.open(config)
    last = [0.0]

    def progress(done: int, read: int, size: int) -> None:
        now = time.monotonic()
        if now - last[0] > 5:
            last[0] = now
            print(f"  {done:>9,} rows  {read / max(size, 1):6.1%}  rss {rss_mib():6.0f} MiB", flush=True)

    try:
        return await imports.run_import(runtime.factory, csv_path, "profiles", actor="bench", progress=progress,
                                        batch_size=batch_size, defaults=AudienceDefaults(region="GB"))
    finally:
        await runtime.close()


def report(label: str, summary: imports.ImportSummary) -> None:
    rate = summary.rows_read / summary.elapsed_seconds if summary.elapsed_seconds else 0
    print(f"{label}: {summary.rows_read:,} rows in {summary.elapsed_seconds:,.1f} s ({rate:,.0f} rows/s); "
          f"created {summary.created:,}, updated {summary.updated:,}, unchanged {summary.unchanged:,}, "
          f"bad {summary.bad_rows:,}; peak RSS so far {rss_mib():,.0f} MiB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/smsconsole-bench"))
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--rerun", action="store_true", help="import the same file a second time")
    parser.add_argument("--tracemalloc", action="store_true", help="also report peak Python allocations")
    parser.add_argument("--profile", type=Path, help="write cProfile stats of the first import here")
    args = parser.parse_args()

    args.dir.mkdir(parents=True, exist_ok=True)
    csv_path = args.dir / f"profiles-{args.rows}.csv"
    db_path = args.dir / f"import-{args.rows}.db"
    for stale in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
        stale.unlink(missing_ok=True)
    started = time.monotonic()
    bad = generate(csv_path, args.rows)
    print(f"generated {csv_path} ({csv_path.stat().st_size / 2**20:,.0f} MiB, {bad:,} bad rows) "
          f"in {time.monotonic() - started:.1f} s; rss {rss_mib():.0f} MiB", flush=True)

    if args.tracemalloc:
        tracemalloc.start()
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        summary = profiler.runcall(asyncio.run, run(csv_path, db_path, args.batch_size))
        profiler.dump_stats(args.profile)
    else:
        summary = asyncio.run(run(csv_path, db_path, args.batch_size))
    report("import", summary)
    assert summary.bad_rows == bad, (summary.bad_rows, bad)
    if args.tracemalloc:
        print(f"peak Python allocations (tracemalloc): {tracemalloc.get_traced_memory()[1] / 2**20:,.0f} MiB")
    if args.rerun:
        report("re-import", asyncio.run(run(csv_path, db_path, args.batch_size)))
    print(f"database {db_path.stat().st_size / 2**20:,.0f} MiB; errors in {summary.error_file}")


if __name__ == "__main__":
    main()
