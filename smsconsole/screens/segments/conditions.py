"""The builder's view of a definition document (the JSON of services/segments/): node paths
written as the service writes problem paths (`conditions[2].where[0]`), tree labels, new
conditions, and typed text turned into JSON values. Presentational only: the rules, every check
and the operators' words and value kinds stay in the service."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from smsconsole.services.segments import DAYS, LIST, NO_VALUE, PAIR, describe_definition, operator_menu, value_kind

GROUP, PROPERTY, FIELD, EVENT, SUBSCRIPTION, REACHABLE, FILTER = (
    "group", "property", "field", "event", "subscription", "reachable", "filter")
MATCH_LABELS = {"all": "ALL of these (AND)", "any": "ANY of these (OR)"}
_STEP = re.compile(r"(\w+)\[(\d+)\]")


def child_path(parent: str, key: str, index: int) -> str:
    step = f"{key}[{index}]"
    return f"{parent}.{step}" if parent else step


def split_path(path: str) -> tuple[str, str, int]:
    """(parent path, list key, index) of a non-root node path."""
    parent, _, last = path.rpartition(".")
    match = _STEP.fullmatch(last)
    if match is None:
        raise ValueError(f"not a node path: {path!r}")
    return parent, match.group(1), int(match.group(2))


def node_at(document: Mapping[str, Any], path: str) -> Any:
    node: Any = document
    for key, index in _STEP.findall(path):
        node = node[key][int(index)]
    return node


def kind_of(node: Any, path: str) -> str | None:
    """What a node is; None for something the builder cannot show (edit it as JSON)."""
    if not isinstance(node, Mapping):
        return None
    if path.endswith("]") and split_path(path)[1] == "where":
        return FILTER
    found = [k for k in (PROPERTY, FIELD, EVENT, SUBSCRIPTION, REACHABLE) if k in node]
    if len(found) == 1:
        return found[0]
    if not found and ("conditions" in node or "match" in node):
        return GROUP
    return None


def children(node: Any, path: str) -> Iterator[tuple[str, Any]]:
    """A group's conditions or an event's filters, with their paths."""
    if not isinstance(node, Mapping):
        return
    kind = kind_of(node, path) if path else GROUP
    key = "conditions" if kind == GROUP else "where" if kind == EVENT else None
    items = node.get(key) if key else None
    if isinstance(items, list):
        for index, item in enumerate(items):
            yield child_path(path, key or "", index), item


def describe(node: Any, path: str) -> str:
    """One line for a tree node: the service's words, or the JSON when they cannot be made."""
    kind = kind_of(node, path) if path else GROUP
    if kind == GROUP:
        return MATCH_LABELS.get(node.get("match", "all"), "?") + ("" if node.get("conditions") else ": everyone")
    if kind in (PROPERTY, FIELD, FILTER) and value_kind(node.get("op")) != NO_VALUE and "value" not in node:
        name = node.get("property") or node.get("field")
        return f"{name} {operator_menu(node.get('op'))} …"
    if kind == EVENT:
        node = {key: value for key, value in node.items() if key != "where"}
    try:
        return describe_definition(node) if kind else json.dumps(node, ensure_ascii=False)[:80]
    except (KeyError, TypeError, IndexError, AttributeError):
        return json.dumps(node, ensure_ascii=False)[:80]


def owner_of(problem_path: str, node_paths: list[str]) -> tuple[str, str]:
    """The node a problem belongs to (the deepest whose path starts it) and the rest of the path,
    e.g. `conditions[1].where[0].op` → (`conditions[1].where[0]`, `op`)."""
    if problem_path == "definition":
        return "", ""
    best = ""
    for path in node_paths:
        if path and (problem_path == path or problem_path.startswith(path + ".")) and len(path) > len(best):
            best = path
    rest = problem_path[len(best):].lstrip(".") if best else problem_path
    return best, rest


def new_condition(kind: str, *, properties: list[tuple[str, str]], events: list[str],
                  event_properties: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """A fresh condition of `kind`; `properties` are (source, name) choices, the first one used."""
    if kind == GROUP:
        return {"match": "any", "conditions": []}
    if kind == EVENT:
        return {"event": events[0] if events else "", "did": True}
    if kind == SUBSCRIPTION:
        return {"subscription": "subscribed"}
    if kind == REACHABLE:
        return {"reachable": True}
    if kind == FILTER:
        name = event_properties[0][1] if event_properties else ""
        return {"property": name, "op": "equals"}
    source, name = properties[0] if properties else (FIELD, "country")
    return {source: name, "op": "equals"}


# --- typed text ↔ JSON values --------------------------------------------------------------------


def parse_scalar(text: str, type_: str) -> Any:
    """Typed text as the JSON value for `type_`; text that does not read as one is passed on as
    typed, for the service to explain."""
    text = text.strip()
    if type_ == "number":
        for number in (int, float):
            try:
                return number(text)
            except ValueError:
                continue
    if type_ == "boolean" and text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def parse_whole(text: str) -> Any:
    try:
        return int(text.strip())
    except ValueError:
        return text.strip()


def parse_value(type_: str, op: str, first: str, second: str = "") -> tuple[bool, Any]:
    """(given, value) for an operator from its inputs: a list is comma-separated, `between` takes
    both, the day operators a whole number. Nothing typed means no value (the service says it is
    required)."""
    takes = value_kind(op)
    if takes == NO_VALUE:
        return False, None
    if takes == PAIR:
        if not first.strip() and not second.strip():
            return False, None
        return True, [parse_scalar(first, type_), parse_scalar(second, type_)]
    if not first.strip():
        return False, None
    if takes == LIST:
        return True, [parse_scalar(part, type_) for part in first.split(",") if part.strip()]
    if takes == DAYS:
        return True, parse_whole(first)
    return True, parse_scalar(first, type_)


def value_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ", ".join(value_text(item) for item in value)
    return json.dumps(value, ensure_ascii=False)


def value_texts(op: str, value: Any) -> tuple[str, str]:
    """The inputs' text for a stored value (the reverse of `parse_value`)."""
    if value_kind(op) == PAIR and isinstance(value, list) and len(value) == 2:
        return value_text(value[0]), value_text(value[1])
    return value_text(value), ""


# --- problems in words ---------------------------------------------------------------------------

_FIELD_WORDS = {
    "property": "Property", "field": "Field", "op": "Operator", "value": "Value", "event": "Event",
    "did": "Did", "count": "Count", "count.op": "Count", "count.value": "Count", "window": "Window",
    "window.last_days": "Days", "window.between": "Dates", "window.between[0]": "Start date",
    "window.between[1]": "End date", "value[0]": "Value (first)", "value[1]": "Value (second)",
    "subscription": "Subscription", "reachable": "Reachable", "match": "Match", "conditions": "Conditions",
    "where": "Where",
}


def field_words(rest: str) -> str:
    """The field a problem's path ends in, as the editor labels it: `count.value` → `Count`."""
    if not rest:
        return ""
    return _FIELD_WORDS.get(rest) or _FIELD_WORDS.get(rest.split(".")[0].split("[")[0]) or rest


def editor_row(rest: str) -> str:
    """Which row of the condition editor a problem's remaining path belongs to."""
    key = rest.split(".")[0].split("[")[0]
    return {"property": "name", "field": "name", "op": "op", "value": "value", "event": "event", "did": "count",
            "count": "count", "window": "window", "subscription": "subscription",
            "reachable": "reachable"}.get(key, "general")
