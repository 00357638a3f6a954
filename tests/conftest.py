"""Shared fixtures: a real database per test (a temp SQLite file, and a fresh PostgreSQL database
too when SMSCONSOLE_TEST_DATABASE_URL is set), migrated to head, with a runtime around it.

Migrating takes about half a second per database, so each test process migrates one template
database once and every test gets a copy of it (a file copy on SQLite, `CREATE DATABASE … TEMPLATE`
on PostgreSQL). A test that needs an empty database — one that migrates it itself, or checks what
the migrations build — says so with `@pytest.mark.fresh_database`."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from smsconsole import clock
from smsconsole.config import Config
from smsconsole.runtime import Runtime
from tests.fakes.smsc import FakeSmsc, running_smsc

PG_URL = os.environ.get("SMSCONSOLE_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]


_templates: dict[str, str] = {}  # backend -> this process's migrated template (a file path or a database name)


async def _migrate_to_head(url: str) -> None:
    from smsconsole.db import open_database

    engine = await open_database(url)
    await engine.dispose()


async def sqlite_template() -> Path:
    """This process's SQLite database migrated to head (made on first use)."""
    if "sqlite" not in _templates:
        path = Path(tempfile.mkdtemp(prefix="smsc-template-")) / "template.db"
        await _migrate_to_head(f"sqlite:///{path}")
        with sqlite3.connect(path) as conn:  # everything in the main file, so a plain copy is whole
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        atexit.register(shutil.rmtree, path.parent, True)
        _templates["sqlite"] = str(path)
    return Path(_templates["sqlite"])


async def copy_sqlite_template(target: Path) -> None:
    """Put a migrated database at `target` (which must not exist yet)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(await sqlite_template(), target)


async def _pg_admin():  # type: ignore[no-untyped-def]
    import asyncpg

    base = make_url(PG_URL)
    return await asyncpg.connect(
        user=base.username or "postgres", password=base.password, host=base.host or "127.0.0.1",
        port=base.port or 5432, database=base.database or "postgres",
    )


async def _pg_template() -> str:
    if "postgresql" not in _templates:
        name = f"smsc_tpl_{uuid.uuid4().hex[:12]}"
        conn = await _pg_admin()
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        atexit.register(_drop_pg_template, name)
        await _migrate_to_head(make_url(PG_URL).set(database=name).render_as_string(hide_password=False))
        _templates["postgresql"] = name
    return _templates["postgresql"]


def _drop_pg_template(name: str) -> None:
    async def drop() -> None:
        conn = await _pg_admin()
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    import asyncpg

    with contextlib.suppress(OSError, asyncpg.PostgresError):  # the server is gone at exit: nothing to clean
        asyncio.run(drop())


async def _create_pg_database(*, migrated: bool = False) -> str:
    name = f"smsc_{uuid.uuid4().hex[:12]}"
    template = f' TEMPLATE "{await _pg_template()}"' if migrated else ""
    conn = await _pg_admin()
    try:
        await conn.execute(f'CREATE DATABASE "{name}"{template}')
    finally:
        await conn.close()
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


async def _drop_pg_database(url: str) -> None:
    target = make_url(url)
    conn = await _pg_admin()
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session", autouse=True)
def _drop_templates() -> Iterator[None]:
    """Drop this process's templates when its tests end (pytest-xdist workers may exit without
    running atexit handlers; those stay registered as a fallback)."""
    yield
    if "postgresql" in _templates:
        _drop_pg_template(_templates.pop("postgresql"))
    if "sqlite" in _templates:
        shutil.rmtree(Path(_templates.pop("sqlite")).parent, ignore_errors=True)


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database migrated to head, or an empty one for a test marked `fresh_database`."""
    migrated = request.node.get_closest_marker("fresh_database") is None
    if request.param == "sqlite":
        path = tmp_path / "smsconsole.db"
        if migrated:
            await copy_sqlite_template(path)
        yield f"sqlite:///{path}"
        return
    url = await _create_pg_database(migrated=migrated)
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


@pytest.fixture
async def smsc() -> AsyncIterator[FakeSmsc]:
    """A loopback SMPP SMSC (tests/fakes/smsc.py), account acme / SMSC_PASSWORD."""
    async with running_smsc() as fake:
        yield fake
