"""The campaign document: what an operator writes (the CLI's `--file`, the wizard's steps) and
what a run snapshots. `parse_document` turns the JSON-like mapping into typed, validated
dataclasses and names every problem as (dotted field, reason).

Times: `when.at` and `when.dates` are wall-clock times in `when.timezone`, returned as aware
datetimes whose tzinfo is that ZoneInfo (fold 0): the wall time is kept as written, so the
schedule can apply its daylight-saving rules (services/campaigns/schedule.py). "now" stays the
string "now". A recurrence's `start` may be None: the run dates start when it is scheduled.

A draft keeps whatever was filled in (the caller stores the mapping as given); `strict=False`
returns the problems too, so the wizard and `campaigns show` can list what scheduling will ask
for. `strict=True` adds the problems only scheduling cares about (a body, an audience, a time)."""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time
from typing import Any

CAMPAIGN_TYPES = ("one_time", "multiple_dates", "recurring")
SCHEDULED_TYPES = CAMPAIGN_TYPES  # past-behaviour campaigns; live types arrive with issue 14
TYPE_LABELS = {"one_time": "One time", "multiple_dates": "Multiple dates", "recurring": "Recurring"}
EVERY = ("day", "week", "month")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LATE_CHOICES = ("next_day", "skip")
DND_ACTIONS = ("delay", "discard")
LINKED_FAILURE = ("skip", "abort")
MAX_DATES = 100
MAX_BODY = 1600
NAME_MAX = 120

_CODE = re.compile(r"^[cC]?(\d{1,18})$")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_DATETIME = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T](\d{1,2}:\d{2})(?::(\d{2}))?$")

Problems = list[tuple[str, str]]


def campaign_code(campaign_id: int) -> str:
    """The Campaign ID people see: C12."""
    return f"C{campaign_id}"


def parse_code(text: str) -> int | None:
    """12, C12 or c12 -> 12; anything else None (it may be a name)."""
    match = _CODE.match(text.strip())
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class Recurrence:
    every: str  # day | week | month
    interval: int = 1
    weekdays: tuple[int, ...] = ()  # 0 = Monday; week only
    day_of_month: int | None = None  # month only; 29-31 fall on a shorter month's last day
    time: time = time(9, 0)
    start: date | None = None  # None: from the moment it is scheduled
    end: date | None = None  # inclusive


@dataclass(frozen=True)
class Dnd:
    start: time
    end: time
    action: str = "delay"  # delay | discard


@dataclass(frozen=True)
class When:
    timezone: str = "UTC"
    at: datetime | str | None = None  # one_time: aware (tzinfo = timezone) or "now"
    dates: tuple[datetime, ...] = ()  # multiple_dates, sorted
    recurrence: Recurrence | None = None
    user_timezone: bool = False
    late: str = "next_day"  # next_day | skip
    dnd: Dnd | None = None
    ignore_global_limits: bool = False


@dataclass(frozen=True)
class Who:
    segment: str | None = None
    definition: dict[str, Any] | None = None
    reach_percent: float = 100.0
    target_limit: int | None = None
    run_limit: int | None = None
    daily_limit: int | None = None
    safety_limit: int | None = None


@dataclass(frozen=True)
class What:
    route_group: str | None = None
    route_provider: str | None = None
    sender: str | None = None
    body: str = ""
    generic: dict[str, Any] = field(default_factory=dict)  # template_id, template_variables, *_values
    dlt: dict[str, str] = field(default_factory=dict)
    linked_timeout: float = 3.0
    linked_on_failure: str = "skip"  # skip | abort


@dataclass(frozen=True)
class CampaignDocument:
    name: str
    type: str
    when: When
    who: Who
    what: What

    def to_dict(self) -> dict[str, Any]:
        """The canonical mapping (what `parse_document` reads back to an equal document)."""
        return document_dict(self)


def _fmt_local(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.strftime("%Y-%m-%d %H:%M")


def document_dict(doc: CampaignDocument) -> dict[str, Any]:
    when = doc.when
    recurrence = None
    if when.recurrence is not None:
        r = when.recurrence
        recurrence = {"every": r.every, "interval": r.interval, "weekdays": [WEEKDAYS[d] for d in r.weekdays],
                      "day_of_month": r.day_of_month, "time": r.time.strftime("%H:%M"),
                      "start": r.start.isoformat() if r.start else None, "end": r.end.isoformat() if r.end else None}
    route: dict[str, str] = {}
    if doc.what.route_group:
        route["group"] = doc.what.route_group
    elif doc.what.route_provider:
        route["provider"] = doc.what.route_provider
    who = asdict(doc.who)
    return {
        "name": doc.name,
        "type": doc.type,
        "when": {
            "timezone": when.timezone, "at": _fmt_local(when.at), "dates": [_fmt_local(d) for d in when.dates],
            "recurrence": recurrence, "user_timezone": when.user_timezone, "late": when.late,
            "dnd": ({"start": when.dnd.start.strftime("%H:%M"), "end": when.dnd.end.strftime("%H:%M"),
                     "action": when.dnd.action} if when.dnd else None),
            "ignore_global_limits": when.ignore_global_limits,
        },
        "who": who,
        "what": {"route": route, "sender": doc.what.sender, "body": doc.what.body, "generic": dict(doc.what.generic),
                 "dlt": dict(doc.what.dlt),
                 "linked_content": {"timeout": doc.what.linked_timeout, "on_failure": doc.what.linked_on_failure}},
    }


class _Reader:
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


def _zone(reader: _Reader, default: str) -> tuple[str, zoneinfo.ZoneInfo]:
    name = reader.text("timezone", max_len=64) or default
    try:
        return name, zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        reader.problem("timezone", "must be a time zone name such as UTC, Europe/London or Asia/Kolkata")
        return "UTC", zoneinfo.ZoneInfo("UTC")


_DATETIME_HINT = "must be a date and time as YYYY-MM-DD HH:MM, e.g. 2026-12-24 10:00"


def _parse_recurrence(data: Any, path: str, problems: Problems, strict: bool) -> Recurrence | None:
    if data is None:
        if strict:
            problems.append((path, "a recurring campaign needs a recurrence (every, time, ...)"))
        return None
    r = _Reader(data, path, problems)
    every = r.get("every")
    if every is None or (isinstance(every, str) and every.strip().lower() not in EVERY):
        if every is not None or strict:
            r.problem("every", "must be one of day, week, month")
        return None
    every = str(every).strip().lower()
    interval = r.count("interval", low=1, high=366) or 1
    weekdays: tuple[int, ...] = ()
    raw_days = r.get("weekdays")
    if raw_days is not None:
        names = raw_days.split(",") if isinstance(raw_days, str) else raw_days
        days: list[int] = []
        if not isinstance(names, list | tuple):
            r.problem("weekdays", "must be a list of days such as mon, thu")
        else:
            for name in names:
                key = str(name).strip().lower()[:3]
                if key not in WEEKDAYS:
                    r.problem("weekdays", f"{str(name)[:20]!r} is not a day; use mon, tue, wed, thu, fri, sat, sun")
                    break
                days.append(WEEKDAYS.index(key))
        weekdays = tuple(sorted(set(days)))
    if every == "week" and not weekdays and strict:
        r.problem("weekdays", "choose at least one day of the week")
    day_of_month = r.count("day_of_month", low=1, high=31)
    if every == "month" and r.get("day_of_month") is None and strict:
        r.problem("day_of_month", "choose a day of the month, 1 to 31")
    at = r.clock_time("time")
    if at is None and strict and r.get("time") is None:
        r.problem("time", "choose the time of day the campaign runs, HH:MM")
    start = r.day("start")
    end = r.day("end")
    if start and end and end < start:
        r.problem("end", "must be on or after the start date")
    return Recurrence(every=every, interval=interval, weekdays=weekdays if every == "week" else (),
                      day_of_month=day_of_month if every == "month" else None, time=at or time(9, 0),
                      start=start, end=end)


def _parse_when(data: Any, type_: str, default_tz: str, problems: Problems, strict: bool) -> When:
    r = _Reader(data, "when", problems)
    tz_name, zone = _zone(r, default_tz)
    at: datetime | str | None = None
    dates: tuple[datetime, ...] = ()
    recurrence = None
    if type_ == "one_time":
        raw = r.get("at")
        if isinstance(raw, str) and raw.strip().lower() == "now":
            at = "now"
        elif raw is not None:
            at = parse_local(raw, zone)
            if at is None:
                r.problem("at", _DATETIME_HINT + ", or now")
        elif strict:
            r.problem("at", "choose when it is sent: now, or a date and time")
    elif type_ == "multiple_dates":
        raw = r.data.get("dates")
        if raw is None or raw == [] or raw == "":
            if strict:
                r.problem("dates", "add at least one date and time")
        elif not isinstance(raw, list | tuple):
            r.problem("dates", "must be a list of dates and times")
        elif len(raw) > MAX_DATES:
            r.problem("dates", f"at most {MAX_DATES} dates")
        else:
            parsed: list[datetime] = []
            for index, item in enumerate(raw, 1):
                moment = parse_local(item, zone)
                if moment is None:
                    problems.append((f"when.dates.{index}", _DATETIME_HINT))
                elif moment in parsed:
                    problems.append((f"when.dates.{index}", "this date and time is listed twice"))
                else:
                    parsed.append(moment)
            dates = tuple(sorted(parsed, key=lambda d: (d.date(), d.time())))
    elif type_ == "recurring":
        recurrence = _parse_recurrence(r.data.get("recurrence"), "when.recurrence", problems, strict)
    user_timezone = r.flag("user_timezone")
    late = r.choice("late", LATE_CHOICES, "next_day")
    dnd = None
    raw_dnd = r.data.get("dnd")
    if raw_dnd not in (None, {}, ""):
        d = _Reader(raw_dnd, "when.dnd", problems)
        start, end = d.clock_time("start"), d.clock_time("end")
        action = d.choice("action", DND_ACTIONS, "delay")
        if start is None and d.get("start") is None:
            d.problem("start", "do-not-disturb hours need a start time, HH:MM")
        if end is None and d.get("end") is None:
            d.problem("end", "do-not-disturb hours need an end time, HH:MM")
        if start is not None and end is not None:
            if start == end:
                d.problem("end", "must differ from the start (the window would be empty or the whole day)")
            else:
                dnd = Dnd(start, end, action)
    return When(timezone=tz_name, at=at, dates=dates, recurrence=recurrence, user_timezone=user_timezone,
                late=late, dnd=dnd, ignore_global_limits=r.flag("ignore_global_limits"))


def _parse_who(data: Any, problems: Problems, strict: bool) -> Who:
    r = _Reader(data, "who", problems)
    segment = r.text("segment", max_len=120)
    definition = r.data.get("definition")
    if definition is not None and not isinstance(definition, Mapping):
        r.problem("definition", "must be a segment definition (a table)")
        definition = None
    if segment and definition:
        r.problem("segment", "choose a saved segment or an ad-hoc definition, not both")
    elif strict and not segment and not definition:
        r.problem("segment", "choose a saved segment or build an ad-hoc one")
    limits = {key: r.count(key) for key in ("target_limit", "run_limit", "daily_limit", "safety_limit")}
    return Who(segment=segment, definition=dict(definition) if definition else None,
               reach_percent=r.number("reach_percent", low=0, high=100, default=100.0), **limits)


def _string_map(r: _Reader, key: str, source: Mapping[str, Any]) -> dict[str, str]:
    value = source.get(key)
    if value in (None, ""):
        return {}
    if not isinstance(value, Mapping):
        r.problem(key, "must be a table of names and values")
        return {}
    out: dict[str, str] = {}
    for name, item in value.items():
        if not isinstance(name, str) or not name.strip():
            r.problem(key, "names must be non-empty text")
            continue
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            r.problem(f"{key}.{name}", "must be text")
            continue
        out[name.strip()] = str(item)
    return out


def _parse_what(data: Any, problems: Problems, strict: bool) -> What:
    r = _Reader(data, "what", problems)
    route = r.mapping("route")
    group = provider = None
    if route:
        rr = _Reader(route, "what.route", problems)
        group, provider = rr.text("group", max_len=64), rr.text("provider", max_len=64)
        if group and provider:
            rr.problem("group", "route through a group or a single provider, not both")
        unknown = set(route) - {"group", "provider"}
        if unknown:
            rr.problem(sorted(unknown)[0], "unknown route field; use group or provider")
    raw_body = r.data.get("body")
    body = ""
    if raw_body is not None and not isinstance(raw_body, str):
        r.problem("body", "must be text")
    elif raw_body is not None:
        body = raw_body
        if len(body) > MAX_BODY:
            r.problem("body", f"must be at most {MAX_BODY} characters (about 10 SMS parts)")
        elif "\x00" in body:
            r.problem("body", "must not contain NUL characters")
    if strict and not body.strip():
        r.problem("body", "write the message")
    generic_in = r.mapping("generic")
    g = _Reader(generic_in, "what.generic", problems)
    generic: dict[str, Any] = {}
    template_id = g.text("template_id", max_len=128)
    if template_id:
        generic["template_id"] = template_id
    variables = generic_in.get("template_variables")
    if variables not in (None, "", []):
        if not isinstance(variables, list | tuple) or not all(isinstance(v, str | int | float) and not isinstance(v, bool)
                                                              for v in variables):
            g.problem("template_variables", "must be a list of values, in the order the template uses them")
        else:
            generic["template_variables"] = [str(v) for v in variables]
    for key in ("body_values", "header_values", "global_values"):
        values = _string_map(g, key, generic_in)
        if values:
            generic[key] = values
    dlt = _string_map(r, "dlt", r.data)
    linked = _Reader(r.data.get("linked_content"), "what.linked_content", problems)
    return What(route_group=group, route_provider=provider, sender=r.text("sender", max_len=64), body=body,
                generic=generic, dlt=dlt,
                linked_timeout=linked.number("timeout", low=0, high=30, default=3.0),
                linked_on_failure=linked.choice("on_failure", LINKED_FAILURE, "skip"))


def check_name(value: Any) -> tuple[str | None, str | None]:
    """(clean name, None) or (None, reason)."""
    if not isinstance(value, str) or not value.strip():
        return None, "give the campaign a name"
    name = " ".join(value.split())
    if len(name) > NAME_MAX:
        return None, f"must be at most {NAME_MAX} characters"
    if any(ord(ch) < 32 for ch in value):
        return None, "must not contain control characters"
    return name, None


def parse_document(data: Any, *, default_timezone: str = "UTC",
                   strict: bool = False) -> tuple[CampaignDocument, Problems]:
    """The document as dataclasses, and every problem as (dotted field, reason). With
    strict=False only what is filled in is checked (a draft); strict=True also asks for what a
    schedule needs."""
    problems: Problems = []
    if not isinstance(data, Mapping):
        problems.append(("document", "must be a table of fields (name, type, when, who, what)"))
        return CampaignDocument("", "one_time", When(), Who(), What()), problems
    name, reason = check_name(data.get("name"))
    if reason:
        problems.append(("name", reason))
    raw_type = data.get("type")
    type_ = raw_type.strip().lower() if isinstance(raw_type, str) else None
    if type_ not in CAMPAIGN_TYPES:
        if raw_type not in (None, "") or strict:
            problems.append(("type", f"must be one of {', '.join(CAMPAIGN_TYPES)}"))
        type_ = "one_time"
    unknown = sorted(set(data) - {"name", "type", "when", "who", "what", "id", "code", "state"})
    for key in unknown:
        problems.append((str(key), "unknown field; a campaign has name, type, when, who and what"))
    document = CampaignDocument(
        name=name or "",
        type=type_,
        when=_parse_when(data.get("when"), type_, default_timezone, problems, strict),
        who=_parse_who(data.get("who"), problems, strict),
        what=_parse_what(data.get("what"), problems, strict),
    )
    return document, problems
