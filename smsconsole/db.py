"""Database URLs, engines and the schema's migration state."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from sqlalchemy import event, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from smsconsole.files import private_dir, private_file, tighten

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class DatabaseError(Exception):
    """The database cannot be used; the message is one line for the user."""


class DatabaseUrlError(DatabaseError):
    """The database URL itself is wrong (bad input, before anything is opened)."""


def normalize_url(url: str) -> str:
    """Accept URLs as users write them: sqlite:///… and postgresql://… get async drivers.
    `sqlite:///path?mode=ro` opens the file read-only (as an SQLite `file:` URI)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseUrlError(f"database URL {url!r} is not a valid URL (e.g. sqlite:///path/file.db or postgresql://user@host/db)") from None
    backend = parsed.get_backend_name()
    driver = parsed.get_driver_name()
    if backend == "sqlite":
        if driver not in ("pysqlite", "aiosqlite"):
            raise DatabaseUrlError(f"unsupported SQLite driver {driver!r}; use sqlite:///path/file.db")
        if not parsed.database or parsed.database == ":memory:":
            raise DatabaseUrlError("an in-memory SQLite database cannot be shared by the engine and consoles; give a file path")
        parsed = parsed.set(drivername="sqlite+aiosqlite")
        if parsed.query.get("mode") == "ro" and not parsed.database.startswith("file:"):
            parsed = _read_only_sqlite(parsed, Path(parsed.database))
    elif backend in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    else:
        raise DatabaseUrlError(f"unsupported database {backend!r}; use SQLite (sqlite:///…) or PostgreSQL (postgresql://…)")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_file(url: str) -> Path | None:
    """The file of an SQLite URL (plain or `file:` URI form); None for other databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database.startswith("file:"):
        return Path(unquote(parsed.database[len("file:"):].split("?", 1)[0]))
    return Path(parsed.database).expanduser()


def _read_only_sqlite(parsed: Any, path: Path) -> Any:
    """The URL opening `path` read-only. When its folder cannot be written and no shared-memory
    file exists, SQLite could not open a WAL database even for reading: it is opened immutable
    (a copy that nobody writes)."""
    query = {"mode": "ro", "uri": "true"}
    folder = path.expanduser().absolute().parent
    if not os.access(folder, os.W_OK) and not Path(f"{path}-shm").exists():
        query["immutable"] = "1"
    return parsed.set(database="file:" + quote(str(path.expanduser().absolute())), query=query)


def _cannot_write(path: Path) -> bool:
    """An existing database file this user may read but not write (or whose folder it cannot
    write, where SQLite keeps the WAL)."""
    return path.exists() and os.access(path, os.R_OK) and (
        not os.access(path, os.W_OK) or not os.access(path.absolute().parent, os.W_OK))


def is_read_only(engine: AsyncEngine) -> bool:
    """Whether the engine opens its SQLite file read-only."""
    return engine.url.get_backend_name() == "sqlite" and engine.url.query.get("mode") == "ro"


def _sqlite_pragmas(read_only: bool) -> Any:
    def set_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        if not read_only:  # a read-only connection cannot change the journal; it reads the WAL as is
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        if not read_only:
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return set_pragmas


def _stop_once(stop: Any) -> Any:
    """aiosqlite (0.22.1) answers a stop by ending its worker thread, so a *second* stop's future
    is never resolved. SQLAlchemy stops a connection whose query was cancelled (terminate: a
    forced stop) while the graceful close it started in parallel stops it again in its `finally`
    and awaits that future: the close task then waits forever and the event loop cannot close
    (a console that does not exit, a test run that hangs in teardown). A stop after the first
    returns None, which close() takes as nothing to wait for."""

    def stop_once(self: Any) -> Any:
        if not self._running:  # a stop is already queued: the worker thread ends there
            return None
        return stop(self)

    stop_once._smsconsole = True  # type: ignore[attr-defined]
    return stop_once


def _fix_aiosqlite_double_stop() -> None:
    import aiosqlite.core  # lazy: start-up (PostgreSQL never needs it)

    if not getattr(aiosqlite.core.Connection.stop, "_smsconsole", False):
        aiosqlite.core.Connection.stop = _stop_once(aiosqlite.core.Connection.stop)  # type: ignore[method-assign]


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for a user URL; SQLite gets WAL, a busy timeout and foreign keys, and a
    new database file (its WAL and shared-memory files follow its mode) is private to the user.
    A file the user may read but not write is opened read-only."""
    async_url = normalize_url(url)
    if is_sqlite(async_url):
        path = sqlite_file(async_url)
        parsed = make_url(async_url)
        if path is not None and parsed.query.get("mode") != "ro":
            if _cannot_write(path):
                async_url = _read_only_sqlite(parsed, path).render_as_string(hide_password=False)
            else:
                private_dir(path.parent)
                private_file(path)
                tighten([path, Path(f"{path}-wal"), Path(f"{path}-shm")])
        read_only = make_url(async_url).query.get("mode") == "ro"
        _fix_aiosqlite_double_stop()
        engine = create_async_engine(async_url, connect_args={"timeout": 10}, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas(read_only))
    else:
        kwargs.setdefault("pool_pre_ping", True)
        engine = create_async_engine(async_url, **kwargs)
    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def describe_connect_error(url: str, exc: BaseException) -> str:
    """One line telling why the database at `url` could not be reached."""
    from smsconsole.secrets import mask_url

    reason = getattr(exc, "orig", None) or exc
    text = str(reason).strip().splitlines()[0] if str(reason).strip() else type(reason).__name__
    return f"cannot open database {mask_url(url)}: {text}"


# --- migrations -------------------------------------------------------------------------------


def _alembic_config(url: str) -> Any:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return cfg


def known_revisions() -> list[str]:
    """The schema revisions this smsconsole ships, oldest first. Read from the migration files'
    names (`0007_idempotent_receipts.py` is revision 0007; each one's down_revision is the one
    before, which tests/integration/test_schema.py checks against Alembic's own reading), so
    opening a database needs no Alembic: it is imported only to migrate."""
    return sorted(path.name[:4] for path in (MIGRATIONS_DIR / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


def head_revision() -> str:
    revisions = known_revisions()
    return revisions[-1] if revisions else ""


@dataclass(frozen=True)
class SchemaState:
    current: str | None
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


async def schema_state(engine: AsyncEngine) -> SchemaState:
    """Where the database's schema is. Raises DatabaseError if a newer smsconsole wrote it."""
    def read(sync_conn: Any) -> str | None:
        # what Alembic's MigrationContext.get_current_revision reads, without importing Alembic
        if not sa_inspect(sync_conn).has_table("alembic_version"):
            return None
        versions = sync_conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        if len(versions) > 1:
            raise DatabaseError(f"the database records several schema heads ({', '.join(sorted(versions))}); "
                                "it was not written by smsconsole")
        return versions[0] if versions else None

    async with engine.connect() as conn:
        current = await conn.run_sync(read)
    if current is not None and current not in known_revisions():
        raise DatabaseError(
            f"the database is at schema revision {current}, written by a newer smsconsole; "
            "upgrade smsconsole to use it"
        )
    return SchemaState(current=current, head=head_revision())


async def upgrade(engine: AsyncEngine) -> SchemaState:
    """Create or upgrade the schema to head (idempotent)."""
    state = await schema_state(engine)
    if state.up_to_date:
        return state
    from alembic import command  # lazy: start-up (only a migration needs Alembic)

    cfg = _alembic_config(engine.url.render_as_string(hide_password=False))

    def run(sync_conn: Any) -> None:
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, "head")

    async with engine.begin() as conn:
        await conn.run_sync(run)
    return await schema_state(engine)


async def open_database(url: str, *, migrate: bool = True) -> AsyncEngine:
    """Open, check and (by default) upgrade the database. Raises DatabaseError in one line."""
    engine = create_engine(url)
    try:
        if migrate and is_read_only(engine):
            state = await asyncio.wait_for(schema_state(engine), timeout=15)
            if not state.up_to_date:
                raise DatabaseError(
                    f"the database {_masked(url)} is read-only and its schema is "
                    f"{'not initialized' if state.current is None else f'at revision {state.current}'} "
                    f"(head is {state.head}); open it once with write access to upgrade it"
                )
        elif migrate:
            await asyncio.wait_for(upgrade(engine), timeout=60)
        else:
            await asyncio.wait_for(schema_state(engine), timeout=15)
    except DatabaseError:
        await engine.dispose()
        raise
    except (OperationalError, DBAPIError, OSError, asyncio.TimeoutError, ConnectionError) as exc:
        await engine.dispose()
        raise DatabaseError(describe_connect_error(url, exc)) from None
    except Exception as exc:  # asyncpg raises its own hierarchy for auth/db-missing errors
        await engine.dispose()
        if type(exc).__module__.startswith(("asyncpg", "sqlite3", "aiosqlite", "socket")):
            raise DatabaseError(describe_connect_error(url, exc)) from None
        raise
    return engine


def _masked(url: str) -> str:
    from smsconsole.secrets import mask_url

    return mask_url(url)


@asynccontextmanager
async def session_scope(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session whose transaction commits on success and rolls back on error."""
    async with factory() as session:
        async with session.begin():
            yield session
