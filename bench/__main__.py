"""Every benchmark at a small size, one table: `bench/run` or `python -m bench`.

    python -m bench                                  # all of them, SQLite in temp dirs (under 15 minutes)
    python -m bench --only startup,links             # some
    python -m bench --database-url postgresql://postgres@127.0.0.1:5432/postgres   # PostgreSQL too
    python -m bench --json                           # the rows as JSON

Each benchmark's quick() runs in its own process (`python -m bench._quick NAME`) with a timeout,
so one that crashes, hangs or leaks leaves the others' figures alone; its rows are printed as soon
as it finishes. Columns: measure (what and at which size), figure (what was measured here), goal
(the full-size goal of the issue/README), ratio (measured / goal, for goals of the "under" kind
below 1 is good; for "at least" goals above 1 is good) and holds (yes / no / — where the small run
cannot say). bench/README.md keeps the full-size figures.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench._quick import MARK, failed, normalise

ROOT = Path(__file__).resolve().parent.parent
# cheapest first, so a reader sees rows early
BENCHES = ["startup", "preflight", "links", "slow_clients", "conversions", "segments", "results", "campaigns",
           "receipts", "dispatch", "workers", "smpp", "live", "imports"]
TIMEOUT = 300.0


def run_one(name: str, timeout: float, env: dict[str, str]) -> tuple[list[dict[str, object]], float, str]:
    """bench.NAME's quick() rows, the seconds it took, and its captured stderr's tail."""
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "bench._quick", name], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the child and whatever it started (servers, pools)
        out, err = proc.communicate()
        return [failed(name, f"timed out after {timeout:.0f} s")], time.monotonic() - started, err[-2000:]
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # leftovers of a child that exited (a server it forgot)
        except ProcessLookupError:
            pass
    elapsed = time.monotonic() - started
    for line in reversed(out.splitlines()):
        if line.startswith(MARK):
            try:
                return normalise(name, json.loads(line[len(MARK):])), elapsed, err[-2000:]
            except ValueError:
                break
    why = f"exited {proc.returncode} without rows"
    tail = [line for line in err.strip().splitlines() if line.strip()]
    if tail:
        why += f": {tail[-1].strip()}"
    return [failed(name, why)], elapsed, err[-2000:]


def holds_text(holds: object) -> str:
    return "yes" if holds is True else "no" if holds is False else "—"


def table_line(name: str, row: dict[str, object]) -> str:
    ratio = row["ratio"]
    cells = [name, str(row["measure"]), str(row["figure"]), str(row["goal"]),
             "—" if ratio is None else f"{ratio:g}", holds_text(row["holds"])]
    return "| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated, of: {', '.join(BENCHES)}")
    parser.add_argument("--database-url", default="",
                        help="a PostgreSQL server (any database on it) to run the database benchmarks on too")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON (one list) instead of a table")
    parser.add_argument("--timeout", type=float, default=TIMEOUT, help=f"seconds per benchmark (default {TIMEOUT:.0f})")
    args = parser.parse_args(argv)
    names = BENCHES
    if args.only:
        names = [name.strip().removeprefix("bench.").removesuffix(".py") for name in args.only.split(",") if name.strip()]
        unknown = [name for name in names if name not in BENCHES]
        if unknown:
            parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHES)}")
    if args.database_url and not args.database_url.startswith(("postgresql://", "postgres://", "postgresql+asyncpg://")):
        parser.error("--database-url takes a PostgreSQL URL (SQLite runs anyway, in a temporary directory)")
    env = {k: v for k, v in os.environ.items() if k not in ("SMSCONSOLE_TEST_DATABASE_URL", "SMSCONSOLE_BENCH_DATABASE_URL")}
    if args.database_url:
        env["SMSCONSOLE_BENCH_DATABASE_URL"] = args.database_url
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))

    results: list[dict[str, object]] = []
    started = time.monotonic()
    if not args.json:
        print("| bench | measure | figure | goal | ratio | holds |")
        print("|---|---|---|---|---|---|", flush=True)
    for name in names:
        print(f"[bench] {name} …", file=sys.stderr, flush=True)
        rows, elapsed, err = run_one(name, args.timeout, env)
        print(f"[bench] {name}: {elapsed:.0f} s", file=sys.stderr, flush=True)
        if any(str(r["measure"]).endswith("not measured") for r in rows) and err.strip():
            print(err.rstrip(), file=sys.stderr, flush=True)
        for row in rows:
            results.append({"bench": name, **row, "seconds": round(elapsed, 1)})
            if not args.json:
                print(table_line(name, row), flush=True)
    if args.json:
        print(json.dumps(results, indent=1, ensure_ascii=False))
    else:
        counts = {"yes": 0, "no": 0, "—": 0}
        for row in results:
            counts[holds_text(row["holds"])] += 1
        print(f"\n{len(results)} rows in {time.monotonic() - started:.0f} s: {counts['yes']} hold, "
              f"{counts['no']} do not, {counts['—']} without a verdict at this size.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
