"""Reading a segment definition: the JSON an operator writes (the format is in the package's
docstring) checked against the catalog, every problem reported at once with its path, and turned
into a SegmentDefinition with its normalized document."""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole.services.errors import ValidationError
from smsconsole.services.profiles import SUBSCRIPTION_STATES
from smsconsole.services.segments.catalog import FIELDS, SegmentCatalog, catalog_for, catalog_from
from smsconsole.services.segments.definition import (
    MAX_CONDITIONS,
    MAX_COUNT,
    MAX_DAYS,
    MAX_DEPTH,
    MAX_LIST_VALUES,
    Condition,
    EventCondition,
    Group,
    ReachableCondition,
    SegmentDefinition,
    SubscriptionCondition,
    ValueCondition,
    Window,
    date_end,
    date_start,
)
from smsconsole.services.segments.operators import (
    COUNT_OPS,
    DAYS,
    LIST,
    NO_VALUE,
    OPERATOR_CATALOGUE,
    OPERATORS,
    PAIR,
)
from smsconsole.services.values import parse_datetime

_CONDITION_KEYS = {
    "property": {"property", "op", "value"},
    "field": {"field", "op", "value"},
    "event": {"event", "did", "count", "window", "where"},
    "subscription": {"subscription"},
    "reachable": {"reachable"},
    "group": {"match", "conditions"},
}


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_whole(value: Any) -> bool:
    return _is_number(value) and float(value).is_integer()


def _type_ok(value: Any, type_: str) -> bool:
    if type_ in ("string", "list"):
        return isinstance(value, str)
    if type_ == "number":
        return _is_number(value)
    if type_ == "boolean":
        return isinstance(value, bool)
    return False


_TYPE_WORDS = {"string": "text", "list": "text", "number": "a number", "boolean": "true or false"}


class _Parser:
    """Walks a raw definition, collecting every problem and warning on the way."""

    def __init__(self, catalog: SegmentCatalog) -> None:
        self.catalog = catalog
        self.profile_types = catalog.property_types()
        self.known_events = catalog.event_names()
        self.problems: list[tuple[str, str]] = []
        self.warnings: list[str] = []
        self.condition_count = 0

    def fail(self, path: str, reason: str) -> None:
        self.problems.append((path or "definition", reason))

    def group(self, raw: Mapping[str, Any], path: str, depth: int) -> tuple[Group, dict[str, Any]]:
        match = raw.get("match", "all")
        if match not in ("all", "any"):
            self.fail(_at(path, "match"), "must be all or any")
            match = "all"
        conditions = raw.get("conditions", [])
        if not isinstance(conditions, list):
            self.fail(_at(path, "conditions"), "must be a list of conditions")
            conditions = []
        if path and not conditions:
            self.fail(_at(path, "conditions"), "a group needs at least one condition")
        if depth > MAX_DEPTH:
            self.fail(path, f"groups nest at most {MAX_DEPTH} levels deep")
            return Group(match, ()), {}
        parsed: list[Condition] = []
        documents: list[dict[str, Any]] = []
        for index, item in enumerate(conditions):
            result = self.condition(item, _at(path, f"conditions[{index}]"), depth)
            if result is not None:
                parsed.append(result[0])
                documents.append(result[1])
        return Group(match, tuple(parsed)), {"match": match, "conditions": documents}

    def condition(self, raw: Any, path: str, depth: int) -> tuple[Condition, dict[str, Any]] | None:
        self.condition_count += 1
        if self.condition_count == MAX_CONDITIONS + 1:
            self.fail(path, f"a segment has at most {MAX_CONDITIONS} conditions")
        if not isinstance(raw, Mapping):
            self.fail(path, "must be an object")
            return None
        kinds = [k for k in ("property", "field", "event", "subscription", "reachable") if k in raw]
        if not kinds and ("conditions" in raw or "match" in raw):
            kinds = ["group"]
        if len(kinds) != 1:
            self.fail(path, "a condition needs exactly one of property, field, event, subscription, "
                            "reachable, or conditions (a group)")
            return None
        kind = kinds[0]
        for key in sorted(set(raw) - _CONDITION_KEYS[kind]):
            self.fail(_at(path, key), f"unknown key in a {kind} condition")
        if kind == "group":
            return self.group(raw, path, depth + 1)
        if kind == "property":
            return self.value_condition(raw, path, "property", self.profile_types, "profile property")
        if kind == "field":
            return self.value_condition(raw, path, "field", FIELDS, "field")
        if kind == "event":
            return self.event_condition(raw, path)
        if kind == "subscription":
            return self.subscription_condition(raw, path)
        return self.reachable_condition(raw, path)

    def value_condition(self, raw: Mapping[str, Any], path: str, source: str, types: Mapping[str, str],
                        noun: str) -> tuple[ValueCondition, dict[str, Any]] | None:
        name = raw.get(source)
        if not isinstance(name, str) or not name:
            self.fail(_at(path, source), f"must name a {noun}")
            return None
        type_ = types.get(name)
        if type_ is None:
            close = difflib.get_close_matches(name, list(types), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            self.fail(_at(path, source), f"unknown {noun} {name!r}{hint}")
            return None
        if '"' in name or "\\" in name:
            self.fail(_at(path, source), f"{noun} names with quotes or backslashes cannot be used in segments")
            return None
        op = raw.get("op")
        allowed = OPERATORS.get(type_, ())
        if op not in allowed:
            self.fail(_at(path, "op"), f"{op!r} does not apply to {type_} {name!r}; use one of {', '.join(allowed)}")
            return None
        value = self.value(raw.get("value"), type_, op, _at(path, "value"), "value" in raw)
        if value is _BAD:
            return None
        if source == "field" and name == "country" and value is not None:
            value = [v.upper() for v in value] if isinstance(value, list) else value.upper()
        document: dict[str, Any] = {source: name, "op": op}
        if OPERATOR_CATALOGUE[op].takes != NO_VALUE:
            document["value"] = value
        return ValueCondition(source, name, type_, op, value), document

    def value(self, value: Any, type_: str, op: str, path: str, given: bool) -> Any:
        """The checked value for `op` on a `type_`, or _BAD after recording why."""
        def bad(reason: str) -> Any:
            self.fail(path, reason)
            return _BAD

        takes = OPERATOR_CATALOGUE[op].takes
        if takes == NO_VALUE:
            return None if value is None else bad(f"{op} takes no value")
        if not given or value is None:
            return bad("is required")
        if takes == LIST:
            if not isinstance(value, list) or not value:
                return bad("must be a non-empty list")
            if len(value) > MAX_LIST_VALUES:
                return bad(f"at most {MAX_LIST_VALUES} values")
            if not all(_type_ok(v, type_) for v in value):
                return bad(f"every item must be {_TYPE_WORDS[type_]}")
            return list(value)
        if takes == DAYS:
            if not _is_whole(value) or not 1 <= value <= MAX_DAYS:
                return bad(f"must be a whole number of days from 1 to {MAX_DAYS}")
            return int(value)
        if type_ == "date":
            if takes == PAIR:
                return self.date_pair(value, path)
            return self.date(value, path)
        if takes == PAIR:
            if not isinstance(value, list) or len(value) != 2 or not all(_is_number(v) for v in value):
                return bad("must be [low, high], two numbers")
            if value[0] > value[1]:
                return bad("low must not be above high")
            return list(value)
        if op in ("contains", "not_contains") and not (isinstance(value, str) and value):
            return bad("must be non-empty text")
        if not _type_ok(value, type_):
            return bad(f"must be {_TYPE_WORDS[type_]}")
        return value

    def date(self, value: Any, path: str) -> Any:
        if not isinstance(value, str):
            self.fail(path, "must be a date such as 2026-01-31 or 2026-01-31T09:30:00Z")
            return _BAD
        try:
            parse_datetime(value)
        except ValueError as exc:
            self.fail(path, str(exc))
            return _BAD
        if re.fullmatch(r"\d{9,10}(\.\d+)?", value.strip()):
            self.fail(path, "must be a date such as 2026-01-31 or 2026-01-31T09:30:00Z")
            return _BAD
        return value.strip()

    def date_pair(self, value: Any, path: str) -> Any:
        if not isinstance(value, list) or len(value) != 2:
            self.fail(path, "must be [start, end], two dates")
            return _BAD
        start, end = self.date(value[0], f"{path}[0]"), self.date(value[1], f"{path}[1]")
        if start is _BAD or end is _BAD:
            return _BAD
        first, (last, inclusive) = date_start(start), date_end(end)
        if first >= last and not (first == last and inclusive):
            self.fail(path, "the start must not be after the end")
            return _BAD
        return [start, end]

    def event_condition(self, raw: Mapping[str, Any], path: str) -> tuple[EventCondition, dict[str, Any]] | None:
        ok = True
        name = raw.get("event")
        if not isinstance(name, str) or not name.strip() or len(name) > 128:
            self.fail(_at(path, "event"), "must name an event (1–128 characters)")
            return None
        did = raw.get("did", True)
        if not isinstance(did, bool):
            self.fail(_at(path, "did"), "must be true or false")
            ok = False
        document: dict[str, Any] = {"event": name, "did": did is not False}
        count_op, count = ("exactly", 0) if did is False else ("at_least", 1)
        if "count" in raw:
            raw_count = raw["count"]
            if did is False:
                self.fail(_at(path, "count"), "a did-not condition takes no count; use did: true with "
                                              "count at_most or exactly")
                ok = False
            elif not isinstance(raw_count, Mapping) or set(raw_count) - {"op", "value"}:
                self.fail(_at(path, "count"), 'must be {"op": at_least | at_most | exactly, "value": N}')
                ok = False
            else:
                if raw_count.get("op") not in COUNT_OPS:
                    self.fail(_at(path, "count.op"), "must be at_least, at_most or exactly")
                    ok = False
                number = raw_count.get("value")
                if not _is_whole(number) or not 0 <= number <= MAX_COUNT:
                    self.fail(_at(path, "count.value"), f"must be a whole number from 0 to {MAX_COUNT}")
                    ok = False
                if ok:
                    count_op, count = raw_count["op"], int(number)
                    document["count"] = {"op": count_op, "value": count}
        window, window_doc = self.window(raw.get("window", "ever"), _at(path, "window"))
        if window is None:
            ok = False
        else:
            document["window"] = window_doc
        if name not in self.known_events:
            self.warnings.append(f"{_at(path, 'event')}: no {name!r} event has been recorded yet")
        where: list[ValueCondition] = []
        raw_where = raw.get("where", [])
        if not isinstance(raw_where, list):
            self.fail(_at(path, "where"), "must be a list of property conditions")
            ok = False
            raw_where = []
        types = self.catalog.event_property_types(name)
        where_docs = []
        for index, item in enumerate(raw_where):
            item_path = _at(path, f"where[{index}]")
            if not isinstance(item, Mapping) or "property" not in item:
                self.fail(item_path, 'must be {"property": NAME, "op": ..., "value": ...}')
                ok = False
                continue
            for key in sorted(set(item) - {"property", "op", "value"}):
                self.fail(_at(item_path, key), "unknown key in an event property filter")
                ok = False
            result = self.value_condition(item, item_path, "property", types, f"property of event {name!r}")
            if result is None:
                ok = False
            else:
                where.append(result[0])
                where_docs.append(result[1])
        if where_docs:
            document["where"] = where_docs
        if not ok or window is None:
            return None
        return EventCondition(name, count_op, count, window, tuple(where)), document

    def window(self, raw: Any, path: str) -> tuple[Window | None, Any]:
        if raw == "ever":
            return Window(), "ever"
        if isinstance(raw, Mapping) and set(raw) == {"last_days"}:
            days = raw["last_days"]
            if not _is_whole(days) or not 1 <= days <= MAX_DAYS:
                self.fail(_at(path, "last_days"), f"must be a whole number of days from 1 to {MAX_DAYS}")
                return None, None
            return Window("last_days", days=int(days)), {"last_days": int(days)}
        if isinstance(raw, Mapping) and set(raw) == {"between"}:
            pair = self.date_pair(raw["between"], _at(path, "between"))
            if pair is _BAD:
                return None, None
            return Window("between", between=(pair[0], pair[1])), {"between": pair}
        self.fail(path, 'must be "ever", {"last_days": N} or {"between": [start, end]}')
        return None, None

    def subscription_condition(self, raw: Mapping[str, Any], path: str) -> tuple[Condition, dict[str, Any]] | None:
        value = raw["subscription"]
        states = [value] if isinstance(value, str) else value
        if not isinstance(states, list) or not states or not all(s in SUBSCRIPTION_STATES for s in states):
            self.fail(_at(path, "subscription"), f"must be one of {', '.join(SUBSCRIPTION_STATES)} or a list of them")
            return None
        return SubscriptionCondition(tuple(dict.fromkeys(states))), {"subscription": value}

    def reachable_condition(self, raw: Mapping[str, Any], path: str) -> tuple[Condition, dict[str, Any]] | None:
        if not isinstance(raw["reachable"], bool):
            self.fail(_at(path, "reachable"), "must be true or false")
            return None
        return ReachableCondition(raw["reachable"]), {"reachable": raw["reachable"]}


_BAD = object()


def validate_definition(definition: Any, catalog: SegmentCatalog) -> SegmentDefinition:
    """Check a raw definition (a mapping, or JSON text) against the catalog. Raises
    ValidationError with every problem at once."""
    if isinstance(definition, (str, bytes)):
        try:
            definition = json.loads(definition)
        except json.JSONDecodeError as exc:
            raise ValidationError([("definition", f"is not valid JSON: {exc.msg} at line {exc.lineno}")]) from None
    if not isinstance(definition, Mapping):
        raise ValidationError([("definition", 'must be a JSON object such as {"match": "all", "conditions": [...]}')])
    parser = _Parser(catalog)
    for key in sorted(set(definition) - {"match", "conditions"}):
        parser.fail(key, "unknown key; a definition has match and conditions")
    root, document = parser.group(definition, "", 1)
    if parser.problems:
        raise ValidationError(parser.problems)
    return SegmentDefinition(root, document, tuple(parser.warnings))


async def check_definition(session: AsyncSession, definition: Any) -> SegmentDefinition:
    """Validate against the database's catalog (what the builder calls as the operator types)."""
    if isinstance(definition, SegmentDefinition):
        return definition
    if isinstance(definition, (str, bytes)):
        try:
            definition = json.loads(definition)
        except json.JSONDecodeError:
            return validate_definition(definition, catalog_from({}, {}))  # raises, naming the JSON error
    return validate_definition(definition, await catalog_for(session, definition))
