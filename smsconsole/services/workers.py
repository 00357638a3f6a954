"""The engine's processes as any console reads them (engine/workers.py writes them): each live
process's row, the processes summed for Home and `smsconsole workers`, and each process's binds
(SMPP) described for Home, Providers, the CLI and the connection test."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole import clock
from smsconsole.models import EngineWorker

ROLES = ("scheduler", "worker", "standby")


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


async def live_workers(session: AsyncSession) -> list[WorkerView]:
    """Every process whose row is unexpired: the scheduler first, then by host and pid."""
    rows = (await session.scalars(
        select(EngineWorker).where(EngineWorker.expires_at > clock.now())
        .order_by(EngineWorker.host, EngineWorker.pid).execution_options(populate_existing=True)
    )).all()
    views = [WorkerView(r.host, r.pid, r.role, r.listening, r.claimed_per_minute, r.sent_per_minute,
                        r.started_at, r.heartbeat_at, dict(r.binds or {})) for r in rows]
    return sorted(views, key=lambda v: (ROLES.index(v.role) if v.role in ROLES else len(ROLES), v.host, v.pid))


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
