"""Netcore adapter, against a loopback fake of the documented Single Message API: messages in →
exact form out → outcome (numbers sharing a text in one request, composite ids); error answers →
kinds; the connection check that cannot test; delivery reports through the configurable field
mapping → reports, or a 4xx; config; no secret in a log."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from smsconsole.providers.base import CallbackRejected, CallbackRequest, Capabilities, ErrorKind, OutboundMessage
from smsconsole.providers.netcore import NetcoreProvider
from tests.fakes.generic import Reply
from tests.fakes.netcore import FEED_ID, PASSWORD, USERNAME, FakeNetcore, netcore_error
from tests.fakes.server import Switchboard, unused_port

TOKEN = "tok-0123456789abcdef"
API_KEY = "nc-api-key-0123456789"
CONFIG = {"feed_id": FEED_ID, "username": USERNAME, "password": PASSWORD, "dlt_entity_id": "1101234567890123456",
          "dlt_template_id": "1107161234567890123", "webhook_token": TOKEN}
PATH = "/BulkSms/SingleMsgApi"
LONG_BODY = "Dear customer, your policy 12345 renews on 1 April; pay by UPI to avoid a lapse. " * 5


@pytest.fixture
def fake(server: tuple[Switchboard, str]) -> FakeNetcore:
    switchboard, url = server
    netcore = FakeNetcore()
    netcore.base_url = url
    switchboard.target = netcore.app
    return netcore


def provider(fake: FakeNetcore, client: httpx.AsyncClient, **config: str) -> NetcoreProvider:
    return NetcoreProvider({**CONFIG, **config}, client=client, base_url=fake.base_url)


def message(ref: str = "m-1", to: str = "+919812345678", body: str = "Your OTP is 1234", **fields: Any) -> OutboundMessage:
    return OutboundMessage(ref=ref, to=to, body=body, **fields)


# --- exact requests ---------------------------------------------------------------------------

FORM = {"feedid": FEED_ID, "username": USERNAME, "password": PASSWORD, "To": "919812345678", "Text": "Your OTP is 1234",
        "templateid": "1107161234567890123", "entityid": "1101234567890123456", "async": "0", "short": "0"}


@dataclass(frozen=True)
class RequestCase:
    id: str
    messages: list[OutboundMessage]
    forms: list[dict[str, str]]
    config: dict[str, str] = field(default_factory=dict)


REQUEST_CASES = [
    RequestCase("plain message", [message()], [FORM]),
    RequestCase("unicode text travels as UTF-8 (no flag is documented)",
                [message(body="आपका OTP 1234 है", encoding="UCS-2")], [{**FORM, "Text": "आपका OTP 1234 है"}]),
    RequestCase("a long message is sent whole", [message(body=LONG_BODY, segments=3)], [{**FORM, "Text": LONG_BODY}]),
    RequestCase("async and short URLs when configured", [message()], [{**FORM, "async": "1", "short": "1"}],
                config={"async": "true", "short_urls": "true"}),
    RequestCase("the message's DLT ids win over the config",
                [message(options={"dlt_template_id": "1107169999999999999", "dlt_entity_id": "1101111111111111111"})],
                [{**FORM, "templateid": "1107169999999999999", "entityid": "1101111111111111111"}]),
    RequestCase("numbers sharing a text go in one request; another text gets its own",
                [message("a", "+919800000001", "Sale"), message("b", "+919800000002", "Sale"),
                 message("c", "+919800000003", "Hi Ravi")],
                [{**FORM, "To": "919800000001,919800000002", "Text": "Sale"},
                 {**FORM, "To": "919800000003", "Text": "Hi Ravi"}]),
    RequestCase("the same number twice goes in two requests",
                [message("a", "+919800000001", "Sale"), message("b", "+919800000001", "Sale")],
                [{**FORM, "To": "919800000001", "Text": "Sale"}, {**FORM, "To": "919800000001", "Text": "Sale"}]),
]


@pytest.mark.parametrize("case", REQUEST_CASES, ids=lambda case: case.id)
async def test_send_builds_the_exact_requests(case: RequestCase, fake: FakeNetcore, client: httpx.AsyncClient) -> None:
    outcomes = await provider(fake, client, **case.config).send(case.messages)

    assert [(r.method, r.path) for r in fake.requests] == [("POST", PATH)] * len(case.forms)
    for request, form in zip(fake.requests, case.forms, strict=True):
        assert request.header("content-type") == "application/x-www-form-urlencoded"
        assert dict(request.form) == form and len(request.form) == len(form)
        assert request.query == "" and request.header("api-key") is None
    assert [o.ref for o in outcomes] == [m.ref for m in case.messages]
    assert all(o.accepted and o.provider_status == "accepted" for o in outcomes)


async def test_each_recipient_gets_the_request_id_with_its_number(fake: FakeNetcore, client: httpx.AsyncClient) -> None:
    outcomes = await provider(fake, client).send([message("a", "+919800000001"), message("b", "+919800000002")])

    [request_id] = fake.request_ids
    assert [o.provider_message_id for o in outcomes] == [f"{request_id}:919800000001", f"{request_id}:919800000002"]


async def test_fifty_one_numbers_take_two_requests(fake: FakeNetcore, client: httpx.AsyncClient) -> None:
    batch = [message(str(i), f"+9198000{i:05d}", "Sale") for i in range(51)]

    outcomes = await provider(fake, client).send(batch)

    assert [len(dict(r.form)["To"].split(",")) for r in fake.requests] == [50, 1]
    assert all(o.accepted for o in outcomes)


async def test_the_api_key_header_when_configured(fake: FakeNetcore, client: httpx.AsyncClient) -> None:
    await provider(fake, client, api_key=API_KEY).send([message()])

    assert fake.requests[0].header("api-key") == API_KEY


# --- errors -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorCase:
    id: str
    reply: Reply | None
    kind: ErrorKind
    says: str = ""
    config: dict[str, str] = field(default_factory=dict)


ERROR_CASES = [
    ErrorCase("wrong password (from the fake)", None, ErrorKind.CONFIGURATION, "check the feed id",
              {"password": "wrong-password"}),
    ErrorCase("no credits", netcore_error("107", "Insufficient credits"), ErrorKind.CONFIGURATION, "no credits"),
    ErrorCase("template mismatch", netcore_error("120", "Template ID does not match"), ErrorKind.CONFIGURATION, "DLT"),
    ErrorCase("invalid mobile", netcore_error("103", "Invalid mobile number"), ErrorKind.PERMANENT, "not valid"),
    ErrorCase("DND number", netcore_error("130", "Number is in DND"), ErrorKind.PERMANENT, "DND"),
    ErrorCase("an unknown description", netcore_error("199", "Something new"), ErrorKind.PERMANENT, "Something new"),
    ErrorCase("429 with Retry-After", Reply(429, "slow down", {"Retry-After": "9"}), ErrorKind.TRANSIENT),
    ErrorCase("503", Reply(503, "<html>Service Unavailable</html>"), ErrorKind.TRANSIENT, "Service Unavailable"),
    ErrorCase("200 without a request id: outcome unknown", Reply(200, "OK"), ErrorKind.UNKNOWN, "without a request id"),
]


@pytest.mark.parametrize("case", ERROR_CASES, ids=lambda case: case.id)
async def test_send_classifies_error_answers(case: ErrorCase, fake: FakeNetcore, client: httpx.AsyncClient) -> None:
    if case.reply:
        fake.answer_next(case.reply)

    [outcome] = await provider(fake, client, **case.config).send([message()])

    assert outcome.error is not None and outcome.provider_message_id is None
    assert outcome.error.kind is case.kind
    assert case.says in str(outcome.error)


async def test_transport_failures(fake: FakeNetcore) -> None:
    fake.answer_next(Reply(200, "<RESULT REQID='1'></RESULT>", delay=2))
    async with httpx.AsyncClient(timeout=0.2) as slow:
        [timed_out] = await provider(fake, slow).send([message()])
    async with httpx.AsyncClient(timeout=2) as http:
        refused = NetcoreProvider(CONFIG, client=http, base_url=f"http://127.0.0.1:{unused_port()}")
        [not_connected] = await refused.send([message()])

    assert timed_out.error is not None and timed_out.error.kind is ErrorKind.UNKNOWN
    assert not_connected.error is not None and not_connected.error.kind is ErrorKind.TRANSIENT


async def test_check_connection_says_it_cannot_test_without_sending(fake: FakeNetcore, client: httpx.AsyncClient) -> None:
    check = await provider(fake, client).check_connection()

    assert not check.ok and "without sending" in check.detail
    assert fake.requests == []


# --- delivery reports through the field mapping -----------------------------------------------

URL = f"https://console.example.com/callbacks/netcore/status?token={TOKEN}"


def get_callback(params: dict[str, str], url: str = URL) -> CallbackRequest:
    return CallbackRequest("GET", f"{url}&{urlencode(params)}")


def json_callback(payload: Any, url: str = URL) -> CallbackRequest:
    return CallbackRequest("POST", url, {"content-type": "application/json"}, json.dumps(payload).encode())


RECEIPT_CASES = [
    pytest.param({}, {"reqid": "1000001", "msisdn": "919800000001", "status": "DELIVRD"},
                 ("1000001:919800000001", "delivered", None), id="default-mapping-delivered"),
    pytest.param({}, {"reqid": "1000001", "msisdn": "+919800000001", "status": "UNDELIV"},
                 ("1000001:919800000001", "undelivered", ErrorKind.TRANSIENT), id="undelivered-is-transient"),
    pytest.param({}, {"reqid": "1000001", "msisdn": "919800000001", "status": "DND"},
                 ("1000001:919800000001", "failed", ErrorKind.PERMANENT), id="dnd-is-permanent"),
    pytest.param({}, {"reqid": "1000001", "msisdn": "919800000001", "status": "ACCEPTD"},
                 ("1000001:919800000001", "sent", None), id="sent"),
    pytest.param({}, {"reqid": "1000001", "msisdn": "919800000001", "status": "WHATEVER"},
                 ("1000001:919800000001", None, None), id="unmapped-ignored"),
    pytest.param({"receipt_id_field": "tid", "receipt_number_field": "none", "receipt_status_field": "dlr",
                  "receipt_status_values": "1=delivered, 2=undelivered"},
                 {"tid": "1000001001", "dlr": "2"}, ("1000001001", "undelivered", ErrorKind.TRANSIENT),
                 id="custom-mapping-without-number"),
]


@pytest.mark.parametrize(("config", "params", "expected"), RECEIPT_CASES)
def test_receipts_by_query_parameters(config: dict[str, str], params: dict[str, str], expected: tuple[Any, ...]) -> None:
    [report] = NetcoreProvider({**CONFIG, **config}).status_callback(get_callback(params))

    assert (report.provider_message_id, report.state, report.error_kind) == expected


def test_receipts_by_form_and_json_with_an_error_field() -> None:
    adapter = NetcoreProvider({**CONFIG, "receipt_error_field": "reason"})
    form = CallbackRequest("POST", URL, {"content-type": "application/x-www-form-urlencoded"}, urlencode(
        {"reqid": "1000001", "msisdn": "919800000001", "status": "REJECTD", "reason": "Blacklisted"}).encode())
    [from_form] = adapter.status_callback(form)
    from_json = adapter.status_callback(json_callback([
        {"reqid": "1000001", "msisdn": "919800000002", "status": "DELIVRD"},
        {"reqid": 1000001, "msisdn": 919800000003, "status": "EXPIRED"}]))

    assert (from_form.state, from_form.error_kind, from_form.error_code, from_form.recipient) == (
        "failed", ErrorKind.PERMANENT, "Blacklisted", "+919800000001")
    assert [(r.provider_message_id, r.state) for r in from_json] == [
        ("1000001:919800000002", "delivered"), ("1000001:919800000003", "undelivered")]


def test_the_receipt_settings_are_the_generic_mapping_with_netcore_defaults() -> None:
    names = [f.name for f in NetcoreProvider.config_fields if f.name.startswith(("receipt_", "inbound_"))]
    assert names == ["receipt_items", "receipt_id_field", "receipt_status_field", "receipt_number_field",
                     "receipt_error_field", "receipt_status_values"]
    assert (NetcoreProvider.field("receipt_id_field").default, NetcoreProvider.field("receipt_number_field").default) == (
        "reqid", "msisdn")


REJECTED = [
    pytest.param(get_callback({"reqid": "1", "msisdn": "919800000001", "status": "DELIVRD"},
                              url=URL.replace(TOKEN, "forged-token-123456")), 403, id="forged-token"),
    pytest.param(CallbackRequest("GET", "https://console.example.com/callbacks/netcore/status?reqid=1&status=DELIVRD"),
                 401, id="no-token"),
    pytest.param(get_callback({"reqid": "1", "status": "DELIVRD"}), 400, id="no-number"),
    pytest.param(get_callback({"msisdn": "919800000001", "status": "DELIVRD"}), 400, id="no-request-id"),
    pytest.param(json_callback({"reqid": "1", "msisdn": "919800000001"}), 400, id="no-status"),
    pytest.param(json_callback(["not an object"]), 400, id="json-not-objects"),
    pytest.param(CallbackRequest("POST", URL, {"content-type": "application/json"}, b"{broken"), 400, id="broken-json"),
]


@pytest.mark.parametrize(("request_", "status"), REJECTED)
def test_bad_callbacks_are_rejected_with_a_4xx(request_: CallbackRequest, status: int) -> None:
    with pytest.raises(CallbackRejected) as rejected:
        NetcoreProvider(CONFIG).status_callback(request_)
    assert rejected.value.status == status


# --- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "problems"),
    [
        (CONFIG, []),
        ({**CONFIG, "password": "env:NETCORE_PASSWORD", "api_key": "env:NETCORE_API_KEY"}, []),
        ({**CONFIG, "feed_id": "feed-1"}, ["feed_id"]),
        ({**CONFIG, "username": "two words"}, ["username"]),
        ({**CONFIG, "dlt_entity_id": ""}, ["dlt_entity_id"]),
        ({**CONFIG, "dlt_template_id": "T-1"}, ["dlt_template_id"]),
        ({**CONFIG, "async": "maybe"}, ["async"]),
        ({**CONFIG, "receipt_status_field": "st atus"}, ["receipt_status_field"]),
        ({**CONFIG, "receipt_status_values": "DELIVRD=arrived"}, ["receipt_status_values"]),
        ({"username": USERNAME}, ["feed_id", "password", "dlt_entity_id"]),
    ],
    ids=["valid", "secrets from env", "feed id not digits", "username with a space", "no entity id",
         "template id not digits", "async not a bool", "bad field name", "status value to an unknown state",
         "credentials missing"],
)
def test_validate_config(values: dict[str, str], problems: list[str]) -> None:
    assert [name for name, _ in NetcoreProvider.validate_config(values)] == problems


def test_fields_and_capabilities() -> None:
    assert all(f.label and f.help for f in NetcoreProvider.config_fields)
    assert [f.name for f in NetcoreProvider.config_fields if f.secret] == ["password", "api_key", "webhook_token"]
    assert NetcoreProvider.capabilities == Capabilities(max_batch=50, status_webhook=True, dlt=True)


# --- no secret in logs ------------------------------------------------------------------------


async def test_no_secret_reaches_a_log(fake: FakeNetcore, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")
    adapter = provider(fake, client, api_key=API_KEY)

    await adapter.send([message("a")])
    await provider(fake, client, password="wrong-" + PASSWORD).send([message("b")])
    await adapter.check_connection()
    adapter.status_callback(get_callback({"reqid": "1", "msisdn": "919800000001", "status": "DELIVRD"}))

    assert {"smsconsole.providers.netcore", "httpx"} <= {record.name for record in caplog.records}
    for record in caplog.records:
        text = f"{record.getMessage()} {record.exc_text or ''}"
        assert not any(secret in text for secret in (PASSWORD, API_KEY, TOKEN)), record.name
