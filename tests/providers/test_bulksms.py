"""BulkSMS.com adapter against a loopback fake of the JSON API v1: messages in → exact request out
→ outcomes per recipient; problem-JSON errors; the profile check; webhooks in → reports out (or a
4xx); polling and fetching; config rules; no secret in logs."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from smsconsole.providers.base import (
    CallbackRejected,
    CallbackRequest,
    Capabilities,
    ErrorKind,
    OutboundMessage,
)
from smsconsole.providers.bulksms import (
    ERROR_RULES,
    STATUS_MAP,
    BulkSmsProvider,
    deduplication_id,
)
from tests.fakes.bulksms import TOKEN_ID, TOKEN_SECRET, FakeBulkSms, Reply, problem
from tests.fakes.server import Switchboard, unused_port

WEBHOOK_TOKEN = "hook-token-0123456789abcdef"
CONFIG = {"username": TOKEN_ID, "password": TOKEN_SECRET, "webhook_token": WEBHOOK_TOKEN}
LONG_BODY = ("BulkSMS concatenates long messages into parts. " * 20)[:900]


@pytest.fixture
def fake(server: tuple[Switchboard, str]) -> Iterator[FakeBulkSms]:
    switchboard, url = server
    bulksms = FakeBulkSms()
    bulksms.base_url = url
    switchboard.target = bulksms.app
    yield bulksms
    bulksms.close()


def make_provider(fake: FakeBulkSms, client: httpx.AsyncClient, **config: str) -> BulkSmsProvider:
    return BulkSmsProvider({**CONFIG, **config}, client=client, base_url=fake.base_url)


def message(**fields: Any) -> OutboundMessage:
    return OutboundMessage(**{"ref": "m-1", "to": "+447700900001", "body": "Hello", **fields})


# --- exact requests ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestCase:
    id: str
    messages: list[OutboundMessage]
    body: list[dict[str, Any]]
    config: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] | None = None  # None: deduplication-id of the refs and auto-unicode=true


REQUEST_CASES = [
    RequestCase("plain message, account default sender", [message()],
                [{"to": "+447700900001", "body": "Hello", "userSuppliedId": "m-1"}]),
    RequestCase("alphanumeric sender from config", [message()],
                [{"to": "+447700900001", "body": "Hello", "from": "ACME", "userSuppliedId": "m-1"}],
                config={"sender": "ACME"}),
    RequestCase("the message's own sender wins", [message(sender="+447700900999")],
                [{"to": "+447700900001", "body": "Hello", "from": "+447700900999", "userSuppliedId": "m-1"}],
                config={"sender": "ACME"}),
    RequestCase("REPLIABLE sender is an object", [message()],
                [{"to": "+447700900001", "body": "Hello", "from": {"type": "REPLIABLE"}, "userSuppliedId": "m-1"}],
                config={"sender": "REPLIABLE"}),
    RequestCase("short code sender is an object", [message()],
                [{"to": "+447700900001", "body": "Hello", "from": {"type": "SHORTCODE", "address": "24680"},
                  "userSuppliedId": "m-1"}],
                config={"sender": "24680"}),
    RequestCase("UCS-2 body says UNICODE", [message(body="Привет 👋 — ça va?", encoding="UCS-2")],
                [{"to": "+447700900001", "body": "Привет 👋 — ça va?", "encoding": "UNICODE", "userSuppliedId": "m-1"}]),
    RequestCase("a 6-part message raises longMessageMaxParts", [message(body=LONG_BODY, segments=6)],
                [{"to": "+447700900001", "body": LONG_BODY, "longMessageMaxParts": 6, "userSuppliedId": "m-1"}]),
    RequestCase("routing group when configured", [message()],
                [{"to": "+447700900001", "body": "Hello", "routingGroup": "PREMIUM", "userSuppliedId": "m-1"}],
                config={"routing_group": "PREMIUM"}),
    RequestCase("auto-unicode off leaves only the deduplication id", [message()],
                [{"to": "+447700900001", "body": "Hello", "userSuppliedId": "m-1"}],
                config={"auto_unicode": "false"}, query={"deduplication-id": str(deduplication_id(["m-1"]))}),
    RequestCase("a ref over 20 characters is cut to fit userSuppliedId", [message(ref="outbox-0123456789-abcdef")],
                [{"to": "+447700900001", "body": "Hello", "userSuppliedId": "outbox-0123456789-ab"}]),
    RequestCase(
        "a batch with different bodies is one request, one entry per recipient",
        [message(ref="a", to="+447700900001", body="Hi Ann"), message(ref="b", to="+447700900002", body="Hi Bob"),
         message(ref="c", to="+447700900003", body="Привет", encoding="UCS-2")],
        [{"to": "+447700900001", "body": "Hi Ann", "userSuppliedId": "a"},
         {"to": "+447700900002", "body": "Hi Bob", "userSuppliedId": "b"},
         {"to": "+447700900003", "body": "Привет", "encoding": "UNICODE", "userSuppliedId": "c"}],
    ),
]


@pytest.mark.parametrize("case", REQUEST_CASES, ids=lambda case: case.id)
async def test_send_builds_the_exact_request(case: RequestCase, fake: FakeBulkSms, client: httpx.AsyncClient) -> None:
    provider = make_provider(fake, client, **case.config)

    outcomes = await provider.send(case.messages)

    [request] = fake.requests
    assert (request.method, request.path) == ("POST", "/v1/messages")
    assert request.headers["content-type"] == "application/json"
    assert request.basic_auth == (TOKEN_ID, TOKEN_SECRET)
    expected_query = case.query or {"deduplication-id": str(deduplication_id([m.ref for m in case.messages])),
                                    "auto-unicode": "true"}
    assert request.params == expected_query
    assert request.json == case.body
    assert [o.ref for o in outcomes] == [m.ref for m in case.messages]
    assert all(o.accepted and o.http_status == 201 and o.provider_status == "ACCEPTED.null" for o in outcomes)
    by_id = {m["id"]: m for m in fake.sent}
    assert [by_id[o.provider_message_id or ""]["to"] for o in outcomes] == [m.to for m in case.messages]


async def test_outcomes_are_matched_by_recipient_and_reference_not_by_position(
    fake: FakeBulkSms, client: httpx.AsyncClient,
) -> None:
    created = [
        {"id": "22", "type": "SENT", "to": "+447700900002", "body": "x", "userSuppliedId": "b",
         "status": {"id": "ACCEPTED.null", "type": "ACCEPTED", "subtype": None}},
        {"id": "11", "type": "SENT", "to": "447700900001", "body": "x", "userSuppliedId": "a",
         "status": {"id": "ACCEPTED.null", "type": "ACCEPTED", "subtype": None}},
    ]
    fake.answer_next(Reply(201, created))

    outcomes = await make_provider(fake, client).send([message(ref="a", to="+447700900001"),
                                                       message(ref="b", to="+447700900002"),
                                                       message(ref="c", to="+447700900003")])

    assert [(o.ref, o.provider_message_id) for o in outcomes] == [("a", "11"), ("b", "22"), ("c", None)]
    assert outcomes[2].error is not None and outcomes[2].error.kind is ErrorKind.UNKNOWN


async def test_more_than_max_batch_messages_go_in_several_requests(fake: FakeBulkSms, client: httpx.AsyncClient) -> None:
    messages = [message(ref=f"r{i}", to=f"+4477009{i:05d}") for i in range(130)]

    outcomes = await make_provider(fake, client).send(messages)

    assert [len(r.json) for r in fake.requests] == [100, 30]
    assert all(o.accepted for o in outcomes) and len({o.provider_message_id for o in outcomes}) == 130


async def test_a_resent_submission_is_deduplicated_by_bulksms(fake: FakeBulkSms, client: httpx.AsyncClient) -> None:
    provider = make_provider(fake, client)
    batch = [message(ref="a", to="+447700900001"), message(ref="b", to="+447700900002")]

    first = await provider.send(batch)
    again = await provider.send(batch)

    assert fake.requests[0].params["deduplication-id"] == fake.requests[1].params["deduplication-id"]
    assert [o.provider_message_id for o in again] == [o.provider_message_id for o in first]
    assert len(fake.sent) == 2


async def test_a_rejected_batch_is_resent_one_by_one_so_only_the_bad_recipient_fails(
    fake: FakeBulkSms, client: httpx.AsyncClient,
) -> None:
    outcomes = await make_provider(fake, client).send(
        [message(ref="a", to="+447700900001"), message(ref="bad", to="+12"), message(ref="c", to="+447700900003")])

    assert [len(r.json) for r in fake.requests] == [3, 1, 1, 1]
    assert [(o.ref, o.accepted) for o in outcomes] == [("a", True), ("bad", False), ("c", True)]
    assert outcomes[1].error is not None and outcomes[1].error.kind is ErrorKind.PERMANENT
    assert "'+12' is not a valid phone number" in str(outcomes[1].error)


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
    ErrorCase("401 bad credentials", problem(401, "authentication-failed", "Authentication Failed"),
              ErrorKind.CONFIGURATION, "authentication-failed", says="credentials"),
    ErrorCase("401 without a body", Reply(401, ""), ErrorKind.CONFIGURATION),
    ErrorCase("403 insufficient credits", problem(403, "insufficient-credits", "Insufficient Credits"),
              ErrorKind.CONFIGURATION, "insufficient-credits", says="too few credits"),
    ErrorCase("400 bad request with detail", problem(400, "bad-request", "Bad Request", "body is required"),
              ErrorKind.PERMANENT, "bad-request", says="body is required"),
    ErrorCase("404 not found (wrong base URL)", problem(404, "not-found", "Not Found"),
              ErrorKind.CONFIGURATION, "not-found"),
    ErrorCase("429 with Retry-After: 7", problem(429, "too-many-requests", "Too Many Requests", None,
                                                 {"Retry-After": "7"}),
              ErrorKind.TRANSIENT, "too-many-requests", retry_after=7),
    ErrorCase("429 plain text with Retry-After: 7", Reply(429, "slow down", {"Retry-After": "7"}),
              ErrorKind.TRANSIENT, retry_after=7),
    ErrorCase("500 problem JSON", problem(500, "internal-server-error", "Internal Server Error"),
              ErrorKind.TRANSIENT, "internal-server-error"),
    ErrorCase("503 HTML from a proxy", Reply(503, "<html>Service Unavailable</html>"), ErrorKind.TRANSIENT,
              says="Service Unavailable"),
    ErrorCase("unknown problem type falls back to the HTTP status", problem(409, "conflict", "Conflict", "odd"),
              ErrorKind.PERMANENT, "conflict", says="odd"),
    ErrorCase("201 that is not JSON: accepted, ids unreadable", Reply(201, "<ok/>"), ErrorKind.UNKNOWN,
              says="without an array"),
    ErrorCase("201 with an object instead of an array", Reply(201, {"id": "1"}), ErrorKind.UNKNOWN),
    ErrorCase("201 array without our message", Reply(201, []), ErrorKind.UNKNOWN, says="listed no message"),
]


@pytest.mark.parametrize("case", ERROR_CASES, ids=lambda case: case.id)
async def test_send_classifies_error_answers(case: ErrorCase, fake: FakeBulkSms, client: httpx.AsyncClient) -> None:
    fake.answer_next(case.reply)

    [outcome] = await make_provider(fake, client).send([message()])

    assert outcome.error is not None and outcome.provider_message_id is None
    assert outcome.error.kind is case.kind
    assert outcome.error.code == case.code
    assert outcome.error.retry_after == case.retry_after
    assert outcome.http_status == case.reply.status
    assert case.says in str(outcome.error)


async def test_insufficient_credits_fails_the_whole_batch_without_splitting(
    fake: FakeBulkSms, client: httpx.AsyncClient,
) -> None:
    fake.credits = 1

    outcomes = await make_provider(fake, client).send([message(ref="a"), message(ref="b", to="+447700900002")])

    assert len(fake.requests) == 1
    assert [o.error.code if o.error else None for o in outcomes] == ["insufficient-credits"] * 2


async def test_a_server_that_never_answers_leaves_the_batch_unknown(fake: FakeBulkSms) -> None:
    fake.answer_next(Reply(201, [], delay=5))
    async with httpx.AsyncClient(timeout=0.2) as slow:
        outcomes = await make_provider(fake, slow).send([message(ref="a"), message(ref="b")])

    assert [o.error.kind if o.error else None for o in outcomes] == [ErrorKind.UNKNOWN] * 2
    assert len(fake.requests) == 1


async def test_a_refused_connection_is_transient(client: httpx.AsyncClient) -> None:
    provider = BulkSmsProvider(CONFIG, client=client, base_url=f"http://127.0.0.1:{unused_port()}")

    [outcome] = await provider.send([message()])

    assert outcome.error is not None and outcome.error.kind is ErrorKind.TRANSIENT


def test_the_tables_classify_every_documented_status_and_error() -> None:
    assert set(STATUS_MAP) == {"ACCEPTED", "SCHEDULED", "SENT", "DELIVERED", "UNKNOWN", "FAILED"}
    assert {rule.code: rule.kind for rule in ERROR_RULES if rule.on == "report"} == {
        "EXPIRED": ErrorKind.TRANSIENT, "HANDSET_ERROR": ErrorKind.TRANSIENT,
        "BLOCKED": ErrorKind.PERMANENT, "NOT_SENT": ErrorKind.PERMANENT}
    assert {t: ERROR_RULES.find(t).kind for t in ("bad-request", "insufficient-credits", "not-found")} == {
        "bad-request": ErrorKind.PERMANENT, "insufficient-credits": ErrorKind.CONFIGURATION,
        "not-found": ErrorKind.CONFIGURATION}


# --- connection check -------------------------------------------------------------------------


async def test_check_connection_reads_the_profile(fake: FakeBulkSms, client: httpx.AsyncClient) -> None:
    check = await make_provider(fake, client).check_connection()

    assert check.ok
    assert check.detail == "Profile 'acme', 123.5 credits, 900 of 1000 messages left today"
    [request] = fake.requests
    assert (request.method, request.path, request.basic_auth) == ("GET", "/v1/profile", (TOKEN_ID, TOKEN_SECRET))


async def test_check_connection_names_the_settings_to_fix_on_bad_credentials(
    fake: FakeBulkSms, client: httpx.AsyncClient,
) -> None:
    check = await make_provider(fake, client, password="wrong-secret").check_connection()

    assert not check.ok
    assert "HTTP 401" in check.detail and "token ID" in check.detail and "token secret" in check.detail


@pytest.mark.parametrize(("reply", "says"), [
    (problem(500, "internal-server-error", "Internal Server Error"), "Internal Server Error"),
    (Reply(200, "<html>captive portal</html>"), "unreadable"),
], ids=["500", "200 not JSON"])
async def test_check_connection_fails_with_a_one_line_reason(
    reply: Reply, says: str, fake: FakeBulkSms, client: httpx.AsyncClient,
) -> None:
    fake.answer_next(reply)

    check = await make_provider(fake, client).check_connection()

    assert not check.ok and says in check.detail and "\n" not in check.detail


async def test_check_connection_when_bulksms_is_unreachable(client: httpx.AsyncClient) -> None:
    provider = BulkSmsProvider(CONFIG, client=client, base_url=f"http://127.0.0.1:{unused_port()}")

    check = await provider.check_connection()

    assert not check.ok and check.detail.startswith("BulkSMS profile check failed: cannot connect")


# --- webhooks ---------------------------------------------------------------------------------

STATUS_URL = f"https://console.example.com/callbacks/bulksms/status?token={WEBHOOK_TOKEN}"
INBOUND_URL = f"https://console.example.com/callbacks/bulksms/inbound?token={WEBHOOK_TOKEN}"


def webhook(url: str, payload: Any) -> CallbackRequest:
    return CallbackRequest("POST", url, {"content-type": "application/json"}, json.dumps(payload).encode())


def sent(message_id: str, kind: str, subtype: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": message_id, "type": "SENT", "from": "ACME", "to": "+447700900001", "body": "Hello",
            "encoding": "TEXT", "userSuppliedId": "m-1",
            "submission": {"id": "1-00000000000000000001", "date": "2026-03-01T10:15:00+02:00"},
            "status": {"id": f"{kind}.{subtype or 'null'}", "type": kind, "subtype": subtype}, **extra}


STATUS_CASES = [
    pytest.param(sent("1", "DELIVERED"), ("DELIVERED.null", "delivered", None, None), id="delivered"),
    pytest.param(sent("2", "SENT"), ("SENT.null", "sent", None, None), id="sent"),
    pytest.param(sent("3", "ACCEPTED"), ("ACCEPTED.null", "sent", None, None), id="accepted"),
    pytest.param(sent("4", "FAILED", "BLOCKED"), ("FAILED.BLOCKED", "failed", "FAILED.BLOCKED", ErrorKind.PERMANENT),
                 id="blocked-opted-out"),
    pytest.param(sent("5", "FAILED", "EXPIRED"), ("FAILED.EXPIRED", "undelivered", "FAILED.EXPIRED",
                                                  ErrorKind.TRANSIENT), id="expired"),
    pytest.param(sent("6", "FAILED", "HANDSET_ERROR"), ("FAILED.HANDSET_ERROR", "undelivered",
                                                        "FAILED.HANDSET_ERROR", ErrorKind.TRANSIENT), id="handset"),
    pytest.param(sent("7", "FAILED", "NOT_SENT"), ("FAILED.NOT_SENT", "failed", "FAILED.NOT_SENT",
                                                   ErrorKind.PERMANENT), id="not-sent"),
    pytest.param(sent("8", "UNKNOWN"), ("UNKNOWN.null", None, None, None), id="unknown-ignored"),
    pytest.param(sent("9", "MYSTERY"), ("MYSTERY.null", None, None, None), id="new-type-ignored"),
]


@pytest.mark.parametrize(("payload", "expected"), STATUS_CASES)
def test_status_webhooks(payload: dict[str, Any], expected: tuple[object, ...]) -> None:
    [report] = BulkSmsProvider(CONFIG).status_callback(webhook(STATUS_URL, [payload]))

    assert (report.provider_status, report.state, report.error_code, report.error_kind) == expected
    assert report.provider_message_id == payload["id"]
    assert (report.ref, report.recipient) == ("m-1", "+447700900001")
    assert report.at == datetime(2026, 3, 1, 8, 15, tzinfo=UTC)


def test_a_blocked_recipient_is_reported_as_opted_out() -> None:
    [report] = BulkSmsProvider(CONFIG).status_callback(webhook(STATUS_URL, [sent("4", "FAILED", "BLOCKED")]))

    assert report.reason and "replied STOP" in report.reason


def test_a_webhook_with_many_messages_gives_one_report_each() -> None:
    payload = [sent("1", "DELIVERED"), sent("2", "FAILED", "EXPIRED")]

    reports = BulkSmsProvider(CONFIG).status_callback(webhook(STATUS_URL, payload))

    assert [(r.provider_message_id, r.state) for r in reports] == [("1", "delivered"), ("2", "undelivered")]


def test_the_registration_ping_is_accepted_with_nothing_to_report() -> None:
    provider = BulkSmsProvider(CONFIG)

    assert provider.status_callback(webhook(STATUS_URL, [])) == []
    assert provider.inbound_callback(webhook(INBOUND_URL, [])) == []
    assert provider.callback_answer("status")[0] == 200


def test_inbound_webhook() -> None:
    payload = [{"id": "77", "type": "RECEIVED", "from": "447700900001", "to": "+447700900555", "body": "STOP",
                "encoding": "TEXT", "submission": {"id": "", "date": "2026-03-01T10:15:00Z"},
                "status": {"id": "RECEIVED.null", "type": "RECEIVED"}, "relatedSentMessageId": "1"}]

    [inbound] = BulkSmsProvider(CONFIG).inbound_callback(webhook(INBOUND_URL, payload))

    assert (inbound.provider_message_id, inbound.sender, inbound.recipient, inbound.text) == (
        "77", "+447700900001", "+447700900555", "STOP")
    assert inbound.at == datetime(2026, 3, 1, 10, 15, tzinfo=UTC)


def test_a_message_of_the_other_direction_is_skipped() -> None:
    provider = BulkSmsProvider(CONFIG)

    assert provider.inbound_callback(webhook(INBOUND_URL, [sent("1", "DELIVERED")])) == []


BAD_CALLBACKS = [
    pytest.param(webhook(STATUS_URL.replace(WEBHOOK_TOKEN, "x" * 26), [sent("1", "DELIVERED")]), 403,
                 id="forged-token"),
    pytest.param(webhook(STATUS_URL.split("?")[0], [sent("1", "DELIVERED")]), 401, id="no-token"),
    pytest.param(CallbackRequest("POST", STATUS_URL, {"content-type": "application/json"}, b"{not json"), 400,
                 id="not-json"),
    pytest.param(CallbackRequest("POST", STATUS_URL, {"content-type": "application/json"}, b""), 400, id="empty"),
    pytest.param(webhook(STATUS_URL, {"id": "1"}), 400, id="object-not-array"),
    pytest.param(webhook(STATUS_URL, [{"type": "SENT", "status": {"type": "SENT"}}]), 400, id="no-id"),
    pytest.param(webhook(STATUS_URL, [{"id": "1", "type": "SENT"}]), 400, id="sent-without-status"),
    pytest.param(webhook(STATUS_URL, ["1"]), 400, id="not-objects"),
    pytest.param(CallbackRequest("POST", STATUS_URL, {"content-type": "application/json"}, b"[" + b" " * 262144 + b"]"),
                 413, id="too-large"),
]


@pytest.mark.parametrize(("request_", "status"), BAD_CALLBACKS)
def test_bad_webhooks_are_rejected_with_a_4xx(request_: CallbackRequest, status: int) -> None:
    with pytest.raises(CallbackRejected) as rejected:
        BulkSmsProvider(CONFIG).status_callback(request_)

    assert rejected.value.status == status


def test_without_a_webhook_token_every_callback_is_refused() -> None:
    config = {k: v for k, v in CONFIG.items() if k != "webhook_token"}

    with pytest.raises(CallbackRejected) as rejected:
        BulkSmsProvider(config).status_callback(webhook(STATUS_URL, []))

    assert rejected.value.status == 403


# --- polling ----------------------------------------------------------------------------------


async def test_fetch_statuses_reads_each_message_and_skips_unknown_ones(
    fake: FakeBulkSms, client: httpx.AsyncClient,
) -> None:
    provider = make_provider(fake, client)
    first, second = await provider.send([message(ref="a"), message(ref="b", to="+447700900002")])
    fake.set_status(first.provider_message_id or "", "DELIVERED")
    fake.set_status(second.provider_message_id or "", "FAILED", "BLOCKED")

    reports = await provider.fetch_statuses([first.provider_message_id or "", second.provider_message_id or "", "999"])

    assert [(r.ref, r.state, r.error_kind) for r in reports] == [
        ("a", "delivered", None), ("b", "failed", ErrorKind.PERMANENT)]
    assert [r.path for r in fake.requests[1:]] == [f"/v1/messages/{first.provider_message_id}",
                                                   f"/v1/messages/{second.provider_message_id}", "/v1/messages/999"]


async def test_poll_statuses_walks_sent_messages_with_id_below_and_resumes(
    fake: FakeBulkSms, client: httpx.AsyncClient,
) -> None:
    provider = make_provider(fake, client)
    outcomes = await provider.send([message(ref=f"r{i}", to=f"+44770090000{i}") for i in range(3)])
    fake.receive("+447700900111", "+447700900555", "a reply: not a status")
    fake.set_status(outcomes[0].provider_message_id or "", "DELIVERED")
    seen: dict[str, str | None] = {}
    cursor = None
    for _ in range(5):
        page = await provider.poll_statuses(cursor)
        seen.update({r.provider_message_id or "": r.state for r in page.reports})
        cursor = page.cursor
        if not page.more:
            break

    assert seen == {outcomes[0].provider_message_id: "delivered", outcomes[1].provider_message_id: "sent",
                    outcomes[2].provider_message_id: "sent"}
    listing = [r.params for r in fake.requests if r.method == "GET"]
    assert listing[0]["filter"].startswith("type=SENT&submission.date>=") and listing[0]["limit"] == "1000"
    assert listing[1]["filter"].endswith(f"&id<{min(int(o.provider_message_id or 0) for o in outcomes)}")
    assert "before" not in json.loads(cursor or "{}") and json.loads(cursor or "{}")["since"]


async def test_poll_inbound_starts_from_the_newest_reply_then_reads_what_follows(
    fake: FakeBulkSms, client: httpx.AsyncClient,
) -> None:
    provider = make_provider(fake, client)
    old = fake.receive("+447700900001", "+447700900555", "before we started")

    start = await provider.poll_inbound(None)
    first = fake.receive("+447700900001", "+447700900555", "STOP")
    second = fake.receive("+447700900002", "+447700900555", "yes please")
    page = await provider.poll_inbound(start.cursor)
    after = await provider.poll_inbound(page.cursor)

    assert start.reports == () and json.loads(start.cursor or "{}") == {"after": old}
    assert [(r.provider_message_id, r.sender, r.text) for r in page.reports] == [
        (first, "+447700900001", "STOP"), (second, "+447700900002", "yes please")]
    assert page.more and after.reports == () and not after.more
    assert fake.requests[1].params == {"filter": f"type=RECEIVED&id>{old}", "limit": "1000", "sortOrder": "ASCENDING"}


async def test_polling_with_bad_credentials_is_a_configuration_error(fake: FakeBulkSms, client: httpx.AsyncClient) -> None:
    with pytest.raises(Exception) as raised:
        await make_provider(fake, client, password="nope").poll_statuses(None)

    assert getattr(raised.value, "kind", None) is ErrorKind.CONFIGURATION


# --- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "problem_fields"),
    [
        (CONFIG, []),
        ({**CONFIG, "password": "env:BULKSMS_TOKEN_SECRET"}, []),
        ({**CONFIG, "password": "env:not a name"}, ["password"]),
        ({**CONFIG, "username": "user:name"}, ["username"]),
        ({**CONFIG, "sender": "REPLIABLE"}, []),
        ({**CONFIG, "sender": "+447700900999"}, []),
        ({**CONFIG, "sender": "447700900999"}, []),
        ({**CONFIG, "sender": "24680"}, []),
        ({**CONFIG, "sender": "ACME Shop"}, []),
        ({**CONFIG, "sender": "ACME Shop Ltd"}, ["sender"]),
        ({**CONFIG, "sender": "+12"}, ["sender"]),
        ({**CONFIG, "routing_group": "PREMIUM"}, []),
        ({**CONFIG, "routing_group": "FAST"}, ["routing_group"]),
        ({**CONFIG, "auto_unicode": "maybe"}, ["auto_unicode"]),
        ({**CONFIG, "webhook_token": "short"}, ["webhook_token"]),
        ({**CONFIG, "region": "eu"}, ["region"]),
        ({"sender": "ACME"}, ["username", "password"]),
    ],
    ids=["valid", "secret from env", "bad env reference", "colon in username", "repliable", "E.164 sender",
         "international without +", "short code", "alphanumeric", "alphanumeric over 11", "too short a number",
         "routing group", "unknown routing group", "auto unicode not a bool", "short webhook token",
         "unknown setting", "credentials missing"],
)
def test_validate_config(values: dict[str, str], problem_fields: list[str]) -> None:
    assert [name for name, _ in BulkSmsProvider.validate_config(values)] == problem_fields


def test_fields_and_capabilities() -> None:
    assert [f.name for f in BulkSmsProvider.config_fields] == [
        "username", "password", "sender", "routing_group", "auto_unicode", "webhook_token"]
    assert all(f.label and f.help for f in BulkSmsProvider.config_fields)
    assert [f.name for f in BulkSmsProvider.config_fields if f.secret] == ["password", "webhook_token"]
    assert BulkSmsProvider.default_base_url == "https://api.bulksms.com"
    assert BulkSmsProvider.capabilities == Capabilities(
        max_batch=100, max_body_chars=1600, status_webhook=True, status_polling=True, inbound_webhook=True,
        inbound_polling=True, signature=False, dlt=False, status_lookup=True)


# --- no secret in logs ------------------------------------------------------------------------


async def test_no_secret_reaches_a_log(
    fake: FakeBulkSms, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")
    provider = make_provider(fake, client)
    wrong = make_provider(fake, client, password="wrong-" + TOKEN_SECRET)

    await provider.send([message(), message(ref="bad", to="+12")])
    await wrong.send([message(ref="m-2")])
    await provider.check_connection()
    await wrong.check_connection()
    await provider.poll_inbound(None)
    provider.status_callback(webhook(STATUS_URL, [sent("1", "DELIVERED")]))

    secrets = [TOKEN_SECRET, "wrong-" + TOKEN_SECRET, WEBHOOK_TOKEN]
    secrets += [base64.b64encode(f"{TOKEN_ID}:{s}".encode()).decode() for s in secrets[:2]]
    assert {"smsconsole.providers.bulksms", "httpx"} <= {record.name for record in caplog.records}
    for record in caplog.records:
        text = f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        assert not any(secret in text for secret in secrets), record.name
