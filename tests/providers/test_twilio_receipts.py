"""Twilio receipts and replies: callbacks in → verified, parsed reports out (or a 4xx); polling
the Messages list and fetching one message from a loopback fake of the Twilio API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from urllib.parse import urlencode

import httpx
import pytest

from smsconsole.providers.base import CallbackRejected, CallbackRequest, ErrorKind, OutboundMessage
from smsconsole.providers.twilio import TwilioProvider, compute_signature
from tests.fakes.server import Switchboard
from tests.fakes.twilio import ACCOUNT_SID, API_KEY_SECRET, API_KEY_SID, AUTH_TOKEN, FakeTwilio

CONFIG = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "sender": "+15005550006"}
STATUS_URL = "https://console.example.com/callbacks/twilio-main/status"
INBOUND_URL = "https://console.example.com/callbacks/twilio-main/inbound"
FORM = "application/x-www-form-urlencoded"


def signed(url: str, params: dict[str, str], token: str = AUTH_TOKEN, *, signature: str | None = None,
           method: str = "POST") -> CallbackRequest:
    """A callback as Twilio sends it: form body, X-Twilio-Signature over the URL and the params."""
    if method == "GET":
        full = f"{url}?{urlencode(params)}"
        return CallbackRequest("GET", full, {"x-twilio-signature": signature or compute_signature(full, {}, token)})
    sig = signature if signature is not None else compute_signature(url, params, token)
    return CallbackRequest("POST", url, {"content-type": FORM, "x-twilio-signature": sig},
                           urlencode(params).encode())


STATUS_CASES = [
    pytest.param({"MessageSid": "SM1", "MessageStatus": "delivered", "To": "+447400123456",
                  "RawDlrDoneDate": "2611231015"},
                 ("SM1", "delivered", "delivered", None, None), id="delivered"),
    pytest.param({"MessageSid": "SM2", "MessageStatus": "sent"}, ("SM2", "sent", "sent", None, None), id="sent"),
    pytest.param({"MessageSid": "SM3", "MessageStatus": "undelivered", "ErrorCode": "30003"},
                 ("SM3", "undelivered", "undelivered", "30003", ErrorKind.TRANSIENT), id="undelivered-unreachable"),
    pytest.param({"MessageSid": "SM4", "MessageStatus": "failed", "ErrorCode": "30007"},
                 ("SM4", "failed", "failed", "30007", ErrorKind.PERMANENT), id="failed-filtered"),
    pytest.param({"SmsSid": "SM5", "SmsStatus": "read"}, ("SM5", "read", "delivered", None, None), id="legacy-names"),
    pytest.param({"MessageSid": "SM6", "MessageStatus": "mystery"}, ("SM6", "mystery", None, None, None),
                 id="unknown-status-ignored"),
]


@pytest.mark.parametrize(("params", "expected"), STATUS_CASES)
def test_status_callbacks(params: dict[str, str], expected: tuple[object, ...]) -> None:
    provider = TwilioProvider(CONFIG)
    [report] = provider.status_callback(signed(STATUS_URL, params))
    assert (report.provider_message_id, report.provider_status, report.state, report.error_code,
            report.error_kind) == expected
    if "RawDlrDoneDate" in params:
        assert report.at == datetime(2026, 11, 23, 10, 15, tzinfo=UTC)
        assert report.recipient == "+447400123456"


def test_status_callback_by_get_is_signed_over_the_url_alone() -> None:
    [report] = TwilioProvider(CONFIG).status_callback(
        signed(STATUS_URL, {"MessageSid": "SM9", "MessageStatus": "delivered"}, method="GET"))
    assert report.state == "delivered"


def test_inbound_callback_and_its_twiml_answer() -> None:
    provider = TwilioProvider(CONFIG)
    params = {"MessageSid": "SM7", "From": "+447400123456", "To": "+15005550006", "Body": "STOP",
              "OptOutType": "STOP", "NumMedia": "0"}
    [inbound] = provider.inbound_callback(signed(INBOUND_URL, params))
    assert (inbound.provider_message_id, inbound.sender, inbound.recipient, inbound.text, inbound.keyword) == (
        "SM7", "+447400123456", "+15005550006", "STOP", "STOP")
    status, content_type, body = provider.callback_answer("inbound")
    assert (status, content_type) == (200, "text/xml") and body.endswith(b"<Response/>")


REJECTED = [
    pytest.param(CallbackRequest("POST", STATUS_URL, {"content-type": FORM}, b"MessageSid=SM1&MessageStatus=sent"),
                 401, id="unsigned"),
    pytest.param(signed(STATUS_URL, {"MessageSid": "SM1", "MessageStatus": "sent"}, token="f" * 32), 403,
                 id="forged-signature"),
    pytest.param(signed(STATUS_URL, {"MessageSid": "SM1", "MessageStatus": "sent"}, signature=compute_signature(
        "https://evil.example.com/callbacks/twilio-main/status", {"MessageSid": "SM1", "MessageStatus": "sent"},
        AUTH_TOKEN)), 403, id="signed-for-another-url"),
    pytest.param(signed(STATUS_URL, {"MessageStatus": "sent"}), 400, id="no-sid"),
    pytest.param(signed(STATUS_URL, {"MessageSid": "SM1"}), 400, id="no-status"),
    pytest.param(CallbackRequest("POST", STATUS_URL, {"content-type": FORM, "x-twilio-signature": "x"}, b"\xff\xfe"),
                 400, id="not-utf8"),
    pytest.param(CallbackRequest("POST", STATUS_URL, {"content-type": FORM, "x-twilio-signature": "x"},
                                 b"a" * (256 * 1024 + 1)), 413, id="too-large"),
]


@pytest.mark.parametrize(("request_", "status"), REJECTED)
def test_bad_callbacks_are_rejected_with_a_4xx(request_: CallbackRequest, status: int) -> None:
    with pytest.raises(CallbackRejected) as rejected:
        TwilioProvider(CONFIG).status_callback(request_)
    assert rejected.value.status == status


def test_tampered_parameter_breaks_the_signature() -> None:
    request = signed(STATUS_URL, {"MessageSid": "SM1", "MessageStatus": "failed"})
    tampered = CallbackRequest(request.method, request.url, request.headers,
                               request.body.replace(b"failed", b"delivered"))
    with pytest.raises(CallbackRejected) as rejected:
        TwilioProvider(CONFIG).status_callback(tampered)
    assert rejected.value.status == 403


def test_with_an_api_key_webhooks_need_the_account_token() -> None:
    keyed = {"account_sid": ACCOUNT_SID, "api_key_sid": API_KEY_SID, "auth_token": API_KEY_SECRET,
             "sender": "+15005550006"}
    request = signed(STATUS_URL, {"MessageSid": "SM1", "MessageStatus": "sent"})
    with pytest.raises(CallbackRejected) as rejected:
        TwilioProvider(keyed).status_callback(request)
    assert rejected.value.status == 403 and "Auth token for webhooks" in rejected.value.reason
    [report] = TwilioProvider({**keyed, "signing_auth_token": AUTH_TOKEN}).status_callback(request)
    assert report.state == "sent"


# --- polling ------------------------------------------------------------------------------------


@pytest.fixture
def fake(server: tuple[Switchboard, str]) -> Iterator[FakeTwilio]:
    switchboard, url = server
    twilio = FakeTwilio()
    twilio.base_url = url
    switchboard.target = twilio.app
    yield twilio
    twilio.close()


@pytest.fixture
async def provider(fake: FakeTwilio) -> AsyncIterator[TwilioProvider]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield TwilioProvider(CONFIG, client=client, base_url=fake.base_url)


async def send(provider: TwilioProvider, *numbers: str) -> list[str]:
    outcomes = await provider.send([OutboundMessage(ref=str(i), to=n, body="hi") for i, n in enumerate(numbers)])
    return [o.provider_message_id or "" for o in outcomes]


async def test_fetch_statuses_reads_each_message_and_skips_unknown_ones(
    fake: FakeTwilio, provider: TwilioProvider,
) -> None:
    first, second = await send(provider, "+447400123456", "+447400123457")
    fake.set_status(first, "delivered")
    fake.set_status(second, "undelivered", error_code=30005)
    reports = await provider.fetch_statuses([first, second, "SM" + "f" * 32])
    assert [(r.provider_message_id, r.state, r.error_code, r.error_kind) for r in reports] == [
        (first, "delivered", None, None), (second, "undelivered", "30005", ErrorKind.PERMANENT)]


async def test_poll_statuses_walks_every_page_and_resumes_from_its_cursor(
    fake: FakeTwilio, provider: TwilioProvider,
) -> None:
    sids = await send(provider, *[f"+4474001234{i:02d}" for i in range(3)])
    fake.receive("+447400999999", "+15005550006", "hello")  # inbound: not a status
    fake.set_status(sids[0], "delivered")
    seen: dict[str, str | None] = {}
    cursor = None
    pages = 0
    while True:
        page = await provider.poll_statuses(cursor)
        pages += 1
        seen.update({r.provider_message_id or "": r.state for r in page.reports})
        cursor = page.cursor
        if not page.more:
            break
        assert pages < 10
    assert seen == {sids[0]: "delivered", sids[1]: "sent", sids[2]: "sent"}
    assert json.loads(cursor or "{}").get("since")
    listing = [r for r in fake.requests if r.method == "GET" and r.path.endswith("/Messages.json")]
    assert "DateSent%3E=" in listing[0].query and "PageSize=1000" in listing[0].query


async def test_poll_statuses_follows_next_page_uri(fake: FakeTwilio, provider: TwilioProvider) -> None:
    sids = await send(provider, "+447400123401", "+447400123402", "+447400123403")
    first = await provider.poll_statuses(json.dumps({"since": "2000-01-01", "next": (
        f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json?DateSent%3E=2000-01-01&PageSize=2")}))
    assert first.more and len(first.reports) == 2
    second = await provider.poll_statuses(first.cursor)
    assert not second.more
    assert {r.provider_message_id for r in (*first.reports, *second.reports)} == set(sids)


async def test_poll_inbound_lists_replies_to_the_sender_number(fake: FakeTwilio, provider: TwilioProvider) -> None:
    await send(provider, "+447400123456")
    sid = fake.receive("+447400123456", "+15005550006", "STOP")
    fake.receive("+447400123456", "+15005550099", "to another number")
    page = await provider.poll_inbound(None)
    assert [(r.provider_message_id, r.sender, r.text) for r in page.reports] == [(sid, "+447400123456", "STOP")]
    assert page.reports[0].at is not None and not page.more


async def test_polling_with_bad_credentials_is_a_configuration_error(fake: FakeTwilio) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        wrong = TwilioProvider({**CONFIG, "auth_token": "0" * 32}, client=client, base_url=fake.base_url)
        with pytest.raises(Exception) as raised:
            await wrong.poll_statuses(None)
    assert getattr(raised.value, "kind", None) == ErrorKind.CONFIGURATION
