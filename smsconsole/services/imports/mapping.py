"""Mapping a file's columns to profile or event fields and properties (known spellings first,
everything else a property), checking a given mapping, and inferring property types from a sample."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole.models import PropertyDef
from smsconsole.services import profiles as P
from smsconsole.services.imports.error_file import is_error_note
from smsconsole.services.imports.model import FIELD_TARGETS, PROPERTIES, PROPERTY_PREFIX, SKIP
from smsconsole.services.values import TYPES, infer_json_type, infer_type, parse_datetime

_WHO = {
    "user_id": ("userid", "id", "externalid", "customerid", "uid", "clientid", "contactid", "memberid",
                "accountid", "externaluserid"),
    "phone": ("phone", "mobile", "msisdn", "phonenumber", "mobilenumber", "mobilephone", "cellphone",
              "cell", "cellnumber", "phoneno", "telephone", "tel", "contactnumber", "e164", "number"),
}
# Normalized header (lower case, letters and digits only) → target, in order of preference: when
# two columns match one target, the spelling listed first wins and the other stays a property.
_SPELLINGS: dict[str, dict[str, tuple[str, ...]]] = {
    "profiles": {
        **_WHO,
        "name": ("name", "fullname", "displayname", "contactname", "customername"),
        "timezone": ("timezone", "tz", "tzname", "olson", "zone"),
        "country": ("country", "countrycode", "countryiso", "iso2"),
        "optin_at": ("optinat", "optintimestamp", "optin", "optindate", "optintime", "optedinat", "optedin",
                     "smsoptinat", "smsoptin", "consentat", "consenttimestamp", "consentdate", "consentedat",
                     "consent", "subscribedat"),
        "optout_at": ("optoutat", "optouttimestamp", "optout", "optoutdate", "optouttime", "optedoutat", "optedout",
                      "smsoptoutat", "smsoptout", "unsubscribedat", "unsubscribedate"),
        PROPERTIES: ("properties", "traits", "attributes"),
    },
    "events": {
        **_WHO,
        "name": ("event", "eventname", "name", "eventtype", "type", "action"),
        "at": ("at", "timestamp", "time", "eventtime", "eventat", "eventtimestamp", "occurredat", "datetime",
               "date", "eventdate", "happenedat", "createdat", "ts"),
        PROPERTIES: ("properties", "props", "attributes", "eventproperties"),
    },
}
_TIME_TARGETS = ("optin_at", "optout_at", "at")
_LEADING_ZERO = re.compile(r"[+-]?0\d")


def _normalized(header: str) -> str:
    return re.sub(r"[\W_]+", "", header.lower())


def property_name_for(column: str, format: str = "csv") -> str:
    """The property a column becomes by default: CSV headers in snake case ("Zip Code" → zip_code),
    JSON keys as they are."""
    if format == "jsonl":
        return column
    return re.sub(r"\W+", "_", column.strip().lower()).strip("_") or column.strip()


def _as_property(kind: str, format: str, column: str) -> str:
    """A column's default when it is no field: a property, unless its name is a profile field's
    or it holds an error file's notes."""
    if is_error_note(format, column):
        return SKIP
    name = property_name_for(column, format)
    if kind == "profiles" and name in P.PROFILE_FIELDS:
        return SKIP
    return PROPERTY_PREFIX + name


def _is_object(value: Any) -> bool:
    if isinstance(value, dict):
        return True
    if isinstance(value, str) and value.strip().startswith("{"):
        with contextlib.suppress(ValueError):
            return isinstance(json.loads(value), dict)
    return False


def _is_moment(value: Any) -> bool:
    if not isinstance(value, str):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    try:
        parse_datetime(value)
    except (ValueError, OverflowError):
        return False
    return True


def propose_mapping(kind: str, format: str, columns: list[str],
             samples: Mapping[str, list[Any]]) -> tuple[dict[str, str], list[str]]:
    """The automatic mapping: known spellings to fields, everything else a property."""
    spellings = _SPELLINGS[kind]
    candidates: dict[str, list[tuple[int, str]]] = {}
    for column in columns:
        key = _normalized(column)
        for target, names in spellings.items():
            if key in names:
                candidates.setdefault(target, []).append((names.index(key), column))
                break
    mapping = {column: _as_property(kind, format, column) for column in columns}
    warnings: list[str] = []
    for target, found in candidates.items():
        found.sort()
        for _, column in found:
            values = [v for v in samples.get(column, []) if v not in (None, "")]
            if target in _TIME_TARGETS and values and not any(_is_moment(v) for v in values):
                warnings.append(f"column {column!r} does not hold dates, so it is not used as {target}")
                continue
            if target == PROPERTIES and not any(_is_object(v) for v in values):
                continue
            mapping[column] = target
            others = [c for _, c in found if c != column]
            if others:
                warnings.append(f"{', '.join(map(repr, others))} also look like {target}; {column!r} is used")
            break
    notes = [column for column in columns if is_error_note(format, column)]
    if notes:
        warnings.append(f"{', '.join(map(repr, notes))} {'are' if len(notes) > 1 else 'is'} skipped: the notes "
                        "of an error file, not data")
    warnings.extend(f"column {column!r} is skipped: its name is a profile field's; map it to "
                    f"property:<name> to keep it" for column, target in mapping.items()
                    if target == SKIP and not is_error_note(format, column))
    return mapping, warnings


def parse_target(column: str, target: str, kind: str, format: str) -> tuple[str | None, str | None]:
    """(normalized target, None) or (None, reason)."""
    target = target.strip()
    if target in (SKIP, PROPERTIES) or target in FIELD_TARGETS[kind]:
        return target, None
    if target == "property":
        target = PROPERTY_PREFIX + property_name_for(column, format)
    if target.startswith(PROPERTY_PREFIX):
        name = target[len(PROPERTY_PREFIX):].strip()
        if not name or len(name) > 128:
            return None, "a property name must be 1–128 characters"
        if kind == "profiles" and name in P.PROFILE_FIELDS:
            return None, f"{name!r} is a profile field; map the column to {name} instead"
        return PROPERTY_PREFIX + name, None
    choices = ", ".join((*FIELD_TARGETS[kind], "property:<name>", PROPERTIES, SKIP))
    return None, f"{target!r} is not a target; use one of {choices}"


def mapping_problems(kind: str, mapping: Mapping[str, str]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    by_target: dict[str, list[str]] = {}
    for column, target in mapping.items():
        if target != SKIP and target != PROPERTIES:
            by_target.setdefault(target, []).append(column)
    for target, columns in by_target.items():
        if len(columns) > 1:
            what = f"property {target[len(PROPERTY_PREFIX):]!r}" if target.startswith(PROPERTY_PREFIX) else target
            problems.append(("mapping", f"columns {', '.join(map(repr, columns))} all map to {what}; keep one"))
    if "user_id" not in by_target and "phone" not in by_target:
        problems.append(("mapping", "no column maps to user_id or phone; every row needs one of them"))
    if kind == "events":
        if "name" not in by_target:
            problems.append(("mapping", "no column maps to the event name"))
        if "at" not in by_target:
            problems.append(("mapping", "no column maps to the event time (at); without it a re-import "
                                        "would record every event again"))
    return problems


def infer_column(format: str, values: list[Any]) -> str:
    values = [v for v in values if v not in (None, "")]
    if format == "jsonl":
        kinds = {infer_json_type(v) for v in values}
        return kinds.pop() if len(kinds) == 1 else "string"
    inferred = infer_type(values)
    if inferred == "boolean" and all(str(v).strip() in ("0", "1") for v in values):
        inferred = "number"  # a 0/1 sample is more often a count than a flag; a later 2 would then fail
    if inferred == "number" and any(_LEADING_ZERO.match(str(v).strip()) for v in values):
        inferred = "string"  # zip codes, account numbers: a leading zero is part of the value
    return inferred


def check_types(overrides: Mapping[str, str], known: Mapping[str, str], scope_note: str = "") -> list[tuple[str, str]]:
    problems = []
    for name, type_ in overrides.items():
        if type_ not in TYPES:
            problems.append((f"types.{name}", f"{type_!r} is not a type; use one of {', '.join(TYPES)}"))
        elif name in known and known[name] != type_:
            problems.append((f"types.{name}", f"is already a {known[name]} property{scope_note}; "
                                              f"its type cannot change to {type_}"))
    return problems


async def known_property_types(session: AsyncSession, kind: str) -> dict[str, str]:
    """Property types already stored, for `preview_import(known_types=…)`: the profile ones, or for
    events every event's (when two events disagree on a property, the first by event name)."""
    if kind == "profiles":
        return await P.property_types(session, "profile")
    flat: dict[str, str] = {}
    for types in (await stored_event_types(session)).values():
        for name, type_ in types.items():
            flat.setdefault(name, type_)
    return flat


async def stored_event_types(session: AsyncSession) -> dict[str, dict[str, str]]:
    rows = await session.execute(select(PropertyDef.scope, PropertyDef.name, PropertyDef.type)
                                 .where(PropertyDef.scope.like("event:%")).order_by(PropertyDef.scope))
    found: dict[str, dict[str, str]] = {}
    for scope, name, type_ in rows.all():
        found.setdefault(scope.removeprefix("event:"), {})[name] = type_
    return found


class Plan:
    """The mapping applied to records; JSON keys the sample did not show get the automatic mapping."""

    def __init__(self, kind: str, format: str, mapping: Mapping[str, str]) -> None:
        self.kind, self.format = kind, format
        self.mapping = dict(mapping)
        self.column_of: dict[str, str] = {}
        for column, target in self.mapping.items():
            self._remember(column, target)

    def _remember(self, column: str, target: str) -> None:
        if target.startswith(PROPERTY_PREFIX):
            self.column_of.setdefault(target[len(PROPERTY_PREFIX):], column)
        elif target not in (SKIP, PROPERTIES):
            self.column_of.setdefault(target, column)

    def target(self, column: str) -> str:
        found = self.mapping.get(column)
        if found is None:
            key = _normalized(column)
            found = _as_property(self.kind, self.format, column)
            for target, names in _SPELLINGS[self.kind].items():
                if key in names and target not in self.column_of and target != PROPERTIES:
                    found = target
                    break
            self.mapping[column] = found
            self._remember(column, found)
        return found

    def column(self, name: str) -> str:
        """The file's column for a field or property name in a RowError."""
        return self.column_of.get(name, name)
