"""Rollups kept once per batch instead of once per row, on SQLite.

SQLite's rollup triggers (migration 0010) run per row: a message going from sending to sent fires
some ten upserts, about 90 µs a message — most of a batching dispatcher's database time. A writer
that updates a batch of messages can instead hold `rollup_defer` (migration 0016: the per-row
update triggers stand aside while it holds a row), take the batch's images away before its UPDATE
and add them back after it: one grouped upsert per rollup table each way, whatever the batch's
size. Same transaction, so readers see the rollups and the rows change together, exactly as with
the triggers (tests/integration/test_rollups.py compares the two).

PostgreSQL's rollup triggers are per statement already; there `deferred` does nothing."""

from __future__ import annotations

import contextlib
import importlib
import json
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from functools import cache

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

_ROLLUPS = importlib.import_module("smsconsole.migrations.versions.0010_campaign_results")
_HOLD = text("INSERT INTO rollup_defer (id) VALUES (1)")
_RELEASE = text("DELETE FROM rollup_defer")
DEFER_FROM = 8  # messages: below this the per-row triggers cost less than the batch's dozen statements


@cache
def _statements(sign: str) -> tuple[TextClause, ...]:
    """Per rollup table, one upsert of the grouped images (times `sign`) of the rows whose ids are
    in the JSON array :ids."""
    out = []
    for table, entries in _ROLLUPS.images("sqlite")["messages"].items():
        keys, values = _ROLLUPS.TABLES[table]
        parts = []
        for condition, key_exprs, value_exprs in entries:
            fill = lambda expr: expr.replace("{r}", "r")  # noqa: E731
            cols = [f"{fill(k)} AS {name}" for k, name in zip(key_exprs, keys, strict=True)]
            cols += [f"{sign}({fill(v)}) AS {name}" for v, name in zip(value_exprs, values, strict=True)]
            # CROSS JOIN: SQLite keeps the ids as the outer loop (a lookup by key each), never
            # a scan of messages
            parts.append(f"SELECT {', '.join(cols)} FROM json_each(:ids) AS batch CROSS JOIN messages r "
                         f"ON r.id = batch.value WHERE {fill(condition)}")
        sums = ", ".join(f"sum({v})" for v in values)
        nonzero = " OR ".join(f"sum({v}) <> 0" for v in values)
        select = (f"SELECT {', '.join(keys)}, 0, {sums} FROM ({' UNION ALL '.join(parts)}) d "
                  f"GROUP BY {', '.join(keys)} HAVING {nonzero}")
        out.append(text(_ROLLUPS._upsert(table, select, "0")))
    return tuple(out)


@asynccontextmanager
async def deferred(session: AsyncSession | AsyncConnection, message_ids: Collection[int]) -> AsyncIterator[None]:
    """Inside the block, UPDATEs of these messages (and only these: every other row's rollups
    would be lost) leave the rollups alone; they are brought up to date once on the way out. Call
    it inside a transaction; on an error the transaction must roll back."""
    dialect = session.dialect if isinstance(session, AsyncConnection) else session.get_bind().dialect
    if dialect.name != "sqlite" or len(message_ids) < DEFER_FROM:
        yield
        return
    ids = {"ids": json.dumps(list(message_ids))}
    await session.execute(_HOLD)
    for statement in _statements("-"):
        await session.execute(statement, ids)
    try:
        yield
    except BaseException:
        # The rows are as the statements that ran left them (SQLite undoes only a failed statement):
        # bring the rollups to them and let go of the hold even so, so a caller that commits after
        # an error (none should) never leaves the triggers standing aside.
        with contextlib.suppress(Exception):
            await _finish(session, ids)
        raise
    await _finish(session, ids)


@asynccontextmanager
async def unchanged(session: AsyncSession | AsyncConnection, rows: int) -> AsyncIterator[None]:
    """Inside the block, UPDATEs leave the rollups alone, for UPDATEs that change no rollup image:
    a claim (queued → claimed) and the send gate's mark (claimed → sending) — `claimed` and
    `sending` count as `queued` in every rollup, and no rollup reads the columns they also set
    (claim_token, sending_at, attempts, updated_at). The per-row update triggers would only
    evaluate their conditions and find nothing to do (some 3 µs a message a statement). `rows`:
    how many rows the block updates (below DEFER_FROM it is not worth the two statements).
    Any other change inside the block would be lost from the rollups: keep it to such UPDATEs."""
    dialect = session.dialect if isinstance(session, AsyncConnection) else session.get_bind().dialect
    if dialect.name != "sqlite" or rows < DEFER_FROM:
        yield
        return
    await session.execute(_HOLD)
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):  # the transaction rolls back; let go even so
            await session.execute(_RELEASE)
        raise
    await session.execute(_RELEASE)


async def _finish(session: AsyncSession | AsyncConnection, ids: dict[str, str]) -> None:
    for statement in _statements("+"):
        await session.execute(statement, ids)
    await session.execute(_RELEASE)
