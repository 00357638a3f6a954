"""Group commit for delivery receipts: many callbacks share one transaction.

A verified callback hands its receipts to the committer and waits. The committer takes every
callback waiting (a batch closes when it holds MAX_REPORTS receipts, or WINDOW_SECONDS after its
first callback arrived; callbacks that arrive while a batch commits form the next one; when
callbacks come one at a time — the last batch had no company — a batch commits at once rather
than wait for company that is not coming), applies them in one transaction — one
`apply_status_reports` per provider, so a batch costs a handful of set-based statements whatever
its size — commits, and only then answers each waiting callback.
Nothing is acknowledged before it is committed.

- Duplicates inside one batch are settled once (the receipts service dedupes by its unique key),
  and receipts settle in arrival order, exactly as one transaction per callback would.
- A callback whose receipts make the batch fail before the commit (a value the database refuses)
  does not spoil the others: the batch is rolled back and each of its callbacks is applied again
  alone, in its own transaction, so each gets its own answer.
- When the database is unreachable, or the commit itself fails, every waiting callback gets
  `Unavailable` (the listener answers 503 with Retry-After, so the provider retries) and nothing
  of the batch is written: it was one transaction.

On SQLite batches run one at a time (one writer). On PostgreSQL up to POSTGRES_LINES run at once,
each on its own connection, so one batch's round trips and commit overlap the next batch's; that
changes nothing about the rules — every status UPDATE is guarded by the states it may move from,
the receipts' unique key settles a replay once, and messages with parts are locked in id order —
and two batches that still block each other (a deadlock) are refused and applied callback by
callback, like any refused batch. Each runner holds its connection from batch to batch while
callbacks keep coming. The committer starts a task when a callback arrives; the task ends (and
gives its connection back) as soon as no callback waits, so it needs no start or stop and holds
nothing while the listener is idle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from smsconsole.providers.base import StatusReport
from smsconsole.services.receipts import apply_status_reports

log = logging.getLogger("smsconsole.listener.receipts")

MAX_REPORTS = 2000  # receipts per transaction
WINDOW_SECONDS = 0.002  # how long a batch waits for company after its first callback arrived
POSTGRES_LINES = 2  # batches in flight at once on PostgreSQL
UNAVAILABLE = (OperationalError, InterfaceError, OSError)

Apply = Callable[[AsyncSession, int | None, str | None, Sequence[StatusReport], str], Awaitable[Any]]


class Unavailable(Exception):
    """The batch could not be committed (database unreachable or busy, or the commit failed):
    nothing of it was written; the caller should answer 5xx so the provider retries."""


@dataclass
class _Job:
    provider_id: int | None
    provider_name: str | None
    reports: Sequence[StatusReport]
    future: asyncio.Future[None]
    arrived: float = field(default=0.0)


class GroupCommitter:
    def __init__(self, factory: async_sessionmaker[AsyncSession], *, max_reports: int = MAX_REPORTS,
                 window_seconds: float = WINDOW_SECONDS, via: str = "webhook",
                 apply: Apply = apply_status_reports, lines: int | None = None) -> None:
        self.factory = factory
        engine = factory.kw.get("bind")
        postgres = engine is not None and engine.dialect.name == "postgresql"
        # transactions in flight at once: SQLite has one writer; PostgreSQL overlaps one batch's
        # round trips and commit with the next batch's
        self.lines = max(1, lines if lines is not None else POSTGRES_LINES if postgres else 1)
        self.max_reports = max(1, max_reports)
        self.window_seconds = max(0.0, window_seconds)
        self.via = via
        self._apply = apply
        self._queue: deque[_Job] = deque()
        self._queued_reports = 0
        self._full = asyncio.Event()
        self._runners: set[asyncio.Task[None]] = set()
        self._committing = 0  # runners inside a transaction
        # what the batches looked like (for the log and the benchmark): batches, callbacks, receipts
        self.batches = self.callbacks = self.receipts = 0

    async def submit(self, provider_id: int | None, provider_name: str | None,
                     reports: Sequence[StatusReport]) -> None:
        """Return once `reports` are committed; raise Unavailable when they could not be (nothing
        written), or the error applying them alone raised."""
        loop = asyncio.get_running_loop()
        job = _Job(provider_id, provider_name, list(reports), loop.create_future(), loop.time())
        self._queue.append(job)
        self._queued_reports += len(job.reports)
        if self._queued_reports >= self.max_reports:
            self._full.set()
        if not self._runners or (self._committing >= len(self._runners) and len(self._runners) < self.lines):
            runner = loop.create_task(self._run(), name="smsconsole-receipts-group-commit")
            self._runners.add(runner)
        await job.future  # a caller that goes away cancels its future; its receipts are committed anyway

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        batch: list[_Job] = []
        line = _Line(self.factory)
        try:
            company = False  # whether the last batch had company: then waiting for more pays
            while True:
                if not self._queue:
                    # decided with no await in between: the next callback starts a runner
                    self._runners.discard(asyncio.current_task())  # type: ignore[arg-type]
                    return
                wait = self._queue[0].arrived + self.window_seconds - loop.time()
                if company and wait > 0 and self._queued_reports < self.max_reports:
                    self._full.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(wait):
                            await self._full.wait()
                batch = self._take()
                if not batch:  # another runner took them while this one waited
                    continue
                self._committing += 1
                try:
                    await self._commit(batch, line)
                finally:
                    self._committing -= 1
                company = len(batch) > 1 or bool(self._queue)
                log.debug("receipts batch: %d callbacks, %d receipts", len(batch),
                          sum(len(job.reports) for job in batch))
                batch = []
        except asyncio.CancelledError:  # cancelled with the loop: nobody is left waiting
            self._abandon(batch, "stopped")
            raise
        except Exception as exc:  # a bug here must not leave callbacks waiting forever
            log.error("receipts committer failed: %s", type(exc).__name__)
            self._abandon(batch, f"failed ({type(exc).__name__})")
        finally:
            self._runners.discard(asyncio.current_task())  # type: ignore[arg-type]
            await line.close()

    def _abandon(self, batch: list[_Job], why: str) -> None:
        for job in [*batch, *self._queue]:
            _fail(job, Unavailable(f"the receipts committer {why}"))
        self._queue.clear()
        self._queued_reports = 0

    def _take(self) -> list[_Job]:
        batch: list[_Job] = []
        size = 0
        while self._queue and (not batch or size + len(self._queue[0].reports) <= self.max_reports):
            job = self._queue.popleft()
            batch.append(job)
            size += len(job.reports)
        self._queued_reports -= size
        return batch

    async def _commit(self, batch: list[_Job], line: _Line) -> None:
        try:
            await self._transaction(batch, line)  # a callback whose client went away is committed all the same
        except Unavailable as exc:
            for job in batch:
                _fail(job, exc)
            return
        except Exception as exc:
            if len(batch) == 1:
                _fail(batch[0], exc)
                return
            log.info("receipts batch of %d callbacks refused (%s): applying each alone", len(batch),
                     type(exc).__name__)
            for job in batch:  # each in its own transaction: the bad one gets its own answer
                try:
                    await self._transaction([job], line)
                except Exception as alone:
                    _fail(job, alone)
                else:
                    _succeed(job)
            return
        for job in batch:
            _succeed(job)

    async def _transaction(self, jobs: list[_Job], line: _Line) -> None:
        """Apply `jobs` in one transaction and commit it. Unavailable when the database is
        unreachable or the commit fails; any other error from applying is raised as it is. Either
        way the transaction is rolled back (and the connection given up)."""
        groups: dict[tuple[int | None, str | None], list[StatusReport]] = {}
        for job in jobs:  # one provider's receipts in arrival order, applied together
            groups.setdefault((job.provider_id, job.provider_name), []).extend(job.reports)
        try:
            session = await line.session()
            for (provider_id, provider_name), reports in groups.items():
                await self._apply(session, provider_id, provider_name, reports, self.via)
        except UNAVAILABLE as exc:
            await line.close()
            log.warning("receipts: database unavailable: %s", type(exc).__name__)
            raise Unavailable(type(exc).__name__) from exc
        except BaseException:
            await line.close()
            raise
        try:
            await session.commit()
        except BaseException as exc:
            await line.close()
            if not isinstance(exc, Exception):
                raise
            log.warning("receipts: the commit of %d callbacks failed: %s", len(jobs), type(exc).__name__)
            raise Unavailable(type(exc).__name__) from exc
        self.batches += 1
        self.callbacks += len(jobs)
        self.receipts += sum(len(job.reports) for job in jobs)


class _Line:
    """The connection a runner commits its batches on, held from one batch to the next while
    callbacks keep coming (no pool checkout or liveness ping per batch); given up after any error,
    and opened again for the next batch."""

    def __init__(self, factory: async_sessionmaker[AsyncSession]) -> None:
        self.factory = factory
        self._engine: AsyncEngine | None = factory.kw.get("bind")
        self._connection: AsyncConnection | None = None
        self._session: AsyncSession | None = None

    async def session(self) -> AsyncSession:
        if self._session is None:
            if self._engine is None:  # a factory bound otherwise: a session per batch
                self._session = self.factory()
            else:
                self._connection = await self._engine.connect()
                self._session = self.factory(bind=self._connection)
        return self._session

    async def close(self) -> None:
        session, connection, self._session, self._connection = self._session, self._connection, None, None
        if session is not None:
            with contextlib.suppress(Exception):
                await session.rollback()
            with contextlib.suppress(Exception):
                await session.close()
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()


def _succeed(job: _Job) -> None:
    if not job.future.done():
        job.future.set_result(None)


def _fail(job: _Job, exc: BaseException) -> None:
    if not job.future.done():
        job.future.set_exception(exc)
