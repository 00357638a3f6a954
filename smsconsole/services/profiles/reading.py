"""Reading profiles: search by phone, user id or name, one profile with its consents and events,
and why SMS cannot reach someone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import phonenumbers
from sqlalchemy import case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole.models import Consent, Event, Profile, PropertyDef
from smsconsole.phone import parse_number
from smsconsole.services.errors import NotFound
from smsconsole.services.profiles.preparing import phone_timezone

async def property_types(session: AsyncSession, scope: str = "profile") -> dict[str, str]:
    rows = await session.execute(select(PropertyDef.name, PropertyDef.type).where(PropertyDef.scope == scope))
    return dict(rows.all())


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
    from_phone = phone_timezone(phone) if phone else None
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


