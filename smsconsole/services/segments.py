"""Segments: who a campaign is for, written as a small JSON language, checked against the
property catalog, compiled to one set-based SQL condition over profiles, and counted.

Definition format (what `smsconsole segments create --file def.json` reads)::

    {"match": "all",                      # all | any  (default all; an empty list = everyone)
     "conditions": [
       {"property": "plan", "op": "equals", "value": "gold"},            # profile property
       {"field": "country", "op": "in", "value": ["IN", "GB"]},          # built-in profile field
       {"property": "renewal_date", "op": "within_next_days", "value": 7},
       {"event": "order", "did": true,                                   # past behaviour
        "count": {"op": "at_least", "value": 2},                         # at_least | at_most | exactly
        "window": {"last_days": 30},               # or {"between": ["2026-01-01", "2026-01-31"]} or "ever"
        "where": [{"property": "amount", "op": "greater", "value": 100}]},
       {"subscription": "subscribed"},                    # or a list: ["subscribed", "never"]
       {"reachable": true},                               # SMS can reach them now
       {"match": "any", "conditions": [...]}              # nested group, at most 5 levels in all
     ]}

Operators by property type (profile properties take their type from the catalog, PropertyDef
scope "profile"; event properties from scope "event:NAME"):

    string   equals not_equals in not_in contains not_contains exists not_exists
    number   equals not_equals in not_in greater less between exists not_exists
    boolean  equals not_equals exists not_exists
    date     before after between within_last_days within_next_days more_than_days_ago
             exists not_exists
    list     contains not_contains contains_any exists not_exists

Built-in fields: user_id, name, country, timezone (strings; country codes are upper-cased) and
created_at (date).

Rules, each tested in tests/integration/test_segments.py:

- `contains` on a string is a case-sensitive substring test; on a list it is membership of one
  item, and `contains_any` takes a list of items. `in` / `not_in` take a list of values.
- A condition on a value someone lacks (or holds as another type) is false; the negative
  operators (not_equals, not_in, not_contains, not_exists) are their exact complements, so they
  match people without the property.
- `between` is inclusive at both ends. A date written without a time stands for the whole day:
  `before` that day means earlier than its first second, `after` it means later than its last,
  and as the end of `between` it includes the whole day. Dates are compared to the second, UTC.
- `within_last_days` N: from exactly N×24 h before now up to now, both included;
  `within_next_days` N: from now up to N×24 h ahead; `more_than_days_ago` N: before now − N days.
- Events: `did` (default true) with no count means at least once; `"did": false` means not once
  (and takes no count). `at_most` and `exactly 0` include people with no events at all; `at_least 0`
  is everyone. The window `{"last_days": N}` runs from now − N days to now inclusive; `between`
  follows the date rule above; `"ever"` is the default. `where` filters (all must hold) use the
  operators above on the event's properties.
- Problems are reported all at once as ValidationError([(path, reason)]) with paths such as
  `conditions[2].value` or `conditions[1].where[0].op`. An unknown property is an error; an event
  name never recorded is allowed (a campaign may wait for it) and comes back as a warning.

Compilation is a SQLAlchemy boolean expression over `Profile` (EXISTS / IN subqueries on events,
typed JSON reads per dialect), so audiences are `INSERT … SELECT` with no Python loop over people.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Union

from sqlalchemy import (
    ColumnElement,
    Float,
    String,
    and_,
    bindparam,
    case,
    cast,
    exists,
    false,
    func,
    not_,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole import clock
from smsconsole.models import Event, Profile, PropertyDef, Segment
from smsconsole.services import audit
from smsconsole.services.errors import Conflict, NotFound, ValidationError
from smsconsole.services.profiles import SUBSCRIPTION_STATES
from smsconsole.services.queries.reach import UNREACHABLE_REASONS, reachable_condition, unreachable_conditions
from smsconsole.services.values import format_datetime, parse_datetime

MAX_DEPTH = 5  # nesting levels of groups, the top one included
MAX_CONDITIONS = 200
MAX_LIST_VALUES = 1000
MAX_DAYS = 36_500
MAX_COUNT = 1_000_000
NAME_LIMIT = 120

OPERATORS: dict[str, tuple[str, ...]] = {
    "string": ("equals", "not_equals", "in", "not_in", "contains", "not_contains", "exists", "not_exists"),
    "number": ("equals", "not_equals", "in", "not_in", "greater", "less", "between", "exists", "not_exists"),
    "boolean": ("equals", "not_equals", "exists", "not_exists"),
    "date": ("before", "after", "between", "within_last_days", "within_next_days", "more_than_days_ago",
             "exists", "not_exists"),
    "list": ("contains", "not_contains", "contains_any", "exists", "not_exists"),
}
FIELDS: dict[str, str] = {
    "user_id": "string", "name": "string", "country": "string", "timezone": "string", "created_at": "date",
}
COUNT_OPS = ("at_least", "at_most", "exactly")
NEGATIVE_OPS = frozenset({"not_equals", "not_in", "not_contains", "not_exists"})
_DAY_OPS = frozenset({"within_last_days", "within_next_days", "more_than_days_ago"})
_CONDITION_KEYS = {
    "property": {"property", "op", "value"},
    "field": {"field", "op", "value"},
    "event": {"event", "did", "count", "window", "where"},
    "subscription": {"subscription"},
    "reachable": {"reachable"},
    "group": {"match", "conditions"},
}
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


# --- catalog -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PropertyInfo:
    name: str
    type: str
    operators: tuple[str, ...]


@dataclass(frozen=True)
class EventInfo:
    name: str
    properties: tuple[PropertyInfo, ...]


@dataclass(frozen=True)
class SegmentCatalog:
    """What a segment can refer to: the builder's choices and the validator's reference."""

    fields: tuple[PropertyInfo, ...]
    properties: tuple[PropertyInfo, ...]
    events: tuple[EventInfo, ...]
    count_operators: tuple[str, ...] = COUNT_OPS
    subscription_states: tuple[str, ...] = SUBSCRIPTION_STATES

    def property_types(self) -> dict[str, str]:
        return {p.name: p.type for p in self.properties}

    def event_property_types(self, event: str) -> dict[str, str]:
        return next(({p.name: p.type for p in e.properties} for e in self.events if e.name == event), {})

    def event_names(self) -> set[str]:
        return {e.name for e in self.events}


def _info(name: str, type_: str) -> PropertyInfo:
    return PropertyInfo(name, type_, OPERATORS.get(type_, ()))


def catalog_from(profile_types: Mapping[str, str], events: Mapping[str, Mapping[str, str]]) -> SegmentCatalog:
    """A catalog from plain mappings (property → type; event → its property types)."""
    return SegmentCatalog(
        fields=tuple(_info(n, t) for n, t in FIELDS.items()),
        properties=tuple(_info(n, t) for n, t in sorted(profile_types.items())),
        events=tuple(EventInfo(name, tuple(_info(n, t) for n, t in sorted(types.items())))
                     for name, types in sorted(events.items())),
    )


async def event_names(session: AsyncSession) -> list[str]:
    """Distinct event names, by a skip scan of ix_events_name_profile_at: one index seek per
    name, so it stays cheap with millions of events."""
    names = select(func.min(Event.name).label("name")).cte("event_names", recursive=True)
    following = select(func.min(Event.name)).where(Event.name > names.c.name).scalar_subquery()
    names = names.union_all(select(following).where(names.c.name.is_not(None)))
    rows = await session.scalars(select(names.c.name).where(names.c.name.is_not(None)))
    return list(rows)


async def segment_catalog(session: AsyncSession) -> SegmentCatalog:
    """Built-in fields, profile properties with types, event names and their property types."""
    rows = (await session.execute(select(PropertyDef.scope, PropertyDef.name, PropertyDef.type))).all()
    profile_types = {name: type_ for scope, name, type_ in rows if scope == "profile"}
    events: dict[str, dict[str, str]] = {name: {} for name in await event_names(session)}
    for scope, name, type_ in rows:
        if scope.startswith("event:"):
            events.setdefault(scope[len("event:"):], {})[name] = type_
    return catalog_from(profile_types, events)


# --- the validated definition --------------------------------------------------------------------


@dataclass(frozen=True)
class ValueCondition:
    """A test of one value: a profile property, a built-in field or an event property."""

    source: str  # property | field
    name: str
    type: str
    op: str
    value: Any = None


@dataclass(frozen=True)
class Window:
    kind: str = "ever"  # ever | last_days | between
    days: int = 0
    between: tuple[str, str] | None = None


@dataclass(frozen=True)
class EventCondition:
    event: str
    count_op: str  # at_least | at_most | exactly
    count: int
    window: Window
    where: tuple[ValueCondition, ...] = ()


@dataclass(frozen=True)
class SubscriptionCondition:
    states: tuple[str, ...]


@dataclass(frozen=True)
class ReachableCondition:
    reachable: bool


@dataclass(frozen=True)
class Group:
    match: str  # all | any
    conditions: tuple[Condition, ...]


Condition = Union[ValueCondition, EventCondition, SubscriptionCondition, ReachableCondition, Group]


@dataclass(frozen=True)
class SegmentDefinition:
    """A definition that passed validation, with its normalized JSON and any warnings."""

    root: Group
    document: dict[str, Any]
    warnings: tuple[str, ...] = ()


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
        if op not in ("exists", "not_exists"):
            document["value"] = value
        return ValueCondition(source, name, type_, op, value), document

    def value(self, value: Any, type_: str, op: str, path: str, given: bool) -> Any:
        """The checked value for `op` on a `type_`, or _BAD after recording why."""
        def bad(reason: str) -> Any:
            self.fail(path, reason)
            return _BAD

        if op in ("exists", "not_exists"):
            return None if value is None else bad(f"{op} takes no value")
        if not given or value is None:
            return bad("is required")
        if op in ("in", "not_in", "contains_any"):
            if not isinstance(value, list) or not value:
                return bad("must be a non-empty list")
            if len(value) > MAX_LIST_VALUES:
                return bad(f"at most {MAX_LIST_VALUES} values")
            if not all(_type_ok(v, type_) for v in value):
                return bad(f"every item must be {_TYPE_WORDS[type_]}")
            return list(value)
        if op in _DAY_OPS:
            if not _is_whole(value) or not 1 <= value <= MAX_DAYS:
                return bad(f"must be a whole number of days from 1 to {MAX_DAYS}")
            return int(value)
        if type_ == "date":
            if op == "between":
                return self.date_pair(value, path)
            return self.date(value, path)
        if op == "between":
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
        if _start(start) >= _end(end)[0] and not (_start(start) == _end(end)[0] and _end(end)[1]):
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


def _event_names_in(node: Any, found: set[str]) -> set[str]:
    """Event names a raw (unvalidated) definition mentions."""
    if isinstance(node, Mapping):
        if isinstance(node.get("event"), str):
            found.add(node["event"])
        _event_names_in(node.get("conditions"), found)
    elif isinstance(node, list):
        for item in node:
            _event_names_in(item, found)
    return found


async def _catalog_for(session: AsyncSession, definition: Any) -> SegmentCatalog:
    """The part of the catalog a definition needs: property types, and which of the event
    names it mentions have been recorded (one index seek each, in one round trip)."""
    rows = (await session.execute(select(PropertyDef.scope, PropertyDef.name, PropertyDef.type))).all()
    profile_types = {name: type_ for scope, name, type_ in rows if scope == "profile"}
    events: dict[str, dict[str, str]] = {}
    for scope, name, type_ in rows:
        if scope.startswith("event:"):
            events.setdefault(scope[len("event:"):], {})[name] = type_
    mentioned = sorted(_event_names_in(definition, set()) - set(events))[:MAX_CONDITIONS]
    if mentioned:
        recorded = (await session.execute(select(*[
            exists().where(Event.name == name).label(f"e{index}") for index, name in enumerate(mentioned)
        ]))).one()
        events.update({name: {} for name, seen in zip(mentioned, recorded, strict=True) if seen})
    return catalog_from(profile_types, events)


async def check_definition(session: AsyncSession, definition: Any) -> SegmentDefinition:
    """Validate against the database's catalog (what the builder calls as the operator types)."""
    if isinstance(definition, SegmentDefinition):
        return definition
    if isinstance(definition, (str, bytes)):
        try:
            definition = json.loads(definition)
        except json.JSONDecodeError:
            return validate_definition(definition, catalog_from({}, {}))  # raises, naming the JSON error
    return validate_definition(definition, await _catalog_for(session, definition))


# --- compilation -----------------------------------------------------------------------------------


def _start(text: str) -> datetime:
    return parse_datetime(text)


def _end(text: str) -> tuple[datetime, bool]:
    """The end a date stands for: (moment, inclusive). A bare date runs to the next midnight."""
    moment = parse_datetime(text)
    if _DATE_ONLY.fullmatch(text.strip()):
        return moment + timedelta(days=1), False
    return moment, True


class _JsonReads:
    """Typed reads of one key of a JSON document column that answer alike on SQLite and
    PostgreSQL: a value held as another type than the condition's never matches."""

    def __init__(self, column: Any, dialect: str) -> None:
        self.pg = dialect == "postgresql"
        self.doc = type_coerce(column, JSONB) if self.pg else column

    def _path(self, key: str) -> str:
        return f'$."{key}"'

    def _typeof(self, key: str) -> ColumnElement[str]:
        if self.pg:
            return func.jsonb_typeof(self.doc[key])
        return func.json_type(self.doc, self._path(key), type_=String)

    def _extract(self, key: str, type_: Any = String) -> ColumnElement[Any]:
        return func.json_extract(self.doc, self._path(key), type_=type_)

    def present(self, key: str) -> ColumnElement[bool]:
        if self.pg:
            return self.doc[key].astext.is_not(None)
        return self._extract(key).is_not(None)

    def text_test(self, key: str, test: Callable[[ColumnElement[str]], ColumnElement[bool]], *,
                  exact_untyped: bool = False) -> ColumnElement[bool]:
        """`test` on the value as text, true only when the stored value is a JSON string. The test
        runs first and the type check only on rows that pass it (in a CASE, which both databases
        evaluate in order): the type check costs a second lookup in the document."""
        raw = self.doc[key].astext.collate("C") if self.pg else self._extract(key)
        if exact_untyped and not self.pg:
            return test(raw)
        return case((test(raw), self._typeof(key) == ("string" if self.pg else "text")), else_=false())

    def number(self, key: str) -> ColumnElement[float]:
        if self.pg:  # the type check first here: casting other text to a number would fail
            return case((self._typeof(key) == "number", cast(self.doc[key].astext, Float)))
        return case((self._typeof(key).in_(["integer", "real"]), self._extract(key, Float)))

    def equals(self, key: str, value: Any) -> ColumnElement[bool]:
        """Equality that respects the stored JSON type (5 is not "5", true is not 1)."""
        if self.pg:  # containment of {key: value} is typed equality (arrays do not contain it)
            return self.doc.contains(bindparam(None, {key: value}, type_=JSONB))
        if isinstance(value, bool):
            return self._typeof(key) == ("true" if value else "false")
        if isinstance(value, str):
            return self.text_test(key, lambda text: text == value, exact_untyped=_plain(value))
        return self.number(key) == value

    def one_of(self, key: str, values: Sequence[Any]) -> ColumnElement[bool]:
        if self.pg:
            return self.doc[key].in_([bindparam(None, v, type_=JSONB) for v in values])
        if isinstance(values[0], str):
            return self.text_test(key, lambda text: text.in_(list(values)), exact_untyped=all(map(_plain, values)))
        return self.number(key).in_(list(values))

    def list_has_any(self, key: str, items: Sequence[str]) -> ColumnElement[bool]:
        if self.pg:
            if len(items) == 1:
                return self.doc[key].contains(list(items))
            return and_(self._typeof(key) == "array", self.doc[key].has_any(postgresql.array(list(items))))
        elements = func.json_each(self.doc, self._path(key)).table_valued("value")
        member = select(elements.c.value).where(elements.c.value.in_(list(items))).exists()
        return and_(self._typeof(key) == "array", member)


def _plain(value: str) -> bool:
    """SQLite's json_extract gives numbers and booleans as numbers, which never equal text, and
    arrays/objects as JSON text starting with [ or {: only text like that needs the type check."""
    return value[:1] not in ("[", "{")


def _is_true(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """NULL (unknown) as false, so NOT of it is the exact complement."""
    return func.coalesce(condition, false())


def _cost(condition: Condition) -> int:
    if isinstance(condition, ValueCondition):
        return 0 if condition.source == "field" else 1
    if isinstance(condition, (SubscriptionCondition, ReachableCondition)):
        return 0
    return 2 if isinstance(condition, Group) else 3


class _Compiler:
    def __init__(self, now: datetime, dialect: str) -> None:
        if now.tzinfo is None:
            raise ValueError("compile_segment needs an aware `now`")
        self.now = now.astimezone(UTC)
        self.dialect = dialect
        self.pg = dialect == "postgresql"

    def group(self, group: Group) -> ColumnElement[bool]:
        # Cheapest first: SQLite evaluates AND/OR terms in the order written, and the order
        # changes no answer.
        parts = [self.condition(c) for c in sorted(group.conditions, key=_cost)]
        if not parts:
            return true()
        if len(parts) == 1:
            return parts[0]
        return and_(*parts) if group.match == "all" else or_(*parts)

    def condition(self, condition: Condition) -> ColumnElement[bool]:
        if isinstance(condition, Group):
            return self.group(condition)
        if isinstance(condition, ValueCondition):
            if condition.source == "field":
                return self.field(condition)
            return self.json_value(_JsonReads(Profile.properties, self.dialect), condition)
        if isinstance(condition, EventCondition):
            return self.event(condition)
        if isinstance(condition, SubscriptionCondition):
            if len(condition.states) == 1:
                return Profile.subscription == condition.states[0]
            return Profile.subscription.in_(condition.states)
        return reachable_condition() if condition.reachable else not_(reachable_condition())

    # A negative operator is NOT of its positive twin, NULL counted as false.
    def _negated(self, positive: ColumnElement[bool]) -> ColumnElement[bool]:
        return not_(_is_true(positive))

    def json_value(self, reads: _JsonReads, c: ValueCondition) -> ColumnElement[bool]:
        positive = {"not_equals": "equals", "not_in": "in", "not_contains": "contains", "not_exists": "exists"}
        if c.op in NEGATIVE_OPS:
            return self._negated(self.json_value(reads, ValueCondition(c.source, c.name, c.type, positive[c.op], c.value)))
        if c.op == "exists":
            return reads.present(c.name)
        if c.type == "list":
            items = [c.value] if c.op == "contains" else c.value
            return reads.list_has_any(c.name, items)
        if c.op == "equals":
            return reads.equals(c.name, c.value)
        if c.op == "in":
            return reads.one_of(c.name, c.value)
        if c.op == "contains":
            return reads.text_test(c.name, lambda text: self._substring(text, c.value))
        if c.type == "number":
            number = reads.number(c.name)
            if c.op == "greater":
                return number > c.value
            if c.op == "less":
                return number < c.value
            return number.between(c.value[0], c.value[1])
        # In a two-sided range of ISO dates SQLite needs no type check: numbers sort below any
        # text, and JSON arrays/objects (returned as text starting with [ or {) above any date.
        ranged = c.op in ("within_last_days", "within_next_days", "between")
        return reads.text_test(c.name, lambda text: self._date(text, c.op, c.value, format_datetime),
                               exact_untyped=ranged)

    def field(self, c: ValueCondition) -> ColumnElement[bool]:
        column = getattr(Profile, c.name)
        if c.op == "exists":
            return column.is_not(None)
        if c.op == "not_exists":
            return column.is_(None)
        if c.op == "equals":
            return column == c.value
        if c.op == "not_equals":
            return column.is_distinct_from(c.value)
        if c.op == "in":
            return column.in_(c.value)
        if c.op == "not_in":
            return or_(column.is_(None), column.not_in(c.value))
        if c.op == "contains":
            return self._substring(column, c.value)
        if c.op == "not_contains":
            return self._negated(self._substring(column, c.value))
        return self._date(column, c.op, c.value, lambda moment: moment)

    def _substring(self, text: ColumnElement[str], needle: str) -> ColumnElement[bool]:
        position = func.strpos(text, needle) if self.pg else func.instr(text, needle)
        return position > 0

    def _date(self, value: ColumnElement[Any], op: str, operand: Any, form: Any) -> ColumnElement[bool]:
        """Date comparisons; `form` turns a moment into the stored form (ISO text or datetime)."""
        now = self.now
        if op == "within_last_days":
            return and_(value >= form(now - timedelta(days=operand)), value <= form(now))
        if op == "within_next_days":
            return and_(value >= form(now), value <= form(now + timedelta(days=operand)))
        if op == "more_than_days_ago":
            return value < form(now - timedelta(days=operand))
        if op == "before":
            return value < form(_start(operand))
        if op == "after":
            end, inclusive = _end(operand)
            return value > form(end) if inclusive else value >= form(end)
        start = value >= form(_start(operand[0]))
        end, inclusive = _end(operand[1])
        return and_(start, value <= form(end) if inclusive else value < form(end))

    def event(self, c: EventCondition) -> ColumnElement[bool]:
        filters: list[ColumnElement[bool]] = [Event.name == c.event]
        if c.window.kind == "last_days":
            filters += [Event.at >= self.now - timedelta(days=c.window.days), Event.at <= self.now]
        elif c.window.kind == "between" and c.window.between:
            filters.append(self._date(Event.at, "between", list(c.window.between), lambda moment: moment))
        reads = _JsonReads(Event.properties, self.dialect)
        filters += [self.json_value(reads, w) for w in c.where]

        def done_once() -> ColumnElement[bool]:
            # profile_id rather than *, so SQLite answers from ix_events_name_profile_at alone
            return select(Event.profile_id).where(Event.profile_id == Profile.id, *filters).exists()

        def counted(having: ColumnElement[bool]) -> Any:
            return select(Event.profile_id).where(*filters).group_by(Event.profile_id).having(having)

        op, n = c.count_op, c.count
        if op == "at_least":
            if n == 0:
                return true()
            return done_once() if n == 1 else Profile.id.in_(counted(func.count() >= n))
        if n == 0:  # at_most 0, exactly 0
            return not_(done_once())
        if op == "exactly":
            return Profile.id.in_(counted(func.count() == n))
        too_many = counted(func.count() > n)
        if self.pg:
            # NOT IN over a large set falls back to a per-row scan on PostgreSQL; an anti-join
            # against the grouped set does not.
            grouped = too_many.subquery()
            return not_(select(grouped.c.profile_id).where(grouped.c.profile_id == Profile.id).exists())
        return Profile.id.not_in(too_many)


def compile_segment(definition: SegmentDefinition, *, now: datetime, dialect: str) -> ColumnElement[bool]:
    """The definition as one boolean SQL expression over `Profile` ("sqlite" or "postgresql"):
    `select(Profile.id).where(compile_segment(...))` is the audience."""
    return _Compiler(now, dialect).group(definition.root)


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def segment_condition(session: AsyncSession, definition: Any, *, now: datetime | None = None) -> ColumnElement[bool]:
    """Validate (raw JSON or a SegmentDefinition) and compile for this session's database."""
    checked = await check_definition(session, definition)
    return compile_segment(checked, now=now or clock.now(), dialect=_dialect(session))


# --- reach -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnreachableCounts:
    """People who qualify but cannot be sent an SMS now; each counted once, under the first
    reason `services.profiles.unreachable_reason` gives."""

    no_phone: int = 0
    invalid_phone: int = 0
    not_mobile_capable: int = 0
    unsubscribed: int = 0
    never_opted_in: int = 0

    def items(self) -> list[tuple[str, int]]:
        """(reason in words, count) in the order reasons are checked."""
        return [(label, getattr(self, code)) for code, label in UNREACHABLE_REASONS]

    @property
    def total(self) -> int:
        return sum(getattr(self, code) for code, _ in UNREACHABLE_REASONS)


@dataclass(frozen=True)
class CountryReach:
    country: str | None
    qualified: int
    reachable: int


@dataclass(frozen=True)
class ReachEstimate:
    qualified: int
    reachable: int
    unreachable: UnreachableCounts
    by_country: tuple[CountryReach, ...]  # most qualified first
    warnings: tuple[str, ...]
    computed_at: datetime


def reach_query(condition: ColumnElement[bool]) -> Any:
    """Per country: people matching `condition`, how many SMS can reach, and how many fall under
    each unreachable reason. One scan; conditional counts rather than a (country, reason) group,
    which would add a sort the database can otherwise skip."""
    return (
        select(Profile.country, func.count().label("qualified"),
               func.count(case((reachable_condition(), 1))).label("reachable"),
               *[func.count(case((predicate, 1))).label(code) for code, predicate in unreachable_conditions().items()])
        .where(condition)
        .group_by(Profile.country)
    )


async def estimate_reach(session: AsyncSession, definition: Any, *, now: datetime | None = None) -> ReachEstimate:
    """How many qualify, how many SMS can reach now, why the rest cannot, and by country; one query."""
    moment = now or clock.now()
    checked = await check_definition(session, definition)
    condition = compile_segment(checked, now=moment, dialect=_dialect(session))
    rows = (await session.execute(reach_query(condition))).all()
    codes = [code for code, _ in UNREACHABLE_REASONS]
    by_country = sorted(
        (CountryReach(row.country, row.qualified, row.reachable) for row in rows),
        key=lambda c: (-c.qualified, c.country is None, c.country or ""),
    )
    reasons = {code: sum(getattr(row, code) for row in rows) for code in codes}
    return ReachEstimate(
        qualified=sum(c.qualified for c in by_country),
        reachable=sum(c.reachable for c in by_country),
        unreachable=UnreachableCounts(**reasons),
        by_country=tuple(by_country),
        warnings=checked.warnings,
        computed_at=moment,
    )


# --- words -----------------------------------------------------------------------------------------

_OP_WORDS = {
    "equals": "is", "not_equals": "is not", "in": "is one of", "not_in": "is none of", "contains": "contains",
    "not_contains": "does not contain", "contains_any": "contains any of", "greater": ">", "less": "<",
    "between": "is between", "exists": "is set", "not_exists": "is not set", "before": "is before",
    "after": "is after", "within_last_days": "is within the last", "within_next_days": "is within the next",
    "more_than_days_ago": "is more than",
}


def _value_words(op: str, value: Any) -> str:
    if op in ("exists", "not_exists"):
        return ""
    if op in _DAY_OPS:
        return f" {value} days" + (" ago" if op == "more_than_days_ago" else "")
    if op == "between":
        return f" {json.dumps(value[0])} and {json.dumps(value[1])}"
    return " " + json.dumps(value, ensure_ascii=False)


def describe_definition(document: Mapping[str, Any]) -> str:
    """One line an operator can read: `plan is "gold" AND did order ≥ 2 times in the last 30 days`."""
    def words(node: Mapping[str, Any], top: bool) -> str:
        if "conditions" in node and not any(k in node for k in ("property", "field", "event")):
            parts = [words(c, False) for c in node.get("conditions", [])]
            if not parts:
                return "everyone"
            joined = (" AND " if node.get("match", "all") == "all" else " OR ").join(parts)
            return joined if top or len(parts) == 1 else f"({joined})"
        if "property" in node or "field" in node:
            return f"{node.get('property') or node.get('field')} {_OP_WORDS.get(node.get('op', ''), node.get('op'))}" \
                   f"{_value_words(node.get('op', ''), node.get('value'))}"
        if "event" in node:
            text = f"did {node['event']}" if node.get("did", True) else f"did not do {node['event']}"
            count = node.get("count")
            if count:
                sign = {"at_least": "≥", "at_most": "≤", "exactly": "="}[count["op"]]
                text += f" {sign} {count['value']} times"
            window = node.get("window", "ever")
            if isinstance(window, Mapping) and "last_days" in window:
                text += f" in the last {window['last_days']} days"
            elif isinstance(window, Mapping) and "between" in window:
                text += f" between {window['between'][0]} and {window['between'][1]}"
            if node.get("where"):
                text += " where " + " and ".join(words(w, False) for w in node["where"])
            return text
        if "subscription" in node:
            states = node["subscription"]
            return f"subscription is {states}" if isinstance(states, str) else f"subscription is one of {', '.join(states)}"
        if "reachable" in node:
            return "reachable by SMS" if node["reachable"] else "not reachable by SMS"
        return "?"

    return words(document, True)


# --- saved segments --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentView:
    id: int
    name: str
    description: str | None
    definition: dict[str, Any]
    summary: str
    created_at: datetime
    updated_at: datetime


def _view(row: Segment) -> SegmentView:
    definition = dict(row.definition or {})
    return SegmentView(row.id, row.name, row.description, definition, describe_definition(definition),
                       row.created_at, row.updated_at)


async def campaigns_using_segment(session: AsyncSession, segment_id: int) -> list[str]:
    """Names of scheduled campaigns that target this segment; a segment they use cannot be
    deleted. Campaigns do not exist yet: the campaigns service fills this in."""
    return []


def _check_name(name: str, problems: list[tuple[str, str]]) -> str:
    name = (name or "").strip()
    if not name:
        problems.append(("name", "is required"))
    elif len(name) > NAME_LIMIT:
        problems.append(("name", f"is longer than {NAME_LIMIT} characters"))
    return name


async def _name_taken(session: AsyncSession, name: str, except_id: int | None = None) -> bool:
    query = select(Segment.id).where(Segment.name == name)
    if except_id is not None:
        query = query.where(Segment.id != except_id)
    return await session.scalar(query) is not None


async def _validated(session: AsyncSession, name: str, definition: Any, except_id: int | None = None,
                     ) -> tuple[str, SegmentDefinition | None]:
    """The name and definition checked together, so one ValidationError carries both."""
    problems: list[tuple[str, str]] = []
    name = _check_name(name, problems)
    if name and not problems and await _name_taken(session, name, except_id):
        problems.append(("name", f"a segment named {name!r} already exists"))
    checked = None
    if definition is not None:
        try:
            checked = await check_definition(session, definition)
        except ValidationError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ValidationError(problems)
    return name, checked


async def _row(session: AsyncSession, name: str) -> Segment:
    row = await session.scalar(select(Segment).where(Segment.name == name.strip()))
    if row is None:
        raise NotFound(f"no segment named {name!r}")
    return row


async def _flush(session: AsyncSession, name: str) -> None:
    try:
        await session.flush()
    except IntegrityError:
        raise ValidationError([("name", f"a segment named {name!r} already exists")]) from None


async def create_segment(session: AsyncSession, *, name: str, definition: Any, description: str | None = None,
                         actor: str) -> SegmentView:
    name, checked = await _validated(session, name, definition)
    assert checked is not None
    now = clock.now()
    row = Segment(name=name, description=(description or "").strip() or None, definition=checked.document,
                  created_at=now, updated_at=now)
    session.add(row)
    await _flush(session, name)
    await audit.record(session, actor, "segment.create", name)
    return _view(row)


async def update_segment(session: AsyncSession, name: str, *, definition: Any = None, new_name: str | None = None,
                         description: str | None = None, actor: str) -> SegmentView:
    """Change a segment's definition, name or description (None leaves each as it is; an empty
    description clears it)."""
    row = await _row(session, name)
    target, checked = await _validated(session, new_name if new_name is not None else row.name, definition, row.id)
    changed = []
    if checked is not None and checked.document != row.definition:
        row.definition, changed = checked.document, [*changed, "definition"]
    if target != row.name:
        row.name, changed = target, [*changed, "name"]
    if description is not None and (description.strip() or None) != row.description:
        row.description, changed = description.strip() or None, [*changed, "description"]
    if changed:
        row.updated_at = clock.now()
        await _flush(session, target)
        await audit.record(session, actor, "segment.update", target, fields=changed, previous_name=name.strip())
    return _view(row)


async def duplicate_segment(session: AsyncSession, name: str, *, new_name: str | None = None,
                            actor: str) -> SegmentView:
    """A copy under `new_name`, or "NAME (copy)", "NAME (copy 2)", … when none is given."""
    row = await _row(session, name)
    if new_name is None:
        number = 1
        while True:
            suffix = " (copy)" if number == 1 else f" (copy {number})"
            new_name = row.name[:NAME_LIMIT - len(suffix)] + suffix
            if not await _name_taken(session, new_name):
                break
            number += 1
    target, _ = await _validated(session, new_name, None)
    now = clock.now()
    copy = Segment(name=target, description=row.description, definition=dict(row.definition), created_at=now,
                   updated_at=now)
    session.add(copy)
    await _flush(session, target)
    await audit.record(session, actor, "segment.duplicate", target, source=row.name)
    return _view(copy)


async def delete_segment(session: AsyncSession, name: str, *, actor: str) -> None:
    row = await _row(session, name)
    users = await campaigns_using_segment(session, row.id)
    if users:
        raise Conflict(f"segment {row.name!r} is used by scheduled campaign(s) {', '.join(users)}; "
                       "change or stop them first")
    await session.delete(row)
    await audit.record(session, actor, "segment.delete", row.name)


async def list_segments(session: AsyncSession) -> list[SegmentView]:
    rows = await session.scalars(select(Segment).order_by(Segment.name))
    return [_view(row) for row in rows]


async def get_segment(session: AsyncSession, name: str) -> SegmentView:
    return _view(await _row(session, name))
