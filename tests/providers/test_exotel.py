"""Exotel adapter, against a loopback fake of Exotel's SMS API v1: messages in → exact request out
→ outcome (one per message, or bulksend when enabled); RestException errors → kinds; the balance
check; status callbacks in → reports out, or a 4xx; fetching one status; config; no secret in a log."""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from smsconsole.providers.base import CallbackRejected, CallbackRequest, Capabilities, ErrorKind, OutboundMessage
from smsconsole.providers.exotel import ERROR_RULES, HOSTS, IST, STATUS_MAP, ExotelProvider
from tests.fakes.exotel import ACCOUNT_SID, API_KEY, API_TOKEN, FakeExotel, rest_exception
from tests.fakes.generic import Reply
from tests.fakes.server import Switchboard, unused_port

TOKEN = "tok-0123456789abcdef"
CONFIG = {"account_sid": ACCOUNT_SID, "api_key": API_KEY, "api_token": API_TOKEN, "sender": "ACMEIN",
          "dlt_entity_id": "1101234567890123456", "dlt_template_id": "1107161234567890123", "webhook_token": TOKEN}
SEND_PATH = f"/v1/Accounts/{ACCOUNT_SID}/Sms/send.json"
BULK_PATH = f"/v1/Accounts/{ACCOUNT_SID}/Sms/bulksend.json"
CALLBACK = "https://console.example.com/callbacks/exotel/status"
LONG_BODY = ("Your order has shipped and will arrive by Friday; track it in the app. " * 25)[:2000]


@pytest.fixture
def fake(server: tuple[Switchboard, str]) -> FakeExotel:
    switchboard, url = server
    exotel = FakeExotel()
    exotel.base_url = url
    switchboard.target = exotel.app
    return exotel


def provider(fake: FakeExotel, client: httpx.AsyncClient, **config: str) -> ExotelProvider:
    return ExotelProvider({**CONFIG, **config}, client=client, base_url=fake.base_url)


def message(ref: str = "m-1", to: str = "+919812345678", body: str = "Your OTP is 1234", **fields: Any) -> OutboundMessage:
    return OutboundMessage(ref=ref, to=to, body=body, **fields)


# --- exact requests ---------------------------------------------------------------------------

BASE_FORM = {"From": "ACMEIN", "To": "+919812345678", "Body": "Your OTP is 1234", "EncodingType": "plain",
             "DltEntityId": "1101234567890123456", "DltTemplateId": "1107161234567890123", "CustomField": "m-1"}


@dataclass(frozen=True)
class RequestCase:
    id: str
    message: OutboundMessage
    form: dict[str, str]
    config: dict[str, str] = field(default_factory=dict)


REQUEST_CASES = [
    RequestCase("plain message with DLT ids and our reference", message(), BASE_FORM),
    RequestCase("unicode message", message(body="आपका OTP 1234 है", encoding="UCS-2"),
                {**BASE_FORM, "Body": "आपका OTP 1234 है", "EncodingType": "unicode"}),
    RequestCase("a 2,000-character message is sent whole", message(body=LONG_BODY, segments=13),
                {**BASE_FORM, "Body": LONG_BODY}),
    RequestCase("status callback carries the webhook token", message(status_callback_url=CALLBACK),
                {**BASE_FORM, "StatusCallback": f"{CALLBACK}?token={TOKEN}"}),
    RequestCase("message options win over the configured DLT ids and sender",
                message(sender="0801234567", options={"dlt_template_id": "1107169999999999999",
                                                      "dlt_entity_id": "1101111111111111111", "sms_type": "promotional"}),
                {**BASE_FORM, "From": "0801234567", "DltTemplateId": "1107169999999999999",
                 "DltEntityId": "1101111111111111111", "SmsType": "promotional"}),
    RequestCase("SMS type and priority when configured", message(),
                {**BASE_FORM, "SmsType": "transactional", "Priority": "high"},
                config={"sms_type": "transactional", "priority": "high"}),
    RequestCase("no DLT ids configured: none are sent", message(),
                {k: v for k, v in BASE_FORM.items() if not k.startswith("Dlt")},
                config={"dlt_entity_id": "", "dlt_template_id": ""}),
]


@pytest.mark.parametrize("case", REQUEST_CASES, ids=lambda case: case.id)
async def test_send_builds_the_exact_request(case: RequestCase, fake: FakeExotel, client: httpx.AsyncClient) -> None:
    [outcome] = await provider(fake, client, **case.config).send([case.message])

    [request] = fake.requests
    assert (request.method, request.path) == ("POST", SEND_PATH)
    assert request.header("content-type") == "application/x-www-form-urlencoded"
    assert request.basic_auth == (API_KEY, API_TOKEN)
    assert dict(request.form) == case.form and len(request.form) == len(case.form)
    assert outcome.accepted and outcome.provider_message_id == fake.issued_sids[0]
    assert (outcome.provider_status, outcome.http_status) == ("queued", 200)


async def test_without_bulk_a_batch_is_one_request_per_message(fake: FakeExotel, client: httpx.AsyncClient) -> None:
    adapter = provider(fake, client)
    outcomes = await adapter.send([message("a", "+919800000001"), message("b", "+91980")])

    assert adapter.max_batch == 1
    assert [r.path for r in fake.requests] == [SEND_PATH, SEND_PATH]
    assert [(o.ref, o.accepted) for o in outcomes] == [("a", True), ("b", False)]
    assert outcomes[1].error is not None and outcomes[1].error.kind is ErrorKind.PERMANENT
    assert "Invalid Recipient" in str(outcomes[1].error)


async def test_bulk_sends_a_batch_in_one_bulksend_request(fake: FakeExotel, client: httpx.AsyncClient) -> None:
    adapter = provider(fake, client, bulk="true")
    batch = [message("a", "+919800000001", "Hi Ravi", status_callback_url=CALLBACK),
             message("b", "+919800000002", "Hi Priya", status_callback_url=CALLBACK),
             message("c", "+91980", "Hi nobody", status_callback_url=CALLBACK)]

    outcomes = await adapter.send(batch)

    assert adapter.max_batch == 100
    [request] = fake.requests
    assert (request.method, request.path, request.basic_auth) == ("POST", BULK_PATH, (API_KEY, API_TOKEN))
    dlt = {"DltEntityId": "1101234567890123456", "DltTemplateId": "1107161234567890123"}
    expected: list[tuple[str, str]] = [("From", "ACMEIN"), ("EncodingType", "plain"),
                                       ("StatusCallback", f"{CALLBACK}?token={TOKEN}")]
    for index, m in enumerate(batch):
        item = {"To": m.to, "Body": m.body, "From": "ACMEIN", **dlt, "CustomField": m.ref}
        expected += [(f"Messages[{index}][{k}]", v) for k, v in item.items()]
    assert request.form == expected
    assert [o.provider_message_id for o in outcomes[:2]] == fake.issued_sids
    assert outcomes[2].error is not None and outcomes[2].error.kind is ErrorKind.PERMANENT


async def test_bulk_splits_by_encoding_and_repeated_numbers(fake: FakeExotel, client: httpx.AsyncClient) -> None:
    batch = [message("a", "+919800000001", "One"), message("b", "+919800000002", "दो", encoding="UCS-2"),
             message("c", "+919800000003", "Three"), message("d", "+919800000001", "Four")]

    outcomes = await provider(fake, client, bulk="true").send(batch)

    assert [(r.path, dict(r.form).get("EncodingType")) for r in fake.requests] == [
        (BULK_PATH, "plain"), (SEND_PATH, "plain"), (SEND_PATH, "unicode")]  # a group of one is a plain send
    assert all(o.accepted for o in outcomes) and len({o.provider_message_id for o in outcomes}) == 4


async def test_a_bulk_answer_that_names_no_message_leaves_the_outcome_unknown(
    fake: FakeExotel, client: httpx.AsyncClient,
) -> None:
    fake.answer_next(Reply(200, [{"SMSMessage": {"Sid": "s1", "To": "+919800000001", "Status": "queued"}}]))
    outcomes = await provider(fake, client, bulk="true").send(
        [message("a", "+919800000001"), message("b", "+919800000002")])

    assert outcomes[0].provider_message_id == "s1"
    assert outcomes[1].error is not None and outcomes[1].error.kind is ErrorKind.UNKNOWN


# --- errors -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorCase:
    id: str
    reply: Reply
    kind: ErrorKind
    says: str = ""
    retry_after: float | None = None


ERROR_CASES = [
    ErrorCase("400 invalid recipient", rest_exception(400, "Invalid Recipient [+9198]"), ErrorKind.PERMANENT,
              "Invalid Recipient"),
    ErrorCase("401 bad credentials", rest_exception(401, "Authentication failed.", code="UNAUTHORIZED"),
              ErrorKind.CONFIGURATION, "check the API key"),
    ErrorCase("402 plan limit", rest_exception(402, "Payment Required"), ErrorKind.CONFIGURATION, "balance"),
    ErrorCase("403 insufficient balance", rest_exception(403, "Insufficient balance to send the SMS"),
              ErrorKind.CONFIGURATION, "Insufficient balance"),
    ErrorCase("403 account not active", rest_exception(403, "Account is not active"), ErrorKind.CONFIGURATION),
    ErrorCase("404 unknown account", rest_exception(404, "Not Found"), ErrorKind.CONFIGURATION, "region"),
    ErrorCase("409 duplicate", rest_exception(409, "Conflict"), ErrorKind.PERMANENT, "duplicate"),
    ErrorCase("429 with Retry-After", rest_exception(429, "Too Many Requests", {"Retry-After": "30"}),
              ErrorKind.TRANSIENT, "200 a minute", 30),
    ErrorCase("500 internal error", rest_exception(500, "Internal Server Error"), ErrorKind.TRANSIENT),
    ErrorCase("XML RestException (Exotel's default format)",
              Reply(403, "<TwilioResponse><RestException><Status>403</Status><Message>Account validity has expired"
                         "</Message></RestException></TwilioResponse>"), ErrorKind.CONFIGURATION, "validity has expired"),
    ErrorCase("200 without an SMSMessage: outcome unknown", Reply(200, {"ok": True}), ErrorKind.UNKNOWN, "without an SMS Sid"),
    ErrorCase("200 not JSON: outcome unknown", Reply(200, "<html>"), ErrorKind.UNKNOWN, "without an SMS Sid"),
]


@pytest.mark.parametrize("case", ERROR_CASES, ids=lambda case: case.id)
async def test_send_classifies_error_answers(case: ErrorCase, fake: FakeExotel, client: httpx.AsyncClient) -> None:
    fake.answer_next(case.reply)

    [outcome] = await provider(fake, client).send([message()])

    assert outcome.error is not None and outcome.provider_message_id is None
    assert outcome.error.kind is case.kind
    assert outcome.error.retry_after == case.retry_after
    assert outcome.http_status == case.reply.status
    assert case.says in str(outcome.error)


async def test_transport_failures(fake: FakeExotel) -> None:
    fake.answer_next(Reply(200, {"SMSMessage": {"Sid": "x"}}, delay=2))
    async with httpx.AsyncClient(timeout=0.2) as slow:
        [timed_out] = await provider(fake, slow).send([message()])
    async with httpx.AsyncClient(timeout=2) as http:
        refused = ExotelProvider(CONFIG, client=http, base_url=f"http://127.0.0.1:{unused_port()}")
        [not_connected] = await refused.send([message()])

    assert timed_out.error is not None and timed_out.error.kind is ErrorKind.UNKNOWN
    assert not_connected.error is not None and not_connected.error.kind is ErrorKind.TRANSIENT


# --- connection check -------------------------------------------------------------------------


async def test_check_connection_reads_the_balance(fake: FakeExotel, client: httpx.AsyncClient) -> None:
    check = await provider(fake, client).check_connection()

    assert check.ok and check.detail == "Exotel account acme1: balance 1543.75 INR (Pay As You Go)"
    [request] = fake.requests
    assert (request.method, request.path, request.basic_auth) == (
        "GET", f"/v1/Accounts/{ACCOUNT_SID}/Balance.json", (API_KEY, API_TOKEN))


@pytest.mark.parametrize(
    ("config", "reply", "says"),
    [({"api_token": "0" * 48}, None, "check the API key, API token and account SID"),
     ({"account_sid": "other"}, None, "check the account SID and the cluster"),
     ({}, Reply(200, {"Account": {}}), "without a balance"),
     ({}, rest_exception(503, "Service Unavailable"), "Service Unavailable")],
    ids=["wrong token", "unknown account", "no balance in the answer", "503"],
)
async def test_check_connection_fails_with_a_one_line_reason(
    config: dict[str, str], reply: Reply | None, says: str, fake: FakeExotel, client: httpx.AsyncClient,
) -> None:
    if reply:
        fake.answer_next(reply)
    check = await provider(fake, client, **config).check_connection()

    assert not check.ok and says in check.detail and "\n" not in check.detail


def test_the_cluster_picks_the_host_and_base_url_still_overrides() -> None:
    assert ExotelProvider({**CONFIG, "region": "mumbai"}).base_url == "https://api.in.exotel.com"
    assert ExotelProvider(CONFIG).base_url == HOSTS["singapore"] == "https://api.exotel.com"
    assert ExotelProvider({**CONFIG, "region": "mumbai"}, base_url="http://127.0.0.1:9").base_url == "http://127.0.0.1:9"


# --- status callbacks -------------------------------------------------------------------------

CALLBACK_URL = f"{CALLBACK}?token={TOKEN}"


def callback(params: dict[str, str], url: str = CALLBACK_URL) -> CallbackRequest:
    return CallbackRequest("POST", url, {"content-type": "application/x-www-form-urlencoded"}, urlencode(params).encode())


STATUS_CASES = [
    pytest.param({"Status": "sent", "DetailedStatusCode": "20005", "DetailedStatus": "DELIVERED_TO_HANDSET"},
                 ("delivered", None, None), id="sent-is-delivered"),
    pytest.param({"Status": "failed_dnd", "DetailedStatusCode": "23005", "DetailedStatus": "FAILED_DND"},
                 ("failed", "23005", ErrorKind.PERMANENT), id="failed-dnd"),
    pytest.param({"Status": "failed", "DetailedStatusCode": "24105", "DetailedStatus": "FAILED_HANDSET_ERROR"},
                 ("failed", "24105", ErrorKind.TRANSIENT), id="failed-handset"),
    pytest.param({"Status": "failed", "DetailedStatusCode": "23185", "DetailedStatus": "DLT_TEMPLATE_DOES_NOT_MATCH"},
                 ("failed", "23185", ErrorKind.CONFIGURATION), id="failed-dlt-template"),
    pytest.param({"Status": "failed", "DetailedStatusCode": "29999", "DetailedStatus": "SOMETHING_NEW"},
                 ("failed", "29999", ErrorKind.PERMANENT), id="failed-unknown-code"),
    pytest.param({"Status": "submitted", "DetailedStatusCode": "21020"}, ("sent", None, None), id="submitted"),
    pytest.param({"Status": "mystery"}, (None, None, None), id="unknown-status-ignored"),
]


@pytest.mark.parametrize(("params", "expected"), STATUS_CASES)
def test_status_callbacks(params: dict[str, str], expected: tuple[Any, ...]) -> None:
    base = {"SmsSid": "0f477d60517e6e6a0f6d9a7e9af8630e", "To": "+919812345678", "SmsUnits": "1",
            "DateSent": "2026-03-01 10:15:00", "CustomField": "m-1"}
    [report] = ExotelProvider(CONFIG).status_callback(callback({**base, **params}))

    assert (report.provider_message_id, report.ref, report.recipient) == (base["SmsSid"], "m-1", "+919812345678")
    assert (report.state, report.error_code, report.error_kind) == expected
    assert report.at == datetime(2026, 3, 1, 10, 15, tzinfo=IST)


def test_failed_dnd_says_dnd() -> None:
    [report] = ExotelProvider(CONFIG).status_callback(callback({"SmsSid": "s1", "Status": "failed_dnd"}))
    assert report.error_kind is ErrorKind.PERMANENT and "DND" in (report.reason or "")


REJECTED = [
    pytest.param(callback({"SmsSid": "s1", "Status": "sent"}, url=CALLBACK_URL.replace(TOKEN, "forged-token-123456")),
                 403, id="forged-token"),
    pytest.param(callback({"SmsSid": "s1", "Status": "sent"}, url=CALLBACK), 401, id="no-token"),
    pytest.param(callback({"Status": "sent"}), 400, id="no-sid"),
    pytest.param(callback({"SmsSid": "s1"}), 400, id="no-status"),
    pytest.param(CallbackRequest("POST", CALLBACK_URL, {"content-type": "application/x-www-form-urlencoded"},
                                 b"\xff\xfe"), 400, id="not-utf8"),
]


@pytest.mark.parametrize(("request_", "status"), REJECTED)
def test_bad_callbacks_are_rejected_with_a_4xx(request_: CallbackRequest, status: int) -> None:
    with pytest.raises(CallbackRejected) as rejected:
        ExotelProvider(CONFIG).status_callback(request_)
    assert rejected.value.status == status


def test_tables_cover_the_documented_statuses_and_codes() -> None:
    assert STATUS_MAP == {"queued": "sent", "sending": "sent", "submitted": "sent", "sent": "delivered",
                          "failed_dnd": "failed", "failed": "failed"}
    kinds = {rule.code: rule.kind for rule in ERROR_RULES if rule.on == "code"}
    assert {kinds[c] for c in ("23080", "23081", "23082", "23083", "23181", "23185", "23281")} == {
        ErrorKind.CONFIGURATION}
    assert {kinds[c] for c in ("23005", "23015", "23060", "24120")} == {ErrorKind.PERMANENT}
    assert {kinds[c] for c in ("24010", "24105", "24110", "23035")} == {ErrorKind.TRANSIENT}


# --- fetching statuses ------------------------------------------------------------------------


async def test_fetch_statuses_reads_each_message_and_skips_unknown_ones(
    fake: FakeExotel, client: httpx.AsyncClient,
) -> None:
    adapter = provider(fake, client)
    outcomes = await adapter.send([message("a", "+919800000001"), message("b", "+919800000002")])
    first, second = (o.provider_message_id or "" for o in outcomes)
    fake.set_status(first, "sent", "20005", "DELIVERED_TO_HANDSET")
    fake.set_status(second, "failed_dnd", "23005", "FAILED_DND")

    reports = await adapter.fetch_statuses([first, second, "f" * 32])

    assert [(r.provider_message_id, r.state, r.error_kind) for r in reports] == [
        (first, "delivered", None), (second, "failed", ErrorKind.PERMANENT)]
    assert fake.requests[-1].path == f"/v1/Accounts/{ACCOUNT_SID}/SMS/Messages/{'f' * 32}.json"
    assert reports[0].at == datetime(2026, 3, 1, 10, 15, tzinfo=IST)


async def test_fetch_with_bad_credentials_is_a_configuration_error(fake: FakeExotel, client: httpx.AsyncClient) -> None:
    with pytest.raises(Exception) as raised:
        await provider(fake, client, api_token="0" * 48).fetch_statuses(["abc"])
    assert getattr(raised.value, "kind", None) is ErrorKind.CONFIGURATION


async def test_there_is_no_list_to_poll_and_no_inbound() -> None:
    with pytest.raises(NotImplementedError):
        await ExotelProvider(CONFIG).poll_statuses(None)
    with pytest.raises(CallbackRejected):
        ExotelProvider(CONFIG).inbound_callback(callback({"From": "+919800000001", "Body": "hi"}))


# --- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "problems"),
    [
        (CONFIG, []),
        ({**CONFIG, "api_token": "env:EXOTEL_API_TOKEN", "region": "mumbai"}, []),
        ({**CONFIG, "region": "london"}, ["region"]),
        ({**CONFIG, "account_sid": "a b"}, ["account_sid"]),
        ({**CONFIG, "api_key": "key!"}, ["api_key"]),
        ({**CONFIG, "sender": "A"}, ["sender"]),
        ({**CONFIG, "dlt_entity_id": "PE-1"}, ["dlt_entity_id"]),
        ({**CONFIG, "sms_type": "otp"}, ["sms_type"]),
        ({**CONFIG, "priority": "urgent"}, ["priority"]),
        ({**CONFIG, "bulk": "sometimes"}, ["bulk"]),
        ({"sender": "ACMEIN"}, ["account_sid", "api_key", "api_token"]),
    ],
    ids=["valid", "env token and mumbai", "unknown region", "sid with a space", "key with a symbol", "short sender",
         "entity id not digits", "unknown sms type", "unknown priority", "bulk not a bool", "credentials missing"],
)
def test_validate_config(values: dict[str, str], problems: list[str]) -> None:
    assert [name for name, _ in ExotelProvider.validate_config(values)] == problems


def test_fields_and_capabilities() -> None:
    assert all(f.label and f.help for f in ExotelProvider.config_fields)
    assert [f.name for f in ExotelProvider.config_fields if f.secret] == ["api_token", "webhook_token"]
    assert ExotelProvider.field("region").choices == ("singapore", "mumbai")
    assert ExotelProvider.capabilities == Capabilities(max_batch=100, max_body_chars=2000, status_webhook=True, dlt=True,
                                                         status_lookup=True)


# --- no secret in logs ------------------------------------------------------------------------


async def test_no_secret_reaches_a_log(fake: FakeExotel, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")
    adapter = provider(fake, client)
    wrong = provider(fake, client, api_token="wrong" + API_TOKEN[5:])

    await adapter.send([message(status_callback_url=CALLBACK)])
    await wrong.send([message()])
    await adapter.check_connection()
    await wrong.check_connection()
    await provider(fake, client, bulk="true").send([message("a", "+919800000001"), message("b", "+919800000002")])

    secrets = [API_TOKEN, "wrong" + API_TOKEN[5:], TOKEN]
    secrets += [base64.b64encode(f"{API_KEY}:{s}".encode()).decode() for s in secrets[:2]]
    assert {"smsconsole.providers.exotel", "httpx"} <= {record.name for record in caplog.records}
    for record in caplog.records:
        text = f"{record.getMessage()} {record.exc_text or ''}"
        assert not any(secret in text for secret in secrets), record.name
