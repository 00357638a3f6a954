"""Textlocal adapter against a loopback fake of the Textlocal API: messages in → exact form out →
outcomes per recipient; failure codes; the balance check; receipts and inbox notifications in →
reports out (or a 4xx); inbox polling; config rules; no secret in logs."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from smsconsole.providers.base import (
    CallbackRejected,
    CallbackRequest,
    Capabilities,
    ErrorKind,
    OutboundMessage,
)
from smsconsole.providers.textlocal import ERROR_RULES, HOSTS, STATUS_MAP, TextlocalProvider
from tests.fakes.server import Switchboard, unused_port
from tests.fakes.textlocal import API_KEY, FakeTextlocal, Reply, failure

WEBHOOK_TOKEN = "hook-token-0123456789abcdef"
CONFIG = {"api_key": API_KEY, "sender": "ACME", "webhook_token": WEBHOOK_TOKEN}
RECEIPTS = "https://console.example.com/callbacks/textlocal/status"
FORM = "application/x-www-form-urlencoded"
LONG_BODY = ("Textlocal bills long messages by parts. " * 20)[:612]


@pytest.fixture
def fake(server: tuple[Switchboard, str]) -> Iterator[FakeTextlocal]:
    switchboard, url = server
    textlocal = FakeTextlocal()
    textlocal.base_url = url
    switchboard.target = textlocal.app
    yield textlocal
    textlocal.close()


def make_provider(fake: FakeTextlocal, client: httpx.AsyncClient, **config: str) -> TextlocalProvider:
    return TextlocalProvider({**CONFIG, **config}, client=client, base_url=fake.base_url)


def message(**fields: Any) -> OutboundMessage:
    return OutboundMessage(**{"ref": "m-1", "to": "+447700900001", "body": "Hello", **fields})


# --- exact requests ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestCase:
    id: str
    messages: list[OutboundMessage]
    forms: list[dict[str, str]]  # one per request, in order
    config: dict[str, str] = field(default_factory=dict)


def form(**params: str) -> dict[str, str]:
    return {"apikey": API_KEY, **params}


REQUEST_CASES = [
    RequestCase("plain message: digits without '+', our ref as custom", [message()],
                [form(numbers="447700900001", message="Hello", sender="ACME", custom="m-1")]),
    RequestCase("no sender configured: none is sent", [message()],
                [form(numbers="447700900001", message="Hello", custom="m-1")], config={"sender": ""}),
    RequestCase("the message's own sender wins", [message(sender="Shop")],
                [form(numbers="447700900001", message="Hello", sender="Shop", custom="m-1")]),
    RequestCase("receipt URL carries the webhook token", [message(status_callback_url=RECEIPTS + "?p=1")],
                [form(numbers="447700900001", message="Hello", sender="ACME",
                      receipt_url=f"{RECEIPTS}?p=1&token={WEBHOOK_TOKEN}", custom="m-1")]),
    RequestCase("UCS-2 body sets unicode=true", [message(body="Привет — ça va?", encoding="UCS-2")],
                [form(numbers="447700900001", message="Привет — ça va?", sender="ACME", custom="m-1",
                      unicode="true")]),
    RequestCase("a 612-character message is sent whole", [message(body=LONG_BODY, segments=4)],
                [form(numbers="447700900001", message=LONG_BODY, sender="ACME", custom="m-1")]),
    RequestCase("test mode sends test=true", [message()],
                [form(numbers="447700900001", message="Hello", sender="ACME", custom="m-1", test="true")],
                config={"test_mode": "true"}),
    RequestCase(
        "same text to three numbers is one request; the batch's first ref is custom",
        [message(ref="a", to="+447700900001"), message(ref="b", to="+447700900002"),
         message(ref="c", to="+919812345678")],
        [form(numbers="447700900001,447700900002,919812345678", message="Hello", sender="ACME", custom="a")],
    ),
    RequestCase(
        "different texts go in separate requests, order of outcomes kept",
        [message(ref="a", to="+447700900001", body="Hi"), message(ref="b", to="+447700900002", body="Yo"),
         message(ref="c", to="+447700900003", body="Hi")],
        [form(numbers="447700900001,447700900003", message="Hi", sender="ACME", custom="a"),
         form(numbers="447700900002", message="Yo", sender="ACME", custom="b")],
    ),
    RequestCase(
        "the same number twice goes in two requests",
        [message(ref="a"), message(ref="b")],
        [form(numbers="447700900001", message="Hello", sender="ACME", custom="a"),
         form(numbers="447700900001", message="Hello", sender="ACME", custom="b")],
    ),
]


@pytest.mark.parametrize("case", REQUEST_CASES, ids=lambda case: case.id)
async def test_send_builds_the_exact_request(case: RequestCase, fake: FakeTextlocal, client: httpx.AsyncClient) -> None:
    outcomes = await make_provider(fake, client, **case.config).send(case.messages)

    assert [(r.method, r.path) for r in fake.requests] == [("POST", "/send/")] * len(case.forms)
    assert all(r.headers["content-type"] == FORM for r in fake.requests)
    assert [r.form for r in fake.requests] == case.forms
    assert [o.ref for o in outcomes] == [m.ref for m in case.messages]
    assert all(o.accepted and o.http_status == 200 for o in outcomes)
    sent_ids = [f"{f['custom']}:{number}" for f in case.forms for number in f["numbers"].split(",")]
    assert sorted(o.provider_message_id or "" for o in outcomes) == sorted(sent_ids)
    assert all((o.provider_message_id or "").endswith(":" + m.to[1:]) for o, m in zip(outcomes, case.messages))


async def test_an_invalid_number_in_a_batch_fails_alone(fake: FakeTextlocal, client: httpx.AsyncClient) -> None:
    outcomes = await make_provider(fake, client).send([message(ref="a"), message(ref="bad", to="+12"),
                                                       message(ref="c", to="+447700900003")])

    assert len(fake.requests) == 1
    assert [(o.ref, o.accepted) for o in outcomes] == [("a", True), ("bad", False), ("c", True)]
    assert outcomes[1].error is not None and outcomes[1].error.kind is ErrorKind.PERMANENT
    assert outcomes[1].error.code == "3" and "invalid" in str(outcomes[1].error)


async def test_a_recipient_reported_as_opted_out_is_a_permanent_failure_with_that_reason(
    fake: FakeTextlocal, client: httpx.AsyncClient,
) -> None:
    fake.answer_next(Reply(200, {"status": "success", "batch_id": 1, "messages": [
        {"id": "9", "recipient": 447700900001}], "warnings": [
        {"code": 9, "message": "Number is opted out", "numbers": "447700900002"}]}))

    outcomes = await make_provider(fake, client).send([message(ref="a"), message(ref="b", to="+447700900002")])

    assert outcomes[0].accepted
    assert outcomes[1].error is not None and outcomes[1].error.kind is ErrorKind.PERMANENT
    assert "opted out" in str(outcomes[1].error)


async def test_a_number_silently_left_out_is_a_permanent_failure(fake: FakeTextlocal, client: httpx.AsyncClient) -> None:
    fake.answer_next(Reply(200, {"status": "success", "batch_id": 1, "messages": [{"id": "9", "recipient": 447700900001}]}))

    outcomes = await make_provider(fake, client).send([message(ref="a"), message(ref="b", to="+447700900002")])

    assert [o.accepted for o in outcomes] == [True, False]
    assert "did not queue" in str(outcomes[1].error)


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
    ErrorCase("3 invalid login", failure(3, "Invalid login details"), ErrorKind.CONFIGURATION, "3", says="API key"),
    ErrorCase("7 insufficient credits", failure(7, "Insufficient credits"), ErrorKind.CONFIGURATION, "7",
              says="insufficient credits"),
    ErrorCase("43 invalid sender", failure(43, "Invalid sender name"), ErrorKind.CONFIGURATION, "43"),
    ErrorCase("44 no sender", failure(44, "No sender name specified"), ErrorKind.CONFIGURATION, "44"),
    ErrorCase("4 no recipients", failure(4, "No recipients specified"), ErrorKind.PERMANENT, "4"),
    ErrorCase("5 no content", failure(5, "No message content"), ErrorKind.PERMANENT, "5"),
    ErrorCase("6 too long", failure(6, "Message too long"), ErrorKind.PERMANENT, "6"),
    ErrorCase("32 invalid number format", failure(32, "Invalid number format"), ErrorKind.PERMANENT, "32"),
    ErrorCase("51 no valid numbers", failure(51, "No valid numbers specified"), ErrorKind.PERMANENT, "51"),
    ErrorCase("80 template mismatch", failure(80, "Invalid template"), ErrorKind.CONFIGURATION, "80"),
    ErrorCase("192 outside sending hours", failure(192, "You cannot send message at this time"),
              ErrorKind.TRANSIENT, "192"),
    ErrorCase("an opt-out error is permanent with that reason", failure(204, "Number is in the opt-out list"),
              ErrorKind.PERMANENT, "204", says="opted out"),
    ErrorCase("an unknown code is permanent with Textlocal's words", failure(999, "Something new"),
              ErrorKind.PERMANENT, "999", says="Something new"),
    ErrorCase("429 with Retry-After: 7", Reply(429, "slow down", {"Retry-After": "7"}), ErrorKind.TRANSIENT,
              retry_after=7),
    ErrorCase("502 from a proxy", Reply(502, "<html>Bad Gateway</html>"), ErrorKind.TRANSIENT, says="Bad Gateway"),
    ErrorCase("200 that is not JSON", Reply(200, "<html>maintenance</html>"), ErrorKind.UNKNOWN,
              says="without a list of queued messages"),
    ErrorCase("success without messages[]", Reply(200, {"status": "success", "batch_id": 1}), ErrorKind.UNKNOWN),
]


@pytest.mark.parametrize("case", ERROR_CASES, ids=lambda case: case.id)
async def test_send_classifies_error_answers(case: ErrorCase, fake: FakeTextlocal, client: httpx.AsyncClient) -> None:
    fake.answer_next(case.reply)

    outcomes = await make_provider(fake, client).send([message(ref="a"), message(ref="b", to="+447700900002")])

    assert len(fake.requests) == 1
    for outcome in outcomes:
        assert outcome.error is not None and outcome.provider_message_id is None
        assert outcome.error.kind is case.kind
        assert outcome.error.code == case.code
        assert outcome.error.retry_after == case.retry_after
        assert case.says in str(outcome.error)


async def test_wrong_api_key_is_a_configuration_error(fake: FakeTextlocal, client: httpx.AsyncClient) -> None:
    [outcome] = await make_provider(fake, client, api_key="WRONG" + API_KEY[5:]).send([message()])

    assert outcome.error is not None and outcome.error.kind is ErrorKind.CONFIGURATION and outcome.error.code == "3"


async def test_a_server_that_never_answers_leaves_the_outcome_unknown(fake: FakeTextlocal) -> None:
    fake.answer_next(Reply(200, {"status": "success"}, delay=5))
    async with httpx.AsyncClient(timeout=0.2) as slow:
        [outcome] = await make_provider(fake, slow).send([message()])

    assert outcome.error is not None and outcome.error.kind is ErrorKind.UNKNOWN


async def test_a_refused_connection_is_transient(client: httpx.AsyncClient) -> None:
    provider = TextlocalProvider(CONFIG, client=client, base_url=f"http://127.0.0.1:{unused_port()}")

    [outcome] = await provider.send([message()])

    assert outcome.error is not None and outcome.error.kind is ErrorKind.TRANSIENT


def test_the_error_table_covers_the_documented_codes() -> None:
    documented = {3: ErrorKind.CONFIGURATION, 4: ErrorKind.PERMANENT, 5: ErrorKind.PERMANENT,
                  6: ErrorKind.PERMANENT, 7: ErrorKind.CONFIGURATION, 32: ErrorKind.PERMANENT,
                  43: ErrorKind.CONFIGURATION, 44: ErrorKind.CONFIGURATION, 51: ErrorKind.PERMANENT}
    assert {code: ERROR_RULES.find(code).kind for code in documented} == documented
    assert set(STATUS_MAP) == {"D", "U", "P", "I", "E", "?"}


# --- hosts and connection check ---------------------------------------------------------------


def test_the_region_picks_the_host_and_base_url_overrides_it() -> None:
    assert TextlocalProvider(CONFIG).base_url == "https://api.txtlocal.com"
    assert TextlocalProvider({**CONFIG, "region": "india"}).base_url == "https://api.textlocal.in"
    assert TextlocalProvider({**CONFIG, "region": "india"}, base_url="http://127.0.0.1:9/").base_url == \
        "http://127.0.0.1:9"
    assert HOSTS == {"uk": "https://api.txtlocal.com", "india": "https://api.textlocal.in"}


async def test_check_connection_reads_the_balance(fake: FakeTextlocal, client: httpx.AsyncClient) -> None:
    check = await make_provider(fake, client).check_connection()

    assert check.ok and check.detail == "Textlocal UK: 1234 SMS credits"
    [request] = fake.requests
    assert (request.method, request.path, request.form) == ("POST", "/balance/", {"apikey": API_KEY})


async def test_check_connection_names_the_settings_to_fix_on_a_bad_key(
    fake: FakeTextlocal, client: httpx.AsyncClient,
) -> None:
    check = await make_provider(fake, client, api_key="WRONG" + API_KEY[5:], region="india").check_connection()

    assert not check.ok and "API key" in check.detail and "region" in check.detail


@pytest.mark.parametrize(("reply", "says"), [
    (Reply(500, "oops"), "oops"), (Reply(200, "<html>portal</html>"), "unreadable"),
    (failure(2, "Unrecognised command"), "base URL"),
], ids=["500", "200 not JSON", "wrong command"])
async def test_check_connection_fails_with_a_one_line_reason(
    reply: Reply, says: str, fake: FakeTextlocal, client: httpx.AsyncClient,
) -> None:
    fake.answer_next(reply)

    check = await make_provider(fake, client).check_connection()

    assert not check.ok and says in check.detail and "\n" not in check.detail


# --- receipts and inbox notifications ---------------------------------------------------------


def callback(url: str, params: dict[str, str], *, token: str | None = WEBHOOK_TOKEN) -> CallbackRequest:
    full = f"{url}?token={token}" if token else url
    return CallbackRequest("POST", full, {"content-type": FORM}, urlencode(params).encode())


RECEIPT_CASES = [
    pytest.param("D", ("delivered", None, None), id="delivered"),
    pytest.param("P", ("sent", None, None), id="pending"),
    pytest.param("U", ("undelivered", "U", ErrorKind.TRANSIENT), id="undelivered"),
    pytest.param("E", ("undelivered", "E", ErrorKind.TRANSIENT), id="expired"),
    pytest.param("I", ("failed", "I", ErrorKind.PERMANENT), id="invalid-number"),
    pytest.param("?", (None, None, None), id="unknown-ignored"),
    pytest.param("Z", (None, None, None), id="new-status-ignored"),
]


@pytest.mark.parametrize(("status", "expected"), RECEIPT_CASES)
def test_receipts(status: str, expected: tuple[object, ...]) -> None:
    params = {"number": "447700900002", "status": status, "customID": "a", "datetime": "2026-01-15 10:15:00"}

    [report] = TextlocalProvider(CONFIG).status_callback(callback(RECEIPTS, params))

    assert (report.state, report.error_code, report.error_kind) == expected
    assert report.provider_message_id == "a:447700900002"  # the id the batch's send gave this recipient
    assert report.recipient == "+447700900002" and report.provider_status == status
    assert report.at == datetime(2026, 1, 15, 10, 15, tzinfo=UTC)


def test_india_receipt_times_are_read_as_india_time() -> None:
    params = {"number": "919812345678", "status": "D", "customID": "a", "datetime": "2026-01-15 10:15:00"}

    [report] = TextlocalProvider({**CONFIG, "region": "india"}).status_callback(callback(RECEIPTS, params))

    assert report.at == datetime(2026, 1, 15, 4, 45, tzinfo=UTC)


async def test_a_receipt_matches_the_id_the_batch_send_gave(fake: FakeTextlocal, client: httpx.AsyncClient) -> None:
    outcomes = await make_provider(fake, client).send([message(ref="a"), message(ref="b", to="+447700900002")])

    [report] = TextlocalProvider(CONFIG).status_callback(
        callback(RECEIPTS, {"number": "447700900002", "status": "D", "customID": fake.requests[0].form["custom"]}))

    assert report.provider_message_id == outcomes[1].provider_message_id


def test_inbox_notification() -> None:
    params = {"inNumber": "447860033000", "sender": "447700900001", "keyword": "STOP", "content": "STOP please",
              "comments": "please", "email": "", "credits": "100"}

    [inbound] = TextlocalProvider(CONFIG).inbound_callback(callback(RECEIPTS.replace("status", "inbound"), params))

    assert (inbound.sender, inbound.recipient, inbound.text, inbound.keyword) == (
        "+447700900001", "+447860033000", "STOP please", "STOP")


BAD_CALLBACKS = [
    pytest.param(callback(RECEIPTS, {"number": "447700900001", "status": "D", "customID": "a"}, token="x" * 26), 403,
                 id="forged-token"),
    pytest.param(callback(RECEIPTS, {"number": "447700900001", "status": "D", "customID": "a"}, token=None), 401,
                 id="no-token"),
    pytest.param(callback(RECEIPTS, {"status": "D", "customID": "a"}), 400, id="no-number"),
    pytest.param(callback(RECEIPTS, {"number": "447700900001", "customID": "a"}), 400, id="no-status"),
    pytest.param(callback(RECEIPTS, {"number": "447700900001", "status": "D"}), 400, id="no-custom"),
    pytest.param(CallbackRequest("POST", f"{RECEIPTS}?token={WEBHOOK_TOKEN}", {"content-type": FORM}, b"\xff\xfe"),
                 400, id="not-utf8"),
]


@pytest.mark.parametrize(("request_", "status"), BAD_CALLBACKS)
def test_bad_receipts_are_rejected_with_a_4xx(request_: CallbackRequest, status: int) -> None:
    with pytest.raises(CallbackRejected) as rejected:
        TextlocalProvider(CONFIG).status_callback(request_)

    assert rejected.value.status == status


def test_an_inbox_notification_without_sender_is_rejected() -> None:
    with pytest.raises(CallbackRejected) as rejected:
        TextlocalProvider(CONFIG).inbound_callback(callback(RECEIPTS, {"inNumber": "447860033000", "content": "hi"}))

    assert rejected.value.status == 400


# --- inbox polling ----------------------------------------------------------------------------


async def test_poll_inbound_without_a_cursor_starts_from_now(fake: FakeTextlocal, client: httpx.AsyncClient) -> None:
    fake.add_inbox("10", "447860033000")
    fake.receive("10", "447700900001", "old news", "2026-01-15 10:00:00")

    page = await make_provider(fake, client).poll_inbound(None)

    assert page.reports == () and not page.more
    assert [r.path for r in fake.requests] == ["/get_inboxes/", "/get_messages/"]
    assert abs(int(fake.requests[1].form["min_time"]) - datetime.now(UTC).timestamp()) < 60


async def test_poll_inbound_reads_each_inbox_from_its_cursor_and_never_twice(
    fake: FakeTextlocal, client: httpx.AsyncClient,
) -> None:
    provider = make_provider(fake, client)
    fake.add_inbox("10", "447860033000")
    fake.add_inbox("11", "447860033111")
    since = int(datetime(2026, 1, 15, 9, 0, tzinfo=UTC).timestamp())
    cursor = json.dumps({"10": {"since": since, "seen": []}, "11": {"since": since, "seen": []}})
    first = fake.receive("10", "447700900001", "STOP", "2026-01-15 10:00:00")
    second = fake.receive("11", "447700900002", "yes", "2026-01-15 10:00:05")

    page = await provider.poll_inbound(cursor)
    third = fake.receive("10", "447700900003", "later", "2026-01-15 10:00:00")  # same second as `first`
    again = await provider.poll_inbound(page.cursor)

    assert [(r.provider_message_id, r.sender, r.recipient, r.text) for r in page.reports] == [
        (first, "+447700900001", "+447860033000", "STOP"), (second, "+447700900002", "+447860033111", "yes")]
    assert page.reports[0].at == datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
    assert [r.provider_message_id for r in again.reports] == [third]
    assert json.loads(again.cursor or "{}")["10"] == {
        "since": int(datetime(2026, 1, 15, 10, 0, tzinfo=UTC).timestamp()), "seen": sorted([first, third])}
    assert fake.requests[1].form == {"apikey": API_KEY, "inbox_id": "10", "min_time": str(since),
                                     "sort_order": "asc", "limit": "1000"}


async def test_polling_with_a_bad_key_is_a_configuration_error(fake: FakeTextlocal, client: httpx.AsyncClient) -> None:
    with pytest.raises(Exception) as raised:
        await make_provider(fake, client, api_key="WRONG" + API_KEY[5:]).poll_inbound(None)

    assert getattr(raised.value, "kind", None) is ErrorKind.CONFIGURATION


# --- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "problem_fields"),
    [
        (CONFIG, []),
        ({**CONFIG, "api_key": "env:TEXTLOCAL_API_KEY"}, []),
        ({**CONFIG, "api_key": "short"}, ["api_key"]),
        ({**CONFIG, "api_key": "has spaces in it 0123456789"}, ["api_key"]),
        ({**CONFIG, "region": "india", "sender": "ACMESH"}, []),
        ({**CONFIG, "region": "india", "sender": "ACME"}, ["sender"]),
        ({**CONFIG, "region": "india", "sender": ""}, []),
        ({**CONFIG, "region": "us"}, ["region"]),
        ({**CONFIG, "sender": "Jims Autos"}, []),
        ({**CONFIG, "sender": "447700900001"}, []),
        ({**CONFIG, "sender": "Jims Autos Ltd"}, ["sender"]),
        ({**CONFIG, "sender": "AB"}, ["sender"]),
        ({**CONFIG, "test_mode": "sometimes"}, ["test_mode"]),
        ({**CONFIG, "webhook_token": "short"}, ["webhook_token"]),
        ({"sender": "ACME"}, ["api_key"]),
    ],
    ids=["valid", "key from env", "key too short", "key with spaces", "India DLT header", "India sender not 6",
         "India promotional without sender", "unknown region", "UK sender with space", "UK numeric sender",
         "UK sender over 11", "UK sender under 3", "test mode not a bool", "short webhook token", "no key"],
)
def test_validate_config(values: dict[str, str], problem_fields: list[str]) -> None:
    assert [name for name, _ in TextlocalProvider.validate_config(values)] == problem_fields


def test_fields_and_capabilities() -> None:
    assert [f.name for f in TextlocalProvider.config_fields] == ["region", "api_key", "sender", "test_mode",
                                                                  "webhook_token"]
    assert all(f.label and f.help for f in TextlocalProvider.config_fields)
    assert TextlocalProvider.field("region").choices == ("uk", "india")
    assert [f.name for f in TextlocalProvider.config_fields if f.secret] == ["api_key", "webhook_token"]
    assert TextlocalProvider.capabilities == Capabilities(
        max_batch=1000, max_body_chars=765, status_webhook=True, status_polling=False, inbound_webhook=True,
        inbound_polling=True, signature=False, dlt=False)


# --- no secret in logs ------------------------------------------------------------------------


async def test_no_secret_reaches_a_log(fake: FakeTextlocal, client: httpx.AsyncClient,
                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")
    provider = make_provider(fake, client)
    wrong = make_provider(fake, client, api_key="WRONG" + API_KEY[5:])
    fake.add_inbox("10", "447860033000")

    await provider.send([message(status_callback_url=RECEIPTS), message(ref="bad", to="+12")])
    await wrong.send([message(ref="m-2")])
    await provider.check_connection()
    await wrong.check_connection()
    await provider.poll_inbound(None)
    provider.status_callback(callback(RECEIPTS, {"number": "447700900001", "status": "Z", "customID": "m-1"}))

    secrets = [API_KEY, "WRONG" + API_KEY[5:], WEBHOOK_TOKEN]
    assert {"smsconsole.providers.textlocal", "httpx"} <= {record.name for record in caplog.records}
    for record in caplog.records:
        text = f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        assert not any(secret in text for secret in secrets), record.name
