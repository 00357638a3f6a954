"""Plivo receipts and replies: callbacks in → verified (X-Plivo-Signature-V3) and parsed reports
out, or a 4xx; the V3 signature vectors (GET, POST, the bare '?' quirk, several signatures);
fetching and polling the Message API of a loopback fake."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import httpx
import pytest

from smsconsole.providers.base import CallbackRejected, CallbackRequest, ErrorKind, OutboundMessage
from smsconsole.providers.plivo import (
    ERROR_RULES,
    STATUS_MAP,
    PlivoProvider,
    compute_signature,
    signature_base,
    verify_signature,
)
from tests.fakes.plivo import AUTH_ID, AUTH_TOKEN, FakePlivo, api_problems
from tests.fakes.server import Switchboard

CONFIG = {"auth_id": AUTH_ID, "auth_token": AUTH_TOKEN, "sender": "14155550100"}
STATUS_URL = "https://console.example.com/callbacks/plivo-main/status"
INBOUND_URL = "https://console.example.com/callbacks/plivo-main/inbound"
FORM = "application/x-www-form-urlencoded"
NONCE = "05429567804466091622"

DLR = {"MessageUUID": "db3ce55a-7f1d-11e1-8ea7-1231380bc196", "To": "14155550101", "From": "14155550100",
       "Type": "sms", "Status": "delivered", "Units": "1", "TotalRate": "0.0050", "TotalAmount": "0.0050",
       "MCC": "310", "MNC": "260", "ErrorCode": "", "ParentMessageUUID": "db3ce55a-7f1d-11e1-8ea7-1231380bc196",
       "PartInfo": "1 of 1", "Sequence": "3", "MessageTime": "2026-11-23 10:15:00.123456",
       "QueuedTime": "2026-11-23 10:15:00.223456", "SentTime": "2026-11-23 10:15:01.000000",
       "DeliveryReportTime": "2026-11-23 10:15:04.500000"}
INBOUND = {"MessageUUID": "2a8f4e36-7f1e-11e1-8ea7-1231380bc196", "From": "14155550101", "To": "14155550100",
           "Text": "STOP", "Type": "sms", "Units": "1", "TotalRate": "0", "TotalAmount": "0",
           "MessageIntent": "optout"}


def hmac_b64(data: str, token: str = AUTH_TOKEN) -> str:
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha256).digest()).decode()


def signed(params: dict[str, str], url: str = STATUS_URL, method: str = "POST", *, token: str = AUTH_TOKEN,
           extra_signatures: tuple[str, ...] = ()) -> CallbackRequest:
    """A callback as Plivo sends it: form POST (or GET with the params in the query), signed V3."""
    if method == "GET":
        full = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"
        signature = compute_signature("GET", full, {}, NONCE, token)
        headers = {"x-plivo-signature-v3": ",".join((*extra_signatures, signature)),
                   "x-plivo-signature-v3-nonce": NONCE}
        return CallbackRequest("GET", full, headers)
    signature = compute_signature("POST", url, {k: [v] for k, v in params.items()}, NONCE, token)
    headers = {"content-type": FORM, "x-plivo-signature-v3": ",".join((*extra_signatures, signature)),
               "x-plivo-signature-v3-nonce": NONCE}
    return CallbackRequest("POST", url, headers, urlencode(params).encode())


# --- signature vectors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "params", "base"),
    [
        ("GET", "https://example.com/status/?b=2&a=1", None, "https://example.com/status/?a=1&b=2"),
        ("GET", "https://example.com/status/", None, "https://example.com/status/"),
        ("POST", "https://example.com/status/?b=2&a=1", {"To": "1415", "From": "1416"},
         "https://example.com/status/?a=1&b=2.From1416To1415"),
        ("POST", "https://example.com/status/", {"To": "1415", "From": "1416"},
         "https://example.com/status/?From1416To1415"),
        ("POST", "https://example.com/status/?a=1", {}, "https://example.com/status/?a=1"),
        ("POST", "https://example.com/status/", {"Media": ["b", "a"], "To": ["1415"]},
         "https://example.com/status/?MediaaMediabTo1415"),
        ("GET", "https://example.com/s/?k=2&k=1&j=", None, "https://example.com/s/?j=&k=1&k=2"),
    ],
    ids=["get-sorted-query", "get-no-query", "post-query-then-dot-then-params", "post-bare-question-mark",
         "post-no-params", "post-list-values-sorted", "get-repeated-and-blank"],
)
def test_the_signed_string(method: str, url: str, params: dict[str, object] | None, base: str) -> None:
    assert signature_base(method, url, params) == base
    assert compute_signature(method, url, params, NONCE, AUTH_TOKEN) == hmac_b64(f"{base}.{NONCE}")


def test_any_of_several_comma_separated_signatures_may_match() -> None:
    genuine = compute_signature("POST", STATUS_URL, {"a": "1"}, NONCE, AUTH_TOKEN)
    assert verify_signature("POST", STATUS_URL, {"a": "1"}, NONCE, f"c2lnbmF0dXJl,{genuine}", AUTH_TOKEN)
    assert verify_signature("POST", STATUS_URL, {"a": "1"}, NONCE, f"{genuine}, c2lnbmF0dXJl", AUTH_TOKEN)
    assert not verify_signature("POST", STATUS_URL, {"a": "2"}, NONCE, genuine, AUTH_TOKEN)
    assert not verify_signature("POST", STATUS_URL, {"a": "1"}, "other-nonce", genuine, AUTH_TOKEN)


def test_non_ascii_is_accepted_as_utf8_and_as_the_python_sdk_signs_it() -> None:
    params = {"Text": ["नमस्ते"]}
    for latin1 in (False, True):
        signature = compute_signature("POST", INBOUND_URL, params, NONCE, AUTH_TOKEN, latin1=latin1)
        assert verify_signature("POST", INBOUND_URL, params, NONCE, signature, AUTH_TOKEN)


# --- delivery receipts -----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_a_signed_delivery_receipt(method: str) -> None:
    [report] = PlivoProvider(CONFIG).status_callback(signed(DLR, method=method))

    assert (report.provider_message_id, report.provider_status, report.state, report.error_code) == (
        DLR["MessageUUID"], "delivered", "delivered", None)
    assert (report.recipient, report.part, report.parts) == ("+14155550101", 1, 1)
    assert report.at == datetime(2026, 11, 23, 10, 15, 4, 500000, tzinfo=UTC)


def test_a_callback_url_with_its_own_query_is_signed_with_it() -> None:
    url = f"{STATUS_URL}?ref=42"
    [report] = PlivoProvider(CONFIG).status_callback(signed(DLR, url=url))
    assert report.state == "delivered"


def test_a_part_reports_against_its_parent_uuid() -> None:
    params = {**DLR, "MessageUUID": "ffffffff-0000-0000-0000-000000000002", "PartInfo": "2 of 3"}
    [report] = PlivoProvider(CONFIG).status_callback(signed(params))
    assert (report.provider_message_id, report.part, report.parts) == (DLR["ParentMessageUUID"], 2, 3)


STATUS_CASES = [
    pytest.param({"Status": "queued"}, ("sent", None, None), id="queued"),
    pytest.param({"Status": "sent"}, ("sent", None, None), id="sent"),
    pytest.param({"Status": "undelivered", "ErrorCode": "200"}, ("undelivered", "200", ErrorKind.PERMANENT),
                 id="opted-out"),
    pytest.param({"Status": "undelivered", "ErrorCode": "20"}, ("undelivered", "20", ErrorKind.TRANSIENT),
                 id="network-error"),
    pytest.param({"Status": "failed", "ErrorCode": "30"}, ("failed", "30", ErrorKind.PERMANENT), id="spam"),
    pytest.param({"Status": "failed", "ErrorCode": "40"}, ("failed", "40", ErrorKind.CONFIGURATION),
                 id="invalid-source"),
    pytest.param({"Status": "failed", "ErrorCode": "450"}, ("failed", "450", ErrorKind.PERMANENT),
                 id="country-barred"),
    pytest.param({"Status": "failed", "ErrorCode": "900"}, ("failed", "900", ErrorKind.CONFIGURATION),
                 id="no-credit"),
    pytest.param({"Status": "failed", "ErrorCode": "777"}, ("failed", "777", ErrorKind.PERMANENT), id="unknown-code"),
    pytest.param({"Status": "rejected", "ErrorCode": "10"}, ("failed", "10", ErrorKind.PERMANENT), id="rejected"),
    pytest.param({"Status": "delivered", "ErrorCode": "000"}, ("delivered", None, None), id="zero-code"),
    pytest.param({"Status": "mystery"}, (None, None, None), id="unknown-status-ignored"),
]


@pytest.mark.parametrize(("changes", "expected"), STATUS_CASES)
def test_receipt_states_and_error_codes(changes: dict[str, str], expected: tuple[object, ...]) -> None:
    [report] = PlivoProvider(CONFIG).status_callback(signed({**DLR, **changes}))
    assert (report.state, report.error_code, report.error_kind) == expected
    if report.error_kind:
        assert report.reason


def test_opt_out_reads_as_such_and_the_tables_cover_the_documented_values() -> None:
    assert "opted out" in ERROR_RULES.find("200").reason
    assert {"10", "20", "30", "40", "450", "900"} <= ERROR_RULES.codes()
    assert {"queued", "sent", "failed", "delivered", "undelivered", "read", "rejected"} <= set(STATUS_MAP)


REJECTED = [
    pytest.param(CallbackRequest("POST", STATUS_URL, {"content-type": FORM}, urlencode(DLR).encode()), 401,
                 id="unsigned"),
    pytest.param(signed(DLR, token="F" * 40), 403, id="forged-signature"),
    pytest.param(CallbackRequest("POST", STATUS_URL.replace("console", "evil"), signed(DLR).headers,
                                 signed(DLR).body), 403, id="signed-for-another-url"),
    pytest.param(CallbackRequest("POST", STATUS_URL, signed(DLR).headers,
                                 signed(DLR).body.replace(b"delivered", b"undelivered")), 403, id="tampered"),
    pytest.param(CallbackRequest("POST", STATUS_URL, {**signed(DLR).headers, "x-plivo-signature-v3-nonce": "1"},
                                 signed(DLR).body), 403, id="other-nonce"),
    pytest.param(signed({k: v for k, v in DLR.items() if k not in ("MessageUUID", "ParentMessageUUID")}), 400,
                 id="no-uuid"),
    pytest.param(signed({k: v for k, v in DLR.items() if k != "Status"}), 400, id="no-status"),
    pytest.param(CallbackRequest("POST", STATUS_URL, {**signed(DLR).headers}, b"\xff\xfe"), 400, id="not-utf8"),
    pytest.param(CallbackRequest("POST", STATUS_URL, {**signed(DLR).headers}, b"a" * (256 * 1024 + 1)), 413,
                 id="too-large"),
]


@pytest.mark.parametrize(("request_", "status"), REJECTED)
def test_bad_callbacks_are_rejected_with_a_4xx(request_: CallbackRequest, status: int) -> None:
    with pytest.raises(CallbackRejected) as rejected:
        PlivoProvider(CONFIG).status_callback(request_)
    assert rejected.value.status == status


# --- inbound messages --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_an_inbound_message_and_its_xml_answer(method: str) -> None:
    provider = PlivoProvider(CONFIG)
    [inbound] = provider.inbound_callback(signed(INBOUND, INBOUND_URL, method))
    assert (inbound.provider_message_id, inbound.sender, inbound.recipient, inbound.text, inbound.keyword) == (
        INBOUND["MessageUUID"], "+14155550101", "+14155550100", "STOP", "optout")
    status, content_type, body = provider.callback_answer("inbound")
    assert (status, content_type) == (200, "application/xml") and body.endswith(b"<Response></Response>")


def test_a_blank_message_intent_is_no_keyword_and_unicode_text_survives() -> None:
    [inbound] = PlivoProvider(CONFIG).inbound_callback(
        signed({**INBOUND, "Text": "नमस्ते, कैसे हो?", "MessageIntent": ""}, INBOUND_URL))
    assert (inbound.text, inbound.keyword) == ("नमस्ते, कैसे हो?", None)


@pytest.mark.parametrize(("drop", "status"), [("From", 400), ("Text", 400)])
def test_a_malformed_inbound_message_is_rejected(drop: str, status: int) -> None:
    with pytest.raises(CallbackRejected) as rejected:
        PlivoProvider(CONFIG).inbound_callback(signed({k: v for k, v in INBOUND.items() if k != drop}, INBOUND_URL))
    assert rejected.value.status == status


# --- fetching and polling ---------------------------------------------------------------------


@pytest.fixture
def fake(server: tuple[Switchboard, str]) -> Iterator[FakePlivo]:
    switchboard, url = server
    plivo = FakePlivo()
    plivo.base_url = url
    switchboard.target = plivo.app
    yield plivo
    plivo.close()
    problems = {f"{r.method} {r.path}?{r.query}": api_problems(r) for r in plivo.requests}
    assert not any(problems.values()), problems


@pytest.fixture
async def provider(fake: FakePlivo) -> AsyncIterator[PlivoProvider]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield PlivoProvider(CONFIG, client=client, base_url=fake.base_url)


async def send(provider: PlivoProvider, count: int) -> list[str]:
    outcomes = await provider.send([OutboundMessage(ref=str(i), to=f"+1415555{i:04d}", body="hi") for i in range(count)])
    return [o.provider_message_id or "" for o in outcomes]


async def test_fetch_statuses_reads_each_message_and_skips_unknown_ones(fake: FakePlivo, provider: PlivoProvider) -> None:
    first, second = await send(provider, 2)
    fake.set_state(first, "delivered")
    fake.set_state(second, "undelivered", error_code="200")

    reports = await provider.fetch_statuses([first, second, "00000000-0000-0000-0000-000000000000"])

    assert [(r.provider_message_id, r.state, r.error_code, r.error_kind) for r in reports] == [
        (first, "delivered", None, None), (second, "undelivered", "200", ErrorKind.PERMANENT)]
    assert [r.path for r in fake.requests[1:]] == [f"/v1/Account/{AUTH_ID}/Message/{u}/" for u in (
        first, second, "00000000-0000-0000-0000-000000000000")]


async def test_poll_statuses_walks_pages_of_twenty(fake: FakePlivo, provider: PlivoProvider) -> None:
    uuids = await send(provider, 25)
    fake.receive("14155559999", "14155550100", "inbound is not a status")
    fake.set_state(uuids[0], "delivered")
    seen: dict[str, str | None] = {}
    cursor, pages = None, 0
    while True:
        page = await provider.poll_statuses(cursor)
        pages += 1
        seen.update({r.provider_message_id or "": r.state for r in page.reports})
        cursor = page.cursor
        if not page.more:
            break
    assert pages == 2 and set(seen) == set(uuids) and seen[uuids[0]] == "delivered"
    first, second = [dict(httpx.QueryParams(r.query)) for r in fake.requests[1:]]
    assert (first["message_direction"], first["limit"], first["offset"], second["offset"]) == (
        "outbound", "20", "0", "20")
    since = datetime.strptime(first["message_time__gt"], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - timedelta(hours=24) - since) < timedelta(minutes=1)
    assert second["message_time__gt"] == first["message_time__gt"]


async def test_poll_inbound_resumes_after_the_newest_message_seen(fake: FakePlivo, provider: PlivoProvider) -> None:
    await send(provider, 1)
    first = fake.receive("14155550101", "14155550100", "STOP")

    page = await provider.poll_inbound(None)

    assert [(r.provider_message_id, r.sender, r.recipient, r.text) for r in page.reports] == [
        (first, "+14155550101", "+14155550100", "STOP")]
    assert not page.more and page.reports[0].at is not None
    second = fake.receive("14155550102", "14155550100", "HELP")
    again = await provider.poll_inbound(page.cursor)
    assert [r.provider_message_id for r in again.reports] == [second]
    query = dict(httpx.QueryParams(fake.requests[-1].query))
    assert query["message_direction"] == "inbound"
    assert query["message_time__gt"] == json.loads(page.cursor or "")["since"]


async def test_polling_with_bad_credentials_is_a_configuration_error(fake: FakePlivo) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        wrong = PlivoProvider({**CONFIG, "auth_token": "W" * 40}, client=client, base_url=fake.base_url)
        with pytest.raises(Exception) as raised:
            await wrong.poll_inbound(None)
    assert getattr(raised.value, "kind", None) == ErrorKind.CONFIGURATION
