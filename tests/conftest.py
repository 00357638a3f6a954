"""Shared fixtures: a real database per test (a temp SQLite file, and a fresh PostgreSQL database
too when SMSCONSOLE_TEST_DATABASE_URL is set), migrated to head, with a runtime around it."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from smsconsole import clock
from smsconsole.config import Config
from smsconsole.runtime import Runtime

PG_URL = os.environ.get("SMSCONSOLE_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]


async def _create_pg_database() -> str:
    import asyncpg

    base = make_url(PG_URL)
    name = f"smsc_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(
        user=base.username or "postgres", password=base.password, host=base.host or "127.0.0.1",
        port=base.port or 5432, database=base.database or "postgres",
    )
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return base.set(database=name).render_as_string(hide_password=False)


async def _drop_pg_database(url: str) -> None:
    import asyncpg

    target = make_url(url)
    base = make_url(PG_URL)
    conn = await asyncpg.connect(
        user=base.username or "postgres", password=base.password, host=base.host or "127.0.0.1",
        port=base.port or 5432, database=base.database or "postgres",
    )
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'smsconsole.db'}"
        return
    url = await _create_pg_database()
    try:
        yield url
    finally:
        await _drop_pg_database(url)


def make_config(tmp_path: Path, database_url: str, **overrides: object) -> Config:
    values: dict[str, object] = {
        "config_dir": tmp_path / "config",
        "data_dir": tmp_path / "data",
        "database_url": database_url,
        "lease_ttl_seconds": 2.0,
        "heartbeat_seconds": 0.3,
        "dispatch_interval_seconds": 0.05,
        "send_timeout_seconds": 2.0,
    }
    values.update(overrides)
    return Config(**values)  # type: ignore[arg-type]


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> Config:
    return make_config(tmp_path, database_url)


@pytest.fixture
async def runtime(config: Config) -> AsyncIterator[Runtime]:
    rt = await Runtime.open(config)
    try:
        yield rt
    finally:
        await rt.close()


@pytest.fixture(autouse=True)
def _unfrozen_clock() -> object:
    yield
    clock.freeze(None)
