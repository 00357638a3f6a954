"""Small readers every adapter shares: numbers, timestamps, JSON answers and cursors, secrets and
URLs, and the validators settings are checked with. Pure functions, no httpx at import time."""

from __future__ import annotations

import email.utils
import hmac
import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    import httpx

Validator = Callable[[str], str | None]  # a setting's check: returns a reason when the value is bad
RFC2822 = "rfc2822"  # parse_timestamp's format for email-style dates ("Mon, 23 Nov 2026 10:15:02 +0000")
_NOT_A_DIGIT = re.compile(r"\D")
_BASIC_OFFSET = re.compile(r"([+-]\d{2})(\d{2})$")

# --- numbers -----------------------------------------------------------------------------------


def digits(number: str | None) -> str:
    """The digits of a number alone ("+44 7400-123456" → "447400123456"), as most APIs take it."""
    return _NOT_A_DIGIT.sub("", number or "")


def e164(digits_or_number: str | None) -> str | None:
    """A provider's number ("447400123456", "+447400123456", "0044…" stays as is) as E.164 with '+'."""
    if not digits_or_number:
        return None
    value = digits_or_number.strip()
    if re.fullmatch(r"[1-9]\d{6,14}", value):
        return "+" + value
    return value


def parse_price(value: Any) -> float | None:
    """A provider's price ("0.03330000", 0.01, Twilio's "-0.0075": a charge, kept positive) as a
    float; None when it is missing, empty or not a finite number."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        price = abs(float(str(value).strip()))
    except ValueError:
        return None
    return price if math.isfinite(price) else None


def currency_code(value: Any) -> str | None:
    """An ISO 4217 code as stored ("usd" → "USD"); None unless it is three letters."""
    text = str(value or "").strip().upper()
    return text if re.fullmatch(r"[A-Z]{3}", text) else None


# --- times -------------------------------------------------------------------------------------


def parse_timestamp(value: Any, format: str | None = None, *, zone: tzinfo = UTC) -> datetime | None:
    """A provider's time as an aware datetime in UTC; None when it is missing or does not parse.
    `format` None reads ISO 8601 (a trailing Z or +hhmm offset too), RFC2822 an email-style date,
    anything else is a strptime format; `zone` is the time zone of a time that names none."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        if format is None:
            parsed = datetime.fromisoformat(_BASIC_OFFSET.sub(r"\1:\2", text.replace("Z", "+00:00")))
        elif format == RFC2822:
            parsed = email.utils.parsedate_to_datetime(text)
        else:
            parsed = datetime.strptime(text, format)
    except (TypeError, ValueError):
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)).astimezone(UTC)


def parse_smpp_time(value: Any) -> datetime | None:
    """YYMMDDhhmm, the done date of an SMPP delivery receipt (Twilio's RawDlrDoneDate, Vonage's
    scts), taken as UTC."""
    if not isinstance(value, str) or not re.fullmatch(r"\d{10}", value):
        return None
    return parse_timestamp(value, "%y%m%d%H%M")


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


# --- answers, cursors, secrets, URLs -----------------------------------------------------------


def json_object(response: httpx.Response) -> dict[str, Any] | None:
    """The response's JSON body when it is an object, else None (bad JSON, a list, empty)."""
    try:
        payload = response.json()
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def json_body(response: httpx.Response) -> Any:
    """The response's JSON body of any type, None when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def snippet(text: str, limit: int = 200) -> str:
    """A short, single-line excerpt of a response body for an error message."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def load_cursor(cursor: str | None) -> dict[str, Any]:
    """A poll cursor written as a JSON object; anything unreadable starts afresh."""
    if not cursor:
        return {}
    try:
        state = json.loads(cursor)
    except ValueError:
        return {}
    return state if isinstance(state, dict) else {}


def same_secret(left: str, right: str) -> bool:
    """Constant-time comparison of two secrets or signatures."""
    return hmac.compare_digest(left.encode("utf-8"), right.encode("utf-8"))


def add_query(url: str, **params: str) -> str:
    """`url` with `params` added to its query (replacing same-named ones)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query.extend(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


# --- setting validators ----------------------------------------------------------------------


def pattern(regex: str, description: str) -> Validator:
    compiled = re.compile(regex)

    def check(value: str) -> str | None:
        return None if compiled.fullmatch(value) else f"must be {description}"

    return check


def sender_validator(description: str, *numbers: str, alphanumeric: str, numeric: str = r"[0-9 ]+") -> Validator:
    """A sender check: a number matching one of `numbers` (regular expressions), or an alphanumeric
    sender ID matching `alphanumeric` that does not match `numeric` (that would be a mistyped number)."""
    forms = [re.compile(number) for number in numbers]
    alphanumeric_id, mistyped_number = re.compile(alphanumeric), re.compile(numeric)

    def check(value: str) -> str | None:
        if any(form.fullmatch(value) for form in forms):
            return None
        if alphanumeric_id.fullmatch(value) and not mistyped_number.fullmatch(value):
            return None
        return f"must be {description}"

    return check


def http_url(value: str) -> str | None:
    try:
        parts = urlsplit(value)
    except ValueError:
        return "must be an http(s) URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http(s) URL such as https://api.example.com"
    return None


def positive_int(value: str) -> str | None:
    return None if value.isdigit() and int(value) > 0 else "must be a whole number greater than 0"
