"""Concurrent writers converge: properties merge in the database (none is lost), one person is one
profile (the user id, or the phone when there is no user id), and a property's type is decided once
— within a batch and across concurrent batches. Each writer uses its own session (and connection),
through the ingestion API or the import service, so the concurrency is real on both databases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import sqlalchemy.dialects.postgresql
from alembic import command
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from smsconsole import clock
from smsconsole import db as database
from smsconsole.listener.app import create_app
from smsconsole.models import Event, Profile, UTCDateTime
from smsconsole.runtime import Runtime
from smsconsole.services import api_keys
from smsconsole.services import imports as I
from smsconsole.services import profiles as P
from smsconsole.services.values import coerce, format_datetime, parse_datetime

PHONE = "+14155550100"
WRITERS = 40


class Api:
    def __init__(self, client: httpx.AsyncClient, key: str) -> None:
        self.client, self.key = client, key

    async def post(self, path: str, body: Any) -> httpx.Response:
        return await self.client.post(path, json=body, headers={"Authorization": f"Bearer {self.key}"})

    async def post_all(self, path: str, bodies: list[Any]) -> list[httpx.Response]:
        """Every body at once, each request in its own session of the listener's app."""
        return list(await asyncio.gather(*(self.post(path, body) for body in bodies)))


@pytest.fixture
async def api(runtime: Runtime) -> AsyncIterator[Api]:
    async with runtime.factory() as session, session.begin():
        _, key = await api_keys.create_api_key(session, "concurrency", "test")
    app = create_app(runtime.factory, box=runtime.box, engine_state=lambda: "running")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://listener.test", timeout=60) as client:
        yield Api(client, key)


async def _count(rt: Runtime, model: type, *where: Any) -> int:
    async with rt.factory() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where)) or 0


async def _show(rt: Runtime, key: str) -> P.ProfileDetail:
    async with rt.factory() as session:
        return await P.get_profile(session, key)


def _statuses(responses: list[httpx.Response]) -> list[int]:
    return sorted({r.status_code for r in responses})


# --- properties merge in the database ------------------------------------------------------------


async def test_forty_concurrent_property_updates_to_one_person_all_survive(runtime: Runtime, api: Api) -> None:
    await api.post("/v1/profiles", {"user_id": "u1", "properties": {"plan": "gold"}})
    bodies = [{"user_id": "u1", "properties": {f"p{i}": i}} for i in range(WRITERS)]
    responses = await api.post_all("/v1/profiles", bodies)
    assert _statuses(responses) == [200]
    assert sum(r.json()["updated"] for r in responses) == WRITERS
    assert (await _show(runtime, "u1")).properties == {"plan": "gold", **{f"p{i}": i for i in range(WRITERS)}}


async def test_forty_concurrent_writers_of_a_new_user_id_make_one_profile_with_every_property(
    runtime: Runtime, api: Api,
) -> None:
    bodies = [{"user_id": "new", "name": f"Name {i}", "properties": {f"p{i}": i}} for i in range(WRITERS)]
    responses = await api.post_all("/v1/profiles", bodies)
    assert set(_statuses(responses)) <= {200, 201}
    assert sum(r.json()["created"] for r in responses) == 1
    assert await _count(runtime, Profile) == 1
    profile = await _show(runtime, "new")
    assert profile.properties == {f"p{i}": i for i in range(WRITERS)}
    assert profile.name in {f"Name {i}" for i in range(WRITERS)}


async def test_a_concurrent_update_keeps_the_fields_it_does_not_name(runtime: Runtime, api: Api) -> None:
    await api.post("/v1/profiles", {"user_id": "u1", "name": "Ada"})
    bodies = [{"user_id": "u1", "properties": {f"p{i}": i}} for i in range(WRITERS // 2)]
    bodies.append({"user_id": "u1", "name": "Grace", "timezone": "Europe/Paris"})
    responses = await api.post_all("/v1/profiles", bodies)
    assert _statuses(responses) == [200]
    profile = await _show(runtime, "u1")
    assert (profile.name, profile.timezone) == ("Grace", "Europe/Paris")
    assert len(profile.properties) == WRITERS // 2


async def test_concurrent_opt_ins_and_outs_keep_the_latest_moment(runtime: Runtime, api: Api) -> None:
    await api.post("/v1/profiles", {"user_id": "u1", "phone": PHONE})
    bodies = [{"user_id": "u1", "optin_at" if i % 2 else "optout_at": f"2026-01-01T00:{i:02d}:00Z"}
              for i in range(WRITERS)]
    responses = await api.post_all("/v1/profiles", bodies)
    assert _statuses(responses) == [200]
    profile = await _show(runtime, "u1")
    assert (profile.subscription, format_datetime(profile.subscription_at)) == ("subscribed", "2026-01-01T00:39:00Z")
    assert len(profile.consents) == WRITERS


# --- one person, one profile ---------------------------------------------------------------------


async def test_concurrent_phone_only_creates_make_exactly_one_profile(runtime: Runtime, api: Api) -> None:
    bodies = [{"phone": PHONE, "properties": {f"p{i}": i}} for i in range(WRITERS)]
    responses = await api.post_all("/v1/profiles", bodies)
    assert set(_statuses(responses)) <= {200, 201}
    assert sum(r.json()["created"] for r in responses) == 1
    assert await _count(runtime, Profile) == 1
    assert (await _show(runtime, PHONE)).properties == {f"p{i}": i for i in range(WRITERS)}


async def test_concurrent_events_of_an_unknown_phone_make_exactly_one_profile(runtime: Runtime, api: Api) -> None:
    bodies = [{"phone": PHONE, "name": "visit", "at": f"2026-01-01T00:{i:02d}:00Z"} for i in range(WRITERS)]
    responses = await api.post_all("/v1/events", bodies)
    assert set(_statuses(responses)) <= {200, 201}
    assert await _count(runtime, Profile) == 1
    assert await _count(runtime, Event) == WRITERS
    assert sum(r.json()["profiles_created"] for r in responses) == 1


async def test_two_imports_of_one_file_at_once_make_each_person_once(runtime: Runtime, tmp_path: Path) -> None:
    rows = 400
    lines = ["phone,name,plan"] + [f"+1415555{i:04d},Person {i},gold" for i in range(rows)]
    path = tmp_path / "people.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    defaults = P.AudienceDefaults(region="US", timezone="UTC")
    summaries = await asyncio.gather(*(
        I.run_import(runtime.factory, path, "profiles", actor="tester", batch_size=25, defaults=defaults)
        for _ in range(3)))
    assert await _count(runtime, Profile) == rows
    assert sum(s.created for s in summaries) == rows
    assert [s.bad_rows for s in summaries] == [0, 0, 0]


async def test_the_database_refuses_a_second_phone_only_profile_for_a_phone(runtime: Runtime, api: Api) -> None:
    await api.post("/v1/profiles", {"phone": PHONE})
    await api.post("/v1/profiles", {"user_id": "u1", "phone": PHONE})  # a user id is its own identity
    assert await _count(runtime, Profile) == 2
    now = clock.now()
    with pytest.raises(IntegrityError):
        async with runtime.factory() as session, session.begin():
            session.add(Profile(phone=PHONE, phone_status="valid", created_at=now, updated_at=now))


# --- a property's type is decided once -----------------------------------------------------------


async def _types(rt: Runtime, scope: str = "profile") -> dict[str, str]:
    async with rt.factory() as session:
        return await P.property_types(session, scope)


async def test_the_first_item_of_a_batch_decides_a_new_property_type(runtime: Runtime, api: Api) -> None:
    response = await api.post("/v1/profiles", [{"user_id": "a", "properties": {"score": 1}},
                                               {"user_id": "b", "properties": {"score": "high"}}])
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"index": 1, "field": "properties.score", "reason": "'high' is not a number (property type number)"}]
    assert (await _count(runtime, Profile), await _types(runtime)) == (0, {})

    response = await api.post("/v1/profiles", [{"user_id": "a", "properties": {"level": "high"}},
                                               {"user_id": "b", "properties": {"level": 2}}])
    assert response.status_code == 201
    assert await _types(runtime) == {"level": "string"}
    assert [(await _show(runtime, key)).properties for key in ("a", "b")] == [{"level": "high"}, {"level": "2"}]


async def test_the_first_event_of_a_batch_decides_a_new_event_property_type(runtime: Runtime, api: Api) -> None:
    response = await api.post("/v1/events", [
        {"user_id": "a", "name": "order", "properties": {"amount": 5}},
        {"user_id": "a", "name": "order", "properties": {"amount": "lots"}},
    ])
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"index": 1, "field": "properties.amount", "reason": "'lots' is not a number (property type number)"}]
    assert (await _count(runtime, Event), await _types(runtime, "event:order")) == (0, {})


async def test_concurrent_batches_agree_on_a_new_property_type(runtime: Runtime, api: Api) -> None:
    bodies = [{"user_id": f"u{i}", "properties": {"size": i if i % 2 else f"size {i}"}} for i in range(WRITERS)]
    responses = await api.post_all("/v1/profiles", bodies)
    assert set(_statuses(responses)) <= {201, 422}
    types = await _types(runtime)
    decided = types["size"]
    for body, response in zip(bodies, responses, strict=True):
        if response.status_code == 422:  # only a value the decided type cannot hold is refused
            assert decided == "number" and isinstance(body["properties"]["size"], str)
            assert response.json()["errors"] == [{"index": 0, "field": "properties.size", "reason":
                                                  f"{body['properties']['size']!r} is not a number (property type number)"}]
    async with runtime.factory() as session:
        stored = (await session.scalars(select(Profile.properties))).all()
    assert len(stored) == sum(r.status_code == 201 for r in responses) >= 1
    for properties in stored:
        assert coerce(properties["size"], decided) == properties["size"]
        assert isinstance(properties["size"], str if decided == "string" else int)


async def test_a_writer_that_read_the_types_before_another_defined_them_follows_the_database(
    runtime: Runtime,
) -> None:
    """The race made deterministic: both rows were prepared while `size` and `level` were unknown,
    and another writer has defined them since; the write follows the stored types."""
    defaults = P.AudienceDefaults()
    stale_number = P.prepare_profile({"user_id": "a", "level": 2}, defaults, {})
    stale_text = P.prepare_profile({"user_id": "b", "size": "lots"}, defaults, {})
    async with runtime.factory() as session, session.begin():
        first = [P.prepare_profile({"user_id": "c", "level": "high", "size": 3}, defaults, {})]
        await P.upsert_profiles(session, first, source="api", defaults=defaults)
    async with runtime.factory() as session, session.begin():
        await P.upsert_profiles(session, [stale_number], source="api", defaults=defaults)
    with pytest.raises(P.PropertyTypeConflict) as caught:
        async with runtime.factory() as session, session.begin():
            await P.upsert_profiles(session, [stale_number, stale_text], source="api", defaults=defaults)
    assert caught.value.rows == [(1, "size", "'lots' is not a number (property type number)")]
    assert "lots" not in str(caught.value)
    assert await _types(runtime) == {"level": "string", "size": "number"}
    assert (await _show(runtime, "a")).properties == {"level": "2"}
    assert await _count(runtime, Profile) == 2


# --- the migration merges the duplicates that exist already ---------------------------------------


async def _migrate(url: str, revision: str) -> None:
    engine = database.create_engine(url)
    cfg = database._alembic_config(url)

    def run(sync_conn: Any) -> None:
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, revision)

    try:
        async with engine.begin() as conn:
            await conn.run_sync(run)
    finally:
        await engine.dispose()


# The tables as of revision 0005, with only the columns these rows need (later revisions may add more).
_JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")
_profiles = sa.table("profiles", *(sa.column(c) for c in (
    "id", "user_id", "phone", "phone_raw", "phone_status", "sms_capable", "name", "timezone")),
    sa.column("properties", _JSON), sa.column("subscription"), sa.column("subscription_at", UTCDateTime),
    sa.column("created_at", UTCDateTime), sa.column("updated_at", UTCDateTime))
_consents = sa.table("consents", sa.column("id"), sa.column("profile_id"), sa.column("state"), sa.column("source"),
                     sa.column("at", UTCDateTime), sa.column("phone"))
_events = sa.table("events", sa.column("id"), sa.column("profile_id"), sa.column("name"), sa.column("at", UTCDateTime),
                   sa.column("properties", _JSON), sa.column("dedupe"))
_messages = sa.table("messages", *(sa.column(c) for c in (
    "id", "kind", "priority", "profile_id", "to_number", "body", "encoding", "segments", "state", "attempts")),
    sa.column("created_at", UTCDateTime), sa.column("updated_at", UTCDateTime))


@pytest.mark.fresh_database
async def test_the_migration_merges_phone_only_duplicates_into_the_oldest(database_url: str) -> None:
    await _migrate(database_url, "0005")
    engine = database.create_engine(database_url)
    t1, t2, t3 = (parse_datetime(f"2026-01-0{d}T09:00:00Z") for d in (1, 2, 3))
    base = {"phone_raw": PHONE, "phone_status": "valid", "sms_capable": True, "user_id": None, "timezone": None,
            "name": None, "subscription": "never", "subscription_at": None, "created_at": t1, "updated_at": t1}
    try:
        async with engine.begin() as conn:
            await conn.execute(_profiles.insert(), [
                {**base, "id": 1, "phone": PHONE, "name": "Old", "properties": {"a": 1, "b": 1},
                 "subscription": "subscribed", "subscription_at": t1},
                {**base, "id": 2, "phone": PHONE, "properties": {"b": 2, "c": 3},
                 "subscription": "unsubscribed", "subscription_at": t2, "timezone": "America/New_York"},
                {**base, "id": 3, "phone": PHONE, "name": "Newest", "properties": {"d": 4}, "updated_at": t3},
                {**base, "id": 4, "phone": PHONE, "user_id": "u9", "properties": {}},
                {**base, "id": 5, "phone": "+14155550101", "properties": {"x": 1}},
            ])
            same = {"state": "subscribed", "source": "import", "at": t1, "phone": PHONE}
            await conn.execute(_consents.insert(), [
                {**same, "id": 1, "profile_id": 1}, {**same, "id": 2, "profile_id": 2},  # one record, two copies
                {"id": 3, "state": "unsubscribed", "source": "keyword", "at": t2, "phone": PHONE, "profile_id": 2},
                {"id": 4, "state": "unsubscribed", "source": "keyword", "at": t2, "phone": PHONE, "profile_id": 3},
            ])
            await conn.execute(_events.insert(), [
                {"id": 1, "profile_id": 2, "name": "visit", "at": t2, "properties": {}, "dedupe": "e2"},
                {"id": 2, "profile_id": 3, "name": "visit", "at": t3, "properties": {}, "dedupe": "e3"},
            ])
            await conn.execute(_messages.insert(), [{
                "id": 1, "kind": "test", "priority": 0, "profile_id": 3, "to_number": PHONE, "body": "hi",
                "encoding": "GSM-7", "segments": 1, "state": "queued", "attempts": 0, "created_at": t1,
                "updated_at": t1}])
        await _migrate(database_url, "head")
        async with engine.connect() as conn:
            rows = (await conn.execute(select(_profiles).order_by(_profiles.c.id))).all()
            assert [(r.id, r.user_id) for r in rows] == [(1, None), (4, "u9"), (5, None)]
            kept = rows[0]
            assert (kept.name, kept.timezone) == ("Newest", "America/New_York")
            assert kept.properties == {"a": 1, "b": 2, "c": 3, "d": 4}
            assert (kept.subscription, kept.subscription_at) == ("unsubscribed", t2)
            assert (kept.created_at, kept.updated_at) == (t1, t3)
            moved = (await conn.execute(select(_consents.c.id, _consents.c.profile_id, _consents.c.state)
                                        .order_by(_consents.c.id))).all()
            assert [tuple(r) for r in moved] == [(1, 1, "subscribed"), (3, 1, "unsubscribed")]  # no record twice
            assert (await conn.execute(select(_events.c.profile_id).order_by(_events.c.id))).scalars().all() == [1, 1]
            assert (await conn.execute(select(_messages.c.profile_id))).scalars().all() == [1]
            with pytest.raises(IntegrityError):
                await conn.execute(_profiles.insert(), [{**base, "id": 6, "phone": PHONE, "properties": {}}])
    finally:
        await engine.dispose()
