"""A Generic HTTP config compiled and checked once (every problem as (field, reason)), and the
requests it renders: one per message, or one per batch of messages that agree on every value
outside the batch item."""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from smsconsole.providers.base import OutboundMessage
from smsconsole.providers.common import http_url
from smsconsole.providers.generic.responses import BodyRule, IdRule, StatusRule
from smsconsole.providers.generic.templating import (
    HEADER_UNSAFE,
    BODY_TYPES,
    BUILTIN_PLACEHOLDERS,
    DEFAULT_CONTENT_TYPES,
    MAX_BATCH,
    METHODS,
    PER_MESSAGE_PLACEHOLDERS,
    SAMPLE_MESSAGE,
    template_quote,
    url_quote,
    fill,
    fill_json,
    message_values,
    parse_custom_keys,
    parse_header_lines,
    parse_param_lines,
    placeholders_in,
)

class GenericRequestError(ValueError):
    """A request cannot be built: a bad config, or a value that cannot be placed safely."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{name}: {reason}" for name, reason in self.problems))


@dataclass(frozen=True)
class GenericSpec:
    """A checked generic config, ready to render requests and read answers."""

    method: str
    url: str
    username: str
    password: str
    api_key: str
    sender: str
    headers: tuple[tuple[str, str], ...]
    body_type: str
    params: tuple[tuple[str, str], ...]
    raw_body: str
    custom_keys: tuple[str, ...]
    batch_key: str
    batch_size: int
    batch_item: str
    success_status: StatusRule
    success_body: BodyRule | None
    message_id: IdRule | None
    check_url: str

    @property
    def has_body(self) -> bool:
        return self.method != "GET"

    @property
    def params_in_query(self) -> bool:
        """Params make the form body for a form POST/PUT, and the query string otherwise."""
        return not (self.has_body and self.body_type == "form")

    @property
    def json_batch(self) -> bool:
        return bool(self.batch_key) and self.has_body and self.body_type == "json"

    @property
    def max_batch(self) -> int:
        return self.batch_size if self.batch_key else 1

    @property
    def shared_placeholders(self) -> frozenset[str]:
        """Placeholders outside the batch item: one value for every recipient of a request."""
        texts = [self.url, self.raw_body if self.has_body else ""]
        texts += [value for _, value in self.headers]
        for key, value in self.params:
            texts.append(key)
            if not (self.batch_key and not self.json_batch and key == self.batch_key):
                texts.append(value)
        return frozenset(name for text in texts for name in placeholders_in(text))


def _text(values: Mapping[str, str], name: str, default: str = "") -> str:
    return (values.get(name) or "").strip() or default


def _unknown_placeholder(name: str, allowed: Sequence[str]) -> str:
    if same_but_case := [known for known in allowed if known.lower() == name.lower()]:
        hint = f" (placeholders are case-sensitive: did you mean $${same_but_case[0]}?)"
    elif close := difflib.get_close_matches(name, allowed, n=1):
        hint = f" (did you mean $${close[0]}?)"
    else:
        hint = ""
    return f"unknown placeholder $${name}{hint}; list custom ones in Custom keys"


def _url_problem(url: str) -> str | None:
    if any(char.isspace() for char in url):
        return "must not contain spaces (placeholders are encoded for you)"
    return http_url(url)


Problems = list[tuple[str, str]]
T = TypeVar("T")


def _parsed(problems: Problems, name: str, parse: Callable[[str], T], text: str, fallback: T) -> T:
    """`parse(text)`, or `fallback` with the ValueError's reason recorded against `name`."""
    try:
        return parse(text)
    except ValueError as exc:
        problems.append((name, str(exc)))
        return fallback


def compile_config(values: Mapping[str, str]) -> tuple[GenericSpec | None, Problems]:
    """The spec, or None and every problem as (field, reason)."""
    problems: Problems = []
    method = _text(values, "method", "POST").upper()
    if method not in METHODS:
        problems.append(("method", f"must be one of {', '.join(METHODS)}"))
    body_type = _text(values, "body_type", "form").lower()
    if body_type not in BODY_TYPES:
        problems.append(("body_type", f"must be one of {', '.join(BODY_TYPES)}"))
    custom_keys: tuple[str, ...] = _parsed(
        problems, "custom_keys", parse_custom_keys, values.get("custom_keys") or "", (),
    )

    url, check_url = _text(values, "url"), _text(values, "check_url")
    raw_body = values.get("raw_body") or ""
    raw_body = raw_body if raw_body.strip() else ""
    templates = {
        "url": url, "headers": values.get("headers") or "", "params": values.get("params") or "",
        "raw_body": raw_body, "batch_item": (values.get("batch_item") or "").strip(), "check_url": check_url,
    }
    allowed = BUILTIN_PLACEHOLDERS + custom_keys
    for name, template in templates.items():
        for unknown in dict.fromkeys(p for p in placeholders_in(template) if p not in allowed):
            problems.append((name, _unknown_placeholder(unknown, allowed)))

    sample = sample_values(custom_keys)
    if not url:
        problems.append(("url", "is required"))
    elif reason := _url_problem(fill(url, sample, url_quote)):
        problems.append(("url", reason))
    if check_url and (reason := _url_problem(fill(check_url, sample, url_quote))):
        problems.append(("check_url", reason))

    headers: list[tuple[str, str]] = _parsed(problems, "headers", parse_header_lines, templates["headers"], [])
    params: list[tuple[str, str]] = _parsed(problems, "params", parse_param_lines, templates["params"], [])
    batch_key = _text(values, "batch_key")
    batch_size_text = _text(values, "batch_size", "1")
    batch_size = int(batch_size_text) if batch_size_text.isdigit() else 0
    if not 1 <= batch_size <= MAX_BATCH:
        problems.append(("batch_size", f"must be a whole number from 1 to {MAX_BATCH}"))
        batch_size = 1
    elif batch_size > 1 and not batch_key:
        problems.append(("batch_size", "batching needs a Batch key (the key that repeats per recipient)"))

    spec = GenericSpec(
        method=method, url=url, username=_text(values, "username"), password=values.get("password") or "",
        api_key=values.get("api_key") or "", sender=_text(values, "sender"),
        headers=tuple(headers), body_type=body_type, params=tuple(params), raw_body=raw_body,
        custom_keys=custom_keys, batch_key=batch_key, batch_size=batch_size, batch_item=templates["batch_item"],
        success_status=_parsed(problems, "success_status", StatusRule.parse,
                               _text(values, "success_status", "2xx"), StatusRule("2xx", ((200, 299),))),
        success_body=_parsed(problems, "success_body_contains", _optional(BodyRule.parse),
                             _text(values, "success_body_contains"), None),
        message_id=_parsed(problems, "message_id_path", _optional(IdRule.parse),
                           _text(values, "message_id_path"), None),
        check_url=check_url,
    )
    problems += _body_problems(spec, sample)
    if batch_key:
        problems += _batch_problems(spec, sample)
    return (None, problems) if problems else (spec, [])


def _optional(parse: Callable[[str], T]) -> Callable[[str], T | None]:
    return lambda text: parse(text) if text else None


def sample_values(custom_keys: Sequence[str] = ()) -> dict[str, str]:
    """Placeholder values of SAMPLE_MESSAGE, with "sample" for every custom key."""
    return {**message_values(SAMPLE_MESSAGE), **{key: "sample" for key in custom_keys}}


def _body_problems(spec: GenericSpec, sample: Mapping[str, str]) -> Problems:
    if spec.raw_body and not spec.has_body:
        return [("raw_body", "a GET request has no body; put the values in Params")]
    if not spec.has_body or spec.body_type == "form":
        return []
    if not spec.raw_body:
        if spec.json_batch:
            return []
        return [("raw_body", f"is required for the {spec.body_type} body type")]
    if spec.body_type == "text":
        return []
    try:
        document = json.loads(fill_json(spec.raw_body, sample))
    except ValueError as exc:
        return [("raw_body", f"is not valid JSON after filling placeholders with sample values: {exc}")]
    if spec.json_batch and not isinstance(document, dict):
        return [("raw_body", "must be a JSON object when batching (the batch array goes inside)")]
    if spec.json_batch and (reason := _batch_path_problem(document, spec.batch_key)):
        return [("batch_key", reason)]
    return []


def _batch_problems(spec: GenericSpec, sample: Mapping[str, str]) -> Problems:
    problems: Problems = []
    key = spec.batch_key
    if not spec.has_body or spec.body_type == "form":
        if key not in [name for name, _ in spec.params]:
            reason = f"must name a Params line (e.g. {key}=$$To) whose values are joined with commas"
            problems.append(("batch_key", reason))
    elif spec.body_type == "text":
        problems.append(("batch_key", "batching works with the form and json body types, not text"))
    elif not spec.batch_item:
        problems.append(("batch_item", 'is required when batching a JSON body, e.g. {"to": "$$To", "text": "$$Body"}'))
    else:
        if not all(key.split(".")):
            problems.append(("batch_key", "must be a key, or a dotted path of keys such as data.messages"))
        try:
            json.loads(fill_json(spec.batch_item, sample))
        except ValueError as exc:
            problems.append(("batch_item", f"is not valid JSON after filling placeholders with sample values: {exc}"))
    # The recipient differs per item, so it cannot sit anywhere all items share.
    outside = {
        "url": spec.url,
        "headers": " ".join(value for _, value in spec.headers),
        "raw_body": spec.raw_body if spec.has_body else "",
        "params": " ".join(name if name == key and not spec.json_batch else f"{name}={value}"
                           for name, value in spec.params),
    }
    where = "batch_item" if spec.json_batch else f"the {key} param"
    for name, template in outside.items():
        for placeholder in dict.fromkeys(p for p in placeholders_in(template) if p in PER_MESSAGE_PLACEHOLDERS):
            reason = f"$${placeholder} cannot be outside the batch item when batching; put it in {where}"
            problems.append((name, reason))
    return problems


def _batch_path_problem(document: dict[str, Any], batch_key: str) -> str | None:
    node: Any = document
    for part in batch_key.split(".")[:-1]:
        node = node.get(part, {}) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            return f"{part!r} in Raw body must be a JSON object to hold the batch array"
    return None


def set_path(document: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = document
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


# --- rendering ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderedRequest:
    """One HTTP request exactly as it goes out (Basic auth aside, which comes from the spec)."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: str | None


def render_request(spec: GenericSpec, messages: Sequence[OutboundMessage] | None) -> RenderedRequest:
    """The request for `messages` (one, or a batch sharing their outside values); for None, the
    template itself, with every placeholder left in place as `$$Name`."""
    template = not messages
    if messages:
        all_values = [message_values(message, spec.custom_keys, spec.api_key, spec.sender) for message in messages]
    else:
        all_values = [{name: f"$${name}" for name in BUILTIN_PLACEHOLDERS + spec.custom_keys}]
    shared = all_values[0]
    url_encode = template_quote if template else url_quote

    pairs = []
    for key, value in spec.params:
        if spec.batch_key and not spec.json_batch and key == spec.batch_key:
            rendered = ",".join(fill(value, values) for values in all_values)
        else:
            rendered = fill(value, shared)
        pairs.append((fill(key, shared), rendered))
    encoded_params = urlencode(pairs, safe="$" if template else "", quote_via=quote)

    url = fill(spec.url, shared, url_encode)
    if spec.params_in_query and encoded_params:
        url += encoded_params if url.endswith(("?", "&")) else ("&" if "?" in url else "?") + encoded_params

    headers = [checked_header(name, fill(value, shared)) for name, value in spec.headers]

    body: str | None = None
    if spec.has_body:
        if spec.body_type == "form":
            body = encoded_params
        elif spec.body_type == "text":
            body = fill(spec.raw_body, shared)
        elif spec.json_batch:
            document = json.loads(fill_json(spec.raw_body, shared)) if spec.raw_body else {}
            set_path(document, spec.batch_key, [json.loads(fill_json(spec.batch_item, v)) for v in all_values])
            body = json.dumps(document, ensure_ascii=False)
        else:
            body = fill_json(spec.raw_body, shared)
        if not any(name.lower() == "content-type" for name, _ in headers):
            headers.append(("Content-Type", DEFAULT_CONTENT_TYPES[spec.body_type]))
    return RenderedRequest(spec.method, url, tuple(headers), body)


def batches(spec: GenericSpec, messages: Sequence[OutboundMessage]) -> Iterator[list[OutboundMessage]]:
    """Messages grouped into requests: with batching, up to batch_size messages that agree on
    every placeholder outside the batch item (so one request never mixes e.g. two bodies)."""
    if not spec.batch_key:
        for message in messages:
            yield [message]
        return
    shared = sorted(spec.shared_placeholders)
    groups: dict[tuple[str, ...], list[OutboundMessage]] = {}
    for message in messages:
        values = message_values(message, spec.custom_keys, spec.api_key, spec.sender)
        groups.setdefault(tuple(values[name] for name in shared), []).append(message)
    for group in groups.values():
        for start in range(0, len(group), spec.batch_size):
            yield group[start:start + spec.batch_size]


def checked_header(name: str, rendered: str) -> tuple[str, str]:
    """A rendered header, refused when a placeholder value put a line break or control character in it."""
    if HEADER_UNSAFE.search(rendered):
        raise GenericRequestError([(
            "headers", f"the {name} header would contain a line break or control character "
                       "from a placeholder value; the message was not sent",
        )])
    return name, rendered
