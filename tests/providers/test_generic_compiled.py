"""The Generic HTTP provider sends requests rendered from templates compiled once
(providers/generic/compiled.py). Each must be byte-for-byte the request `render_request` (the
reference, which previews still use) gives for the same messages: same method, URL, headers and
body, the same grouping into batches, the same refusal of an unsafe header value."""

from __future__ import annotations

import pytest

from smsconsole.providers.base import OutboundMessage
from smsconsole.providers.generic.compiled import CompiledRequest, value_getters
from smsconsole.providers.generic.request import GenericRequestError, batches, compile_config, render_request
from smsconsole.providers.generic.templating import message_values

TRICKY = [
    "Hello world",
    'He said "hi" \\ back\nline2 😀 & a=b 100%',
    "tab\there, CR\r, NUL-free controls \x07 and \u2028 line separator",
    "looks like a placeholder: $$To and $$Body and $$$$Ref",
    "the markers themselves: \ue000To\ue001 \ue000 \ue001",
    "ünïcödé — 中文 — عربى",
    "",
    "{\"json\": [1, 2]} </script>",
]


def messages(count: int = len(TRICKY), **options: str) -> list[OutboundMessage]:
    return [
        OutboundMessage(
            ref=str(1000 + n), to=f"+1415555{n:04d}", body=TRICKY[n % len(TRICKY)],
            sender=None if n % 3 else f"SENDER{n % 2}",
            status_callback_url=f"https://cb.example.com/callbacks/p/status?token=t{n % 2}" if n % 4 else None,
            options={**options, "template_id": f"T-{n % 2}", "template_variables": TRICKY[(n + 1) % len(TRICKY)],
                     "Campaign": TRICKY[(n + 2) % len(TRICKY)]},
        )
        for n in range(count)
    ]


CONFIGS: dict[str, dict[str, str]] = {
    "json one per request": {
        "url": "https://gw.example.com/send", "body_type": "json",
        "raw_body": '{"ref": "$$Ref", "to": "$$To", "text": "$$Body"}',
    },
    "json with placeholders outside strings, mixed text, escapes and spacing": {
        "url": "https://gw.example.com/send/$$ToNoPlus?x=1", "body_type": "json", "custom_keys": "Campaign",
        "raw_body": '{\n  "to": $$To,  "text" : "Say: $$Body!\\n\\u00e9 \\"q\\"",\n'
                    '  "meta": {"n": 1.50, "big": 1e5, "ok": true, "none": null, "list": [1, "$$Campaign", $$From]},\n'
                    '  "dollars": "$$$$Ref"\n}',
    },
    "json batch": {
        "url": "https://gw.example.com/batch", "body_type": "json", "raw_body": '{"messages": []}',
        "batch_key": "messages", "batch_size": "100", "batch_item": '{"ref": "$$Ref", "to": "$$To", "text": "$$Body"}',
    },
    "json batch, nested path, shared values, placeholder and duplicate keys": {
        "url": "https://gw.example.com/batch?acct=$$ApiKey", "body_type": "json", "api_key": "k&y=1",
        "sender": "ACME", "custom_keys": "Campaign",
        "headers": "Authorization: Bearer $$ApiKey\nX-Campaign: $$TemplateID",
        "raw_body": '{"auth": {"key": "$$ApiKey"}, "data": {"from": "$$From", "n": 2.0, "messages": ["old"]},'
                    ' "text": $$Body, "dup": 1, "dup": 2}',
        "batch_key": "data.messages", "batch_size": "3",
        "batch_item": '{"$$ToNoPlus": {"ref": "$$Ref", "vars": ["$$TemplateVariables", $$Campaign, 0.5]},'
                      ' "to": $$To, "to": "again $$To", "cb": "$$StatusCallback", "$$Campaign": "k"}',
    },
    "json batch with a Content-Type of its own and no raw body": {
        "url": "https://gw.example.com/batch", "body_type": "json", "headers": "content-type: application/vnd+json",
        "batch_key": "items", "batch_size": "5", "batch_item": '["$$To", "$$Body", 7]',
    },
    "form": {
        "url": "https://gw.example.com/send", "params": "from=$$From\nto=$$To\ntext=$$Body\nkey $$ApiKey=v",
        "api_key": "secret/+=", "sender": "DEF",
    },
    "form batch": {
        "url": "https://gw.example.com/send?fixed=a%20b&", "params": "to=$$ToNoPlus\ntext=$$Body\nref=x",
        "batch_key": "to", "batch_size": "4",
    },
    "GET batch in the query": {
        "method": "GET", "url": "https://gw.example.com/send?", "params": "numbers=$$To\nmessage=$$Body\ntid=$$TemplateID",
        "batch_key": "numbers", "batch_size": "10",
    },
    "text body": {
        "method": "PUT", "url": "https://gw.example.com/$$Ref/$$Body", "body_type": "text",
        "raw_body": "To: $$To\nFrom: $$From\n\n$$Body\n-- $$TemplateVariables $$",
        "headers": "X-Ref: $$Ref", "username": "u", "password": "p",
    },
    "json template that holds a marker character (kept on the reference path)": {
        "url": "https://gw.example.com/batch", "body_type": "json", "raw_body": '{"tag": "\\ue000To\\ue001", "m": []}',
        "batch_key": "m", "batch_size": "10", "batch_item": '{"to": "$$To", "x": "\ue001"}',
    },
}


def spec_for(config: dict[str, str]):  # type: ignore[no-untyped-def]
    spec, problems = compile_config(config)
    assert spec is not None, problems
    return spec


@pytest.mark.parametrize("name", list(CONFIGS))
def test_compiled_requests_are_byte_for_byte_the_reference(name: str) -> None:
    spec = spec_for(CONFIGS[name])
    compiled = CompiledRequest(spec)
    outbound = messages(23)
    reference_batches = list(batches(spec, outbound))
    assert list(compiled.batches(outbound)) == reference_batches
    for batch in reference_batches:
        fast, reference = compiled.render(batch), render_request(spec, batch)
        assert fast == reference
        assert fast.body is None or fast.body.encode("utf-8") == reference.body.encode("utf-8")  # type: ignore[union-attr]
    for message in outbound:  # each message alone, too
        assert compiled.render([message]) == render_request(spec, [message])


def test_every_placeholder_reads_the_value_message_values_gives() -> None:
    spec = spec_for({**CONFIGS["json batch, nested path, shared values, placeholder and duplicate keys"],
                     "custom_keys": "Campaign, Missing"})
    getters = value_getters(spec)
    for message in messages(12):
        expected = message_values(message, spec.custom_keys, spec.api_key, spec.sender)
        assert {name: get(message) for name, get in getters.items()} == expected


def test_an_unsafe_header_value_is_refused_by_both() -> None:
    spec = spec_for({"url": "https://gw.example.com/send", "params": "to=$$To", "headers": "X-Body: $$Body"})
    message = OutboundMessage(ref="1", to="+14155550100", body="line\r\nInjected: yes")
    with pytest.raises(GenericRequestError) as reference:
        render_request(spec, [message])
    with pytest.raises(GenericRequestError) as fast:
        CompiledRequest(spec).render([message])
    assert fast.value.problems == reference.value.problems
