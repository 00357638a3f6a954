"""Profiles, consent and events: the one place that turns raw input (a CSV row, an API object)
into stored rows. Imports and the ingestion API both call `prepare_profile` / `upsert_profiles`
and `prepare_event` / `record_events`, in batches, with no per-row round trips."""

from __future__ import annotations

import hashlib
import json
import re
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from typing import Any

import phonenumbers
from phonenumbers import timezone as pn_timezone
from sqlalchemy import case, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole import clock
from smsconsole.models import Consent, Event, Profile, PropertyDef
from smsconsole.phone import normalize_region, parse_number
from smsconsole.services.errors import NotFound, ValidationError
from smsconsole.services.values import coerce, format_datetime, infer_json_type, parse_datetime

PROFILE_FIELDS = ("user_id", "phone", "name", "timezone", "country", "optin_at", "optout_at")
SUBSCRIPTION_STATES = ("subscribed", "unsubscribed", "never")
OPTIN_EVENT, OPTOUT_EVENT = "sms_optin", "sms_optout"


class RowError(Exception):
    """One input row is unusable: every (column, reason) at once."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{c}: {r}" for c, r in problems))


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
    to `property_types[name]` (inferred from the value when not given). Raises RowError."""
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
    phone_status, sms_capable = "missing", False
    if phone_raw:
        info = parse_number(phone_raw, defaults.region)
        if info.valid and info.e164:
            phone, phone_status, phone_type, sms_capable = info.e164, "valid", info.number_type, info.sms_capable
            country = country or info.region
            tz = tz or _phone_timezone(info.e164)
        else:
            phone_status, phone_reason = "invalid", info.reason
    if not user_id and phone_status != "valid":
        problems.append(("user_id" if not phone_raw else "phone",
                         "a profile needs a user_id or a valid phone" if not phone_raw
                         else f"{(phone_reason or 'is not valid').rstrip('.')}; with no user_id the profile cannot be kept"))

    properties: dict[str, Any] = {}
    used_types: dict[str, str] = {}
    for key, raw in values.items():
        if key in PROFILE_FIELDS or raw is None or raw == "":
            continue
        if not isinstance(key, str) or not key.strip() or len(key) > 128:
            problems.append((str(key)[:40], "property names must be 1–128 characters"))
            continue
        type_ = types.get(key) or infer_json_type(raw)
        try:
            properties[key] = coerce(raw, type_)
            used_types[key] = type_
        except ValueError as exc:
            problems.append((key, f"{exc} (property type {type_})"))
    if problems:
        raise RowError(problems)
    return PreparedProfile(user_id, phone, phone_raw, phone_status, phone_reason, phone_type, sms_capable,
                           name, tz, country, properties, used_types, optin_at, optout_at)


@dataclass(frozen=True)
class UpsertResult:
    created: int
    updated: int
    unchanged: int
    profile_ids: list[int]  # in input order


def _insert_ignore(session: AsyncSession, model: type, index_elements: Sequence[str]) -> Any:
    dialect = session.bind.dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(model).on_conflict_do_nothing(index_elements=list(index_elements))


async def _remember_types(session: AsyncSession, scope: str, types: Mapping[str, str]) -> None:
    if types:
        await session.execute(
            _insert_ignore(session, PropertyDef, ["scope", "name"]),
            [{"scope": scope, "name": name, "type": type_} for name, type_ in types.items()],
        )


async def property_types(session: AsyncSession, scope: str = "profile") -> dict[str, str]:
    rows = await session.execute(select(PropertyDef.name, PropertyDef.type).where(PropertyDef.scope == scope))
    return dict(rows.all())


async def _existing(session: AsyncSession, user_ids: set[str], phones: set[str]) -> list[Profile]:
    found: list[Profile] = []
    for keys, column in ((sorted(user_ids), Profile.user_id), (sorted(phones), Profile.phone)):
        for start in range(0, len(keys), 1000):
            chunk = keys[start:start + 1000]
            found.extend(await session.scalars(select(Profile).where(column.in_(chunk))))
    return found


async def upsert_profiles(
    session: AsyncSession, prepared: Sequence[PreparedProfile], *, source: str, defaults: AudienceDefaults,
) -> UpsertResult:
    """Create or update profiles by user id (else phone), merging properties; a row that changes
    nothing writes nothing, so importing the same file twice is a no-op. Opt-in/out timestamps
    move the subscription forward in time only, each with a consent record."""
    now = clock.now()
    user_ids = {p.user_id for p in prepared if p.user_id}
    phones = {p.phone for p in prepared if not p.user_id and p.phone}
    rows = await _existing(session, user_ids, phones)
    by_user = {r.user_id: r for r in rows if r.user_id}
    by_phone: dict[str, Profile] = {}
    for r in sorted(rows, key=lambda r: r.id):
        if r.phone:
            by_phone.setdefault(r.phone, r)

    merged: dict[tuple[str, str], dict[str, Any]] = {}
    originals: dict[tuple[str, str], dict[str, Any]] = {}
    order: list[tuple[str, str]] = []
    consents: list[dict[str, Any]] = []
    for p in prepared:
        key = p.key
        if key not in merged:
            row = by_user.get(p.user_id) if p.user_id else by_phone.get(p.phone or "")
            current = _row_values(row) if row is not None else _new_values(p, defaults, now)
            originals[key] = dict(current) if row is not None else {}
            merged[key] = current
        order.append(key)
        state = merged[key]
        _merge(state, p, defaults)
        for moment, target in ((p.optin_at, "subscribed"), (p.optout_at, "unsubscribed")):
            if moment and (state["subscription_at"] is None or moment > state["subscription_at"]):
                state["subscription"], state["subscription_at"] = target, moment
            if moment:
                consents.append({"key": key, "state": target, "at": moment, "phone": state["phone"]})

    await _remember_types(session, "profile", {k: v for p in prepared for k, v in p.property_types.items()})
    created = updated = unchanged = 0
    inserts = [(key, values) for key, values in merged.items() if "id" not in values]
    if inserts:
        # RETURNING the keys rather than relying on row order: SQLite cannot order a multi-row
        # RETURNING, so sort_by_parameter_order would make SQLAlchemy insert one row at a time.
        table = Profile.__table__
        result = await session.execute(
            table.insert().returning(table.c.id, table.c.user_id, table.c.phone),
            [values for _, values in inserts],
        )
        new_ids = {("user_id", user_id) if user_id else ("phone", phone or ""): new_id
                   for new_id, user_id, phone in result.all()}
        for key, values in inserts:
            values["id"] = new_ids[key]
        created = len(inserts)
    changes = []
    for key, values in merged.items():
        if key in originals and originals[key]:
            if values != originals[key]:
                changes.append({**values, "updated_at": now})
            else:
                unchanged += 1
    if changes:
        await session.execute(update(Profile), changes)
        updated = len(changes)
    if consents:
        await session.execute(
            _insert_ignore(session, Consent, ["profile_id", "state", "source", "at"]),
            [{"profile_id": merged[c["key"]]["id"], "state": c["state"], "source": source, "at": c["at"],
              "phone": c["phone"]} for c in consents],
        )
    return UpsertResult(created, updated, unchanged, [merged[key]["id"] for key in order])


_COLUMNS = ("user_id", "phone", "phone_raw", "phone_status", "phone_reason", "phone_type", "sms_capable", "name",
            "timezone", "country", "properties", "subscription", "subscription_at")


def _row_values(row: Profile) -> dict[str, Any]:
    values = {column: getattr(row, column) for column in _COLUMNS}
    values["properties"] = dict(row.properties or {})
    values["id"] = row.id
    return values


def _new_values(p: PreparedProfile, defaults: AudienceDefaults, now: datetime) -> dict[str, Any]:
    return {
        "user_id": p.user_id, "phone": None, "phone_raw": None, "phone_status": "missing", "phone_reason": None,
        "phone_type": None, "sms_capable": False, "name": None, "timezone": None, "country": None,
        "properties": {}, "subscription": "never", "subscription_at": None, "created_at": now, "updated_at": now,
    }


def _merge(state: dict[str, Any], p: PreparedProfile, defaults: AudienceDefaults) -> None:
    if p.user_id:
        state["user_id"] = p.user_id
    if p.phone_raw:
        state.update(phone=p.phone, phone_raw=p.phone_raw, phone_status=p.phone_status,
                     phone_reason=p.phone_reason, phone_type=p.phone_type, sms_capable=p.sms_capable)
    if p.name:
        state["name"] = p.name
    if p.timezone:
        state["timezone"] = p.timezone
    elif not state["timezone"]:
        state["timezone"] = defaults.timezone
    if p.country:
        state["country"] = p.country
    if p.properties:
        state["properties"] = {**state["properties"], **p.properties}


# --- events ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreparedEvent:
    user_id: str | None
    phone: str | None
    name: str
    at: datetime
    properties: dict[str, Any]
    property_types: dict[str, str]

    @property
    def dedupe(self) -> str:
        who = f"u:{self.user_id}" if self.user_id else f"p:{self.phone}"
        raw = json.dumps([who, self.name, format_datetime(self.at), self.properties], sort_keys=True,
                         ensure_ascii=False)
        return hashlib.sha1(raw.encode()).hexdigest()


EVENT_FIELDS = ("user_id", "phone", "name", "event", "at", "time", "timestamp", "properties")


def prepare_event(values: Mapping[str, Any], defaults: AudienceDefaults,
                  property_types: Mapping[str, str] | None = None) -> PreparedEvent:
    """Validate one event: who (user_id or phone), name, time, properties. Raises RowError."""
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
        elif not user_id:
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
    properties: dict[str, Any] = {}
    used: dict[str, str] = {}
    for key, raw in raw_props.items():
        if raw is None or raw == "":
            continue
        type_ = types.get(key) or infer_json_type(raw)
        try:
            properties[key] = coerce(raw, type_)
            used[key] = type_
        except ValueError as exc:
            problems.append((key, f"{exc} (property type {type_})"))
    if problems:
        raise RowError(problems)
    assert name is not None and at is not None
    return PreparedEvent(user_id, phone, name, at, properties, used)


@dataclass(frozen=True)
class EventsResult:
    recorded: int
    duplicates: int
    profiles_created: int


async def record_events(session: AsyncSession, prepared: Sequence[PreparedEvent], *, source: str,
                        defaults: AudienceDefaults) -> EventsResult:
    """Store events (a profile is created for an unknown user id or phone); a repeated event is
    ignored. `sms_optin` / `sms_optout` also change the subscription, forward in time only."""
    if not prepared:
        return EventsResult(0, 0, 0)
    people = [
        PreparedProfile(e.user_id, e.phone, e.phone if not e.user_id else None,
                        "valid" if e.phone and not e.user_id else "missing", None, None, False, None, None, None,
                        optin_at=e.at if e.name == OPTIN_EVENT else None,
                        optout_at=e.at if e.name == OPTOUT_EVENT else None)
        for e in prepared
    ]
    people = [_with_phone_details(p, defaults) for p in people]
    upserted = await upsert_profiles(session, people, source="event", defaults=defaults)
    types_by_event: dict[str, dict[str, str]] = {}
    for e in prepared:
        types_by_event.setdefault(e.name, {}).update(e.property_types)
    for event_name, types in types_by_event.items():
        await _remember_types(session, f"event:{event_name}", types)
    rows = [{"profile_id": pid, "name": e.name, "at": e.at, "properties": e.properties, "dedupe": e.dedupe}
            for e, pid in zip(prepared, upserted.profile_ids, strict=True)]
    unique_rows = list({row["dedupe"]: row for row in rows}.values())
    result = await session.execute(
        _insert_ignore(session, Event, ["dedupe"]).returning(Event.__table__.c.id), unique_rows,
    )
    recorded = len(result.scalars().all())
    return EventsResult(recorded, len(rows) - recorded, upserted.created)


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
