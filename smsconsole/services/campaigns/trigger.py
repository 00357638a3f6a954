"""A live campaign's trigger in the campaign document (`who.trigger`): the live types, the
Trigger dataclass, reading it (every problem named by its dotted field) and writing it back."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from typing import Any

from smsconsole.services.campaigns.fields import Problems, Reader

LIVE_TYPES = ("action", "inaction", "date")  # live campaigns: each person triggers their own message
LIVE_LABELS = {"action": "Single action", "inaction": "Inaction within time", "date": "On a date"}
REELIGIBLE = ("every_time", "once", "after_days")
MAX_WITHIN_MINUTES = 30 * 24 * 60  # an inaction window of at most 30 days
MAX_DELAY_MINUTES = 7 * 24 * 60
MAX_OFFSET_DAYS = 3650
MAX_WHERE = 20
_DURATION = re.compile(r"^(\d{1,6})\s*(m|min|mins|minutes?|h|hours?|d|days?)?$")


@dataclass(frozen=True)
class Trigger:
    """A live campaign's trigger (the Who of a live campaign; `who.segment` / `who.definition`
    become the optional filter on past behaviour and common properties).

    action: `event` (with `where`, conditions on its properties in the segment language) queues
    the message at once or `delay_minutes` later. inaction: `event` (A) starts a wait of
    `within_minutes`; `cancel_event` (B, with `cancel_where`) arriving in time cancels it, else the
    message goes when the wait ends. date: the date `property` of the profile (or of `event` when
    one is named) ± `offset_days`, at the local time `at`. `reeligible`: every_time, once (ever),
    or after_days (`reeligible_days` since the person's last message of this campaign)."""

    event: str | None = None
    where: tuple[dict[str, Any], ...] = ()
    delay_minutes: int = 0
    cancel_event: str | None = None
    cancel_where: tuple[dict[str, Any], ...] = ()
    within_minutes: int | None = None
    property: str | None = None
    offset_days: int = 0
    at: time = time(9, 0)
    reeligible: str = "every_time"
    reeligible_days: int | None = None




def trigger_dict(t: Trigger) -> dict[str, Any]:
    return {"event": t.event, "where": [dict(w) for w in t.where], "delay_minutes": t.delay_minutes,
            "cancel_event": t.cancel_event, "cancel_where": [dict(w) for w in t.cancel_where],
            "within_minutes": t.within_minutes, "property": t.property, "offset_days": t.offset_days,
            "at": t.at.strftime("%H:%M"), "reeligible": t.reeligible, "reeligible_days": t.reeligible_days}


def parse_minutes(value: Any) -> int | None:
    """5, "5", "5m", "2h", "1d" -> minutes; None when it is not a duration."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        return None
    match = _DURATION.match(value.strip().lower())
    if not match:
        return None
    unit = (match.group(2) or "m")[0]
    return int(match.group(1)) * {"m": 1, "h": 60, "d": 1440}[unit]



def _conditions(r: Reader, key: str) -> tuple[dict[str, Any], ...]:
    """A list of property conditions in the segment language (checked against the catalog when
    the campaign is scheduled); here only their shape."""
    value = r.data.get(key)
    if value in (None, "", []):
        return ()
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, list | tuple):
        r.problem(key, 'must be a list of conditions such as {"property": "amount", "op": "greater", "value": 100}')
        return ()
    if len(value) > MAX_WHERE:
        r.problem(key, f"at most {MAX_WHERE} conditions")
        return ()
    out = []
    for index, item in enumerate(value, 1):
        if not isinstance(item, Mapping) or not isinstance(item.get("property"), str) or not item.get("op"):
            r.problem(f"{key}.{index}", 'must be a condition such as {"property": "amount", "op": "greater", "value": 100}')
            continue
        out.append(dict(item))
    return tuple(out)


TRIGGER_FIELDS = frozenset({"event", "where", "delay_minutes", "within_minutes", "cancel_event", "cancel_where",
                            "property", "offset_days", "at", "reeligible", "reeligible_days"})


def parse_trigger(data: Any, type_: str, problems: Problems, strict: bool) -> Trigger:
    r = Reader(data, "who.trigger", problems)
    r.only(TRIGGER_FIELDS, f"a trigger has {', '.join(sorted(TRIGGER_FIELDS))}")
    event = r.text("event", max_len=128)
    where = _conditions(r, "where")
    minutes: dict[str, int | None] = {}
    for key, high in (("delay_minutes", MAX_DELAY_MINUTES), ("within_minutes", MAX_WITHIN_MINUTES)):
        raw = r.get(key)
        if raw is None:
            minutes[key] = None
            continue
        value = parse_minutes(raw)
        low = 0 if key == "delay_minutes" else 1
        if value is None:
            r.problem(key, "must be a number of minutes, or a duration such as 30m, 2h or 1d")
        elif not low <= value <= high:
            r.problem(key, f"must be between {low} and {high:,} minutes ({high // 1440} days)")
            value = None
        minutes[key] = value
    cancel_event = r.text("cancel_event", max_len=128)
    cancel_where = _conditions(r, "cancel_where")
    prop = r.text("property", max_len=128)
    offset = r.get("offset_days")
    offset_days = 0
    if offset is not None:
        if isinstance(offset, str) and re.fullmatch(r"\s*[+-]?\d{1,4}\s*", offset):
            offset = int(offset)
        if isinstance(offset, bool) or not isinstance(offset, int):
            r.problem("offset_days", "must be a whole number of days (negative: before the date)")
        elif not -MAX_OFFSET_DAYS <= offset <= MAX_OFFSET_DAYS:
            r.problem("offset_days", f"must be between -{MAX_OFFSET_DAYS} and {MAX_OFFSET_DAYS}")
        else:
            offset_days = offset
    at = r.clock_time("at")
    reeligible = r.choice("reeligible", REELIGIBLE, "every_time")
    days = r.count("reeligible_days", low=1, high=3650)
    if reeligible == "after_days" and days is None and r.get("reeligible_days") is None:
        r.problem("reeligible_days", "say after how many days a person may get this campaign again")
    if type_ in ("action", "inaction") and not event and strict:
        r.problem("event", "choose the event that triggers the campaign")
    if type_ == "inaction":
        if strict and not cancel_event:
            r.problem("cancel_event", "choose the event that must follow in time (e.g. checkout after add_to_cart)")
        if strict and minutes["within_minutes"] is None and r.get("within_minutes") is None:
            r.problem("within_minutes", "say how long to wait for the follow-up event, e.g. 5m, 2h, 1d")
    if type_ == "date" and strict and not prop:
        r.problem("property", "choose the date property (of the profile, or of the event named)")
    for key, allowed in (("delay_minutes", ("action",)), ("cancel_event", ("inaction",)),
                         ("within_minutes", ("inaction",)), ("property", ("date",))):
        if r.get(key) not in (None, 0) and type_ not in allowed:
            r.problem(key, f"applies only to {' / '.join(LIVE_LABELS[t] for t in allowed)} campaigns")
    return Trigger(event=event, where=where, delay_minutes=minutes["delay_minutes"] or 0, cancel_event=cancel_event,
                   cancel_where=cancel_where, within_minutes=minutes["within_minutes"], property=prop,
                   offset_days=offset_days, at=at or time(9, 0), reeligible=reeligible,
                   reeligible_days=days if reeligible == "after_days" else None)


