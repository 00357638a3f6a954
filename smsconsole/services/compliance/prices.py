"""Prices: what each provider charges to send to a country, per segment or per message, for one
sender type or for any (''). Entered by hand, imported from a CSV, or fetched from the provider's
pricing API where smsconsole wires one (Twilio's Pricing API). The caller commits; every change is
audited."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole import clock
from smsconsole.models import Provider as ProviderRow
from smsconsole.models.compliance import Price
from smsconsole.phone import normalize_region
from smsconsole.services import audit
from smsconsole.services.compliance.csvfile import read_csv
from smsconsole.services.compliance.templates import ImportReport
from smsconsole.services.errors import NotFound, ServiceError, ValidationError
from smsconsole.services.groups import parse_countries

if TYPE_CHECKING:
    import httpx

    from smsconsole.secrets import SecretBox

SENDER_TYPES = ("long_code", "short_code", "toll_free", "alphanumeric")
UNITS = ("segment", "message")
SOURCES = ("manual", "csv", "api")
MAX_AMOUNT = 1000.0
PRICE_COLUMNS = {
    "provider": ("provider", "provider_name"),
    "country": ("country", "iso_country", "country_code", "iso"),
    "price": ("price", "amount", "unit_price", "price_per_segment", "price_per_message"),
    "currency": ("currency", "price_unit"),
    "unit": ("unit", "per"),
    "sender_type": ("sender_type", "type", "number_type"),
}


# Providers whose own pricing API exists but is not called by smsconsole yet.
UNWIRED_PRICING = {
    "vonage": "Vonage has a Pricing API (GET /account/get-pricing/outbound/sms) that smsconsole does not call yet",
    "plivo": "Plivo has a Pricing API (GET /v1/Account/{auth_id}/Pricing/) that smsconsole does not call yet",
}
FETCH_TIMEOUT = 20.0


@dataclass(frozen=True)
class PriceView:
    id: int
    provider_id: int
    provider: str
    country: str
    sender_type: str  # "" = any
    unit: str  # segment | message
    amount: float
    currency: str
    source: str  # manual | csv | api
    fetched_at: datetime | None
    updated_at: datetime


def _view(row: Price, provider: str) -> PriceView:
    return PriceView(row.id, row.provider_id, provider, row.country, row.sender_type or "", row.unit, row.amount,
                     row.currency, row.source, row.fetched_at, row.updated_at)


async def list_prices(session: AsyncSession, *, provider: str | None = None, country: str | None = None) -> list[PriceView]:
    """Prices by provider name, country, sender type ('' first)."""
    query = (select(Price, ProviderRow.name).join(ProviderRow, ProviderRow.id == Price.provider_id)
             .order_by(ProviderRow.name, Price.country, Price.sender_type).execution_options(populate_existing=True))
    if provider is not None:
        query = query.where(ProviderRow.name == provider)
    if country is not None:
        query = query.where(Price.country == country.strip().upper())
    return [_view(row, name) for row, name in (await session.execute(query)).all()]


async def price_lookup(session: AsyncSession, provider_ids: Iterable[int]) -> dict[tuple[int, str], list[PriceView]]:
    """(provider id, country) -> that provider's prices to that country (every sender type)."""
    ids = list(dict.fromkeys(provider_ids))
    if not ids:
        return {}
    rows = await session.execute(select(Price, ProviderRow.name).join(ProviderRow, ProviderRow.id == Price.provider_id)
                                 .where(Price.provider_id.in_(ids)).order_by(Price.country, Price.sender_type))
    found: dict[tuple[int, str], list[PriceView]] = {}
    for row, name in rows.all():
        found.setdefault((row.provider_id, row.country), []).append(_view(row, name))
    return found


def pick_price(prices: Sequence[PriceView], sender_type: str | None) -> PriceView | None:
    """The price for a sender type: that type's exactly, else the any-type ('') one, else None."""
    if sender_type:
        exact = next((p for p in prices if p.sender_type == sender_type), None)
        if exact is not None:
            return exact
    return next((p for p in prices if p.sender_type == ""), None)


def _check(fields: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Country, amount, currency, unit, sender type checked and normalized (not the provider)."""
    problems: list[tuple[str, str]] = []
    country = str(fields.get("country") or "").strip().upper()
    if not country:
        problems.append(("country", "is required: an ISO 3166 country code (e.g. US)"))
    elif len(country) != 2 or normalize_region(country) is None:
        problems.append(("country", f"{country}: not an ISO 3166 country code (e.g. US, IN, GB)"))
    raw = fields.get("amount")
    amount: float | None = None
    if raw is None or str(raw).strip() == "":
        problems.append(("amount", "is required: the price of one segment or message, e.g. 0.0079"))
    else:
        try:
            amount = float(str(raw).strip())
        except ValueError:
            problems.append(("amount", f"{str(raw).strip()!r} is not a number"))
        else:
            if not math.isfinite(amount) or amount < 0:
                problems.append(("amount", "must be zero or more"))
            elif amount > MAX_AMOUNT:
                problems.append(("amount", f"{amount:g} is more than {MAX_AMOUNT:g} per {fields.get('unit') or 'segment'}; check the decimal point"))
    currency = str(fields.get("currency") or "USD").strip().upper()
    if len(currency) != 3 or not currency.isalpha():
        problems.append(("currency", f"{currency!r} is not an ISO 4217 currency code (e.g. USD, EUR, INR)"))
    unit = str(fields.get("unit") or "segment").strip().lower()
    if unit not in UNITS:
        problems.append(("unit", f"{unit!r}: must be segment or message"))
    sender_type = str(fields.get("sender_type") or "").strip().lower().replace("-", "_").replace(" ", "_")
    if sender_type in ("any", "*"):
        sender_type = ""
    if sender_type and sender_type not in SENDER_TYPES:
        problems.append(("sender_type", f"{sender_type!r}: must be one of {', '.join(SENDER_TYPES)} or empty (any)"))
    return {"country": country, "amount": amount, "currency": currency, "unit": unit, "sender_type": sender_type}, problems


async def _provider(session: AsyncSession, name: str | None) -> ProviderRow | None:
    name = (name or "").strip()
    return await session.scalar(select(ProviderRow).where(ProviderRow.name == name)) if name else None


async def _store(session: AsyncSession, provider: ProviderRow, clean: dict[str, Any], *, source: str,
                 fetched_at: datetime | None, now: datetime) -> tuple[Price, bool]:
    """Insert or update the (provider, country, sender type) price; True when it was new."""
    row = await session.scalar(select(Price).where(Price.provider_id == provider.id, Price.country == clean["country"],
                                                   Price.sender_type == clean["sender_type"]))
    new = row is None
    if row is None:
        row = Price(provider_id=provider.id, country=clean["country"], sender_type=clean["sender_type"])
        session.add(row)
    row.amount, row.currency, row.unit = clean["amount"], clean["currency"], clean["unit"]
    row.source, row.fetched_at, row.updated_at = source, fetched_at, now
    await session.flush()
    return row, new


async def set_price(
    session: AsyncSession, *, provider: str, country: str, amount: float | str, currency: str = "USD",
    unit: str = "segment", sender_type: str = "", actor: str,
) -> PriceView:
    """Enter a price by hand (source manual); replaces the one for the same provider, country and sender type."""
    clean, problems = _check({"country": country, "amount": amount, "currency": currency, "unit": unit,
                              "sender_type": sender_type})
    row_provider = await _provider(session, provider)
    if row_provider is None:
        problems.insert(0, ("provider", f"no provider named {provider!r}" if provider else "is required"))
    if problems:
        raise ValidationError(problems)
    assert row_provider is not None
    row, _ = await _store(session, row_provider, clean, source="manual", fetched_at=None, now=clock.now())
    await audit.record(session, actor, "price.set", f"{row_provider.name}:{row.country}", sender_type=row.sender_type,
                       amount=row.amount, currency=row.currency, unit=row.unit)
    return _view(row, row_provider.name)


async def remove_price(session: AsyncSession, price_id: int, *, actor: str) -> None:
    row = await session.get(Price, price_id)
    if row is None:
        raise NotFound(f"no price with id {price_id}")
    provider = await session.get(ProviderRow, row.provider_id)
    await session.delete(row)
    await session.flush()
    await audit.record(session, actor, "price.remove", f"{provider.name if provider else row.provider_id}:{row.country}",
                       sender_type=row.sender_type)


async def import_prices(session: AsyncSession, path: Path, *, actor: str) -> ImportReport:
    """Prices from a CSV with a header row `provider,country,price,currency,unit,sender_type`
    (currency defaults to USD, unit to segment, sender_type to any). A row for a provider, country
    and sender type already priced replaces it. Good rows are kept; each bad row is reported."""
    providers = {p.name: p for p in await session.scalars(select(ProviderRow))}
    added = updated = 0
    problems: list[tuple[int, str]] = []
    now = clock.now()
    for line, record in read_csv(path, PRICE_COLUMNS, required=("provider", "country", "price")):
        if isinstance(record, str):
            problems.append((line, record))
            continue
        clean, bad = _check({**record, "amount": record.get("price")})
        provider = providers.get(record.get("provider", ""))
        if provider is None:
            bad.insert(0, ("provider", f"no provider named {record.get('provider', '')!r}" if record.get("provider") else "is required"))
        if bad:
            problems.append((line, "; ".join(f"{'price' if f == 'amount' else f}: {r}" for f, r in bad)))
            continue
        assert provider is not None
        _, new = await _store(session, provider, clean, source="csv", fetched_at=None, now=now)
        added, updated = added + new, updated + (not new)
    await audit.record(session, actor, "price.import", Path(path).name, added=added, updated=updated, refused=len(problems))
    return ImportReport(added, updated, tuple(problems))


def price_dict(view: PriceView) -> dict[str, Any]:
    """The JSON shape of a price (CLI --json)."""
    return {"id": view.id, "provider": view.provider, "country": view.country, "sender_type": view.sender_type,
            "unit": view.unit, "amount": view.amount, "currency": view.currency, "source": view.source,
            "fetched_at": view.fetched_at.isoformat() if view.fetched_at else None,
            "updated_at": view.updated_at.isoformat()}



@dataclass(frozen=True)
class FetchReport:
    provider: str
    fetched_at: datetime
    prices: tuple[PriceView, ...]  # stored, by country then sender type
    problems: tuple[tuple[str, str], ...]  # (country, reason) for each country not priced

    def words(self) -> str:
        countries = sorted({p.country for p in self.prices})
        text = (f"{len(self.prices)} price{'s' if len(self.prices) != 1 else ''} for {len(countries)} "
                f"countr{'ies' if len(countries) != 1 else 'y'} from {self.provider}")
        return text + (f"; {len(self.problems)} not priced" if self.problems else "")


async def fetch_prices(session: AsyncSession, provider: str, *, countries: Iterable[str] | str, box: SecretBox,
                       client: httpx.AsyncClient | None = None, actor: str) -> FetchReport:
    """Fetch a provider's prices to some countries from its own pricing API and store them (source
    api, with the time they were fetched). Twilio: the Pricing API's Messaging Countries resource,
    the highest carrier price per sender type. Credentials refused: ServiceError, nothing stored; a
    country the API does not know is reported and the others are stored. Other kinds: ServiceError
    saying to import a CSV or set prices by hand. `box` opens the provider's stored credentials."""
    import httpx

    from smsconsole.providers import REGISTRY
    from smsconsole.providers.base import ConfigurationError, ProviderError
    from smsconsole.secrets import SecretError
    from smsconsole.services.providers import adapter_spec, build_adapter

    wanted = parse_countries(countries)
    problems: list[tuple[str, str]] = []
    row = await _provider(session, provider)
    if row is None:
        problems.append(("provider", f"no provider named {provider!r}" if provider else "is required"))
    if not wanted:
        problems.append(("countries", "name at least one country, e.g. US,CA"))
    elif bad := [c for c in wanted if len(c) != 2 or normalize_region(c) is None]:
        problems.append(("countries", f"{', '.join(bad)}: not an ISO 3166 country code (e.g. US, IN, GB)"))
    if problems:
        raise ValidationError(problems)
    assert row is not None
    cls = REGISTRY.get(row.kind)
    if cls is None or not cls.capabilities.pricing_api:
        name = cls.display_name if cls else row.kind
        why = UNWIRED_PRICING.get(row.kind, f"smsconsole has no pricing fetch for {name}")
        raise ServiceError(f"{why}: import a CSV (smsconsole prices import FILE) or set prices by hand "
                           f"(smsconsole prices set {row.name} COUNTRY AMOUNT)")
    own = client is None
    http = client or httpx.AsyncClient(timeout=FETCH_TIMEOUT)
    fetched: list[tuple[str, list[Any]]] = []
    try:
        try:
            adapter = build_adapter(adapter_spec(row, box), http)
        except SecretError as exc:
            raise ServiceError(f"{row.name}: {exc}") from None
        for country in wanted:
            try:
                fetched.append((country, await adapter.fetch_prices(country)))  # type: ignore[attr-defined]
            except ConfigurationError as exc:
                raise ServiceError(f"{row.name}: {exc.message}") from None
            except ProviderError as exc:
                problems.append((country, exc.message))
    finally:
        if own:
            await http.aclose()
    now = clock.now()
    stored: list[PriceView] = []
    for country, prices in fetched:
        if not prices:
            problems.append((country, f"{cls.display_name} lists no outbound SMS prices for {country}"))
        for price in prices:
            clean, bad = _check({"country": country, "amount": price.amount, "currency": price.currency,
                                 "unit": price.unit, "sender_type": price.sender_type})
            if bad:
                problems.append((country, "; ".join(f"{f}: {r}" for f, r in bad)))
                continue
            saved, _ = await _store(session, row, clean, source="api", fetched_at=now, now=now)
            stored.append(_view(saved, row.name))
    await audit.record(session, actor, "price.fetch", row.name, countries=wanted, stored=len(stored),
                       not_priced=[c for c, _ in problems])
    return FetchReport(row.name, now, tuple(stored), tuple(problems))
