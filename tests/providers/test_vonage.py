"""Vonage adapter, against a loopback fake of the Vonage SMS API: messages in → exact request out
(validated against Vonage's OpenAPI specs) → outcome; every documented status code; the balance
check; config rules; no secret in a log."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import yaml

from smsconsole.providers.base import Capabilities, ErrorKind, OutboundMessage
from smsconsole.providers.vonage import ERROR_RULES, VonageProvider
from tests.fakes.server import Switchboard, unused_port
from tests.fakes.vonage import (
    API_KEY,
    API_SECRET,
    SPECS,
    FakeVonage,
    RecordedRequest,
    Reply,
    basic,
    spec_problems,
    vonage_error,
)

BASE_CONFIG = {"api_key": API_KEY, "api_secret": API_SECRET, "sender": "AcmeInc"}
CALLBACK_URL = "https://hooks.example.com/vonage/status?ref=42"
TOKEN = "t0k3n-0123456789abcdef"
LONG_BODY = "Vonage splits long texts into parts of 153 characters. " * 6  # 330 characters → 3 parts
AUTH = {"api_key": API_KEY, "api_secret": API_SECRET}


@pytest.fixture
def vonage_fake(server: tuple[Switchboard, str]) -> Iterator[FakeVonage]:
    """A fresh fake on a real loopback port; every request it received must satisfy the specs."""
    switchboard, url = server
    fake = FakeVonage()
    fake.base_url = url
    switchboard.target = fake.app
    try:
        yield fake
    finally:
        fake.close()
    problems = {request.path: spec_problems(request) for request in fake.requests}
    assert not any(problems.values()), problems


def make_provider(fake: FakeVonage, client: httpx.AsyncClient, **config: str) -> VonageProvider:
    return VonageProvider({**BASE_CONFIG, **config}, client=client, base_url=fake.base_url)


def message(**fields: Any) -> OutboundMessage:
    return OutboundMessage(**{"ref": "m-1", "to": "+447700900001", "body": "Hello", **fields})


# --- exact requests ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestCase:
    id: str
    message: OutboundMessage
    form: dict[str, str]
    config: dict[str, str] = field(default_factory=dict)
    parts: int = 1


BASIC_FORM = {**AUTH, "from": "AcmeInc", "to": "447700900001", "text": "Hello", "client-ref": "m-1"}

REQUEST_CASES = [
    RequestCase("plain message: to without '+', our ref as client-ref", message(), BASIC_FORM),
    RequestCase("a Vonage number as sender is sent without '+'", message(), {**BASIC_FORM, "from": "447700900000"},
                config={"sender": "+447700900000"}),
    RequestCase("the message's own sender wins", message(sender="Shop"), {**BASIC_FORM, "from": "Shop"}),
    RequestCase("UCS-2 body: type=unicode", message(body="Привет 👋", encoding="UCS-2"),
                {**BASIC_FORM, "text": "Привет 👋", "type": "unicode"}),
    RequestCase("a long GSM text is one request; Vonage answers with one id per part",
                message(body=LONG_BODY, segments=3), {**BASIC_FORM, "text": LONG_BODY}, parts=3),
    RequestCase("a long unicode text", message(body="Ωmega " * 20, encoding="UCS-2", segments=2),
                {**BASIC_FORM, "text": "Ωmega " * 20, "type": "unicode"}, parts=2),
    RequestCase("the status callback URL goes in callback", message(status_callback_url=CALLBACK_URL),
                {**BASIC_FORM, "callback": CALLBACK_URL}),
    RequestCase("with a webhook token the callback URL carries it",
                message(status_callback_url=CALLBACK_URL),
                {**BASIC_FORM, "callback": f"https://hooks.example.com/vonage/status?{urlencode({'ref': 42, 'token': TOKEN})}"},
                config={"webhook_token": TOKEN}),
    RequestCase("a ref longer than 40 characters is not sent", message(ref="r" * 41),
                {k: v for k, v in BASIC_FORM.items() if k != "client-ref"}),
    RequestCase("ttl when configured", message(), {**BASIC_FORM, "ttl": "900000"}, config={"ttl": "900000"}),
    RequestCase("DLT entity and template ids from the config", message(),
                {**BASIC_FORM, "entity-id": "1101456324675322134", "content-id": "1107457532145798767"},
                config={"dlt_entity_id": "1101456324675322134", "dlt_template_id": "1107457532145798767"}),
    RequestCase("the message's DLT template id wins over the config's",
                message(options={"dlt_template_id": "1107000000000000001"}),
                {**BASIC_FORM, "entity-id": "1101456324675322134", "content-id": "1107000000000000001"},
                config={"dlt_entity_id": "1101456324675322134", "dlt_template_id": "1107457532145798767"}),
]


@pytest.mark.parametrize("case", REQUEST_CASES, ids=lambda case: case.id)
async def test_send_builds_the_exact_request(
    case: RequestCase, vonage_fake: FakeVonage, client: httpx.AsyncClient
) -> None:
    provider = make_provider(vonage_fake, client, **case.config)

    [outcome] = await provider.send([case.message])

    [request] = vonage_fake.requests
    assert (request.method, request.path, request.query) == ("POST", "/sms/json", "")
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert "authorization" not in request.headers
    assert request.form == case.form
    assert len(request.form_pairs) == len(case.form), "no parameter is sent twice"
    assert spec_problems(request) == []
    assert outcome.accepted and outcome.ref == case.message.ref
    assert outcome.part_ids == tuple(vonage_fake.issued_ids) and len(outcome.part_ids) == case.parts
    assert outcome.provider_message_id == vonage_fake.issued_ids[0]
    assert (outcome.provider_status, outcome.http_status) == ("0", 200)


async def test_one_request_per_recipient_and_a_failure_does_not_stop_the_rest(
    vonage_fake: FakeVonage, client: httpx.AsyncClient
) -> None:
    vonage_fake.answer_next(vonage_error("3", "Invalid to address"))

    outcomes = await make_provider(vonage_fake, client).send(
        [message(ref="a", to="+447700900001"), message(ref="b", to="+447700900002")])

    assert [r.form["to"] for r in vonage_fake.requests] == ["447700900001", "447700900002"]
    assert [(o.ref, o.accepted) for o in outcomes] == [("a", False), ("b", True)]


# --- the spec validator bites -----------------------------------------------------------------


def form_request(form: dict[str, str], path: str = "/sms/json") -> RecordedRequest:
    body = urlencode(form).encode()
    return RecordedRequest("POST", path, "", {"content-type": "application/x-www-form-urlencoded"}, body)


def get_request(path: str, query: dict[str, str], auth: bool = False) -> RecordedRequest:
    headers = {"authorization": basic(API_KEY, API_SECRET)} if auth else {}
    return RecordedRequest("GET", path, urlencode(query), headers, b"")


GOOD_FORM = {**AUTH, "from": "AcmeInc", "to": "447700900001", "text": "Hi"}
RECORDS = "/v2/reports/records"
GOOD_RECORDS = {"account_id": API_KEY, "product": "SMS", "direction": "outbound", "id": "0B000001"}


@pytest.mark.parametrize(
    ("request_", "problem"),
    [
        (form_request({**GOOD_FORM, "unicode": "true"}), "undeclared parameter unicode"),
        (form_request({**GOOD_FORM, "to": "+447700900001"}), "'to' must be 7–15 digits"),
        (form_request({k: v for k, v in GOOD_FORM.items() if k != "from"}), "'from' is a required property"),
        (form_request({**GOOD_FORM, "api_key": "abc"}), "too short"),
        (form_request({**GOOD_FORM, "type": "ucs2"}), "is not one of"),
        (form_request({**GOOD_FORM, "ttl": "10"}), "less than the minimum"),
        (get_request("/account/get-balance", {"api_key": API_KEY}), "api_secret"),
        (get_request(RECORDS, GOOD_RECORDS), "Security"),
        (get_request(RECORDS, {**GOOD_RECORDS, "product": "TEXT"}, auth=True), "product"),
        (get_request(RECORDS, {**GOOD_RECORDS, "since": "x"}, auth=True), "undeclared query parameter since"),
        (RecordedRequest("POST", "/sms/csv", "", {"content-type": "application/x-www-form-urlencoded"}, urlencode(GOOD_FORM).encode()), "format"),
    ],
    ids=["unknown param", "to with '+'", "no from", "short api_key", "bad type", "ttl too small",
         "balance without secret", "reports without Basic auth", "bad product", "unknown reports filter",
         "bad format"],
)
def test_the_spec_validator_rejects_wrong_requests(request_: RecordedRequest, problem: str) -> None:
    assert spec_problems(form_request(GOOD_FORM)) == []
    assert spec_problems(get_request(RECORDS, GOOD_RECORDS, auth=True)) == []
    assert spec_problems(get_request(RECORDS, {**GOOD_RECORDS, "cursor": "1", "iv": "x"}, auth=True)) == []

    problems = spec_problems(request_)

    assert any(problem in text for text in problems), problems


# --- errors -----------------------------------------------------------------------------------


def spec_error_codes() -> set[str]:
    with (SPECS / "vonage_sms.yml").open(encoding="utf-8") as handle:
        return set(yaml.safe_load(handle)["x-errors"])


EXPECTED_KINDS = {
    "1": ErrorKind.TRANSIENT, "2": ErrorKind.PERMANENT, "3": ErrorKind.PERMANENT, "4": ErrorKind.CONFIGURATION,
    "5": ErrorKind.TRANSIENT, "6": ErrorKind.PERMANENT, "7": ErrorKind.PERMANENT, "8": ErrorKind.CONFIGURATION,
    "9": ErrorKind.CONFIGURATION, "10": ErrorKind.TRANSIENT, "11": ErrorKind.CONFIGURATION,
    "12": ErrorKind.PERMANENT, "14": ErrorKind.CONFIGURATION, "15": ErrorKind.CONFIGURATION,
    "22": ErrorKind.PERMANENT, "23": ErrorKind.CONFIGURATION, "29": ErrorKind.PERMANENT,
    "32": ErrorKind.CONFIGURATION, "33": ErrorKind.PERMANENT,
}


def test_the_error_table_covers_every_status_code_of_the_spec() -> None:
    assert ERROR_RULES.codes() == spec_error_codes() == set(EXPECTED_KINDS)
    assert {code: ERROR_RULES.find(code).kind for code in EXPECTED_KINDS} == EXPECTED_KINDS


@pytest.mark.parametrize("code", sorted(EXPECTED_KINDS, key=int))
async def test_each_status_code_of_a_send_answer_is_classified(
    code: str, vonage_fake: FakeVonage, client: httpx.AsyncClient
) -> None:
    vonage_fake.answer_next(vonage_error(code, f"error text {code}"))

    [outcome] = await make_provider(vonage_fake, client).send([message()])

    assert outcome.error is not None and not outcome.accepted
    assert (outcome.error.kind, outcome.error.code, outcome.http_status) == (EXPECTED_KINDS[code], code, 200)
    assert f"(Vonage: error text {code})" in str(outcome.error)
    assert outcome.provider_message_id is None


@dataclass(frozen=True)
class ErrorCase:
    id: str
    reply: Reply
    kind: ErrorKind
    code: str | None = None
    retry_after: float | None = None
    says: str = ""


ERROR_CASES = [
    ErrorCase("status 7: a barred (blacklisted) recipient is permanent and says so",
              vonage_error("7", "Number barred."), ErrorKind.PERMANENT, "7", says="barred (blacklisted"),
    ErrorCase("status 4: bad credentials name the settings", vonage_error("4", "Bad Credentials"),
              ErrorKind.CONFIGURATION, "4", says="check the API key and API secret"),
    ErrorCase("an unknown status is permanent", vonage_error("99", "Something new"), ErrorKind.PERMANENT, "99",
              says="Something new"),
    ErrorCase("a later part failing fails the message and names the accepted parts",
              Reply(200, {"message-count": "2", "messages": [
                  {"to": "447700900001", "message-id": "0B00000000000001", "status": "0"},
                  {"status": "1", "error-text": "Throttled"}]}),
              ErrorKind.TRANSIENT, "1", says="parts 0B00000000000001 were accepted"),
    ErrorCase("429 with Retry-After", Reply(429, "slow down", {"Retry-After": "7"}), ErrorKind.TRANSIENT,
              retry_after=7),
    ErrorCase("401", Reply(401, "Unauthorized"), ErrorKind.CONFIGURATION, says="Unauthorized"),
    ErrorCase("503 HTML from a proxy", Reply(503, "<html>Service Unavailable</html>"), ErrorKind.TRANSIENT,
              says="Service Unavailable"),
    ErrorCase("200 with a body that is not JSON: outcome unknown", Reply(200, "<html>portal</html>"),
              ErrorKind.UNKNOWN, says="without a readable messages list"),
    ErrorCase("200 with an empty messages list", Reply(200, {"message-count": "0", "messages": []}),
              ErrorKind.UNKNOWN, says="messages list"),
    ErrorCase("200 status 0 without a message-id",
              Reply(200, {"message-count": "1", "messages": [{"status": "0", "to": "447700900001"}]}),
              ErrorKind.UNKNOWN, says="no message-id"),
]


@pytest.mark.parametrize("case", ERROR_CASES, ids=lambda case: case.id)
async def test_send_classifies_error_answers(case: ErrorCase, vonage_fake: FakeVonage, client: httpx.AsyncClient) -> None:
    vonage_fake.answer_next(case.reply)

    [outcome] = await make_provider(vonage_fake, client).send([message()])

    assert outcome.error is not None
    assert (outcome.error.kind, outcome.error.code, outcome.error.retry_after) == (case.kind, case.code, case.retry_after)
    assert outcome.http_status == case.reply.status
    assert case.says in str(outcome.error)
    assert outcome.provider_message_id is None and outcome.part_ids == ()


async def test_a_server_that_never_answers_leaves_the_outcome_unknown(vonage_fake: FakeVonage) -> None:
    vonage_fake.answer_next(Reply(200, {"messages": []}, delay=5))
    async with httpx.AsyncClient(timeout=0.2) as slow:
        [outcome] = await make_provider(vonage_fake, slow).send([message()])

    assert outcome.error is not None and outcome.error.kind is ErrorKind.UNKNOWN


async def test_a_refused_connection_is_transient(client: httpx.AsyncClient) -> None:
    provider = VonageProvider(BASE_CONFIG, client=client, base_url=f"http://127.0.0.1:{unused_port()}")

    [outcome] = await provider.send([message()])

    assert outcome.error is not None and outcome.error.kind is ErrorKind.TRANSIENT


# --- connection check -------------------------------------------------------------------------


async def test_check_connection_reads_the_balance(vonage_fake: FakeVonage, client: httpx.AsyncClient) -> None:
    check = await make_provider(vonage_fake, client).check_connection()

    assert check.ok
    assert check.detail == "Vonage account abcd1234: balance 10.171275, auto-reload off"
    [request] = vonage_fake.requests
    assert (request.method, request.path) == ("GET", "/account/get-balance")
    assert request.query == urlencode(AUTH)


@pytest.mark.parametrize(
    ("config", "reply", "says"),
    [
        ({"api_secret": "Wrong0123456789"}, None, "Vonage refused the credentials (HTTP 401): check the API key and API secret"),
        ({}, Reply(500, "oops"), "Vonage balance check failed: HTTP 500: oops"),
        ({}, Reply(200, "<html>portal</html>"), "unreadable body"),
    ],
    ids=["wrong secret", "500", "not JSON"],
)
async def test_check_connection_fails_with_a_one_line_reason(
    config: dict[str, str], reply: Reply | None, says: str, vonage_fake: FakeVonage, client: httpx.AsyncClient
) -> None:
    if reply:
        vonage_fake.answer_next(reply)

    check = await make_provider(vonage_fake, client, **config).check_connection()

    assert not check.ok and says in check.detail and "\n" not in check.detail


async def test_check_connection_fails_when_vonage_is_unreachable(client: httpx.AsyncClient) -> None:
    provider = VonageProvider(BASE_CONFIG, client=client, base_url=f"http://127.0.0.1:{unused_port()}")

    check = await provider.check_connection()

    assert not check.ok and check.detail.startswith("Vonage balance check failed: cannot connect")


# --- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "problem_fields"),
    [
        (BASE_CONFIG, []),
        ({**BASE_CONFIG, "api_secret": "env:VONAGE_API_SECRET"}, []),
        ({**BASE_CONFIG, "api_key": "abcd123"}, ["api_key"]),
        ({**BASE_CONFIG, "api_secret": "short"}, ["api_secret"]),
        ({**BASE_CONFIG, "sender": "+447700900000"}, []),
        ({**BASE_CONFIG, "sender": "447700900000"}, []),
        ({**BASE_CONFIG, "sender": "Acme Shop"}, []),
        ({**BASE_CONFIG, "sender": "Acme Shop Ltd"}, ["sender"]),
        ({**BASE_CONFIG, "sender": "Acme&Co"}, ["sender"]),
        ({**BASE_CONFIG, "sender": "12345"}, ["sender"]),
        ({**BASE_CONFIG, "signature_secret": "env:VONAGE_SIG", "signature_method": "sha256hmac"}, []),
        ({**BASE_CONFIG, "signature_method": "sha256"}, ["signature_method"]),
        ({**BASE_CONFIG, "webhook_token": "short"}, ["webhook_token"]),
        ({**BASE_CONFIG, "ttl": "19999"}, ["ttl"]),
        ({**BASE_CONFIG, "ttl": "604800000"}, []),
        ({**BASE_CONFIG, "dlt_entity_id": "1101456324675322134", "dlt_template_id": "1107-4575"},
         ["dlt_template_id"]),
        ({**BASE_CONFIG, "api_base_url": "api.nexmo.com"}, ["api_base_url"]),
        ({"sender": "AcmeInc"}, ["api_key", "api_secret"]),
        ({**BASE_CONFIG, "callback": "https://x"}, ["callback"]),
    ],
    ids=["valid", "secret from env", "short key", "short secret", "number with +", "number without +",
         "alphanumeric", "alphanumeric over 11", "alphanumeric with &", "digits too short", "signature config",
         "unknown method", "short webhook token", "ttl too small", "ttl at the maximum", "bad DLT template id",
         "api base not a URL", "credentials missing", "unknown setting"],
)
def test_validate_config(values: dict[str, str], problem_fields: list[str]) -> None:
    assert [name for name, _ in VonageProvider.validate_config(values)] == problem_fields


def test_fields_capabilities_and_hosts() -> None:
    assert [f.name for f in VonageProvider.config_fields] == [
        "api_key", "api_secret", "sender", "signature_secret", "signature_method", "webhook_token", "ttl",
        "dlt_entity_id", "dlt_template_id", "api_base_url",
    ]
    assert all(f.label and f.help for f in VonageProvider.config_fields)
    assert [f.name for f in VonageProvider.config_fields if f.secret] == ["api_secret", "signature_secret",
                                                                          "webhook_token"]
    assert VonageProvider.capabilities == Capabilities(
        max_batch=1, max_body_chars=1600, status_webhook=True, status_polling=True, inbound_webhook=True,
        inbound_polling=True, signature=True, dlt=True, status_lookup=True)
    assert VonageProvider(BASE_CONFIG).base_url == "https://rest.nexmo.com"
    assert VonageProvider(BASE_CONFIG).api_base_url == "https://api.nexmo.com"
    assert VonageProvider(BASE_CONFIG, base_url="http://127.0.0.1:9").api_base_url == "http://127.0.0.1:9"
    assert VonageProvider({**BASE_CONFIG, "api_base_url": "https://proxy.example/"},
                          base_url="http://127.0.0.1:9").api_base_url == "https://proxy.example"


# --- no secret in logs ------------------------------------------------------------------------


async def test_no_secret_reaches_a_log(
    vonage_fake: FakeVonage, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """The balance check must put api_secret in the query string (the spec says so) and httpx logs
    URLs at INFO, which the app silences (smsconsole.logs sets httpx to WARNING); everything else,
    httpx included, is captured at DEBUG."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")
    wrong_secret = "Wrong0123456789"
    provider = make_provider(vonage_fake, client)
    wrong = make_provider(vonage_fake, client, api_secret=wrong_secret)

    await provider.send([message()])
    await wrong.send([message(ref="m-2")])
    await provider.fetch_statuses(vonage_fake.issued_ids)
    caplog.set_level(logging.WARNING, logger="httpx")
    await provider.check_connection()
    await wrong.check_connection()

    secrets = [API_SECRET, wrong_secret, basic(API_KEY, API_SECRET).split()[1]]
    assert {"smsconsole.providers.vonage", "httpx"} <= {record.name for record in caplog.records}
    for record in caplog.records:
        text = f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        assert not any(secret in text for secret in secrets), record.name
