"""Generic HTTP presets: each one, with the operator's part filled in, is a valid Generic config
whose request for a sample message is the documented request of that gateway (providers.md)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from smsconsole.providers.base import OutboundMessage
from smsconsole.providers.generic.adapter import GenericHttpProvider
from smsconsole.providers.generic.presets import PRESETS, preset
from smsconsole.providers.generic.preview import preview_curl
from smsconsole.providers.generic.request import compile_config, render_request

MESSAGE = OutboundMessage(ref="42", to="+919812345678", body="Your OTP is 1234",
                          options={"template_id": "1107161234567890123"})
OPERATOR = {"username": "user", "password": "pass", "api_key": "k3y-s3cret", "sender": "ACMEIN"}


def filled(key: str) -> dict[str, str]:
    values = {**preset(key).values, **OPERATOR}
    return {name: value.replace("YOUR_ACCOUNT_SID", "acme1").replace("YOUR_AUTH_ID", "MAXXXXXXXXXXXXXXXXXX")
            .replace("YOUR_FEED_ID", "3456").replace("YOUR_USERNAME", "acme")
            .replace("YOUR_DLT_ENTITY_ID", "1101456789012345678") for name, value in values.items()}


def rendered(key: str):  # type: ignore[no-untyped-def]
    spec, problems = compile_config(filled(key))
    assert spec is not None, problems
    return spec, render_request(spec, [MESSAGE])


@pytest.mark.parametrize("key", [p.key for p in PRESETS])
def test_every_preset_is_a_valid_generic_config_and_names_what_to_fill(key: str) -> None:
    chosen = preset(key)
    assert not GenericHttpProvider.validate_config(filled(key))
    assert chosen.needs and chosen.name and chosen.description
    assert set(chosen.values) <= {f.name for f in GenericHttpProvider.config_fields}


def test_bulksms_is_a_json_submission_with_basic_auth() -> None:
    spec, request = rendered("bulksms")
    assert (request.method, request.url) == ("POST", "https://api.bulksms.com/v1/messages?auto-unicode=true")
    assert json.loads(request.body or "") == {"to": "+919812345678", "body": "Your OTP is 1234", "from": "ACMEIN",
                                              "userSuppliedId": "42"}
    assert (spec.username, spec.password) == ("user", "pass")
    assert spec.message_id is not None and spec.message_id.extract('[{"id": "1234"}]', 1) == ["1234"]


def test_exotel_is_a_form_post_with_dlt_and_our_ref() -> None:
    _, request = rendered("exotel")
    assert request.url == "https://api.exotel.com/v1/Accounts/acme1/Sms/send.json"
    assert parse_qs(request.body or "") == {"From": ["ACMEIN"], "To": ["+919812345678"], "Body": ["Your OTP is 1234"],
                                            "DltTemplateId": ["1107161234567890123"], "CustomField": ["42"]}


def test_msg91_batches_numbers_into_one_sms_array_with_the_authkey_header() -> None:
    spec, _ = rendered("msg91")
    second = OutboundMessage(ref="43", to="+919812345679", body="Your OTP is 1234",
                             options={"template_id": "1107161234567890123"})
    request = render_request(spec, [MESSAGE, second])
    assert ("authkey", "k3y-s3cret") in request.headers
    assert json.loads(request.body or "") == {
        "sender": "ACMEIN", "route": "4", "country": "0", "DLT_TE_ID": "1107161234567890123",
        "sms": [{"message": "Your OTP is 1234", "to": ["919812345678"]},
                {"message": "Your OTP is 1234", "to": ["919812345679"]}]}
    assert spec.max_batch == 100


def test_netcore_is_a_get_with_feed_credentials_and_dlt_ids() -> None:
    _, request = rendered("netcore")
    parts = urlsplit(request.url)
    assert (request.method, parts.netloc, parts.path) == ("GET", "bulkpush.mytoday.com", "/BulkSms/SingleMsgApi")
    assert parse_qs(parts.query) == {
        "feedid": ["3456"], "username": ["acme"], "password": ["k3y-s3cret"], "To": ["919812345678"],
        "Text": ["Your OTP is 1234"], "templateid": ["1107161234567890123"], "entityid": ["1101456789012345678"]}


def test_plivo_is_json_with_src_dst_and_202() -> None:
    spec, request = rendered("plivo")
    assert request.url == "https://api.plivo.com/v1/Account/MAXXXXXXXXXXXXXXXXXX/Message/"
    assert json.loads(request.body or "") == {"src": "ACMEIN", "dst": "919812345678", "text": "Your OTP is 1234"}
    assert spec.success_status.text == "202"


@pytest.mark.parametrize(("key", "host"), [("textlocal-uk", "api.txtlocal.com"), ("textlocal-in", "api.textlocal.in")])
def test_textlocal_is_a_form_post_with_the_apikey(key: str, host: str) -> None:
    _, request = rendered(key)
    assert request.url == f"https://{host}/send/"
    assert parse_qs(request.body or "") == {"apikey": ["k3y-s3cret"], "numbers": ["919812345678"],
                                            "message": ["Your OTP is 1234"], "sender": ["ACMEIN"], "custom": ["42"]}


@pytest.mark.parametrize("key", [p.key for p in PRESETS])
def test_the_api_key_never_shows_in_a_preview(key: str) -> None:
    preview = preview_curl(filled(key), MESSAGE)
    assert "k3y-s3cret" not in preview and "pass" not in preview.replace("password", "")
