"""Writing prepared profiles and events in batches: a set-based upsert that merges each batch into
the rows as they are (safe against concurrent writers), property types decided once per batch,
events recorded once, and a subscription changed with its consent record."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from itertools import repeat
from operator import itemgetter
from typing import Any, TypeVar

from sqlalchemy import bindparam, case, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole import clock
from smsconsole.models import Consent, Event, Profile, PropertyDef
from smsconsole.phone import parse_number
from smsconsole.services.errors import NotFound, ServiceError, ValidationError
from smsconsole.services.profiles.preparing import (
    OPTIN_EVENT,
    OPTOUT_EVENT,
    AudienceDefaults,
    PreparedEvent,
    PreparedProfile,
    phone_timezone,
)
from smsconsole.services.values import coerce

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

    async def read(pairs: Sequence[tuple[str, str]]) -> None:
        for scope in sorted({scope for scope, _ in pairs}):
            names = [name for s, name in pairs if s == scope]
            for start in range(0, len(names), 500):
                rows = await session.execute(select(PropertyDef.name, PropertyDef.type).where(
                    PropertyDef.scope == scope, PropertyDef.name.in_(names[start:start + 500])))
                decided.setdefault(scope, {}).update(dict(rows.all()))

    decided: dict[str, dict[str, str]] = {}
    await read(keys)  # usually every type is known: then nothing is written (no write lock taken here)
    missing = [(scope, name) for scope, name in keys if name not in decided.get(scope, {})]
    if missing:
        await session.execute(_insert_ignore(session, PropertyDef, ["scope", "name"]),
                              [{"scope": scope, "name": name, "type": wanted[scope, name]} for scope, name in missing])
        await read(missing)
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


_Prepared = TypeVar("_Prepared", PreparedProfile, PreparedEvent)


async def _conform(session: AsyncSession, prepared: Sequence[_Prepared],
                   scope: Callable[[_Prepared], str]) -> list[_Prepared]:
    """The rows with their properties in the types decided for their scope ("profile", or
    "event:<name>"); raises PropertyTypeConflict when a value cannot take its type."""
    # The types are decided and compared once per distinct (scope, property types) of the batch, in
    # the order the rows first show them (a batch of an import has a handful, for thousands of rows).
    keys = [(scope(p), tuple(p.property_types.items())) for p in prepared]
    type_sets = list(dict.fromkeys(keys))
    decided = await _decide_types(session, [(where, dict(types)) for where, types in type_sets])
    agreeing = {(where, types) for where, types in type_sets
                if all(decided.get(where, {}).get(name, type_) == type_ for name, type_ in types)}
    problems: list[tuple[int, str, str]] = []
    conformed = []
    for index, (p, key) in enumerate(zip(prepared, keys)):
        if key in agreeing:
            conformed.append(p)
            continue
        properties, used = _retyped(index, p.properties, p.raw_properties, p.property_types,
                                    decided.get(key[0], {}), problems)
        conformed.append(p if used is p.property_types else replace(p, properties=properties, property_types=used))
    if problems:
        raise PropertyTypeConflict(problems)
    return conformed


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
        columns = self.columns  # the columns spelled out: this runs for every row of every import
        if p.phone_raw:
            columns.update(phone=p.phone, phone_raw=p.phone_raw, phone_status=p.phone_status,
                           phone_reason=p.phone_reason, phone_type=p.phone_type, sms_capable=p.sms_capable)
        if p.name:
            columns["name"] = p.name
        if p.timezone:
            columns["timezone"] = p.timezone
        if p.country:
            columns["country"] = p.country
        if p.properties:
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
        """Whether applying this to the row as read (the `_FOUND_COLUMNS`) changes anything (else
        nothing is written): a column or property whose stored value is not `_same` as the given
        one, no time zone where the default would be set, or a later subscription move. Each side
        is compared as one tuple (`_all_same`), not value by value: this runs for every row of a
        re-import."""
        columns = self.columns
        if columns and not _all_same(_stored_columns(tuple(columns))(row), tuple(columns.values())):
            return True
        if "timezone" not in columns and row.timezone is None:
            return True
        properties = self.properties
        if properties:
            stored = row.properties or {}
            if not _all_same(tuple(map(stored.get, properties, repeat(_ABSENT, len(properties)))),
                             tuple(properties.values())):
                return True
        return (self.subscription is not None
                and (row.subscription_at is None or self.subscription[1] > row.subscription_at))

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


_ABSENT = object()  # a property the stored row does not have: never `_same` as a given value


def _all_same(stored: tuple[Any, ...], given: tuple[Any, ...]) -> bool:
    """`_same` for each pair of two tuples of equal length: the same types, then equal. A tuple's
    == compares its items with == after an identity check, which answers otherwise only for an
    object unequal to itself (NaN); a value read from the database is the same object as a given
    one only when it is a shared constant (None, a bool, a small int, interned text), and those
    are equal to themselves."""
    return tuple(map(type, stored)) == tuple(map(type, given)) and stored == given


@lru_cache(maxsize=256)
def _stored_columns(columns: tuple[str, ...]) -> Callable[[Row[Any]], tuple[Any, ...]]:
    """The stored values of these columns of a `_find` row, as a tuple in this order."""
    indexes = [_FOUND_COLUMNS.index(column) for column in columns]
    if len(indexes) == 1:
        index = indexes[0]
        return lambda row: (row[index],)
    return itemgetter(*indexes)  # type: ignore[return-value]


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


_FOUND_COLUMNS = ("id", "user_id", "phone", "phone_raw", "phone_status", "phone_reason", "phone_type", "sms_capable",
                  "name", "timezone", "country", "properties", "subscription_at")  # not the other timestamps


async def _find(session: AsyncSession, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Row[Any]]:
    """The stored profile of each identity: by user id, or for a phone the oldest profile with it;
    the columns a change is compared with (`_Change.changes`), its id and its keys."""
    table = Profile.__table__
    read = [table.c[name] for name in _FOUND_COLUMNS]
    found: dict[tuple[str, str], Row[Any]] = {}
    # PostgreSQL: the look-ups by the unique user id or the phone index, never a scan of the whole
    # table. Planned without statistics (a table filled by this import, autovacuum off or not yet
    # run) a thousand keys looked like most of a table that seemed small, and each batch's look-up
    # read every row stored so far. Only for these statements: the setting as it was comes back.
    steer = session.bind.dialect.name == "postgresql" and bool(keys)
    if steer:
        was = (await session.execute(text("SELECT current_setting('enable_seqscan'), "
                                          "set_config('enable_seqscan', 'off', true)"))).scalar()
    for kind, column in (("user_id", table.c.user_id), ("phone", table.c.phone)):
        values = sorted(value for k, value in keys if k == kind)
        for start in range(0, len(values), 1000):
            rows = await session.execute(select(*read).where(column.in_(values[start:start + 1000]))
                                         .order_by(table.c.id))
            for row in rows:
                found.setdefault((kind, getattr(row, kind)), row)
    if steer:
        await session.execute(text("SELECT set_config('enable_seqscan', :was, true)"), {"was": was})
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


CreateProfiles = Callable[[AsyncSession, Sequence["_Change"], AudienceDefaults, datetime],
                          Awaitable[dict[tuple[str, str], int]]]
InsertConsents = Callable[[AsyncSession, list[dict[str, Any]]], Awaitable[None]]


async def _insert_consents(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    await session.execute(_insert_ignore(session, Consent, ["profile_id", "state", "source", "at"]), rows)


async def upsert_profiles(
    session: AsyncSession, prepared: Sequence[PreparedProfile], *, source: str, defaults: AudienceDefaults,
    create: CreateProfiles | None = None, insert_consents: InsertConsents | None = None,
) -> UpsertResult:
    """Create or update profiles by user id (else phone), merging properties; a row that changes
    nothing writes nothing, so importing the same file twice is a no-op. Opt-in/out timestamps
    move the subscription forward in time only, each with a consent record. Safe against
    concurrent writers: the database merges each batch into the row as it is then, and one person
    is one profile (a unique user id, or a unique phone among profiles without one). Raises
    PropertyTypeConflict when a row's property value cannot take the type decided for it.
    `create` and `insert_consents` write new people and consent records (the imports' bulk paths,
    services/imports/bulk.py, pass their own; the same rows either way)."""
    create = create or _create
    insert_consents = insert_consents or _insert_consents
    if not prepared:
        return UpsertResult(0, 0, 0, [])
    now = clock.now()
    prepared = await _conform(session, prepared, lambda _: "profile")
    keys = [p.key for p in prepared]
    changes: dict[tuple[str, str], _Change] = {}
    for key, p in zip(keys, prepared):
        change = changes.get(key)
        if change is None:
            change = changes[key] = _Change(key, p.user_id)
        change.fold(p)

    found = await _find(session, list(changes))
    ids = {key: row.id for key, row in found.items()}
    created = 0
    missing = [key for key in changes if key not in found]
    for _ in range(3):  # a person created concurrently is found on the next read (deleted again: retried)
        if not missing:
            break
        inserted = await create(session, [changes[key] for key in missing], defaults, now)
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
        await insert_consents(session, [{"profile_id": pid, "state": state, "source": source, "at": at, "phone": phone}
                                        for (pid, state, at), phone in consents])
    # On-a-date campaigns follow the dates they are anchored on (and the zones of their recipients).
    updated_ids = {row_id for row_id, _ in updates}
    dated = {ids[key] for key, change in changes.items()
             if change.properties and (key not in found or ids[key] in updated_ids)}
    moved = {row_id for row_id, change in updates if {"timezone", "phone"} & set(change.columns)}
    if dated or moved:
        from smsconsole.services.campaigns.live import due  # lazy: campaigns load on first change

        await due.on_profiles_changed(session, dated, {name for change in changes.values() for name in change.properties},
                                      now=now, moved=moved)
    return UpsertResult(created, len(updates), len(found) - len(updates), [ids[key] for key in keys])


@dataclass(frozen=True)
class EventsResult:
    recorded: int
    duplicates: int
    profiles_created: int
    queued: int = 0  # messages live campaigns queued for these events (the caller pokes the dispatcher)


async def record_events(session: AsyncSession, prepared: Sequence[PreparedEvent], *, source: str,
                        defaults: AudienceDefaults, may_trigger: bool = True) -> EventsResult:
    """Store events (a profile is created for an unknown user id or phone); a repeated event is
    ignored. `sms_optin` / `sms_optout` also change the subscription, forward in time only. With
    `may_trigger`, the newly stored events go to the live campaigns' triggers in this transaction.
    Raises PropertyTypeConflict as `upsert_profiles` does, for event properties."""
    if not prepared:
        return EventsResult(0, 0, 0)
    prepared = await _conform(session, prepared, lambda e: f"event:{e.name}")
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
    new_ids = list(result.scalars().all())
    if new_ids:  # conversions always (attributing is not sending): imports that may not trigger convert too
        from smsconsole.services.campaigns.conversions import on_events as attribute  # lazy: campaigns import profiles

        await attribute(session, new_ids, now=clock.now())
    queued = 0
    if may_trigger and new_ids:
        from smsconsole.services.campaigns.live.triggers import on_events  # lazy: campaigns import profiles

        queued = (await on_events(session, new_ids, now=clock.now())).queued
    return EventsResult(len(new_ids), len(rows) - len(new_ids), upserted.created, queued)


def _with_phone_details(p: PreparedProfile, defaults: AudienceDefaults) -> PreparedProfile:
    if not p.phone_raw:
        return p
    info = parse_number(p.phone_raw, defaults.region)
    return replace(p, phone_type=info.number_type, sms_capable=info.sms_capable, country=info.region,
                   timezone=phone_timezone(p.phone_raw) if info.valid else None)


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
