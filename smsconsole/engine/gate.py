"""The send gate: the write immediately before a request leaves. It marks the messages `sending`
(fenced on the lease tenure) and re-checks the guards against the profiles as they are now, in
one transaction, so a STOP committed while a message waited for its rate limit stops it. Chunks
that reach their request at the same moment share one transaction (group commit).

In the same transaction it settles what the guards decided: suppressed messages get their reason;
a message whose campaign is paused goes back to `held` (guards.Hold) and one inside its
recipient's do-not-disturb hours back to `queued`, due at the window's end (guards.Defer). Held and
deferred messages are left out of the gate's answer, so the dispatcher neither sends them nor
writes an outcome over them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, case, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsconsole import clock
from smsconsole.engine import guards as guard_mod
from smsconsole.engine import many
from smsconsole.engine.jobs import Job
from smsconsole.engine.lease import Tenure
from smsconsole.engine.outcomes import write_turn
from smsconsole.models import Message
from smsconsole.services import rollup_batch

MESSAGES = Message.__table__


class SendGate:
    """Group commit for the send gate: with one request per message, eight chunks in flight cost
    one write, not eight."""

    def __init__(self, factory: async_sessionmaker[AsyncSession], tenure: Tenure,
                 guards: Sequence[guard_mod.Guard]) -> None:
        self.factory = factory
        self.tenure = tenure
        self.guards = guards
        self._waiting: list[tuple[list[Job], asyncio.Future[dict[int, str | None]]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def admit(self, jobs: list[Job]) -> dict[int, str | None]:
        """{message id: None to send | suppression reason} for `jobs` (see `_admit`)."""
        future: asyncio.Future[dict[int, str | None]] = asyncio.get_running_loop().create_future()
        self._waiting.append((jobs, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        await asyncio.sleep(0)  # let every chunk that is ready in this loop turn join the first write
        while self._waiting:
            waiting, self._waiting = self._waiting, []
            try:
                decided = await self._admit([job for jobs, _ in waiting for job in jobs])
            except Exception as exc:
                for _, future in waiting:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for _, future in waiting:
                if not future.done():
                    future.set_result(decided)

    async def _admit(self, jobs: list[Job]) -> dict[int, str | None]:
        """The send gate's write, immediately before requests leave: mark these messages
        `sending` (fenced: only if still claimed by this tenure, or already sending by it on a
        failover), then re-check the guards against the profiles as they are now: suppress those
        that fail, put back those held or deferred. Returns {message id: None to send |
        suppression reason}; a message missing from the result must not be sent (no longer ours,
        e.g. suppressed by a STOP, or put back by the gate itself).
        The write comes first, so on SQLite no STOP can commit between the check and the mark."""
        now = clock.now()
        token = self.tenure.token
        first = [job.row.id for job in jobs if not job.admitted]
        again = [job.row.id for job in jobs if job.admitted]
        admitted: set[int] = set()
        async with write_turn(self.factory), self.factory() as session, session.begin():
            dialect = session.get_bind().dialect
            state = many.by_id_state(MESSAGES.c.state, dialect)
            # claimed → sending changes no rollup: the per-row triggers stand aside (rollup_batch)
            async with rollup_batch.unchanged(session, len(jobs)):
                if first:
                    result = await session.execute(
                        update(MESSAGES)
                        .where(many.in_values(MESSAGES.c.id, first, dialect), state == "claimed",
                               MESSAGES.c.claim_token == token, self.tenure.fence())
                        .values(state="sending", sending_at=now, updated_at=now, attempts=MESSAGES.c.attempts + 1)
                        .returning(MESSAGES.c.id)
                    )
                    admitted.update(result.scalars())
                if again:
                    result = await session.execute(
                        update(MESSAGES)
                        .where(many.in_values(MESSAGES.c.id, again, dialect), state == "sending",
                               MESSAGES.c.claim_token == token, self.tenure.fence())
                        .values(sending_at=now, updated_at=now)
                        .returning(MESSAGES.c.id)
                    )
                    admitted.update(result.scalars())
            if not admitted:
                return {}
            rows = [job.row for job in jobs if job.row.id in admitted]
            context = await guard_mod.load_context(session, rows)
            decided: dict[int, str | None] = {}
            put_back: dict[int, guard_mod.Hold | guard_mod.Defer] = {}
            for row in rows:
                verdict = guard_mod.decide(row, context, self.guards)
                if isinstance(verdict, guard_mod.Hold | guard_mod.Defer):
                    put_back[row.id] = verdict
                else:
                    decided[row.id] = verdict
            suppressed = [message_id for message_id, reason in decided.items() if reason]
            first_ids = set(first)
            if put_back:
                await _put_back(session, put_back, first_ids, now)
            if suppressed:
                await session.execute(
                    update(MESSAGES)
                    .where(MESSAGES.c.id == bindparam("b_id"))
                    .values(state="suppressed", reason=bindparam("b_reason"), finished_at=now, updated_at=now,
                            next_attempt_at=None, error_code=None,
                            attempts=MESSAGES.c.attempts - bindparam("b_undo")),
                    [{"b_id": message_id, "b_reason": decided[message_id], "b_undo": int(message_id in first_ids)}
                     for message_id in suppressed],
                )
        return decided


async def _put_back(session: AsyncSession, verdicts: dict[int, guard_mod.Hold | guard_mod.Defer],
                    first_ids: set[int], now: datetime) -> None:
    """Messages that must not leave now but are not settled: a held one waits for its campaign to
    resume (`held`), a deferred one is queued again, due at `until`. Neither attempt counts (the
    gate raised `attempts` a moment ago); a message never tried before has no `sending_at`."""
    undo = MESSAGES.c.attempts - bindparam("b_undo")
    changes = dict(reason=bindparam("b_reason"), claim_token=None, updated_at=now, attempts=undo,
                   sending_at=case((undo <= 0, None), else_=MESSAGES.c.sending_at))
    held = [{"b_id": message_id, "b_reason": verdict.reason, "b_undo": int(message_id in first_ids)}
            for message_id, verdict in verdicts.items() if isinstance(verdict, guard_mod.Hold)]
    deferred = [{"b_id": message_id, "b_reason": verdict.reason, "b_undo": int(message_id in first_ids),
                 "b_until": verdict.until}
                for message_id, verdict in verdicts.items() if isinstance(verdict, guard_mod.Defer)]
    if held:
        await session.execute(
            update(MESSAGES).where(MESSAGES.c.id == bindparam("b_id")).values(state="held", **changes), held)
    if deferred:
        await session.execute(
            update(MESSAGES).where(MESSAGES.c.id == bindparam("b_id"))
            .values(state="queued", next_attempt_at=bindparam("b_until", type_=MESSAGES.c.next_attempt_at.type),
                    **changes),
            deferred)
