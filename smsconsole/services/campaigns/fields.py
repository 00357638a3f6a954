"""Reading a campaign document's fields: a section reader that names every problem by its dotted
field, and the time, date-time and time-zone forms the document is written in."""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any

_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_DATETIME = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T](\d{1,2}:\d{2})(?::(\d{2}))?$")

Problems = list[tuple[str, str]]


class Reader:
    """Reads one section of the document, collecting problems under dotted names."""

    def __init__(self, data: Any, path: str, problems: Problems) -> None:
        self.path = path
        self.problems = problems
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            problems.append((path, "must be a table of fields"))
            data = {}
        self.data = data

    def name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def problem(self, key: str, reason: str) -> None:
        self.problems.append((self.name(key), reason))

    def only(self, known: frozenset[str], has: str) -> None:
        """Name every field this section does not have (a typo, or a field put in the wrong table):
        `has` says what it has, e.g. "when has timezone, at, …"."""
        for key in sorted(set(self.data) - known, key=str):
            self.problem(str(key), f"unknown field; {has}")

    def get(self, key: str) -> Any:
        value = self.data.get(key)
        return None if value == "" else value

    def text(self, key: str, *, max_len: int = 200) -> str | None:
        value = self.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.problem(key, "must be text")
            return None
        value = value.strip()
        if len(value) > max_len:
            self.problem(key, f"must be at most {max_len} characters")
            return None
        if any(ord(ch) < 32 for ch in value):
            self.problem(key, "must not contain control characters")
            return None
        return value or None

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.problem(key, "must be true or false")
            return default
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.get(key)
        if value is None:
            return default
        if not isinstance(value, str) or value.strip().lower() not in choices:
            self.problem(key, f"must be one of {', '.join(choices)}")
            return default
        return value.strip().lower()

    def count(self, key: str, *, low: int = 1, high: int = 1_000_000_000) -> int | None:
        value = self.get(key)
        if value is None:
            return None
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(key, "must be a whole number")
            return None
        if not low <= value <= high:
            self.problem(key, f"must be between {low:,} and {high:,}")
            return None
        return value

    def number(self, key: str, *, low: float, high: float, default: float) -> float:
        value = self.get(key)
        if value is None:
            return default
        if isinstance(value, str):
            try:
                value = float(value.strip().rstrip("%"))
            except ValueError:
                self.problem(key, "must be a number")
                return default
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            self.problem(key, "must be a number")
            return default
        inside = low < value <= high if low == 0 else low <= value <= high
        if not inside:
            self.problem(key, f"must be more than {low:g} and at most {high:g}" if low == 0
                         else f"must be between {low:g} and {high:g}")
            return default
        return float(value)

    def clock_time(self, key: str) -> time | None:
        value = self.get(key)
        if value is None:
            return None
        parsed = parse_time(value) if isinstance(value, str) else None
        if parsed is None:
            self.problem(key, "must be a time of day as HH:MM (24-hour), e.g. 09:30")
        return parsed

    def day(self, key: str) -> date | None:
        value = self.get(key)
        if value is None:
            return None
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        try:
            return date.fromisoformat(value.strip()) if isinstance(value, str) else None
        except ValueError:
            pass
        self.problem(key, "must be a date as YYYY-MM-DD, e.g. 2026-12-24")
        return None

    def mapping(self, key: str) -> dict[str, Any]:
        value = self.data.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.problem(key, "must be a table of fields")
            return {}
        return dict(value)


def parse_time(text: str) -> time | None:
    match = _TIME.match(text.strip())
    if not match:
        return None
    hour, minute = int(match.group(1)), int(match.group(2))
    return time(hour, minute) if hour < 24 and minute < 60 else None


def parse_local(text: Any, zone: zoneinfo.ZoneInfo) -> datetime | None:
    """"2026-12-24 10:00" (or with T, or seconds) as a wall time in `zone`; a datetime is taken as
    is when naive, or converted to the zone when aware (TOML gives datetimes)."""
    if isinstance(text, datetime):
        return text.replace(tzinfo=zone) if text.tzinfo is None else text.astimezone(zone)
    if not isinstance(text, str):
        return None
    match = _DATETIME.match(text.strip())
    if not match:
        return None
    try:
        day = date.fromisoformat(match.group(1))
    except ValueError:
        return None
    moment = parse_time(match.group(2))
    if moment is None:
        return None
    return datetime.combine(day, moment, tzinfo=zone)


def read_zone(reader: Reader, default: str) -> tuple[str, zoneinfo.ZoneInfo]:
    name = reader.text("timezone", max_len=64) or default
    try:
        return name, zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        reader.problem("timezone", "must be a time zone name such as UTC, Europe/London or Asia/Kolkata")
        return "UTC", zoneinfo.ZoneInfo("UTC")


DATETIME_HINT = "must be a date and time as YYYY-MM-DD HH:MM, e.g. 2026-12-24 10:00"
