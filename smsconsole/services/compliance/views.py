"""The preflight and the price as the screens and the CLI show them outside the preflight itself:
one test message's price before it is sent (Test send, `send-test`, the wizard's Test step,
`campaigns test`), and what the latest run's preflight blocked or suppressed (the campaign page).

A test message is priced on the provider that will send it: the one named; for a group, its
first enabled member (the one that carries the traffic while healthy); with neither (a campaign
on default routing), the default group's first member, else the only enabled provider — the way
services/compliance/routes.py reads the engine's routing. Its segments are counted as billed:
look-alikes replaced when the operator asked for it or the provider smart-encodes (Twilio's
setting), and its price is the provider's for the recipient's country and the sender's type."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole.models import CampaignRun
from smsconsole.phone import parse_number
from smsconsole.services.campaigns.records import campaign_row
from smsconsole.services.compliance.cost import MessageCost, estimate_message_cost
from smsconsole.services.compliance.routes import RouteProvider, load_route_map
from smsconsole.services.compliance.senders import senders_by_provider
from smsconsole.services.smart_encoding import provider_smart_encodes


@dataclass(frozen=True)
class TestPrice:
    """One test message's price in words (`line`), with what it was read from."""

    line: str
    cost: MessageCost | None = None
    country: str | None = None
    provider: str | None = None
    smart_encoded: bool = False


def money(amount: float) -> str:
    """0.0158 -> '0.0158', 0.1 -> '0.10', 12.5 -> '12.50': at least 2 decimals, at most 4."""
    text = f"{amount:,.4f}".rstrip("0")
    decimals = len(text.split(".")[1]) if "." in text else 0
    return text + "0" * (2 - decimals) if decimals < 2 else text


def price_words(cost: MessageCost, country: str, provider: str | None, *, via: str = "") -> str:
    """'2 segments × 0.0079 USD = 0.0158 USD on twilio, priced 2026-11-30' or
    '1 segment; no price for IN on sandbox'."""
    plural = "s" if cost.segments != 1 else ""
    where = f"{provider}{via}" if provider else "its route"
    if cost.amount is None or cost.unit_price is None:
        return f"{cost.segments} segment{plural} ({cost.encoding}); no price for {country} on {where}"
    when = f", priced {cost.priced_at:%Y-%m-%d}" if cost.priced_at else ""
    if cost.unit == "segment":
        return (f"{cost.segments} segment{plural} × {money(cost.unit_price)} {cost.currency} = "
                f"{money(cost.amount)} {cost.currency} on {where}{when}")
    return (f"{cost.segments} segment{plural}, {money(cost.amount)} {cost.currency} per message "
            f"on {where}{when}")


def _first(routes: Any, country: str | None, provider_name: str, group_name: str) -> tuple[RouteProvider | None, str]:
    """The provider that will send it and, for a group, ' (first in group uk)'."""
    if provider_name:
        providers, _ = routes.for_country(country, provider=provider_name)
        return (providers[0], "") if providers else (None, "")
    if not group_name and routes.default_group is not None:
        group_name = routes.group_names[routes.default_group]
    if group_name:
        providers, _ = routes.for_country(country, group=group_name)
        return (providers[0], f" (first in group {group_name})") if providers else (None, "")
    providers, _ = routes.for_country(country)
    return (providers[0], "") if providers else (None, "")


async def test_send_price(session: AsyncSession, *, to: str, body: str, default_region: str | None,
                          provider_name: str = "", group_name: str = "", smart_encoding: bool = False,
                          ) -> TestPrice | None:
    """The price of one test message before it is sent; None when there is nothing to price yet
    (an empty body). A number that does not parse, or a route that sends nowhere, gives a line
    saying what is missing instead of a price."""
    if not body.strip():
        return None
    number = parse_number(to, default_region or None) if to.strip() else None
    country = number.region if number is not None and number.valid else None
    routes = await load_route_map(session)
    provider, via = _first(routes, country, (provider_name or "").strip(), (group_name or "").strip())
    smart = smart_encoding or (provider is not None and provider_smart_encodes(provider.kind, provider.config))
    if country is None:
        cost = await estimate_message_cost(session, body=body, country=None, provider_id=None,
                                           smart_encoding=smart)
        plural = "s" if cost.segments != 1 else ""
        why = "the recipient's number" if number is None else "a valid number"
        return TestPrice(f"{cost.segments} segment{plural} ({cost.encoding}); the price needs {why} (its country)",
                         cost, None, provider.name if provider else None, smart)
    sender_type = None
    if provider is not None:
        senders = (await senders_by_provider(session, [provider.id])).get(provider.id, [])
        covering = [s for s in senders if not s.countries or country in s.countries]
        sender_type = covering[0].type if covering else None
    cost = await estimate_message_cost(session, body=body, country=country,
                                       provider_id=provider.id if provider else None,
                                       provider=provider.name if provider else None,
                                       sender_type=sender_type, smart_encoding=smart)
    line = price_words(cost, country, provider.name if provider else None, via=via)
    if smart and not smart_encoding:
        line += " (smart-encoded by the provider)"
    return TestPrice(line, cost, country, provider.name if provider else None, smart)


# --- the campaign page: what the latest run's preflight stopped ---------------------------------


@dataclass(frozen=True)
class RunFinding:
    severity: str
    code: str
    country: str | None
    recipients: int
    message: str
    fix: str
    variant: str | None = None


@dataclass(frozen=True)
class RunPreflight:
    """The latest run's stored preflight, when it blocked the run or suppressed countries."""

    run_number: int
    run_state: str
    checked_at: datetime | None
    blocked: bool  # the run was held
    suppressed: dict[str, str]  # country -> reason (compliance.on_block = suppress)
    findings: tuple[RunFinding, ...]  # the blocking ones
    warnings: int


def _when(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def run_preflight(number: int, state: str, stored: dict[str, Any] | None) -> RunPreflight | None:
    """A run's stored preflight (preflight_dict's shape, plus `suppress`) when it stopped anything."""
    if not stored:
        return None
    suppressed = {str(k): str(v) for k, v in (stored.get("suppress") or {}).items()}
    findings = []
    warnings = 0
    for item in stored.get("findings") or []:
        if not isinstance(item, dict):
            continue
        if item.get("severity") != "block":
            warnings += 1
            continue
        findings.append(RunFinding(str(item.get("severity")), str(item.get("code") or ""), item.get("country"),
                                   int(item.get("recipients") or 0), str(item.get("message") or ""),
                                   str(item.get("fix") or ""), item.get("variant")))
    enforced = stored.get("enforcement", "block") == "block"
    if not suppressed and not (enforced and findings):
        return None
    return RunPreflight(number, state, _when(stored.get("checked_at")), blocked=state == "blocked",
                        suppressed=suppressed, findings=tuple(findings), warnings=warnings)


async def latest_run_preflight(session: AsyncSession, ref: int | str) -> RunPreflight | None:
    """The campaign's latest run's preflight, when it held the run or suppressed countries."""
    row = await campaign_row(session, ref)
    run = await session.scalar(select(CampaignRun).where(CampaignRun.campaign_id == row.id)
                               .order_by(CampaignRun.number.desc()).limit(1))
    if run is None:
        return None
    return run_preflight(run.number, run.state, run.preflight)
