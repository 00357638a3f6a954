"""Infobip adapter, against a loopback fake of the Infobip SMS API v3: messages in → exact request
out → per-destination outcomes; errors; connection check; config; callbacks (token in the URL) in →
reports out or a 4xx; pulling reports, logs and the inbox."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from smsconsole.providers.base import CallbackRejected, CallbackRequest, Capabilities, ErrorKind, OutboundMessage
from smsconsole.providers.infobip import ERROR_RULES, STATUS_MAP, InfobipProvider, message_id_for
from tests.fakes.infobip import (
    API_KEY,
    FakeInfobip,
    Reply,
    api_error,
    rejected,
    service_exception,
)
from tests.fakes.server import Switchboard, unused_port

TOKEN = "t0ken-0123456789abcdef"
CONFIG = {"account_url": "https://xxxxx.api.infobip.com", "api_key": API_KEY, "sender": "ACME",
          "webhook_token": TOKEN}
CALLBACK_URL = "https://console.example.com/callbacks/infobip-main/status"
LONG_BODY = ("Infobip splits long texts into parts on its side. " * 40)[:1600]


@pytest.fixture
def fake(server: tuple[Switchboard, str]) -> Iterator[FakeInfobip]:
    switchboard, url = server
    infobip = FakeInfobip()
    infobip.base_url = url
    switchboard.target = infobip.app
    yield infobip
    infobip.close()


def make(fake: FakeInfobip, client: httpx.AsyncClient, **config: str) -> InfobipProvider:
    return InfobipProvider({**CONFIG, **config}, client=client, base_url=fake.base_url)


def message(ref: str = "m-1", to: str = "+447400123456", **fields: Any) -> OutboundMessage:
    return OutboundMessage(**{"ref": ref, "to": to, "body": "Hello", **fields})


def entry(ref: str = "m-1", to: str = "447400123456", text: str = "Hello", **extra: Any) -> dict[str, Any]:
    return {"destinations": [{"to": to, "messageId": ref}], "content": {"text": text}, "sender": "ACME",
            "webhooks": {"callbackData": ref}, **extra}


# --- exact requests ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestCase:
    id: str
    messages: list[OutboundMessage]
    entries: list[dict[str, Any]]
    config: dict[str, str] = field(default_factory=dict)


DLT = {"regional": {"indiaDlt": {"principalEntityId": "1201159123456789012",
                                 "contentTemplateId": "1207161234567890123"}}}

REQUEST_CASES = [
    RequestCase("plain: digits without '+', our ref as messageId and callbackData", [message()], [entry()]),
    RequestCase("unicode text as UTF-8, no flag (Infobip picks the encoding)",
                [message(body="Привет 👋 — ça va? 你好", encoding="UCS-2")], [entry(text="Привет 👋 — ça va? 你好")]),
    RequestCase("a 1,600-character text is sent whole", [message(body=LONG_BODY, segments=11)],
                [entry(text=LONG_BODY)]),
    RequestCase("the message's own sender wins", [message(sender="+447400000001")],
                [{**entry(), "sender": "+447400000001"}]),
    RequestCase("no sender configured: none sent", [message()],
                [{k: v for k, v in entry().items() if k != "sender"}], config={"sender": ""}),
    RequestCase("delivery webhook URL carries the token", [message(status_callback_url=CALLBACK_URL)],
                [{**entry(), "webhooks": {"callbackData": "m-1",
                                          "delivery": {"url": f"{CALLBACK_URL}?token={TOKEN}"}}}]),
    RequestCase("India DLT from the config", [message(to="+919876543210")], [entry(to="919876543210", options=DLT)],
                config={"dlt_entity_id": "1201159123456789012", "dlt_template_id": "1207161234567890123"}),
    RequestCase("the message's DLT template wins over the config's",
                [message(to="+919876543210", options={"dlt_template_id": "1207000000000000001"})],
                [entry(to="919876543210", options={"regional": {"indiaDlt": {
                    "principalEntityId": "1201159123456789012", "contentTemplateId": "1207000000000000001"}}})],
                config={"dlt_entity_id": "1201159123456789012", "dlt_template_id": "1207161234567890123"}),
    RequestCase("a DLT entity without a template", [message(to="+919876543210")],
                [entry(to="919876543210", options={"regional": {"indiaDlt": {"principalEntityId": "12011591"}}})],
                config={"dlt_entity_id": "12011591"}),
    RequestCase("a batch: one request, one entry per message, different texts",
                [message("a", "+447400123401"), message("b", "+447400123402", body="Bye")],
                [entry("a", "447400123401"), entry("b", "447400123402", "Bye")]),
    RequestCase("a ref Infobip would refuse becomes a stable hashed id",
                [message("ref with spaces/and/slashes")],
                [{**entry(), "destinations": [{"to": "447400123456", "messageId": message_id_for(
                    "ref with spaces/and/slashes")}], "webhooks": {"callbackData": "ref with spaces/and/slashes"}}]),
]


@pytest.mark.parametrize("case", REQUEST_CASES, ids=lambda case: case.id)
async def test_send_builds_the_exact_request(case: RequestCase, fake: FakeInfobip, client: httpx.AsyncClient) -> None:
    outcomes = await make(fake, client, **case.config).send(case.messages)

    [request] = fake.requests
    assert (request.method, request.path) == ("POST", "/sms/3/messages")
    assert request.headers["authorization"] == f"App {API_KEY}"
    assert request.headers["content-type"] == "application/json"
    assert request.json == {"messages": case.entries}
    assert [o.ref for o in outcomes] == [m.ref for m in case.messages]
    assert [o.provider_message_id for o in outcomes] == [message_id_for(m.ref) for m in case.messages]
    assert all(o.accepted and o.provider_status == "PENDING_ACCEPTED" and o.http_status == 200 for o in outcomes)


async def test_250_messages_are_three_requests(fake: FakeInfobip, client: httpx.AsyncClient) -> None:
    outcomes = await make(fake, client).send([message(f"r{i}", f"+4474001{i:05d}") for i in range(250)])
    assert [len(r.json["messages"]) for r in fake.requests] == [100, 100, 50]
    assert all(o.accepted for o in outcomes) and len({o.provider_message_id for o in outcomes}) == 250


async def test_each_destination_s_outcome_is_its_own(fake: FakeInfobip, client: httpx.AsyncClient) -> None:
    fake.reject["447400123402"] = rejected(10, "REJECTED_DND")
    fake.reject["447400123403"] = rejected(12, "REJECTED_NOT_ENOUGH_CREDITS")

    outcomes = await make(fake, client).send([message("a", "+447400123401"), message("b", "+447400123402"),
                                              message("c", "+447400123403")])

    assert len(fake.requests) == 1
    assert [(o.ref, o.error.kind if o.error else None) for o in outcomes] == [
        ("a", None), ("b", ErrorKind.PERMANENT), ("c", ErrorKind.CONFIGURATION)]
    assert outcomes[1].error is not None and "do-not-disturb" in str(outcomes[1].error)
    assert outcomes[1].error.code == "REJECTED_DND"


async def test_a_destination_missing_from_the_answer_is_unknown(fake: FakeInfobip, client: httpx.AsyncClient) -> None:
    fake.answer_next(Reply(200, {"bulkId": "b1", "messages": [
        {"messageId": "a", "status": {"groupId": 1, "groupName": "PENDING", "id": 26, "name": "PENDING_ACCEPTED"}}]}))

    outcomes = await make(fake, client).send([message("a", "+447400123401"), message("b", "+447400123402")])

    assert outcomes[0].accepted and outcomes[1].error is not None and outcomes[1].error.kind is ErrorKind.UNKNOWN


async def test_a_rejected_request_is_retried_one_by_one(fake: FakeInfobip, client: httpx.AsyncClient) -> None:
    outcomes = await make(fake, client).send([message("a", "+447400123401"), message("b", "+447400123402", body="")])

    assert [len(r.json["messages"]) for r in fake.requests] == [2, 1, 1]
    assert outcomes[0].accepted
    assert outcomes[1].error is not None and outcomes[1].error.kind is ErrorKind.PERMANENT
    assert "content.text: must not be blank" in str(outcomes[1].error)


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
    ErrorCase("401 older body", service_exception(401, "UNAUTHORIZED", "Invalid login details"),
              ErrorKind.CONFIGURATION, "UNAUTHORIZED", says="check the API key and the account base URL"),
    ErrorCase("401 newer body", api_error(401, "E401", "Unauthorized"), ErrorKind.CONFIGURATION, "E401"),
    ErrorCase("403", api_error(403, "E403", "Forbidden: missing scope"), ErrorKind.CONFIGURATION, "E403",
              says="missing scope"),
    ErrorCase("400 with violations", api_error(400, "E400", "Invalid request",
                                               [{"property": "messages[0].sender", "violation": "too long"}]),
              ErrorKind.PERMANENT, "E400", says="messages[0].sender: too long"),
    ErrorCase("400 older body", service_exception(400, "BAD_REQUEST", "Bad request"), ErrorKind.PERMANENT,
              "BAD_REQUEST", says="Bad request"),
    ErrorCase("429 with Retry-After", api_error(429, "E429", "Too many requests", headers={"Retry-After": "4"}),
              ErrorKind.TRANSIENT, "E429", retry_after=4),
    ErrorCase("500", service_exception(500, "GENERAL_ERROR", "Something went wrong"), ErrorKind.TRANSIENT,
              "GENERAL_ERROR"),
    ErrorCase("502 from a proxy", Reply(502, "<html>Bad Gateway</html>"), ErrorKind.TRANSIENT, says="Bad Gateway"),
    ErrorCase("404: not the account's API host", Reply(404, ""), ErrorKind.CONFIGURATION),
    ErrorCase("200 that is not JSON", Reply(200, "ok"), ErrorKind.UNKNOWN, says="not for message m-1"),
    ErrorCase("200 without messages", Reply(200, {"bulkId": "b"}), ErrorKind.UNKNOWN, says="not for message m-1"),
]


@pytest.mark.parametrize("case", ERROR_CASES, ids=lambda case: case.id)
async def test_send_classifies_error_answers(case: ErrorCase, fake: FakeInfobip, client: httpx.AsyncClient) -> None:
    fake.answer_next(case.reply)

    [outcome] = await make(fake, client).send([message()])

    assert not outcome.accepted and outcome.error is not None
    assert outcome.error.kind is case.kind
    assert outcome.error.code == case.code
    assert outcome.error.retry_after == case.retry_after
    assert outcome.http_status == case.reply.status
    assert case.says in str(outcome.error)


async def test_a_request_error_is_every_message_s_outcome(fake: FakeInfobip, client: httpx.AsyncClient) -> None:
    fake.answer_next(Reply(503, ""))
    outcomes = await make(fake, client).send([message("a", "+447400123401"), message("b", "+447400123402")])
    assert len(fake.requests) == 1 and {o.error.kind for o in outcomes if o.error} == {ErrorKind.TRANSIENT}


async def test_no_answer_in_time_leaves_the_outcome_unknown(fake: FakeInfobip) -> None:
    fake.answer_next(Reply(200, {"messages": []}, delay=5))
    async with httpx.AsyncClient(timeout=0.2) as slow:
        [outcome] = await make(fake, slow).send([message()])
    assert outcome.error is not None and outcome.error.kind is ErrorKind.UNKNOWN


async def test_a_refused_connection_is_transient(client: httpx.AsyncClient) -> None:
    provider = InfobipProvider(CONFIG, client=client, base_url=f"http://127.0.0.1:{unused_port()}")
    [outcome] = await provider.send([message()])
    assert outcome.error is not None and outcome.error.kind is ErrorKind.TRANSIENT


def test_the_tables() -> None:
    assert {STATUS_MAP[g] for g in ("PENDING", "ACCEPTED")} == {"sent"}
    assert (STATUS_MAP["DELIVERED"], STATUS_MAP["UNDELIVERABLE"], STATUS_MAP["EXPIRED"], STATUS_MAP["REJECTED"]) == (
        "delivered", "undelivered", "undelivered", "failed")
    assert {i: ERROR_RULES.find(i, "status").kind for i in (10, 12, 13, 14, 20, 21)} == {
        10: ErrorKind.PERMANENT, 12: ErrorKind.CONFIGURATION, 13: ErrorKind.CONFIGURATION, 14: ErrorKind.PERMANENT,
        20: ErrorKind.TRANSIENT, 21: ErrorKind.TRANSIENT}


# --- connection check -------------------------------------------------------------------------


async def test_check_connection_reads_the_balance(fake: FakeInfobip, client: httpx.AsyncClient) -> None:
    check = await make(fake, client).check_connection()
    assert check.ok and check.detail == "Infobip accepted the API key, balance 47.79 EUR"
    [request] = fake.requests
    assert (request.method, request.path, request.headers["authorization"]) == (
        "GET", "/account/1/balance", f"App {API_KEY}")


@pytest.mark.parametrize(
    ("config", "reply", "ok", "says"),
    [({"api_key": "0" * 32}, None, False, "check the API key and the account base URL"),
     ({}, api_error(403, "E403", "Forbidden"), True, "may not read the balance"),
     ({}, Reply(200, "<html>portal</html>"), False, "base URL"),
     ({}, Reply(500, "down"), False, "Infobip check failed")],
    ids=["wrong key", "key without balance scope", "not the API host", "500"],
)
async def test_check_connection_explains_itself(config: dict[str, str], reply: Reply | None, ok: bool, says: str,
                                                fake: FakeInfobip, client: httpx.AsyncClient) -> None:
    if reply:
        fake.answer_next(reply)
    check = await make(fake, client, **config).check_connection()
    assert check.ok is ok and says in check.detail and "\n" not in check.detail


async def test_check_connection_without_a_base_url() -> None:
    check = await InfobipProvider({"api_key": API_KEY}).check_connection()
    assert not check.ok and "base URL" in check.detail


def test_the_base_url_comes_from_the_config_unless_given() -> None:
    assert InfobipProvider(CONFIG).base_url == "https://xxxxx.api.infobip.com"
    assert InfobipProvider(CONFIG, base_url="http://127.0.0.1:9/").base_url == "http://127.0.0.1:9"


# --- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "problems"),
    [(CONFIG, []),
     ({**CONFIG, "api_key": "env:INFOBIP_API_KEY"}, []),
     ({**CONFIG, "account_url": "xxxxx.api.infobip.com"}, ["account_url"]),
     ({**CONFIG, "api_key": "short"}, ["api_key"]),
     ({**CONFIG, "sender": "InfoSMS"}, []),
     ({**CONFIG, "sender": "447400000001"}, []),
     ({**CONFIG, "sender": "ACME Shop Ltd"}, ["sender"]),
     ({**CONFIG, "dlt_entity_id": "1201159123456789012", "dlt_template_id": "1207161234567890123"}, []),
     ({**CONFIG, "dlt_entity_id": "ENT-1"}, ["dlt_entity_id"]),
     ({**CONFIG, "dlt_template_id": "1207161234567890123"}, ["dlt_entity_id"]),
     ({**CONFIG, "webhook_token": "short"}, ["webhook_token"]),
     ({"sender": "ACME"}, ["account_url", "api_key"])],
    ids=["valid", "key from env", "base URL without scheme", "short key", "alphanumeric sender", "numeric sender",
         "sender over 11", "DLT ids", "DLT entity not digits", "DLT template without entity", "short token",
         "required missing"],
)
def test_validate_config(values: dict[str, str], problems: list[str]) -> None:
    assert [name for name, _ in InfobipProvider.validate_config(values)] == problems


def test_fields_and_capabilities() -> None:
    assert [f.name for f in InfobipProvider.config_fields] == [
        "account_url", "api_key", "sender", "dlt_entity_id", "dlt_template_id", "webhook_token"]
    assert all(f.label and f.help for f in InfobipProvider.config_fields)
    assert [f.name for f in InfobipProvider.config_fields if f.secret] == ["api_key", "webhook_token"]
    assert InfobipProvider.capabilities == Capabilities(
        max_batch=100, max_body_chars=1600, status_webhook=True, status_polling=True, inbound_webhook=True,
        inbound_polling=True, signature=False, dlt=True, status_lookup=True)


# --- callbacks --------------------------------------------------------------------------------


def callback(payload: Any, token: str = TOKEN) -> CallbackRequest:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return CallbackRequest("POST", f"{CALLBACK_URL}?token={token}", {"content-type": "application/json"}, body)


def result(status: dict[str, Any], error: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"bulkId": "BULK-1", "messageId": "m-1", "to": "447400123456", "sentAt": "2026-03-01T10:00:00.000+0000",
            "doneAt": "2026-03-01T10:00:05.000+0000", "smsCount": 1, "callbackData": "m-1",
            "price": {"pricePerMessage": 0.01, "currency": "EUR"}, "status": status,
            "error": error or {"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR", "permanent": False},
            **extra}


def status(group_id: int, group: str, status_id: int, name: str) -> dict[str, Any]:
    return {"groupId": group_id, "groupName": group, "id": status_id, "name": name, "description": name}


ABSENT = {"groupId": 1, "groupName": "HANDSET_ERRORS", "id": 27, "name": "EC_ABSENT_SUBSCRIBER", "permanent": False}
UNKNOWN_SUB = {"groupId": 1, "groupName": "HANDSET_ERRORS", "id": 1, "name": "EC_UNKNOWN_SUBSCRIBER", "permanent": True}

STATUS_CASES = [
    pytest.param(result(status(3, "DELIVERED", 5, "DELIVERED_TO_HANDSET")),
                 ("DELIVERED_TO_HANDSET", "delivered", None, None), id="delivered"),
    pytest.param(result(status(1, "PENDING", 7, "PENDING_ENROUTE")), ("PENDING_ENROUTE", "sent", None, None),
                 id="pending"),
    pytest.param(result(status(2, "UNDELIVERABLE", 9, "UNDELIVERABLE_NOT_DELIVERED"), ABSENT),
                 ("UNDELIVERABLE_NOT_DELIVERED", "undelivered", "EC_ABSENT_SUBSCRIBER", ErrorKind.TRANSIENT),
                 id="undeliverable-not-permanent"),
    pytest.param(result(status(2, "UNDELIVERABLE", 9, "UNDELIVERABLE_NOT_DELIVERED"), UNKNOWN_SUB),
                 ("UNDELIVERABLE_NOT_DELIVERED", "undelivered", "EC_UNKNOWN_SUBSCRIBER", ErrorKind.PERMANENT),
                 id="undeliverable-permanent"),
    pytest.param(result(status(4, "EXPIRED", 15, "EXPIRED_EXPIRED")), ("EXPIRED_EXPIRED", "undelivered", None,
                                                                       ErrorKind.TRANSIENT), id="expired"),
    pytest.param(result(status(5, "REJECTED", 10, "REJECTED_DND")),
                 ("REJECTED_DND", "failed", "REJECTED_DND", ErrorKind.PERMANENT), id="rejected-dnd"),
    pytest.param(result(status(5, "REJECTED", 12, "REJECTED_NOT_ENOUGH_CREDITS")),
                 ("REJECTED_NOT_ENOUGH_CREDITS", "failed", "REJECTED_NOT_ENOUGH_CREDITS", ErrorKind.CONFIGURATION),
                 id="rejected-credits"),
    pytest.param(result(status(9, "MYSTERY", 99, "MYSTERY")), ("MYSTERY", None, None, None), id="unknown-ignored"),
]


@pytest.mark.parametrize(("item", "expected"), STATUS_CASES)
def test_delivery_reports(item: dict[str, Any], expected: tuple[Any, ...]) -> None:
    [report] = InfobipProvider(CONFIG).status_callback(callback({"results": [item]}))
    assert (report.provider_status, report.state, report.error_code, report.error_kind) == expected
    assert (report.provider_message_id, report.ref, report.recipient) == ("m-1", "m-1", "+447400123456")
    assert report.at == datetime(2026, 3, 1, 10, 0, 5, tzinfo=UTC)


def test_one_callback_carries_many_reports() -> None:
    items = [result(status(3, "DELIVERED", 5, "DELIVERED_TO_HANDSET"), messageId=f"m-{i}") for i in range(3)]
    reports = InfobipProvider(CONFIG).status_callback(callback({"results": items}))
    assert [r.provider_message_id for r in reports] == ["m-0", "m-1", "m-2"]


def test_inbound_forward() -> None:
    payload = {"results": [{"messageId": "in-1", "from": "447400123456", "to": "447400000001", "text": "STOP now",
                            "cleanText": "now", "keyword": "STOP", "receivedAt": "2026-03-01T09:00:00.000+0000",
                            "smsCount": 1, "price": {"pricePerMessage": 0, "currency": "EUR"}}],
               "messageCount": 1, "pendingMessageCount": 0}
    [inbound] = InfobipProvider(CONFIG).inbound_callback(callback(payload))
    assert (inbound.provider_message_id, inbound.sender, inbound.recipient, inbound.text, inbound.keyword) == (
        "in-1", "+447400123456", "447400000001", "STOP now", "STOP")
    assert inbound.at == datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


REJECTED = [
    pytest.param(CallbackRequest("POST", CALLBACK_URL, {}, b'{"results": []}'), 401, id="no-token"),
    pytest.param(callback({"results": []}, token="forged-token-0000000"), 403, id="forged-token"),
    pytest.param(callback(b"{not json"), 400, id="malformed-json"),
    pytest.param(callback({"reports": []}), 400, id="no-results"),
    pytest.param(callback({"results": [1]}), 400, id="result-not-an-object"),
    pytest.param(callback({"results": [{"messageId": "m-1"}]}), 400, id="no-status"),
]


@pytest.mark.parametrize(("request_", "status_"), REJECTED)
def test_bad_status_callbacks_are_rejected(request_: CallbackRequest, status_: int) -> None:
    with pytest.raises(CallbackRejected) as rejected_:
        InfobipProvider(CONFIG).status_callback(request_)
    assert rejected_.value.status == status_


def test_callbacks_are_refused_until_a_token_is_set() -> None:
    with pytest.raises(CallbackRejected) as rejected_:
        InfobipProvider({**CONFIG, "webhook_token": ""}).status_callback(callback({"results": []}))
    assert rejected_.value.status == 403


def test_a_malformed_inbound_is_rejected() -> None:
    with pytest.raises(CallbackRejected) as rejected_:
        InfobipProvider(CONFIG).inbound_callback(callback({"results": [{"messageId": "x", "to": "1"}]}))
    assert rejected_.value.status == 400


# --- polling ------------------------------------------------------------------------------------


async def test_fetch_statuses_reads_the_logs_by_message_id(fake: FakeInfobip, client: httpx.AsyncClient) -> None:
    provider = make(fake, client)
    first, second = await provider.send([message("a", "+447400123401"), message("b", "+447400123402")])
    fake.deliver("a")
    fake.deliver("b", status(2, "UNDELIVERABLE", 9, "UNDELIVERABLE_NOT_DELIVERED"), UNKNOWN_SUB)
    fake.requests.clear()

    reports = await provider.fetch_statuses(["a", "b", "nobody"])

    assert [(r.provider_message_id, r.state, r.recipient, r.error_kind) for r in reports] == [
        ("a", "delivered", "+447400123401", None), ("b", "undelivered", "+447400123402", ErrorKind.PERMANENT)]
    [request] = fake.requests
    assert request.path == "/sms/3/logs" and dict(httpx.QueryParams(request.query)) == {
        "messageId": "a,b,nobody", "limit": "1000"}


async def test_poll_statuses_pulls_reports_once(fake: FakeInfobip, client: httpx.AsyncClient) -> None:
    provider = make(fake, client)
    await provider.send([message("a", "+447400123401")])
    fake.deliver("a")

    first = await provider.poll_statuses(None)
    second = await provider.poll_statuses(first.cursor)

    assert [(r.provider_message_id, r.state, r.ref) for r in first.reports] == [("a", "delivered", "a")]
    assert second.reports == () and not first.more
    assert fake.requests[-1].path == "/sms/3/reports" and "limit=1000" in fake.requests[-1].query


async def test_poll_inbound_pulls_the_inbox(fake: FakeInfobip, client: httpx.AsyncClient) -> None:
    inbound_id = fake.receive("447400123456", "447400000001", "STOP", keyword="STOP")
    page = await make(fake, client).poll_inbound(None)
    assert [(r.provider_message_id, r.sender, r.text, r.keyword) for r in page.reports] == [
        (inbound_id, "+447400123456", "STOP", "STOP")]
    assert fake.requests[-1].path == "/sms/1/inbox/reports"


async def test_polling_with_a_bad_key_is_a_configuration_error(fake: FakeInfobip, client: httpx.AsyncClient) -> None:
    with pytest.raises(Exception) as raised:
        await make(fake, client, api_key="0" * 32).poll_statuses(None)
    assert getattr(raised.value, "kind", None) is ErrorKind.CONFIGURATION


# --- no secret in logs ------------------------------------------------------------------------


async def test_no_secret_reaches_a_log(fake: FakeInfobip, client: httpx.AsyncClient,
                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")
    wrong_key = "wrong" + API_KEY[5:]
    provider, wrong = make(fake, client), make(fake, client, api_key=wrong_key)

    await provider.send([message(status_callback_url=CALLBACK_URL)])
    await wrong.send([message(ref="m-2")])
    await provider.check_connection()
    await wrong.check_connection()
    with pytest.raises(CallbackRejected):
        provider.status_callback(callback({"results": []}, token="forged-token-0000000"))

    assert {"smsconsole.providers.infobip", "httpx"} <= {record.name for record in caplog.records}
    for record in caplog.records:
        text = f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        assert not any(secret in text for secret in (API_KEY, wrong_key, TOKEN)), record.name
