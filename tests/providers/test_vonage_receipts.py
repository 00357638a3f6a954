"""Vonage receipts and replies: delivery receipts and inbound messages by GET, form POST and JSON
POST in → verified (`sig` by every method, or the URL token) and parsed reports out, or a 4xx;
the signature vectors; polling the Reports API of a loopback fake."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from smsconsole.providers.base import CallbackRejected, CallbackRequest, ErrorKind, OutboundMessage
from smsconsole.providers.vonage import (
    ERROR_RULES,
    SIGNATURE_METHODS,
    STATUS_MAP,
    VonageProvider,
    compute_signature,
    signature_base,
)
from tests.fakes.server import Switchboard
from tests.fakes.vonage import API_KEY, API_SECRET, SIGNATURE_SECRET, FakeVonage, spec_problems

CONFIG = {"api_key": API_KEY, "api_secret": API_SECRET, "sender": "AcmeInc"}
SIGNED = {**CONFIG, "signature_secret": SIGNATURE_SECRET, "signature_method": "sha256hmac"}
TOKEN = "t0k3n-0123456789abcdef"
STATUS_URL = "https://console.example.com/callbacks/vonage-main/status"
INBOUND_URL = "https://console.example.com/callbacks/vonage-main/inbound"
FORM = "application/x-www-form-urlencoded"

DLR = {"msisdn": "447700900001", "to": "AcmeInc", "network-code": "23410", "messageId": "0B0000001234567B",
       "price": "0.03330000", "status": "delivered", "scts": "2611231015", "err-code": "0", "api-key": API_KEY,
       "client-ref": "m-1", "message-timestamp": "2026-11-23 10:15:02"}
INBOUND = {"api-key": API_KEY, "msisdn": "447700900001", "to": "447700900000", "messageId": "0A0000000123ABCD1",
           "text": "Stop please", "type": "text", "keyword": "STOP", "message-timestamp": "2026-11-23 10:15:02"}


def signed_params(params: dict[str, str], secret: str = SIGNATURE_SECRET, method: str = "sha256hmac") -> dict[str, str]:
    stamped = {**params, "timestamp": "1795428902", "nonce": "ec11dd3e-1e7f-4db5-9467-82b02cd223b9"}
    return {**stamped, "sig": compute_signature(stamped, secret, method)}


def as_request(params: dict[str, Any], shape: str, url: str = STATUS_URL) -> CallbackRequest:
    """A webhook the way Vonage sends it: query string (GET), form body or JSON body."""
    if shape == "GET":
        return CallbackRequest("GET", f"{url}{'&' if '?' in url else '?'}{urlencode(params)}")
    if shape == "POST":
        return CallbackRequest("POST", url, {"content-type": FORM}, urlencode(params).encode())
    return CallbackRequest("POST", url, {"content-type": "application/json"}, json.dumps(params).encode())


SHAPES = ["GET", "POST", "JSON"]


# --- signature vectors --------------------------------------------------------------------------


def test_the_signed_string_sorts_params_and_masks_ampersands_and_equals() -> None:
    params = {"text": "a&b=c", "api-key": API_KEY, "timestamp": "1", "sig": "ignored"}
    assert signature_base(params) == "&api-key=abcd1234&text=a_b_c&timestamp=1"


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("md5hash", lambda data: hashlib.md5((data + "secret").encode()).hexdigest()),
        ("md5hmac", lambda data: hmac.new(b"secret", data.encode(), hashlib.md5).hexdigest()),
        ("sha1hmac", lambda data: hmac.new(b"secret", data.encode(), hashlib.sha1).hexdigest()),
        ("sha256hmac", lambda data: hmac.new(b"secret", data.encode(), hashlib.sha256).hexdigest()),
        ("sha512hmac", lambda data: hmac.new(b"secret", data.encode(), hashlib.sha512).hexdigest()),
    ],
)
def test_each_signature_method(method: str, expected: Any) -> None:
    params = {"msisdn": "447700900001", "text": "R&D = fun", "timestamp": "1795428902"}
    data = "&msisdn=447700900001&text=R_D _ fun&timestamp=1795428902"
    assert compute_signature(params, "secret", method) == expected(data)
    assert set(SIGNATURE_METHODS) == {"md5hash", "md5hmac", "sha1hmac", "sha256hmac", "sha512hmac"}


# --- delivery receipts -----------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("method", SIGNATURE_METHODS)
def test_a_signed_delivery_receipt_in_every_shape_and_method(shape: str, method: str) -> None:
    provider = VonageProvider({**SIGNED, "signature_method": method})

    [report] = provider.status_callback(as_request(signed_params(DLR, method=method), shape))

    assert (report.provider_message_id, report.provider_status, report.state) == ("0B0000001234567B", "delivered",
                                                                                   "delivered")
    assert (report.recipient, report.ref, report.error_code) == ("+447700900001", "m-1", None)
    assert report.at == datetime(2026, 11, 23, 10, 15, tzinfo=UTC)


def test_an_upper_case_sig_is_accepted() -> None:
    params = signed_params(DLR)
    [report] = VonageProvider(SIGNED).status_callback(as_request({**params, "sig": params["sig"].upper()}, "POST"))
    assert report.state == "delivered"


STATUS_CASES = [
    pytest.param({"status": "accepted"}, ("sent", None, None), id="accepted"),
    pytest.param({"status": "buffered"}, ("sent", None, None), id="buffered"),
    pytest.param({"status": "expired", "err-code": "2"}, ("undelivered", "2", ErrorKind.TRANSIENT), id="expired"),
    pytest.param({"status": "failed", "err-code": "4"}, ("failed", "4", ErrorKind.PERMANENT), id="barred-by-user"),
    pytest.param({"status": "rejected", "err-code": "6"}, ("failed", "6", ErrorKind.PERMANENT), id="anti-spam"),
    pytest.param({"status": "failed", "err-code": "8"}, ("failed", "8", ErrorKind.TRANSIENT), id="network-error"),
    pytest.param({"status": "failed", "err-code": "77"}, ("failed", "77", ErrorKind.PERMANENT), id="unknown-code"),
    pytest.param({"status": "unknown", "err-code": "1"}, (None, "1", None), id="unknown-status-ignored"),
    pytest.param({"status": "mystery"}, (None, None, None), id="unheard-of-status-ignored"),
]


@pytest.mark.parametrize(("changes", "expected"), STATUS_CASES)
def test_delivery_receipt_states_and_error_codes(changes: dict[str, str], expected: tuple[object, ...]) -> None:
    [report] = VonageProvider(SIGNED).status_callback(as_request(signed_params({**DLR, **changes}), "JSON"))
    assert (report.state, report.error_code, report.error_kind) == expected
    if report.error_kind:
        assert report.reason


def test_barred_by_user_reads_as_an_opt_out() -> None:
    assert "opted out" in ERROR_RULES.find("4", "report").reason
    assert set(STATUS_MAP) >= {"delivered", "expired", "failed", "rejected", "accepted", "buffered", "unknown"}


def test_without_a_signature_secret_the_url_token_verifies() -> None:
    provider = VonageProvider({**CONFIG, "webhook_token": TOKEN})
    [report] = provider.status_callback(as_request(DLR, "GET", f"{STATUS_URL}?token={TOKEN}"))
    assert report.state == "delivered"
    assert provider.callback_url(STATUS_URL) == f"{STATUS_URL}?token={TOKEN}"


def test_the_url_token_is_not_part_of_the_signed_params() -> None:
    provider = VonageProvider({**SIGNED, "webhook_token": TOKEN})
    request = CallbackRequest("GET", f"{STATUS_URL}?token={TOKEN}&{urlencode(signed_params(DLR))}")
    [report] = provider.status_callback(request)
    assert report.state == "delivered"


REJECTED = [
    pytest.param(SIGNED, as_request(DLR, "POST"), 401, id="unsigned-while-signing-is-on"),
    pytest.param(SIGNED, as_request({k: v for k, v in signed_params(DLR).items() if k != "timestamp"}, "POST"),
                 401, id="no-timestamp"),
    pytest.param(SIGNED, as_request(signed_params(DLR, secret="another-secret"), "POST"), 403, id="forged-sig"),
    pytest.param(SIGNED, as_request({**signed_params(DLR), "status": "failed"}, "POST"), 403,
                 id="tampered-param"),
    pytest.param({**SIGNED, "signature_method": "md5hash"}, as_request(signed_params(DLR), "POST"), 403,
                 id="other-method"),
    pytest.param({**CONFIG, "webhook_token": TOKEN}, as_request(DLR, "GET", f"{STATUS_URL}?token=wrong-{TOKEN}"),
                 403, id="wrong-token"),
    pytest.param({**CONFIG, "webhook_token": TOKEN}, as_request(DLR, "GET"), 401, id="no-token"),
    pytest.param(CONFIG, as_request(DLR, "GET"), 403, id="neither-secret-nor-token-configured"),
    pytest.param(SIGNED, as_request(signed_params({k: v for k, v in DLR.items() if k != "messageId"}), "POST"),
                 400, id="no-messageId"),
    pytest.param(SIGNED, CallbackRequest("POST", STATUS_URL, {"content-type": "application/json"}, b"{not json"),
                 400, id="malformed-json"),
    pytest.param(SIGNED, CallbackRequest("POST", STATUS_URL, {"content-type": "application/json"}, b"[1, 2]"),
                 400, id="json-not-an-object"),
    pytest.param(SIGNED, CallbackRequest("POST", STATUS_URL, {"content-type": FORM}, b"\xff\xfe"), 400,
                 id="not-utf8"),
    pytest.param(SIGNED, CallbackRequest("POST", STATUS_URL, {"content-type": FORM}, b"a" * (256 * 1024 + 1)),
                 413, id="too-large"),
]


@pytest.mark.parametrize(("config", "request_", "status"), REJECTED)
def test_bad_callbacks_are_rejected_with_a_4xx(config: dict[str, str], request_: CallbackRequest, status: int) -> None:
    with pytest.raises(CallbackRejected) as rejected:
        VonageProvider(config).status_callback(request_)
    assert rejected.value.status == status


# --- inbound messages --------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_a_signed_inbound_message_in_every_shape(shape: str) -> None:
    [inbound] = VonageProvider(SIGNED).inbound_callback(as_request(signed_params(INBOUND), shape, INBOUND_URL))

    assert (inbound.provider_message_id, inbound.sender, inbound.recipient, inbound.text, inbound.keyword) == (
        "0A0000000123ABCD1", "+447700900001", "+447700900000", "Stop please", "STOP")
    assert inbound.at == datetime(2026, 11, 23, 10, 15, 2, tzinfo=UTC)
    assert (inbound.part, inbound.parts, inbound.concat_ref) == (None, None, None)


def test_a_part_of_a_long_inbound_message_carries_its_concatenation_fields() -> None:
    params = {**INBOUND, "text": "second part", "concat": "true", "concat-ref": "108", "concat-total": "3",
              "concat-part": "2"}
    [inbound] = VonageProvider(SIGNED).inbound_callback(as_request(signed_params(params), "POST", INBOUND_URL))
    assert (inbound.part, inbound.parts, inbound.concat_ref, inbound.text) == (2, 3, "108", "second part")


def test_unicode_inbound_text_survives_every_shape() -> None:
    params = signed_params({**INBOUND, "text": "नमस्ते & ok=yes", "type": "unicode", "keyword": "नमस्ते"})
    for shape in SHAPES:
        [inbound] = VonageProvider(SIGNED).inbound_callback(as_request(params, shape, INBOUND_URL))
        assert inbound.text == "नमस्ते & ok=yes"


@pytest.mark.parametrize(
    "params",
    [{k: v for k, v in INBOUND.items() if k != "msisdn"}, {k: v for k, v in INBOUND.items() if k != "text"}],
    ids=["no-msisdn", "no-text"],
)
def test_a_malformed_inbound_message_is_rejected(params: dict[str, str]) -> None:
    with pytest.raises(CallbackRejected) as rejected:
        VonageProvider(SIGNED).inbound_callback(as_request(signed_params(params), "POST", INBOUND_URL))
    assert rejected.value.status == 400


def test_a_forged_inbound_message_is_rejected() -> None:
    with pytest.raises(CallbackRejected) as rejected:
        VonageProvider(SIGNED).inbound_callback(as_request(signed_params(INBOUND, secret="x" * 20), "JSON"))
    assert rejected.value.status == 403


# --- polling the Reports API ------------------------------------------------------------------


@pytest.fixture
def fake(server: tuple[Switchboard, str]) -> Iterator[FakeVonage]:
    switchboard, url = server
    vonage = FakeVonage()
    vonage.base_url = url
    switchboard.target = vonage.app
    yield vonage
    vonage.close()
    problems = {request.path: spec_problems(request) for request in vonage.requests}
    assert not any(problems.values()), problems


@pytest.fixture
async def provider(fake: FakeVonage) -> AsyncIterator[VonageProvider]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield VonageProvider(CONFIG, client=client, base_url=fake.base_url)


async def send(provider: VonageProvider, *bodies: str) -> list[tuple[str, ...]]:
    outcomes = await provider.send([OutboundMessage(ref=f"m-{i}", to=f"+4477009000{i:02d}", body=body)
                                    for i, body in enumerate(bodies)])
    return [o.part_ids for o in outcomes]


async def test_fetch_statuses_reads_records_by_id_with_basic_auth(fake: FakeVonage, provider: VonageProvider) -> None:
    [(first,), long_parts] = await send(provider, "hi", "x" * 200)
    fake.set_status(first, "delivered")
    fake.set_status(long_parts[1], "failed", error_code="6")

    reports = await provider.fetch_statuses([first, *long_parts, "0BFFFFFFFFFFFFFF"])

    assert [(r.provider_message_id, r.state, r.error_code, r.error_kind, r.ref) for r in reports] == [
        (first, "delivered", None, None, "m-0"),
        (long_parts[0], "sent", None, None, "m-1"),
        (long_parts[1], "failed", "6", ErrorKind.PERMANENT, "m-1"),
    ]
    lookup = fake.requests[-1]
    assert (lookup.method, lookup.path) == ("GET", "/v2/reports/records")
    assert lookup.basic_auth == (API_KEY, API_SECRET)
    assert dict(httpx.QueryParams(lookup.query)) == {
        "account_id": API_KEY, "product": "SMS", "direction": "outbound",
        "id": ",".join([first, *long_parts, "0BFFFFFFFFFFFFFF"])}


async def test_fetch_statuses_asks_for_twenty_ids_at_a_time(fake: FakeVonage, provider: VonageProvider) -> None:
    ids = [f"0B{i:014X}" for i in range(45)]
    assert await provider.fetch_statuses(ids) == []
    lookups = [dict(httpx.QueryParams(r.query))["id"].count(",") + 1 for r in fake.requests]
    assert lookups == [20, 20, 5]


async def test_poll_statuses_walks_truncated_pages_and_starts_over(fake: FakeVonage, provider: VonageProvider) -> None:
    fake.page_size = 2
    parts = [p for ids in await send(provider, "a", "b", "c") for p in ids]
    fake.receive("447700900099", "447700900000", "an inbound message is not a status")
    fake.set_status(parts[2], "delivered")

    seen: dict[str, str | None] = {}
    cursor, pages = None, 0
    while True:
        page = await provider.poll_statuses(cursor)
        pages += 1
        seen.update({r.provider_message_id or "": r.state for r in page.reports})
        cursor = page.cursor
        if not page.more:
            break
    assert pages == 2 and seen == {parts[0]: "sent", parts[1]: "sent", parts[2]: "delivered"}
    first, second = [dict(httpx.QueryParams(r.query)) for r in fake.requests[3:]]
    window = datetime.fromisoformat(first["date_end"]) - datetime.fromisoformat(first["date_start"])
    assert window == timedelta(hours=24) and first["direction"] == "outbound"
    assert (second["cursor"], second["iv"]) == ("2", "iv-2")
    assert json.loads(cursor or "") == {}


async def test_poll_inbound_reads_the_window_since_the_cursor(fake: FakeVonage, provider: VonageProvider) -> None:
    await send(provider, "outbound is not inbound")
    since = datetime.now(UTC) - timedelta(minutes=1)
    message_id = fake.receive("447700900001", "447700900000", "STOP")

    page = await provider.poll_inbound(json.dumps({"since": since.strftime("%Y-%m-%dT%H:%M:%SZ")}))

    assert [(r.provider_message_id, r.sender, r.recipient, r.text) for r in page.reports] == [
        (message_id, "+447700900001", "+447700900000", "STOP")]
    assert page.reports[0].at is not None and not page.more
    query = dict(httpx.QueryParams(fake.requests[-1].query))
    assert (query["direction"], query["include_message"]) == ("inbound", "true")
    assert json.loads(page.cursor or "")["since"] == query["date_end"]
    again = await provider.poll_inbound(page.cursor)
    assert again.reports == ()


async def test_poll_inbound_catches_up_a_day_at_a_time(fake: FakeVonage, provider: VonageProvider) -> None:
    old = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    page = await provider.poll_inbound(json.dumps({"since": old}))
    assert page.more
    query = dict(httpx.QueryParams(fake.requests[-1].query))
    assert datetime.fromisoformat(query["date_end"]) - datetime.fromisoformat(query["date_start"]) == timedelta(hours=24)


async def test_polling_with_bad_credentials_is_a_configuration_error(fake: FakeVonage) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        wrong = VonageProvider({**CONFIG, "api_secret": "Wrong0123456789"}, client=client, base_url=fake.base_url)
        with pytest.raises(Exception) as raised:
            await wrong.poll_statuses(None)
    assert getattr(raised.value, "kind", None) == ErrorKind.CONFIGURATION
    assert "API key and API secret" in str(raised.value)
