"""Placeholders of the Generic HTTP provider: the built-in names, the setting formats that hold
them (header lines, param lines, custom keys) and filling a template for one message, encoded
for where the value lands."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import quote

from smsconsole.providers.base import OutboundMessage
from smsconsole.providers.common import Validator

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
HEADER_UNSAFE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # CR, LF and other controls; tab is fine
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


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


def reason_from(parse: Callable[[str], object]) -> Validator:
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

    for match in JSON_STRING.finditer(template):
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


def url_quote(value: str) -> str:
    return quote(value, safe="")


def template_quote(value: str) -> str:
    return quote(value, safe="$")  # keeps `$$Name` readable in a template preview
