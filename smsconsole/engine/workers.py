"""The engine's processes as the database sees them: every process running the engine keeps a
row in engine_workers (host, pid, role, its dispatch token, claimed and sent in the last minute),
renewed at each heartbeat and deleted on the way out. A row that expires is a dead worker: the
scheduler (the lease holder) returns what its token claimed to the queue and settles what it left
`sending` as unknown (Dispatcher.recover). A renewal that finds its own row expired starts a new
tenure under a new token, like the engine lease (engine/lease.py)."""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsconsole import clock
from smsconsole.engine.lease import Holder
from smsconsole.models import EngineWorker

ROLES = ("scheduler", "worker", "standby")
MINUTE = 60.0
FORGET_AFTER = timedelta(hours=1)  # a dead worker's row is deleted after this (its claims long recovered)


@dataclass(frozen=True)
class WorkerView:
    host: str
    pid: int
    role: str
    listening: str | None
    claimed_per_minute: int
    sent_per_minute: int
    started_at: datetime
    heartbeat_at: datetime
    binds: dict[str, Any] = field(default_factory=dict)  # provider id (text) → bind_report's entry


@dataclass(frozen=True)
class WorkersSummary:
    dispatching: int  # the scheduler and the workers
    standby: int
    claimed_per_minute: int
    sent_per_minute: int

    @property
    def line(self) -> str:
        """"3 workers, 1,200 sent/min; 1 standby"."""
        return (f"{self.dispatching} workers, {self.sent_per_minute:,} sent/min"
                + (f"; {self.standby} standby" if self.standby else ""))


def summarize(workers: list[WorkerView]) -> WorkersSummary:
    """The live processes together: how many dispatch, and what they claimed and sent in the
    last minute."""
    dispatching = [w for w in workers if w.role != "standby"]
    return WorkersSummary(len(dispatching), len(workers) - len(dispatching),
                          sum(w.claimed_per_minute for w in dispatching), sum(w.sent_per_minute for w in dispatching))


class WorkerRegistry:
    """This process's row. `totals` returns (claimed, sent) since the process started."""

    def __init__(self, factory: async_sessionmaker[AsyncSession], holder: Holder, ttl: float,
                 totals: Callable[[], tuple[int, int]] = lambda: (0, 0)) -> None:
        self.factory = factory
        self.holder = holder
        self.ttl = ttl
        self.totals = totals
        self.token = uuid.uuid4().hex
        self.role = "standby"
        self.listening: str | None = None
        self._samples: deque[tuple[float, int, int]] = deque()
        self._registered = False
        self.dispatching = 1  # live processes that dispatch (this one included), as of the last heartbeat
        self.binds: Callable[[], dict[str, Any]] = dict  # this process's binds (bind_report), written each heartbeat

    @property
    def registered(self) -> bool:
        return self._registered

    def per_minute(self) -> tuple[int, int]:
        """Claimed and sent in the last minute (since the start when younger than a minute)."""
        now = time.monotonic()
        claimed, sent = self.totals()
        self._samples.append((now, claimed, sent))
        while len(self._samples) > 1 and self._samples[1][0] <= now - MINUTE:
            self._samples.popleft()
        _, first_claimed, first_sent = self._samples[0]
        return claimed - first_claimed, sent - first_sent

    async def register(self) -> str:
        """A new tenure: a fresh token on a fresh row. Returns the token."""
        now = clock.now()
        self.token = uuid.uuid4().hex
        claimed, sent = self.per_minute()
        async with self.factory() as session, session.begin():
            await session.execute(delete(EngineWorker).where(EngineWorker.id == self.holder.id))
            session.add(EngineWorker(
                id=self.holder.id, host=self.holder.host, pid=self.holder.pid, role=self.role, token=self.token,
                listening=self.listening, claimed_per_minute=claimed, sent_per_minute=sent, binds=self.binds(),
                started_at=now,
                heartbeat_at=now, expires_at=now + timedelta(seconds=self.ttl)))
        self._registered = True
        return self.token

    async def heartbeat(self) -> bool:
        """Renew the row with this tenure's figures. False: it had expired (or was deleted), so
        its claims may have been recovered: the caller starts a new tenure (register())."""
        started = clock.now()
        claimed, sent = self.per_minute()
        async with self.factory() as session, session.begin():
            result = await session.execute(
                update(EngineWorker)
                .where(EngineWorker.id == self.holder.id, EngineWorker.token == self.token,
                       EngineWorker.expires_at >= started)
                .values(role=self.role, listening=self.listening, claimed_per_minute=claimed, sent_per_minute=sent,
                        binds=self.binds(), heartbeat_at=started, expires_at=started + timedelta(seconds=self.ttl))
            )
            self.dispatching = max(1, await session.scalar(
                select(func.count()).select_from(EngineWorker)
                .where(EngineWorker.expires_at > started, EngineWorker.role != "standby")) or 1)
        # committed after the row's end (the statement waited): writes fenced on it were refused meanwhile
        late = clock.now() > started + timedelta(seconds=self.ttl)
        return result.rowcount == 1 and not late

    async def deregister(self) -> None:
        if not self._registered:
            return
        async with self.factory() as session, session.begin():
            await session.execute(delete(EngineWorker).where(EngineWorker.id == self.holder.id,
                                                             EngineWorker.token == self.token))
        self._registered = False


async def live_workers(session: AsyncSession) -> list[WorkerView]:
    """Every process whose row is unexpired: the scheduler first, then by host and pid."""
    rows = (await session.scalars(
        select(EngineWorker).where(EngineWorker.expires_at > clock.now())
        .order_by(EngineWorker.host, EngineWorker.pid).execution_options(populate_existing=True)
    )).all()
    views = [WorkerView(r.host, r.pid, r.role, r.listening, r.claimed_per_minute, r.sent_per_minute,
                        r.started_at, r.heartbeat_at, dict(r.binds or {})) for r in rows]
    return sorted(views, key=lambda v: (ROLES.index(v.role) if v.role in ROLES else len(ROLES), v.host, v.pid))


async def forget_dead(session: AsyncSession) -> int:
    """Delete rows of workers dead for over FORGET_AFTER. Returns how many."""
    result = await session.execute(delete(EngineWorker).where(EngineWorker.expires_at < clock.now() - FORGET_AFTER))
    return result.rowcount or 0


def bind_report(statuses: dict[int, Any]) -> dict[str, Any]:
    """What a process writes of its binds (SMPP `BindStatus` by provider id): JSON-ready."""
    return {str(provider_id): {
        "state": str(getattr(status.state, "value", status.state)), "window": status.window_size,
        "in_flight": status.in_flight, "last_error": status.last_error, "rebinds": status.rebinds,
        "bound_since": status.bound_since.isoformat() if status.bound_since else None,
    } for provider_id, status in statuses.items()}


def describe_binds(workers: list[WorkerView], provider_id: int) -> list[str]:
    """One line per live process bound (or binding) to this provider: "bound, window 3/10 on
    host:pid", with the last error when there is one, or standing by because the provider's bind
    limit is held by others. Empty when no process holds a bind."""
    lines = []
    for worker in workers:
        bind = worker.binds.get(str(provider_id))
        if not bind:
            continue
        if bind.get("state") == "standby":
            lines.append(f"standby on {worker.host}:{worker.pid}: its bind limit is held by other processes")
            continue
        line = f"{bind.get('state', '?')}, window {bind.get('in_flight', 0)}/{bind.get('window', 0)} " \
               f"on {worker.host}:{worker.pid}"
        if bind.get("last_error"):
            line += f"; last error: {bind['last_error']}"
        lines.append(line)
    return lines
