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
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time
from typing import Any

from smsconsole.services.campaigns.arms import (
    CONTROL,
    Goal,
    Variant,
    goal_dict,
    parse_goal,
    parse_variants,
    variants_dict,
)
from smsconsole.services.campaigns.fields import (
    DATETIME_HINT,
    Problems,
    Reader,
    parse_local,
    parse_time,
    read_zone,
)
from smsconsole.services.campaigns.policy import (
    Budget,
    Compliance,
    budget_dict,
    compliance_dict,
    parse_budget,
    parse_compliance,
)
from smsconsole.services.campaigns.reply_options import ReplyOptions, parse_replies, replies_dict
from smsconsole.services.campaigns.trigger import (
    LIVE_LABELS,
    LIVE_TYPES,
    MAX_DELAY_MINUTES,
    MAX_OFFSET_DAYS,
    MAX_WHERE,
    MAX_WITHIN_MINUTES,
    REELIGIBLE,
    Trigger,
    parse_minutes,
    parse_trigger,
    trigger_dict,
)

__all__ = [  # the trigger's, the arms' and the fields' names are read from here too
    "CONTROL", "Goal", "Variant", "DATETIME_HINT", "LIVE_TYPES", "MAX_DELAY_MINUTES", "MAX_OFFSET_DAYS", "MAX_WHERE", "MAX_WITHIN_MINUTES",
    "REELIGIBLE", "Problems", "Reader", "Trigger", "parse_local", "parse_minutes", "parse_time", "trigger_dict",
]

SCHEDULED_TYPES = ("one_time", "multiple_dates", "recurring")  # past-behaviour campaigns: runs to a segment
CAMPAIGN_TYPES = SCHEDULED_TYPES + LIVE_TYPES
TYPE_LABELS = {"one_time": "One time", "multiple_dates": "Multiple dates", "recurring": "Recurring", **LIVE_LABELS}
EVERY = ("day", "week", "month")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LATE_CHOICES = ("next_day", "skip")
DND_ACTIONS = ("delay", "discard")
LINKED_FAILURE = ("skip", "abort")
MAX_DATES = 100
MAX_BODY = 1600
NAME_MAX = 120

_CODE = re.compile(r"^[cC]?(\d{1,18})$")


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
    start: datetime | None = None  # live types: from (aware, tzinfo = timezone); None = when scheduled
    end: datetime | None = None  # live types: until (exclusive); None = until stopped or the target limit


@dataclass(frozen=True)
class Who:
    segment: str | None = None
    definition: dict[str, Any] | None = None
    reach_percent: float = 100.0
    target_limit: int | None = None
    run_limit: int | None = None
    daily_limit: int | None = None
    safety_limit: int | None = None
    trigger: Trigger | None = None  # live types only


@dataclass(frozen=True)
class What:
    """The message. `body`, `generic` and `dlt` are variant A's (the only one in the single-variant
    form); `variants` lists every variant (A first, never empty once parsed), `control` the percent
    held out (services/campaigns/arms.py)."""

    route_group: str | None = None
    route_provider: str | None = None
    sender: str | None = None
    body: str = ""
    generic: dict[str, Any] = field(default_factory=dict)  # template_id, template_variables, *_values
    dlt: dict[str, str] = field(default_factory=dict)
    linked_timeout: float = 3.0
    linked_on_failure: str = "skip"  # skip | abort
    variants: tuple[Variant, ...] = ()
    control: float = 0.0

    @property
    def arms(self) -> tuple[Variant, ...]:
        """The variants, or variant A from `body` when none were parsed (a What built by hand)."""
        return self.variants or (Variant("A", self.body, 100.0 - self.control, dict(self.generic), dict(self.dlt)),)

    def variant(self, name: str | None) -> Variant:
        """Variant `name` ("A"…"E"); A for None or a name it does not have."""
        arms = self.arms
        return next((v for v in arms if v.name == name), arms[0])


@dataclass(frozen=True)
class CampaignDocument:
    name: str
    type: str
    when: When
    who: Who
    what: What
    goal: Goal | None = None
    compliance: Compliance = field(default_factory=Compliance)
    budget: Budget | None = None
    replies: ReplyOptions | None = None  # reply options (services/campaigns/reply_options.py)

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
    who["trigger"] = trigger_dict(doc.who.trigger) if doc.who.trigger is not None else None
    if doc.type not in LIVE_TYPES:
        who.pop("trigger")
    when_dict: dict[str, Any] = {}
    if doc.type in LIVE_TYPES:
        when_dict = {"start": _fmt_local(when.start), "end": _fmt_local(when.end)}
    return {
        "name": doc.name,
        "type": doc.type,
        "when": {
            "timezone": when.timezone, "at": _fmt_local(when.at), "dates": [_fmt_local(d) for d in when.dates],
            "recurrence": recurrence, "user_timezone": when.user_timezone, "late": when.late,
            "dnd": ({"start": when.dnd.start.strftime("%H:%M"), "end": when.dnd.end.strftime("%H:%M"),
                     "action": when.dnd.action} if when.dnd else None),
            "ignore_global_limits": when.ignore_global_limits,
            **when_dict,
        },
        "who": who,
        "what": {"route": route, "sender": doc.what.sender, **variants_dict(doc.what.arms, doc.what.control),
                 "linked_content": {"timeout": doc.what.linked_timeout, "on_failure": doc.what.linked_on_failure}},
        **({"goal": goal_dict(doc.goal)} if doc.goal is not None else {}),
        **({"compliance": c} if (c := compliance_dict(doc.compliance)) else {}),
        **({"budget": budget_dict(doc.budget)} if doc.budget is not None else {}),
        **({"replies": replies_dict(doc.replies)} if doc.replies is not None else {}),
    }




WHEN_FIELDS = frozenset({"timezone", "at", "dates", "recurrence", "start", "end", "user_timezone", "late", "dnd",
                         "ignore_global_limits"})
RECURRENCE_FIELDS = frozenset({"every", "interval", "weekdays", "day_of_month", "time", "start", "end"})
DND_FIELDS = frozenset({"start", "end", "action"})
WHO_FIELDS = frozenset({"segment", "definition", "reach_percent", "target_limit", "run_limit", "daily_limit",
                        "safety_limit", "trigger"})
WHAT_FIELDS = frozenset({"route", "sender", "body", "generic", "dlt", "linked_content", "variants", "control"})
GENERIC_FIELDS = frozenset({"template_id", "template_variables", "body_values", "header_values", "global_values"})
LINKED_FIELDS = frozenset({"timeout", "on_failure"})


def _fields(names: frozenset[str]) -> str:
    return ", ".join(sorted(names))


def _parse_recurrence(data: Any, path: str, problems: Problems, strict: bool) -> Recurrence | None:
    if data is None:
        if strict:
            problems.append((path, "a recurring campaign needs a recurrence (every, time, ...)"))
        return None
    r = Reader(data, path, problems)
    r.only(RECURRENCE_FIELDS, f"a recurrence has {_fields(RECURRENCE_FIELDS)}")
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
    r = Reader(data, "when", problems)
    r.only(WHEN_FIELDS, f"when has {_fields(WHEN_FIELDS)}")
    tz_name, zone = read_zone(r, default_tz)
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
                r.problem("at", DATETIME_HINT + ", or now")
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
                    problems.append((f"when.dates.{index}", DATETIME_HINT))
                elif moment in parsed:
                    problems.append((f"when.dates.{index}", "this date and time is listed twice"))
                else:
                    parsed.append(moment)
            dates = tuple(sorted(parsed, key=lambda d: (d.date(), d.time())))
    elif type_ == "recurring":
        recurrence = _parse_recurrence(r.data.get("recurrence"), "when.recurrence", problems, strict)
    live_start = live_end = None
    if type_ in LIVE_TYPES:
        for key in ("start", "end"):
            raw = r.get(key)
            if raw is None or (isinstance(raw, str) and raw.strip().lower() == "now" and key == "start"):
                continue
            moment = parse_local(raw, zone)
            if moment is None:
                r.problem(key, DATETIME_HINT + (", or now" if key == "start" else ""))
            elif key == "start":
                live_start = moment
            else:
                live_end = moment
        if live_start is not None and live_end is not None and live_end <= live_start:
            r.problem("end", "must be after the start")
    user_timezone = r.flag("user_timezone")
    late = r.choice("late", LATE_CHOICES, "next_day")
    dnd = None
    raw_dnd = r.data.get("dnd")
    if raw_dnd not in (None, {}, ""):
        d = Reader(raw_dnd, "when.dnd", problems)
        d.only(DND_FIELDS, "do-not-disturb hours have start, end and action")
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
                late=late, dnd=dnd, ignore_global_limits=r.flag("ignore_global_limits"), start=live_start,
                end=live_end)


def _parse_who(data: Any, problems: Problems, strict: bool, type_: str = "one_time") -> Who:
    r = Reader(data, "who", problems)
    r.only(WHO_FIELDS, f"who has {_fields(WHO_FIELDS)}")
    live = type_ in LIVE_TYPES
    segment = r.text("segment", max_len=120)
    definition = r.data.get("definition")
    if definition is not None and not isinstance(definition, Mapping):
        r.problem("definition", "must be a segment definition (a table)")
        definition = None
    if segment and definition:
        r.problem("segment", "choose a saved segment or an ad-hoc definition, not both")
    elif strict and not segment and not definition and not live:
        r.problem("segment", "choose a saved segment or build an ad-hoc one")
    limits = {key: r.count(key) for key in ("target_limit", "run_limit", "daily_limit", "safety_limit")}
    trigger = None
    if live:
        for key in ("run_limit", "safety_limit"):
            if limits[key] is not None:
                r.problem(key, "applies to scheduled campaigns; a live campaign uses daily_limit and target_limit")
                limits[key] = None
        raw = r.data.get("trigger")
        if raw is None and strict:
            r.problem("trigger", "a live campaign needs a trigger (the event, or the date property)")
        trigger = parse_trigger(raw, type_, problems, strict)
    elif r.data.get("trigger") not in (None, {}):
        r.problem("trigger", "only live campaigns (action, inaction, date) have a trigger")
    return Who(segment=segment, definition=dict(definition) if definition else None,
               reach_percent=r.number("reach_percent", low=0, high=100, default=100.0), trigger=trigger, **limits)


def _string_map(r: Reader, key: str, source: Mapping[str, Any]) -> dict[str, str]:
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
    r = Reader(data, "what", problems)
    r.only(WHAT_FIELDS, f"what has {_fields(WHAT_FIELDS)} (compliance and budget are top-level tables)")
    route = r.mapping("route")
    group = provider = None
    if route:
        rr = Reader(route, "what.route", problems)
        group, provider = rr.text("group", max_len=64), rr.text("provider", max_len=64)
        if group and provider:
            rr.problem("group", "route through a group or a single provider, not both")
        unknown = set(route) - {"group", "provider"}
        if unknown:
            rr.problem(sorted(unknown)[0], "unknown route field; use group or provider")
    variants, control = parse_variants(r, lambda reader: _read_message(reader, strict))
    a = variants[0]
    linked = Reader(r.data.get("linked_content"), "what.linked_content", problems)
    linked.only(LINKED_FIELDS, "linked_content has timeout and on_failure")
    return What(route_group=group, route_provider=provider, sender=r.text("sender", max_len=64), body=a.body,
                generic=dict(a.generic), dlt=dict(a.dlt),
                linked_timeout=linked.number("timeout", low=0, high=30, default=3.0),
                linked_on_failure=linked.choice("on_failure", LINKED_FAILURE, "skip"),
                variants=variants, control=control)


def _read_message(r: Reader, strict: bool) -> tuple[str, dict[str, Any], dict[str, str]]:
    """One variant's body, Generic fields and DLT fields (the section `r` reads: what, or a variant)."""
    problems = r.problems
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
    g = Reader(generic_in, f"{r.path}.generic", problems)
    g.only(GENERIC_FIELDS, f"generic has {_fields(GENERIC_FIELDS)}")
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
    return body, generic, dlt


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
    unknown = sorted(set(data) - {"name", "type", "when", "who", "what", "goal", "compliance", "budget", "replies",
                                  "id", "code", "state"})
    for key in unknown:
        problems.append((str(key), "unknown field; a campaign has name, type, when, who, what, goal, compliance, "
                                   "budget and replies"))
    document = CampaignDocument(
        name=name or "",
        type=type_,
        when=_parse_when(data.get("when"), type_, default_timezone, problems, strict),
        who=_parse_who(data.get("who"), problems, strict, type_),
        what=_parse_what(data.get("what"), problems, strict),
        goal=parse_goal(data.get("goal"), problems),
        compliance=parse_compliance(data.get("compliance"), problems),
        budget=parse_budget(data.get("budget"), problems),
        replies=parse_replies(data.get("replies"), problems),
    )
    return document, problems
