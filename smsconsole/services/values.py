"""Typed property values: inference from text, coercion, and one stored form per type.

Stored forms (JSON): string → str, number → int or float, boolean → bool, date → ISO-8601 UTC
string "YYYY-MM-DDTHH:MM:SSZ" (so string order is time order in SQL), list → list of strings."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

TYPES = ("string", "number", "boolean", "date", "list")
_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?")


def format_datetime(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_datetime(text: str) -> datetime:
    """An ISO-8601 date or date-time (naive means UTC), or unix seconds. ValueError with a reason."""
    text = text.strip()
    if re.fullmatch(r"\d{9,10}(\.\d+)?", text):
        return datetime.fromtimestamp(float(text), UTC)
    if not _DATE.fullmatch(text):
        raise ValueError(f"{text!r} is not a date (use ISO 8601, e.g. 2026-01-31 or 2026-01-31T09:30:00Z)")
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise ValueError(f"{text!r} is not a valid date") from None
    try:
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00 is before year 1 in UTC
        raise ValueError(f"{text!r} is out of range (years 1 to 9999 in UTC)") from None


def coerce(value: Any, type_: str) -> Any:
    """A raw value (text from CSV, or JSON from the API) in its stored form. ValueError says why."""
    if type_ == "string":
        if isinstance(value, (dict, list)):
            raise ValueError("expected text, got a structure")
        return value if isinstance(value, str) else json.dumps(value)
    if type_ == "number":
        if isinstance(value, bool):
            raise ValueError("expected a number, got true/false")
        if isinstance(value, (int, float)):
            number = value
        elif isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
            text = value.strip()
            number = float(text) if any(c in text for c in ".eE") else int(text)
        else:
            raise ValueError(f"{value!r} is not a number")
        if isinstance(number, float) and not math.isfinite(number):
            raise ValueError(f"{value!r} is not a finite number")
        return number
    if type_ == "boolean":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"{value!r} is not true or false")
    if type_ == "date":
        if isinstance(value, datetime):
            return format_datetime(value)
        if isinstance(value, date):
            return format_datetime(datetime(value.year, value.month, value.day, tzinfo=UTC))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                return format_datetime(datetime.fromtimestamp(value, UTC))
            except (OverflowError, OSError, ValueError):
                raise ValueError(f"{value!r} is out of range as unix seconds") from None
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not a date")
        return format_datetime(parse_datetime(value))
    if type_ == "list":
        if isinstance(value, list):
            items = value
        elif isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    items = json.loads(text)
                except json.JSONDecodeError:
                    raise ValueError(f"{value!r} is not a JSON list") from None
                if not isinstance(items, list):
                    raise ValueError(f"{value!r} is not a list")
            else:
                items = [part.strip() for part in text.split("|") if part.strip()]
        else:
            raise ValueError(f"{value!r} is not a list")
        if any(isinstance(item, (dict, list)) for item in items):
            raise ValueError("list items must be plain values")
        return [item if isinstance(item, str) else json.dumps(item) for item in items]
    raise ValueError(f"unknown type {type_!r}")


def infer_type(samples: Iterable[Any]) -> str:
    """The narrowest type every non-empty sample fits: boolean, number, date, list, else string."""
    values = [v for v in samples if v is not None and v != ""]
    if not values:
        return "string"
    for candidate in ("boolean", "number", "date", "list"):
        if candidate == "list" and not all(isinstance(v, list) or (isinstance(v, str) and v.strip().startswith("[")) for v in values):
            continue
        try:
            for value in values:
                coerce(value, candidate)
        except ValueError:
            continue
        return candidate
    return "string"


def infer_json_type(value: Any) -> str:
    """The type of a JSON value from the API (strings that look like ISO dates are dates)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, list):
        return "list"
    if isinstance(value, str) and _DATE.fullmatch(value.strip()):
        return "date"
    return "string"
