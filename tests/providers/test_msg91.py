"""MSG91 adapter, against a loopback fake of MSG91's APIs: messages in → exact request out →
outcome (batched, one request id → composite ids); each documented error → its kind; the
balance check; every delivery report format in → reports out, or a 4xx; config rules; no secret
in a log."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from smsconsole.providers.base import CallbackRejected, CallbackRequest, Capabilities, ErrorKind, OutboundMessage
from smsconsole.providers.msg91 import ERROR_RULES, IST, STATUS_MAP, Msg91Provider
from tests.fakes.generic import Reply
from tests.fakes.msg91 import AUTH_KEY, FakeMsg91, msg91_error
from tests.fakes.server import Switchboard, unused_port

TOKEN = "tok-0123456789abcdef"
CONFIG = {"auth_key": AUTH_KEY, "sender": "ACMEIN", "dlt_template_id": "1107161234567890123", "webhook_token": TOKEN}
LONG_BODY = "Your order 1234 has shipped and will reach you by Friday. " * 8


@pytest.fixture
def fake(server: tuple[Switchboard, str]) -> FakeMsg91:
    switchboard, url = server
    msg91 = FakeMsg91()
    msg91.base_url = url
    switchboard.target = msg91.app
    return msg91


def provider(fake: FakeMsg91, client: httpx.AsyncClient, **config: str) -> Msg91Provider:
    return Msg91Provider({**CONFIG, **config}, client=client, base_url=fake.base_url)


def message(ref: str = "m-1", to: str = "+919812345678", body: str = "Your OTP is 1234", **fields: Any) -> OutboundMessage:
    return OutboundMessage(ref=ref, to=to, body=body, **fields)


# --- exact requests ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestCase:
    id: str
    messages: list[OutboundMessage]
    bodies: list[dict[str, Any]]  # one per request, in order
    config: dict[str, str] = field(default_factory=dict)
    path: str = "/api/v2/sendsms"


V2 = {"sender": "ACMEIN", "route": "4", "country": "91", "unicode": 0, "DLT_TE_ID": "1107161234567890123"}

REQUEST_CASES = [
    RequestCase("plain message", [message()],
                [{**V2, "sms": [{"message": "Your OTP is 1234", "to": ["919812345678"]}]}]),
    RequestCase("unicode message sets unicode=1", [message(body="आपका OTP 1234 है", encoding="UCS-2")],
                [{**V2, "unicode": 1, "sms": [{"message": "आपका OTP 1234 है", "to": ["919812345678"]}]}]),
    RequestCase("a long message is sent whole", [message(body=LONG_BODY, segments=3)],
                [{**V2, "sms": [{"message": LONG_BODY, "to": ["919812345678"]}]}]),
    RequestCase("the message's DLT template id and sender win over the config",
                [message(sender="ACMEOT", options={"dlt_template_id": "1107169999999999999"})],
                [{**V2, "sender": "ACMEOT", "DLT_TE_ID": "1107169999999999999",
                  "sms": [{"message": "Your OTP is 1234", "to": ["919812345678"]}]}]),
    RequestCase("no DLT template id: none is sent", [message()],
                [{k: v for k, v in V2.items() if k != "DLT_TE_ID"}
                 | {"sms": [{"message": "Your OTP is 1234", "to": ["919812345678"]}]}],
                config={"dlt_template_id": ""}),
    RequestCase("promotional route and international country", [message(to="+447400123456")],
                [{**V2, "route": "1", "country": "0", "sms": [{"message": "Your OTP is 1234", "to": ["447400123456"]}]}],
                config={"route": "1", "country": "0"}),
    RequestCase(
        "a batch is one request: same text shares one sms entry, other texts get their own",
        [message("a", "+919800000001", "Sale today"), message("b", "+919800000002", "Sale today"),
         message("c", "+919800000003", "Hello Ravi")],
        [{**V2, "sms": [{"message": "Sale today", "to": ["919800000001", "919800000002"]},
                        {"message": "Hello Ravi", "to": ["919800000003"]}]}]),
    RequestCase(
        "messages that differ in encoding or template go in separate requests",
        [message("a", "+919800000001", "Sale"), message("b", "+919800000002", "सेल", encoding="UCS-2"),
         message("c", "+919800000003", "Sale", options={"dlt_template_id": "1107160000000000001"})],
        [{**V2, "sms": [{"message": "Sale", "to": ["919800000001"]}]},
         {**V2, "unicode": 1, "sms": [{"message": "सेल", "to": ["919800000002"]}]},
         {**V2, "DLT_TE_ID": "1107160000000000001", "sms": [{"message": "Sale", "to": ["919800000003"]}]}]),
    RequestCase(
        "the same number twice goes in two requests, so each report points at one message",
        [message("a", "+919800000001", "First"), message("b", "+919800000001", "Second")],
        [{**V2, "sms": [{"message": "First", "to": ["919800000001"]}]},
         {**V2, "sms": [{"message": "Second", "to": ["919800000001"]}]}]),
    RequestCase(
        "Flow API: one request, a recipient each with the text in the configured variable",
        [message("a", "+919800000001", "1234", options={"template_variables": '{"name": "Ravi"}'}),
         message("b", "+919800000002", "5678")],
        [{"template_id": "64f0c0ffee1234567890abcd", "sender": "ACMEIN", "short_url": "0",
          "recipients": [{"mobiles": "919800000001", "name": "Ravi", "VAR1": "1234"},
                         {"mobiles": "919800000002", "VAR1": "5678"}]}],
        config={"send_api": "flow", "flow_template_id": "64f0c0ffee1234567890abcd", "flow_body_variable": "VAR1"},
        path="/api/v5/flow/"),
]


@pytest.mark.parametrize("case", REQUEST_CASES, ids=lambda case: case.id)
async def test_send_builds_the_exact_requests(case: RequestCase, fake: FakeMsg91, client: httpx.AsyncClient) -> None:
    outcomes = await provider(fake, client, **case.config).send(case.messages)

    assert [(r.method, r.path) for r in fake.requests] == [("POST", case.path)] * len(case.bodies)
    for request, body in zip(fake.requests, case.bodies, strict=True):
        assert request.header("authkey") == AUTH_KEY
        assert request.header("content-type") == "application/json"
        assert request.json() == body
    assert [o.ref for o in outcomes] == [m.ref for m in case.messages]
    assert all(o.accepted and o.provider_status == "accepted" and o.http_status == 200 for o in outcomes)


async def test_each_recipient_gets_the_request_id_with_its_number(fake: FakeMsg91, client: httpx.AsyncClient) -> None:
    outcomes = await provider(fake, client).send([message("a", "+919800000001"), message("b", "+919800000002")])

    [request_id] = fake.request_ids
    assert [o.provider_message_id for o in outcomes] == [f"{request_id}:919800000001", f"{request_id}:919800000002"]


async def test_a_rejected_request_fails_every_message_in_it(fake: FakeMsg91, client: httpx.AsyncClient) -> None:
    fake.answer_next(msg91_error("301", "Insufficient balance"))
    outcomes = await provider(fake, client).send([message("a", "+919800000001"), message("b", "+919800000002")])

    assert len(fake.requests) == 1
    assert [(o.ref, o.error and o.error.kind) for o in outcomes] == [
        ("a", ErrorKind.CONFIGURATION), ("b", ErrorKind.CONFIGURATION)]


# --- errors -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorCase:
    id: str
    reply: Reply
    kind: ErrorKind
    code: str | None = None
    says: str = ""
    retry_after: float | None = None


ERROR_CASES = [
    ErrorCase("106 missing auth key", msg91_error("106", "Missing Authentication Key"), ErrorKind.CONFIGURATION, "106",
              "auth key"),
    ErrorCase("207 invalid auth key", msg91_error("207", "Authentication failure"), ErrorKind.CONFIGURATION, "207",
              "refused the auth key"),
    ErrorCase("207 with HTTP 401", msg91_error("207", "Authentication failure", 401), ErrorKind.CONFIGURATION, "207"),
    ErrorCase("301 insufficient balance", msg91_error("301", "Insufficient balance"), ErrorKind.CONFIGURATION, "301",
              "balance"),
    ErrorCase("202 invalid mobile", msg91_error("202", "Invalid mobile number"), ErrorKind.PERMANENT, "202",
              "not valid"),
    ErrorCase("203 invalid sender", msg91_error("203", "Invalid sender ID"), ErrorKind.CONFIGURATION, "203", "sender"),
    ErrorCase("306 route closed for now", msg91_error("306", "Route not available"), ErrorKind.TRANSIENT, "306"),
    ErrorCase("310 too long", msg91_error("310", "SMS too long"), ErrorKind.PERMANENT, "310"),
    ErrorCase("311 duplicate within 10 s: may have been sent", msg91_error("311", "Duplicate request"),
              ErrorKind.UNKNOWN, "311", "duplicate"),
    ErrorCase("418 IP not whitelisted", msg91_error("418", "IP not whitelisted"), ErrorKind.CONFIGURATION, "418",
              "whitelisted"),
    ErrorCase("unknown code, HTTP 200: permanent", msg91_error("999", "Something new"), ErrorKind.PERMANENT, "999",
              "Something new"),
    ErrorCase("error without code naming authentication", Reply(401, {"type": "error", "message": "AuthenticationFailure"}),
              ErrorKind.CONFIGURATION, says="AuthenticationFailure"),
    ErrorCase("429 with Retry-After", Reply(429, "Too many requests", {"Retry-After": "5"}), ErrorKind.TRANSIENT,
              retry_after=5),
    ErrorCase("502 from a proxy", Reply(502, "<html>Bad gateway</html>"), ErrorKind.TRANSIENT, says="Bad gateway"),
    ErrorCase("200 that is not JSON: outcome unknown", Reply(200, "OK"), ErrorKind.UNKNOWN, says="without a request id"),
    ErrorCase("200 success without an id: outcome unknown", Reply(200, {"type": "success", "message": ""}),
              ErrorKind.UNKNOWN, says="without a request id"),
]


@pytest.mark.parametrize("case", ERROR_CASES, ids=lambda case: case.id)
async def test_send_classifies_error_answers(case: ErrorCase, fake: FakeMsg91, client: httpx.AsyncClient) -> None:
    fake.answer_next(case.reply)

    [outcome] = await provider(fake, client).send([message()])

    assert outcome.error is not None and outcome.provider_message_id is None
    assert outcome.error.kind is case.kind
    assert outcome.error.code == case.code
    assert outcome.error.retry_after == case.retry_after
    assert outcome.http_status == case.reply.status
    assert case.says in str(outcome.error)


async def test_the_fake_refuses_a_wrong_auth_key_as_msg91_does(fake: FakeMsg91, client: httpx.AsyncClient) -> None:
    [outcome] = await provider(fake, client, auth_key="0" * 24).send([message()])

    assert outcome.error is not None and outcome.error.kind is ErrorKind.CONFIGURATION and outcome.error.code == "207"


async def test_transport_failures(fake: FakeMsg91) -> None:
    fake.answer_next(Reply(200, {"message": "x", "type": "success"}, delay=2))
    async with httpx.AsyncClient(timeout=0.2) as slow:
        [timed_out] = await provider(fake, slow).send([message()])
    async with httpx.AsyncClient(timeout=2) as http:
        refused = Msg91Provider(CONFIG, client=http, base_url=f"http://127.0.0.1:{unused_port()}")
        [not_connected] = await refused.send([message()])

    assert timed_out.error is not None and timed_out.error.kind is ErrorKind.UNKNOWN
    assert not_connected.error is not None and not_connected.error.kind is ErrorKind.TRANSIENT


def test_the_error_table_covers_the_documented_codes() -> None:
    kinds = {rule.code: rule.kind for rule in ERROR_RULES if rule.on == "code"}
    assert {c: kinds[c] for c in ("106", "207", "301", "418", "203")} == dict.fromkeys(
        ("106", "207", "301", "418", "203"), ErrorKind.CONFIGURATION)
    assert {c: kinds[c] for c in ("101", "102", "202", "310")} == dict.fromkeys(
        ("101", "102", "202", "310"), ErrorKind.PERMANENT)
    assert kinds["306"] is ErrorKind.TRANSIENT and kinds["311"] is ErrorKind.UNKNOWN


# --- connection check -------------------------------------------------------------------------


async def test_check_connection_reads_the_route_balance(fake: FakeMsg91, client: httpx.AsyncClient) -> None:
    check = await provider(fake, client).check_connection()

    assert check.ok and check.detail == "MSG91 auth key accepted; transactional route balance: 1500 SMS credits"
    [request] = fake.requests
    assert (request.method, request.path, dict(request.query_pairs)) == (
        "GET", "/api/balance.php", {"authkey": AUTH_KEY, "type": "4"})


@pytest.mark.parametrize(
    ("config", "reply", "says"),
    [({"auth_key": "0" * 24}, None, "Authentication failure (check the auth key"),
     ({}, msg91_error("418", "IP not whitelisted"), "whitelisted"),
     ({}, Reply(500, "boom"), "HTTP 500: boom")],
    ids=["wrong auth key", "IP not whitelisted", "server error"],
)
async def test_check_connection_fails_with_a_one_line_reason(
    config: dict[str, str], reply: Reply | None, says: str, fake: FakeMsg91, client: httpx.AsyncClient,
) -> None:
    if reply:
        fake.answer_next(reply)
    check = await provider(fake, client, **config).check_connection()

    assert not check.ok and says in check.detail and "\n" not in check.detail


# --- delivery reports -------------------------------------------------------------------------

URL = f"https://console.example.com/callbacks/msg91/status?token={TOKEN}"
REQUEST_ID = "3465646f4b6c313233343536"


def v2_callback(*reports: dict[str, str], url: str = URL) -> CallbackRequest:
    data = json.dumps([{"senderId": "ACMEIN", "requestId": REQUEST_ID, "report": list(reports), "userId": "27001",
                        "campaignName": "API"}])
    return CallbackRequest("POST", url, {"content-type": "application/x-www-form-urlencoded"},
                           urlencode({"data": data}).encode())


def json_callback(payload: Any, url: str = URL) -> CallbackRequest:
    return CallbackRequest("POST", url, {"content-type": "application/json"}, json.dumps(payload).encode())


def test_v2_callback_reports_every_number_of_the_request() -> None:
    reports = Msg91Provider(CONFIG).status_callback(v2_callback(
        {"date": "2024-05-22 10:06:20", "number": "919800000001", "status": "1", "desc": "DELIVERED"},
        {"date": "2024-05-22 10:06:21", "number": "919800000002", "status": "9", "desc": "NDNC", "failedReason": ""},
        {"date": "2024-05-22 10:06:22", "number": "919800000003", "status": "2", "desc": "FAILED",
         "failedReason": "Absent subscriber"},
    ))

    assert [(r.provider_message_id, r.state, r.error_kind, r.recipient) for r in reports] == [
        (f"{REQUEST_ID}:919800000001", "delivered", None, "+919800000001"),
        (f"{REQUEST_ID}:919800000002", "failed", ErrorKind.PERMANENT, "+919800000002"),
        (f"{REQUEST_ID}:919800000003", "undelivered", ErrorKind.TRANSIENT, "+919800000003"),
    ]
    assert reports[0].at == datetime(2024, 5, 22, 10, 6, 20, tzinfo=IST)
    assert "DND" in (reports[1].reason or "")
    assert reports[2].reason == "the operator could not deliver the message (Absent subscriber)"


STATUS_CASES = [
    pytest.param({"requestId": REQUEST_ID, "number": "919800000001", "status": "1", "desc": "DELIVERED",
                  "date": "2024-05-22 09:58:16"}, ("delivered", None, None), id="v3-delivered"),
    pytest.param({"requestId": REQUEST_ID, "number": "919800000001", "status": "17", "desc": "BLOCKED"},
                 ("failed", "17", ErrorKind.PERMANENT), id="v3-blocked"),
    pytest.param({"requestId": REQUEST_ID, "number": "919800000001", "status": "16", "desc": "REJECTED"},
                 ("failed", "16", ErrorKind.PERMANENT), id="v3-rejected-16"),
    pytest.param({"requestId": REQUEST_ID, "number": "919800000001", "status": "25", "desc": "REJECTED"},
                 ("failed", "25", ErrorKind.PERMANENT), id="v3-rejected-25"),
    pytest.param({"requestId": REQUEST_ID, "number": "919800000001", "status": "8", "desc": "SUBMITTED"},
                 (None, None, None), id="v3-unknown-status-ignored"),
    pytest.param({"requestId": REQUEST_ID, "telNum": "919800000001", "status": "Delivered",
                  "deliveryTime": "2025-09-07 13:11:02"}, ("delivered", None, None), id="new-word-status"),
    pytest.param({"requestId": REQUEST_ID, "telNum": "919800000001", "status": "9", "failureReason": "NDNC"},
                 ("failed", "9", ErrorKind.PERMANENT), id="new-ndnc"),
    pytest.param([{"requestId": REQUEST_ID, "telNum": "919800000001", "status": "1"}], ("delivered", None, None),
                 id="new-as-a-list"),
    pytest.param({"data": json.dumps([{"requestId": REQUEST_ID, "report": [
        {"number": "919800000001", "status": "1", "desc": "DELIVERED"}]}])}, ("delivered", None, None),
                 id="v2-posted-as-json"),
]


@pytest.mark.parametrize(("payload", "expected"), STATUS_CASES)
def test_json_callbacks(payload: Any, expected: tuple[Any, ...]) -> None:
    [report] = Msg91Provider(CONFIG).status_callback(json_callback(payload))

    assert report.provider_message_id == f"{REQUEST_ID}:919800000001"
    assert (report.state, report.error_code, report.error_kind) == expected


REJECTED = [
    pytest.param(v2_callback({"number": "919800000001", "status": "1"}, url=URL.replace(TOKEN, "forged-token-123456")),
                 403, id="forged-token"),
    pytest.param(v2_callback({"number": "919800000001", "status": "1"}, url=URL.split("?")[0]), 401, id="no-token"),
    pytest.param(CallbackRequest("POST", URL, {"content-type": "application/x-www-form-urlencoded"}, b"data=%7Bnot"),
                 400, id="data-not-json"),
    pytest.param(json_callback({"requestId": REQUEST_ID, "status": "1"}), 400, id="no-number"),
    pytest.param(json_callback({"number": "919800000001", "status": "1"}), 400, id="v3-no-request-id"),
    pytest.param(json_callback([{"data": [{"meta": "0", "description": "DELIVERED"}], "event": "delivered"}]), 400,
                 id="v4-has-no-ids"),
    pytest.param(CallbackRequest("POST", URL, {"content-type": "application/json"}, b"{oops"), 400, id="broken-json"),
    pytest.param(CallbackRequest("POST", URL, {"content-type": "application/json"}, b""), 400, id="empty-body"),
]


@pytest.mark.parametrize(("request_", "status"), REJECTED)
def test_bad_callbacks_are_rejected_with_a_4xx(request_: CallbackRequest, status: int) -> None:
    with pytest.raises(CallbackRejected) as rejected:
        Msg91Provider(CONFIG).status_callback(request_)
    assert rejected.value.status == status


def test_without_a_webhook_token_callbacks_are_refused() -> None:
    config = {k: v for k, v in CONFIG.items() if k != "webhook_token"}
    with pytest.raises(CallbackRejected) as rejected:
        Msg91Provider(config).status_callback(v2_callback({"number": "919800000001", "status": "1"}))
    assert rejected.value.status == 403


def test_status_map_reads_every_documented_code() -> None:
    assert {code: STATUS_MAP[code] for code in ("1", "2", "9", "16", "25", "17")} == {
        "1": "delivered", "2": "undelivered", "9": "failed", "16": "failed", "25": "failed", "17": "failed"}


async def test_there_is_no_status_or_inbound_polling() -> None:
    with pytest.raises(NotImplementedError):
        await Msg91Provider(CONFIG).fetch_statuses(["x"])
    with pytest.raises(CallbackRejected) as rejected:
        Msg91Provider(CONFIG).inbound_callback(json_callback({}))
    assert rejected.value.status == 404


# --- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "problems"),
    [
        (CONFIG, []),
        ({**CONFIG, "auth_key": "env:MSG91_AUTH_KEY"}, []),
        ({**CONFIG, "auth_key": "short"}, ["auth_key"]),
        ({**CONFIG, "sender": "AC"}, ["sender"]),
        ({**CONFIG, "sender": "ACME-IN"}, ["sender"]),
        ({**CONFIG, "route": "2"}, ["route"]),
        ({**CONFIG, "country": "44"}, ["country"]),
        ({**CONFIG, "dlt_template_id": "TPL-1"}, ["dlt_template_id"]),
        ({**CONFIG, "send_api": "flow"}, ["flow_template_id"]),
        ({**CONFIG, "send_api": "flow", "flow_template_id": "64f0c0ffee1234567890abcd"}, []),
        ({**CONFIG, "flow_body_variable": "1VAR"}, ["flow_body_variable"]),
        ({**CONFIG, "webhook_token": "short"}, ["webhook_token"]),
        ({"sender": "ACMEIN"}, ["auth_key"]),
    ],
    ids=["valid", "auth key from env", "short auth key", "short sender", "sender with a dash", "unknown route",
         "unknown country", "template id not digits", "flow without template", "flow with template",
         "bad variable name", "short webhook token", "no auth key"],
)
def test_validate_config(values: dict[str, str], problems: list[str]) -> None:
    assert [name for name, _ in Msg91Provider.validate_config(values)] == problems


def test_fields_and_capabilities() -> None:
    assert all(f.label and f.help for f in Msg91Provider.config_fields)
    assert [f.name for f in Msg91Provider.config_fields if f.secret] == ["auth_key", "webhook_token"]
    assert Msg91Provider.capabilities == Capabilities(max_batch=100, max_body_chars=2000, status_webhook=True, dlt=True)


# --- no secret in logs ------------------------------------------------------------------------


async def test_no_secret_reaches_a_log(fake: FakeMsg91, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")
    fake.answer_next(msg91_error("207", "Authentication failure"))
    adapter = provider(fake, client)

    await adapter.send([message("a")])
    await adapter.send([message("b")])
    await adapter.check_connection()
    adapter.status_callback(v2_callback({"number": "919800000001", "status": "1"}))

    assert "smsconsole.providers.msg91" in {record.name for record in caplog.records}
    for record in caplog.records:
        text = f"{record.getMessage()} {record.exc_text or ''}"
        if AUTH_KEY in text or TOKEN in text:
            # balance.php takes the key in its query, which httpx logs at INFO; the app runs httpx
            # at WARNING (smsconsole.logs), so only this record may carry it.
            assert record.name == "httpx" and record.levelno < logging.WARNING and "balance.php" in text
