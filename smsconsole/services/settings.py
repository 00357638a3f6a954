"""Operator settings kept in the database (edited in Settings), declared once with validation."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole import clock
from smsconsole.models import Setting
from smsconsole.phone import normalize_region
from smsconsole.services import audit
from smsconsole.services.errors import ValidationError


def _region(value: str) -> tuple[str | None, str | None]:
    if not value:
        return "", None
    region = normalize_region(value)
    return (region, None) if region else (None, "must be a two-letter country code such as US, GB or IN")


def _timezone(value: str) -> tuple[str | None, str | None]:
    import zoneinfo

    if not value:
        return "UTC", None
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None, "must be a time zone name such as UTC, Europe/London or Asia/Kolkata"
    return value, None


def _http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _public_url(value: str) -> tuple[str | None, str | None]:
    if not value:
        return "", None
    if not _http_url(value):
        return None, "must be an http(s) URL that providers can reach, e.g. https://sms.example.com"
    return value.rstrip("/"), None


def _whole(value: str, low: int, high: int) -> int | None:
    return int(value) if re.fullmatch(r"[0-9]{1,12}", value) and low <= int(value) <= high else None


def _cap(value: str) -> tuple[str | None, str | None]:
    if not value:
        return "", None
    number = _whole(value, 1, MAX_CAP)
    if number is None:
        return None, f"must be a whole number from 1 to {MAX_CAP:,}, or empty for no cap"
    return str(number), None


def _seconds(value: str) -> tuple[str | None, str | None]:
    if not value:
        return DEFAULT_MISFIRE_GRACE, None
    number = _whole(value, 0, MAX_GRACE)
    if number is None:
        return None, f"must be a whole number of seconds from 0 to {MAX_GRACE:,} (3600 is an hour)"
    return str(number), None


def _webhook(value: str) -> tuple[str | None, str | None]:
    if not value:
        return "", None
    if not _http_url(value):
        return None, "must be an http(s) URL to POST alerts to, e.g. https://alerts.example.com/sms"
    return value, None


def _enforcement(value: str) -> tuple[str | None, str | None]:
    word = value.strip().lower() or "block"
    if word not in ENFORCEMENT:
        return None, "must be block (a blocking finding stops the campaign) or warn (findings are only shown)"
    return word, None


def _link_domain(value: str) -> tuple[str | None, str | None]:
    if not value:
        return "", None
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment \
            or any(c.isspace() for c in value):
        return None, "must be the http(s) address short links go to, e.g. https://go.example.com"
    return value.rstrip("/"), None


def _retention(value: str) -> tuple[str | None, str | None]:
    if not value:
        return DEFAULT_LINK_RETENTION, None
    number = _whole(value, 1, MAX_RETENTION)
    if number is None:
        return None, f"must be a whole number of days from 1 to {MAX_RETENTION:,}"
    return str(number), None


ENFORCEMENT = ("block", "warn")
DEFAULT_LINK_RETENTION = "90"
MAX_RETENTION = 3650
DEFAULT_MISFIRE_GRACE = "3600"
MAX_CAP = 1_000_000
MAX_GRACE = 7 * 24 * 3600


@dataclass(frozen=True)
class SettingDef:
    key: str
    label: str
    help: str
    default: str
    parse: Callable[[str], tuple[str | None, str | None]]


SETTINGS: dict[str, SettingDef] = {
    d.key: d
    for d in (
        SettingDef(
            "default_region", "Default region",
            "Country assumed for numbers typed without +country code (two letters, e.g. US, GB, IN)",
            "", _region,
        ),
        SettingDef(
            "default_timezone", "Default time zone",
            "Time zone of profiles whose own zone is not given and cannot be told from the phone",
            "UTC", _timezone,
        ),
        SettingDef(
            "public_base_url", "Public callback URL",
            "Base URL where providers reach this engine's webhook listener; sent as the status callback",
            "", _public_url,
        ),
        SettingDef(
            "campaign_cap_day", "Campaign SMS per user per day",
            "At most this many campaign SMS to one person in any 24 hours, across campaigns (tests and "
            "auto-responses don't count); empty: no cap",
            "", _cap,
        ),
        SettingDef(
            "campaign_cap_week", "Campaign SMS per user per week",
            "At most this many campaign SMS to one person in any 7 days, across campaigns; empty: no cap",
            "", _cap,
        ),
        SettingDef(
            "campaign_misfire_grace", "Campaign misfire grace (seconds)",
            "A run whose time passed while no engine ran starts if it is at most this late, else it is "
            "marked missed",
            DEFAULT_MISFIRE_GRACE, _seconds,
        ),
        SettingDef(
            "campaign_alert_webhook", "Campaign alert webhook",
            "Optional http(s) URL that campaign alerts (such as a run blocked by its safety limit) are "
            "POSTed to as JSON",
            "", _webhook,
        ),
        SettingDef(
            "compliance_enforcement", "Compliance preflight",
            "block: a campaign with a blocking preflight finding (no allowed sender, unregistered DLT "
            "template, send window, consent, budget) is not scheduled; warn: findings are only shown",
            "block", _enforcement,
        ),
        SettingDef(
            "link_domain", "Short-link domain",
            "Address of this engine's listener that tracked links ({{ url | track }}) point to, e.g. "
            "https://go.example.com (its GET /<code> redirects); empty: bodies using track cannot be sent",
            "", _link_domain,
        ),
        SettingDef(
            "link_retention_days", "Short-link retention (days)",
            "A tracked link redirects for this many days after its message was rendered; then it answers "
            "410 Gone",
            DEFAULT_LINK_RETENTION, _retention,
        ),
    )
}


@dataclass(frozen=True)
class CampaignLimits:
    """The campaign settings, typed: caps per person (None: no cap), the misfire grace in
    seconds, the alert webhook (None: none)."""

    cap_day: int | None
    cap_week: int | None
    grace: float
    alert_webhook: str | None


def campaign_limits_from(values: dict[str, str]) -> CampaignLimits:
    """The campaign settings from `get_settings`' values (a stored value that no longer reads
    counts as not set)."""
    def whole(key: str) -> int | None:
        value, reason = SETTINGS[key].parse(str(values.get(key) or "").strip())
        return int(value) if value and not reason else None

    grace = whole("campaign_misfire_grace")
    return CampaignLimits(
        cap_day=whole("campaign_cap_day"), cap_week=whole("campaign_cap_week"),
        grace=float(grace if grace is not None else int(DEFAULT_MISFIRE_GRACE)),
        alert_webhook=str(values.get("campaign_alert_webhook") or "").strip() or None,
    )


async def campaign_limits(session: AsyncSession) -> CampaignLimits:
    return campaign_limits_from(await get_settings(session))


async def get_settings(session: AsyncSession) -> dict[str, str]:
    values = {key: d.default for key, d in SETTINGS.items()}
    for row in await session.scalars(select(Setting)):
        if row.key in SETTINGS and isinstance(row.value, str):
            values[row.key] = row.value
    return values


async def update_settings(session: AsyncSession, changes: dict[str, str], actor: str) -> dict[str, str]:
    """Validate every change first; write all or nothing."""
    problems: list[tuple[str, str]] = []
    parsed: dict[str, str] = {}
    for key, raw in changes.items():
        definition = SETTINGS.get(key)
        if definition is None:
            problems.append((key, "is not a setting"))
            continue
        value, reason = definition.parse(raw.strip())
        if reason:
            problems.append((key, reason))
        else:
            parsed[key] = value or ""
    if problems:
        raise ValidationError(problems)
    current = {row.key: row for row in await session.scalars(select(Setting))}
    now = clock.now()
    for key, value in parsed.items():
        if key in current:
            current[key].value = value
            current[key].updated_at = now
        else:
            session.add(Setting(key=key, value=value, updated_at=now))
    await audit.record(session, actor, "settings.update", None, **parsed)
    return await get_settings(session) | parsed


def setting_value(values: dict[str, Any], key: str) -> str:
    return str(values.get(key) or SETTINGS[key].default)
