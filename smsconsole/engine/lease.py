"""The engine lease: a row naming the one process that runs the engine for a database.

The holder renews it by heartbeat; anyone may take it once it has expired. Acquire and renew are
single conditional statements, so two processes racing on SQLite or PostgreSQL cannot both win.

Every tenure (an acquisition that is not a renewal of a live lease of ours) gets a new random
token. The dispatcher's outbox writes carry `fence(token)`: a process that was paused past its
lease, and has since been replaced, can prove nothing and so writes (and sends) nothing."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, and_, case, delete, exists, or_, select, true, union, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsconsole import clock
from smsconsole.models import EngineLease, EngineWorker

LEASE_NAME = "engine"


@dataclass(frozen=True)
class Holder:
    id: str
    host: str
    pid: int

    @classmethod
    def for_this_process(cls) -> Holder:
        host, pid = socket.gethostname(), os.getpid()
        return cls(id=f"{host}:{pid}:{uuid.uuid4().hex[:8]}", host=host, pid=pid)


@dataclass(frozen=True)
class LeaseInfo:
    holder: str
    host: str
    pid: int
    heartbeat_at: datetime
    expires_at: datetime

    @property
    def alive(self) -> bool:
        return self.expires_at > clock.now()


async def acquire(factory: async_sessionmaker[AsyncSession], holder: Holder, ttl: float) -> str | None:
    """Take the lease if it is free, expired, or already ours. Returns the tenure's token when we
    hold it (the same token when this renews a live lease of ours), else None."""
    now = clock.now()
    expires = now + timedelta(seconds=ttl)
    fresh = uuid.uuid4().hex
    ours_and_live = and_(EngineLease.holder == holder.id, EngineLease.expires_at >= now,
                         EngineLease.token.is_not(None))
    async with factory() as session, session.begin():
        result = await session.execute(
            update(EngineLease)
            .where(EngineLease.name == LEASE_NAME)
            .where(or_(EngineLease.expires_at < now, EngineLease.holder == holder.id))
            .values(holder=holder.id, host=holder.host, pid=holder.pid,
                    acquired_at=case((ours_and_live, EngineLease.acquired_at), else_=now),
                    token=case((ours_and_live, EngineLease.token), else_=fresh),
                    heartbeat_at=now, expires_at=expires)
            .returning(EngineLease.token)
        )
        token = result.scalar_one_or_none()
        if token is not None:
            return token
        found = await session.scalar(select(EngineLease.name).where(EngineLease.name == LEASE_NAME))
    if found is not None:
        return None
    try:
        async with factory() as session, session.begin():
            session.add(EngineLease(name=LEASE_NAME, holder=holder.id, host=holder.host, pid=holder.pid,
                                    token=fresh, acquired_at=now, heartbeat_at=now, expires_at=expires))
    except IntegrityError:
        return None  # someone else inserted it first
    return fresh


def fence(token: str) -> ColumnElement[bool]:
    """True inside a statement only while the tenure `token` still holds a live lease. Put it in
    the WHERE of every outbox write a lease holder makes; a stale holder's write then changes no row."""
    return exists(
        select(EngineLease.name).where(EngineLease.name == LEASE_NAME, EngineLease.token == token,
                                       EngineLease.expires_at > clock.now())
    )


def worker_fence(token: str) -> ColumnElement[bool]:
    """True inside a statement only while the worker whose dispatch token is `token` is alive
    (its engine_workers row unexpired): a worker on PostgreSQL that was paused past its heartbeat,
    and whose claims the scheduler has since recovered, writes (and sends) nothing."""
    return exists(select(EngineWorker.id).where(EngineWorker.token == token, EngineWorker.expires_at > clock.now()))


def live_tokens() -> Select[tuple[str | None]]:
    """The claim tokens that belong to a live tenure: the engine lease's and every live worker's.
    A message claimed (or left sending) under any other token belongs to a process that is gone."""
    now = clock.now()
    return union(
        select(EngineLease.token).where(EngineLease.name == LEASE_NAME, EngineLease.expires_at > now,
                                        EngineLease.token.is_not(None)),
        select(EngineWorker.token).where(EngineWorker.expires_at > now),
    )  # type: ignore[return-value]


@dataclass(frozen=True)
class Tenure:
    """The claim token a dispatcher writes the outbox under: a lease tenure's writes are fenced on
    its lease, a worker's (PostgreSQL, without the lease) on its engine_workers row; a token of
    the dispatcher's own (tests, tools) is not fenced."""

    token: str
    fenced: bool
    worker: bool = False

    def fence(self) -> ColumnElement[bool]:
        if not self.fenced:
            return true()
        return worker_fence(self.token) if self.worker else fence(self.token)


async def renew(factory: async_sessionmaker[AsyncSession], holder: Holder, ttl: float,
                token: str | None = None) -> bool:
    """Extend our lease. False means we lost it (expired and taken, or expired at all when `token`
    is given: a tenure that lapsed is over, even if nobody took it): stop engine work at once."""
    now = clock.now()
    conditions = [EngineLease.name == LEASE_NAME, EngineLease.holder == holder.id]
    if token is not None:
        conditions += [EngineLease.token == token, EngineLease.expires_at >= now]
    async with factory() as session, session.begin():
        result = await session.execute(
            update(EngineLease)
            .where(*conditions)
            .values(heartbeat_at=now, expires_at=now + timedelta(seconds=ttl))
        )
        return result.rowcount == 1


async def release(factory: async_sessionmaker[AsyncSession], holder: Holder) -> None:
    async with factory() as session, session.begin():
        await session.execute(
            delete(EngineLease).where(EngineLease.name == LEASE_NAME, EngineLease.holder == holder.id)
        )


async def current(session: AsyncSession) -> LeaseInfo | None:
    row = await session.scalar(
        select(EngineLease).where(EngineLease.name == LEASE_NAME).execution_options(populate_existing=True)
    )
    if row is None:
        return None
    return LeaseInfo(row.holder, row.host, row.pid, row.heartbeat_at, row.expires_at)
