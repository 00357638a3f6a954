"""The listener's OpenAPI description against the app itself: schemathesis generates valid and
invalid requests for every operation — /v1 (with a valid API key), the provider callbacks (also
for a real provider), the short-link redirect and /healthz — and checks that no answer is a
5xx, every status is documented and every body matches its schema. Deterministic (derandomized
Hypothesis, no example database) and modest (a few dozen examples per operation and mode)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.pool import NullPool

from smsconsole.db import create_engine, session_factory
from smsconsole.listener.app import create_app
from smsconsole.listener.openapi import spec
from smsconsole.runtime import Runtime
from smsconsole.services import api_keys, groups, providers

MAX_EXAMPLES = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
GOOD_MESSAGE = {"to": {"phone": "+447400123401"}, "body": "Order {{ data.order }} shipped", "data": {"order": "A-17"},
                "group": "main", "escalate": [{"after_minutes": 5, "webhook": "https://ops.example.com/alert"}]}
V1 = ("/v1/profiles", "/v1/events", "/v1/messages", "/v1/messages/{message_id}")
CALLBACKS = ("/callbacks/{provider}/status", "/callbacks/{provider}/inbound")
FUZZED = (*V1, *CALLBACKS, "/{code}", "/healthz")  # every route but the description itself


def test_the_description_covers_every_route() -> None:
    paths = spec()["paths"]
    assert set(paths) == {"/healthz", "/openapi.json", *V1, "/callbacks/{provider}/status",
                          "/callbacks/{provider}/inbound", "/{code}"}
    assert spec()["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"


async def test_the_app_serves_its_description(runtime: Runtime) -> None:
    import httpx

    app = create_app(runtime.factory, box=runtime.box, engine_state=lambda: "running")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://listener.test") as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200 and response.json() == spec()


def _fuzz(database_url: str, runtime: Runtime, key: str) -> tuple[list[str], dict[str, int]]:
    """Every /v1 operation, positive and negative; the failures as text (none expected) and how
    many answers each status got."""
    engine = create_engine(database_url, poolclass=NullPool)  # each request runs in its own event loop
    app = create_app(session_factory(engine), box=runtime.box, engine_state=lambda: "running")
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    statuses: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path not in FUZZED:
            continue
        auth = {"Authorization": f"Bearer {key}"}
        strategies = [(mode.value, operation.as_strategy(generation_mode=mode, headers=auth))
                      for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
        # Random phones are rarely valid: also a good message (random Idempotency-Keys) and reading it.
        if operation.path == "/v1/messages":
            strategies.append(("a good message", operation.as_strategy(headers=auth, body=GOOD_MESSAGE)))
        if operation.path == "/v1/messages/{message_id}":
            strategies.append(("a message sent", operation.as_strategy(headers=auth, path_parameters={"message_id": 1})))
        if operation.path in CALLBACKS:  # random names are unknown providers: also the real one
            strategies.append(("a real provider", operation.as_strategy(path_parameters={"provider": "sbx"})))
        for mode, strategy in strategies:

            @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck), print_blob=False)
            @given(case=strategy)
            def check(case: Any) -> None:
                response = case.call_and_validate(checks=CHECKS)
                statuses[f"{case.operation.path} {response.status_code}"] = statuses.get(
                    f"{case.operation.path} {response.status_code}", 0) + 1

            try:
                check()
            except Unsatisfiable:  # nothing to break: a GET whose only parameter is any string
                if mode != GenerationMode.NEGATIVE.value:
                    failures.append(f"{operation.method.upper()} {operation.path} ({mode}): no request generated")
            except Exception as exc:  # noqa: BLE001 - any failure of any operation, all reported at the end
                failures.append(f"{operation.method.upper()} {operation.path} ({mode}): {exc}")
    asyncio.run(engine.dispose())
    return failures, statuses


@pytest.mark.timeout(240)
async def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(database_url: str,
                                                                             runtime: Runtime) -> None:
    async with runtime.factory() as session, session.begin():
        _, key = await api_keys.create_api_key(session, "schemathesis", "test")
        await providers.create_provider(session, runtime.box, kind="sandbox", name="sbx", values={}, actor="test")
        await groups.create_group(session, name="main", providers="sbx", actor="test")
    failures, statuses = await asyncio.to_thread(_fuzz, database_url, runtime, key)
    assert failures == [], "\n\n".join(failures)
    print(sorted(statuses.items()))
    assert sum(statuses.values()) >= 4 * MAX_EXAMPLES  # it did run
    assert {"/v1/messages 201", "/v1/messages 422", "/v1/messages/{message_id} 200",
            "/v1/messages/{message_id} 404", "/{code} 404", "/healthz 200"} <= set(statuses)
    assert {"/callbacks/{provider}/status", "/callbacks/{provider}/inbound"} <= {k.rsplit(" ", 1)[0] for k in statuses}
