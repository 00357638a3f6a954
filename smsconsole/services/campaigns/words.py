"""A campaign document in words, in one place for the console and the CLI.

- The console's lines (`when_lines`, `who_lines`, `what_lines`) read the mapping as it is being
  typed (a draft may be half-filled), for the wizard's Summary, a campaign's page and the list.
- The CLI's lines (`when_words`, `who_words`, `what_words`) read the parsed document, for
  `campaigns show`. The two wordings differ (each is pinned by its tests); they share the live
  campaigns' words below and the small helpers.
- A live campaign's trigger ("When someone does add_to_cart (amount > 100) and does not do
  checkout within 5 minutes"), its span and figures, and the wizard's one-line form of trigger
  conditions ("amount > 100, currency = GBP") both ways.
- The arms ("A 45% · B 45% · control 10%") and the conversion goal ("order (amount > 0) within
  1 day of the message"), for both wordings.

Pure functions: no database, no Textual."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from smsconsole.services.campaigns.arms import LETTERS, Goal, Variant, parse_goal
from smsconsole.services.campaigns.definition import (
    LIVE_TYPES,
    CampaignDocument,
    Trigger,
    When,
    parse_document,
)
from smsconsole.services.segments.descriptions import describe_definition
from smsconsole.services.segments.operators import (
    OPERATOR_CATALOGUE,
    PAIR,
    operator_label,
)

REELIGIBLE_WORDS = {"every_time": "every time it happens", "once": "once per person, ever",
                    "after_days": "again after {days} days"}

# The wizard's condition line: `property op value`, conditions joined by "," (or " and ").
_SYMBOLS = {"=": "equals", "==": "equals", "!=": "not_equals", ">": "greater", "<": "less"}
_WORD_OPS = {"contains": "contains", "not contains": "not_contains", "is set": "exists", "exists": "exists",
             "is not set": "not_exists", "not exists": "not_exists", "in": "in", "not in": "not_in",
             "before": "before", "after": "after"}
_SHOWN = {"equals": "=", "not_equals": "!=", "greater": ">", "less": "<", "contains": "contains",
          "not_contains": "not contains", "exists": "is set", "not_exists": "is not set", "in": "in",
          "not_in": "not in", "before": "before", "after": "after"}
_CONDITION = re.compile(
    r"^\s*(?P<prop>[A-Za-z_][\w.-]*)\s*(?P<op>!=|==|=|>|<|\bnot contains\b|\bcontains\b|\bis not set\b|\bis set\b"
    r"|\bnot exists\b|\bexists\b|\bnot in\b|\bin\b|\bbefore\b|\bafter\b)\s*(?P<value>.*?)\s*$", re.IGNORECASE)
_SPLIT = re.compile(r",|\s+and\s+", re.IGNORECASE)
CONDITION_HINT = "write conditions as property op value, e.g. amount > 100, currency = GBP"


def minutes_words(minutes: int | None) -> str:
    """5 → '5 minutes', 120 → '2 hours', 1440 → '1 day'."""
    if minutes is None:
        return "(no time yet)"
    for size, unit in ((1440, "day"), (60, "hour")):
        if minutes >= size and minutes % size == 0:
            n = minutes // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def minutes_text(minutes: Any) -> str:
    """A number of minutes as the wizard shows it for editing: 5 → '5m', 120 → '2h', 1440 → '1d'."""
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        return "" if minutes in (None, 0) else str(minutes)
    for size, unit in ((1440, "d"), (60, "h")):
        if minutes >= size and minutes % size == 0:
            return f"{minutes // size}{unit}"
    return f"{minutes}m"


def _value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value


def condition_words(condition: dict[str, Any]) -> str:
    """`amount > 100`, `currency is "GBP"`, `coupon is set`."""
    op = condition.get("op")
    known = OPERATOR_CATALOGUE.get(op) if isinstance(op, str) else None
    head = f"{condition.get('property')} {operator_label(op)}"
    if known is not None and known.takes == "none":
        return head
    value = condition.get("value")
    if known is not None and known.takes == PAIR and isinstance(value, list | tuple) and len(value) == 2:
        return f"{head} {json.dumps(value[0])} and {json.dumps(value[1])}"
    if known is not None and known.takes == "days":
        return f"{head} {value} {known.unit}"
    return f"{head} {json.dumps(value, ensure_ascii=False)}"


def conditions_words(conditions: Any) -> str:
    """' (amount > 100 and currency is "GBP")', or '' when there are none."""
    items = [c for c in conditions or () if isinstance(c, dict)]
    return f" ({' and '.join(condition_words(c) for c in items)})" if items else ""


def conditions_text(conditions: Any) -> str:
    """The wizard's editable line for a list of conditions: `amount > 100, currency = GBP`. A
    condition the line cannot say (between, day counts) is written as JSON."""
    parts = []
    for condition in conditions or ():
        if not isinstance(condition, dict):
            continue
        op, value = condition.get("op"), condition.get("value")
        shown = _SHOWN.get(op) if isinstance(op, str) else None
        if shown is None:
            parts.append(json.dumps(condition, ensure_ascii=False))
        elif op in ("exists", "not_exists"):
            parts.append(f"{condition.get('property')} {shown}")
        elif op in ("in", "not_in") and isinstance(value, list):
            parts.append(f"{condition.get('property')} {shown} {' | '.join(_value(v) for v in value)}")
        else:
            parts.append(f"{condition.get('property')} {shown} {_value(value)}")
    return ", ".join(parts)


def _typed(text: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def parse_conditions_text(text: str) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
    """The wizard's condition line as the document's list of conditions, and each part that does
    not read as (its 1-based position, why). JSON parts (`{"property": …}`) are taken as written."""
    conditions: list[dict[str, Any]] = []
    problems: list[tuple[int, str]] = []
    parts = [part.strip() for part in _split(text)]
    for index, part in enumerate((p for p in parts if p), 1):
        if part.startswith("{"):
            try:
                value = json.loads(part)
            except json.JSONDecodeError:
                value = None
            if isinstance(value, dict):
                conditions.append(value)
            else:
                problems.append((index, f"{part!r} is not a JSON condition"))
            continue
        match = _CONDITION.match(part)
        if match is None:
            problems.append((index, f"{part!r}: {CONDITION_HINT}"))
            continue
        word = " ".join(match.group("op").lower().split())
        op = _SYMBOLS.get(word) or _WORD_OPS[word]
        condition: dict[str, Any] = {"property": match.group("prop"), "op": op}
        raw = match.group("value")
        if op in ("exists", "not_exists"):
            if raw:
                problems.append((index, f"{part!r}: '{word}' takes no value"))
                continue
        elif not raw:
            problems.append((index, f"{part!r}: say the value after '{word}'"))
            continue
        elif op in ("in", "not_in"):
            condition["value"] = [_typed(v) for v in raw.split("|") if v.strip()]
        else:
            condition["value"] = _typed(raw)
        conditions.append(condition)
    return conditions, problems


def _split(text: str) -> list[str]:
    """Split on commas and ' and ', but not inside a JSON part or a quoted value."""
    parts: list[str] = []
    depth, quote, start, index = 0, "", 0, 0
    while index < len(text):
        ch = text[index]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
        elif depth == 0:
            match = _SPLIT.match(text, index)
            if match:
                parts.append(text[start:index])
                start = index = match.end()
                continue
        index += 1
    parts.append(text[start:])
    return parts


# --- the trigger -------------------------------------------------------------------------------


def trigger_sentence(kind: str, trigger: Trigger | None, *, user_timezone: bool = False) -> str:
    """The trigger in one sentence."""
    t = trigger or Trigger()
    if kind == "action":
        head = f"When someone does {t.event or '(no event yet)'}{conditions_words(t.where)}"
        return head + (f", {minutes_words(t.delay_minutes)} later" if t.delay_minutes else ", at once")
    if kind == "inaction":
        return (f"When someone does {t.event or '(no event yet)'}{conditions_words(t.where)} and does not do "
                f"{t.cancel_event or '(no follow-up event yet)'}{conditions_words(t.cancel_where)} within "
                f"{minutes_words(t.within_minutes)}")
    if kind == "date":
        offset = t.offset_days
        day = ("on the day of" if offset == 0 else
               f"{abs(offset)} day{'s' if abs(offset) != 1 else ''} {'before' if offset < 0 else 'after'}")
        prop = t.property or "(no date property yet)"
        whose = (f"the {prop} of each {t.event} event{conditions_words(t.where)}" if t.event
                 else f"each person's {prop}")
        zone = " their local time" if user_timezone else ""
        return f"{day[0].upper()}{day[1:]} {whose}, at {t.at:%H:%M}{zone}"
    return ""


def reeligible_words(trigger: Trigger | None) -> str:
    t = trigger or Trigger()
    words = REELIGIBLE_WORDS.get(t.reeligible, t.reeligible)
    return "A person gets it " + words.format(days=t.reeligible_days or "N")


def _local(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%d %H:%M") if moment is not None else None


def live_span(when: When) -> str:
    """'Live from 2026-12-03 09:00 until 2026-12-31 00:00 (Europe/London)'."""
    start = f"from {_local(when.start)}" if when.start else "from when it is scheduled"
    end = f" until {_local(when.end)}" if when.end else " until stopped or the target limit is reached"
    return f"Live {start}{end} ({when.timezone})"


def trigger_lines(document: CampaignDocument) -> list[str]:
    """The Who of a live campaign: the trigger, re-eligibility, the filter and the limits."""
    who = document.who
    lines = [trigger_sentence(document.type, who.trigger, user_timezone=document.when.user_timezone),
             reeligible_words(who.trigger)]
    lines.append(f"Only people in segment {who.segment}" if who.segment else
                 "Only people the ad-hoc filter selects" if who.definition else "No filter: anyone who triggers it")
    if who.reach_percent < 100:
        lines.append(f"A random {who.reach_percent:g}% of them (a stable pick per person)")
    if who.daily_limit:
        lines.append(f"At most {who.daily_limit:,} messages a day")
    if who.target_limit:
        lines.append(f"Ends after {who.target_limit:,} messages in all (the target limit)")
    return lines


def live_lines(kind: str, document: CampaignDocument, stats: Any) -> list[str]:
    """A live campaign's figures (services/campaigns/live/stats.py LiveStats) as plain lines for
    `campaigns show` and `campaigns list`: pending, today's counts, held back, the target."""
    from smsconsole.services.campaigns.live.stats import held_back_words

    today = stats.today
    parts = []
    if kind == "inaction":
        parts.append(f"{stats.count_words(stats.waits_pending)} waits pending")
    elif kind == "date":
        parts.append(f"{stats.count_words(stats.dues_pending)} due dates pending")
    counts = [f"{today.get('triggered', 0):,} triggered", f"{today.get('queued', 0):,} queued"]
    if kind == "inaction":
        follow_up = document.who.trigger.cancel_event if document.who.trigger else None
        counts.append(f"{today.get('waits_cancelled', 0):,} cancelled by {follow_up or 'the follow-up'}")
    parts.append(f"today ({stats.day:%Y-%m-%d}, {document.when.timezone}): " + ", ".join(counts))
    lines = ["; ".join(parts)]
    if held := stats.held_back_today:
        lines.append(f"held back today: {held_back_words(held)}")
    target = document.who.target_limit
    lines.append(f"target: {stats.queued_total:,} of {target:,} queued" if target
                 else f"{stats.queued_total:,} queued in all (no target limit)")
    return lines


# --- the arms and the goal ----------------------------------------------------------------------


def arms_words(variants: tuple[Variant, ...], control: float) -> str:
    """'A 45% · B 45% · control 10%' (each variant's share of the people, then the held-out share)."""
    parts = [f"{variant.name} {variant.split:g}%" for variant in variants]
    if control:
        parts.append(f"control {control:g}%")
    return " · ".join(parts)


CONTROL_WORDS = "held out: qualified and recorded, never sent"


def goal_sentence(goal: Goal) -> str:
    """'order (amount > 0) within 1 day of the message': what counts as a conversion."""
    return f"{goal.event}{conditions_words(goal.where)} within {minutes_words(goal.window_minutes)} of the message"


def goal_words(doc: Any) -> list[str]:
    """The CLI's goal lines (parsed document); [] when the campaign has none."""
    goal = getattr(doc, "goal", None)
    if goal is None:
        return []
    lines = [f"a conversion is {goal_sentence(goal)} (control: of the would-be send time)"]
    lines.append(f"revenue: the sum of its {goal.value!r}" if goal.value else "no revenue property")
    return lines


def goal_lines(document: dict[str, Any]) -> list[str]:
    """The console's goal lines (the mapping, maybe a draft)."""
    raw = document.get("goal")
    goal = parse_goal(raw, []) if isinstance(raw, dict) else None
    if goal is None:
        return ["No conversion goal: conversions are not counted"]
    lines = [f"Converts: {goal_sentence(goal)} (for control: of the would-be send time)"]
    lines.append(f"Revenue: the sum of each conversion's {goal.value}" if goal.value
                 else "Revenue: not counted (no value property)")
    return lines


# --- the console's lines (from the mapping, maybe a draft) ---------------------------------------

WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
DAY_WORDS = dict(zip(("mon", "tue", "wed", "thu", "fri", "sat", "sun"), WEEKDAY_NAMES, strict=True))


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
    if kind in LIVE_TYPES:
        lines.append(live_span(parse_document(document)[0].when))
    elif kind == "one_time":
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
    if when.get("user_timezone") and kind == "date":
        lines.append("The date's time of day is each user's own local time")
    elif when.get("user_timezone") and kind not in LIVE_TYPES:
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
    if document.get("type") in LIVE_TYPES:
        return trigger_lines(parse_document(document)[0])
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


def _message_lines(holder: dict[str, Any], title: str, indent: str = "") -> list[str]:
    """One message's lines: the body, then its Generic blocks and DLT fields (`indent`ed)."""
    body = str(holder.get("body") or "")
    lines = [f"{title}: {body}" if body else f"{title}: (empty)"]
    generic = holder.get("generic") if isinstance(holder.get("generic"), dict) else {}
    if generic.get("template_id"):
        lines.append(f"{indent}Template ID {generic['template_id']}")
    if generic.get("template_variables"):
        lines.append(f"{indent}Template variables: " + ", ".join(map(str, generic["template_variables"])))
    for key, words in (("body_values", "Body keys"), ("header_values", "Header keys"),
                       ("global_values", "Global keys")):
        if isinstance(generic.get(key), dict) and generic[key]:
            lines.append(f"{indent}{words}: " + ", ".join(f"{k}={v}" for k, v in generic[key].items()))
    dlt = holder.get("dlt") if isinstance(holder.get("dlt"), dict) else {}
    if any(dlt.values()):
        shown = (f"{key.removeprefix('dlt_').replace('_', ' ')} {value}" for key, value in dlt.items() if value)
        lines.append(f"{indent}DLT: " + ", ".join(shown))
    return lines


def what_lines(document: dict[str, Any]) -> list[str]:
    what = _section(document, "what")
    lines = [f"Through {route_words(what.get('route'))}" + (f", sender {what['sender']}" if what.get("sender") else "")]
    raw = what.get("variants")
    variants = [v if isinstance(v, dict) else {} for v in raw] if isinstance(raw, list) and raw else []
    parsed = parse_document(document)[0].what
    if variants or parsed.control:
        lines.append(f"Arms: {arms_words(parsed.arms, parsed.control)}")
    if not variants:
        lines += _message_lines(what, "Message")
    for letter, holder in zip(LETTERS, variants, strict=False):
        lines += _message_lines(holder, f"Message {letter}", "  ")
    if parsed.control:
        lines.append(f"Control group: {parsed.control:g}% {CONTROL_WORDS}")
    linked = what.get("linked_content") if isinstance(what.get("linked_content"), dict) else {}
    if linked:
        policy = "skip the recipient" if linked.get("on_failure", "skip") == "skip" else "abort the run"
        lines.append(f"Linked content: {linked.get('timeout', 3.0)} s timeout; when it fails, {policy}")
    return lines


# --- the CLI's lines (from the parsed document) --------------------------------------------------


def _local_text(moment: Any) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if isinstance(moment, datetime) else str(moment)


def _limit(value: int | None, words: str) -> str | None:
    return f"{words} {value:,}" if value else None


def when_words(doc: Any, kind: str) -> list[str]:
    when = doc.when
    tz = when.timezone
    if kind in LIVE_TYPES:
        first = live_span(when)
    elif kind == "one_time":
        first = ("once, as soon as it is scheduled" if when.at == "now" else
                 f"once, at {_local_text(when.at)} {tz}" if when.at else "once (the time is not chosen yet)")
    elif kind == "multiple_dates":
        shown = ", ".join(_local_text(d) for d in when.dates[:5]) + (f" and {len(when.dates) - 5} more"
                                                                  if len(when.dates) > 5 else "")
        first = f"on {len(when.dates)} dates ({tz}): {shown}" if when.dates else "on several dates (none chosen yet)"
    else:
        r = when.recurrence
        if r is None:
            first = "recurring (not chosen yet)"
        else:
            unit = {"day": "day", "week": "week", "month": "month"}[r.every]
            every = f"every {unit}" if r.interval == 1 else f"every {r.interval} {unit}s"
            if r.every == "week":
                every += " on " + (", ".join(WEEKDAY_NAMES[d] for d in r.weekdays) or "(no days chosen)")
            elif r.every == "month":
                day = r.day_of_month
                every += f" on day {day}" + (" (a shorter month's last day)" if day and day > 28 else "") \
                    if day else " (no day chosen)"
            span = f", from {r.start}" if r.start else ", from when it is scheduled"
            span += f" until {r.end}" if r.end else ", no end"
            first = f"{every} at {r.time:%H:%M} {tz}{span}"
    lines = [first]
    if when.user_timezone and kind == "date":
        lines.append("the date's time of day is each user's own local time")
    elif when.user_timezone and kind not in LIVE_TYPES:
        late = "sent the next day" if when.late == "next_day" else "skipped"
        lines.append(f"at that time in each user's own time zone (users whose time has passed: {late})")
    if when.dnd is not None:
        action = "delayed until it ends" if when.dnd.action == "delay" else "discarded"
        lines.append(f"do not disturb {when.dnd.start:%H:%M}-{when.dnd.end:%H:%M} in the user's zone: {action}")
    lines.append("global limits ignored for this campaign" if when.ignore_global_limits else "global limits apply")
    return lines


def who_words(doc: Any) -> list[str]:
    who = doc.who
    if doc.type in LIVE_TYPES:
        return trigger_lines(doc)
    if who.segment:
        first = f"segment {who.segment!r}"
    elif who.definition:
        first = f"ad-hoc segment: {describe_definition(who.definition)}"
    else:
        first = "no audience chosen yet"
    reach = "everyone who qualifies" if who.reach_percent >= 100 else f"a random {who.reach_percent:g}% of those who qualify"
    limits = [part for part in (_limit(who.target_limit, "at most"), _limit(who.run_limit, "per run at most"),
                                _limit(who.daily_limit, "per day at most")) if part]
    lines = [first, reach + (f"; {', '.join(limits)}" if limits else "")]
    lines.append(f"safety check: a run is blocked when more than {who.safety_limit:,} qualify" if who.safety_limit
                 else "no safety check")
    return lines


def _message_words(variant: Variant, head: str) -> list[str]:
    body = variant.body.strip()
    lines = [f"{head}{json.dumps(body, ensure_ascii=False)}" if body else f"{head}(not written yet)"]
    extra = "  " if head != "body: " else ""
    if variant.generic:
        lines.append(f"{extra}generic provider: " + ", ".join(f"{key} {json.dumps(value, ensure_ascii=False)}"
                                                             for key, value in variant.generic.items()))
    if variant.dlt:
        lines.append(f"{extra}DLT: " + ", ".join(f"{key} {value}" for key, value in variant.dlt.items()))
    return lines


def what_words(doc: Any) -> list[str]:
    what = doc.what
    route = (f"through group {what.route_group!r}" if what.route_group else
             f"through provider {what.route_provider!r}" if what.route_provider else "default routing")
    lines = [route + (f", sender {what.sender!r}" if what.sender else "")]
    arms = what.arms
    if len(arms) > 1 or what.control:
        lines.append(f"arms: {arms_words(arms, what.control)}")
    if len(arms) == 1:
        lines += _message_words(arms[0], "body: ")
    else:
        for variant in arms:
            lines += _message_words(variant, f"{variant.name}: ")
    if what.control:
        lines.append(f"control group: {what.control:g}% {CONTROL_WORDS}")
    if any("connected_content" in variant.body for variant in arms):
        failure = "skip the recipient" if what.linked_on_failure == "skip" else "abort the run"
        lines.append(f"linked content: timeout {what.linked_timeout:g} s; when it fails, {failure}")
    return lines
