"""Requests rendered from templates compiled once: a GenericSpec's URL, headers, params and body
turned into parts (literal text and placeholder slots, encoded for where they land) when the
adapter first sends, so a batch of 100 messages costs a few string joins and one `json.dumps`,
not a regex pass and a `json.loads` per message.

The result is byte-for-byte what `render_request` (request.py) gives, which stays the reference
and renders the template previews; tests/providers/test_generic_compiled.py compares the two over
varied configs and tricky values. A JSON template that could not be compiled faithfully (its own
text holds the private-use characters used as slot markers) keeps `render_request`."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from json.encoder import encode_basestring  # what json.dumps(str, ensure_ascii=False) calls
from operator import attrgetter
from typing import Any
from urllib.parse import quote, urlencode

from smsconsole.providers.base import OutboundMessage
from smsconsole.providers.generic.request import (
    GenericSpec,
    RenderedRequest,
    checked_header,
    render_request,
    set_path,
)
from smsconsole.providers.generic.templating import (
    JSON_STRING,
    DEFAULT_CONTENT_TYPES,
    PLACEHOLDER,
    TEMPLATE_ID_OPTION,
    TEMPLATE_VARIABLES_OPTION,
    fill_json,
    url_quote,
)

Getter = Callable[[OutboundMessage], Any]
_OPEN, _CLOSE = "\ue000", "\ue001"  # slot markers while a JSON template is parsed
_MARKED = re.compile(f"{_OPEN}([A-Za-z_][A-Za-z0-9_]*){_CLOSE}")


def value_getters(spec: GenericSpec) -> dict[str, Callable[[OutboundMessage], str]]:
    """For every placeholder, how to read its value from a message: the same values as
    templating.message_values, one name at a time."""

    def option(key: str) -> Callable[[OutboundMessage], str]:
        return lambda message: str(message.options.get(key, ""))

    sender, api_key = spec.sender, spec.api_key
    getters: dict[str, Callable[[OutboundMessage], str]] = {
        "To": attrgetter("to"),
        "ToNoPlus": lambda message: message.to.removeprefix("+"),
        "Body": attrgetter("body"),
        "From": lambda message: message.sender or sender,
        "Ref": attrgetter("ref"),
        "TemplateID": option(TEMPLATE_ID_OPTION),
        "TemplateVariables": option(TEMPLATE_VARIABLES_OPTION),
        "ApiKey": lambda message: api_key,
        "StatusCallback": lambda message: message.status_callback_url or "",
    }
    for key in spec.custom_keys:
        getters[key] = option(key)
    return getters


class _Text:
    """A text template: literal parts and slots, each slot a placeholder's value, encoded."""

    __slots__ = ("parts", "constant", "single")

    def __init__(self, parts: list[str | Getter]) -> None:
        merged: list[str | Getter] = []
        for part in parts:
            if isinstance(part, str):
                if not part:
                    continue
                if merged and isinstance(merged[-1], str):
                    merged[-1] += part
                    continue
            merged.append(part)
        self.parts = merged
        self.constant: str | None = None
        self.single: Getter | None = None
        if not merged:
            self.constant = ""
        elif len(merged) == 1:
            if isinstance(merged[0], str):
                self.constant = merged[0]
            else:
                self.single = merged[0]

    def fill(self, message: OutboundMessage) -> str:
        if self.constant is not None:
            return self.constant
        if self.single is not None:
            return self.single(message)
        return "".join([part if part.__class__ is str else part(message) for part in self.parts])  # type: ignore[operator,misc]


def _encoded(getter: Getter, encode: Callable[[str], str] | None) -> Getter:
    if encode is None:
        return getter
    return lambda message: encode(getter(message))


def _text_parts(text: str, getters: dict[str, Getter], encode: Callable[[str], str] | None) -> list[str | Getter]:
    """templating.fill as parts: every known `$$Name` a slot, unknown ones left as text."""
    parts: list[str | Getter] = []
    position = 0
    for match in PLACEHOLDER.finditer(text):
        if match[1] not in getters:
            continue
        parts.append(text[position:match.start()])
        parts.append(_encoded(getters[match[1]], encode))
        position = match.end()
    parts.append(text[position:])
    return parts


def _text(text: str, getters: dict[str, Getter], encode: Callable[[str], str] | None = None) -> _Text:
    return _Text(_text_parts(text, getters, encode))


def _json_inner(value: str) -> str:
    return encode_basestring(value)[1:-1]


def _json_text(template: str, getters: dict[str, Getter]) -> _Text:
    """templating.fill_json as parts: inside a JSON string a slot is the escaped value, outside
    strings a whole JSON string."""
    parts: list[str | Getter] = []
    position = 0
    for match in JSON_STRING.finditer(template):
        parts += _text_parts(template[position:match.start()], getters, encode_basestring)
        parts += _text_parts(match[0], getters, _json_inner)
        position = match.end()
    parts += _text_parts(template[position:], getters, encode_basestring)
    return _Text(parts)


class _Pairs(list):  # type: ignore[type-arg]
    """A JSON object's (key, value) pairs as written, duplicates kept."""


def _has_marker(node: Any) -> bool:
    if isinstance(node, str):
        return _OPEN in node or _CLOSE in node
    if isinstance(node, list):  # _Pairs too
        return any(_has_marker(item) for item in node)
    if isinstance(node, tuple):
        return any(_has_marker(item) for item in node)
    return False


def _json_builder(template: str, getters: dict[str, Getter]) -> Getter | None:
    """A function message → the Python value `json.loads(fill_json(template, values))` gives,
    or None when the template's own text holds a marker character (then keep render_request)."""
    names = list(getters)
    blank = json.loads(fill_json(template, {name: "" for name in names}), object_pairs_hook=_Pairs)
    if _has_marker(blank):
        return None
    marked = json.loads(fill_json(template, {name: f"{_OPEN}{name}{_CLOSE}" for name in names}),
                        object_pairs_hook=_Pairs)
    return _node(marked, getters)


def _node(value: Any, getters: dict[str, Getter]) -> Getter:
    if isinstance(value, _Pairs):
        pairs = [(_node(key, getters), _node(item, getters)) for key, item in value]
        constant_keys = [getattr(key, "constant_value", None) for key, _ in pairs]
        if all(isinstance(key, str) for key in constant_keys) and len(set(constant_keys)) == len(constant_keys):
            keyed = [(key, item) for key, (_, item) in zip(constant_keys, pairs)]
            return lambda message: {key: item(message) for key, item in keyed}
        # Keys with placeholders (or written twice): filled in order, a later duplicate wins, as json.loads does.
        return lambda message: {key(message): item(message) for key, item in pairs}
    if isinstance(value, list):
        items = [_node(item, getters) for item in value]
        return lambda message: [item(message) for item in items]
    if isinstance(value, str) and _OPEN in value:
        pieces = _MARKED.split(value)  # literal, name, literal, name, …, literal
        text = _Text([getters[piece] if index % 2 else piece for index, piece in enumerate(pieces)])
        return text.single or text.fill
    return _constant(value)


def _constant(value: Any) -> Getter:
    def constant(message: OutboundMessage) -> Any:
        return value

    constant.constant_value = value  # type: ignore[attr-defined]
    return constant


class CompiledRequest:
    """A spec's requests for real messages, from templates compiled once (see the module)."""

    def __init__(self, spec: GenericSpec) -> None:
        self.spec = spec
        getters: dict[str, Getter] = dict(value_getters(spec))
        self._getters = getters
        self._shared = [getters[name] for name in sorted(spec.shared_placeholders) if name in getters]
        self._url = _text(spec.url, getters, url_quote)
        batch_param = spec.batch_key if spec.batch_key and not spec.json_batch else None
        self._params = [(_text(key, getters), _text(value, getters), key == batch_param)
                        for key, value in spec.params]
        self._headers = [(name, _text(value, getters)) for name, value in spec.headers]
        self._has_content_type = any(name.lower() == "content-type" for name, _ in spec.headers)
        self._body_text: _Text | None = None
        self._document: Getter | None = None
        self._item: Getter | None = None
        self._fallback = False
        if spec.has_body and spec.body_type == "text":
            self._body_text = _text(spec.raw_body, getters)
        elif spec.has_body and spec.json_batch:
            self._document = _json_builder(spec.raw_body, getters) if spec.raw_body else (lambda message: {})
            self._item = _json_builder(spec.batch_item, getters)
            self._fallback = self._document is None or self._item is None
        elif spec.has_body and spec.body_type == "json":
            self._body_text = _json_text(spec.raw_body, getters)

    def batches(self, messages: Sequence[OutboundMessage]) -> Iterator[list[OutboundMessage]]:
        """request.batches, reading only the placeholders outside the batch item."""
        spec = self.spec
        if not spec.batch_key:
            for message in messages:
                yield [message]
            return
        if not self._shared:
            groups: Iterator[list[OutboundMessage]] | list[list[OutboundMessage]] = [list(messages)]
        else:
            grouped: dict[tuple[str, ...], list[OutboundMessage]] = {}
            shared = self._shared
            for message in messages:
                grouped.setdefault(tuple([get(message) for get in shared]), []).append(message)
            groups = list(grouped.values())
        size = spec.batch_size
        for group in groups:
            for start in range(0, len(group), size):
                yield group[start:start + size]

    def render(self, messages: Sequence[OutboundMessage]) -> RenderedRequest:
        """render_request(spec, messages) for one message, or a batch sharing their outside values."""
        spec = self.spec
        if self._fallback or not messages:
            return render_request(spec, messages)
        first = messages[0]
        pairs = []
        for key, value, joined in self._params:
            rendered = ",".join([value.fill(m) for m in messages]) if joined else value.fill(first)
            pairs.append((key.fill(first), rendered))
        encoded_params = urlencode(pairs, safe="", quote_via=quote) if pairs else ""

        url = self._url.fill(first)
        if spec.params_in_query and encoded_params:
            url += encoded_params if url.endswith(("?", "&")) else ("&" if "?" in url else "?") + encoded_params

        headers = [checked_header(name, template.fill(first)) for name, template in self._headers]

        body: str | None = None
        if spec.has_body:
            if spec.body_type == "form":
                body = encoded_params
            elif self._document is not None and self._item is not None:
                document = self._document(first)
                item = self._item
                set_path(document, spec.batch_key, [item(m) for m in messages])
                body = json.dumps(document, ensure_ascii=False)
            else:
                assert self._body_text is not None
                body = self._body_text.fill(first)
            if not self._has_content_type:
                headers.append(("Content-Type", DEFAULT_CONTENT_TYPES[spec.body_type]))
        return RenderedRequest(spec.method, url, tuple(headers), body)

