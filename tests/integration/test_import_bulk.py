"""The imports' bulk writes (`imports.bulk`: the driver's own multi-row INSERT on SQLite, one
INSERT … SELECT from arrays on PostgreSQL) store what `upsert_profiles` stores through SQLAlchemy,
column for column — text of every length the columns take, None, booleans, every property type,
opt-ins and opt-outs — and a value too long for its column is refused, never cut."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete
from sqlalchemy.exc import DBAPIError

from smsconsole.models import Consent, Profile
from smsconsole.runtime import Runtime
from smsconsole.services import profiles as P
from smsconsole.services.imports.bulk import upsert_import_batch
from tests.integration.test_import_fast_path import _stored as stored_audience

GB = P.AudienceDefaults(region="GB", timezone="UTC")
MOMENT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
PROPERTIES: list[dict[str, Any]] = [{}, {"plan": "pro"}, {"score": 7, "ratio": 0.25, "vip": True, "off": False},
                                    {"tags": ["a", "b"], "when": "2026-01-31T00:00:00Z"},
                                    {"text": "quote \" and \\ and ünïcode ☃ and 'single'"}]


def _people(prefix: str) -> list[P.PreparedProfile]:
    people = []
    for i in range(40):
        phone = f"+447400{i:06d}" if i % 3 else None
        people.append(P.PreparedProfile(
            user_id=f"{prefix}{i}" if i % 5 else None if phone else f"{prefix}{i}",
            phone=phone, phone_raw=phone, phone_status="valid" if phone else "missing", phone_reason=None,
            phone_type="mobile" if phone else None, sms_capable=bool(phone),
            name=("N" * 200 if i == 7 else f"Name {i} ☃") if i % 4 else None,
            timezone="Europe/London" if i % 2 else None, country="GB" if phone else None,
            properties=PROPERTIES[i % len(PROPERTIES)], property_types={},
            optin_at=MOMENT + timedelta(minutes=i) if i % 3 == 1 else None,
            optout_at=MOMENT + timedelta(hours=i) if i % 6 == 2 else None))
    return people


async def _stored(runtime: Runtime) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every profile's and consent's stored columns, sorted (the fast-path test's reading of them)."""
    profiles, consents, _types = await stored_audience(runtime)
    return profiles, consents


async def _wipe(runtime: Runtime) -> None:
    async with runtime.factory() as session, session.begin():
        await session.execute(delete(Consent))
        await session.execute(delete(Profile))


async def test_the_bulk_writes_store_what_sqlalchemy_stores(runtime: Runtime) -> None:
    outcomes = []
    for write in (upsert_import_batch, P.upsert_profiles):
        await _wipe(runtime)
        people = _people("u")
        async with runtime.factory() as session, session.begin():
            result = await write(session, people, source="import", defaults=GB)
        outcomes.append(((result.created, result.updated, result.unchanged), await _stored(runtime)))
    assert outcomes[0] == outcomes[1]
    (created, _, _), (profiles, consents) = outcomes[0]
    assert created == len(profiles) > 30 and len(consents) > 10


async def test_a_value_too_long_for_its_column_is_refused_not_cut(runtime: Runtime) -> None:
    if runtime.db.dialect.name != "postgresql":
        pytest.skip("SQLite does not hold text to a declared length")
    person = _people("long")[1]
    for write in (upsert_import_batch, P.upsert_profiles):
        for too_long in ({"name": "N" * 201}, {"country": "GBR"}, {"user_id": "u" * 129}):
            with pytest.raises(DBAPIError):
                async with runtime.factory() as session, session.begin():
                    await write(session, [P.PreparedProfile(**{**person.__dict__, **too_long})], source="import",
                                defaults=GB)
    assert (await _stored(runtime))[0] == []
