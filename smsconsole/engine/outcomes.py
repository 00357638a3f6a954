"""The dispatcher's outcome writes: a batch's attempts, message changes, message parts and changed
circuits in one transaction, a handful of statements whatever the batch's size. A database error
is retried with backoff, the outcomes kept in memory until they are written; a tenure that lost
its lease writes nothing (the fence)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Dialect, bindparam, cast, column, insert, select, update, values
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsconsole import clock
from smsconsole.engine import many
from smsconsole.engine.circuit import CircuitBreaker, CircuitSnapshot
from smsconsole.engine.jobs import Attempt, Final
from smsconsole.engine.lease import Tenure
from smsconsole.models import Message, MessageAttempt
from smsconsole.models import Provider as ProviderRow
from smsconsole.services import rollup_batch
from smsconsole.services.receipts import record_parts

log = logging.getLogger("smsconsole.dispatch")

RECORD_RETRY_CAP = 5.0  # seconds between tries of an outcome write the database refused
RECORD_GIVE_UP_AFTER_STOP = 30.0  # seconds an outcome write is still retried once the engine stops
MESSAGES = Message.__table__
ATTEMPTS = MessageAttempt.__table__
_WRITE_LOCKS: weakref.WeakKeyDictionary[Any, weakref.WeakKeyDictionary[Any, asyncio.Lock]] = (
    weakref.WeakKeyDictionary())


def write_turn(factory: async_sessionmaker[AsyncSession]) -> contextlib.AbstractAsyncContextManager[Any]:
    """On SQLite, the dispatcher's write transactions (claim, send gate, outcomes) take turns in
    this process: SQLite has one writer, and a transaction that finds the write lock taken waits
    in SQLite's busy handler, which sleeps 1, 2, 5, 10, 15, 20, 25… ms between looks, leaving the
    database idle after the holder commits. Taking turns here, the next one starts the moment the
    last one ends. On PostgreSQL (row locks, many writers) nothing is taken."""
    bind = factory.kw.get("bind")
    if bind is None or bind.dialect.name != "sqlite":
        return contextlib.nullcontext()
    loop = asyncio.get_running_loop()
    by_factory = _WRITE_LOCKS.get(loop)
    if by_factory is None:
        by_factory = _WRITE_LOCKS[loop] = weakref.WeakKeyDictionary()
    lock = by_factory.get(factory)
    if lock is None:
        lock = by_factory[factory] = asyncio.Lock()
    return lock


class OutcomeWriter:
    def __init__(self, factory: async_sessionmaker[AsyncSession], tenure: Tenure, breaker: CircuitBreaker,
                 stopping: asyncio.Event) -> None:
        """`stopping` is set once the dispatcher stops: from then on a write the database refuses
        is given up after RECORD_GIVE_UP_AFTER_STOP seconds."""
        self.factory = factory
        self.tenure = tenure
        self.breaker = breaker
        self.stopping = stopping

    async def record(self, finals: Iterable[Final], attempts: Sequence[Attempt]) -> None:
        """One transaction: every attempt inserted, every message updated (one executemany per
        set of changed columns), message parts and changed circuits written. A database error
        is retried with backoff, the outcomes kept until they are written (a sent batch must not
        be stranded `sending`); a tenure that lost its lease writes nothing (the fence)."""
        finals = list(finals)
        circuits = self.breaker.take_dirty()
        delay = 0.05
        stopped_at: float | None = None
        loop = asyncio.get_running_loop()
        while True:
            try:
                await self._write(finals, attempts, circuits)
                break
            except (OperationalError, InterfaceError, OSError) as exc:
                if self.stopping.is_set():
                    stopped_at = stopped_at or loop.time()
                    if loop.time() - stopped_at > RECORD_GIVE_UP_AFTER_STOP:
                        log.error("gave up writing the outcomes of %d message(s) after the engine stopped: %s; "
                                  "those left sending become unknown at the next start", len(finals), exc)
                        return
                log.warning("writing the outcomes of %d message(s) failed (%s); retrying in %.1fs",
                            len(finals), _first_line(exc), delay)
                await asyncio.sleep(delay)
                delay = min(RECORD_RETRY_CAP, delay * 2)
        for attempt in attempts:
            if attempt.error is not None:
                log.info("message %s via %s: %s %s", attempt.message_id, attempt.provider.name,
                         attempt.error.kind.value, attempt.error)

    async def _write(self, finals: list[Final], attempts: Sequence[Attempt],
                     circuits: dict[int, CircuitSnapshot]) -> None:
        now = clock.now()
        updates: dict[tuple[str, ...], list[tuple[Any, ...]]] = defaultdict(list)
        parts: list[dict[str, Any]] = []
        for job, message_id, change in finals:
            # one statement per set of columns (as the dispatcher orders them): (id, *values)
            updates[tuple(change)].append((message_id, *change.values()))
            if job is not None and job.parts:
                parts.extend(job.parts)
        attempt_rows = [_attempt_row(a) for a in attempts]
        async with write_turn(self.factory), self.factory() as session, session.begin():
            if self.tenure.fenced and not await session.scalar(select(self.tenure.fence())):
                log.warning("this engine's lease is gone: %d outcome(s) not written (the new holder "
                            "treats messages left sending as unknown)", len(finals))
                return
            dialect = session.get_bind().dialect
            if attempt_rows:
                await _insert_attempts(session, dialect, attempt_rows)
            async with rollup_batch.deferred(session, [message_id for _, message_id, _ in finals]):
                for keys, rows in updates.items():
                    if dialect.name == "postgresql":
                        await self._update_set_based(session, keys, rows, now)
                    else:
                        await self._update_sqlite(session, dialect, keys, rows, now)
            if parts:
                await record_parts(session, parts)
            for provider_id, snap in circuits.items():
                await session.execute(
                    update(ProviderRow).where(ProviderRow.id == provider_id).values(
                        circuit_state=snap.state, circuit_failures=snap.failures, circuit_until=snap.until,
                        health=snap.health, health_detail=snap.detail, health_checked_at=now,
                    )
                )

    async def _update_sqlite(self, session: AsyncSession, dialect: Dialect, keys: tuple[str, ...],
                             rows: list[tuple[Any, ...]], now: datetime) -> None:
        """SQLite: one UPDATE … FROM json_each per set of columns (engine/many.py), or an
        executemany where that cannot be (SQLite before 3.33, a value JSON cannot carry)."""
        if many.SET_BASED:
            with contextlib.suppress(TypeError, ValueError):
                payload = many.json_rows(dialect, [MESSAGES.c.id, *(MESSAGES.c[k] for k in keys)], rows)
                statement = many.update_from_json(MESSAGES, keys, self._guard(dialect), {"updated_at": now})
                await session.execute(statement, {many.ROWS: payload})
                return
        statement = (
            update(MESSAGES)
            .where(MESSAGES.c.id == bindparam("b_id"), *self._guard(dialect))
            .values({**{MESSAGES.c[k]: bindparam(f"b_{k}") for k in keys}, MESSAGES.c.updated_at: now})
        )
        names = ("b_id", *(f"b_{k}" for k in keys))
        await session.execute(statement, [dict(zip(names, row, strict=True)) for row in rows])

    def _guard(self, dialect: Dialect) -> tuple[Any, ...]:
        """Only this tenure's claims, still in flight, and only while it holds its lease (the
        state as `many.by_id_state`: the messages are reached by their ids)."""
        return (many.by_id_state(MESSAGES.c.state, dialect).in_(("claimed", "sending")),
                MESSAGES.c.claim_token == self.tenure.token, self.tenure.fence())

    async def _update_set_based(self, session: AsyncSession, keys: tuple[str, ...], params: list[tuple[Any, ...]],
                                now: Any) -> None:
        """PostgreSQL: one UPDATE … FROM (VALUES …) per chunk, not one statement per message, so
        the rollup trigger (per statement) runs once per batch."""
        for start in range(0, len(params), SET_BASED_CHUNK):
            chunk = params[start:start + SET_BASED_CHUNK]
            names = ("id", *keys)
            rows = values(*(column(f"b_{k}", MESSAGES.c[k].type) for k in names), name="outcome").data(chunk)
            await session.execute(
                update(MESSAGES)
                .where(MESSAGES.c.id == rows.c.b_id, *self._guard(session.get_bind().dialect))
                .values({**{MESSAGES.c[k]: cast(rows.c[f"b_{k}"], MESSAGES.c[k].type) for k in keys},
                         MESSAGES.c.updated_at: now}))  # cast: a column of NULLs in VALUES is text


SET_BASED_CHUNK = 1000  # messages per UPDATE … FROM (VALUES …): well under the 32,767 bind parameters
ATTEMPT_COLUMNS = ("message_id", "provider_id", "provider_name", "started_at", "finished_at", "http_status",
                   "outcome", "error_code", "error_message", "retry_after")


async def _insert_attempts(session: AsyncSession, dialect: Dialect, rows: list[tuple[Any, ...]]) -> None:
    """The batch's attempts (`_attempt_row`s): on SQLite one INSERT … SELECT from json_each."""
    if dialect.name == "sqlite" and many.SET_BASED:
        with contextlib.suppress(TypeError, ValueError):
            payload = many.json_rows(dialect, [ATTEMPTS.c[name] for name in ATTEMPT_COLUMNS], rows)
            await session.execute(many.insert_from_json(ATTEMPTS, ATTEMPT_COLUMNS), {many.ROWS: payload})
            return
    await session.execute(insert(ATTEMPTS), [dict(zip(ATTEMPT_COLUMNS, row, strict=True)) for row in rows])


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _attempt_row(a: Attempt) -> tuple[Any, ...]:
    """An attempt's values in ATTEMPT_COLUMNS' order."""
    error = a.error
    http_status = (a.outcome.http_status if a.outcome else None) or (error.http_status if error else None)
    if error is None:
        return (a.message_id, a.provider.id, a.provider.name, a.started_at, a.finished_at, http_status,
                "sent", None, None, None)
    return (a.message_id, a.provider.id, a.provider.name, a.started_at, a.finished_at, http_status,
            error.kind.value, error.code, str(error.message), error.retry_after)
