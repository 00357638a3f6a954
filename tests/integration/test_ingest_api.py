"""The ingestion API on the engine's listener: API-key auth, profiles and events one at a time or
in batches, a clear 4xx for every bad request with nothing written, and the listener's life with
the engine (started with the lease, port closed when the engine stops)."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from smsconsole.config import Config
from smsconsole.db import session_factory
from smsconsole.engine.runner import Engine, EngineState
from smsconsole.listener import Limits
from smsconsole.listener.app import create_app
from smsconsole.models import Consent, Event, Profile
from smsconsole.runtime import Runtime
from smsconsole.services import api_keys
from smsconsole.services.profiles import get_profile
from tests.conftest import make_config

PHONE = "+14155550100"  # a valid US mobile-or-fixed number


class Api:
    """An app-level client (no socket) with a valid key."""

    def __init__(self, client: httpx.AsyncClient, key: str, prefix: str) -> None:
        self.client, self.key, self.prefix = client, key, prefix

    async def post(self, path: str, body: Any = None, *, headers: dict[str, str] | None = None,
                   content: bytes | None = None) -> httpx.Response:
        sent = {"Authorization": f"Bearer {self.key}", **(headers or {})}
        if content is None:
            return await self.client.post(path, json=body, headers=sent)
        return await self.client.post(path, content=content, headers=sent)


async def _new_key(rt: Runtime, name: str = "tests") -> tuple[api_keys.ApiKeyView, str]:
    async with rt.factory() as session, session.begin():
        return await api_keys.create_api_key(session, name, "test")


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://listener.test")


@pytest.fixture
async def api(runtime: Runtime) -> AsyncIterator[Api]:
    view, key = await _new_key(runtime)
    app = create_app(runtime.factory, box=runtime.box, engine_state=lambda: "running")
    async with _client(app) as client:
        yield Api(client, key, view.prefix)


async def _count(rt: Runtime, model: type) -> int:
    async with rt.factory() as session:
        return await session.scalar(select(func.count()).select_from(model)) or 0


async def _profile(rt: Runtime, key: str) -> Any:
    async with rt.factory() as session:
        return await get_profile(session, key)


# --- authentication ----------------------------------------------------------------------------


async def test_a_request_without_a_key_is_refused_with_a_challenge(api: Api) -> None:
    response = await api.client.post("/v1/profiles", json={"user_id": "u1"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="smsconsole"'
    assert response.json() == {
        "error": "unauthorized",
        "message": "missing API key: send Authorization: Bearer <key>; keys are created in Settings",
    }


@pytest.mark.parametrize(
    ("headers", "message", "challenge"),
    [
        ({"Authorization": "Bearer smsc_abcdefgh_" + "x" * 40}, "invalid or revoked API key", "invalid_token"),
        ({"Authorization": "Bearer not-a-key"}, "invalid or revoked API key", "invalid_token"),
        ({"X-API-Key": "smsc_abcdefgh_" + "x" * 40}, "invalid or revoked API key", "invalid_token"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "use Authorization: Bearer <key> (or X-API-Key: <key>)",
         "invalid_request"),
    ],
)
async def test_a_wrong_key_is_refused(api: Api, headers: dict[str, str], message: str, challenge: str) -> None:
    response = await api.client.post("/v1/profiles", json={"user_id": "u1"}, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"error": "unauthorized", "message": message}
    assert response.headers["www-authenticate"] == f'Bearer realm="smsconsole", error="{challenge}"'


async def test_a_revoked_key_is_refused_and_the_x_api_key_header_works(runtime: Runtime, api: Api) -> None:
    response = await api.client.post("/v1/profiles", json={"user_id": "u1"}, headers={"X-API-Key": api.key})
    assert response.status_code == 201
    async with runtime.factory() as session, session.begin():
        await api_keys.revoke_api_key(session, api.prefix, "test")
    response = await api.post("/v1/profiles", {"user_id": "u2"})
    assert response.status_code == 401
    assert response.json()["message"] == "invalid or revoked API key"
    assert await _count(runtime, Profile) == 1


async def test_using_a_key_marks_it_used(runtime: Runtime, api: Api) -> None:
    await api.post("/v1/events", {"user_id": "u1", "name": "app_open"})
    async with runtime.factory() as session:
        [key] = await api_keys.list_api_keys(session)
    assert key.last_used_at is not None


# --- profiles ----------------------------------------------------------------------------------


async def test_one_profile_is_created_then_updated_then_unchanged(runtime: Runtime, api: Api) -> None:
    body = {"user_id": "u1", "phone": PHONE, "name": "Ada", "properties": {"plan": "gold", "seats": 3}}
    response = await api.post("/v1/profiles", body)
    assert (response.status_code, response.json()) == (201, {"created": 1, "updated": 0, "unchanged": 0, "warnings": []})
    profile = await _profile(runtime, "u1")
    assert (profile.phone, profile.name, profile.country, profile.timezone) == (PHONE, "Ada", "US", "America/Los_Angeles")
    assert profile.properties == {"plan": "gold", "seats": 3}
    assert profile.subscription == "never"

    response = await api.post("/v1/profiles", {"user_id": "u1", "properties": {"seats": 4}})
    assert (response.status_code, response.json()) == (200, {"created": 0, "updated": 1, "unchanged": 0, "warnings": []})
    assert (await _profile(runtime, "u1")).properties == {"plan": "gold", "seats": 4}

    response = await api.post("/v1/profiles", {"user_id": "u1", "properties": {"seats": 4}})
    assert (response.status_code, response.json()) == (200, {"created": 0, "updated": 0, "unchanged": 1, "warnings": []})


@pytest.mark.parametrize("wrap", [lambda items: {"profiles": items}, lambda items: items], ids=["object", "array"])
async def test_a_batch_of_profiles_is_written_together(runtime: Runtime, api: Api, wrap: Any) -> None:
    await api.post("/v1/profiles", {"user_id": "existing", "name": "Old"})
    items = [
        {"user_id": "existing", "name": "New"},
        {"user_id": "b1", "phone": "+44 7911 123456", "timezone": "Europe/London", "optin_at": "2026-01-02T03:04:05Z"},
        {"phone": "+91 98765 43210", "country": "IN"},
    ]
    response = await api.post("/v1/profiles", wrap(items))
    assert (response.status_code, response.json()) == (201, {"created": 2, "updated": 1, "unchanged": 0, "warnings": []})
    assert (await _profile(runtime, "existing")).name == "New"
    b1 = await _profile(runtime, "b1")
    assert (b1.phone, b1.subscription) == ("+447911123456", "subscribed")
    assert [(c.state, c.source) for c in b1.consents] == [("subscribed", "api")]
    assert (await _profile(runtime, "+919876543210")).country == "IN"


async def test_a_profile_with_a_user_id_keeps_an_unusable_phone_with_a_warning(runtime: Runtime, api: Api) -> None:
    response = await api.post("/v1/profiles", {"user_id": "u1", "phone": "+1 555"})
    assert response.status_code == 201
    [warning] = response.json()["warnings"]
    assert (warning["index"], warning["field"]) == (0, "phone")
    assert warning["reason"].endswith("; kept as invalid")
    assert (await _profile(runtime, "u1")).phone_status == "invalid"


# --- events ------------------------------------------------------------------------------------


async def test_events_are_recorded_once_and_create_unknown_people(runtime: Runtime, api: Api) -> None:
    purchase = {"user_id": "u9", "name": "purchase", "at": "2026-02-01T10:00:00Z", "properties": {"amount": 12.5}}
    response = await api.post("/v1/events", purchase)
    assert (response.status_code, response.json()) == (201, {"recorded": 1, "duplicates": 0, "profiles_created": 1})
    response = await api.post("/v1/events", {"events": [purchase, {**purchase, "at": "2026-02-02T10:00:00Z"}]})
    assert (response.status_code, response.json()) == (201, {"recorded": 1, "duplicates": 1, "profiles_created": 0})
    response = await api.post("/v1/events", [purchase])
    assert (response.status_code, response.json()) == (200, {"recorded": 0, "duplicates": 1, "profiles_created": 0})
    profile = await _profile(runtime, "u9")
    assert [(e.name, e.properties) for e in profile.events] == [("purchase", {"amount": 12.5})] * 2
    assert profile.event_count == 2


async def test_an_event_without_a_time_happens_now(runtime: Runtime, api: Api) -> None:
    from smsconsole import clock

    before = clock.now()
    response = await api.post("/v1/events", {"phone": PHONE, "name": "app_open"})
    assert response.status_code == 201
    [event] = (await _profile(runtime, PHONE)).events
    assert before <= event.at <= clock.now()


async def test_sms_optin_through_the_api_subscribes_with_a_consent_record(runtime: Runtime, api: Api) -> None:
    await api.post("/v1/profiles", {"user_id": "u1", "phone": PHONE})
    assert (await _profile(runtime, "u1")).subscription == "never"
    response = await api.post("/v1/events", {"user_id": "u1", "name": "sms_optin", "at": "2026-03-01T09:00:00Z",
                                             "properties": {"form": "checkout"}})
    assert (response.status_code, response.json()) == (201, {"recorded": 1, "duplicates": 0, "profiles_created": 0})
    profile = await _profile(runtime, "u1")
    assert (profile.subscription, profile.reachable) == ("subscribed", True)
    assert [(c.state, c.source, c.at.isoformat()) for c in profile.consents] == [
        ("subscribed", "event", "2026-03-01T09:00:00+00:00")]
    assert [e.name for e in profile.events] == ["sms_optin"]

    # A phone-only opt-in creates the person, subscribed.
    response = await api.post("/v1/events", {"phone": "+14155550111", "name": "sms_optin"})
    assert response.json()["profiles_created"] == 1
    assert (await _profile(runtime, "+14155550111")).subscription == "subscribed"


# --- bad requests: the exact answer, and nothing written -----------------------------------------

JSON = {"Content-Type": "application/json"}


def _invalid(message: str, *errors: tuple[int | None, str | None, str]) -> dict[str, Any]:
    return {"error": "invalid", "message": message,
            "errors": [{"index": i, "field": f, "reason": r} for i, f, r in errors]}


BAD_REQUESTS = [
    # id, path, headers, raw body, status, body
    ("no content type", "/v1/profiles", {}, b'{"user_id": "u1"}', 415,
     {"error": "unsupported_media_type",
      "message": "send a JSON body with Content-Type: application/json (got 'none')"}),
    ("form content type", "/v1/events", {"Content-Type": "application/x-www-form-urlencoded"}, b"user_id=u1", 415,
     {"error": "unsupported_media_type",
      "message": "send a JSON body with Content-Type: application/json (got 'application/x-www-form-urlencoded')"}),
    ("trailing comma", "/v1/profiles", JSON, b'{"user_id": "u1",}', 400,
     {"error": "malformed_json", "message": "Expecting property name enclosed in double quotes at line 1, column 18",
      "line": 1, "column": 18, "position": 17}),
    ("second line", "/v1/events", JSON, b'[\n {"name": "x" "user_id": "u"}]', 400,
     {"error": "malformed_json", "message": "Expecting ',' delimiter at line 2, column 15",
      "line": 2, "column": 15, "position": 16}),
    ("empty body", "/v1/profiles", JSON, b"", 400,
     {"error": "malformed_json", "message": "the body is empty; send a JSON object or array"}),
    ("NaN", "/v1/profiles", JSON, b'{"user_id": "u1", "properties": {"score": NaN}}', 400,
     {"error": "malformed_json", "message": "NaN is not valid JSON"}),
    ("not UTF-8", "/v1/profiles", JSON, b'{"user_id": "\xff"}', 400,
     {"error": "malformed_json", "message": "the body is not UTF-8 (byte 13)", "position": 13}),
    ("a string", "/v1/profiles", JSON, b'"u1"', 422,
     _invalid("the body is not a valid request: must be a JSON object, an array, or {'profiles': [...]}",
              (None, None, "must be a JSON object, an array, or {'profiles': [...]}"))),
    ("batch not an array", "/v1/events", JSON, b'{"events": {"name": "x"}}', 422,
     _invalid("the body is not a valid request: must be an array", (None, "events", "must be an array"))),
    ("empty batch", "/v1/profiles", JSON, b'{"profiles": []}', 422,
     _invalid("the body is not a valid request: is empty; send at least one of the profiles",
              (None, "profiles", "is empty; send at least one of the profiles"))),
    ("field next to the batch", "/v1/profiles", JSON, b'{"profiles": [{"user_id": "u1"}], "source": "crm"}', 422,
     _invalid("the body is not a valid request: is not allowed next to 'profiles'",
              (None, "source", "is not allowed next to 'profiles'"))),
    ("item not an object", "/v1/profiles", JSON, b'[{"user_id": "u1"}, "u2"]', 422,
     _invalid("1 of 2 profiles invalid; nothing was written", (1, None, "must be a JSON object"))),
    ("unknown field", "/v1/profiles", JSON, b'{"user_id": "u1", "plan": "gold", "traits": {}}', 422,
     _invalid("1 of 1 profiles invalid; nothing was written",
              (0, "plan", 'is not a field; put custom attributes in "properties"'),
              (0, "traits", 'is not a field; put custom attributes in "properties"'))),
    ("nobody", "/v1/profiles", JSON, b'{"name": "Ada"}', 422,
     _invalid("1 of 1 profiles invalid; nothing was written", (0, "user_id", "a profile needs a user_id or a valid phone"))),
    ("bad fields", "/v1/profiles", JSON,
     b'{"user_id": "u1", "timezone": "Mars/Olympus", "country": "Narnia", "optin_at": "soon"}', 422,
     _invalid("1 of 1 profiles invalid; nothing was written",
              (0, "timezone", "'Mars/Olympus' is not a time zone (e.g. Europe/London, Asia/Kolkata)"),
              (0, "country", "'Narnia' is not a two-letter country code"),
              (0, "optin_at", "'soon' is not a date (use ISO 8601, e.g. 2026-01-31 or 2026-01-31T09:30:00Z)"))),
    ("properties not an object", "/v1/profiles", JSON, b'{"user_id": "u1", "properties": ["gold"]}', 422,
     _invalid("1 of 1 profiles invalid; nothing was written", (0, "properties", "must be an object"))),
    ("profile field in properties", "/v1/profiles", JSON, b'{"user_id": "u1", "properties": {"phone": "x"}}', 422,
     _invalid("1 of 1 profiles invalid; nothing was written",
              (0, "properties.phone", "is a profile field; set it at the top level"))),
    ("event without who or name", "/v1/events", JSON, b'{"at": "2026-01-01"}', 422,
     _invalid("1 of 1 events invalid; nothing was written",
              (0, "user_id", "an event needs a user_id or a phone"), (0, "name", "is required"))),
    ("event with other APIs' names", "/v1/events", JSON, b'{"user_id": "u1", "event": "buy", "timestamp": 1}', 422,
     _invalid("1 of 1 events invalid; nothing was written",
              (0, "event", "is not a field; did you mean 'name'?"), (0, "timestamp", "is not a field; did you mean 'at'?"),
              (0, "name", "is required"))),
    ("event with a bad time", "/v1/events", JSON, b'{"user_id": "u1", "name": "buy", "at": "yesterday"}', 422,
     _invalid("1 of 1 events invalid; nothing was written",
              (0, "at", "'yesterday' is not a date (use ISO 8601, e.g. 2026-01-31 or 2026-01-31T09:30:00Z)"))),
    ("event properties not an object", "/v1/events", JSON, b'{"user_id": "u1", "name": "buy", "properties": 5}', 422,
     _invalid("1 of 1 events invalid; nothing was written", (0, "properties", "must be an object"))),
]


@pytest.mark.parametrize(("path", "headers", "raw", "status", "expected"),
                         [case[1:] for case in BAD_REQUESTS], ids=[case[0] for case in BAD_REQUESTS])
async def test_a_bad_request_gets_an_exact_answer_and_writes_nothing(
    runtime: Runtime, api: Api, path: str, headers: dict[str, str], raw: bytes, status: int, expected: dict[str, Any],
) -> None:
    response = await api.post(path, headers=headers, content=raw)
    assert (response.status_code, response.json()) == (status, expected)
    assert response.headers["content-type"] == "application/json"
    assert (await _count(runtime, Profile), await _count(runtime, Event)) == (0, 0)


async def test_a_property_of_the_wrong_type_is_refused(runtime: Runtime, api: Api) -> None:
    await api.post("/v1/profiles", {"user_id": "u1", "properties": {"seats": 3}})
    await api.post("/v1/events", {"user_id": "u1", "name": "purchase", "properties": {"amount": 3}})
    response = await api.post("/v1/profiles", {"user_id": "u2", "properties": {"seats": "many"}})
    assert response.json()["errors"] == [
        {"index": 0, "field": "properties.seats", "reason": "'many' is not a number (property type number)"}]
    response = await api.post("/v1/events", {"user_id": "u1", "name": "purchase", "properties": {"amount": "lots"}})
    assert response.json()["errors"] == [
        {"index": 0, "field": "properties.amount", "reason": "'lots' is not a number (property type number)"}]
    assert (await _count(runtime, Profile), await _count(runtime, Event)) == (1, 1)


async def test_one_bad_item_and_nothing_of_the_batch_is_written(runtime: Runtime, api: Api) -> None:
    await api.post("/v1/profiles", {"user_id": "kept", "name": "Before"})
    before = (await _count(runtime, Profile), await _count(runtime, Event), await _count(runtime, Consent))
    profiles = [{"user_id": f"p{i}", "phone": f"+1415555{i:04d}", "optin_at": "2026-01-01"} for i in range(50)]
    profiles[37] = {"user_id": "p37", "timezone": "Nowhere/Land"}
    profiles.append({"user_id": "kept", "name": "After"})
    response = await api.post("/v1/profiles", {"profiles": profiles})
    assert response.status_code == 422
    assert response.json() == _invalid("1 of 51 profiles invalid; nothing was written",
                                       (37, "timezone", "'Nowhere/Land' is not a time zone (e.g. Europe/London, Asia/Kolkata)"))

    events = [{"user_id": f"e{i}", "name": "sms_optin"} for i in range(20)] + [{"user_id": "e20"}]
    response = await api.post("/v1/events", events)
    assert response.status_code == 422
    assert response.json()["errors"] == [{"index": 20, "field": "name", "reason": "is required"}]

    after = (await _count(runtime, Profile), await _count(runtime, Event), await _count(runtime, Consent))
    assert after == before
    assert (await _profile(runtime, "kept")).name == "Before"


async def test_too_many_items_are_refused_before_any_is_read(runtime: Runtime, api: Api) -> None:
    response = await api.post("/v1/events", [{"user_id": "u", "name": f"e{i}"} for i in range(1001)])
    assert (response.status_code, response.json()) == (413, {
        "error": "too_large", "message": "at most 1000 events per request, got 1001; split the batch"})
    response = await api.post("/v1/events", [{"user_id": "u", "name": f"e{i}"} for i in range(1000)])
    assert response.json() == {"recorded": 1000, "duplicates": 0, "profiles_created": 1}


async def test_a_body_over_the_limit_is_refused_while_it_streams(runtime: Runtime) -> None:
    _, key = await _new_key(runtime)
    app = create_app(runtime.factory, limits=Limits(max_body_bytes=4096))
    chunks_read = 0

    async def stream() -> AsyncIterator[bytes]:  # chunked: no Content-Length to go by
        nonlocal chunks_read
        yield b'[{"user_id": "u0", "name": "x"}'
        for i in range(1, 10_000):
            chunks_read += 1
            yield f', {{"user_id": "u{i}", "name": "x"}}'.encode()
        yield b"]"

    headers = {"Authorization": f"Bearer {key}", **JSON}
    async with _client(app) as client:
        response = await client.post("/v1/profiles", content=stream(), headers=headers)
        assert (response.status_code, response.json()) == (413, {
            "error": "too_large", "message": "the body is over 4096 bytes; send smaller batches"})
        assert chunks_read < 200  # stopped early, not after reading everything
        declared = await client.post("/v1/profiles", content=b" " * 4097, headers=headers)
        assert declared.status_code == 413
    assert await _count(runtime, Profile) == 0


async def test_the_default_body_limit_is_one_mebibyte(runtime: Runtime, api: Api) -> None:
    padding = " " * (1_048_576 - len(b'{"user_id": "u1"}'))
    response = await api.post("/v1/profiles", headers=JSON, content=b'{"user_id": "u1"}' + padding.encode())
    assert response.status_code == 201
    response = await api.post("/v1/profiles", headers=JSON, content=b'{"user_id": "u2"}' + padding.encode() + b" ")
    assert response.status_code == 413


# --- routing, health, logs ---------------------------------------------------------------------


async def test_unknown_paths_and_wrong_methods_answer_json(api: Api) -> None:
    response = await api.client.get("/v1/nothing")
    assert (response.status_code, response.json()) == (404, {"error": "not_found", "message": "no endpoint GET /v1/nothing"})
    response = await api.client.get("/v1/profiles")
    assert (response.status_code, response.json()) == (405, {
        "error": "method_not_allowed", "message": "GET is not allowed on /v1/profiles; use POST"})
    assert response.headers["allow"] == "POST"


async def test_health_needs_no_key_and_reports_the_database(runtime: Runtime, api: Api, tmp_path: Path) -> None:
    response = await api.client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok", "engine": "running", "database": "ok"})

    broken = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
    try:
        async with _client(create_app(session_factory(broken), engine_state=lambda: "running")) as client:
            response = await client.get("/healthz")
    finally:
        await broken.dispose()
    assert (response.status_code, response.json()) == (503, {
        "status": "unavailable", "engine": "running", "database": "unavailable"})


async def test_each_request_is_logged_in_one_line_without_keys_or_personal_data(
    api: Api, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="smsconsole")
    await api.post("/v1/profiles", [{"user_id": "secret-user", "phone": PHONE, "name": "Ada Lovelace"}] * 2)
    await api.post("/v1/profiles", {"user_id": "secret-user", "timezone": "Bad/Zone"})
    await api.client.post("/v1/events", json={"user_id": "x"}, headers={"Authorization": "Bearer smsc_zzzzzzzz_" + "y" * 40})
    lines = [r.getMessage() for r in caplog.records if r.name == "smsconsole.listener"]
    assert [line.rsplit(" ", 1)[0] for line in lines] == [
        f"POST /v1/profiles 201 items=2 key={api.prefix}",
        f"POST /v1/profiles 422 items=1 key={api.prefix}",
        "POST /v1/events 401 items=- key=-",
    ]
    logged = caplog.text
    for private in (api.key, api.key.split("_", 2)[2], "y" * 40, "secret-user", PHONE, "Ada", "Bad/Zone"):
        assert private not in logged


# --- the listener inside the engine ------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def _until(predicate: Any, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def test_the_engine_serves_the_api_over_tcp_while_it_runs(runtime: Runtime, tmp_path: Path,
                                                                database_url: str) -> None:
    _, key = await _new_key(runtime)
    port = _free_port()
    config: Config = make_config(tmp_path, database_url, listen_port=port)
    engine = Engine(runtime.factory, runtime.box, config)
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            async def healthy() -> bool:
                try:
                    return (await client.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await _until(healthy)
            assert (await client.get("/healthz")).json() == {"status": "ok", "engine": "running", "database": "ok"}
            response = await client.post("/v1/profiles", headers={"Authorization": f"Bearer {key}"},
                                         content=json.dumps({"user_id": "tcp-1", "phone": PHONE}),
                                         )
            assert response.status_code == 415  # no content type: refused, nothing written
            response = await client.post("/v1/profiles", headers={"Authorization": f"Bearer {key}"},
                                         json={"user_id": "tcp-1", "phone": PHONE, "optin_at": "2026-01-01"})
            assert (response.status_code, response.json()) == (201, {"created": 1, "updated": 0, "unchanged": 0,
                                                                     "warnings": []})
        profile = await _profile(runtime, "tcp-1")
        assert (profile.phone, profile.subscription) == (PHONE, "subscribed")
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=20)
    assert engine.state is EngineState.STOPPED
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(base_url=base, timeout=2) as client:
            await client.get("/healthz")


async def test_a_port_in_use_is_logged_and_the_engine_runs_without_the_listener(
    runtime: Runtime, tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="smsconsole")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        engine = Engine(runtime.factory, runtime.box, make_config(tmp_path, database_url, listen_port=port))
        stop = asyncio.Event()
        task = asyncio.create_task(engine.run(stop))
        try:
            async def running() -> bool:
                return engine.state is EngineState.RUNNING and any(
                    "cannot listen" in r.getMessage() for r in caplog.records)

            await _until(running)
            await asyncio.sleep(0.3)
            assert engine.state is EngineState.RUNNING
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=20)
    [error] = [r for r in caplog.records if "cannot listen" in r.getMessage()]
    assert error.levelno == logging.ERROR
    assert error.getMessage() == (
        f"listener: cannot listen on 127.0.0.1:{port}: Address already in use; the engine runs without the "
        "webhook/ingestion listener (free the port or change listen_port)")


async def test_the_listener_closes_when_the_engine_loses_its_lease(runtime: Runtime, tmp_path: Path,
                                                                   database_url: str) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from smsconsole import clock
    from smsconsole.models import EngineLease

    port = _free_port()
    engine = Engine(runtime.factory, runtime.box, make_config(tmp_path, database_url, listen_port=port))
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))

    async def answers() -> bool:
        try:
            async with httpx.AsyncClient(timeout=2) as client:
                return (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
        except httpx.TransportError:
            return False

    async def refuses() -> bool:
        return engine.state is EngineState.STANDBY and not await answers()

    try:
        await _until(answers)
        async with runtime.factory() as session, session.begin():
            await session.execute(update(EngineLease).values(holder="other:1:x", host="other", pid=1,
                                                             expires_at=clock.now() + timedelta(hours=1)))
        await _until(refuses)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=20)
