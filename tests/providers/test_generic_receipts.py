"""Generic HTTP receipts and replies: callbacks verified by the webhook token in the URL, then read
by the field mapping (form or query fields, JSON objects, JSON lists); $$StatusCallback carries the
token out with each message."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import httpx
import pytest

from smsconsole.providers.base import CallbackRejected, CallbackRequest, OutboundMessage
from smsconsole.providers.generic.adapter import GenericHttpProvider
from tests.fakes.generic import FakeGateway
from tests.fakes.server import Switchboard

TOKEN = "t0ken-abcdefghijklmnop"
BASE = {"url": "https://gw.example.com/send", "params": "to=$$To\ntext=$$Body", "webhook_token": TOKEN}
HOOK = f"https://console.example.com/callbacks/gw/status?token={TOKEN}"
JSON = {"content-type": "application/json"}
FORM = {"content-type": "application/x-www-form-urlencoded"}


def provider(**settings: str) -> GenericHttpProvider:
    return GenericHttpProvider({**BASE, **settings})


def form(url: str, **fields: str) -> CallbackRequest:
    return CallbackRequest("POST", url, FORM, urlencode(fields).encode())


STATUS_CASES = [
    pytest.param({}, form(HOOK, id="m-1", status="DELIVRD"), [("m-1", "DELIVRD", "delivered", None)], id="form"),
    pytest.param({}, CallbackRequest("GET", f"{HOOK}&id=m-2&status=UNDELIV"), [("m-2", "UNDELIV", "undelivered", None)],
                 id="query"),
    pytest.param({"receipt_id_field": "msgid", "receipt_status_field": "dlr.state", "receipt_error_field": "dlr.err",
                  "receipt_status_values": "D=delivered, F=failed"},
                 CallbackRequest("POST", HOOK, JSON, json.dumps({"msgid": "m-3", "dlr": {"state": "F", "err": "34"}})
                                 .encode()),
                 [("m-3", "F", "failed", "34")], id="json-paths-and-own-values"),
    pytest.param({"receipt_items": "results"},
                 CallbackRequest("POST", HOOK, JSON, json.dumps({"results": [{"id": "a", "status": "sent"},
                                                                             {"id": "b", "status": "weird"}]}).encode()),
                 [("a", "sent", "sent", None), ("b", "weird", None, None)], id="json-list-unknown-status-ignored"),
    pytest.param({}, CallbackRequest("POST", HOOK, JSON, b'[{"id": "x", "status": "failed"}]'),
                 [("x", "failed", "failed", None)], id="json-array-body"),
]


@pytest.mark.parametrize(("settings", "request_", "expected"), STATUS_CASES)
def test_status_callbacks_by_mapping(settings: dict[str, str], request_: CallbackRequest,
                                     expected: list[tuple[object, ...]]) -> None:
    reports = provider(**settings).status_callback(request_)
    assert [(r.provider_message_id, r.provider_status, r.state, r.error_code) for r in reports] == expected


def test_inbound_callback_by_mapping() -> None:
    [reply] = provider(inbound_to_field="to", inbound_id_field="mo_id").inbound_callback(
        form(HOOK, **{"from": "919812345678", "text": "STOP", "to": "ACMEIN", "mo_id": "r-1"}))
    assert (reply.sender, reply.text, reply.recipient, reply.provider_message_id) == (
        "+919812345678", "STOP", "ACMEIN", "r-1")


REJECTED = [
    pytest.param(BASE, form(HOOK.replace(TOKEN, "wrong-token-000000000"), id="m", status="sent"), 403, id="wrong-token"),
    pytest.param(BASE, form(HOOK.split("?")[0], id="m", status="sent"), 401, id="no-token"),
    pytest.param({k: v for k, v in BASE.items() if k != "webhook_token"}, form(HOOK, id="m", status="sent"), 403,
                 id="no-token-configured"),
    pytest.param(BASE, form(HOOK, status="sent"), 400, id="no-id"),
    pytest.param(BASE, CallbackRequest("POST", HOOK, JSON, b"{not json"), 400, id="bad-json"),
    pytest.param(BASE, CallbackRequest("POST", HOOK, JSON, b"[1, 2]"), 400, id="json-without-objects"),
    pytest.param(BASE, CallbackRequest("POST", HOOK, FORM, b""), 400, id="empty"),
]


@pytest.mark.parametrize(("settings", "request_", "status"), REJECTED)
def test_bad_callbacks_get_a_4xx(settings: dict[str, str], request_: CallbackRequest, status: int) -> None:
    with pytest.raises(CallbackRejected) as rejected:
        GenericHttpProvider(settings).status_callback(request_)
    assert rejected.value.status == status


@pytest.mark.parametrize(("field", "value"), [("receipt_status_values", "DELIVRD=arrived"),
                                              ("receipt_id_field", "a b"), ("webhook_token", "short")])
def test_mapping_settings_are_validated(field: str, value: str) -> None:
    problems = GenericHttpProvider.validate_config({**BASE, field: value})
    assert [name for name, _ in problems] == [field]


@pytest.fixture(scope="module")
def gateway(server: tuple[Switchboard, str]) -> FakeGateway:
    switchboard, url = server
    fake = FakeGateway()
    fake.url, switchboard.target = url, fake.app
    return fake


async def test_status_callback_placeholder_carries_the_token(gateway: FakeGateway, client: httpx.AsyncClient) -> None:
    gateway.reset()
    adapter = GenericHttpProvider({**BASE, "url": gateway.url + "/send", "params": "to=$$To\ndlr=$$StatusCallback"},
                                  client=client)
    message = OutboundMessage(ref="1", to="+447400123456", body="hi",
                              status_callback_url="https://console.example.com/callbacks/gw/status")
    [outcome] = await adapter.send([message])
    assert outcome.accepted
    [request] = gateway.requests
    assert dict(request.form)["dlr"] == HOOK
