"""The engine's processes: one row per live `smsconsole serve` (or console running the engine),
renewed by heartbeat, and the per-provider rate buckets every worker draws from on PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from smsconsole.models import Base, BigId

__all__ = ["EngineWorker", "ProviderBind", "RateBucket"]


class EngineWorker(Base):
    """A process that runs the engine. `role`: scheduler (holds the engine lease: campaign runs,
    pollers, reconcile), worker (dispatches and serves the listener beside it), standby (waits).
    `token` is the process's dispatch tenure: a worker's outbox writes are fenced on it, and the
    scheduler returns to the queue what a token no live row carries had claimed."""

    __tablename__ = "engine_workers"
    __table_args__ = (Index("ix_engine_workers_expires_at", "expires_at"),)

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str] = mapped_column(String(128))
    pid: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    token: Mapped[str] = mapped_column(String(32), unique=True)
    listening: Mapped[str | None] = mapped_column(String(200))
    claimed_per_minute: Mapped[int] = mapped_column(Integer, default=0)
    sent_per_minute: Mapped[int] = mapped_column(Integer, default=0)
    # provider id (text) → its bind's state in this process (SMPP; engine/workers.bind_report)
    binds: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class RateBucket(Base):
    """A provider's (or provider and sender's) token bucket shared by every worker: `tokens` as
    of `updated` (the database server's clock, seconds since the epoch); negative is debt that the
    worker which took it waits out before sending."""

    __tablename__ = "rate_buckets"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    rate: Mapped[float] = mapped_column(Float)
    tokens: Mapped[float] = mapped_column(Float)
    updated: Mapped[float] = mapped_column(Float)


class ProviderBind(Base):
    """A slot of a provider's bind limit (SMPP: how many engine processes may bind at once), held
    by the dispatch token of the process that binds. A slot whose token no live tenure carries
    (engine/lease.live_tokens) is free; engine/binds.py takes and gives them back."""

    __tablename__ = "provider_binds"

    provider_id: Mapped[int] = mapped_column(BigId, ForeignKey("providers.id", ondelete="CASCADE"),
                                             primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(32))
    taken_at: Mapped[datetime]
