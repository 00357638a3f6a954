"""Generic HTTP provider: any SMS gateway with an HTTP API, described by a request template
(method, URL, Basic auth, headers, form params or a JSON/text body) with `$$` placeholders, an
optional batching shape, and rules for reading the answer (success status, body check, message
id by JSON path or regex). Modelled on courier's "external" handler and CleverTap's "Other
(Generic)" provider.

Placeholders (case-sensitive) are filled per message and encoded for where they land:
percent-encoded in the URL and in params, JSON-escaped in a JSON body, verbatim in a text body
and in header values (a value with a line break is refused, never sent). Built in:

    $$To                 recipient, E.164 with '+'          $$ToNoPlus   the same without '+'
    $$Body               message text                       $$From       the message's sender, else the Sender setting
    $$Ref                our message reference (outbox id)
    $$TemplateID         OutboundMessage.options["template_id"]          (e.g. a DLT template id)
    $$TemplateVariables  OutboundMessage.options["template_variables"]
    $$ApiKey             the API key setting (stored encrypted; masked in previews)
    $$StatusCallback     our receipt URL for this provider (with ?token= when a webhook token is set)

plus `$$Name` for every name listed in the `custom_keys` setting, filled from
OutboundMessage.options[Name] ('' when the message has none).

Batching (batch_key set, batch_size > 1): a json body gets an array at batch_key built from the
batch_item template; form or GET params join the batch_key param's values with commas. $$To,
$$ToNoPlus and $$Ref belong in the item only. Any other placeholder outside the item (e.g. $$Body
in a "same text to many numbers" API) is shared: a request only carries messages that agree on it.

Answers: success when the status matches success_status and the body check (if any) passes;
the id comes from message_id_path (`[*]` maps ids to recipients in order), and a success with
no readable id (even an unparseable body) is still accepted, with no id. Failures are classified
by Provider.classify_http with a snippet of the body."""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import re
import shlex
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, unquote_plus, urlencode, urlsplit

import httpx

from smsconsole.providers.base import (
    WEBHOOK_TOKEN_FIELD,
    CallbackRequest,
    Capabilities,
    ConfigField,
    ConfigurationError,
    ConnectionCheck,
    InboundReport,
    OutboundMessage,
    OutcomeUnknownError,
    PermanentError,
    Provider,
    ProviderError,
    SendOutcome,
    StatusReport,
    Validator,
    http_url,
    snippet,
)
from smsconsole.providers.mapping import MAPPING_FIELDS, FieldMapping
from smsconsole.secrets import MASK, mask, mask_url

logger = logging.getLogger(__name__)

PLACEHOLDER = re.compile(r"\$\$([A-Za-z_][A-Za-z0-9_]*)")
BUILTIN_PLACEHOLDERS: tuple[str, ...] = (
    "To", "ToNoPlus", "Body", "From", "Ref", "TemplateID", "TemplateVariables", "ApiKey", "StatusCallback",
)
# Placeholders that differ for every message, so they can never sit outside the batch item.
PER_MESSAGE_PLACEHOLDERS = frozenset({"To", "ToNoPlus", "Ref"})
TEMPLATE_ID_OPTION = "template_id"
TEMPLATE_VARIABLES_OPTION = "template_variables"

METHODS = ("GET", "POST", "PUT")
BODY_TYPES = ("form", "json", "text")
MAX_BATCH = 1000
DEFAULT_CONTENT_TYPES = {
    "form": "application/x-www-form-urlencoded",
    "json": "application/json",
    "text": "text/plain; charset=utf-8",
}

# The message every check and preview renders when no real one is given; nothing is sent with it.
SAMPLE_MESSAGE = OutboundMessage(
    ref="sample", to="+15005550006", body="smsconsole test", sender="SMSCONSOLE",
    options={TEMPLATE_ID_OPTION: "TEMPLATE-1", TEMPLATE_VARIABLES_OPTION: "sample"},
)

# Header, param and JSON key names whose values a preview hides.
SECRET_NAME = re.compile(
    r"auth|api[-_]?key|access[-_]?key|token|secret|passw|pwd|signature|credential|^key$", re.IGNORECASE,
)
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_UNSAFE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # CR, LF and other controls; tab is fine
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


# --- setting formats ---------------------------------------------------------------------------


def parse_header_lines(text: str) -> list[tuple[str, str]]:
    """`Name: value` per line, blank lines skipped. ValueError names the bad line (not its text,
    which may hold a token)."""
    headers = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not _HEADER_NAME.fullmatch(name):
            raise ValueError(f'line {number} is not in "Name: value" form')
        headers.append((name, value.strip()))
    return headers


def parse_param_lines(text: str) -> list[tuple[str, str]]:
    """`key=value` per line (values typed plain, not URL-encoded), blank lines skipped."""
    params = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, equals, value = line.partition("=")
        if not equals or not key.strip():
            raise ValueError(f'line {number} is not in "key=value" form')
        params.append((key.strip(), value.strip()))
    return params


def parse_custom_keys(text: str) -> tuple[str, ...]:
    """Names separated by commas or spaces; a leading `$$` is tolerated."""
    names: list[str] = []
    for raw in re.split(r"[\s,]+", text.strip()):
        name = raw.removeprefix("$$")
        if not name:
            continue
        if not _IDENTIFIER.fullmatch(name):
            raise ValueError(f"{raw!r} is not a valid name (letters, digits and _, not starting with a digit)")
        if name in BUILTIN_PLACEHOLDERS:
            raise ValueError(f"$${name} is built in; do not list it")
        if name not in names:
            names.append(name)
    return tuple(names)


@dataclass(frozen=True)
class StatusRule:
    """Which HTTP statuses mean success: `2xx`, `200`, `200-204`, comma-separated."""

    text: str
    ranges: tuple[tuple[int, int], ...]

    @classmethod
    def parse(cls, text: str) -> StatusRule:
        ranges = []
        for token in (t.strip().lower() for t in text.split(",")):
            if re.fullmatch(r"[1-5]xx", token):
                first = int(token[0]) * 100
                ranges.append((first, first + 99))
            elif match := re.fullmatch(r"(\d{3})\s*-\s*(\d{3})", token):
                low, high = int(match[1]), int(match[2])
                if not 100 <= low <= high <= 599:
                    raise ValueError(f"{token!r} is not a range of HTTP statuses")
                ranges.append((low, high))
            elif re.fullmatch(r"\d{3}", token) and 100 <= int(token) <= 599:
                ranges.append((int(token), int(token)))
            else:
                raise ValueError(f"{token or '(empty)'!r} is not a status; use e.g. 2xx or 200,201,202")
        return cls(text.strip(), tuple(ranges))

    def matches(self, status: int) -> bool:
        return any(low <= status <= high for low, high in self.ranges)


@dataclass(frozen=True)
class BodyRule:
    """Text the answer must contain for success: a substring, or a regex after `re:`."""

    text: str
    regex: re.Pattern[str] | None

    @classmethod
    def parse(cls, text: str) -> BodyRule:
        if text.startswith("re:"):
            try:
                return cls(text, re.compile(text[3:]))
            except re.error as exc:
                raise ValueError(f"is not a valid regular expression: {exc}") from None
        return cls(text, None)

    def matches(self, body: str) -> bool:
        return bool(self.regex.search(body)) if self.regex else self.text in body


WILDCARD = None  # a `[*]` step in a JSON path
PathStep = str | int | None


def parse_json_path(text: str) -> tuple[PathStep, ...]:
    """`messages[0].id`, `$.data.id`, `results[*].id`, `["key with spaces"]` into steps."""
    rest = text.strip()
    rest = rest[1:] if rest.startswith("$") else rest
    steps: list[PathStep] = []
    token = re.compile(r"""\.?([A-Za-z_][\w-]*)|\[(-?\d+|\*)\]|\[(["'])(.*?)\3\]|\.\*""")
    position = 0
    while position < len(rest):
        match = token.match(rest, position)
        if not match:
            raise ValueError(f"cannot read {rest[position:]!r}; use a path like messages[0].id or $.data.id")
        if match[1] is not None:
            steps.append(match[1])
        elif match[2] == "*" or match[0] == ".*":
            steps.append(WILDCARD)
        elif match[2] is not None:
            steps.append(int(match[2]))
        else:
            steps.append(match[4])
        position = match.end()
    if not steps:
        raise ValueError("is empty; use a path like messages[0].id or $.data.id")
    return tuple(steps)


def _walk(document: Any, steps: Sequence[PathStep]) -> list[Any]:
    nodes = [document]
    for step in steps:
        found: list[Any] = []
        for node in nodes:
            if step is WILDCARD:
                found.extend(node if isinstance(node, list) else node.values() if isinstance(node, dict) else ())
            elif isinstance(step, int):
                if isinstance(node, list) and -len(node) <= step < len(node):
                    found.append(node[step])
            elif isinstance(node, dict) and step in node:
                found.append(node[step])
        nodes = found
    return nodes


def _scalar_id(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return None


@dataclass(frozen=True)
class IdRule:
    """Where the provider's message id is in the answer: a JSON path, or a regex after `re:`
    whose first group is the id. A `[*]` in the path yields one id per recipient, in order."""

    text: str
    steps: tuple[PathStep, ...] = ()
    regex: re.Pattern[str] | None = None

    @classmethod
    def parse(cls, text: str) -> IdRule:
        if text.startswith("re:"):
            try:
                regex = re.compile(text[3:])
            except re.error as exc:
                raise ValueError(f"is not a valid regular expression: {exc}") from None
            if regex.groups < 1:
                raise ValueError("the regular expression needs a group around the id, e.g. re:id=(\\w+)")
            return cls(text, regex=regex)
        return cls(text, steps=parse_json_path(text))

    @property
    def per_recipient(self) -> bool:
        return WILDCARD in self.steps

    def extract(self, body: str, count: int) -> list[str | None]:
        """One id (or None) per recipient. Unreadable JSON gives None; a `[*]` path must find
        exactly `count` ids, since an id given to the wrong message is worse than none."""
        if self.regex is not None:
            match = self.regex.search(body)
            return [(match[1] or None) if match else None] * count
        try:
            document = json.loads(body)
        except ValueError:
            return [None] * count
        values = _walk(document, self.steps)
        if self.per_recipient:
            if len(values) != count:
                logger.debug("generic: %d ids at %s for %d recipients; ids left empty", len(values), self.text, count)
                return [None] * count
            return [_scalar_id(value) for value in values]
        return [_scalar_id(values[0]) if values else None] * count


def _reason_from(parse: Callable[[str], object]) -> Validator:
    """A ConfigField validator from a parser that raises ValueError with the reason."""

    def check(value: str) -> str | None:
        try:
            parse(value)
        except ValueError as exc:
            return str(exc)
        return None

    return check


# --- filling placeholders ----------------------------------------------------------------------


def placeholders_in(text: str) -> list[str]:
    return [match[1] for match in PLACEHOLDER.finditer(text)]


def fill(text: str, values: Mapping[str, str], encode: Callable[[str], str] = str) -> str:
    """Every known `$$Name` replaced by `encode(value)`; unknown ones stay (validation flags them)."""
    return PLACEHOLDER.sub(lambda m: encode(values[m[1]]) if m[1] in values else m[0], text)


def fill_json(template: str, values: Mapping[str, str]) -> str:
    """A JSON template filled so the result stays valid JSON with the exact text: inside a JSON
    string a placeholder gets the JSON-escaped value, outside strings a whole JSON string."""
    out = []
    position = 0

    def as_string(value: str) -> str:
        return json.dumps(value, ensure_ascii=False)

    for match in _JSON_STRING.finditer(template):
        out.append(fill(template[position:match.start()], values, as_string))
        out.append(fill(match[0], values, lambda value: as_string(value)[1:-1]))
        position = match.end()
    out.append(fill(template[position:], values, as_string))
    return "".join(out)


def message_values(message: OutboundMessage, custom_keys: Sequence[str] = (), api_key: str = "",
                   sender: str = "") -> dict[str, str]:
    """The value of every placeholder for one message."""
    options = message.options
    values = {
        "To": message.to,
        "ToNoPlus": message.to.removeprefix("+"),
        "Body": message.body,
        "From": message.sender or sender,
        "Ref": message.ref,
        "TemplateID": str(options.get(TEMPLATE_ID_OPTION, "")),
        "TemplateVariables": str(options.get(TEMPLATE_VARIABLES_OPTION, "")),
        "ApiKey": api_key,
        "StatusCallback": message.status_callback_url or "",
    }
    for key in custom_keys:
        values[key] = str(options.get(key, ""))
    return values


def _url_quote(value: str) -> str:
    return quote(value, safe="")


def _template_quote(value: str) -> str:
    return quote(value, safe="$")  # keeps `$$Name` readable in a template preview


# --- the compiled config -----------------------------------------------------------------------


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
    elif reason := _url_problem(fill(url, sample, _url_quote)):
        problems.append(("url", reason))
    if check_url and (reason := _url_problem(fill(check_url, sample, _url_quote))):
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


def _set_path(document: dict[str, Any], path: str, value: Any) -> None:
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
    url_encode = _template_quote if template else _url_quote

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

    headers = []
    for name, value in spec.headers:
        rendered = fill(value, shared)
        if _HEADER_UNSAFE.search(rendered):
            raise GenericRequestError([(
                "headers", f"the {name} header would contain a line break or control character "
                           "from a placeholder value; the message was not sent",
            )])
        headers.append((name, rendered))

    body: str | None = None
    if spec.has_body:
        if spec.body_type == "form":
            body = encoded_params
        elif spec.body_type == "text":
            body = fill(spec.raw_body, shared)
        elif spec.json_batch:
            document = json.loads(fill_json(spec.raw_body, shared)) if spec.raw_body else {}
            _set_path(document, spec.batch_key, [json.loads(fill_json(spec.batch_item, v)) for v in all_values])
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


# --- preview -----------------------------------------------------------------------------------


def _mask_pairs(encoded: str) -> str:
    parts = []
    for part in encoded.split("&"):
        key, equals, _ = part.partition("=")
        parts.append(f"{key}={MASK}" if equals and SECRET_NAME.search(unquote_plus(key)) else part)
    return "&".join(parts)


def _mask_json(body: str) -> str:
    def hide(match: re.Match[str]) -> str:
        return f'{match[1]}"{MASK}"' if SECRET_NAME.search(match[2]) else match[0]

    return re.sub(r'("((?:[^"\\]|\\.)*)"\s*:\s*)"(?:[^"\\]|\\.)*"', hide, body)


def preview_curl(config: Mapping[str, str], sample: OutboundMessage | None = None) -> str:
    """The request as a curl command, secrets masked: for `sample`, or with placeholders in
    place when there is no sample. Raises GenericRequestError when it cannot be built."""
    spec, problems = compile_config(config)
    if spec is None:
        raise GenericRequestError(problems)
    request = render_request(dataclasses.replace(spec, api_key=MASK), [sample] if sample else None)

    base, question, query = mask_url(request.url).partition("?")
    url = base + question + _mask_pairs(query) if question else base
    first = ["curl"] + (["-X", request.method] if request.method != "GET" else []) + [shlex.quote(url)]
    lines = [" ".join(first)]
    if spec.username or spec.password:
        lines.append("-u " + shlex.quote(f"{spec.username}:{mask(spec.password)}"))
    for name, value in request.headers:
        shown = MASK if SECRET_NAME.search(name) and value else value
        lines.append("-H " + shlex.quote(f"{name}: {shown}"))
    if request.body is not None:
        body = request.body
        if spec.body_type == "form":
            body = _mask_pairs(body)
        elif spec.body_type == "json":
            body = _mask_json(body)
        lines.append("--data-raw " + shlex.quote(body))
    return " \\\n  ".join(lines)


# --- the adapter -------------------------------------------------------------------------------


class GenericHttpProvider(Provider):
    kind = "generic"
    display_name = "Generic HTTP"
    description = "Any SMS gateway with an HTTP API: a request template with $$To and $$Body placeholders."
    config_fields = (
        ConfigField(
            "method", "Method", kind="choice", choices=METHODS, default="POST",
            help="HTTP method; GET sends Params in the query string",
        ),
        ConfigField(
            "url", "URL", required=True, kind="url", placeholder="https://api.example.com/sms/send",
            help="Endpoint; placeholders are percent-encoded, e.g. https://gw.example.com/send/$$To",
        ),
        ConfigField("username", "Username", help="HTTP Basic auth user; leave empty for no Basic auth"),
        ConfigField("password", "Password", secret=True, help="HTTP Basic auth password"),
        ConfigField(
            "sender", "Sender", placeholder="MYBRND",
            help="$$From when a message names no sender: your number, short code, alphanumeric ID or DLT header",
        ),
        ConfigField(
            "api_key", "API key", secret=True, placeholder="env:GATEWAY_API_KEY",
            help="A key or token the request carries: put $$ApiKey where it goes (a header, a param, the URL)",
        ),
        ConfigField(
            "headers", "Headers", kind="multiline", validator=_reason_from(parse_header_lines),
            placeholder="X-Api-Key: abc123",
            help='One "Name: value" per line; placeholders allowed in values. '
                 "A Content-Type here replaces the one the body type sets",
        ),
        ConfigField(
            "body_type", "Body type", kind="choice", choices=BODY_TYPES, default="form",
            help="form: Params as a URL-encoded body; json or text: Raw body, and Params go in the query string",
        ),
        ConfigField(
            "params", "Params", kind="multiline", validator=_reason_from(parse_param_lines),
            placeholder="to=$$To\ntext=$$Body",
            help='One "key=value" per line, values typed plain (encoded for you): the body of a form '
                 "POST/PUT, else the query string",
        ),
        ConfigField(
            "raw_body", "Raw body", kind="multiline", placeholder='{"to": "$$To", "text": "$$Body"}',
            help='Body template for the json and text body types; in JSON put placeholders in strings ("$$Body"), '
                 "they are escaped for you",
        ),
        ConfigField(
            "custom_keys", "Custom keys", validator=_reason_from(parse_custom_keys),
            placeholder="CampaignName, Priority",
            help="Extra placeholder names, comma-separated: CampaignName allows $$CampaignName, "
                 "filled from the message's key/values",
        ),
        ConfigField(
            "batch_key", "Batch key", placeholder="messages",
            help="Enables batching: for json, the key (or dotted path) in Raw body that receives the array "
                 "of Batch items; for form or GET, the Params key whose values are comma-joined",
        ),
        ConfigField(
            "batch_size", "Batch size", kind="int", default="1",
            help=f"Recipients per request, 1 to {MAX_BATCH}; 1 sends one request per message",
        ),
        ConfigField(
            "batch_item", "Batch item", kind="multiline", placeholder='{"to": "$$To", "text": "$$Body"}',
            help="JSON template of one recipient's entry in the batch array (json body type)",
        ),
        ConfigField(
            "success_status", "Success status", validator=_reason_from(StatusRule.parse), default="2xx",
            placeholder="2xx", help="HTTP statuses that mean accepted: 2xx, 200, 200-204, comma-separated",
        ),
        ConfigField(
            "success_body_contains", "Success body contains", validator=_reason_from(BodyRule.parse),
            placeholder='"status":"ok"',
            help="Text the answer must contain to count as accepted; prefix re: for a regular expression",
        ),
        ConfigField(
            "message_id_path", "Message id path", validator=_reason_from(IdRule.parse),
            placeholder="messages[0].id",
            help="Where the provider's message id is: a JSON path (messages[0].id, $.data.id, results[*].id "
                 "for one per recipient), or re: and a regex whose group is the id",
        ),
        ConfigField(
            "check_url", "Check URL", kind="url", placeholder="https://api.example.com/account",
            help="Optional: Test connection GETs it with the same auth and headers; 2xx means OK",
        ),
        WEBHOOK_TOKEN_FIELD,
        *MAPPING_FIELDS,
    )
    capabilities = Capabilities(max_batch=1, max_body_chars=1600, status_webhook=True, inbound_webhook=True)

    @classmethod
    def check_config(cls, values: Mapping[str, str]) -> list[tuple[str, str]]:
        return compile_config(values)[1]

    def _compiled(self) -> tuple[GenericSpec | None, Problems]:
        """The settings compiled once per adapter (its config does not change after creation)."""
        cached = getattr(self, "_compiled_config", None)
        if cached is None:
            cached = self._compiled_config = compile_config(self.config)
        return cached

    @property
    def max_batch(self) -> int:
        """Messages per send call that fit one request, from the batch settings."""
        spec, _ = self._compiled()
        return spec.max_batch if spec else 1

    def preview_curl(self, sample: OutboundMessage | None = None) -> str:
        return preview_curl(self.config, sample)

    # Receipts and replies: by the field mapping, verified by the webhook token ----------------

    def parse_status_callback(self, request: CallbackRequest) -> list[StatusReport]:
        return FieldMapping.from_settings(self.setting).statuses(request)

    def parse_inbound_callback(self, request: CallbackRequest) -> list[InboundReport]:
        return FieldMapping.from_settings(self.setting).inbound(request)

    # Sending ----------------------------------------------------------------------------------

    async def send(self, messages: Sequence[OutboundMessage]) -> list[SendOutcome]:
        spec, problems = self._compiled()
        if spec is None:
            error = ConfigurationError(f"the Generic HTTP settings are invalid: {GenericRequestError(problems)}")
            return [SendOutcome(ref=message.ref, error=error) for message in messages]
        messages = [dataclasses.replace(m, status_callback_url=self.callback_url(m.status_callback_url))
                    if m.status_callback_url else m for m in messages]
        outcomes: dict[str, SendOutcome] = {}
        for batch in batches(spec, messages):
            for outcome in await self._send_batch(spec, batch):
                outcomes[outcome.ref] = outcome
        return [outcomes[message.ref] for message in messages]

    async def _send_batch(self, spec: GenericSpec, batch: list[OutboundMessage]) -> list[SendOutcome]:
        refs = [message.ref for message in batch]
        try:
            request = render_request(spec, batch)
        except GenericRequestError as exc:
            error = PermanentError("; ".join(reason for _, reason in exc.problems))
            return [SendOutcome(ref=ref, error=error) for ref in refs]
        host = urlsplit(request.url).netloc
        logger.debug("generic: %s %s for %d message(s)", request.method, host, len(refs))
        try:
            response = await self.request(
                request.method, request.url,
                headers=[(name, value.encode("utf-8")) for name, value in request.headers],
                content=request.body.encode("utf-8") if request.body is not None else None,
                auth=httpx.BasicAuth(spec.username, spec.password) if spec.username or spec.password else None,
            )
        except ProviderError as error:
            failure = error
        except httpx.LocalProtocolError as exc:  # the request could not be formed, nothing left
            failure = ConfigurationError(f"cannot send to {host}: {exc}")
        except httpx.HTTPError as exc:
            failure = OutcomeUnknownError(f"request to {host} failed: {type(exc).__name__}")
        else:
            outcomes = read_response(spec, response, refs)
            logger.debug("generic: %s answered HTTP %d: %d accepted of %d", host, response.status_code,
                         sum(o.accepted for o in outcomes), len(outcomes))
            return outcomes
        logger.debug("generic: %d message(s) not sent: %s", len(refs), failure)
        return [SendOutcome(ref=ref, error=failure) for ref in refs]

    # Connection check -------------------------------------------------------------------------

    async def check_connection(self) -> ConnectionCheck:
        """Renders a sample request (nothing is sent) and GETs the check URL when there is one."""
        spec, problems = self._compiled()
        if spec is None:
            return ConnectionCheck(ok=False, detail=f"the settings have problems: {GenericRequestError(problems)}")
        try:
            request = render_request(spec, [SAMPLE_MESSAGE])
        except GenericRequestError as exc:
            return ConnectionCheck(ok=False, detail=f"the request does not render: {exc}")
        if not spec.check_url:
            detail = ("no Check URL (check_url) configured, so nothing was contacted; "
                      "the request renders with sample values")
            return ConnectionCheck(ok=True, detail=detail, checked=False)
        url = fill(spec.check_url, {**sample_values(spec.custom_keys), "ApiKey": spec.api_key}, _url_quote)
        headers = [(n, v.encode("utf-8")) for n, v in request.headers if n.lower() != "content-type"]
        auth = httpx.BasicAuth(spec.username, spec.password) if spec.username or spec.password else None
        try:
            response = await self.request("GET", url, headers=headers, auth=auth)
        except ProviderError as exc:
            return ConnectionCheck(ok=False, detail=f"the Check URL is unreachable: {exc}")
        except httpx.HTTPError as exc:
            return ConnectionCheck(ok=False, detail=f"the Check URL is unreachable: {type(exc).__name__}")
        status = response.status_code
        if response.is_success:
            return ConnectionCheck(ok=True, detail=f"the Check URL answered HTTP {status}; no message was sent")
        hint = " (check the username, password and headers)" if status in (401, 403) else ""
        body = snippet(response.text)
        detail = f"the Check URL answered HTTP {status}{hint}" + (f": {body}" if body else "")
        return ConnectionCheck(ok=False, detail=detail)


def read_response(spec: GenericSpec, response: httpx.Response, refs: Sequence[str]) -> list[SendOutcome]:
    """One outcome per recipient of a request, from its answer."""
    status = response.status_code
    text = response.text
    error: ProviderError | None = None
    if not spec.success_status.matches(status):
        error = _status_error(spec, response, text)
    elif spec.success_body and not spec.success_body.matches(text):
        error = PermanentError(
            f"HTTP {status} but the answer does not contain {spec.success_body.text!r}: "
            f"{snippet(text) or '(empty body)'}", http_status=status,
        )
    if error is not None:
        return [SendOutcome(ref=ref, error=error, http_status=status) for ref in refs]
    ids = spec.message_id.extract(text, len(refs)) if spec.message_id else [None] * len(refs)
    return [
        SendOutcome(ref=ref, provider_message_id=message_id, provider_status="accepted", http_status=status)
        for ref, message_id in zip(refs, ids, strict=True)
    ]


def _status_error(spec: GenericSpec, response: httpx.Response, text: str) -> ProviderError:
    status = response.status_code
    body = snippet(text)
    if 300 <= status < 400:
        location = response.headers.get("Location", "elsewhere")
        return ConfigurationError(f"HTTP {status}: redirected to {location}; use the final URL", http_status=status)
    if status < 300:
        return PermanentError(
            f"HTTP {status} is not a success status ({spec.success_status.text})" + (f": {body}" if body else ""),
            http_status=status,
        )
    return Provider.classify_http(response, f"HTTP {status}: {body}" if body else "")

