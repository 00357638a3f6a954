"""Twilio adapter, against a loopback fake of the Twilio API: messages in → exact request out
(validated against Twilio's OpenAPI spec) → outcome; config rules; webhook signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from smsconsole.providers.base import Capabilities, ErrorKind, OutboundMessage
from smsconsole.providers.twilio import (
    ERROR_RULES,
    STATUS_MAP,
    TwilioProvider,
    compute_signature,
    verify_signature,
)
from tests.fakes.server import Switchboard, unused_port
from tests.fakes.twilio import (
    ACCOUNT_SID,
    API_KEY_SECRET,
    API_KEY_SID,
    AUTH_TOKEN,
    SERVICE_SID,
    FakeTwilio,
    RecordedRequest,
    Reply,
    spec_problems,
    twilio_error,
)

BASE_CONFIG = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "sender": "+15005550006"}
MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
CALLBACK_URL = "https://hooks.example.com/twilio/status?ref=42"
LONG_BODY = ("Twilio allows up to 1,600 characters. " * 50)[:1600]


@pytest.fixture
def twilio_fake(server: tuple[Switchboard, str]) -> Iterator[FakeTwilio]:
    """A fresh fake on a real loopback port; every request it received must satisfy the spec."""
    switchboard, url = server
    fake = FakeTwilio()
    fake.base_url = url
    switchboard.target = fake.app
    try:
        yield fake
    finally:
        fake.close()
    problems = {request.path: spec_problems(request) for request in fake.requests}
    assert not any(problems.values()), problems


@pytest.fixture
async def twilio_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


def make_provider(fake: FakeTwilio, client: httpx.AsyncClient, **config: str) -> TwilioProvider:
    return TwilioProvider({**BASE_CONFIG, **config}, client=client, base_url=fake.base_url)


def message(**fields: Any) -> OutboundMessage:
    return OutboundMessage(**{"ref": "m-1", "to": "+14155550100", "body": "Hello", **fields})


# --- exact requests ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestCase:
    id: str
    message: OutboundMessage
    form: dict[str, str]
    config: dict[str, str] = field(default_factory=dict)
    auth: tuple[str, str] = (ACCOUNT_SID, AUTH_TOKEN)
    provider_status: str = "queued"


REQUEST_CASES = [
    RequestCase(
        "plain message from a Twilio number",
        message(),
        {"To": "+14155550100", "From": "+15005550006", "Body": "Hello"},
    ),
    RequestCase(
        "messaging service picks the sender: no From is sent",
        message(),
        {"To": "+14155550100", "MessagingServiceSid": SERVICE_SID, "Body": "Hello"},
        config={"messaging_service_sid": SERVICE_SID},
        provider_status="accepted",
    ),
    RequestCase(
        "messaging service without a configured sender",
        message(),
        {"To": "+14155550100", "MessagingServiceSid": SERVICE_SID, "Body": "Hello"},
        config={"sender": "", "messaging_service_sid": SERVICE_SID},
        provider_status="accepted",
    ),
    RequestCase(
        "alphanumeric sender ID",
        message(),
        {"To": "+14155550100", "From": "ACME Shop", "Body": "Hello"},
        config={"sender": "ACME Shop"},
    ),
    RequestCase(
        "short code sender",
        message(),
        {"To": "+14155550100", "From": "24680", "Body": "Hello"},
        config={"sender": "24680"},
    ),
    RequestCase(
        "the message's own sender overrides the configured one",
        message(sender="+15005550001"),
        {"To": "+14155550100", "From": "+15005550001", "Body": "Hello"},
    ),
    RequestCase(
        "StatusCallback when the message carries a callback URL",
        message(status_callback_url=CALLBACK_URL),
        {"To": "+14155550100", "From": "+15005550006", "Body": "Hello", "StatusCallback": CALLBACK_URL},
    ),
    RequestCase(
        "unicode and emoji body travels as UTF-8",
        message(body="Привет 👋 — ça va? 你好", encoding="UCS-2"),
        {"To": "+14155550100", "From": "+15005550006", "Body": "Привет 👋 — ça va? 你好"},
    ),
    RequestCase(
        "a 1,600-character body is sent whole",
        message(body=LONG_BODY, segments=11),
        {"To": "+14155550100", "From": "+15005550006", "Body": LONG_BODY},
    ),
    RequestCase(
        "validity period and smart encoding when configured",
        message(),
        {"To": "+14155550100", "From": "+15005550006", "Body": "Hello",
         "ValidityPeriod": "600", "SmartEncoded": "true"},
        config={"validity_period": "600", "smart_encoding": "true"},
    ),
    RequestCase(
        "smart encoding off sends nothing",
        message(),
        {"To": "+14155550100", "From": "+15005550006", "Body": "Hello"},
        config={"smart_encoding": "false"},
    ),
    RequestCase(
        "API key: Basic auth with the key SID and its secret",
        message(),
        {"To": "+14155550100", "From": "+15005550006", "Body": "Hello"},
        config={"api_key_sid": API_KEY_SID, "auth_token": API_KEY_SECRET},
        auth=(API_KEY_SID, API_KEY_SECRET),
    ),
]


@pytest.mark.parametrize("case", REQUEST_CASES, ids=lambda case: case.id)
async def test_send_builds_the_exact_request(
    case: RequestCase, twilio_fake: FakeTwilio, twilio_client: httpx.AsyncClient
) -> None:
    provider = make_provider(twilio_fake, twilio_client, **case.config)

    [outcome] = await provider.send([case.message])

    [request] = twilio_fake.requests
    assert (request.method, request.path) == ("POST", MESSAGES_PATH)
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.basic_auth == case.auth
    assert request.form == case.form
    assert len(request.form_pairs) == len(case.form), "no parameter is sent twice"
    assert spec_problems(request) == []
    assert outcome.accepted
    assert outcome.ref == case.message.ref
    assert outcome.provider_message_id == twilio_fake.issued_sids[0]
    assert outcome.provider_status == case.provider_status
    assert outcome.http_status == 201


async def test_one_request_per_message_and_a_failure_does_not_stop_the_rest(
    twilio_fake: FakeTwilio, twilio_client: httpx.AsyncClient
) -> None:
    twilio_fake.answer_next(twilio_error(400, 21211, "Invalid 'To' Phone Number"))
    provider = make_provider(twilio_fake, twilio_client)

    outcomes = await provider.send([message(ref="a", to="+1415"), message(ref="b", to="+14155550101")])

    assert [request.form["To"] for request in twilio_fake.requests] == ["+1415", "+14155550101"]
    assert [(o.ref, o.accepted) for o in outcomes] == [("a", False), ("b", True)]


# --- the spec validator bites -----------------------------------------------------------------


def form_request(form: dict[str, str], *, auth: bool = True, path: str = MESSAGES_PATH) -> RecordedRequest:
    headers = {"content-type": "application/x-www-form-urlencoded"}
    if auth:
        headers["authorization"] = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    body = httpx.Request("POST", "http://x", data=form).read()
    return RecordedRequest(method="POST", path=path, query="", headers=headers, body=body)


GOOD_FORM = {"To": "+14155550100", "From": "+15005550006", "Body": "Hello"}


@pytest.mark.parametrize(
    ("form", "auth", "path", "problem"),
    [
        ({**GOOD_FORM, "SmartEncoding": "true"}, True, MESSAGES_PATH, "SmartEncoding"),
        ({"To": "+14155550100", "Body": "Hello"}, True, MESSAGES_PATH, "one of From, MessagingServiceSid is required"),
        ({"From": "+15005550006", "Body": "Hello"}, True, MESSAGES_PATH, "'To' is a required property"),
        ({"To": "+14155550100", "From": "+15005550006"}, True, MESSAGES_PATH, "one of Body, MediaUrl, ContentSid"),
        ({**GOOD_FORM, "MessagingServiceSid": "MG123"}, True, MESSAGES_PATH, "does not match"),
        ({**GOOD_FORM, "ValidityPeriod": "ten minutes"}, True, MESSAGES_PATH, "integer"),
        (GOOD_FORM, False, MESSAGES_PATH, "Security"),
        (GOOD_FORM, True, "/2010-04-01/Accounts/AC123/Messages.json", "AccountSid"),
    ],
    ids=["unknown param", "neither From nor service", "no To", "no Body", "bad service SID pattern",
         "ValidityPeriod not an integer", "no Basic auth", "bad Account SID in path"],
)
def test_the_spec_validator_rejects_wrong_requests(form: dict[str, str], auth: bool, path: str, problem: str) -> None:
    assert spec_problems(form_request(GOOD_FORM)) == []

    problems = spec_problems(form_request(form, auth=auth, path=path))

    assert any(problem in text for text in problems), problems


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
    ErrorCase("401 code 20003: bad credentials", twilio_error(401, 20003, "Authenticate"),
              ErrorKind.CONFIGURATION, "20003", says="credentials"),
    ErrorCase("400 code 21211: invalid recipient", twilio_error(400, 21211, "Invalid 'To' Phone Number: +1415"),
              ErrorKind.PERMANENT, "21211", says="Invalid 'To' Phone Number"),
    ErrorCase("400 code 21610: recipient replied STOP",
              twilio_error(400, 21610, "Attempt to send to unsubscribed recipient"),
              ErrorKind.PERMANENT, "21610", says="unsubscribed (replied STOP)"),
    ErrorCase("400 code 21606: sender not ours", twilio_error(400, 21606, "The 'From' phone number is not valid"),
              ErrorKind.CONFIGURATION, "21606", says="sender"),
    ErrorCase("429 code 20429 with Retry-After: 7",
              twilio_error(429, 20429, "Too Many Requests", {"Retry-After": "7"}),
              ErrorKind.TRANSIENT, "20429", retry_after=7),
    ErrorCase("429 without a Twilio body, Retry-After: 7", Reply(429, "slow down", {"Retry-After": "7"}),
              ErrorKind.TRANSIENT, retry_after=7),
    ErrorCase("500 Twilio internal error", twilio_error(500, 20500, "Internal Server Error"),
              ErrorKind.TRANSIENT, "20500"),
    ErrorCase("503 HTML from a proxy", Reply(503, "<html><body>Service Unavailable</body></html>"),
              ErrorKind.TRANSIENT, says="Service Unavailable"),
    ErrorCase("unknown code falls back to the HTTP status", twilio_error(400, 99999, "Something new"),
              ErrorKind.PERMANENT, "99999", says="Something new"),
    ErrorCase("400 with a body that is not JSON", Reply(400, "Bad Request: malformed form"),
              ErrorKind.PERMANENT, says="malformed form"),
    ErrorCase("201 with a body that is not JSON: accepted, id unreadable",
              Reply(201, "<?xml version='1.0'?><TwilioResponse>"), ErrorKind.UNKNOWN, says="no message SID"),
    ErrorCase("201 JSON without a sid", Reply(201, {"status": "queued"}), ErrorKind.UNKNOWN, says="no message SID"),
]


@pytest.mark.parametrize("case", ERROR_CASES, ids=lambda case: case.id)
async def test_send_classifies_error_answers(
    case: ErrorCase, twilio_fake: FakeTwilio, twilio_client: httpx.AsyncClient
) -> None:
    twilio_fake.answer_next(case.reply)
    provider = make_provider(twilio_fake, twilio_client)

    [outcome] = await provider.send([message()])

    assert not outcome.accepted and outcome.error is not None
    assert outcome.error.kind is case.kind
    assert outcome.error.code == case.code
    assert outcome.error.retry_after == case.retry_after
    assert outcome.error.http_status == case.reply.status
    assert outcome.http_status == case.reply.status
    assert case.says in str(outcome.error)
    assert outcome.provider_message_id is None


async def test_a_server_that_never_answers_leaves_the_outcome_unknown(twilio_fake: FakeTwilio) -> None:
    twilio_fake.answer_next(Reply(201, {"sid": "SM" + "0" * 32}, delay=5))
    async with httpx.AsyncClient(timeout=0.2) as client:
        [outcome] = await make_provider(twilio_fake, client).send([message()])

    assert outcome.error is not None and outcome.error.kind is ErrorKind.UNKNOWN
    assert len(twilio_fake.requests) == 1


async def test_a_refused_connection_is_transient(twilio_client: httpx.AsyncClient) -> None:
    provider = TwilioProvider(BASE_CONFIG, client=twilio_client, base_url=f"http://127.0.0.1:{unused_port()}")

    [outcome] = await provider.send([message()])

    assert outcome.error is not None and outcome.error.kind is ErrorKind.TRANSIENT
    assert "cannot connect" in str(outcome.error)


async def test_without_an_http_client_send_reports_a_configuration_error() -> None:
    [outcome] = await TwilioProvider(BASE_CONFIG).send([message()])

    assert outcome.error is not None and outcome.error.kind is ErrorKind.CONFIGURATION


def test_the_error_table_covers_the_documented_codes() -> None:
    expected = {
        20003: ErrorKind.CONFIGURATION, 20429: ErrorKind.TRANSIENT,
        21211: ErrorKind.PERMANENT, 21408: ErrorKind.PERMANENT, 21608: ErrorKind.PERMANENT,
        21610: ErrorKind.PERMANENT, 21612: ErrorKind.PERMANENT, 21614: ErrorKind.PERMANENT,
        21617: ErrorKind.PERMANENT, 21635: ErrorKind.PERMANENT,
        21606: ErrorKind.CONFIGURATION, 21659: ErrorKind.CONFIGURATION, 21660: ErrorKind.CONFIGURATION,
        30001: ErrorKind.TRANSIENT, 30003: ErrorKind.TRANSIENT, 30004: ErrorKind.PERMANENT,
        30005: ErrorKind.PERMANENT, 30006: ErrorKind.PERMANENT, 30007: ErrorKind.PERMANENT,
        30008: ErrorKind.TRANSIENT, 30032: ErrorKind.CONFIGURATION, 30034: ErrorKind.CONFIGURATION,
        30036: ErrorKind.TRANSIENT,
    }
    assert {code: ERROR_RULES.find(code).kind for code in expected} == expected


def test_status_map_covers_every_outbound_status_of_the_spec() -> None:
    outbound = {"queued", "sending", "sent", "failed", "delivered", "undelivered", "accepted",
                "scheduled", "read", "partially_delivered", "canceled"}
    assert set(STATUS_MAP) == outbound
    assert {STATUS_MAP[s] for s in ("delivered", "read")} == {"delivered"}
    assert {STATUS_MAP[s] for s in ("failed", "canceled")} == {"failed"}


# --- connection check -------------------------------------------------------------------------


async def test_check_connection_reports_an_active_account_with_its_balance(
    twilio_fake: FakeTwilio, twilio_client: httpx.AsyncClient
) -> None:
    check = await make_provider(twilio_fake, twilio_client).check_connection()

    assert check.ok
    assert check.detail == "Account 'Acme Ltd' (Full), active, balance 12.34 USD"
    assert [(r.method, r.path) for r in twilio_fake.requests] == [
        ("GET", f"/2010-04-01/Accounts/{ACCOUNT_SID}.json"),
        ("GET", f"/2010-04-01/Accounts/{ACCOUNT_SID}/Balance.json"),
    ]
    assert {r.basic_auth for r in twilio_fake.requests} == {(ACCOUNT_SID, AUTH_TOKEN)}


@pytest.mark.parametrize(
    "balance",
    [twilio_error(404, 20404, "not found"), Reply(200, "not json"), Reply(200, {"account_sid": ACCOUNT_SID})],
    ids=["404 (subaccount)", "unreadable", "no balance field"],
)
async def test_check_connection_skips_the_balance_quietly_when_it_is_unavailable(
    balance: Reply, twilio_fake: FakeTwilio, twilio_client: httpx.AsyncClient
) -> None:
    twilio_fake.balance = balance

    check = await make_provider(twilio_fake, twilio_client).check_connection()

    assert check.ok
    assert check.detail == "Account 'Acme Ltd' (Full), active"


async def test_check_connection_fails_for_a_suspended_account(
    twilio_fake: FakeTwilio, twilio_client: httpx.AsyncClient
) -> None:
    twilio_fake.account["status"] = "suspended"

    check = await make_provider(twilio_fake, twilio_client).check_connection()

    assert not check.ok
    assert check.detail == "Account 'Acme Ltd' is suspended, not active"


async def test_check_connection_fails_on_wrong_credentials(
    twilio_fake: FakeTwilio, twilio_client: httpx.AsyncClient
) -> None:
    check = await make_provider(twilio_fake, twilio_client, auth_token="0" * 32).check_connection()

    assert not check.ok
    assert "credentials" in check.detail and "401" in check.detail


@pytest.mark.parametrize(
    ("reply", "says"),
    [(twilio_error(500, 20500, "Internal Server Error"), "Internal Server Error"),
     (Reply(200, "<html>captive portal</html>"), "unreadable"),
     (twilio_error(404, 20404, "The requested resource was not found"), "20404")],
    ids=["500", "200 not JSON", "404 unknown account"],
)
async def test_check_connection_fails_with_a_one_line_reason(
    reply: Reply, says: str, twilio_fake: FakeTwilio, twilio_client: httpx.AsyncClient
) -> None:
    twilio_fake.answer_next(reply)

    check = await make_provider(twilio_fake, twilio_client).check_connection()

    assert not check.ok
    assert says in check.detail and "\n" not in check.detail


async def test_check_connection_fails_when_twilio_is_unreachable(twilio_client: httpx.AsyncClient) -> None:
    provider = TwilioProvider(BASE_CONFIG, client=twilio_client, base_url=f"http://127.0.0.1:{unused_port()}")

    check = await provider.check_connection()

    assert not check.ok
    assert check.detail.startswith("Twilio account check failed: cannot connect to 127.0.0.1:")


# --- configuration ----------------------------------------------------------------------------

SID_HEX = "0123456789abcdef0123456789ABCDEF"


@pytest.mark.parametrize(
    ("values", "problem_fields"),
    [
        (BASE_CONFIG, []),
        ({**BASE_CONFIG, "auth_token": "env:TWILIO_AUTH_TOKEN"}, []),
        ({**BASE_CONFIG, "auth_token": "env:1NOT-A-NAME"}, ["auth_token"]),
        ({**BASE_CONFIG, "account_sid": "AC123"}, ["account_sid"]),
        ({**BASE_CONFIG, "account_sid": "SK" + SID_HEX}, ["account_sid"]),
        ({**BASE_CONFIG, "api_key_sid": "SK" + SID_HEX}, []),
        ({**BASE_CONFIG, "api_key_sid": "SKnothex" + "z" * 26}, ["api_key_sid"]),
        ({**BASE_CONFIG, "sender": "", "messaging_service_sid": "MG" + SID_HEX}, []),
        ({**BASE_CONFIG, "messaging_service_sid": "MG-short"}, ["messaging_service_sid"]),
        ({"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN}, ["sender"]),
        ({**BASE_CONFIG, "sender": "ACME Shop"}, []),
        ({**BASE_CONFIG, "sender": "A&B_C-D+E 1"}, []),
        ({**BASE_CONFIG, "sender": "ACME Shop Ltd"}, ["sender"]),  # 13 characters
        ({**BASE_CONFIG, "sender": "Shop!"}, ["sender"]),
        ({**BASE_CONFIG, "sender": "12345678"}, ["sender"]),  # digits only, not a short code
        ({**BASE_CONFIG, "sender": "12345"}, []),
        ({**BASE_CONFIG, "sender": "+0123456789"}, ["sender"]),
        ({**BASE_CONFIG, "validity_period": "600"}, []),
        ({**BASE_CONFIG, "validity_period": "0"}, ["validity_period"]),
        ({**BASE_CONFIG, "validity_period": "36001"}, ["validity_period"]),
        ({**BASE_CONFIG, "smart_encoding": "maybe"}, ["smart_encoding"]),
        ({**BASE_CONFIG, "status_callback": "https://x.example"}, ["status_callback"]),
        ({"sender": "+15005550006"}, ["account_sid", "auth_token"]),
    ],
    ids=["valid", "auth token from env", "bad env reference", "short account SID", "account SID with SK",
         "API key", "API key not hex", "service SID instead of sender", "bad service SID",
         "neither sender nor service", "alphanumeric sender", "alphanumeric with every allowed symbol",
         "alphanumeric over 11 characters", "alphanumeric with a forbidden symbol", "digits only",
         "short code", "E.164 starting with 0", "validity period", "validity period 0",
         "validity period over 10 hours", "smart encoding not a bool", "no status_callback setting",
         "credentials missing"],
)
def test_validate_config(values: dict[str, str], problem_fields: list[str]) -> None:
    assert [name for name, _ in TwilioProvider.validate_config(values)] == problem_fields


def test_neither_sender_nor_service_is_reported_on_sender_naming_both() -> None:
    [(name, reason)] = TwilioProvider.validate_config({"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN})

    assert name == "sender"
    assert "From" in reason and "Messaging Service SID" in reason


def test_fields_capabilities_and_flags() -> None:
    assert [f.name for f in TwilioProvider.config_fields] == [
        "account_sid", "api_key_sid", "auth_token", "sender", "messaging_service_sid",
        "validity_period", "smart_encoding", "signing_auth_token",
    ]
    assert all(f.label and f.help for f in TwilioProvider.config_fields)
    assert [f.name for f in TwilioProvider.config_fields if f.secret] == ["auth_token", "signing_auth_token"]
    assert [f.name for f in TwilioProvider.config_fields if f.required] == ["account_sid", "auth_token"]
    assert TwilioProvider.field("account_sid").flag == "--account-sid"
    assert TwilioProvider.default_base_url == "https://api.twilio.com"
    assert TwilioProvider.capabilities == Capabilities(
        max_batch=1, max_body_chars=1600, status_webhook=True, status_polling=True,
        inbound_webhook=True, inbound_polling=True, signature=True, status_lookup=True, pricing_api=True,
    )


# --- no secret in logs ------------------------------------------------------------------------


async def test_no_secret_reaches_a_log(
    twilio_fake: FakeTwilio, twilio_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # the CLI quiets httpx; here we want all it says
    provider = make_provider(twilio_fake, twilio_client)
    wrong = make_provider(twilio_fake, twilio_client, auth_token="wrong-" + AUTH_TOKEN[6:])

    await provider.send([message()])
    await wrong.send([message(ref="m-2")])
    await provider.check_connection()
    await wrong.check_connection()

    secrets = [AUTH_TOKEN, "wrong-" + AUTH_TOKEN[6:]]
    secrets += [base64.b64encode(f"{ACCOUNT_SID}:{secret}".encode()).decode() for secret in list(secrets)]
    assert {"smsconsole.providers.twilio", "httpx"} <= {record.name for record in caplog.records}
    for record in caplog.records:
        text = f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        assert not any(secret in text for secret in secrets), record.name


# --- webhook signatures -----------------------------------------------------------------------

SIGNED_URL = "https://mycompany.com/myapp?foo=1&bar=2"
SIGNED_PARAMS = {"To": "+18005551212", "From": "+12349013030", "MessageSid": "SM123", "Body": "Hi there"}


def hmac_sha1_base64(token: str, data: str) -> str:
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def test_signature_is_hmac_sha1_over_url_and_sorted_params() -> None:
    expected = hmac_sha1_base64("12345", SIGNED_URL + "BodyHi thereFrom+12349013030MessageSidSM123To+18005551212")

    assert compute_signature(SIGNED_URL, SIGNED_PARAMS, "12345") == expected
    assert verify_signature(SIGNED_URL, SIGNED_PARAMS, expected, "12345")


def test_signature_of_a_repeated_param_sorts_its_values() -> None:
    expected = hmac_sha1_base64("12345", SIGNED_URL + "MediaUrlhttps://a/1MediaUrlhttps://b/2Tox")

    assert compute_signature(SIGNED_URL, {"To": "x", "MediaUrl": ["https://b/2", "https://a/1"]}, "12345") == expected


def test_signature_of_a_get_webhook_covers_the_url_alone() -> None:
    assert compute_signature(SIGNED_URL, None, "12345") == hmac_sha1_base64("12345", SIGNED_URL)


@pytest.mark.parametrize(
    ("signed_url", "received_url"),
    [
        ("https://mycompany.com:443/myapp?foo=1", "https://mycompany.com/myapp?foo=1"),
        ("https://mycompany.com/myapp?foo=1", "https://mycompany.com:443/myapp?foo=1"),
        ("http://mycompany.com:80/myapp", "http://mycompany.com/myapp"),
        ("http://mycompany.com/myapp", "http://mycompany.com:80/myapp"),
    ],
)
def test_signature_accepts_the_url_with_and_without_its_port(signed_url: str, received_url: str) -> None:
    signature = compute_signature(signed_url, SIGNED_PARAMS, "12345")

    assert verify_signature(received_url, SIGNED_PARAMS, signature, "12345")


@pytest.mark.parametrize(
    ("url", "params", "signature"),
    [
        (SIGNED_URL, SIGNED_PARAMS, hmac_sha1_base64("another-token", SIGNED_URL + "BodyHi there")),
        (SIGNED_URL, {**SIGNED_PARAMS, "Body": "Hi there!"}, None),
        (SIGNED_URL.replace("myapp", "other"), SIGNED_PARAMS, None),
        (SIGNED_URL, SIGNED_PARAMS, ""),
        (SIGNED_URL, SIGNED_PARAMS, "ünïcode"),
    ],
    ids=["signed with another token", "tampered param", "other URL", "empty", "not base64"],
)
def test_a_forged_signature_is_rejected(url: str, params: dict[str, str], signature: str | None) -> None:
    genuine = compute_signature(SIGNED_URL, SIGNED_PARAMS, "12345")

    assert not verify_signature(url, params, genuine if signature is None else signature, "12345")


def test_json_webhook_signature_checks_the_body_hash() -> None:
    body = '{"MessageSid":"SM123","MessageStatus":"delivered"}'
    url = f"https://mycompany.com/hook?bodySHA256={hashlib.sha256(body.encode()).hexdigest()}"
    signature = hmac_sha1_base64("12345", url)

    assert verify_signature(url, {}, signature, "12345", body=body)
    assert not verify_signature(url, {}, signature, "12345", body=body.replace("delivered", "failed"))
