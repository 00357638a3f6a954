"""Writing prepared batches, each in its own transaction: failures classified, writes that meet
another writer retried, and the rows the database refuses isolated by writing a batch in halves."""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsconsole.services import profiles as P
from smsconsole.services.imports.bulk import upsert_import_batch
from smsconsole.services.imports.model import ImportAborted, RowProblem
from smsconsole.services.imports.preparing import BatchReader, ReadyRow

BUSY_RETRIES = 6  # writes that meet another writer (locked, deadlock, lost connection): ~3 s in all
CONFLICT_RETRIES = 3  # a unique-key conflict, usually a concurrent import of the same people

logger = logging.getLogger("smsconsole.services.imports")  # one logger name for the whole package


def _failure(exc: BaseException) -> str:
    """What a failed write means: "busy" (another writer or a dropped connection: try again),
    "conflict" (a unique key: a concurrent import of the same people, or this row itself), "row"
    (a value the database or its driver refuses) or "fatal" (the database itself: full, read-only,
    broken)."""
    if isinstance(exc, DBAPIError):
        orig = exc.orig
        state = str(getattr(orig, "sqlstate", None) or "")
        if exc.connection_invalidated or state[:2] in ("08", "40") or state == "55P03":
            return "busy"
        if isinstance(exc, IntegrityError) or state.startswith("23"):
            return "conflict"
        if state.startswith("22"):
            return "row"
        if isinstance(exc, OperationalError) and any(w in str(orig).lower() for w in ("locked", "busy")):
            return "busy"
        if not state and not isinstance(exc, OperationalError) and _caused_by_a_value(exc):
            return "row"
        return "fatal"
    return "row"  # a value the driver could not encode, caught before it reached the database


def _caused_by_a_value(exc: BaseException) -> bool:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        if isinstance(current, (ValueError, UnicodeError, OverflowError)):
            return True
        nested = [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
        current = getattr(current, "orig", None) or current.__cause__ or (nested[0] if nested else None)
    return False


def _database_says(exc: BaseException) -> str:
    """The database's own first line for a failure of the database itself (never a row's values:
    only used for "busy" and "fatal" failures, whose messages name no data)."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
    text = re.sub(r"^<class '[\w.]+'>: ", "", text)
    state = getattr(orig, "sqlstate", None)
    return (f"{text[:200]} (SQLSTATE {state})" if state else text[:200]) or type(orig).__name__


_REFUSED = {
    "conflict": "the database refused this row: it conflicts with a stored row (a unique key or a rule); "
                "re-run the import to retry it",
    "row": "the database refused this row: it holds a value the database cannot store",
}


class BatchWriter:
    """Writes prepared batches, each in its own transaction. A batch that fails for one of its
    rows is written again in halves until the refused rows are alone (each reported as a bad row,
    without its values); one that meets another writer is retried; a failure of the database
    itself stops the import with ImportAborted."""

    def __init__(self, factory: async_sessionmaker[AsyncSession], kind: str, defaults: P.AudienceDefaults,
                 run: BatchReader, *, may_trigger: bool = False) -> None:
        self.factory, self.kind, self.defaults, self.run = factory, kind, defaults, run
        self.may_trigger = may_trigger  # imported events may trigger live campaigns
        self.created = self.updated = self.unchanged = self.recorded = self.duplicates = self.good = 0
        self.queued = 0  # messages live campaigns queued for the imported events

    async def write(self, rows: list[ReadyRow]) -> None:
        await self._store(rows, CONFLICT_RETRIES)

    async def _store(self, rows: list[ReadyRow], conflict_retries: int) -> None:
        try:
            where = f"rows {rows[0].row}–{rows[-1].row}" if len(rows) > 1 else f"row {rows[0].row}"
            await retrying(lambda: self._write(rows), conflict_retries, where=f"while writing {where}",
                            imported=self.good)
        except Refused as refused:
            if len(rows) == 1:
                self.run.report(rows[0].row, rows[0].raw,
                                [RowProblem(rows[0].row, "", _REFUSED[refused.kind], rows[0].raw)])
                return
            middle = len(rows) // 2
            await self._store(rows[:middle], 0)
            await self._store(rows[middle:], 0)

    async def _write(self, rows: list[ReadyRow]) -> None:
        prepared = [r.prepared for r in rows]
        queued = 0
        async with self.factory() as session, session.begin():
            if self.kind == "profiles":
                result = await upsert_import_batch(session, prepared, source="import", defaults=self.defaults)
                counts = (result.created, result.updated, result.unchanged, 0,
                          len(prepared) - result.created - result.updated - result.unchanged)
            else:
                events = await P.record_events(session, prepared, source="import", defaults=self.defaults,
                                               may_trigger=self.may_trigger)
                counts = (events.profiles_created, 0, 0, events.recorded, events.duplicates)
                queued = events.queued
        self.created += counts[0]
        self.updated += counts[1]
        self.unchanged += counts[2]
        self.recorded += counts[3]
        self.duplicates += counts[4]
        self.queued += queued
        self.good += len(rows)
        self.run.warn(rows)


class Refused(Exception):
    def __init__(self, kind: str) -> None:
        self.kind = kind


async def retrying(operation: Callable[[], Any], conflict_retries: int = 0, *, where: str,
                    imported: int | None = None) -> Any:
    """Run a write (a transaction of its own, so a failed try leaves nothing behind) until it
    succeeds: "busy" failures are retried BUSY_RETRIES times, "conflict" ones `conflict_retries`
    times, with a growing, jittered pause; a failure that stays raises Refused (conflict, row)
    or ImportAborted (busy, fatal)."""
    busy_left, conflict_left, pause = BUSY_RETRIES, conflict_retries, 0.05
    while True:
        try:
            return await operation()
        except (SQLAlchemyError, ValueError, UnicodeError, OverflowError) as exc:
            kind = _failure(exc)
            if kind == "busy" and busy_left:
                busy_left -= 1
                logger.info("import %s: the database was busy, retrying (%s)", where, _database_says(exc))
            elif kind == "conflict" and conflict_left:
                conflict_left -= 1
                logger.info("import %s: a unique-key conflict, retrying", where)
            elif kind in ("conflict", "row"):
                raise Refused(kind) from None
            else:
                logger.warning("import stopped: the database failed (%s)", _database_says(exc))
                done = ("nothing was imported" if imported is None
                        else f"{imported:,} rows before them were imported; re-run the same import to complete it")
                raise ImportAborted(f"the database failed {where} ({_database_says(exc)}); {done}") from None
        await asyncio.sleep(pause * (0.5 + random.random()))
        pause = min(pause * 2, 1.0)

