"""The profile upsert of an import on the databases' bulk paths: `upsert_profiles`' rules, step for
step (types decided, rows merged per person, stored rows found, changes written only where they
change something, consents, on-a-date campaigns told), with the new people and the consents written
by the driver itself — on SQLite one multi-row INSERT … RETURNING per thousand rows, on PostgreSQL one
INSERT … SELECT from the columns passed as arrays (unnest, in the batch's order) — instead of
SQLAlchemy building each row's parameters. The values stored are the ones SQLAlchemy would store:
each passes through its column's own bind processor, and on PostgreSQL reaches its column by the
same assignment as a row of a COPY would (text into a varchar is refused when too long, never cut)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole.models import Consent, Profile
from smsconsole.services import profiles as P

# upsert_profiles runs the rules; this module gives it the bulk writes of new people and consents.
from smsconsole.services.profiles.writing import _Change, upsert_profiles  # noqa: PLC2701

_PROFILE_COLUMNS = ("user_id", "phone", "phone_raw", "phone_status", "phone_reason", "phone_type", "sms_capable",
                    "name", "timezone", "country", "properties", "subscription", "subscription_at", "created_at",
                    "updated_at")
_CONSENT_COLUMNS = ("profile_id", "state", "source", "at", "phone")
_SQLITE_ROWS = 1000  # rows per INSERT: 15 parameters each, under SQLite's 32,766


def _processors(table: Any, columns: Sequence[str], dialect: Any) -> list[Any]:
    return [table.c[column].type._cached_bind_processor(dialect) for column in columns]


def _columns(rows: Sequence[dict[str, Any]], columns: Sequence[str], processors: Sequence[Any]) -> list[list[Any]]:
    """The rows' values as the driver takes them, a list per column: a column with no bind
    processor is taken as it is, and a processed value that repeats (a batch's one `now`, a flag,
    an opt-in time many rows share) is processed once."""
    by_column: list[list[Any]] = []
    for column, process in zip(columns, processors):
        values = [row[column] for row in rows]
        if process is not None:
            memo: dict[Any, Any] = {}
            processed: list[Any] = []
            last: Any = memo  # the value before, and what it became: the same object is looked up once
            found: Any = None
            for value in values:
                if value is last:
                    processed.append(found)
                elif value is None:
                    processed.append(None)
                elif isinstance(value, (dict, list)):
                    processed.append(process(value))
                else:
                    key = (type(value), value)
                    found = memo.get(key, memo)
                    if found is memo:
                        found = memo[key] = process(value)
                    processed.append(found)
                    last = value
            values = processed
        by_column.append(values)
    return by_column


async def _driver(session: AsyncSession) -> Any:
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection


async def _insert_returning(session: AsyncSession, table: Any, columns: Sequence[str], rows: Sequence[dict[str, Any]],
                            conflict: str, returning: str) -> list[tuple[Any, ...]]:
    """INSERT the rows (in their order) ON CONFLICT `conflict` DO NOTHING RETURNING `returning`;
    the driver's errors raised as SQLAlchemy's, as if SQLAlchemy had run the statement."""
    if not rows:
        return []
    try:
        return await _insert_by_driver(session, table, columns, rows, conflict, returning)
    except Exception as exc:
        if isinstance(exc, (SQLAlchemyError, ValueError, UnicodeError, OverflowError)):
            raise
        if type(exc).__module__.split(".")[0] not in ("sqlite3", "asyncpg"):
            raise
        raise DBAPIError.instance(f"INSERT INTO {table.name}", None, exc, type(exc)) from exc


# PostgreSQL array types the processed values are passed in; any other column goes as text[] and
# reaches its column by assignment (varchar(n): refused when too long) or, for JSON, a cast.
_PG_ARRAYS = {"BOOLEAN": "boolean[]", "BIGINT": "bigint[]", "INTEGER": "integer[]",
              "TIMESTAMP WITH TIME ZONE": "timestamptz[]"}


@lru_cache(maxsize=16)
def _pg_insert(table: Any, columns: tuple[str, ...], dialect: Any, conflict: str, returning: str) -> str:
    names = ", ".join(columns)
    arrays, picked = [], []
    for number, column in enumerate(columns, start=1):
        declared = table.c[column].type.compile(dialect=dialect)
        arrays.append(f"${number}::{_PG_ARRAYS.get(declared, 'text[]')}")
        picked.append(f"s.{column}::{declared.lower()}" if declared in ("JSON", "JSONB") else f"s.{column}")
    return (f"INSERT INTO {table.name} ({names}) SELECT {', '.join(picked)} FROM unnest({', '.join(arrays)}) "
            f"WITH ORDINALITY AS s({names}, import_order) ORDER BY s.import_order "
            f"ON CONFLICT {conflict} DO NOTHING RETURNING {returning}")


async def _insert_by_driver(session: AsyncSession, table: Any, columns: Sequence[str], rows: Sequence[dict[str, Any]],
                            conflict: str, returning: str) -> list[tuple[Any, ...]]:
    dialect = session.bind.dialect
    by_column = _columns(rows, columns, _processors(table, columns, dialect))
    driver = await _driver(session)
    names = ", ".join(columns)
    found: list[tuple[Any, ...]] = []
    if dialect.name == "postgresql":
        rows_back = await driver.fetch(_pg_insert(table, tuple(columns), dialect, conflict, returning), *by_column)
        return [tuple(r) for r in rows_back]
    values = list(zip(*by_column))
    marks = "(" + ", ".join("?" * len(columns)) + ")"
    for start in range(0, len(values), _SQLITE_ROWS):
        chunk = values[start:start + _SQLITE_ROWS]
        cursor = await driver.execute(
            f"INSERT INTO {table.name} ({names}) VALUES {', '.join([marks] * len(chunk))} "
            f"ON CONFLICT {conflict} DO NOTHING RETURNING {returning}",
            [value for row in chunk for value in row])
        found.extend(tuple(r) for r in await cursor.fetchall())
        await cursor.close()
    return found


async def _create(session: AsyncSession, changes: Sequence[_Change], defaults: P.AudienceDefaults,
                  now: datetime) -> dict[tuple[str, str], int]:
    """As `profiles.writing._create`: the people not stored yet, in key order (one lock order for
    every writer); one a concurrent writer has just created is skipped and left out of the answer."""
    ordered = sorted(changes, key=lambda c: c.key)
    rows = [c.new_row(defaults, now) for c in ordered]
    inserted = await _insert_returning(session, Profile.__table__, _PROFILE_COLUMNS, rows, "", "id, user_id, phone")
    return {("user_id", user_id) if user_id else ("phone", phone or ""): new_id for new_id, user_id, phone in inserted}


async def _insert_consents(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    await _insert_returning(session, Consent.__table__, _CONSENT_COLUMNS, rows, "(profile_id, state, source, at)", "id")


async def upsert_import_batch(session: AsyncSession, prepared: Sequence[P.PreparedProfile], *, source: str,
                              defaults: P.AudienceDefaults) -> P.UpsertResult:
    """`profiles.upsert_profiles` on the bulk paths (module docstring): the same rules, rows, counts
    and errors, with the new people and the consents written by the driver."""
    return await upsert_profiles(session, prepared, source=source, defaults=defaults, create=_create,
                                 insert_consents=_insert_consents)
