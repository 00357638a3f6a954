"""The audit log: who changed what, never with secret values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole import clock
from smsconsole.models import AuditEntry


@dataclass(frozen=True)
class AuditView:
    at: datetime
    actor: str
    action: str
    target: str | None
    details: dict[str, Any]


async def record(session: AsyncSession, actor: str, action: str, target: str | None = None,
                 **details: Any) -> None:
    session.add(AuditEntry(at=clock.now(), actor=actor, action=action, target=target, details=details))


async def recent(session: AsyncSession, limit: int = 50) -> list[AuditView]:
    rows = await session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit))
    return [AuditView(r.at, r.actor, r.action, r.target, r.details) for r in rows]
