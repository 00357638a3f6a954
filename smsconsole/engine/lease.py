"""The engine lease: a row naming the one process that runs the engine for a database.

The holder renews it by heartbeat; anyone may take it once it has expired. Acquire and renew are
single conditional statements, so two processes racing on SQLite or PostgreSQL cannot both win."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsconsole import clock
from smsconsole.models import EngineLease

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


async def acquire(factory: async_sessionmaker[AsyncSession], holder: Holder, ttl: float) -> bool:
    """Take the lease if it is free, expired, or already ours. True when we hold it."""
    now = clock.now()
    expires = now + timedelta(seconds=ttl)
    async with factory() as session, session.begin():
        result = await session.execute(
            update(EngineLease)
            .where(EngineLease.name == LEASE_NAME)
            .where(or_(EngineLease.expires_at < now, EngineLease.holder == holder.id))
            .values(holder=holder.id, host=holder.host, pid=holder.pid, acquired_at=now,
                    heartbeat_at=now, expires_at=expires)
        )
        if result.rowcount == 1:
            return True
        exists = await session.scalar(select(EngineLease.name).where(EngineLease.name == LEASE_NAME))
    if exists is not None:
        return False
    try:
        async with factory() as session, session.begin():
            session.add(EngineLease(name=LEASE_NAME, holder=holder.id, host=holder.host, pid=holder.pid,
                                    acquired_at=now, heartbeat_at=now, expires_at=expires))
    except IntegrityError:
        return False  # someone else inserted it first
    return True


async def renew(factory: async_sessionmaker[AsyncSession], holder: Holder, ttl: float) -> bool:
    """Extend our lease. False means we lost it (expired and taken): stop engine work at once."""
    now = clock.now()
    async with factory() as session, session.begin():
        result = await session.execute(
            update(EngineLease)
            .where(EngineLease.name == LEASE_NAME, EngineLease.holder == holder.id)
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
