"""curl import, read as a specification: a provider's sample curl command in → Generic HTTP
settings out; unreadable commands → CurlParseError with a reason; and the preview of a config,
parsed back, renders the same request."""

from __future__ import annotations

import re

import pytest

from smsconsole.providers.generic.adapter import GenericHttpProvider
from smsconsole.providers.generic.curl import CurlParseError, import_curl, parse_curl
from smsconsole.providers.generic.preview import preview_curl
from smsconsole.providers.generic.request import compile_config, render_request
from smsconsole.providers.generic.templating import SAMPLE_MESSAGE

SAMPLES: list[tuple[str, str, dict[str, str]]] = [
    (
        "form POST with -d pairs and -u",
        "curl -X POST https://api.txtlocal.com/send/ -u 'acme:hunter2' "
        "-d 'numbers=447700900000' -d 'sender=ACME' -d 'message=Hello+there%21'",
        {"method": "POST", "url": "https://api.txtlocal.com/send/", "body_type": "form", "username": "acme",
         "password": "hunter2", "params": "numbers=447700900000\nsender=ACME\nmessage=Hello there!"},
    ),
    (
        "JSON POST over several lines with --header and --data-raw",
        """curl --request POST \\
  --url https://api.example.com/sms/2/text/advanced \\
  --header 'Authorization: App 0123abcd' \\
  --header 'Content-Type: application/json' \\
  --header 'Accept: application/json' \\
  --data-raw '{"messages":[{"destinations":[{"to":"41793026727"}],"from":"ACME","text":"Hello"}]}'""",
        {"method": "POST", "url": "https://api.example.com/sms/2/text/advanced", "body_type": "json",
         "headers": "Authorization: App 0123abcd\nAccept: application/json",
         "raw_body": '{"messages":[{"destinations":[{"to":"41793026727"}],"from":"ACME","text":"Hello"}]}'},
    ),
    (
        "GET with a query string, noise flags ignored",
        'curl -sS --compressed "https://gw.example.com/http/send?user=acme&to=447700900000&text=Hello%20World"',
        {"method": "GET", "url": "https://gw.example.com/http/send", "body_type": "form",
         "params": "user=acme\nto=447700900000\ntext=Hello World"},
    ),
    (
        "-G moves data into the query string; --data-urlencode encodes its value",
        'curl -G https://gw.example.com/send -d to=447700900000 --data-urlencode "text=Fish & chips = 100%"',
        {"method": "GET", "url": "https://gw.example.com/send", "body_type": "form",
         "params": "to=447700900000\ntext=Fish & chips = 100%"},
    ),
    (
        "Authorization: Basic header becomes username and password",
        "curl https://gw.example.com/send -H 'Authorization: Basic YWNtZTpodW50ZXIy' -d to=1",
        {"method": "POST", "url": "https://gw.example.com/send", "body_type": "form", "username": "acme",
         "password": "hunter2", "params": "to=1"},
    ),
    (
        "--json sets the JSON body and its headers",
        """curl https://gw.example.com/v1/sms --json '{"to": "447700900000", "body": "Hi"}'""",
        {"method": "POST", "url": "https://gw.example.com/v1/sms", "body_type": "json",
         "headers": "Accept: application/json", "raw_body": '{"to": "447700900000", "body": "Hi"}'},
    ),
    (
        "JSON data without a Content-Type is still JSON",
        """curl https://gw.example.com/v1/sms -d '{"to": "447700900000"}'""",
        {"method": "POST", "url": "https://gw.example.com/v1/sms", "body_type": "json",
         "raw_body": '{"to": "447700900000"}'},
    ),
    (
        "XML body keeps its Content-Type and becomes a text body",
        """curl -X POST https://gw.example.com/xml -H "Content-Type: text/xml" --data-binary '<sms><to>1</to></sms>'""",
        {"method": "POST", "url": "https://gw.example.com/xml", "body_type": "text",
         "headers": "Content-Type: text/xml", "raw_body": "<sms><to>1</to></sms>"},
    ),
    (
        "combined and attached short options",
        "curl -sSL -XPOST -H'X-Api-Key: k1' -d'to=1&text=hi' https://gw.example.com/sms",
        {"method": "POST", "url": "https://gw.example.com/sms", "body_type": "form",
         "headers": "X-Api-Key: k1", "params": "to=1\ntext=hi"},
    ),
    (
        "a form POST keeps the URL's query string in the URL",
        "curl 'https://gw.example.com/send?key=abc' -d 'to=1'",
        {"method": "POST", "url": "https://gw.example.com/send?key=abc", "body_type": "form", "params": "to=1"},
    ),
    (
        "a JSON POST moves the URL's query string into params",
        """curl 'https://gw.example.com/send?key=abc' -H 'Content-Type: application/json' -d '{"to":"1"}'""",
        {"method": "POST", "url": "https://gw.example.com/send", "body_type": "json", "params": "key=abc",
         "raw_body": '{"to":"1"}'},
    ),
    (
        "a pasted prompt, CRLF continuations and trailing blanks",
        "$ curl https://gw.example.com/send \\  \r\n  -u acme:pw \\\r\n  -d to=1",
        {"method": "POST", "url": "https://gw.example.com/send", "body_type": "form", "username": "acme",
         "password": "pw", "params": "to=1"},
    ),
    (
        "placeholders already in the sample are kept",
        "curl https://gw.example.com/send -d 'to=$$To&text=$$Body'",
        {"method": "POST", "url": "https://gw.example.com/send", "body_type": "form",
         "params": "to=$$To\ntext=$$Body"},
    ),
]


@pytest.mark.parametrize(("name", "command", "expected"), SAMPLES, ids=[sample[0] for sample in SAMPLES])
def test_sample_command_to_settings(name: str, command: str, expected: dict[str, str]) -> None:
    config = parse_curl(command)

    assert config == expected
    assert GenericHttpProvider.validate_config(config) == []


UNREADABLE: list[tuple[str, str, str]] = [
    ("empty", "   ", "empty"),
    ("not curl", "wget https://gw.example.com/send", "does not start with curl"),
    ("unbalanced quotes", "curl 'https://gw.example.com/send -d to=1", "no closing quotation"),
    ("no URL", "curl -X POST -d to=1", "no URL"),
    ("option without its value", "curl https://gw.example.com/send -H", "-H needs a value"),
    ("not http", "curl ftp://files.example.com/x", "must be http(s)"),
    ("unsupported method", "curl -X DELETE https://gw.example.com/send/1", "DELETE is not supported"),
]


@pytest.mark.parametrize(("name", "command", "reason"), UNREADABLE, ids=[case[0] for case in UNREADABLE])
def test_unreadable_command_says_why(name: str, command: str, reason: str) -> None:
    with pytest.raises(CurlParseError, match=re.escape(reason)) as raised:
        parse_curl(command)
    assert isinstance(raised.value, ValueError)
    assert "\n" not in str(raised.value)


def test_unknown_and_ignored_flags_are_reported() -> None:
    result = import_curl(
        "curl -s --compressed -o /dev/null --retry 3 --frobnicate https://gw.example.com/send -F file=@a.txt -d to=1"
    )

    assert result.ignored == ["-s", "--compressed", "-o", "--retry"]
    assert result.unknown == ["--frobnicate"]
    assert result.warnings == ["-F (multipart form) is not supported; left out"]
    assert result.config["params"] == "to=1"


def test_data_from_a_file_is_reported_not_read() -> None:
    result = import_curl("curl https://gw.example.com/send -d @body.json")

    assert result.warnings == ["-d @body.json reads a file, which cannot be imported; left out"]
    assert "raw_body" not in result.config and "params" not in result.config


def test_likely_recipient_and_text_are_suggested() -> None:
    result = import_curl(
        """curl https://gw.example.com/send -H 'Content-Type: application/json' """
        """-d '{"sender": "ACME", "messages": [{"msisdn": "447700900000", "text": "Hi"}]}'"""
    )

    assert result.suggestions == [
        "raw_body: msisdn looks like the recipient; replace its sample value with $$To",
        "raw_body: text looks like the message text; replace its sample value with $$Body",
    ]


# --- preview → parse round trip ----------------------------------------------------------------

ROUND_TRIP = [
    {"url": "https://gw.example.com/send", "username": "acme",
     "params": "to=$$To\ntext=$$Body\nsender=ACME Ltd\nnote=50% & more"},
    {"method": "GET", "url": "https://gw.example.com/send?account=acme", "params": "to=$$ToNoPlus\ntext=$$Body",
     "headers": "X-Campaign: spring"},
    {"url": "https://gw.example.com/v1/sms", "body_type": "json", "params": "version=2",
     "raw_body": '{\n  "to": "$$To",\n  "text": "$$Body",\n  "tags": ["a b", "c\\"d"]\n}'},
    {"method": "PUT", "url": "https://gw.example.com/sms/$$Ref", "body_type": "text",
     "raw_body": "TO $$To\nBODY 'quoted' $$Body", "headers": "X-Campaign: spring"},
]


@pytest.mark.parametrize("config", ROUND_TRIP, ids=["form", "GET", "json", "text"])
def test_preview_parsed_back_renders_the_same_request(config: dict[str, str]) -> None:
    parsed = parse_curl(preview_curl(config))

    original_spec, _ = compile_config(config)
    parsed_spec, problems = compile_config(parsed)
    assert problems == [] and original_spec is not None and parsed_spec is not None
    assert render_request(parsed_spec, [SAMPLE_MESSAGE]) == render_request(original_spec, [SAMPLE_MESSAGE])
    assert parsed_spec.username == original_spec.username


def test_preview_parsed_back_gives_the_same_settings() -> None:
    config = {"method": "POST", "url": "https://gw.example.com/send", "body_type": "form",
              "headers": "X-Campaign: spring", "params": "to=$$To\ntext=$$Body"}

    assert parse_curl(preview_curl(config)) == config


def test_preview_masks_the_password_so_it_never_round_trips() -> None:
    config = {"url": "https://gw.example.com/send", "username": "acme", "password": "hunter2", "params": "to=$$To"}

    parsed = parse_curl(preview_curl(config))

    assert parsed["username"] == "acme" and parsed["password"] == "••••••"
