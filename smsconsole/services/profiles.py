"""Profiles, consent and events: the one place that turns raw input (a CSV row, an API object)
into stored rows. Imports and the ingestion API both call `prepare_profile` / `upsert_profiles`
and `prepare_event` / `record_events`, in batches, with no per-row round trips."""

from __future__ import annotations

import hashlib
import json
import re
import zoneinfo
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from typing import Any

import phonenumbers
from phonenumbers import timezone as pn_timezone
from sqlalchemy import bindparam, case, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole import clock
from smsconsole.models import Consent, Event, Profile, PropertyDef
from smsconsole.phone import normalize_region, parse_number
from smsconsole.services.errors import NotFound, ServiceError, ValidationError
from smsconsole.services.values import coerce, format_datetime, infer_json_type, parse_datetime

PROFILE_FIELDS = ("user_id", "phone", "name", "timezone", "country", "optin_at", "optout_at")
SUBSCRIPTION_STATES = ("subscribed", "unsubscribed", "never")
OPTIN_EVENT, OPTOUT_EVENT = "sms_optin", "sms_optout"


class RowError(Exception):
    """One input row is unusable: every (column, reason) at once."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{c}: {r}" for c, r in problems))


class PropertyTypeConflict(ServiceError):
    """Rows of a batch hold a value that their property's type cannot take, the type having been
    decided by an earlier row of the batch or by a concurrent writer; nothing of the batch was
    written. `rows` are (index in the batch, property, reason); the message names no value."""

    def __init__(self, rows: list[tuple[int, str, str]]) -> None:
        self.rows = rows
        names = ", ".join(sorted({repr(name) for _, name, _ in rows}))
        super().__init__(f"{len({i for i, _, _ in rows})} row(s) hold a value of another type than property "
                         f"{names} was given first; nothing of the batch was written")


@dataclass(frozen=True)
class AudienceDefaults:
    region: str | None = None  # for national phone numbers
    timezone: str = "UTC"  # when neither the row nor the phone tells


async def audience_defaults(session: AsyncSession) -> AudienceDefaults:
    from smsconsole.services.settings import get_settings

    values = await get_settings(session)
    return AudienceDefaults(region=values["default_region"] or None, timezone=values["default_timezone"] or "UTC")


@dataclass(frozen=True)
class PreparedProfile:
    user_id: str | None
    phone: str | None
    phone_raw: str | None
    phone_status: str  # missing | invalid | valid
    phone_reason: str | None
    phone_type: str | None
    sms_capable: bool
    name: str | None
    timezone: str | None  # explicit, else from the phone
    country: str | None  # explicit, else from the phone
    properties: dict[str, Any] = field(default_factory=dict)
    property_types: dict[str, str] = field(default_factory=dict)
    optin_at: datetime | None = None
    optout_at: datetime | None = None
    raw_properties: dict[str, Any] = field(default_factory=dict)  # as given, to coerce again if need be

    @property
    def key(self) -> tuple[str, str]:
        return ("user_id", self.user_id) if self.user_id else ("phone", self.phone or "")


@lru_cache(maxsize=1024)
def valid_timezone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


@lru_cache(maxsize=1)
def _zones_by_country() -> dict[str, set[str]]:
    """Country code → its zones, from the IANA zone.tab shipped with tzdata."""
    import importlib.resources

    try:
        text = importlib.resources.files("tzdata.zoneinfo").joinpath("zone.tab").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        return {}
    table: dict[str, set[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            parts = line.split("\t")
            if len(parts) >= 3:
                table.setdefault(parts[0], set()).add(parts[2])
    return table


def _phone_timezone(e164: str) -> str | None:
    """The phone's zone when it has one; when phonenumbers lists several (GB mobiles also name
    Guernsey, Jersey, Isle of Man), the one in the number's own country if that is unique."""
    number = phonenumbers.parse(e164)
    zones = [z for z in pn_timezone.time_zones_for_number(number) if z != "Etc/Unknown"]
    if len(zones) == 1:
        return zones[0]
    region = phonenumbers.region_code_for_number(number)
    local = [z for z in zones if z in _zones_by_country().get(region or "", set())]
    return local[0] if len(local) == 1 else None


def _text(value: Any, column: str, limit: int, problems: list[tuple[str, str]]) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dict, list, bool)):
        problems.append((column, "must be text"))
        return None
    text = str(value).strip()
    if len(text) > limit:
        problems.append((column, f"is longer than {limit} characters"))
        return None
    return text or None


def _moment(value: Any, column: str, problems: list[tuple[str, str]]) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return parse_datetime(str(value))
    except ValueError as exc:
        problems.append((column, str(exc)))
        return None


def prepare_profile(
    values: Mapping[str, Any], defaults: AudienceDefaults, property_types: Mapping[str, str] | None = None,
) -> PreparedProfile:
    """Validate and normalize one profile. Keys other than PROFILE_FIELDS are properties, coerced
    to `property_types[name]` (inferred from the value when not given). Pass one dict for a whole
    batch: the types a valid row infers are added to it, so a later row is coerced to them (a
    property keeps the type it was first given). Raises RowError."""
    problems: list[tuple[str, str]] = []
    types = property_types or {}
    user_id = _text(values.get("user_id"), "user_id", 128, problems)
    phone_raw = _text(values.get("phone"), "phone", 64, problems)
    name = _text(values.get("name"), "name", 200, problems)
    tz = _text(values.get("timezone"), "timezone", 64, problems)
    if tz and not valid_timezone(tz):
        problems.append(("timezone", f"{tz!r} is not a time zone (e.g. Europe/London, Asia/Kolkata)"))
        tz = None
    country_raw = _text(values.get("country"), "country", 64, problems)
    country = None
    if country_raw:
        country = normalize_region(country_raw)
        if country is None:
            problems.append(("country", f"{country_raw!r} is not a two-letter country code"))
    optin_at = _moment(values.get("optin_at"), "optin_at", problems)
    optout_at = _moment(values.get("optout_at"), "optout_at", problems)

    phone = phone_reason = phone_type = None
    phone_status, sms_capable, phone_refused = "missing", False, False
    if phone_raw:
        info = parse_number(phone_raw, defaults.region)
        if info.valid and info.e164:
            phone, phone_status, phone_type, sms_capable = info.e164, "valid", info.number_type, info.sms_capable
            country = country or info.region
            tz = tz or _phone_timezone(info.e164)
        else:
            phone_status, phone_reason = "invalid", info.reason
            if info.has_letters:  # no number as typed (a word, a vanity number): refused, not kept as invalid
                phone_refused = True
                problems.append(("phone", info.reason or "contains letters"))
    if not user_id and phone_status != "valid" and not phone_refused:
        problems.append(("user_id" if not phone_raw else "phone",
                         "a profile needs a user_id or a valid phone" if not phone_raw
                         else f"{(phone_reason or 'is not valid').rstrip('.')}; with no user_id the profile cannot be kept"))

    raw_properties: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    used_types: dict[str, str] = {}
    for key, raw in values.items():
        if key in PROFILE_FIELDS or raw is None or raw == "":
            continue
        if not isinstance(key, str) or not key.strip() or len(key) > 128:
            problems.append((str(key)[:40], "property names must be 1–128 characters"))
            continue
        raw_properties[key] = raw
        _add_typed(properties, used_types, key, raw, types.get(key), problems)
    if problems:
        raise RowError(problems)
    _learn_types(property_types, used_types)
    return PreparedProfile(user_id, phone, phone_raw, phone_status, phone_reason, phone_type, sms_capable,
                           name, tz, country, properties, used_types, optin_at, optout_at, raw_properties)


def _add_typed(properties: dict[str, Any], used: dict[str, str], key: str, raw: Any, known: str | None,
               problems: list[tuple[str, str]]) -> None:
    """The value coerced to its property's known type, else to the type the value suggests."""
    type_ = known or infer_json_type(raw)
    try:
        properties[key] = coerce(raw, type_)
        used[key] = type_
    except ValueError as exc:
        problems.append((key, f"{exc} (property type {type_})"))


def _learn_types(batch_types: Mapping[str, str] | None, used: Mapping[str, str]) -> None:
    if isinstance(batch_types, MutableMapping):
        for name, type_ in used.items():
            batch_types.setdefault(name, type_)


@dataclass(frozen=True)
class UpsertResult:
    created: int
    updated: int
    unchanged: int
    profile_ids: list[int]  # in input order


def _insert(session: AsyncSession, model: Any) -> Any:
    dialect = session.bind.dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(model)


def _insert_ignore(session: AsyncSession, model: Any, index_elements: Sequence[str]) -> Any:
    return _insert(session, model).on_conflict_do_nothing(index_elements=list(index_elements))


async def property_types(session: AsyncSession, scope: str = "profile") -> dict[str, str]:
    rows = await session.execute(select(PropertyDef.name, PropertyDef.type).where(PropertyDef.scope == scope))
    return dict(rows.all())


async def _decide_types(session: AsyncSession, used: Sequence[tuple[str, Mapping[str, str]]]) -> dict[str, dict[str, str]]:
    """scope → {property: type} for the properties a batch uses: a new property gets the type of
    the batch's first value, unless a concurrent writer defined it first (the insert waits for that
    writer on PostgreSQL and is serialized on SQLite, so the read-back is the type that holds)."""
    wanted: dict[tuple[str, str], str] = {}
    for scope, types in used:
        for name, type_ in types.items():
            wanted.setdefault((scope, name), type_)
    if not wanted:
        return {}
    keys = sorted(wanted)  # one order for every writer, so concurrent batches never deadlock
    await session.execute(_insert_ignore(session, PropertyDef, ["scope", "name"]),
                          [{"scope": scope, "name": name, "type": wanted[scope, name]} for scope, name in keys])
    decided: dict[str, dict[str, str]] = {}
    for scope in sorted({scope for scope, _ in keys}):
        names = [name for s, name in keys if s == scope]
        for start in range(0, len(names), 500):
            rows = await session.execute(select(PropertyDef.name, PropertyDef.type).where(
                PropertyDef.scope == scope, PropertyDef.name.in_(names[start:start + 500])))
            decided.setdefault(scope, {}).update(dict(rows.all()))
    return decided


def _retyped(index: int, properties: dict[str, Any], raw: Mapping[str, Any], used: dict[str, str],
             decided: Mapping[str, str], problems: list[tuple[int, str, str]]) -> tuple[dict[str, Any], dict[str, str]]:
    """The row's properties in the decided types: coerced again from the value as given, the same
    rule as when the type is known before the row is read."""
    if all(decided.get(name, type_) == type_ for name, type_ in used.items()):
        return properties, used
    properties, used = dict(properties), dict(used)
    for name, type_ in list(used.items()):
        target = decided.get(name, type_)
        if target != type_:
            try:
                properties[name] = coerce(raw.get(name, properties[name]), target)
                used[name] = target
            except ValueError as exc:
                problems.append((index, name, f"{exc} (property type {target})"))
    return properties, used


async def _conform_profiles(session: AsyncSession, prepared: Sequence[PreparedProfile]) -> list[PreparedProfile]:
    decided = (await _decide_types(session, [("profile", p.property_types) for p in prepared])).get("profile", {})
    problems: list[tuple[int, str, str]] = []
    conformed = []
    for index, p in enumerate(prepared):
        properties, used = _retyped(index, p.properties, p.raw_properties, p.property_types, decided, problems)
        conformed.append(p if used is p.property_types else replace(p, properties=properties, property_types=used))
    if problems:
        raise PropertyTypeConflict(problems)
    return conformed


_PHONE_COLUMNS = ("phone", "phone_raw", "phone_status", "phone_reason", "phone_type", "sms_capable")
_KEEP_PHONE = object()  # a consent's number: the profile's own, as the batch gave none before it


@dataclass
class _Change:
    """What one batch says about one person: the columns it gives, properties to merge, and the
    latest subscription move; applied to the stored row in the database, so a concurrent writer's
    other columns and properties stay."""

    key: tuple[str, str]
    user_id: str | None
    columns: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    subscription: tuple[str, datetime] | None = None
    consents: list[tuple[str, datetime, Any]] = field(default_factory=list)

    def fold(self, p: PreparedProfile) -> None:
        if p.phone_raw:
            self.columns.update({column: getattr(p, column) for column in _PHONE_COLUMNS})
        for column in ("name", "timezone", "country"):
            if getattr(p, column):
                self.columns[column] = getattr(p, column)
        self.properties.update(p.properties)
        for moment, target in ((p.optin_at, "subscribed"), (p.optout_at, "unsubscribed")):
            if moment:
                if self.subscription is None or moment > self.subscription[1]:
                    self.subscription = (target, moment)
                self.consents.append((target, moment, self.columns.get("phone", _KEEP_PHONE)))

    def new_row(self, defaults: AudienceDefaults, now: datetime) -> dict[str, Any]:
        state, moment = self.subscription or ("never", None)
        return {
            "user_id": self.user_id, "phone": None, "phone_raw": None, "phone_status": "missing",
            "phone_reason": None, "phone_type": None, "sms_capable": False, "name": None, "timezone": defaults.timezone,
            "country": None, **self.columns, "properties": self.properties, "subscription": state,
            "subscription_at": moment, "created_at": now, "updated_at": now,
        }

    def changes(self, row: Row[Any]) -> bool:
        """Whether applying this to the row as read changes anything (else nothing is written)."""
        stored = row.properties or {}
        return (any(not _same(getattr(row, column), value) for column, value in self.columns.items())
                or ("timezone" not in self.columns and row.timezone is None)
                or any(name not in stored or not _same(stored[name], value) for name, value in self.properties.items())
                or (self.subscription is not None
                    and (row.subscription_at is None or self.subscription[1] > row.subscription_at)))

    def shape(self) -> tuple[Any, ...]:
        return (tuple(sorted(self.columns)), bool(self.properties), self.subscription is not None)

    def parameters(self, row_id: int, defaults: AudienceDefaults, now: datetime) -> dict[str, Any]:
        values = {f"new_{column}": value for column, value in self.columns.items()}
        if "timezone" not in self.columns:
            values["new_timezone"] = defaults.timezone
        if self.properties:
            values["new_properties"] = self.properties
        if self.subscription:
            values["new_subscription"], values["new_subscription_at"] = self.subscription
        return {**values, "row_id": row_id, "new_updated_at": now}


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _update_statement(dialect: str, shape: tuple[Any, ...]) -> Any:
    """UPDATE … SET the given columns, properties merged into the stored ones (SQLite json_patch,
    PostgreSQL jsonb ||) and the subscription moved only forward in time — all decided by the
    database on the row as it is, so concurrent writers lose nothing of each other's."""
    columns, has_properties, has_subscription = shape
    table = Profile.__table__
    values: dict[str, Any] = {column: bindparam(f"new_{column}", type_=table.c[column].type) for column in columns}
    if "timezone" not in columns:  # the default zone, only where the profile has none
        values["timezone"] = func.coalesce(table.c.timezone, bindparam("new_timezone", type_=table.c.timezone.type))
    if has_properties:
        patch = bindparam("new_properties", type_=table.c.properties.type)
        values["properties"] = (table.c.properties.op("||")(patch) if dialect == "postgresql"
                                else func.json_patch(table.c.properties, patch))
    if has_subscription:
        moment = bindparam("new_subscription_at", type_=table.c.subscription_at.type)
        newer = or_(table.c.subscription_at.is_(None), table.c.subscription_at < moment)
        values["subscription"] = case((newer, bindparam("new_subscription", type_=table.c.subscription.type)),
                                      else_=table.c.subscription)
        values["subscription_at"] = case((newer, moment), else_=table.c.subscription_at)
    values["updated_at"] = bindparam("new_updated_at", type_=table.c.updated_at.type)
    return update(table).where(table.c.id == bindparam("row_id")).values(values)


async def _find(session: AsyncSession, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Row[Any]]:
    """The stored profile of each identity: by user id, or for a phone the oldest profile with it."""
    table = Profile.__table__
    found: dict[tuple[str, str], Row[Any]] = {}
    for kind, column in (("user_id", table.c.user_id), ("phone", table.c.phone)):
        values = sorted(value for k, value in keys if k == kind)
        for start in range(0, len(values), 1000):
            rows = await session.execute(select(table).where(column.in_(values[start:start + 1000]))
                                         .order_by(table.c.id))
            for row in rows:
                found.setdefault((kind, getattr(row, kind)), row)
    return found


async def _create(session: AsyncSession, changes: Sequence[_Change], defaults: AudienceDefaults,
                  now: datetime) -> dict[tuple[str, str], int]:
    """Insert the people not stored yet; one a concurrent writer has just created is skipped (the
    unique user id, or phone without a user id) and left out of the answer."""
    table = Profile.__table__  # a Core insert: the ORM's bulk insert splits rows by which values are None
    ordered = sorted(changes, key=lambda c: c.key)  # one lock order for every writer
    result = await session.execute(
        _insert(session, table).on_conflict_do_nothing().returning(table.c.id, table.c.user_id, table.c.phone),
        [c.new_row(defaults, now) for c in ordered],
    )
    return {("user_id", user_id) if user_id else ("phone", phone or ""): new_id for new_id, user_id, phone in result}


async def upsert_profiles(
    session: AsyncSession, prepared: Sequence[PreparedProfile], *, source: str, defaults: AudienceDefaults,
) -> UpsertResult:
    """Create or update profiles by user id (else phone), merging properties; a row that changes
    nothing writes nothing, so importing the same file twice is a no-op. Opt-in/out timestamps
    move the subscription forward in time only, each with a consent record. Safe against
    concurrent writers: the database merges each batch into the row as it is then, and one person
    is one profile (a unique user id, or a unique phone among profiles without one). Raises
    PropertyTypeConflict when a row's property value cannot take the type decided for it."""
    if not prepared:
        return UpsertResult(0, 0, 0, [])
    now = clock.now()
    prepared = await _conform_profiles(session, prepared)
    changes: dict[tuple[str, str], _Change] = {}
    for p in prepared:
        changes.setdefault(p.key, _Change(p.key, p.user_id)).fold(p)

    found = await _find(session, list(changes))
    ids = {key: row.id for key, row in found.items()}
    created = 0
    missing = [key for key in changes if key not in found]
    for _ in range(3):  # a person created concurrently is found on the next read (deleted again: retried)
        if not missing:
            break
        inserted = await _create(session, [changes[key] for key in missing], defaults, now)
        ids.update(inserted)
        created += len(inserted)
        raced = await _find(session, [key for key in missing if key not in inserted])
        found.update(raced)
        ids.update({key: row.id for key, row in raced.items()})
        missing = [key for key in missing if key not in inserted and key not in raced]
    if missing:
        raise ServiceError("profiles changed too fast while being written; retry")

    updates = [(row.id, changes[key]) for key, row in sorted(found.items(), key=lambda item: item[1].id)
               if changes[key].changes(row)]
    by_shape: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row_id, change in updates:
        by_shape.setdefault(change.shape(), []).append(change.parameters(row_id, defaults, now))
    dialect = session.bind.dialect.name
    for shape, parameters in by_shape.items():
        await session.execute(_update_statement(dialect, shape), parameters)

    consents = sorted(
        {(ids[key], state, at): (found[key].phone if key in found else None) if phone is _KEEP_PHONE else phone
         for key, change in changes.items() for state, at, phone in change.consents}.items())
    if consents:
        await session.execute(
            _insert_ignore(session, Consent, ["profile_id", "state", "source", "at"]),
            [{"profile_id": pid, "state": state, "source": source, "at": at, "phone": phone}
             for (pid, state, at), phone in consents],
        )
    return UpsertResult(created, len(updates), len(found) - len(updates), [ids[p.key] for p in prepared])


# --- events ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreparedEvent:
    user_id: str | None
    phone: str | None
    name: str
    at: datetime
    properties: dict[str, Any]
    property_types: dict[str, str]
    raw_properties: dict[str, Any] = field(default_factory=dict)  # as given, to coerce again if need be

    @property
    def dedupe(self) -> str:
        who = f"u:{self.user_id}" if self.user_id else f"p:{self.phone}"
        raw = json.dumps([who, self.name, format_datetime(self.at), self.properties], sort_keys=True,
                         ensure_ascii=False)
        return hashlib.sha1(raw.encode()).hexdigest()


EVENT_FIELDS = ("user_id", "phone", "name", "event", "at", "time", "timestamp", "properties")


def prepare_event(values: Mapping[str, Any], defaults: AudienceDefaults,
                  property_types: Mapping[str, str] | None = None) -> PreparedEvent:
    """Validate one event: who (user_id or phone), name, time, properties. As for profiles, pass
    one dict per event name for a whole batch and the types it infers are added to it. Raises
    RowError."""
    problems: list[tuple[str, str]] = []
    user_id = _text(values.get("user_id"), "user_id", 128, problems)
    phone_raw = _text(values.get("phone"), "phone", 64, problems)
    name = _text(values.get("name", values.get("event")), "name", 128, problems)
    raw_time = next((values[k] for k in ("at", "time", "timestamp") if values.get(k) not in (None, "")), None)
    at = _moment(raw_time, "at", problems) if raw_time is not None else clock.now()
    phone = None
    if phone_raw:
        info = parse_number(phone_raw, defaults.region)
        if info.valid:
            phone = info.e164
        elif not user_id or info.has_letters:
            problems.append(("phone", info.reason or "is not valid"))
    if not user_id and not phone_raw:
        problems.append(("user_id", "an event needs a user_id or a phone"))
    if not name:
        problems.append(("name", "is required"))
    raw_props = values.get("properties")
    if raw_props is None:
        raw_props = {k: v for k, v in values.items() if k not in EVENT_FIELDS and v not in (None, "")}
    if not isinstance(raw_props, Mapping):
        problems.append(("properties", "must be an object"))
        raw_props = {}
    types = property_types or {}
    raw_properties = {key: raw for key, raw in raw_props.items() if raw is not None and raw != ""}
    properties: dict[str, Any] = {}
    used: dict[str, str] = {}
    for key, raw in raw_properties.items():
        _add_typed(properties, used, key, raw, types.get(key), problems)
    if problems:
        raise RowError(problems)
    assert name is not None and at is not None
    _learn_types(property_types, used)
    return PreparedEvent(user_id, phone, name, at, properties, used, raw_properties)


@dataclass(frozen=True)
class EventsResult:
    recorded: int
    duplicates: int
    profiles_created: int


async def record_events(session: AsyncSession, prepared: Sequence[PreparedEvent], *, source: str,
                        defaults: AudienceDefaults) -> EventsResult:
    """Store events (a profile is created for an unknown user id or phone); a repeated event is
    ignored. `sms_optin` / `sms_optout` also change the subscription, forward in time only.
    Raises PropertyTypeConflict as `upsert_profiles` does, for event properties."""
    if not prepared:
        return EventsResult(0, 0, 0)
    prepared = await _conform_events(session, prepared)
    people = [
        PreparedProfile(e.user_id, e.phone, e.phone if not e.user_id else None,
                        "valid" if e.phone and not e.user_id else "missing", None, None, False, None, None, None,
                        optin_at=e.at if e.name == OPTIN_EVENT else None,
                        optout_at=e.at if e.name == OPTOUT_EVENT else None)
        for e in prepared
    ]
    people = [_with_phone_details(p, defaults) for p in people]
    upserted = await upsert_profiles(session, people, source="event", defaults=defaults)
    rows = [{"profile_id": pid, "name": e.name, "at": e.at, "properties": e.properties, "dedupe": e.dedupe}
            for e, pid in zip(prepared, upserted.profile_ids, strict=True)]
    unique_rows = sorted({row["dedupe"]: row for row in rows}.values(), key=lambda row: row["dedupe"])
    result = await session.execute(
        _insert_ignore(session, Event, ["dedupe"]).returning(Event.__table__.c.id), unique_rows,
    )
    recorded = len(result.scalars().all())
    return EventsResult(recorded, len(rows) - recorded, upserted.created)


async def _conform_events(session: AsyncSession, prepared: Sequence[PreparedEvent]) -> list[PreparedEvent]:
    decided = await _decide_types(session, [(f"event:{e.name}", e.property_types) for e in prepared])
    problems: list[tuple[int, str, str]] = []
    conformed = []
    for index, e in enumerate(prepared):
        properties, used = _retyped(index, e.properties, e.raw_properties, e.property_types,
                                    decided.get(f"event:{e.name}", {}), problems)
        conformed.append(e if used is e.property_types else replace(e, properties=properties, property_types=used))
    if problems:
        raise PropertyTypeConflict(problems)
    return conformed


def _with_phone_details(p: PreparedProfile, defaults: AudienceDefaults) -> PreparedProfile:
    if not p.phone_raw:
        return p
    info = parse_number(p.phone_raw, defaults.region)
    return replace(p, phone_type=info.number_type, sms_capable=info.sms_capable, country=info.region,
                   timezone=_phone_timezone(p.phone_raw) if info.valid else None)


# --- reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileSummary:
    id: int
    user_id: str | None
    phone: str | None
    name: str | None
    country: str | None
    subscription: str
    reachable: bool


@dataclass(frozen=True)
class ConsentView:
    state: str
    source: str
    at: datetime
    phone: str | None
    detail: str | None


@dataclass(frozen=True)
class EventView:
    name: str
    at: datetime
    properties: dict[str, Any]


@dataclass(frozen=True)
class ProfileDetail:
    id: int
    user_id: str | None
    phone: str | None
    phone_raw: str | None
    phone_status: str
    phone_reason: str | None
    phone_type: str | None
    sms_capable: bool
    name: str | None
    timezone: str | None
    country: str | None
    properties: dict[str, Any]
    property_types: dict[str, str]
    subscription: str
    subscription_at: datetime | None
    reachable: bool
    unreachable_reason: str | None
    consents: list[ConsentView]
    events: list[EventView]
    event_count: int
    created_at: datetime
    updated_at: datetime
    # where the time zone came from: "phone" (the number's region), "default" (the default setting,
    # as neither the input nor the phone told), "given" (by an import or the API); None without one.
    # Inferred by comparing, as only the zone itself is stored.
    timezone_source: str | None = None


def timezone_source(timezone: str | None, phone: str | None, default_timezone: str | None) -> str | None:
    if not timezone:
        return None
    from_phone = _phone_timezone(phone) if phone else None
    if from_phone == timezone:
        return "phone"
    if from_phone is None and timezone == default_timezone:
        return "default"
    return "given"


def unreachable_reason(phone_status: str, sms_capable: bool, subscription: str) -> str | None:
    """Why SMS cannot reach this profile now (None when it can), in the order reach reports it."""
    if phone_status == "missing":
        return "no phone"
    if phone_status == "invalid":
        return "invalid phone"
    if not sms_capable:
        return "not mobile-capable"
    if subscription == "unsubscribed":
        return "unsubscribed"
    if subscription != "subscribed":
        return "never opted in"
    return None


def _summary(row: Profile) -> ProfileSummary:
    return ProfileSummary(row.id, row.user_id, row.phone, row.name, row.country, row.subscription,
                          unreachable_reason(row.phone_status, row.sms_capable, row.subscription) is None)


_PHONE_LIKE = re.compile(r"\+?[\d\s().\-/]+")
MIN_PHONE_PREFIX_DIGITS = 4  # fewer digits than this is a user id or name, not the start of a phone


def phone_prefixes(query: str, default_region: str | None) -> list[str]:
    """The starts of E.164 numbers a partly typed phone can mean: `+44 7400` → `+447400`; with a
    default region, `07400 12` → `+44740012` (the national prefix dropped); `00 44 7400` → `+447400`.
    Empty when the text does not look like (part of) a phone."""
    text = query.strip()
    if not _PHONE_LIKE.fullmatch(text):
        return []
    digits = re.sub(r"\D", "", text)
    if len(digits) < MIN_PHONE_PREFIX_DIGITS:
        return []
    if text.startswith("+"):
        return [f"+{digits}"]
    if digits.startswith("00"):
        return [f"+{digits[2:]}"]
    prefixes = [] if digits.startswith("0") else [f"+{digits}"]  # international, typed without its plus
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(default_region or "")
    if metadata is not None and metadata.country_code:
        national = digits
        if metadata.national_prefix and national.startswith(metadata.national_prefix):
            national = national[len(metadata.national_prefix):]
        prefixes.append(f"+{metadata.country_code}{national}")
    return list(dict.fromkeys(prefixes))


async def search_profiles(session: AsyncSession, query: str, *, default_region: str | None = None,
                          limit: int = 50) -> list[ProfileSummary]:
    """By phone (any format, whole or its first digits), user id (exact or its start), or name
    (case-insensitive, contains). Exact user id and phone matches come first."""
    query = query.strip()
    if not query:
        rows = await session.scalars(select(Profile).order_by(Profile.updated_at.desc(), Profile.id.desc()).limit(limit))
        return [_summary(r) for r in rows]
    exact = [Profile.user_id == query]
    info = parse_number(query, default_region)
    if info.valid and info.e164:
        exact.append(Profile.phone == info.e164)
    partial = [Profile.user_id.startswith(query, autoescape=True),
               Profile.name.ilike(f"%{_escape_like(query)}%", escape="\\")]
    partial.extend(Profile.phone.startswith(prefix, autoescape=True)
                   for prefix in phone_prefixes(query, default_region))
    rank = case((or_(*exact), 0), else_=1)
    rows = await session.scalars(select(Profile).where(or_(*exact, *partial)).order_by(rank, Profile.id).limit(limit))
    return [_summary(r) for r in rows]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def find_profile(session: AsyncSession, key: str, *, default_region: str | None = None) -> Profile:
    key = key.strip()
    row = await session.scalar(select(Profile).where(Profile.user_id == key))
    if row is None:
        info = parse_number(key, default_region)
        if info.valid:
            row = await session.scalar(select(Profile).where(Profile.phone == info.e164).order_by(Profile.id))
    if row is None and key.isdigit():
        row = await session.get(Profile, int(key))
    if row is None:
        raise NotFound(f"no profile with user id or phone {key!r}")
    return row


async def get_profile(session: AsyncSession, key: str, *, default_region: str | None = None,
                      default_timezone: str | None = "UTC", event_limit: int = 100) -> ProfileDetail:
    from sqlalchemy import func

    row = await find_profile(session, key, default_region=default_region)
    consents = await session.scalars(select(Consent).where(Consent.profile_id == row.id).order_by(Consent.at.desc(), Consent.id.desc()))
    events = await session.scalars(select(Event).where(Event.profile_id == row.id)
                                   .order_by(Event.at.desc(), Event.id.desc()).limit(event_limit))
    count = await session.scalar(select(func.count()).select_from(Event).where(Event.profile_id == row.id))
    types = await property_types(session)
    reason = unreachable_reason(row.phone_status, row.sms_capable, row.subscription)
    return ProfileDetail(
        row.id, row.user_id, row.phone, row.phone_raw, row.phone_status, row.phone_reason, row.phone_type,
        row.sms_capable, row.name, row.timezone, row.country, dict(row.properties or {}),
        {k: types.get(k, "string") for k in (row.properties or {})}, row.subscription, row.subscription_at,
        reason is None, reason, [ConsentView(c.state, c.source, c.at, c.phone, c.detail) for c in consents],
        [EventView(e.name, e.at, dict(e.properties or {})) for e in events], count or 0, row.created_at, row.updated_at,
        timezone_source(row.timezone, row.phone if row.phone_status == "valid" else None, default_timezone),
    )


async def set_subscription(session: AsyncSession, profile_id: int, state: str, *, source: str,
                           detail: str | None = None, at: datetime | None = None) -> None:
    """Subscribe or unsubscribe one profile now (operator, keyword), with a consent record."""
    if state not in ("subscribed", "unsubscribed"):
        raise ValidationError([("subscription", "must be subscribed or unsubscribed")])
    row = await session.get(Profile, profile_id)
    if row is None:
        raise NotFound(f"no profile {profile_id}")
    moment = at or clock.now()
    row.subscription, row.subscription_at, row.updated_at = state, moment, clock.now()
    session.add(Consent(profile_id=row.id, state=state, source=source, at=moment, phone=row.phone, detail=detail))
