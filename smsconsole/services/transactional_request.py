"""Reading a `POST /v1/messages` request (no database): its fields checked for shape, every bad
one named, into a SendRequest that services/transactional.py prepares and queues."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from typing import Any

import httpx

from smsconsole.services.campaigns.definition import Dnd
from smsconsole.services.errors import ValidationError
from smsconsole.services.message_templates import name_problem

REQUEST_FIELDS = ("to", "body", "template", "data", "group", "provider", "priority", "sender", "respect",
                  "quiet_hours", "escalate")
RECIPIENT_FIELDS = ("user_id", "phone")
RESPECT = ("caps", "quiet_hours")
QUIET_FIELDS = ("start", "end", "action")
STEP_FIELDS = ("after_minutes", "group", "webhook")
DEFAULT_QUIET = Dnd(time(21, 0), time(8, 0), "delay")
DEFAULT_PRIORITY = 50
MAX_PRIORITY = 99  # 100 is the console's test sends
MAX_STEPS = 5
MAX_AFTER_MINUTES = 7 * 24 * 60
MAX_SENDER = 64


@dataclass(frozen=True)
class EscalationRequest:
    after_minutes: int
    group: str | None = None
    webhook: str | None = None


@dataclass(frozen=True)
class SendRequest:
    user_id: str | None
    phone: str | None
    body: str
    data: dict[str, Any] = field(default_factory=dict)
    group: str | None = None
    provider: str | None = None
    priority: int = DEFAULT_PRIORITY
    sender: str | None = None
    respect: frozenset[str] = frozenset()
    quiet_hours: Dnd | None = None
    escalate: tuple[EscalationRequest, ...] = ()
    template: str | None = None  # a saved template's name, instead of `body`


# --- reading a request ---------------------------------------------------------------------------


def request_hash(data: Any) -> str:
    """The request as one canonical JSON text, hashed: key order and spacing do not matter."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def parse_request(data: Any) -> SendRequest:
    """The request's fields, checked for shape; ValidationError with every bad field."""
    if not isinstance(data, dict):
        raise ValidationError([("", "must be a JSON object")])
    problems: list[tuple[str, str]] = [(name, "is not a field") for name in data if name not in REQUEST_FIELDS]
    user_id, phone = _recipient(data.get("to"), problems)
    body = data.get("body")
    template = data.get("template")
    if template is not None:
        if body is not None:
            problems.append(("template", "send a body or a template's name, not both"))
        elif reason := name_problem(template):
            problems.append(("template", f"must be a saved template's name: {reason}"))
    if body is None:
        if template is None:
            problems.append(("body", "is required (or \"template\": a saved template's name)"))
    elif not isinstance(body, str):
        problems.append(("body", "must be a string (Liquid)"))
    elif not body.strip():
        problems.append(("body", "is empty"))
    values = data.get("data", {})
    if values is None:
        values = {}
    if not isinstance(values, dict):
        problems.append(("data", "must be an object"))
    group, provider = _name(data, "group", problems), _name(data, "provider", problems)
    if group and provider:
        problems.append(("provider", "choose a provider or a group, not both"))
    priority = data.get("priority", DEFAULT_PRIORITY)
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= MAX_PRIORITY:
        problems.append(("priority", f"must be a whole number from 0 to {MAX_PRIORITY} (higher goes first)"))
    sender = data.get("sender")
    if sender is not None and (not isinstance(sender, str) or not sender.strip() or len(sender) > MAX_SENDER):
        problems.append(("sender", f"must be a number or sender id of 1 to {MAX_SENDER} characters"))
    respect = _respect(data.get("respect", []), problems)
    quiet = _quiet_hours(data.get("quiet_hours"), problems)
    if quiet is not None and "quiet_hours" not in respect:
        problems.append(("quiet_hours", "only applies with \"respect\": [\"quiet_hours\"]"))
    steps = _steps(data.get("escalate", []), problems)
    if problems:
        raise ValidationError(problems)
    return SendRequest(
        user_id=user_id, phone=phone, body=body or "", data=dict(values), group=group, provider=provider,
        template=template.strip() if isinstance(template, str) and body is None else None,
        priority=priority, sender=sender.strip() if sender else None, respect=frozenset(respect),
        quiet_hours=(quiet or DEFAULT_QUIET) if "quiet_hours" in respect else None, escalate=steps,
    )


def _recipient(to: Any, problems: list[tuple[str, str]]) -> tuple[str | None, str | None]:
    if to is None:
        problems.append(("to", "is required: {\"user_id\": \"...\"} or {\"phone\": \"+...\"}"))
        return None, None
    if not isinstance(to, dict):
        problems.append(("to", "must be an object: {\"user_id\": \"...\"} or {\"phone\": \"+...\"}"))
        return None, None
    problems.extend((f"to.{name}", "is not a field; use user_id or phone") for name in to if name not in RECIPIENT_FIELDS)
    given = [name for name in RECIPIENT_FIELDS if to.get(name) is not None]
    if len(given) != 1:
        problems.append(("to", "give exactly one of user_id and phone"))
        return None, None
    value = to[given[0]]
    if not isinstance(value, str) or not value.strip():
        problems.append((f"to.{given[0]}", "must be a non-empty string"))
        return None, None
    return (value.strip(), None) if given[0] == "user_id" else (None, value.strip())


def _name(data: Mapping[str, Any], name: str, problems: list[tuple[str, str]]) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        problems.append((name, f"must be a {name} name"))
        return None
    return value.strip()


def _respect(value: Any, problems: list[tuple[str, str]]) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(("respect", "must be a list of \"caps\" and \"quiet_hours\""))
        return []
    unknown = [v for v in value if v not in RESPECT]
    if unknown:
        problems.append(("respect", f"{unknown[0]!r} is not a guard; use \"caps\" or \"quiet_hours\""))
        return []
    return list(dict.fromkeys(value))


def _clock_time(value: Any) -> time | None:
    if not isinstance(value, str):
        return None
    try:
        return time.fromisoformat(value) if len(value) == 5 else None
    except ValueError:
        return None


def _quiet_hours(value: Any, problems: list[tuple[str, str]]) -> Dnd | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.append(("quiet_hours", "must be an object: {\"start\": \"21:00\", \"end\": \"08:00\"}"))
        return None
    found = [(f"quiet_hours.{n}", "is not a field; use start, end and action") for n in value if n not in QUIET_FIELDS]
    start, end = _clock_time(value.get("start")), _clock_time(value.get("end"))
    if start is None:
        found.append(("quiet_hours.start", "must be a time of day as HH:MM"))
    if end is None:
        found.append(("quiet_hours.end", "must be a time of day as HH:MM"))
    action = value.get("action", "delay")
    if action not in ("delay", "discard"):
        found.append(("quiet_hours.action", "must be delay (send when they end) or discard"))
    problems.extend(found)
    return None if found or start is None or end is None else Dnd(start, end, action)


def _steps(value: Any, problems: list[tuple[str, str]]) -> tuple[EscalationRequest, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.append(("escalate", "must be a list of steps"))
        return ()
    if len(value) > MAX_STEPS:
        problems.append(("escalate", f"at most {MAX_STEPS} steps"))
        return ()
    steps: list[EscalationRequest] = []
    previous = 0
    for index, step in enumerate(value):
        where = f"escalate[{index}]"
        if not isinstance(step, dict):
            problems.append((where, "must be an object with after_minutes and group or webhook"))
            continue
        found = [(f"{where}.{n}", "is not a field; use after_minutes and group or webhook")
                 for n in step if n not in STEP_FIELDS]
        after = step.get("after_minutes")
        if isinstance(after, bool) or not isinstance(after, int) or not 1 <= after <= MAX_AFTER_MINUTES:
            found.append((f"{where}.after_minutes", f"must be a whole number of minutes from 1 to {MAX_AFTER_MINUTES}"))
        elif after <= previous:
            found.append((f"{where}.after_minutes", "must be later than the step before"))
        group, webhook = step.get("group"), step.get("webhook")
        if (group is None) == (webhook is None):
            found.append((where, "give exactly one of group and webhook"))
        elif group is not None and (not isinstance(group, str) or not group.strip()):
            found.append((f"{where}.group", "must be a provider group name"))
        elif webhook is not None and not _http_url(webhook):
            found.append((f"{where}.webhook", "must be an http(s) URL to POST the alert to"))
        problems.extend(found)
        if not found:
            previous = after
            steps.append(EscalationRequest(after, group.strip() if group else None, webhook))
    return tuple(steps)


def _http_url(value: Any) -> bool:
    if not isinstance(value, str) or len(value) > 2000:
        return False
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, ValueError, TypeError):
        return False
    return url.scheme in ("http", "https") and bool(url.host)
