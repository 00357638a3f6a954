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
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsconsole import clock
from smsconsole.engine.lease import Holder
from smsconsole.models import EngineWorker
from smsconsole.services.workers import ROLES as ROLES
from smsconsole.services.workers import WorkersSummary as WorkersSummary
from smsconsole.services.workers import WorkerView as WorkerView
from smsconsole.services.workers import describe_binds as describe_binds
from smsconsole.services.workers import live_workers as live_workers
from smsconsole.services.workers import summarize as summarize

MINUTE = 60.0
FORGET_AFTER = timedelta(hours=1)  # a dead worker's row is deleted after this (its claims long recovered)


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
