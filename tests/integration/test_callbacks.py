"""The webhook door: real signed (or tokened) callbacks from each provider through the listener's
Starlette app reach the receipts service and the replies service; forged, malformed and oversized
ones get a 4xx and change no row; a random body or header never gets a 5xx."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import func, select

from smsconsole import clock
from smsconsole.listener.app import create_app
from smsconsole.models import InboundMessage, Message, Provider as ProviderRow, Receipt
from smsconsole.providers.base import CallbackRequest
from smsconsole.runtime import Runtime
from smsconsole.services import providers, settings as settings_service
from tests.providers import test_bulksms, test_generic_receipts, test_plivo_receipts, test_sinch
from tests.providers import test_twilio_receipts, test_vonage_receipts

PUBLIC = "https://console.example.com"


@dataclass(frozen=True)
class Case:
    name: str  # the provider's name, as in the callback URL the request was signed for
    kind: str
    config: dict[str, str]
    status: Callable[[], CallbackRequest]
    status_id: str  # the provider message id the receipt names
    state: str
    inbound: Callable[[], CallbackRequest] | None
    sender: str = ""
    text: str = ""


def _twilio_status() -> CallbackRequest:
    return test_twilio_receipts.signed(test_twilio_receipts.STATUS_URL,
                                       {"MessageSid": "SM1", "MessageStatus": "delivered", "To": "+447400123456"})


def _twilio_inbound() -> CallbackRequest:
    return test_twilio_receipts.signed(test_twilio_receipts.INBOUND_URL, {
        "MessageSid": "SM7", "From": "+447400123456", "To": "+15005550006", "Body": "Hello there", "NumMedia": "0"})


V = test_vonage_receipts


def _vonage_status() -> CallbackRequest:
    return V.as_request(V.signed_params(V.DLR), "POST", V.STATUS_URL)


def _vonage_inbound() -> CallbackRequest:
    return V.as_request(V.signed_params({**V.INBOUND, "text": "Hello there"}), "JSON", V.INBOUND_URL)


P = test_plivo_receipts
S = test_sinch
B = test_bulksms
G = test_generic_receipts


def _sinch_inbound() -> CallbackRequest:
    request = S.signed({"type": "mo_text", "id": "01MO", "from": "447400123456", "to": "447400000001",
                        "body": "Hello there", "received_at": "2026-03-01T10:15:00Z"})
    return CallbackRequest(request.method, request.url.replace("/status", "/inbound"), request.headers, request.body)


def _bulksms_inbound() -> CallbackRequest:
    return B.webhook(B.INBOUND_URL, [{"id": "9001", "type": "RECEIVED", "from": "+447700900001", "to": "ACME",
                                      "body": "Hello there", "encoding": "TEXT",
                                      "receivedAt": "2026-03-01T10:15:00+02:00"}])


CASES = [
    Case("twilio-main", "twilio", test_twilio_receipts.CONFIG, _twilio_status, "SM1", "delivered", _twilio_inbound,
         "+447400123456", "Hello there"),
    Case("vonage-main", "vonage", V.SIGNED, _vonage_status, V.DLR["messageId"], "delivered", _vonage_inbound,
         "+447700900001", "Hello there"),
    Case("plivo-main", "plivo", P.CONFIG, lambda: P.signed(P.DLR), P.DLR["MessageUUID"], "delivered",
         lambda: P.signed({**P.INBOUND, "Text": "Hello there"}, P.INBOUND_URL), "+14155550101", "Hello there"),
    Case("sinch-main", "sinch", S.SIGNED, lambda: S.signed(S.recipient_report("Delivered", 0)),
         "01FC66621XXXXX119Z8PMV1QPQ:447400123456", "delivered", _sinch_inbound, "+447400123456", "Hello there"),
    Case("bulksms", "bulksms", B.CONFIG, lambda: B.webhook(B.STATUS_URL, [B.sent("5001", "DELIVERED")]), "5001",
         "delivered", _bulksms_inbound, "+447700900001", "Hello there"),
    Case("gw", "generic", {**G.BASE, "inbound_id_field": "mo_id"}, lambda: G.form(G.HOOK, id="m-1", status="DELIVRD"), "m-1", "delivered",
         lambda: G.form(G.HOOK.replace("/status", "/inbound"), **{"from": "919812345678", "text": "Hello there",
                                                                        "mo_id": "r-1"}),
         "+919812345678", "Hello there"),
]
IDS = [case.kind for case in CASES]


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with runtime.factory() as session, session.begin():
        await settings_service.update_settings(session, {"public_base_url": PUBLIC}, actor="test")
    app = create_app(runtime.factory, box=runtime.box, engine_state=lambda: "running")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://listener") as http:
        yield http


async def _setup(rt: Runtime, case: Case, message_state: str = "sent") -> int:
    async with rt.factory() as session, session.begin():
        await providers.create_provider(session, rt.box, kind=case.kind, name=case.name, values=case.config,
                                        actor="test")
        provider_id = await session.scalar(select(ProviderRow.id).where(ProviderRow.name == case.name))
        now = clock.now()
        message = Message(kind="test", priority=0, provider_id=provider_id, provider_name=case.name,
                          to_number="+447400123456", body="hi", encoding="GSM-7", segments=1, state=message_state,
                          provider_message_id=case.status_id, attempts=1, created_at=now, updated_at=now, sent_at=now)
        session.add(message)
        await session.flush()
        return message.id


async def _post(http: httpx.AsyncClient, request: CallbackRequest) -> httpx.Response:
    """Send a callback as the provider would: to the path and query it was signed for."""
    parts = urlsplit(request.url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    headers = {k: v for k, v in request.headers.items() if k != "host"}
    return await http.request(request.method, target, headers=headers, content=request.body or None)


async def _snapshot(rt: Runtime) -> tuple[Any, ...]:
    async with rt.factory() as session:
        states = tuple(await session.scalars(select(Message.state).order_by(Message.id)))
        receipts = await session.scalar(select(func.count()).select_from(Receipt))
        inbound = await session.scalar(select(func.count()).select_from(InboundMessage))
    return states, receipts, inbound


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_a_signed_receipt_delivers_its_message_once(runtime: Runtime, client: httpx.AsyncClient,
                                                          case: Case) -> None:
    message_id = await _setup(runtime, case)
    first = await _post(client, case.status())
    assert first.status_code < 300, first.text
    again = await _post(client, case.status())  # providers retry: the repeat changes nothing
    assert again.status_code < 300
    async with runtime.factory() as session:
        message = await session.get(Message, message_id)
        receipts = list(await session.scalars(select(Receipt)))
    assert message is not None and message.state == case.state
    assert [(r.message_id, r.via, r.state) for r in receipts] == [(message_id, "webhook", case.state)]


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_a_signed_reply_is_recorded_once(runtime: Runtime, client: httpx.AsyncClient, case: Case) -> None:
    assert case.inbound is not None
    await _setup(runtime, case)
    for _ in range(2):
        response = await _post(client, case.inbound())
        assert response.status_code < 300, response.text
    async with runtime.factory() as session:
        rows = list(await session.scalars(select(InboundMessage)))
    assert [(r.sender, r.text, r.via, r.provider_name) for r in rows] == [(case.sender, case.text, "webhook",
                                                                            case.name)]


SIGNED_KINDS = ("twilio", "vonage", "plivo", "sinch")  # the others are verified by a token in the URL only


def _forgeries(request: CallbackRequest, signed: bool) -> list[tuple[str, CallbackRequest]]:
    body = request.body
    tampered = body.replace(b"eliver", b"ELIVER") if b"eliver" in body else body + b" "
    url = request.url
    unsigned = body
    if request.content_type == "application/x-www-form-urlencoded":  # Vonage signs inside the body
        unsigned = urlencode([(k, v) for k, v in parse_qsl(body.decode()) if k not in ("sig", "token")]).encode()
    return [
        *([("tampered-body", CallbackRequest(request.method, url, request.headers, tampered))] if signed else []),
        ("no-credentials", CallbackRequest(request.method, url.split("?")[0], {
            k: v for k, v in request.headers.items() if k == "content-type"}, unsigned)),
        ("garbage-body", CallbackRequest("POST", url, request.headers, b"\xff\xfe{not a callback")),
    ]


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_forged_and_malformed_receipts_get_a_4xx_and_change_nothing(
        runtime: Runtime, client: httpx.AsyncClient, case: Case) -> None:
    await _setup(runtime, case)
    before = await _snapshot(runtime)
    for label, forged in _forgeries(case.status(), case.kind in SIGNED_KINDS):
        response = await _post(client, forged)
        assert 400 <= response.status_code < 500, (label, response.status_code, response.text)
        assert response.json()["error"] in ("rejected", "too_large")
    assert await _snapshot(runtime) == before


async def test_unknown_provider_bad_kind_and_oversized_bodies(runtime: Runtime, client: httpx.AsyncClient) -> None:
    case = CASES[0]
    await _setup(runtime, case)
    before = await _snapshot(runtime)
    assert (await client.post("/callbacks/nobody/status", content=b"x")).status_code == 404
    assert (await client.post(f"/callbacks/{case.name}/elsewhere", content=b"x")).status_code == 404
    big = await client.post(f"/callbacks/{case.name}/status", content=b"a" * (256 * 1024 + 1),
                            headers={"content-type": "application/x-www-form-urlencoded"})
    assert big.status_code == 413
    assert (await client.put(f"/callbacks/{case.name}/status")).status_code == 405
    assert await _snapshot(runtime) == before
    health = await client.get("/healthz")
    assert health.status_code == 200 and health.json()["database"] == "ok"


async def test_an_early_receipt_is_kept_and_applied_when_its_message_appears(
        runtime: Runtime, client: httpx.AsyncClient) -> None:
    from smsconsole.services.receipts import apply_pending_receipts

    case = CASES[0]
    async with runtime.factory() as session, session.begin():
        await providers.create_provider(session, runtime.box, kind=case.kind, name=case.name, values=case.config,
                                        actor="test")
    assert (await _post(client, case.status())).status_code == 200
    async with runtime.factory() as session:
        [pending] = list(await session.scalars(select(Receipt)))
    assert pending.applied_at is None and pending.message_id is None
    async with runtime.factory() as session, session.begin():  # the send is recorded after its receipt
        provider_id = await session.scalar(select(ProviderRow.id))
        now = clock.now()
        session.add(Message(kind="test", priority=0, provider_id=provider_id, provider_name=case.name,
                            to_number="+447400123456", body="hi", encoding="GSM-7", segments=1, state="sent",
                            provider_message_id="SM1", attempts=1, created_at=now, updated_at=now, sent_at=now))
    async with runtime.factory() as session, session.begin():
        assert await apply_pending_receipts(session) == 1
    async with runtime.factory() as session:
        assert await session.scalar(select(Message.state)) == "delivered"


_HEADER_NAMES = st.sampled_from(["content-type", "x-twilio-signature", "x-plivo-signature-v3",
                                 "x-plivo-signature-v3-nonce", "x-sinch-webhook-signature",
                                 "x-sinch-webhook-signature-nonce", "x-sinch-webhook-signature-timestamp",
                                 "content-length-ish", "x-anything"])
_HEADER_VALUES = st.one_of(st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/xml", ""]),
                           st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40))
_BODIES = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(str.encode),
    st.dictionaries(st.text(max_size=12), st.one_of(st.text(max_size=20), st.integers(), st.none()),
                    max_size=6).map(lambda d: json.dumps(d).encode()),
    st.lists(st.dictionaries(st.sampled_from(["id", "type", "status", "from", "body", "messageId", "sig",
                                              "timestamp"]), st.text(max_size=12), max_size=5), max_size=3)
    .map(lambda d: json.dumps(d).encode()),
)
_QUERIES = st.sampled_from(["", "?token=", f"?token={test_bulksms.WEBHOOK_TOKEN}", f"?token={G.TOKEN}",
                            "?sig=abc&timestamp=1", "?MessageSid=SM1&MessageStatus=delivered"])


@pytest.mark.parametrize("case", CASES, ids=IDS)
@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(kind=st.sampled_from(["status", "inbound"]), method=st.sampled_from(["GET", "POST"]),
       headers=st.dictionaries(_HEADER_NAMES, _HEADER_VALUES, max_size=4), body=_BODIES, query=_QUERIES)
async def test_random_callbacks_never_get_a_5xx_and_a_4xx_changes_no_row(
        runtime: Runtime, client: httpx.AsyncClient, case: Case, kind: str, method: str, headers: dict[str, str],
        body: bytes, query: str) -> None:
    async with runtime.factory() as session:
        known = await session.scalar(select(ProviderRow.id).where(ProviderRow.name == case.name))
    if known is None:
        await _setup(runtime, case)
    before = await _snapshot(runtime)
    response = await client.request(method, f"/callbacks/{case.name}/{kind}{query}", headers=headers,
                                    content=body if method == "POST" else None)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert await _snapshot(runtime) == before
    if case.kind in SIGNED_KINDS:  # signed: nothing random gets through
        assert response.status_code >= 400
