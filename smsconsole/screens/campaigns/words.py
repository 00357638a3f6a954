"""A campaign document (the campaign file's mapping, maybe an incomplete draft) in words, for the
Summary step and the campaign page. Pure functions."""

from __future__ import annotations

from typing import Any

from smsconsole.services.segments.descriptions import describe_definition

DAY_WORDS = {"mon": "Mon", "tue": "Tue", "wed": "Wed", "thu": "Thu", "fri": "Fri", "sat": "Sat", "sun": "Sun"}
STATE_STYLES = {"draft": "dim", "scheduled": "cyan", "running": "bold green", "paused": "yellow",
                "stopped": "magenta", "completed": "green", "blocked": "bold red", "missed": "yellow",
                "failed": "bold red", "planned": "cyan", "materializing": "bold cyan"}


def _section(document: dict[str, Any], name: str) -> dict[str, Any]:
    value = document.get(name)
    return value if isinstance(value, dict) else {}


def _nth(day: Any) -> str:
    try:
        n = int(day)
    except (TypeError, ValueError):
        return "?"
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def when_lines(document: dict[str, Any]) -> list[str]:
    when = _section(document, "when")
    kind = document.get("type") or "one_time"
    zone = when.get("timezone") or "the default time zone"
    lines: list[str] = []
    if kind == "one_time":
        at = when.get("at")
        lines.append("Send now, when scheduled" if at == "now" else f"Send once at {at or '(no time yet)'} ({zone})")
    elif kind == "multiple_dates":
        dates = [str(d) for d in when.get("dates") or []]
        lines.append(f"Send on {len(dates)} date{'s' if len(dates) != 1 else ''}: {', '.join(dates) or '(none yet)'}"
                     f" ({zone})")
    else:
        rec = when.get("recurrence") if isinstance(when.get("recurrence"), dict) else {}
        every, interval = rec.get("every") or "day", rec.get("interval") or 1
        unit = {"day": "day", "week": "week", "month": "month"}.get(every, every)
        head = f"every {unit}" if str(interval) == "1" else f"every {interval} {unit}s"
        if every == "week":
            days = ", ".join(DAY_WORDS.get(d, str(d)) for d in rec.get("weekdays") or []) or "(no days yet)"
            head += f" on {days}"
        elif every == "month":
            head += f" on the {_nth(rec.get('day_of_month'))} (the month's last day when shorter)"
        span = f"from {rec.get('start') or 'when scheduled'}" + (f" until {rec['end']}" if rec.get("end") else "")
        lines.append(f"Recurring {head} at {rec.get('time') or '(no time yet)'} ({zone}), {span}")
    if when.get("user_timezone"):
        late = "sent the next day at that time" if when.get("late", "next_day") == "next_day" else "skipped"
        lines.append(f"At that time in each user's own time zone; users whose time has passed are {late}")
    dnd = when.get("dnd") if isinstance(when.get("dnd"), dict) else None
    if dnd:
        action = "delayed until it ends" if dnd.get("action", "delay") == "delay" else "discarded"
        lines.append(f"Do not disturb {dnd.get('start')}–{dnd.get('end')} (user's time): messages {action}")
    lines.append("Global throttle limits do not apply" if when.get("ignore_global_limits")
                 else "Global throttle limits apply")
    return lines


def who_lines(document: dict[str, Any], segment_summary: str | None = None) -> list[str]:
    who = _section(document, "who")
    if who.get("segment"):
        lines = [f"Saved segment {who['segment']}"]
    elif who.get("definition") is not None:
        if segment_summary is None and isinstance(who["definition"], dict):
            try:
                segment_summary = describe_definition(who["definition"])
            except (AttributeError, KeyError, TypeError, ValueError):  # a draft's half-built definition
                segment_summary = None
        lines = [f"Ad-hoc segment: {segment_summary or 'built in place'}"]
    else:
        lines = ["No audience chosen yet"]
    percent = who.get("reach_percent", 100)
    lines.append("All who qualify" if percent in (None, 100, 100.0) else f"A random {percent}% of those who qualify")
    for key, words in (("target_limit", "at most {:,} users in all (random pick)"),
                       ("run_limit", "at most {:,} per run"),
                       ("daily_limit", "at most {:,} per day"),
                       ("safety_limit", "safety check: blocked when more than {:,} qualify")):
        value = who.get(key)
        if isinstance(value, int):
            lines.append(words.format(value).capitalize())
    return lines


def route_words(route: Any) -> str:
    route = route if isinstance(route, dict) else {}
    if route.get("group"):
        return f"provider group {route['group']}"
    if route.get("provider"):
        return f"provider {route['provider']}"
    return "default routing"


def what_lines(document: dict[str, Any]) -> list[str]:
    what = _section(document, "what")
    lines = [f"Through {route_words(what.get('route'))}" + (f", sender {what['sender']}" if what.get("sender") else "")]
    body = str(what.get("body") or "")
    lines.append(f"Message: {body}" if body else "Message: (empty)")
    generic = what.get("generic") if isinstance(what.get("generic"), dict) else {}
    if generic.get("template_id"):
        lines.append(f"Template ID {generic['template_id']}")
    if generic.get("template_variables"):
        lines.append("Template variables: " + ", ".join(map(str, generic["template_variables"])))
    for key, words in (("body_values", "Body keys"), ("header_values", "Header keys"),
                       ("global_values", "Global keys")):
        if generic.get(key):
            lines.append(f"{words}: " + ", ".join(f"{k}={v}" for k, v in generic[key].items()))
    dlt = what.get("dlt") if isinstance(what.get("dlt"), dict) else {}
    if any(dlt.values()):
        shown = (f"{key.removeprefix('dlt_').replace('_', ' ')} {value}" for key, value in dlt.items() if value)
        lines.append("DLT: " + ", ".join(shown))
    linked = what.get("linked_content") if isinstance(what.get("linked_content"), dict) else {}
    if linked:
        policy = "skip the recipient" if linked.get("on_failure", "skip") == "skip" else "abort the run"
        lines.append(f"Linked content: {linked.get('timeout', 3.0)} s timeout; when it fails, {policy}")
    return lines
