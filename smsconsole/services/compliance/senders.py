"""Senders: the numbers and sender ids each provider sends from, with their type, the countries they
may send to and their registrations (US 10DLC brand and campaign, toll-free verification, India DLT
principal entity; an India DLT header is the alphanumeric sender value itself).

A provider's configured sender (its `sender` setting) that is not registered here still shows, as an
*implicit* sender (id None, type inferred, no registrations), so the preflight and Settings see every
sender a provider can send from. The caller commits; every change is audited."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import phonenumbers
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole import clock
from smsconsole.models import Provider as ProviderRow
from smsconsole.models.compliance import Sender, TenDlcCampaign
from smsconsole.phone import normalize_region, parse_number
from smsconsole.providers import REGISTRY
from smsconsole.services import audit
from smsconsole.services.errors import NotFound, ValidationError
from smsconsole.services.groups import parse_countries

SENDER_TYPES = ("long_code", "short_code", "toll_free", "alphanumeric")
TOLLFREE_STATUSES = ("verified", "pending", "rejected")
SENDER_FIELD = "sender"  # every adapter with a configured sender names it so (Twilio, Vonage, MSG91, …)

SHORT_CODE = re.compile(r"\d{3,8}")
ALPHANUMERIC = re.compile(r"[A-Za-z0-9]{3,11}")
DLT_ENTITY = re.compile(r"\d{1,30}")
DLT_HEADER = re.compile(r"[A-Za-z0-9]{6}")
REGISTRATION_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
EDITABLE = ("value", "type", "countries", "brand_id", "tendlc_campaign", "tollfree_status", "dlt_entity_id", "note")


@dataclass(frozen=True)
class SenderView:
    id: int | None  # None for an implicit sender (a provider's configured sender, not registered)
    provider_id: int
    provider: str
    provider_kind: str
    value: str
    type: str
    countries: tuple[str, ...]  # () = any country
    brand_id: str | None
    tendlc_campaign: str | None
    tollfree_status: str | None  # verified | pending | rejected | None
    dlt_entity_id: str | None
    note: str | None
    implicit: bool = False


def infer_sender_type(value: str) -> str:
    """The type a sender value reads as: any letter -> alphanumeric; up to 8 digits without a '+'
    -> short_code; a toll-free number by phonenumbers' numbering plan (US/CA 800/833/844/855/866/
    877/888 and other countries' toll-free ranges) -> toll_free; anything else -> long_code."""
    text = value.strip()
    if any(ch.isalpha() for ch in text):
        return "alphanumeric"
    digits = re.sub(r"[\s().-]", "", text)
    if digits.isdigit() and len(digits) <= 8:
        return "short_code"
    try:
        number = phonenumbers.parse(digits if digits.startswith("+") else "+" + digits, None)
    except phonenumbers.NumberParseException:
        return "long_code"
    if phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.TOLL_FREE:
        return "toll_free"
    return "long_code"


def _canonical(value: str) -> str:
    """A sender value as stored: numbers in E.164 (when they parse), other values stripped."""
    text = value.strip()
    if any(ch.isalpha() for ch in text):
        return text
    info = parse_number(text if text.startswith("+") or len(re.sub(r"\D", "", text)) <= 8 else "+" + text, None)
    return info.e164 if info.valid and info.e164 else text


def _view(row: Sender, provider: ProviderRow) -> SenderView:
    return SenderView(row.id, provider.id, provider.name, provider.kind, row.value, row.type, tuple(row.countries or ()),
                      row.brand_id, row.tendlc_campaign, row.tollfree_status, row.dlt_entity_id, row.note)


def configured_sender(provider: ProviderRow) -> str | None:
    """The sender a provider's settings send from (its `sender` field, or that field's default)."""
    cls = REGISTRY.get(provider.kind)
    value = (provider.config or {}).get(SENDER_FIELD)
    if value is None and cls is not None:
        value = next((f.default for f in cls.config_fields if f.name == SENDER_FIELD), None)
    value = str(value).strip() if value else ""
    return value or None


def _implicit(provider: ProviderRow, registered: Iterable[str]) -> SenderView | None:
    value = configured_sender(provider)
    if value is None:
        return None
    if _canonical(value) in {_canonical(v) for v in registered}:
        return None
    return SenderView(None, provider.id, provider.name, provider.kind, value, infer_sender_type(value), (),
                      None, None, None, None, None, implicit=True)


async def _collect(session: AsyncSession, providers: list[ProviderRow], implicit: bool) -> dict[int, list[SenderView]]:
    by_provider: dict[int, list[SenderView]] = {p.id: [] for p in providers}
    if not providers:
        return by_provider
    names = {p.id: p for p in providers}
    rows = await session.scalars(select(Sender).where(Sender.provider_id.in_(list(names)))
                                 .order_by(Sender.value).execution_options(populate_existing=True))
    for row in rows:
        by_provider[row.provider_id].append(_view(row, names[row.provider_id]))
    if implicit:
        for provider in providers:
            extra = _implicit(provider, [s.value for s in by_provider[provider.id]])
            if extra is not None:
                by_provider[provider.id].append(extra)
    return by_provider


async def list_senders(session: AsyncSession, *, provider: str | None = None, implicit: bool = True) -> list[SenderView]:
    """Every sender by provider name then value; implicit ones (configured, not registered) last per provider."""
    query = select(ProviderRow).order_by(ProviderRow.name)
    if provider is not None:
        query = query.where(ProviderRow.name == provider)
    providers = list(await session.scalars(query))
    if provider is not None and not providers:
        raise NotFound(f"no provider named {provider!r}")
    by_provider = await _collect(session, providers, implicit)
    return [view for p in providers for view in by_provider[p.id]]


async def senders_by_provider(session: AsyncSession, provider_ids: Iterable[int]) -> dict[int, list[SenderView]]:
    """provider id -> its registered senders plus its implicit one (the configured sender/from, when
    it has one and it is not registered). Every asked id that exists is a key, possibly with []."""
    ids = list(dict.fromkeys(provider_ids))
    if not ids:
        return {}
    providers = list(await session.scalars(select(ProviderRow).where(ProviderRow.id.in_(ids))))
    return await _collect(session, providers, True)


async def get_sender(session: AsyncSession, sender_id: int) -> SenderView:
    row = await session.get(Sender, sender_id, populate_existing=True)
    if row is None:
        raise NotFound(f"no sender with id {sender_id}")
    provider = await session.get(ProviderRow, row.provider_id)
    assert provider is not None
    return _view(row, provider)


def _optional(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


async def _validate(session: AsyncSession, fields: dict[str, Any], provider_id: int, sender_id: int | None,
                    ) -> dict[str, Any]:
    """Every problem of a sender's fields at once; returns the fields normalized."""
    problems: list[tuple[str, str]] = []
    raw_value = str(fields.get("value") or "").strip()
    kind = _optional(fields.get("type"))
    if kind is not None:
        kind = kind.lower().replace("-", "_").replace(" ", "_")
        kind = {"tollfree": "toll_free", "shortcode": "short_code", "longcode": "long_code", "alpha": "alphanumeric"}.get(kind, kind)
    value = raw_value
    if not raw_value:
        problems.append(("value", "is required: a number (+14155550100), a short code or an alphanumeric sender id"))
    if kind is None and raw_value:
        kind = infer_sender_type(raw_value)
    if kind is not None and kind not in SENDER_TYPES:
        problems.append(("type", f"{kind!r} is not a sender type; use one of {', '.join(SENDER_TYPES)}"))
    elif raw_value and kind in ("long_code", "toll_free"):
        info = parse_number(raw_value, None)
        if not info.valid or not info.e164:
            problems.append(("value", (f"a {kind.replace('_', '-')} sender is a number in international form "
                                       f"(e.g. +14155550100): {info.reason or 'not a valid number'}")))
        else:
            value = info.e164
    elif raw_value and kind == "short_code" and not SHORT_CODE.fullmatch(raw_value):
        problems.append(("value", "a short code is 3 to 8 digits"))
    elif raw_value and kind == "alphanumeric" and (not ALPHANUMERIC.fullmatch(raw_value)
                                                   or not any(ch.isalpha() for ch in raw_value)):
        problems.append(("value", "an alphanumeric sender id is 3 to 11 letters or digits, at least one a letter"))
    countries = parse_countries(fields.get("countries"))
    if bad := [c for c in countries if len(c) != 2 or normalize_region(c) is None]:
        problems.append(("countries", f"{', '.join(bad)}: not an ISO 3166 country code (e.g. US, IN, GB)"))
    brand = _optional(fields.get("brand_id"))
    if brand is not None and not REGISTRATION_ID.fullmatch(brand):
        problems.append(("brand_id", "a 10DLC brand id is up to 64 letters, digits, '-', '_', '.' or ':'"))
    campaign = _optional(fields.get("tendlc_campaign"))
    if campaign is not None:
        if kind is not None and kind != "long_code":
            problems.append(("tendlc_campaign", "a 10DLC campaign applies to a US long code only"))
        elif not REGISTRATION_ID.fullmatch(campaign):
            problems.append(("tendlc_campaign", "a 10DLC campaign id is up to 64 letters, digits, '-', '_', '.' or ':'"))
        elif await session.scalar(select(TenDlcCampaign.id).where(TenDlcCampaign.campaign_id == campaign)) is None:
            problems.append(("tendlc_campaign", (f"no 10DLC campaign {campaign!r} is registered; add it first "
                                                 f"(smsconsole templates 10dlc add --campaign {campaign} …)")))
    tollfree = _optional(fields.get("tollfree_status"))
    if tollfree is not None:
        tollfree = tollfree.lower()
        if tollfree not in TOLLFREE_STATUSES:
            problems.append(("tollfree_status", f"must be one of {', '.join(TOLLFREE_STATUSES)}"))
        elif kind is not None and kind != "toll_free":
            problems.append(("tollfree_status", "toll-free verification applies to a toll-free number only"))
    entity = _optional(fields.get("dlt_entity_id"))
    if entity is not None:
        if not DLT_ENTITY.fullmatch(entity):
            problems.append(("dlt_entity_id", "a DLT principal entity id is digits (up to 30)"))
        elif kind is not None and kind not in ("alphanumeric", "short_code"):
            problems.append(("dlt_entity_id", "a DLT entity applies to an India header (a 6-character sender id)"))
        elif raw_value and not DLT_HEADER.fullmatch(raw_value):
            problems.append(("value", "a DLT header (the sender id registered with the entity) is 6 letters or digits"))
    if value and not problems:
        other = await session.scalar(select(Sender.id).where(Sender.provider_id == provider_id, Sender.value == value))
        if other is not None and other != sender_id:
            problems.append(("value", f"{value} is already a sender of this provider"))
    if problems:
        raise ValidationError(problems)
    return {"value": value, "type": kind, "countries": countries, "brand_id": brand, "tendlc_campaign": campaign,
            "tollfree_status": tollfree, "dlt_entity_id": entity, "note": _optional(fields.get("note"))}


async def add_sender(
    session: AsyncSession, *, provider: str, value: str, type: str | None = None, countries: Any = (),
    brand_id: str | None = None, tendlc_campaign: str | None = None, tollfree_status: str | None = None,
    dlt_entity_id: str | None = None, note: str | None = None, actor: str,
) -> SenderView:
    """Register a sender for a provider; its type is inferred from the value when not given."""
    row_provider = await session.scalar(select(ProviderRow).where(ProviderRow.name == provider)) if provider else None
    fields = {"value": value, "type": type, "countries": countries, "brand_id": brand_id, "tendlc_campaign": tendlc_campaign,
              "tollfree_status": tollfree_status, "dlt_entity_id": dlt_entity_id, "note": note}
    if row_provider is None:
        problems = [("provider", f"no provider named {provider!r}" if provider else "is required")]
        try:
            await _validate(session, fields, -1, None)
        except ValidationError as exc:
            problems += exc.problems
        raise ValidationError(problems)
    clean = await _validate(session, fields, row_provider.id, None)
    now = clock.now()
    row = Sender(provider_id=row_provider.id, created_at=now, updated_at=now, **clean)
    session.add(row)
    await session.flush()
    await audit.record(session, actor, "sender.add", f"{provider}:{row.value}", sender_id=row.id, type=row.type,
                       countries=row.countries)
    return _view(row, row_provider)


async def update_sender(session: AsyncSession, sender_id: int, *, actor: str, **changes: Any) -> SenderView:
    """Change some fields of a sender (value, type, countries, brand_id, tendlc_campaign,
    tollfree_status, dlt_entity_id, note); the rest stay. A None or empty value clears an optional field."""
    row = await session.get(Sender, sender_id)
    if row is None:
        raise NotFound(f"no sender with id {sender_id}")
    if unknown := sorted(set(changes) - set(EDITABLE)):
        raise ValidationError([(name, "cannot be changed on a sender") for name in unknown])
    current: dict[str, Any] = {name: getattr(row, name) for name in EDITABLE}
    merged = {**current, **changes}
    if "value" in changes and "type" not in changes:
        merged["type"] = None  # a new value is read afresh unless a type comes with it
    clean = await _validate(session, merged, row.provider_id, row.id)
    changed = {name: clean[name] for name in EDITABLE if clean[name] != current[name]}
    for name, new in changed.items():
        setattr(row, name, new)
    row.updated_at = clock.now()
    await session.flush()
    provider = await session.get(ProviderRow, row.provider_id)
    assert provider is not None
    await audit.record(session, actor, "sender.update", f"{provider.name}:{row.value}", sender_id=row.id,
                       changed=sorted(changed))
    return _view(row, provider)


async def remove_sender(session: AsyncSession, sender_id: int, *, actor: str) -> None:
    row = await session.get(Sender, sender_id)
    if row is None:
        raise NotFound(f"no sender with id {sender_id}")
    provider = await session.get(ProviderRow, row.provider_id)
    await session.delete(row)
    await session.flush()
    await audit.record(session, actor, "sender.remove", f"{provider.name if provider else row.provider_id}:{row.value}",
                       sender_id=sender_id)


def sender_dict(view: SenderView) -> Mapping[str, Any]:
    """The JSON shape of a sender (CLI --json)."""
    return {"id": view.id, "provider": view.provider, "provider_kind": view.provider_kind, "value": view.value,
            "type": view.type, "countries": list(view.countries), "brand_id": view.brand_id,
            "tendlc_campaign": view.tendlc_campaign, "tollfree_status": view.tollfree_status,
            "dlt_entity_id": view.dlt_entity_id, "note": view.note, "implicit": view.implicit}
