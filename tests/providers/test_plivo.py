"""Plivo adapter, against a loopback fake of the Plivo API: messages in → exact request out
(checked against what Plivo documents) → one outcome per recipient, batches included; errors;
the account check; config rules; no secret in a log."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from smsconsole.providers.base import Capabilities, ErrorKind, OutboundMessage
from smsconsole.providers.plivo import PlivoProvider
from tests.fakes.plivo import AUTH_ID, AUTH_TOKEN, FakePlivo, RecordedRequest, Reply, api_problems, plivo_error
from tests.fakes.server import Switchboard, unused_port

BASE_CONFIG = {"auth_id": AUTH_ID, "auth_token": AUTH_TOKEN, "sender": "14155550100"}
POWERPACK = "2dca8f70-1387-4cbd-b97f-796717a5784b"
MESSAGE_PATH = f"/v1/Account/{AUTH_ID}/Message/"
CALLBACK_URL = "https://hooks.example.com/plivo/status?ref=42"
LONG_BODY = ("Plivo splits and encodes long texts by itself. " * 40)[:1600]


@pytest.fixture
def plivo_fake(server: tuple[Switchboard, str]) -> Iterator[FakePlivo]:
    """A fresh fake on a real loopback port; every request it received must be a documented one."""
    switchboard, url = server
    fake = FakePlivo()
    fake.base_url = url
    switchboard.target = fake.app
    try:
        yield fake
    finally:
        fake.close()
    problems = {f"{r.method} {r.path}": api_problems(r) for r in fake.requests}
    assert not any(problems.values()), problems


def make_provider(fake: FakePlivo, client: httpx.AsyncClient, **config: str) -> PlivoProvider:
    return PlivoProvider({**BASE_CONFIG, **config}, client=client, base_url=fake.base_url)


def message(**fields: Any) -> OutboundMessage:
    return OutboundMessage(**{"ref": "m-1", "to": "+14155550101", "body": "Hello", **fields})


# --- exact requests ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestCase:
    id: str
    messages: list[OutboundMessage]
    bodies: list[dict[str, str]]  # one per request, in order
    config: dict[str, str] = field(default_factory=dict)


BASIC = {"src": "14155550100", "dst": "14155550101", "text": "Hello"}
DLT = {"dlt_entity_id": "1201159146412345678", "dlt_template_id": "1207160000000000000"}

REQUEST_CASES = [
    RequestCase("plain message: numbers as digits with their country code", [message()], [BASIC]),
    RequestCase("a sender configured with '+' is sent without it", [message()], [BASIC],
                config={"sender": "+14155550100"}),
    RequestCase("alphanumeric sender", [message()], [{**BASIC, "src": "ACME"}], config={"sender": "ACME"}),
    RequestCase("a Powerpack instead of src", [message()],
                [{"powerpack_uuid": POWERPACK, "dst": "14155550101", "text": "Hello"}],
                config={"sender": "", "powerpack_uuid": POWERPACK}),
    RequestCase("unicode travels as UTF-8 with no flag (Plivo picks the encoding)",
                [message(body="नमस्ते 👋", encoding="UCS-2")], [{**BASIC, "text": "नमस्ते 👋"}]),
    RequestCase("a 1,600-character text is one request", [message(body=LONG_BODY, segments=11)],
                [{**BASIC, "text": LONG_BODY}]),
    RequestCase("the status callback goes in url, with method POST", [message(status_callback_url=CALLBACK_URL)],
                [{**BASIC, "url": CALLBACK_URL, "method": "POST"}]),
    RequestCase("DLT fields from the config, category only with a template",
                [message()], [{**BASIC, **DLT, "dlt_template_category": "transactional"}],
                config={**DLT, "dlt_template_category": "transactional"}),
    RequestCase("the message's DLT template wins", [message(options={"dlt_template_id": "1207000000000000001"})],
                [{**BASIC, **DLT, "dlt_template_id": "1207000000000000001"}], config=DLT),
    RequestCase("three recipients of one text: one request, dst joined by '<'",
                [message(ref="a", to="+14155550101"), message(ref="b", to="+14155550102"),
                 message(ref="c", to="+447700900001")],
                [{**BASIC, "dst": "14155550101<14155550102<447700900001"}]),
    RequestCase("different texts are different requests, each batched",
                [message(ref="a"), message(ref="b", body="Other"), message(ref="c", to="+14155550102")],
                [{**BASIC, "dst": "14155550101<14155550102"}, {**BASIC, "text": "Other"}]),
    RequestCase("a number twice goes in a second request (Plivo would drop the duplicate)",
                [message(ref="a"), message(ref="b")], [BASIC, BASIC]),
]


@pytest.mark.parametrize("case", REQUEST_CASES, ids=lambda case: case.id)
async def test_send_builds_the_exact_requests(case: RequestCase, plivo_fake: FakePlivo, client: httpx.AsyncClient) -> None:
    provider = make_provider(plivo_fake, client, **case.config)

    outcomes = await provider.send(case.messages)

    assert [json.loads(r.body) for r in plivo_fake.requests] == case.bodies
    for request in plivo_fake.requests:
        assert (request.method, request.path, request.query) == ("POST", MESSAGE_PATH, "")
        assert request.headers["content-type"] == "application/json"
        assert request.basic_auth == (AUTH_ID, AUTH_TOKEN)
        assert api_problems(request) == []
    assert [o.ref for o in outcomes] == [m.ref for m in case.messages]
    assert all(o.accepted and o.http_status == 202 and o.provider_status == "queued" for o in outcomes)
    assert sorted(o.provider_message_id or "" for o in outcomes) == sorted(plivo_fake.issued_uuids)


async def test_each_recipient_of_a_batch_gets_its_own_uuid_in_order(plivo_fake: FakePlivo, client: httpx.AsyncClient) -> None:
    messages = [message(ref=f"r{i}", to=f"+1415555{i:04d}") for i in range(5)]

    outcomes = await make_provider(plivo_fake, client).send(messages)

    assert len(plivo_fake.requests) == 1
    assert [o.provider_message_id for o in outcomes] == plivo_fake.issued_uuids
    assert [plivo_fake.messages[o.provider_message_id or ""]["to_number"] for o in outcomes] == [
        f"1415555{i:04d}" for i in range(5)]


async def test_an_invalid_number_in_a_batch_fails_alone(plivo_fake: FakePlivo, client: httpx.AsyncClient) -> None:
    messages = [message(ref="a", to="+14155550101"), message(ref="b", to="+1415"), message(ref="c", to="+14155550103")]

    outcomes = await make_provider(plivo_fake, client).send(messages)

    assert [(o.ref, o.accepted) for o in outcomes] == [("a", True), ("b", False), ("c", True)]
    assert outcomes[1].error is not None and outcomes[1].error.kind is ErrorKind.PERMANENT
    assert "1415" in str(outcomes[1].error)
    assert [o.provider_message_id for o in (outcomes[0], outcomes[2])] == plivo_fake.issued_uuids


async def test_a_thousand_and_one_recipients_take_two_requests(plivo_fake: FakePlivo, client: httpx.AsyncClient) -> None:
    messages = [message(ref=str(i), to=f"+1415{i:07d}") for i in range(1001)]

    outcomes = await make_provider(plivo_fake, client).send(messages)

    assert [len(json.loads(r.body)["dst"].split("<")) for r in plivo_fake.requests] == [1000, 1]
    assert all(o.accepted for o in outcomes) and len({o.provider_message_id for o in outcomes}) == 1001


# --- the request checker bites ----------------------------------------------------------------


def post(body: dict[str, Any], path: str = MESSAGE_PATH, content_type: str = "application/json") -> RecordedRequest:
    auth = "Basic " + base64.b64encode(f"{AUTH_ID}:{AUTH_TOKEN}".encode()).decode()
    return RecordedRequest("POST", path, "", {"content-type": content_type, "authorization": auth},
                           json.dumps(body).encode())


@pytest.mark.parametrize(
    ("request_", "problem"),
    [
        (post({**BASIC, "unicode": True}), "undeclared parameter unicode"),
        (post({**BASIC, "powerpack_uuid": POWERPACK}), "exactly one of src and powerpack_uuid"),
        (post({**BASIC, "dst": "+14155550101"}), "is not digits"),
        (post({**BASIC, "dst": "14155550101,14155550102"}), "is not digits"),
        (post(BASIC, path=MESSAGE_PATH.rstrip("/")), "end with '/'"),
        (post(BASIC, content_type="application/x-www-form-urlencoded"), "application/json"),
        (post({**BASIC, "dlt_template_category": "otp"}), "dlt_template_category"),
        (RecordedRequest("GET", MESSAGE_PATH, "limit=50", {}, b""), "limit must be 1–20"),
        (RecordedRequest("GET", MESSAGE_PATH, "message_time__gt=2026-11-23T10:00:00Z", {}, b""), "message_time__gt"),
    ],
    ids=["unknown param", "src and powerpack", "dst with +", "dst with commas", "no trailing slash",
         "form body", "bad DLT category", "page too large", "ISO time filter"],
)
def test_the_request_checker_rejects_wrong_requests(request_: RecordedRequest, problem: str) -> None:
    assert api_problems(post(BASIC)) == []

    assert any(problem in text for text in api_problems(request_)), api_problems(request_)


# --- errors -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorCase:
    id: str
    reply: Reply
    kind: ErrorKind
    retry_after: float | None = None
    says: str = ""


ERROR_CASES = [
    ErrorCase("401 plain text: credentials", Reply(401, "Could not verify your access level for that URL."),
              ErrorKind.CONFIGURATION, says="access level"),
    ErrorCase("400 validation error is permanent", plivo_error(400, "dst parameter not present"),
              ErrorKind.PERMANENT, says="dst parameter not present"),
    ErrorCase("400 about src is configuration", plivo_error(400, "src parameter not present"),
              ErrorKind.CONFIGURATION, says="src"),
    ErrorCase("400 insufficient credit is configuration", plivo_error(400, "insufficient credit"),
              ErrorKind.CONFIGURATION, says="insufficient credit"),
    ErrorCase("404 unknown account", plivo_error(404, "not found"), ErrorKind.CONFIGURATION, says="not found"),
    ErrorCase("405", plivo_error(405, "method not allowed"), ErrorKind.PERMANENT),
    ErrorCase("422", plivo_error(422, "unprocessable entity"), ErrorKind.PERMANENT),
    ErrorCase("429 with Retry-After", Reply(429, {"api_id": "x", "error": "too many requests"}, {"Retry-After": "5"}),
              ErrorKind.TRANSIENT, retry_after=5),
    ErrorCase("500", plivo_error(500, "internal error"), ErrorKind.TRANSIENT),
    ErrorCase("503 HTML", Reply(503, "<html>Service Unavailable</html>"), ErrorKind.TRANSIENT, says="Unavailable"),
    ErrorCase("202 without message_uuid: outcome unknown", Reply(202, {"api_id": "x", "message": "message(s) queued"}),
              ErrorKind.UNKNOWN, says="0 message UUIDs for 1"),
    ErrorCase("202 not JSON: outcome unknown", Reply(202, "queued"), ErrorKind.UNKNOWN, says="message UUIDs"),
]


@pytest.mark.parametrize("case", ERROR_CASES, ids=lambda case: case.id)
async def test_send_classifies_error_answers(case: ErrorCase, plivo_fake: FakePlivo, client: httpx.AsyncClient) -> None:
    plivo_fake.answer_next(case.reply)

    [outcome] = await make_provider(plivo_fake, client).send([message()])

    assert outcome.error is not None
    assert (outcome.error.kind, outcome.error.retry_after) == (case.kind, case.retry_after)
    assert outcome.http_status == case.reply.status and case.says in str(outcome.error)
    assert outcome.provider_message_id is None


async def test_an_error_fails_every_recipient_of_the_batch(plivo_fake: FakePlivo, client: httpx.AsyncClient) -> None:
    plivo_fake.answer_next(plivo_error(500, "internal error"))

    outcomes = await make_provider(plivo_fake, client).send([message(ref="a"), message(ref="b", to="+14155550102")])

    assert [(o.ref, o.error and o.error.kind) for o in outcomes] == [("a", ErrorKind.TRANSIENT), ("b", ErrorKind.TRANSIENT)]


async def test_a_server_that_never_answers_leaves_every_outcome_unknown(plivo_fake: FakePlivo) -> None:
    plivo_fake.answer_next(Reply(202, {"message_uuid": []}, delay=5))
    async with httpx.AsyncClient(timeout=0.2) as slow:
        outcomes = await make_provider(plivo_fake, slow).send([message(ref="a"), message(ref="b", to="+14155550102")])

    assert [o.error and o.error.kind for o in outcomes] == [ErrorKind.UNKNOWN, ErrorKind.UNKNOWN]


async def test_a_refused_connection_is_transient(client: httpx.AsyncClient) -> None:
    provider = PlivoProvider(BASE_CONFIG, client=client, base_url=f"http://127.0.0.1:{unused_port()}")

    [outcome] = await provider.send([message()])

    assert outcome.error is not None and outcome.error.kind is ErrorKind.TRANSIENT


# --- connection check -------------------------------------------------------------------------


async def test_check_connection_reads_the_account(plivo_fake: FakePlivo, client: httpx.AsyncClient) -> None:
    check = await make_provider(plivo_fake, client).check_connection()

    assert check.ok and check.detail == "Account 'Acme Ltd' (standard), credit 24.51250 USD"
    [request] = plivo_fake.requests
    assert (request.method, request.path, request.basic_auth) == ("GET", f"/v1/Account/{AUTH_ID}/", (AUTH_ID, AUTH_TOKEN))


@pytest.mark.parametrize(
    ("config", "reply", "says"),
    [
        ({"auth_token": "W" * 40}, None, "Plivo refused the credentials (HTTP 401): check the Auth ID and auth token"),
        ({}, plivo_error(500, "internal error"), "Plivo account check failed: Plivo: internal error"),
        ({}, Reply(200, "<html/>"), "unreadable body"),
    ],
    ids=["wrong token", "500", "not JSON"],
)
async def test_check_connection_fails_with_a_one_line_reason(
    config: dict[str, str], reply: Reply | None, says: str, plivo_fake: FakePlivo, client: httpx.AsyncClient
) -> None:
    if reply:
        plivo_fake.answer_next(reply)

    check = await make_provider(plivo_fake, client, **config).check_connection()

    assert not check.ok and says in check.detail and "\n" not in check.detail


# --- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "problem_fields"),
    [
        (BASE_CONFIG, []),
        ({**BASE_CONFIG, "auth_id": "SA" + AUTH_ID[2:]}, []),
        ({**BASE_CONFIG, "auth_id": "AC" + AUTH_ID[2:]}, ["auth_id"]),
        ({**BASE_CONFIG, "auth_id": AUTH_ID[:-1]}, ["auth_id"]),
        ({**BASE_CONFIG, "auth_token": "env:PLIVO_AUTH_TOKEN"}, []),
        ({**BASE_CONFIG, "auth_token": "short"}, ["auth_token"]),
        ({**BASE_CONFIG, "sender": "+14155550100"}, []),
        ({**BASE_CONFIG, "sender": "ACME"}, []),
        ({**BASE_CONFIG, "sender": "ACME SHOP"}, ["sender"]),
        ({**BASE_CONFIG, "sender": "ACMESHOPLTD1"}, ["sender"]),
        ({**BASE_CONFIG, "sender": "", "powerpack_uuid": POWERPACK}, []),
        ({**BASE_CONFIG, "powerpack_uuid": POWERPACK}, ["sender"]),
        ({**BASE_CONFIG, "sender": ""}, ["sender"]),
        ({**BASE_CONFIG, "sender": "", "powerpack_uuid": "not-a-uuid"}, ["powerpack_uuid"]),
        ({**BASE_CONFIG, **DLT, "dlt_template_category": "service_explicit"}, []),
        ({**BASE_CONFIG, "dlt_template_category": "otp"}, ["dlt_template_category"]),
        ({**BASE_CONFIG, "dlt_entity_id": "12-34"}, ["dlt_entity_id"]),
        ({"sender": "ACME"}, ["auth_id", "auth_token"]),
    ],
    ids=["valid", "subaccount", "not MA/SA", "short auth id", "token from env", "short token", "number with +",
         "alphanumeric", "alphanumeric with space", "alphanumeric over 11", "powerpack", "both src and powerpack",
         "neither", "bad powerpack", "DLT", "bad DLT category", "bad entity id", "credentials missing"],
)
def test_validate_config(values: dict[str, str], problem_fields: list[str]) -> None:
    assert [name for name, _ in PlivoProvider.validate_config(values)] == problem_fields


def test_fields_and_capabilities() -> None:
    assert [f.name for f in PlivoProvider.config_fields] == [
        "auth_id", "auth_token", "sender", "powerpack_uuid", "dlt_entity_id", "dlt_template_id",
        "dlt_template_category"]
    assert all(f.label and f.help for f in PlivoProvider.config_fields)
    assert [f.name for f in PlivoProvider.config_fields if f.secret] == ["auth_token"]
    assert PlivoProvider.default_base_url == "https://api.plivo.com"
    assert PlivoProvider.capabilities == Capabilities(
        max_batch=1000, max_body_chars=1600, status_webhook=True, status_polling=True, inbound_webhook=True,
        inbound_polling=True, signature=True, dlt=True, status_lookup=True)


# --- no secret in logs ------------------------------------------------------------------------


async def test_no_secret_reaches_a_log(plivo_fake: FakePlivo, client: httpx.AsyncClient,
                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")
    wrong_token = "W" * 40
    provider, wrong = make_provider(plivo_fake, client), make_provider(plivo_fake, client, auth_token=wrong_token)

    outcomes = await provider.send([message(), message(ref="m-2", to="+14155550102")])
    await wrong.send([message(ref="m-3")])
    await provider.fetch_statuses([o.provider_message_id or "" for o in outcomes])
    await provider.poll_statuses(None)
    await provider.check_connection()
    await wrong.check_connection()

    secrets = [AUTH_TOKEN, wrong_token]
    secrets += [base64.b64encode(f"{AUTH_ID}:{s}".encode()).decode() for s in list(secrets)]
    assert {"smsconsole.providers.plivo", "httpx"} <= {record.name for record in caplog.records}
    for record in caplog.records:
        text = f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        assert not any(secret in text for secret in secrets), record.name
