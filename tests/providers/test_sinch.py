"""Sinch adapter, against a loopback fake of the Sinch SMS REST API: messages in → exact batch
requests out → per-recipient outcomes; errors; connection check; config; callbacks (HMAC and token)
in → reports out or a 4xx; polling and fetching."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from smsconsole.providers.base import CallbackRejected, CallbackRequest, Capabilities, ErrorKind, OutboundMessage
from smsconsole.providers.sinch import (
    ERROR_RULES,
    STATUS_MAP,
    SinchProvider,
    compute_signature,
)
from tests.fakes.server import Switchboard, unused_port
from tests.fakes.sinch import API_TOKEN, SERVICE_PLAN_ID, WEBHOOK_SECRET, FakeSinch, Reply, sinch_error

CONFIG = {"service_plan_id": SERVICE_PLAN_ID, "api_token": API_TOKEN, "sender": "+447400000001"}
BATCHES_PATH = f"/xms/v1/{SERVICE_PLAN_ID}/batches"
CALLBACK_URL = "https://console.example.com/callbacks/sinch-main/status"
TOKEN = "t0ken-0123456789abcdef"
LONG_BODY = ("Sinch takes up to 2,000 characters in a body. " * 50)[:2000]


@pytest.fixture
def fake(server: tuple[Switchboard, str]) -> Iterator[FakeSinch]:
    switchboard, url = server
    sinch = FakeSinch()
    sinch.base_url = url
    switchboard.target = sinch.app
    yield sinch
    sinch.close()


def make(fake: FakeSinch, client: httpx.AsyncClient, **config: str) -> SinchProvider:
    return SinchProvider({**CONFIG, **config}, client=client, base_url=fake.base_url)


def message(ref: str = "m-1", to: str = "+447400123456", **fields: Any) -> OutboundMessage:
    return OutboundMessage(**{"ref": ref, "to": to, "body": "Hello", **fields})


# --- exact requests ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchCase:
    id: str
    messages: list[OutboundMessage]
    bodies: list[dict[str, Any]]  # one per request, in order
    config: dict[str, str] = field(default_factory=dict)


BATCH_CASES = [
    BatchCase("one message: our ref is the client reference",
              [message()],
              [{"to": ["+447400123456"], "body": "Hello", "from": "+447400000001", "client_reference": "m-1"}]),
    BatchCase("no sender configured: Sinch's default originator",
              [message()], [{"to": ["+447400123456"], "body": "Hello", "client_reference": "m-1"}],
              config={"sender": ""}),
    BatchCase("the message's own sender wins; alphanumeric",
              [message(sender="ACME")],
              [{"to": ["+447400123456"], "body": "Hello", "from": "ACME", "client_reference": "m-1"}]),
    BatchCase("unicode body travels as UTF-8 JSON, no flag (Sinch picks the encoding)",
              [message(body="Привет 👋 — ça va? 你好", encoding="UCS-2")],
              [{"to": ["+447400123456"], "body": "Привет 👋 — ça va? 你好", "from": "+447400000001",
                "client_reference": "m-1"}]),
    BatchCase("a 2,000-character body is sent whole",
              [message(body=LONG_BODY, segments=13)],
              [{"to": ["+447400123456"], "body": LONG_BODY, "from": "+447400000001", "client_reference": "m-1"}]),
    BatchCase("a number without '+' is sent in E.164",
              [message(to="447400123456")],
              [{"to": ["+447400123456"], "body": "Hello", "from": "+447400000001", "client_reference": "m-1"}]),
    BatchCase("same body and sender: one batch, no client reference",
              [message("a", "+447400123401"), message("b", "+447400123402"), message("c", "+447400123403")],
              [{"to": ["+447400123401", "+447400123402", "+447400123403"], "body": "Hello",
                "from": "+447400000001"}]),
    BatchCase("different bodies: one batch each",
              [message("a", "+447400123401"), message("b", "+447400123402", body="Bye"),
               message("c", "+447400123403")],
              [{"to": ["+447400123401", "+447400123403"], "body": "Hello", "from": "+447400000001"},
               {"to": ["+447400123402"], "body": "Bye", "from": "+447400000001", "client_reference": "b"}]),
    BatchCase("different senders: one batch each",
              [message("a", "+447400123401"), message("b", "+447400123402", sender="ACME")],
              [{"to": ["+447400123401"], "body": "Hello", "from": "+447400000001", "client_reference": "a"},
               {"to": ["+447400123402"], "body": "Hello", "from": "ACME", "client_reference": "b"}]),
    BatchCase("the same recipient twice goes in two batches (its id is batch:digits)",
              [message("a"), message("b")],
              [{"to": ["+447400123456"], "body": "Hello", "from": "+447400000001", "client_reference": "a"},
               {"to": ["+447400123456"], "body": "Hello", "from": "+447400000001", "client_reference": "b"}]),
    BatchCase("callback URL with the webhook token and per-recipient reports",
              [message(status_callback_url=CALLBACK_URL)],
              [{"to": ["+447400123456"], "body": "Hello", "from": "+447400000001", "client_reference": "m-1",
                "callback_url": f"{CALLBACK_URL}?token={TOKEN}", "delivery_report": "per_recipient"}],
              config={"webhook_token": TOKEN}),
    BatchCase("HMAC-signed callbacks need no token in the URL; final reports only",
              [message(status_callback_url=CALLBACK_URL)],
              [{"to": ["+447400123456"], "body": "Hello", "from": "+447400000001", "client_reference": "m-1",
                "callback_url": CALLBACK_URL, "delivery_report": "per_recipient_final"}],
              config={"webhook_secret": WEBHOOK_SECRET, "webhook_token": TOKEN,
                      "delivery_report": "per_recipient_final"}),
    BatchCase("delivery reports off: no callback URL is sent",
              [message(status_callback_url=CALLBACK_URL)],
              [{"to": ["+447400123456"], "body": "Hello", "from": "+447400000001", "client_reference": "m-1"}],
              config={"delivery_report": "none"}),
]


@pytest.mark.parametrize("case", BATCH_CASES, ids=lambda case: case.id)
async def test_send_builds_the_exact_batch_requests(case: BatchCase, fake: FakeSinch,
                                                    client: httpx.AsyncClient) -> None:
    outcomes = await make(fake, client, **case.config).send(case.messages)

    assert [(r.method, r.path) for r in fake.requests] == [("POST", BATCHES_PATH)] * len(case.bodies)
    assert {r.headers["authorization"] for r in fake.requests} == {f"Bearer {API_TOKEN}"}
    assert {r.headers["content-type"] for r in fake.requests} == {"application/json"}
    assert [r.json for r in fake.requests] == case.bodies
    assert [o.ref for o in outcomes] == [m.ref for m in case.messages]
    assert all(o.accepted and o.http_status == 201 and o.provider_status == "Queued" for o in outcomes)
    batch_of = {number: batch_id for batch_id, batch in fake.batches.items() for number in batch["to"]}
    for outcome, sent in zip(outcomes, case.messages, strict=True):
        batch_id, _, digits = (outcome.provider_message_id or "").partition(":")
        assert digits == sent.to.lstrip("+") and batch_id in fake.batches
    if len(case.bodies) == 1:
        assert {o.provider_message_id for o in outcomes} == {f"{batch_of[d]}:{d}" for d in batch_of}


async def test_a_batch_of_1000_is_one_request_and_1001_is_two(fake: FakeSinch, client: httpx.AsyncClient) -> None:
    messages = [message(f"r{i}", f"+4474001{i:05d}") for i in range(1001)]

    outcomes = await make(fake, client).send(messages)

    assert [len(r.json["to"]) for r in fake.requests] == [1000, 1]
    assert len({o.provider_message_id for o in outcomes}) == 1001 and all(o.accepted for o in outcomes)
    assert SinchProvider.capabilities.max_batch == 1000


async def test_the_region_picks_the_host() -> None:
    assert SinchProvider({**CONFIG, "region": "eu"}).base_url == "https://eu.sms.api.sinch.com"
    assert SinchProvider({**CONFIG, "region": "ca"})._url("/batches") == (
        f"https://ca.sms.api.sinch.com/xms/v1/{SERVICE_PLAN_ID}/batches")
    assert SinchProvider(CONFIG).base_url == "https://us.sms.api.sinch.com"
    assert SinchProvider({**CONFIG, "region": "eu"}, base_url="http://127.0.0.1:9").base_url == "http://127.0.0.1:9"


async def test_a_number_that_is_not_e164_fails_alone_without_a_request(fake: FakeSinch,
                                                                      client: httpx.AsyncClient) -> None:
    outcomes = await make(fake, client).send([message("bad", "07400 123456"), message("good")])

    assert [r.json["to"] for r in fake.requests] == [["+447400123456"]]
    assert [(o.ref, o.accepted) for o in outcomes] == [("bad", False), ("good", True)]
    assert outcomes[0].error is not None and outcomes[0].error.kind is ErrorKind.PERMANENT


async def test_a_rejected_batch_is_retried_one_by_one_so_one_bad_field_fails_alone(
        fake: FakeSinch, client: httpx.AsyncClient) -> None:
    fake.answer_next(sinch_error(400, "syntax_invalid_parameter_format", "Invalid MSISDN: +447400123402"),
                     Reply(201, {"id": "01AAA"}),
                     sinch_error(400, "syntax_invalid_parameter_format", "Invalid MSISDN: +447400123402"))

    outcomes = await make(fake, client).send([message("a", "+447400123401"), message("b", "+447400123402")])

    assert [r.json["to"] for r in fake.requests] == [["+447400123401", "+447400123402"], ["+447400123401"],
                                                     ["+447400123402"]]
    assert outcomes[0].provider_message_id == "01AAA:447400123401"
    assert outcomes[1].error is not None and outcomes[1].error.code == "syntax_invalid_parameter_format"


# --- errors -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorCase:
    id: str
    reply: Reply
    kind: ErrorKind
    code: str | None = None
    retry_after: float | None = None
    says: str = ""


ERROR_CASES = [
    ErrorCase("401: bad token", Reply(401, {"code": "unauthorized", "text": "Unauthorized"}),
              ErrorKind.CONFIGURATION, "unauthorized", says="API token"),
    ErrorCase("401 with no body", Reply(401, ""), ErrorKind.CONFIGURATION, says="API token"),
    ErrorCase("403 blocked_account", sinch_error(403, "blocked_account", "Account blocked"),
              ErrorKind.CONFIGURATION, "blocked_account", says="blocked"),
    ErrorCase("403 missing_callback_url", sinch_error(403, "missing_callback_url", "No callback URL"),
              ErrorKind.CONFIGURATION, "missing_callback_url", says="callback URL"),
    ErrorCase("403 unknown_campaign", sinch_error(403, "unknown_campaign", "Unknown campaign"),
              ErrorKind.CONFIGURATION, "unknown_campaign"),
    ErrorCase("403 illegal_number_type", sinch_error(403, "illegal_number_type", "Illegal number type"),
              ErrorKind.PERMANENT, "illegal_number_type", says="number type"),
    ErrorCase("403 with an unknown code is configuration", sinch_error(403, "something_new", "No"),
              ErrorKind.CONFIGURATION, "something_new"),
    ErrorCase("400 syntax_invalid_json", sinch_error(400, "syntax_invalid_json", "Bad JSON"),
              ErrorKind.PERMANENT, "syntax_invalid_json"),
    ErrorCase("400 syntax_constraint_violation", sinch_error(400, "syntax_constraint_violation", "body: missing"),
              ErrorKind.PERMANENT, "syntax_constraint_violation", says="body: missing"),
    ErrorCase("404: wrong plan or region", Reply(404, ""), ErrorKind.CONFIGURATION),
    ErrorCase("429 with Retry-After", Reply(429, "", {"Retry-After": "3"}), ErrorKind.TRANSIENT, retry_after=3),
    ErrorCase("500", Reply(500, "<html>oops</html>"), ErrorKind.TRANSIENT, says="oops"),
    ErrorCase("503 with Retry-After", Reply(503, "", {"Retry-After": "9"}), ErrorKind.TRANSIENT, retry_after=9),
    ErrorCase("201 without a batch id", Reply(201, {"to": ["447400123456"]}), ErrorKind.UNKNOWN, says="no batch id"),
    ErrorCase("201 not JSON", Reply(201, "created"), ErrorKind.UNKNOWN, says="no batch id"),
]


@pytest.mark.parametrize("case", ERROR_CASES, ids=lambda case: case.id)
async def test_send_classifies_error_answers(case: ErrorCase, fake: FakeSinch, client: httpx.AsyncClient) -> None:
    fake.answer_next(case.reply)

    [outcome] = await make(fake, client).send([message()])

    assert not outcome.accepted and outcome.error is not None
    assert outcome.error.kind is case.kind
    assert outcome.error.code == case.code
    assert outcome.error.retry_after == case.retry_after
    assert outcome.http_status == case.reply.status
    assert case.says in str(outcome.error)


async def test_a_batch_error_is_every_recipient_s_outcome(fake: FakeSinch, client: httpx.AsyncClient) -> None:
    fake.answer_next(Reply(503, ""))

    outcomes = await make(fake, client).send([message("a", "+447400123401"), message("b", "+447400123402")])

    assert len(fake.requests) == 1
    assert [(o.ref, o.error.kind if o.error else None) for o in outcomes] == [
        ("a", ErrorKind.TRANSIENT), ("b", ErrorKind.TRANSIENT)]


async def test_no_answer_in_time_leaves_the_batch_unknown(fake: FakeSinch) -> None:
    fake.answer_next(Reply(201, {"id": "01X"}, delay=5))
    async with httpx.AsyncClient(timeout=0.2) as slow:
        outcomes = await make(fake, slow).send([message("a", "+447400123401"), message("b", "+447400123402")])
    assert {o.error.kind for o in outcomes if o.error} == {ErrorKind.UNKNOWN} and len(fake.requests) == 1


async def test_a_refused_connection_is_transient(client: httpx.AsyncClient) -> None:
    provider = SinchProvider(CONFIG, client=client, base_url=f"http://127.0.0.1:{unused_port()}")
    [outcome] = await provider.send([message()])
    assert outcome.error is not None and outcome.error.kind is ErrorKind.TRANSIENT


def test_the_tables_classify_the_documented_codes() -> None:
    assert {code: ERROR_RULES.find(code, "report").kind for code in (402, 403, 404, 406, 410, 412, 413)} == {
        402: ErrorKind.PERMANENT, 403: ErrorKind.TRANSIENT, 404: ErrorKind.TRANSIENT, 406: ErrorKind.TRANSIENT,
        410: ErrorKind.CONFIGURATION, 412: ErrorKind.CONFIGURATION, 413: ErrorKind.CONFIGURATION}
    assert ERROR_RULES.codes("report") == {str(code) for code in (*range(402, 409), *range(410, 419))}
    assert set(STATUS_MAP) == {"Queued", "Dispatched", "Aborted", "Cancelled", "Rejected", "Deleted", "Delivered",
                               "Failed", "Expired", "Unknown"}


# --- connection check -------------------------------------------------------------------------


async def test_check_connection_lists_one_batch_and_sends_nothing(fake: FakeSinch, client: httpx.AsyncClient) -> None:
    await make(fake, client).send([message()])
    fake.requests.clear()

    check = await make(fake, client).check_connection()

    assert check.ok
    assert check.detail == f"Service plan {SERVICE_PLAN_ID} (us) accepted the API token, 1 batch on record"
    [request] = fake.requests
    assert (request.method, request.path, request.query) == ("GET", BATCHES_PATH, "page_size=1")
    assert request.headers["authorization"] == f"Bearer {API_TOKEN}"


@pytest.mark.parametrize(
    ("config", "reply", "says"),
    [({"api_token": "0" * 32}, None, "check the service plan ID, the API token and the region (us)"),
     ({"region": "eu"}, Reply(404, ""), f"does not know service plan {SERVICE_PLAN_ID} in region eu"),
     ({}, Reply(500, "down"), "Sinch check failed"),
     ({}, Reply(200, "<html/>"), "unreadable")],
    ids=["wrong token", "wrong region", "500", "not JSON"],
)
async def test_check_connection_fails_with_a_one_line_reason(config: dict[str, str], reply: Reply | None, says: str,
                                                             fake: FakeSinch, client: httpx.AsyncClient) -> None:
    if reply:
        fake.answer_next(reply)
    check = await make(fake, client, **config).check_connection()
    assert not check.ok and says in check.detail and "\n" not in check.detail


# --- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "problems"),
    [(CONFIG, []),
     ({**CONFIG, "api_token": "env:SINCH_API_TOKEN"}, []),
     ({**CONFIG, "region": "eu", "delivery_report": "per_recipient_final"}, []),
     ({**CONFIG, "region": "asia"}, ["region"]),
     ({**CONFIG, "delivery_report": "summary"}, ["delivery_report"]),
     ({**CONFIG, "service_plan_id": "plan/1"}, ["service_plan_id"]),
     ({**CONFIG, "api_token": "short"}, ["api_token"]),
     ({**CONFIG, "sender": "ACME Shop"}, []),
     ({**CONFIG, "sender": "12345"}, []),
     ({**CONFIG, "sender": "ACME Shop Ltd"}, ["sender"]),
     ({**CONFIG, "sender": "+0123"}, ["sender"]),
     ({**CONFIG, "webhook_token": "short"}, ["webhook_token"]),
     ({**CONFIG, "webhook_secret": "env:SINCH_SECRET"}, []),
     ({"sender": "ACME"}, ["service_plan_id", "api_token"]),
     ({**CONFIG, "base_url": "https://x"}, ["base_url"])],
    ids=["valid", "token from env", "eu, final reports", "unknown region", "summary reports name nobody",
         "bad plan id", "short token", "alphanumeric sender", "short code", "sender over 11", "bad E.164",
         "short webhook token", "secret from env", "credentials missing", "no base_url setting"],
)
def test_validate_config(values: dict[str, str], problems: list[str]) -> None:
    assert [name for name, _ in SinchProvider.validate_config(values)] == problems


def test_fields_and_capabilities() -> None:
    assert [f.name for f in SinchProvider.config_fields] == [
        "service_plan_id", "api_token", "region", "sender", "delivery_report", "webhook_secret", "webhook_token"]
    assert all(f.label and f.help for f in SinchProvider.config_fields)
    assert [f.name for f in SinchProvider.config_fields if f.secret] == ["api_token", "webhook_secret", "webhook_token"]
    assert SinchProvider.field("region").choices == ("us", "eu", "au", "br", "ca")
    assert SinchProvider.capabilities == Capabilities(
        max_batch=1000, max_body_chars=2000, status_webhook=True, status_polling=True, inbound_webhook=True,
        inbound_polling=True, signature=True, dlt=False, status_lookup=True)


# --- callbacks --------------------------------------------------------------------------------


def signed(payload: dict[str, Any] | bytes, secret: str = WEBHOOK_SECRET, *, algorithm: str = "HmacSHA256",
           nonce: str = "01FJA8B4A7BM43YGWSG9GBV067", timestamp: str = "1634579353") -> CallbackRequest:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    digest = {"HmacSHA256": hashlib.sha256, "HmacSHA512": hashlib.sha512}[algorithm]
    signature = base64.b64encode(hmac.new(secret.encode(), body + f".{nonce}.{timestamp}".encode(), digest).digest())
    return CallbackRequest("POST", CALLBACK_URL, {
        "content-type": "application/json", "x-sinch-webhook-signature": signature.decode(),
        "x-sinch-webhook-signature-nonce": nonce, "x-sinch-webhook-signature-timestamp": timestamp,
        "x-sinch-webhook-signature-algorithm": algorithm}, body)


SIGNED = {**CONFIG, "webhook_secret": WEBHOOK_SECRET}
TOKENED = {**CONFIG, "webhook_token": TOKEN}


def recipient_report(status: str, code: int, **extra: Any) -> dict[str, Any]:
    return {"type": "recipient_delivery_report_sms", "batch_id": "01FC66621XXXXX119Z8PMV1QPQ",
            "recipient": "+447400123456", "status": status, "code": code, "at": "2026-03-01T10:15:00.120Z", **extra}


STATUS_CASES = [
    pytest.param(recipient_report("Delivered", 0, operator_status_at="2026-03-01T10:14:00Z", client_reference="m-1"),
                 [("01FC66621XXXXX119Z8PMV1QPQ:447400123456", "delivered", None, None, "m-1")], id="delivered"),
    pytest.param(recipient_report("Dispatched", 401), [("01FC66621XXXXX119Z8PMV1QPQ:447400123456", "sent", "401",
                                                        None, None)], id="dispatched"),
    pytest.param(recipient_report("Aborted", 404), [("01FC66621XXXXX119Z8PMV1QPQ:447400123456", "failed", "404",
                                                     ErrorKind.TRANSIENT, None)], id="aborted-temporary"),
    pytest.param(recipient_report("Aborted", 410), [("01FC66621XXXXX119Z8PMV1QPQ:447400123456", "failed", "410",
                                                     ErrorKind.CONFIGURATION, None)], id="no-default-originator"),
    pytest.param(recipient_report("Deleted", 60), [("01FC66621XXXXX119Z8PMV1QPQ:447400123456", "undelivered", "60",
                                                    ErrorKind.PERMANENT, None)], id="deleted-opted-out"),
    pytest.param(recipient_report("Expired", 36), [("01FC66621XXXXX119Z8PMV1QPQ:447400123456", "undelivered", "36",
                                                    ErrorKind.TRANSIENT, None)], id="expired"),
    pytest.param(recipient_report("Wobbly", 0), [("01FC66621XXXXX119Z8PMV1QPQ:447400123456", None, None, None, None)],
                 id="unknown-status-ignored"),
    pytest.param({"type": "delivery_report_sms", "batch_id": "01B", "total_message_count": 3, "statuses": [
        {"code": 0, "status": "Delivered", "count": 2, "recipients": ["447400123401", "+447400123402"]},
        {"code": 402, "status": "Aborted", "count": 1, "recipients": ["447400123403"]}]},
        [("01B:447400123401", "delivered", None, None, None), ("01B:447400123402", "delivered", None, None, None),
         ("01B:447400123403", "failed", "402", ErrorKind.PERMANENT, None)], id="full-batch-report"),
    pytest.param({"type": "delivery_report_sms", "batch_id": "01B", "total_message_count": 2,
                  "statuses": [{"code": 0, "status": "Delivered", "count": 2}]}, [], id="summary-names-nobody"),
]


@pytest.mark.parametrize(("payload", "expected"), STATUS_CASES)
def test_status_callbacks_signed_with_hmac(payload: dict[str, Any], expected: list[tuple[Any, ...]]) -> None:
    reports = SinchProvider(SIGNED).status_callback(signed(payload))
    assert [(r.provider_message_id, r.state, r.error_code, r.error_kind, r.ref) for r in reports] == expected


def test_a_recipient_report_carries_its_number_and_operator_time() -> None:
    [report] = SinchProvider(SIGNED).status_callback(signed(recipient_report(
        "Delivered", 0, operator_status_at="2026-03-01T10:14:00Z")))
    assert report.recipient == "+447400123456" and report.at == datetime(2026, 3, 1, 10, 14, tzinfo=UTC)


def test_the_receipt_id_is_the_one_send_returned() -> None:
    assert SinchProvider(SIGNED).status_callback(signed(recipient_report("Delivered", 0)))[0].provider_message_id == (
        "01FC66621XXXXX119Z8PMV1QPQ:447400123456")


def test_a_signature_with_sha512_is_accepted() -> None:
    [report] = SinchProvider(SIGNED).status_callback(signed(recipient_report("Delivered", 0), algorithm="HmacSHA512"))
    assert report.state == "delivered"


def test_the_signature_matches_the_sdk_formula() -> None:
    body = b'{"type":"mo_text"}'
    expected = base64.b64encode(hmac.new(b"k", body + b".n.1", hashlib.sha256).digest()).decode()
    assert compute_signature("k", body, "n", "1") == expected


def test_inbound_mo_text() -> None:
    payload = {"type": "mo_text", "id": "01INB", "from": "447400123456", "to": "+447400000001", "body": "STOP",
               "received_at": "2026-03-01T10:00:00.000Z", "operator_id": "23410"}
    [inbound] = SinchProvider(SIGNED).inbound_callback(signed(payload))
    assert (inbound.provider_message_id, inbound.sender, inbound.recipient, inbound.text) == (
        "01INB", "+447400123456", "+447400000001", "STOP")
    assert inbound.at == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def test_inbound_binary_is_accepted_and_ignored() -> None:
    binary = {"type": "mo_binary", "id": "x", "from": "1", "body": "AA=="}
    assert SinchProvider(SIGNED).inbound_callback(signed(binary)) == []


def test_without_a_secret_the_token_in_the_url_is_checked() -> None:
    body = json.dumps(recipient_report("Delivered", 0)).encode()
    good = CallbackRequest("POST", f"{CALLBACK_URL}?token={TOKEN}", {"content-type": "application/json"}, body)
    assert SinchProvider(TOKENED).status_callback(good)[0].state == "delivered"
    with pytest.raises(CallbackRejected) as rejected:
        SinchProvider(TOKENED).status_callback(CallbackRequest("POST", f"{CALLBACK_URL}?token=wrong-token-0000000",
                                                               {}, body))
    assert rejected.value.status == 403


TAMPERED = signed(recipient_report("Failed", 402))
REJECTED = [
    pytest.param(SIGNED, CallbackRequest("POST", CALLBACK_URL, {"content-type": "application/json"},
                                         json.dumps(recipient_report("Delivered", 0)).encode()), 401, id="unsigned"),
    pytest.param(SIGNED, signed(recipient_report("Delivered", 0), secret="another-secret"), 403, id="forged"),
    pytest.param(SIGNED, CallbackRequest("POST", CALLBACK_URL, TAMPERED.headers,
                                         TAMPERED.body.replace(b"Failed", b"Delivered")), 403, id="tampered-body"),
    pytest.param(SIGNED, CallbackRequest("POST", CALLBACK_URL, {
        **TAMPERED.headers, "x-sinch-webhook-signature-algorithm": "HmacMD5"}, TAMPERED.body), 403,
        id="unsupported-algorithm"),
    pytest.param(SIGNED, signed(b"{not json"), 400, id="malformed-json"),
    pytest.param(SIGNED, signed(b"[1, 2]"), 400, id="not-an-object"),
    pytest.param(SIGNED, signed({"type": "recipient_delivery_report_sms", "status": "Delivered"}), 400,
                 id="no-batch-id"),
    pytest.param(SIGNED, signed({"type": "mo_text", "from": "1", "body": "x"}), 400, id="inbound-on-status-url"),
    pytest.param(SIGNED, signed({"type": "delivery_report_sms", "batch_id": "01B", "statuses": [{"code": 0}]}), 400,
                 id="batch-status-without-status"),
    pytest.param(CONFIG, CallbackRequest("POST", f"{CALLBACK_URL}?token={TOKEN}", {}, b"{}"), 403,
                 id="neither-secret-nor-token-configured"),
]


@pytest.mark.parametrize(("config", "request_", "status"), REJECTED)
def test_bad_callbacks_are_rejected_with_a_4xx(config: dict[str, str], request_: CallbackRequest, status: int) -> None:
    with pytest.raises(CallbackRejected) as rejected:
        SinchProvider(config).status_callback(request_)
    assert rejected.value.status == status


def test_a_malformed_inbound_is_rejected() -> None:
    with pytest.raises(CallbackRejected) as rejected:
        SinchProvider(SIGNED).inbound_callback(signed({"type": "mo_text", "id": "x", "to": "1"}))
    assert rejected.value.status == 400


# --- polling ------------------------------------------------------------------------------------


async def test_fetch_statuses_reads_each_recipient_and_skips_unknown_ones(fake: FakeSinch,
                                                                         client: httpx.AsyncClient) -> None:
    provider = make(fake, client)
    first, second = await provider.send([message("a", "+447400123401"), message("b", "+447400123402")])
    batch_id = fake.issued_batch_ids[0]
    fake.set_status(batch_id, "+447400123401", "Delivered", 0)
    fake.set_status(batch_id, "+447400123402", "Failed", 402)
    fake.requests.clear()

    reports = await provider.fetch_statuses([first.provider_message_id or "", second.provider_message_id or "",
                                             f"{batch_id}:447400999999", "not-ours"])

    assert [(r.provider_message_id, r.state, r.error_code, r.error_kind) for r in reports] == [
        (first.provider_message_id, "delivered", None, None),
        (second.provider_message_id, "undelivered", "402", ErrorKind.PERMANENT)]
    assert [r.path for r in fake.requests] == [
        f"{BATCHES_PATH}/{batch_id}/delivery_report/447400123401",
        f"{BATCHES_PATH}/{batch_id}/delivery_report/447400123402",
        f"{BATCHES_PATH}/{batch_id}/delivery_report/447400999999"]


async def test_poll_statuses_walks_every_page_of_a_fixed_window_and_resumes(fake: FakeSinch,
                                                                           client: httpx.AsyncClient) -> None:
    provider = make(fake, client)
    outcomes = await provider.send([message(f"r{i}", f"+4474001{i:05d}") for i in range(150)])
    seen: dict[str, str | None] = {}
    cursor, pages = None, 0
    while True:
        page = await provider.poll_statuses(cursor)
        pages += 1
        seen.update({r.provider_message_id or "": r.state for r in page.reports})
        cursor = page.cursor
        if not page.more:
            break
    assert pages == 2 and set(seen) == {o.provider_message_id for o in outcomes}
    listing = [r for r in fake.requests if r.path.endswith("/delivery_reports")]
    windows = {(q["start_date"], q["end_date"]) for q in (dict(httpx.QueryParams(r.query)) for r in listing)}
    assert len(windows) == 1 and all("page_size=100" in r.query for r in listing)
    assert set(json.loads(cursor or "{}")) == {"since"}


async def test_poll_inbound_lists_mo_messages(fake: FakeSinch, client: httpx.AsyncClient) -> None:
    a_second_ago = (datetime.now(UTC) - timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    inbound_id = fake.receive("447400123456", "447400000001", "STOP", received_at=a_second_ago)
    page = await make(fake, client).poll_inbound(None)
    assert [(r.provider_message_id, r.sender, r.text) for r in page.reports] == [(inbound_id, "+447400123456", "STOP")]
    assert not page.more and fake.requests[-1].path == f"/xms/v1/{SERVICE_PLAN_ID}/inbounds"


async def test_polling_with_a_bad_token_is_a_configuration_error(fake: FakeSinch, client: httpx.AsyncClient) -> None:
    with pytest.raises(Exception) as raised:
        await make(fake, client, api_token="0" * 32).poll_statuses(None)
    assert getattr(raised.value, "kind", None) is ErrorKind.CONFIGURATION


# --- no secret in logs ------------------------------------------------------------------------


async def test_no_secret_reaches_a_log(fake: FakeSinch, client: httpx.AsyncClient,
                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")
    wrong_token = "wrong" + API_TOKEN[5:]
    provider = make(fake, client, webhook_secret=WEBHOOK_SECRET, webhook_token=TOKEN)
    wrong = make(fake, client, api_token=wrong_token)

    await provider.send([message(status_callback_url=CALLBACK_URL)])
    await wrong.send([message(ref="m-2")])
    await provider.check_connection()
    await wrong.check_connection()
    provider.status_callback(signed(recipient_report("Delivered", 0)))
    with pytest.raises(CallbackRejected):
        provider.status_callback(signed(recipient_report("Delivered", 0), secret="forged"))

    assert {"smsconsole.providers.sinch", "httpx"} <= {record.name for record in caplog.records}
    for record in caplog.records:
        text = f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        assert not any(secret in text for secret in (API_TOKEN, wrong_token, WEBHOOK_SECRET, TOKEN)), record.name
