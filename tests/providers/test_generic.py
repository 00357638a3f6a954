"""Generic HTTP provider, read as a specification: messages in → the exact request a loopback
gateway receives → outcome; then how answers are read, config validation, the connection check,
the curl preview, and that no secret reaches a log."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

import httpx
import pytest

from smsconsole.providers.base import ErrorKind, OutboundMessage
from smsconsole.providers.generic.adapter import GenericHttpProvider
from smsconsole.providers.generic.preview import preview_curl
from smsconsole.providers.generic.request import GenericRequestError
from smsconsole.providers.generic.templating import SAMPLE_MESSAGE
from tests.fakes.generic import FakeGateway, RecordedRequest, Reply
from tests.fakes.server import Switchboard, unused_port

TO = "+15005550006"
# Quotes, a backslash, a newline, an emoji and the URL-significant & = %.
TRICKY = 'He said "hi" \\ back\nline2 😀 & a=b 100%'
TRICKY_URL = "He%20said%20%22hi%22%20%5C%20back%0Aline2%20%F0%9F%98%80%20%26%20a%3Db%20100%25"
PASSWORD = "s3cret-Pa55word"


def message(body: str = "Hello world", *, to: str = TO, ref: str = "m1", sender: str | None = None,
            **options: str) -> OutboundMessage:
    return OutboundMessage(ref=ref, to=to, body=body, sender=sender, options=options)


@pytest.fixture(scope="module")
def gateway(server: tuple[Switchboard, str]) -> FakeGateway:
    switchboard, url = server
    fake = FakeGateway()
    fake.url, switchboard.target = url, fake.app
    return fake


@pytest.fixture(autouse=True)
def _fresh_gateway(gateway: FakeGateway) -> None:
    gateway.reset()


def provider(gateway: FakeGateway, client: httpx.AsyncClient, config: dict[str, str]) -> GenericHttpProvider:
    """The adapter with `url` (and `check_url`) given relative to the fake gateway."""
    resolved = dict(config)
    for name in ("url", "check_url"):
        if resolved.get(name, "").startswith("/"):
            resolved[name] = gateway.url + resolved[name]
    return GenericHttpProvider(resolved, client=client)


# --- messages in → exact request out -----------------------------------------------------------


@dataclass(frozen=True)
class RequestCase:
    name: str
    config: dict[str, str]
    message: OutboundMessage
    method: str
    path: str
    query: str = ""
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased name → exact value


REQUEST_CASES = [
    RequestCase(
        "GET with query params",
        {"method": "GET", "url": "/send?account=acme", "params": "to=$$To\ntext=$$Body"},
        message(), "GET", "/send", query="account=acme&to=%2B15005550006&text=Hello%20world",
    ),
    RequestCase(
        "POST form",
        {"url": "/send", "params": "from=ACME\nto=$$To\ntext=$$Body"},
        message(), "POST", "/send", body="from=ACME&to=%2B15005550006&text=Hello%20world",
        headers={"content-type": "application/x-www-form-urlencoded"},
    ),
    RequestCase(
        "POST json raw body",
        {"url": "/send", "body_type": "json", "raw_body": '{"to": "$$To", "text": "$$Body", "flash": false}'},
        message(), "POST", "/send", body='{"to": "+15005550006", "text": "Hello world", "flash": false}',
        headers={"content-type": "application/json"},
    ),
    RequestCase(
        "POST text body with $$ToNoPlus and $$From",
        {"url": "/send", "body_type": "text", "raw_body": "TO:$$ToNoPlus\nFROM:$$From\n$$Body"},
        message(sender="ACME"), "POST", "/send", body="TO:15005550006\nFROM:ACME\nHello world",
        headers={"content-type": "text/plain; charset=utf-8"},
    ),
    RequestCase(
        "Basic auth",
        {"url": "/send", "username": "acme", "password": "s3cret", "params": "to=$$To"},
        message(), "POST", "/send", body="to=%2B15005550006",
        headers={"authorization": "Basic YWNtZTpzM2NyZXQ="},
    ),
    RequestCase(
        "custom headers, one replacing the body type's Content-Type",
        {"url": "/send", "body_type": "json", "raw_body": '{"to": "$$To"}',
         "headers": "X-Api-Key: k-123\nX-Ref: $$Ref\nContent-Type: application/vnd.acme+json"},
        message(ref="outbox-42"), "POST", "/send", body='{"to": "+15005550006"}',
        headers={"x-api-key": "k-123", "x-ref": "outbox-42", "content-type": "application/vnd.acme+json"},
    ),
    RequestCase(
        "tricky text percent-encoded in the URL path and query",
        {"method": "GET", "url": "/send/$$To?text=$$Body"},
        message(TRICKY), "GET", "/send/%2B15005550006", query=f"text={TRICKY_URL}",
    ),
    RequestCase(
        "tricky text percent-encoded in a form body",
        {"url": "/send", "params": "text=$$Body"},
        message(TRICKY), "POST", "/send", body=f"text={TRICKY_URL}",
    ),
    RequestCase(
        "tricky text JSON-escaped in a JSON body",
        {"url": "/send", "body_type": "json", "raw_body": '{"text": "$$Body"}'},
        message(TRICKY), "POST", "/send", body='{"text": "He said \\"hi\\" \\\\ back\\nline2 😀 & a=b 100%"}',
    ),
    RequestCase(
        "tricky text verbatim in a text body",
        {"url": "/send", "body_type": "text", "raw_body": "$$Body"},
        message(TRICKY), "POST", "/send", body=TRICKY,
    ),
    RequestCase(
        "a placeholder outside a JSON string becomes a whole JSON string",
        {"url": "/send", "body_type": "json", "raw_body": '{"text": $$Body, "to": "$$To"}'},
        message(TRICKY), "POST", "/send", body=json.dumps({"text": TRICKY, "to": TO}, ensure_ascii=False),
    ),
    RequestCase(
        "custom $$Name keys from the message's options",
        {"url": "/send/$$Campaign", "custom_keys": "Campaign, Priority", "params": "prio=$$Priority\nto=$$To"},
        message(Campaign="spring sale", Priority="high"), "POST", "/send/spring%20sale",
        body="prio=high&to=%2B15005550006",
    ),
    RequestCase(
        "$$TemplateID and $$TemplateVariables from the message's options",
        {"url": "/send", "body_type": "json",
         "raw_body": '{"to":"$$To","template_id":"$$TemplateID","vars":"$$TemplateVariables"}'},
        message(template_id="1207161", template_variables='["Ann", "42"]'), "POST", "/send",
        body='{"to":"+15005550006","template_id":"1207161","vars":"[\\"Ann\\", \\"42\\"]"}',
    ),
]


@pytest.mark.parametrize("case", REQUEST_CASES, ids=lambda case: case.name)
async def test_request_out(case: RequestCase, gateway: FakeGateway, client: httpx.AsyncClient) -> None:
    [outcome] = await provider(gateway, client, case.config).send([case.message])

    assert outcome.accepted, outcome.error
    [request] = gateway.requests
    assert (request.method, request.path, request.query) == (case.method, case.path, case.query)
    assert request.text == case.body
    for name, value in case.headers.items():
        assert request.header(name) == value


@pytest.mark.parametrize("where", ["form", "json", "text", "query"])
async def test_tricky_text_arrives_exactly(where: str, gateway: FakeGateway, client: httpx.AsyncClient) -> None:
    config = {
        "form": {"url": "/send", "params": "text=$$Body"},
        "json": {"url": "/send", "body_type": "json", "raw_body": '{"text": "$$Body"}'},
        "text": {"url": "/send", "body_type": "text", "raw_body": "$$Body"},
        "query": {"method": "GET", "url": "/send", "params": "text=$$Body"},
    }[where]
    await provider(gateway, client, config).send([message(TRICKY)])

    [request] = gateway.requests
    received = {
        "form": lambda r: dict(r.form)["text"],
        "json": lambda r: r.json()["text"],
        "text": lambda r: r.text,
        "query": lambda r: dict(r.query_pairs)["text"],
    }[where](request)
    assert received == TRICKY


@pytest.mark.parametrize("value", ["spring\r\nX-Injected: yes", "spring\nX-Injected: yes", "spring\rX-Injected: yes"])
async def test_header_value_with_a_line_break_is_refused(
    value: str, gateway: FakeGateway, client: httpx.AsyncClient,
) -> None:
    config = {"url": "/send", "headers": "X-Campaign: $$Campaign", "custom_keys": "Campaign", "params": "to=$$To"}
    bad, good = message(ref="bad", Campaign=value), message(ref="good", Campaign="spring")

    outcomes = await provider(gateway, client, config).send([bad, good])

    assert outcomes[0].error is not None and outcomes[0].error.kind is ErrorKind.PERMANENT
    assert "line break" in str(outcomes[0].error)
    assert outcomes[1].accepted
    [request] = gateway.requests  # only the good message left
    assert "x-injected" not in request.header_names
    assert request.header("x-campaign") == "spring"


# --- batching ----------------------------------------------------------------------------------

JSON_BATCH = {
    "body_type": "json", "raw_body": '{"from": "ACME", "messages": []}',
    "batch_key": "messages", "batch_size": "2", "batch_item": '{"to": "$$To", "text": "$$Body"}',
    "message_id_path": "results[*].id",
}


def ids_per_recipient(request: RecordedRequest) -> Reply:
    return Reply(200, {"results": [{"id": "id-" + item["to"][-4:]} for item in request.json()["messages"]]})


async def test_json_batch_three_recipients_two_requests(gateway: FakeGateway, client: httpx.AsyncClient) -> None:
    gateway.default = ids_per_recipient
    messages = [message(f"text {n}", to=f"+1500555000{n}", ref=f"m{n}") for n in (1, 2, 3)]

    outcomes = await provider(gateway, client, {"url": "/batch", **JSON_BATCH}).send(messages)

    assert [request.text for request in gateway.requests] == [
        '{"from": "ACME", "messages": [{"to": "+15005550001", "text": "text 1"}, '
        '{"to": "+15005550002", "text": "text 2"}]}',
        '{"from": "ACME", "messages": [{"to": "+15005550003", "text": "text 3"}]}',
    ]
    assert [(o.ref, o.provider_message_id) for o in outcomes] == [
        ("m1", "id-0001"), ("m2", "id-0002"), ("m3", "id-0003"),
    ]


async def test_json_batch_with_too_few_ids_leaves_ids_empty(gateway: FakeGateway, client: httpx.AsyncClient) -> None:
    gateway.answer(Reply(200, {"results": [{"id": "only-one"}]}))
    messages = [message(to=f"+1500555000{n}", ref=f"m{n}") for n in (1, 2)]

    outcomes = await provider(gateway, client, {"url": "/batch", **JSON_BATCH}).send(messages)

    assert [(o.accepted, o.provider_message_id) for o in outcomes] == [(True, None), (True, None)]


async def test_form_batch_joins_recipients_and_never_mixes_bodies(
    gateway: FakeGateway, client: httpx.AsyncClient,
) -> None:
    config = {"url": "/send", "params": "numbers=$$To\nmessage=$$Body\nsender=ACME", "batch_key": "numbers",
              "batch_size": "2", "message_id_path": "batch_id"}
    gateway.default = Reply(200, {"batch_id": "B-7"})
    messages = [message("hi", to="+15005550001", ref="a"), message("yo", to="+15005550002", ref="b"),
                message("hi", to="+15005550003", ref="c")]

    outcomes = await provider(gateway, client, config).send(messages)

    assert [request.text for request in gateway.requests] == [
        "numbers=%2B15005550001%2C%2B15005550003&message=hi&sender=ACME",
        "numbers=%2B15005550002&message=yo&sender=ACME",
    ]
    assert [(o.ref, o.provider_message_id) for o in outcomes] == [("a", "B-7"), ("b", "B-7"), ("c", "B-7")]


@pytest.mark.parametrize(("config", "max_batch"), [
    ({"url": "https://gw.example.com/send"}, 1),
    ({"url": "https://gw.example.com/send", **JSON_BATCH}, 2),
    ({"url": "https://gw.example.com/send", **JSON_BATCH, "batch_size": "500"}, 500),
    ({"url": "https://gw.example.com/send", "batch_size": "5"}, 1),  # invalid: no batch key
])
def test_max_batch_follows_the_config(config: dict[str, str], max_batch: int) -> None:
    assert GenericHttpProvider(config).max_batch == max_batch


# --- answers → outcomes ------------------------------------------------------------------------


@dataclass(frozen=True)
class AnswerCase:
    name: str
    reply: Reply
    config: dict[str, str] = field(default_factory=dict)
    message_id: str | None = None
    kind: ErrorKind | None = None  # None: accepted
    retry_after: float | None = None
    says: str = ""  # in the error message


ANSWER_CASES = [
    AnswerCase("id by JSON path", Reply(200, {"messages": [{"id": "abc-1"}]}), {"message_id_path": "messages[0].id"},
               message_id="abc-1"),
    AnswerCase("numeric id by $. path", Reply(201, {"data": {"id": 123}}), {"message_id_path": "$.data.id"},
               message_id="123"),
    AnswerCase("id by regex", Reply(200, "OK: queued id=XYZ-9 cost=1"), {"message_id_path": r"re:id=(\S+)"},
               message_id="XYZ-9"),
    AnswerCase("no id path: accepted without id", Reply(200, {"id": "ignored"})),
    AnswerCase("id path finds nothing: accepted without id", Reply(200, {"other": 1}),
               {"message_id_path": "messages[0].id"}),
    AnswerCase("garbage body with an id path: accepted without id", Reply(200, "<html>oops"),
               {"message_id_path": "messages[0].id"}),
    AnswerCase("body check by regex passes", Reply(200, '{"status": "ok", "id": "q1"}'),
               {"success_body_contains": r're:"status":\s*"ok"', "message_id_path": "id"}, message_id="q1"),
    AnswerCase("2xx failing the body check: permanent", Reply(200, "ERROR: insufficient credit"),
               {"success_body_contains": "OK"}, kind=ErrorKind.PERMANENT, says="insufficient credit"),
    AnswerCase("2xx outside success statuses: permanent", Reply(202, "queued?"), {"success_status": "200,201"},
               kind=ErrorKind.PERMANENT, says="202"),
    AnswerCase("401: configuration", Reply(401, {"error": "bad key"}), kind=ErrorKind.CONFIGURATION, says="bad key"),
    AnswerCase("400 with a body: permanent with its snippet", Reply(400, {"error": "invalid number"}),
               kind=ErrorKind.PERMANENT, says="invalid number"),
    AnswerCase("429 with Retry-After: transient", Reply(429, "slow down", {"Retry-After": "30"}),
               kind=ErrorKind.TRANSIENT, retry_after=30.0),
    AnswerCase("500: transient", Reply(500, "boom"), kind=ErrorKind.TRANSIENT, says="boom"),
    AnswerCase("redirect: configuration", Reply(301, "", {"Location": "https://new.example.com/send"}),
               kind=ErrorKind.CONFIGURATION, says="https://new.example.com/send"),
]


@pytest.mark.parametrize("case", ANSWER_CASES, ids=lambda case: case.name)
async def test_answer_in_outcome_out(case: AnswerCase, gateway: FakeGateway, client: httpx.AsyncClient) -> None:
    gateway.answer(case.reply)
    config = {"url": "/send", "params": "to=$$To\ntext=$$Body", **case.config}

    [outcome] = await provider(gateway, client, config).send([message()])

    assert outcome.http_status == case.reply.status
    if case.kind is None:
        assert outcome.accepted, outcome.error
        assert outcome.provider_message_id == case.message_id
    else:
        assert outcome.error is not None
        assert outcome.error.kind is case.kind
        assert case.says in str(outcome.error)
        assert outcome.error.retry_after == case.retry_after


async def test_no_answer_in_time_is_unknown(gateway: FakeGateway) -> None:
    gateway.answer(Reply(200, "late", delay=1.0))
    async with httpx.AsyncClient(timeout=0.2) as slow_client:
        [outcome] = await provider(gateway, slow_client, {"url": "/send", "params": "to=$$To"}).send([message()])

    assert outcome.error is not None and outcome.error.kind is ErrorKind.UNKNOWN


async def test_refused_connection_is_transient(client: httpx.AsyncClient) -> None:
    config = {"url": f"http://127.0.0.1:{unused_port()}/send", "params": "to=$$To"}

    [outcome] = await GenericHttpProvider(config, client=client).send([message()])

    assert outcome.error is not None and outcome.error.kind is ErrorKind.TRANSIENT


async def test_invalid_config_fails_every_message_as_configuration(client: httpx.AsyncClient) -> None:
    config = {"url": "https://gw.example.com/send", "params": "to=$$Tooo"}

    outcomes = await GenericHttpProvider(config, client=client).send([message(ref="a"), message(ref="b")])

    assert [o.error.kind if o.error else None for o in outcomes] == [ErrorKind.CONFIGURATION] * 2
    assert "$$Tooo" in str(outcomes[0].error)


# --- validation --------------------------------------------------------------------------------

VALID = {"url": "https://gw.example.com/send", "params": "to=$$To\ntext=$$Body"}
JSON_BODY = {"body_type": "json", "params": ""}
JSON_BATCH_BODY = {**JSON_BODY, **JSON_BATCH}

VALIDATION_CASES: list[tuple[str, dict[str, str], str, str]] = [
    ("unknown placeholder", {"params": "to=$$To\ntext=$$Tooo"}, "params", "unknown placeholder $$Tooo"),
    ("wrong case", {**JSON_BODY, "raw_body": '{"text": "$$body"}'}, "raw_body",
     "unknown placeholder $$body (placeholders are case-sensitive: did you mean $$Body?)"),
    ("undeclared custom key", {"url": "https://gw.example.com/$$Campaign"}, "url", "unknown placeholder $$Campaign"),
    ("malformed URL", {"url": "htp:/nowhere"}, "url", "http(s) URL"),
    ("URL with a space", {"url": "https://gw.example.com/send sms"}, "url", "spaces"),
    ("invalid JSON raw body", {**JSON_BODY, "raw_body": '{"to": "$$To",}'}, "raw_body", "not valid JSON"),
    ("json body type without a body", JSON_BODY, "raw_body", "required"),
    ("bad header line", {"headers": "X-Api-Key: k\nX-Api-Secret s"}, "headers", 'line 2 is not in "Name: value" form'),
    ("bad param line", {"params": "to=$$To\ntext"}, "params", 'line 2 is not in "key=value" form'),
    ("GET with a body", {"method": "GET", "body_type": "text", "raw_body": "x"}, "raw_body", "GET"),
    ("batch size without a batch key", {"batch_size": "10"}, "batch_size", "Batch key"),
    ("batch size too large", {"batch_size": "5000"}, "batch_size", "1 to 1000"),
    ("$$To outside the batch item", {**JSON_BATCH_BODY, "raw_body": '{"owner": "$$To", "messages": []}'},
     "raw_body", "$$To cannot be outside the batch item"),
    ("$$Ref outside the batch item", {"batch_key": "to", "batch_size": "2", "headers": "X-Ref: $$Ref"},
     "headers", "$$Ref cannot be outside the batch item"),
    ("form batch key that is no param", {"batch_key": "numbers", "batch_size": "2"}, "batch_key", "Params line"),
    ("json batch without an item", {**JSON_BATCH_BODY, "batch_item": ""}, "batch_item", "required"),
    ("text body cannot batch", {"body_type": "text", "raw_body": "$$Body", "batch_key": "to"}, "batch_key", "not text"),
    ("bad success status", {"success_status": "ok"}, "success_status", "is not a status"),
    ("bad success regex", {"success_body_contains": "re:("}, "success_body_contains", "regular expression"),
    ("bad id path", {"message_id_path": "messages["}, "message_id_path", "cannot read"),
    ("id regex without a group", {"message_id_path": r"re:id=\w+"}, "message_id_path", "group"),
    ("custom key shadowing a built-in", {"custom_keys": "To"}, "custom_keys", "built in"),
]


@pytest.mark.parametrize(("name", "overrides", "field_name", "reason"), VALIDATION_CASES,
                         ids=[case[0] for case in VALIDATION_CASES])
def test_validation_names_field_and_reason(name: str, overrides: dict[str, str], field_name: str, reason: str) -> None:
    problems = GenericHttpProvider.validate_config({**VALID, **overrides})

    assert any(f == field_name and reason in r for f, r in problems), problems


@pytest.mark.parametrize("config", [
    VALID,
    {**VALID, "custom_keys": "Campaign", "url": "https://gw.example.com/$$Campaign", "headers": "X-Ref: $$Ref"},
    {**VALID, "method": "GET"},
    {"url": "https://gw.example.com/send", **JSON_BODY, "raw_body": '{"text": $$Body}'},
    {"url": "https://gw.example.com/send", **JSON_BATCH},
    {"url": "https://gw.example.com/send", **JSON_BATCH, "raw_body": ""},
    {**VALID, "success_status": "200, 201-204, 3xx", "message_id_path": r"re:id=(\w+)",
     "check_url": "https://gw.example.com/me"},
], ids=["form", "custom keys", "GET", "bare JSON placeholder", "json batch", "json batch without raw body",
    "statuses, regex id, check URL"])
def test_valid_configs_have_no_problems(config: dict[str, str]) -> None:
    assert GenericHttpProvider.validate_config(config) == []


# --- connection check --------------------------------------------------------------------------


async def test_check_without_check_url_only_renders(gateway: FakeGateway, client: httpx.AsyncClient) -> None:
    check = await provider(gateway, client, {"url": "/send", "params": "to=$$To"}).check_connection()

    assert check.ok and "nothing was contacted" in check.detail
    assert gateway.requests == []


async def test_a_check_without_check_url_says_it_checked_nothing(gateway: FakeGateway,
                                                                  client: httpx.AsyncClient) -> None:
    check = await provider(gateway, client, {"url": "/send", "params": "to=$$To"}).check_connection()

    assert not check.checked and check.detail.startswith("no Check URL (check_url) configured")
    assert gateway.requests == []
    with_url = await provider(gateway, client, {"url": "/send", "params": "to=$$To", "check_url": "/me"}
                              ).check_connection()
    assert with_url.checked and with_url.ok


async def test_check_gets_check_url_with_auth_and_headers(gateway: FakeGateway, client: httpx.AsyncClient) -> None:
    config = {"url": "/send", "params": "to=$$To", "check_url": "/account", "username": "acme",
              "password": PASSWORD, "headers": "X-Api-Key: k-123"}

    check = await provider(gateway, client, config).check_connection()

    assert check.ok, check.detail
    [request] = gateway.requests
    assert (request.method, request.path) == ("GET", "/account")
    assert request.basic_auth == ("acme", PASSWORD)
    assert request.header("x-api-key") == "k-123"


async def test_check_reports_a_refusal(gateway: FakeGateway, client: httpx.AsyncClient) -> None:
    gateway.answer(Reply(401, "invalid key"))
    config = {"url": "/send", "params": "to=$$To", "check_url": "/account"}

    check = await provider(gateway, client, config).check_connection()

    assert not check.ok and "401" in check.detail and "invalid key" in check.detail


async def test_check_never_raises_when_unreachable(client: httpx.AsyncClient) -> None:
    config = {"url": "https://gw.example.com/send", "check_url": f"http://127.0.0.1:{unused_port()}/me"}

    check = await GenericHttpProvider(config, client=client).check_connection()

    assert not check.ok and "unreachable" in check.detail


async def test_check_reports_config_problems(client: httpx.AsyncClient) -> None:
    check = await GenericHttpProvider({"url": "https://gw.example.com/$$body"}, client=client).check_connection()

    assert not check.ok and "$$body" in check.detail


# --- preview -----------------------------------------------------------------------------------

SECRET_CONFIG = {
    "url": "https://api.example.com/send?token=t-999&account=acme", "username": "acme", "password": PASSWORD,
    "headers": "Authorization: Bearer tok-123\nX-Api-Key: k-123\nX-Campaign: spring",
    "params": "to=$$To\ntext=$$Body\napikey=abc-123",
}


def test_preview_is_the_exact_request_with_secrets_masked() -> None:
    assert preview_curl(SECRET_CONFIG, SAMPLE_MESSAGE) == (
        "curl -X POST 'https://api.example.com/send?token=••••••&account=acme' \\\n"
        "  -u 'acme:••••••' \\\n"
        "  -H 'Authorization: ••••••' \\\n"
        "  -H 'X-Api-Key: ••••••' \\\n"
        "  -H 'X-Campaign: spring' \\\n"
        "  -H 'Content-Type: application/x-www-form-urlencoded' \\\n"
        "  --data-raw 'to=%2B15005550006&text=smsconsole%20test&apikey=••••••'"
    )


def test_preview_without_sample_shows_the_template() -> None:
    config = {"method": "GET", "url": "https://api.example.com/send", "params": "to=$$To\ntext=$$Body"}

    assert preview_curl(config) == "curl 'https://api.example.com/send?to=$$To&text=$$Body'"


def test_preview_masks_secret_json_keys_and_keeps_env_references_by_name() -> None:
    config = {"url": "https://api.example.com/send", "body_type": "json", "username": "acme",
              "password": "env:GW_PASSWORD", "raw_body": '{"api_secret": "xyz-987", "to": "$$To"}'}

    preview = preview_curl(config, SAMPLE_MESSAGE)

    assert "xyz-987" not in preview
    assert '"api_secret": "••••••"' in preview and '"to": "+15005550006"' in preview
    assert "-u acme:env:GW_PASSWORD" in preview


def test_preview_of_an_invalid_config_lists_its_problems() -> None:
    with pytest.raises(GenericRequestError) as raised:
        preview_curl({"url": "https://api.example.com/send", "params": "to=$$too"})
    assert raised.value.problems[0][0] == "params"


# --- secrets stay out of logs ------------------------------------------------------------------


@pytest.mark.parametrize("reply", [Reply(200, {"id": "1"}), Reply(401, "denied"), Reply(500, "boom")],
                         ids=["accepted", "refused", "server error"])
async def test_no_secret_in_any_log_record(
    reply: Reply, gateway: FakeGateway, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    gateway.answer(reply, reply)
    config = {"url": "/send", "params": "to=$$To", "username": "acme", "password": PASSWORD,
              "check_url": "/account"}
    adapter = provider(gateway, client, config)

    await adapter.send([message()])
    await adapter.check_connection()

    assert caplog.records, "the adapter is expected to log at DEBUG"
    basic_token = "YWNtZTpzM2NyZXQtUGE1NXdvcmQ="  # base64 of acme:PASSWORD
    for record in caplog.records:
        text = record.getMessage()
        assert PASSWORD not in text and basic_token not in text, text

