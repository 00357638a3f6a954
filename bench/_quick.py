"""Shared pieces of the quick runs behind `bench/run` (`python -m bench`).

Every benchmark module offers `quick() -> list[dict]`: rows {measure, figure, goal, ratio, holds}
at a size that fits the 2-core machine in about a minute. `python -m bench._quick NAME` imports
`bench.NAME`, calls its quick() and prints the rows as one JSON line (the runner starts one such
process per benchmark, so a crash or a leak stays in it). A PostgreSQL server to run the database
benchmarks on too comes in SMSCONSOLE_BENCH_DATABASE_URL (`python -m bench --database-url URL`).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import sys
import traceback
from collections.abc import Iterator
from typing import Any

MARK = "BENCH-ROWS "  # the child's result line starts with this; anything else it prints is ignored
KEYS = ("measure", "figure", "goal", "ratio", "holds")


def postgres_url() -> str:
    """The PostgreSQL server to run on as well (any database on it), or ""."""
    return os.environ.get("SMSCONSOLE_BENCH_DATABASE_URL", "")


def backend(url: str) -> str:
    return "PostgreSQL" if url.startswith("postgres") else "SQLite"


async def _admin(url: str, statement: str) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    conn = await asyncpg.connect(user=parsed.username or "postgres", password=parsed.password,
                                 host=parsed.host or "127.0.0.1", port=parsed.port or 5432, database="postgres")
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextlib.contextmanager
def scratch_database(url: str, name: str) -> Iterator[str]:
    """A SQLite URL as given; for a PostgreSQL server, a fresh database of its own on that server
    (smsc_quick_NAME_PID), dropped afterwards."""
    if not url.startswith("postgres"):
        yield url
        return
    from sqlalchemy.engine import make_url

    database = f"smsc_quick_{name}_{os.getpid()}"
    asyncio.run(_admin(url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    asyncio.run(_admin(url, f'CREATE DATABASE "{database}"'))
    try:
        yield make_url(url).set(database=database).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


def row(measure: str, figure: str, goal: str, ratio: float | None = None, holds: bool | None = None) -> dict[str, Any]:
    return {"measure": measure, "figure": figure, "goal": goal,
            "ratio": None if ratio is None else round(float(ratio), 2), "holds": holds}


def under(measure: str, figure: str, goal: str, measured: float, limit: float) -> dict[str, Any]:
    """A row for a goal "measured < limit" (lower is better): ratio = measured / limit."""
    return row(measure, figure, goal, measured / limit if limit else None, measured < limit)


def at_least(measure: str, figure: str, goal: str, measured: float, floor: float) -> dict[str, Any]:
    """A row for a goal "measured ≥ floor" (higher is better): ratio = measured / floor."""
    return row(measure, figure, goal, measured / floor if floor else None, measured >= floor)


def failed(name: str, why: str) -> dict[str, Any]:
    return row(f"{name}: not measured", why[:200], "—")


def normalise(name: str, rows: Any) -> list[dict[str, Any]]:
    """The rows as the table wants them; anything malformed becomes a row saying so."""
    if not isinstance(rows, list):
        return [failed(name, f"quick() returned {type(rows).__name__}, not a list")]
    out = []
    for item in rows:
        if not isinstance(item, dict) or "measure" not in item:
            out.append(failed(name, f"quick() returned a malformed row: {item!r}"[:200]))
            continue
        ratio = item.get("ratio")
        holds = item.get("holds")
        out.append({"measure": str(item["measure"]), "figure": str(item.get("figure", "")),
                    "goal": str(item.get("goal", "")),
                    "ratio": round(float(ratio), 2) if isinstance(ratio, (int, float)) and not isinstance(ratio, bool) else None,
                    "holds": holds if isinstance(holds, bool) else None})
    return out


def child(name: str) -> int:
    """Run bench.NAME's quick() and print its rows after MARK on one line."""
    try:
        module = importlib.import_module(f"bench.{name}")
    except Exception as error:  # noqa: BLE001 - a broken module is a row in the table, not a traceback
        traceback.print_exc()
        rows = [failed(name, f"import failed: {type(error).__name__}: {error}")]
    else:
        quick = getattr(module, "quick", None)
        if quick is None:
            rows = [failed(name, "bench/{}.py has no quick() yet".format(name))]
        else:
            try:
                rows = normalise(name, quick())
            except Exception as error:  # noqa: BLE001
                traceback.print_exc()
                rows = [failed(name, f"quick() raised {type(error).__name__}: {error}")]
    sys.stdout.flush()
    print(MARK + json.dumps(rows), flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m bench._quick NAME")
    sys.exit(child(sys.argv[1]))
