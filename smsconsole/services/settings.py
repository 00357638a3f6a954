"""Operator settings kept in the database (edited in Settings), declared once with validation."""

from __future__ import annotations

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


def _public_url(value: str) -> tuple[str | None, str | None]:
    if not value:
        return "", None
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        return None, "must be an http(s) URL that providers can reach, e.g. https://sms.example.com"
    return value.rstrip("/"), None


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
    )
}


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
