"""Turning raw input (a CSV row, an API object) into a prepared profile or event: every field
checked, the phone normalized (its country and time zone taken from it), properties coerced to
their types; every problem of a row at once, as a RowError."""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import re
import zoneinfo
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

import phonenumbers
from phonenumbers import PhoneNumberType
from phonenumbers import phonenumberutil as pn_util
from phonenumbers import re_util
from phonenumbers import timezone as pn_timezone
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole import clock
from smsconsole.phone import (
    NON_GEOGRAPHIC,
    NUMBER_TYPE_NAMES,
    SMS_CAPABLE_TYPES,
    NumberInfo,
    normalize_region,
    parse_e164,
    parse_number,
    region_name,
)
from smsconsole.services.settings import get_settings
from smsconsole.services.values import coerce, format_datetime, infer_json_type, parse_datetime

PROFILE_FIELDS = ("user_id", "phone", "name", "timezone", "country", "optin_at", "optout_at")
SUBSCRIPTION_STATES = ("subscribed", "unsubscribed", "never")
OPTIN_EVENT, OPTOUT_EVENT = "sms_optin", "sms_optout"

# phonenumbers compiles a metadata pattern again at each use (through re's own cache) unless asked to
# keep them: the same patterns, looked up in a dict (all regions' ~1,800 take well under 1 MB).
re_util.enable_pattern_cache()


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


def phone_timezone(e164: str) -> str | None:
    """The phone's zone when it has one; when phonenumbers lists several (GB mobiles also name
    Guernsey, Jersey, Isle of Man), the one in the number's own country if that is unique."""
    number = phonenumbers.parse(e164)
    zones = [z for z in pn_timezone.time_zones_for_number(number) if z != "Etc/Unknown"]
    if len(zones) == 1:
        return zones[0]
    region = phonenumbers.region_code_for_number(number)
    return _local_zone(zones, region)


def _local_zone(zones: list[str], region: str | None) -> str | None:
    local = [z for z in zones if z in _zones_by_country().get(region or "", set())]
    return local[0] if len(local) == 1 else None


_PLAIN_NUMBER = re.compile(r"\+?[0-9][0-9 ().\-]*")  # no letters, no extension marker: nothing for parse_number to refuse
_TYPED_E164 = re.compile(r"\+[0-9]+")  # its digits are all it has: "+" and its digits is itself
_NOT_DIGITS = re.compile(r"\D")


def parse_phone(text: str, region: str | None) -> tuple[NumberInfo, str | None]:
    """`parse_number(text, region)` and, for a valid number, `phone_timezone` of it, parsing the
    number once and asking phonenumbers its region and type once (validity, number type and the
    time zones each re-run the same matching when asked one by one). The same answers as those
    two calls: anything off the plain path (letters, an extension, a "00" prefix, an invalid or
    unparseable number) is answered by them."""
    stripped = text.strip()
    if not _PLAIN_NUMBER.fullmatch(stripped) or stripped.startswith("00"):
        return _parse_phone_slowly(text, region)
    try:
        number = parse_e164(stripped, normalize_region(region))
    except phonenumbers.NumberParseException:
        return _parse_phone_slowly(text, region)
    if number.extension:
        return _parse_phone_slowly(text, region)
    # is_valid_number: region_code_for_number, then the type in that region's metadata (which is
    # also number_type's answer, and the first question time_zones_for_number asks)
    national = pn_util.national_significant_number(number)
    code, kind = _region_and_type(number.country_code, national)
    country_code = number.country_code
    metadata = (pn_util.PhoneMetadata.metadata_for_region_or_calling_code(country_code, code.upper())
                if code is not None else None)
    if (metadata is None or (code != pn_util.REGION_CODE_FOR_NON_GEO_ENTITY
                             and country_code != pn_util.country_code_for_valid_region(code))):
        return _parse_phone_slowly(text, region)
    if kind is None:
        kind = _number_type(national, metadata)
    if kind == PhoneNumberType.UNKNOWN:
        return _parse_phone_slowly(text, region)
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    geographic, country = (None, "International (non-geographic)") if code == NON_GEOGRAPHIC else (code, region_name(code))
    info = NumberInfo(input=text, valid=True, e164=e164, region=geographic, country=country,
                      number_type=NUMBER_TYPE_NAMES.get(kind, "unknown"), sms_capable=kind in SMS_CAPABLE_TYPES)
    typed = stripped if _TYPED_E164.fullmatch(stripped) else "+" + _NOT_DIGITS.sub("", stripped)
    if not stripped.startswith("+") or typed != e164:
        # not typed as its E.164 digits: the zone is the one of the E.164 number parsed again
        return info, phone_timezone(e164)
    if pn_util.is_number_type_geographical(kind, country_code):
        zones = pn_timezone.time_zones_for_geographical_number(number)
    else:
        zones = pn_timezone._country_level_time_zones_for_number(number)
    zones = [z for z in zones if z != "Etc/Unknown"]
    return info, zones[0] if len(zones) == 1 else _local_zone(zones, code)


_TYPE_DESCS = (("premium_rate", PhoneNumberType.PREMIUM_RATE), ("toll_free", PhoneNumberType.TOLL_FREE),
               ("shared_cost", PhoneNumberType.SHARED_COST), ("voip", PhoneNumberType.VOIP),
               ("personal_number", PhoneNumberType.PERSONAL_NUMBER), ("pager", PhoneNumberType.PAGER),
               ("uan", PhoneNumberType.UAN), ("voicemail", PhoneNumberType.VOICEMAIL))
_PATTERNS: dict[str, re.Pattern[str]] = {}
_MATCHERS: dict[int, tuple[Any, ...]] = {}  # id(metadata) → (metadata, its matchers): metadata live as long as phonenumbers


def _matcher(desc: Any) -> tuple[Any, re.Pattern[str]] | None:
    """What phonenumbers' `_is_number_matching_desc` asks of a number for this description: a
    possible length (none listed: any), then the whole number matching the pattern (its `_match`
    asks `match` and then `fullmatch`; `fullmatch` alone is the same answer, as no text matches
    whole without matching at its start). None: nothing matches (no description, no pattern)."""
    if desc is None or not desc.national_number_pattern:
        return None
    pattern = desc.national_number_pattern
    compiled = _PATTERNS.get(pattern)
    if compiled is None:
        compiled = _PATTERNS[pattern] = re.compile(pattern)
    return desc.possible_length, compiled


def _matchers(metadata: Any) -> tuple[Any, ...]:
    entry = _MATCHERS.get(id(metadata))
    if entry is None or entry[0] is not metadata:
        kinds = tuple((kind, found) for name, kind in _TYPE_DESCS
                      if (found := _matcher(getattr(metadata, name))) is not None)
        entry = _MATCHERS[id(metadata)] = (metadata, _matcher(metadata.general_desc), kinds,
                                           _matcher(metadata.fixed_line), _matcher(metadata.mobile),
                                           metadata.same_mobile_and_fixed_line_pattern)
    return entry


def _hit(national: str, matcher: tuple[Any, re.Pattern[str]] | None) -> bool:
    if matcher is None:
        return False
    lengths, compiled = matcher
    return (not lengths or len(national) in lengths) and compiled.fullmatch(national) is not None


def _number_type(national: str, metadata: Any) -> int:
    """phonenumbers' `_number_type_helper(national, metadata)`, step for step, with each
    description's lengths and compiled pattern kept per metadata (see `_matcher`)."""
    _, general, kinds, fixed_line, mobile, same_patterns = _matchers(metadata)
    if not _hit(national, general):
        return PhoneNumberType.UNKNOWN
    length = len(national)
    for kind, (lengths, compiled) in kinds:
        if (not lengths or length in lengths) and compiled.fullmatch(national) is not None:
            return kind
    if _hit(national, fixed_line):
        if same_patterns or _hit(national, mobile):
            return PhoneNumberType.FIXED_LINE_OR_MOBILE
        return PhoneNumberType.FIXED_LINE
    if not same_patterns and _hit(national, mobile):
        return PhoneNumberType.MOBILE
    return PhoneNumberType.UNKNOWN


def _region_and_type(country_code: int, national: str) -> tuple[str | None, int | None]:
    """`phonenumbers.region_code_for_number`, and the number's type in that region when finding the
    region already matched it (a country code shared by several regions, such as +1 or +44, is
    resolved by matching the number against each region's types: asked again, it is the same answer)."""
    regions = pn_util.COUNTRY_CODE_TO_REGION_CODE.get(country_code)
    if regions is None:
        return None, None
    if len(regions) == 1:
        return regions[0], None
    for code in regions:  # as phonenumbers' _region_code_for_number_from_list
        metadata = pn_util.PhoneMetadata.metadata_for_region(code.upper(), None)
        if metadata is None:
            continue
        if metadata.leading_digits is not None:
            if pn_util.re_compile(metadata.leading_digits).match(national):
                return code, None
        else:
            kind = _number_type(national, metadata)
            if kind != PhoneNumberType.UNKNOWN:
                return code, kind
    return None, None


def _parse_phone_slowly(text: str, region: str | None) -> tuple[NumberInfo, str | None]:
    info = parse_number(text, region)
    return info, (phone_timezone(info.e164) if info.valid and info.e164 else None)


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
        info, phone_zone = parse_phone(phone_raw, defaults.region)
        if info.valid and info.e164:
            phone, phone_status, phone_type, sms_capable = info.e164, "valid", info.number_type, info.sms_capable
            country = country or info.region
            tz = tz or phone_zone
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

