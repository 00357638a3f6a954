"""Import a provider's sample curl command as Generic HTTP settings.

Understands line continuations, -X, -H, -d and its variants, --json, -u, --url, -G and query
strings; flags that do not change the request (-s, -v, --compressed…) are ignored, anything
else is reported. Sample values stay as they are: the operator swaps in $$To and $$Body, helped
by `suggestions`. shlex does the shell quoting; no maintained curl parser covers this mapping."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from smsconsole.providers.generic.templating import METHODS


class CurlParseError(ValueError):
    """The command cannot be read as a curl request; the message is a one-line reason."""


@dataclass
class CurlImport:
    config: dict[str, str]  # Generic HTTP setting values
    ignored: list[str] = field(default_factory=list)  # flags that do not change the request
    unknown: list[str] = field(default_factory=list)  # flags or words not understood, left out
    warnings: list[str] = field(default_factory=list)  # parts understood but not importable
    suggestions: list[str] = field(default_factory=list)  # e.g. "params: to looks like the recipient…"


# Options that take a value, by what they set.
_VALUE_OPTIONS = {
    "-X": "method", "--request": "method",
    "-H": "header", "--header": "header",
    "-d": "data", "--data": "data", "--data-ascii": "data", "--data-binary": "data",
    "--data-raw": "data-raw", "--data-urlencode": "data-urlencode", "--json": "json",
    "-u": "user", "--user": "user",
    "--url": "url",
    "-A": "user-agent", "--user-agent": "user-agent",
    "-e": "referer", "--referer": "referer",
    "-b": "cookie", "--cookie": "cookie",
    "-F": "form", "--form": "form", "--form-string": "form",
}
# Options whose value does not change what is sent.
_IGNORED_VALUE_OPTIONS = {
    "-o", "--output", "-m", "--max-time", "--connect-timeout", "--retry", "--retry-delay",
    "--retry-max-time", "-w", "--write-out", "--cacert", "--capath", "-c", "--cookie-jar",
    "--limit-rate", "--stderr", "--trace", "--trace-ascii",
}
_IGNORED_FLAGS = {
    "--compressed", "-s", "--silent", "-S", "--show-error", "-v", "--verbose", "-k", "--insecure",
    "-L", "--location", "-i", "--include", "-f", "--fail", "--fail-with-body", "-g", "--globoff",
    "--http1.1", "--http2", "-#", "--progress-bar", "-N", "--no-buffer", "-q", "--raw",
}
_GET_FLAGS = {"-G", "--get"}
_HEADER_OPTIONS = {"user-agent": "User-Agent", "referer": "Referer", "cookie": "Cookie"}

RECIPIENT_NAMES = {"to", "mobile", "mobiles", "number", "numbers", "msisdn", "phone", "recipient",
                   "recipients", "destination", "destinations", "dest", "dst", "receiver"}
BODY_NAMES = {"text", "message", "body", "msg", "sms", "content"}
_FORM_DATA = re.compile(r"[^=&\s]+=[^&]*(?:&[^=&\s]+=[^&]*)*")


def parse_curl(command: str) -> dict[str, str]:
    """Generic HTTP setting values from a curl command; CurlParseError when it is unreadable."""
    return import_curl(command).config


def import_curl(command: str) -> CurlImport:
    """Like parse_curl, with what was ignored, not understood and worth replacing by placeholders."""
    result = CurlImport(config={})
    request = _read_options(_tokens(command), result)

    if not request.urls:
        raise CurlParseError("no URL found in the command")
    url = request.urls[0] if "://" in request.urls[0] else "http://" + request.urls[0]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CurlParseError(f"the URL must be http(s), got {request.urls[0]!r}")
    result.unknown.extend(request.urls[1:])

    headers = request.headers
    if request.json_flag:
        _set_default_header(headers, "Content-Type", "application/json")
        _set_default_header(headers, "Accept", "application/json")
    method = request.method or ("GET" if request.force_get or not request.data else "POST")
    if request.force_get and method != "GET":
        result.warnings.append(f"-G with -X {method}: imported as GET, the data in the query string")
        method = "GET"
    if method not in METHODS:
        raise CurlParseError(f"method {method} is not supported; use one of {', '.join(METHODS)}")
    username, password = _basic_auth(request.user, headers)

    joined = "&".join(request.data) if request.data else None
    params: list[tuple[str, str]] = []
    raw_body = ""
    body_type = "form"
    content_type = (_header(headers, "Content-Type") or "").strip().lower()
    media = content_type.split(";")[0].strip()
    if joined is not None and method == "GET":
        if not request.force_get:
            result.warnings.append("data sent with GET moved to the query string (a GET request has no body here)")
        params = _form_pairs(joined, result)
    elif joined is not None:
        if media.endswith("json") or (not media and _is_json(joined)):
            body_type, raw_body = "json", joined
            if content_type == "application/json":  # the json body type's default
                _drop_header(headers, "Content-Type")
        elif media in ("", "application/x-www-form-urlencoded") and (not joined or _FORM_DATA.fullmatch(joined)):
            params = _form_pairs(joined, result)
            if content_type == media:  # the form body type's default, or none
                _drop_header(headers, "Content-Type")
        else:
            body_type, raw_body = "text", joined
            if not media:  # curl labels -d data as a form; keep what it would send
                headers.append(("Content-Type", "application/x-www-form-urlencoded"))

    # The URL's query string becomes Params wherever Params land in the query anyway.
    if parts.query and (method == "GET" or body_type != "form") and _FORM_DATA.fullmatch(parts.query):
        params = _form_pairs(parts.query, result) + params
        url = urlunsplit(parts._replace(query=""))

    settings = {
        "method": method, "url": url, "body_type": body_type, "username": username, "password": password,
        "headers": "\n".join(f"{name}: {value}" for name, value in headers),
        "params": "\n".join(f"{key}={value}" for key, value in params),
        "raw_body": raw_body,
    }
    result.config.update({name: value for name, value in settings.items() if value})
    result.suggestions.extend(_suggestions(params, raw_body if body_type == "json" else ""))
    return result


@dataclass
class _CurlRequest:
    """What the options of a curl command say, before it is mapped onto settings."""

    method: str = ""
    urls: list[str] = field(default_factory=list)
    headers: list[tuple[str, str]] = field(default_factory=list)
    data: list[str] = field(default_factory=list)
    force_get: bool = False
    json_flag: bool = False
    user: str | None = None


def _read_options(tokens: list[str], result: CurlImport) -> _CurlRequest:
    request = _CurlRequest()
    position = 1
    while position < len(tokens):
        if (expanded := _expand_short(tokens[position])) is not None:
            tokens[position:position + 1] = expanded
        token = tokens[position]
        position += 1
        option, value = _split_option(token)
        if option is None:
            if _looks_like_url(token) and not request.urls:
                request.urls.append(token)
            else:
                result.unknown.append(token)
        elif option in _GET_FLAGS:
            request.force_get = True
        elif option in _IGNORED_FLAGS:
            result.ignored.append(option)
        elif option in _VALUE_OPTIONS or option in _IGNORED_VALUE_OPTIONS:
            if value is None:
                if position >= len(tokens):
                    raise CurlParseError(f"{option} needs a value")
                value = tokens[position]
                position += 1
            if option in _IGNORED_VALUE_OPTIONS:
                result.ignored.append(option)
            else:
                _apply(request, result, option, value)
        else:
            result.unknown.append(option if value is None else f"{option}={value}")
    return request


def _apply(request: _CurlRequest, result: CurlImport, option: str, value: str) -> None:
    """One option that takes a value, applied to the request."""
    kind = _VALUE_OPTIONS[option]
    from_file = f"{option} {value} reads a file, which cannot be imported; left out"
    if kind == "method":
        request.method = value.upper()
    elif kind == "header":
        name, colon, header_value = value.partition(":")
        if colon and name.strip():
            request.headers.append((name.strip(), header_value.strip()))
        else:
            result.unknown.append(f"{option} {value}")
    elif kind in ("data", "data-raw", "json"):
        if kind != "data-raw" and value.startswith("@"):
            result.warnings.append(from_file)
            return
        request.data.append(value)
        request.json_flag = request.json_flag or kind == "json"
    elif kind == "data-urlencode":
        if (encoded := _data_urlencode(value)) is None:
            result.warnings.append(from_file)
        else:
            request.data.append(encoded)
    elif kind == "user":
        request.user = value
    elif kind == "url":
        request.urls.insert(0, value)
    elif kind in _HEADER_OPTIONS:
        request.headers.append((_HEADER_OPTIONS[kind], value))
    elif kind == "form":
        result.warnings.append(f"{option} (multipart form) is not supported; left out")


# --- reading the command -----------------------------------------------------------------------


def _tokens(command: str) -> list[str]:
    text = _join_continuations(command.strip())
    text = re.sub(r"^\$\s+", "", text)  # a pasted shell prompt
    if not text:
        raise CurlParseError("the command is empty")
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise CurlParseError(f"cannot read the command: {str(exc).lower()} (unbalanced quotes?)") from None
    if not tokens or tokens[0].rsplit("/", 1)[-1] not in ("curl", "curl.exe"):
        raise CurlParseError("the command does not start with curl")
    return tokens


def _join_continuations(command: str) -> str:
    """Backslash-newline removed as the shell does (not inside single quotes); trailing blanks
    after the backslash, common in pasted docs, are tolerated."""
    out: list[str] = []
    quote_char = ""
    position = 0
    while position < len(command):
        char = command[position]
        if quote_char == "'":
            quote_char = "" if char == "'" else quote_char
        elif char == "\\":
            match = re.match(r"\\[ \t]*\r?\n", command[position:])
            if match:
                position += match.end()
                continue
            out.append(command[position:position + 2])
            position += 2
            continue
        elif quote_char == '"':
            quote_char = "" if char == '"' else quote_char
        elif char in "'\"":
            quote_char = char
        out.append(char)
        position += 1
    return "".join(out)


def _expand_short(token: str) -> list[str] | None:
    """`-sSXPOST` as `-s -S -X POST`; None when the token is not a known combination."""
    if not token.startswith("-") or token.startswith("--") or len(token) <= 2:
        return None
    expanded = []
    for index, letter in enumerate(token[1:], start=1):
        option = "-" + letter
        if option in _VALUE_OPTIONS or option in _IGNORED_VALUE_OPTIONS:
            expanded.append(option)
            if token[index + 1:]:
                expanded.append(token[index + 1:])
            return expanded
        if option not in _IGNORED_FLAGS and option not in _GET_FLAGS:
            return None
        expanded.append(option)
    return expanded


def _split_option(token: str) -> tuple[str | None, str | None]:
    """(option, attached value) for `--data=x` and plain options; (None, None) for a word."""
    if token.startswith("--") and len(token) > 2:
        name, equals, value = token.partition("=")
        if equals and name in _VALUE_OPTIONS:
            return name, value
        return token, None
    if token.startswith("-") and len(token) == 2:
        return token, None
    return None, None


def _looks_like_url(token: str) -> bool:
    return "://" in token or bool(re.match(r"[\w.-]+\.[a-z]{2,}(:\d+)?(/|$)", token, re.IGNORECASE))


def _data_urlencode(value: str) -> str | None:
    """curl's --data-urlencode forms: `content`, `=content`, `name=content`; None for @file."""
    name, equals, content = value.partition("=")
    if equals:
        return f"{name}={quote(content, safe='')}" if name else quote(content, safe="")
    if "@" in value:
        return None
    return quote(value, safe="")


def _form_pairs(encoded: str, result: CurlImport) -> list[tuple[str, str]]:
    pairs = parse_qsl(encoded, keep_blank_values=True)
    for key, value in pairs:
        if "\n" in key + value:
            result.warnings.append(f"the value of {key} has a line break, which a Params line cannot hold")
    return [(key, value.replace("\n", " ")) for key, value in pairs]


def _is_json(text: str) -> bool:
    if not text.lstrip().startswith(("{", "[")):
        return False
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((value for key, value in headers if key.lower() == name.lower()), None)


def _drop_header(headers: list[tuple[str, str]], name: str) -> None:
    headers[:] = [(key, value) for key, value in headers if key.lower() != name.lower()]


def _set_default_header(headers: list[tuple[str, str]], name: str, value: str) -> None:
    if _header(headers, name) is None:
        headers.append((name, value))


def _basic_auth(user: str | None, headers: list[tuple[str, str]]) -> tuple[str, str]:
    """(username, password) from -u, or from an `Authorization: Basic …` header (then dropped,
    so the password lands in the secret field)."""
    if user is not None:
        name, _, password = user.partition(":")
        return name, password
    authorization = _header(headers, "Authorization") or ""
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    name, colon, password = decoded.partition(":")
    if not colon:
        return "", ""
    _drop_header(headers, "Authorization")
    return name, password


def _suggestions(params: list[tuple[str, str]], json_body: str) -> list[str]:
    """Hints for sample values that look like the recipient or the text."""
    found: list[tuple[str, str, Any]] = [("params", key, value) for key, value in params]
    if json_body:
        with contextlib.suppress(ValueError):  # a JSON Content-Type over a body that is not JSON
            found += [("raw_body", key, value) for key, value in _json_items(json.loads(json_body))]
    hints = []
    for where, key, value in found:
        if not isinstance(value, str | int) or "$$" in str(value):
            continue
        if key.lower() in RECIPIENT_NAMES:
            hints.append(f"{where}: {key} looks like the recipient; replace its sample value with $$To")
        elif key.lower() in BODY_NAMES:
            hints.append(f"{where}: {key} looks like the message text; replace its sample value with $$Body")
    return hints


def _json_items(node: Any) -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            items.append((key, value))
            items += _json_items(value)
    elif isinstance(node, list):
        for value in node:
            items += _json_items(value)
    return items
