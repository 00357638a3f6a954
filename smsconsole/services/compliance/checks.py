"""The preflight's per-country checks of routes and senders, and of send times against a window.

A country's messages go through its route's first provider (the others take them on failover):
that provider needs a sender of a type the country allows, registered as the country requires
(US long code: an active 10DLC campaign; US/CA toll-free: verified; India: a DLT header with its
principal entity; countries that register sender ids: the sender listed for that country). A
failover provider without one is a warning. The Sandbox is checked only when senders are
registered for it (it sends nothing real; the demo registers some to rehearse)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole.services.campaigns.definition import CampaignDocument
from smsconsole.services.compliance.routes import RouteMap, RouteProvider
from smsconsole.services.compliance.rules import (
    SENDER_TYPE_LABELS,
    CountryRule,
    RuleBook,
    Window,
)
from smsconsole.services.compliance.senders import (
    SenderView,
    infer_sender_type,
    senders_by_provider,
)
from smsconsole.services.compliance.templates import list_tendlc_campaigns


@dataclass(frozen=True)
class Finding:
    severity: str  # block | warn
    code: str
    country: str | None  # ISO-2; None: the whole run
    recipients: int
    message: str  # what is wrong
    fix: str  # how to fix it
    variant: str | None = None


@dataclass
class RouteCheck:
    """One country's route: its providers (first = primary), the sender the primary uses, and
    whether sender checks were skipped (the Sandbox with nothing registered)."""

    country: str
    providers: list[RouteProvider] = field(default_factory=list)
    how: str = ""
    sender: SenderView | None = None
    exempt: bool = False
    dlt_headers: tuple[str, ...] = ()

    @property
    def primary(self) -> RouteProvider | None:
        return self.providers[0] if self.providers else None

    @property
    def sender_type(self) -> str | None:
        return self.sender.type if self.sender is not None else None


_REGISTRATION_WORDS = {
    "10dlc": ("tendlc_unregistered", "a registered, active 10DLC campaign",
              "register the number under a 10DLC campaign (smsconsole templates 10dlc add …) and set it on the "
              "sender (smsconsole senders update ID --10dlc-campaign …)"),
    "toll_free_verification": ("tollfree_unverified", "toll-free verification",
                               "complete toll-free verification with the provider and mark the sender verified"),
    "dlt": ("dlt_unregistered", "a DLT header with its principal entity id",
            "register the header on a DLT platform and add it as a sender with --dlt-entity"),
    "sender_id_registration": ("sender_unregistered", "a sender id registered for the country",
                               "register the sender id for the country and list the country on the sender"),
    "short_code_program": ("sender_unregistered", "a provisioned short code program",
                           "register the short code for the country and list the country on the sender"),
}


def _registered(rule: CountryRule, sender: SenderView, active_10dlc: set[str]) -> bool:
    need = rule.registration.get(sender.type)
    if need is None:
        return True
    if need == "10dlc":
        return bool(sender.tendlc_campaign) and sender.tendlc_campaign in active_10dlc
    if need == "toll_free_verification":
        return sender.tollfree_status == "verified"
    if need == "dlt":
        return not sender.implicit and bool(sender.dlt_entity_id)
    return not sender.implicit and rule.country in sender.countries


def _candidates(senders: Iterable[SenderView], country: str, chosen: str | None, provider: RouteProvider) -> list[SenderView]:
    covering = [s for s in senders if not s.countries or country in s.countries]
    if chosen:
        matching = [s for s in covering if s.value == chosen]
        if matching:
            return matching
        return [SenderView(id=None, provider_id=provider.id, provider=provider.name, provider_kind=provider.kind,
                           value=chosen, type=infer_sender_type(chosen), countries=(), brand_id=None,
                           tendlc_campaign=None, tollfree_status=None, dlt_entity_id=None, note=None, implicit=True)]
    return covering


def _types(types: Iterable[str]) -> str:
    words = [SENDER_TYPE_LABELS.get(t, t) for t in types]
    return ", ".join(words[:-1]) + f" or {words[-1]}" if len(words) > 1 else (words[0] if words else "none")


async def check_routes(session: AsyncSession, routes: RouteMap, rules: RuleBook, per_country: Mapping[str, int],
                       document: CampaignDocument, findings: list[Finding]) -> dict[str, RouteCheck]:
    """Each country's RouteCheck; appends the route and sender findings."""
    what = document.what
    checks: dict[str, RouteCheck] = {}
    for country in per_country:
        providers, how = routes.for_country(country if len(country) == 2 and country.isalpha() else None,
                                            provider=what.route_provider, group=what.route_group)
        checks[country] = RouteCheck(country, providers, how)
    ids = {p.id for check in checks.values() for p in check.providers}
    senders = await senders_by_provider(session, ids) if ids else {}
    active_10dlc = {c.campaign_id for c in await list_tendlc_campaigns(session) if c.status == "active"}
    for country, n in per_country.items():
        check = checks[country]
        if not n:
            continue
        if not check.providers:
            findings.append(Finding("warn", "no_route", country, n,
                                    f"no provider routes to {country} ({check.how}): its messages will fail",
                                    f"add {country} to a provider group, or mark a group as the default"))
            continue
        rule = rules.get(country)
        statuses: list[tuple[RouteProvider, str, SenderView | None, str]] = []
        for provider in check.providers:
            own = senders.get(provider.id, [])
            candidates = _candidates(own, country, what.sender, provider)
            exempt = provider.kind == "sandbox" and not any(not s.implicit for s in own)
            if rule is None or exempt:
                statuses.append((provider, "exempt" if exempt else "ok", candidates[0] if candidates else None, ""))
                continue
            allowed = [s for s in candidates if s.type in rule.sender_types]
            good = [s for s in allowed if _registered(rule, s, active_10dlc)]
            if not candidates:
                statuses.append((provider, "unknown", None, ""))
            elif good:
                statuses.append((provider, "ok", good[0], ""))
            elif allowed:
                statuses.append((provider, "unregistered", allowed[0], rule.registration.get(allowed[0].type, "")))
            else:
                statuses.append((provider, "no_sender", candidates[0] if candidates else None, ""))
        primary, status, sender, need = statuses[0]
        check.sender, check.exempt = sender, status == "exempt"
        if rule is not None and country == "IN":
            check.dlt_headers = tuple(s.value for s in senders.get(primary.id, [])
                                      if s.type in rule.sender_types and (not s.countries or "IN" in s.countries))
        if rule is None:
            continue
        if status == "unknown":
            findings.append(Finding(
                "warn", "sender_unknown", country, n,
                f"{primary.name} has no sender on record for {country}, so its type cannot be checked",
                f"register the sender it uses (Settings → Compliance, or smsconsole senders add {primary.name} …)"))
        elif status == "no_sender":
            have = (f"it sends from {sender.value!r} ({SENDER_TYPE_LABELS.get(sender.type, sender.type)})"
                    if sender else "it has no sender for it")
            findings.append(Finding(
                "block", "no_sender", country, n,
                f"no sender of an allowed type routes to {country} through {primary.name}: {have}; "
                f"{rule.name} allows {_types(rule.sender_types)}",
                f"add a {_types(rule.sender_types)} sender to {primary.name} for {country} "
                f"(Settings → Compliance, or smsconsole senders add {primary.name} …)"))
        elif status == "unregistered" and sender is not None:
            code, needs, fix = _REGISTRATION_WORDS.get(need, ("sender_unregistered", need, "register it"))
            findings.append(Finding(
                "block", code, country, n,
                f"{primary.name} sends to {country} from {sender.value} "
                f"({SENDER_TYPE_LABELS.get(sender.type, sender.type)}) without {needs}", fix))
        for provider, other, _, _ in statuses[1:]:
            if other in ("no_sender", "unregistered"):
                findings.append(Finding(
                    "warn", "failover_sender", country, n,
                    f"failover provider {provider.name} has no "
                    f"{'registered ' if other == 'unregistered' else ''}allowed sender for {country}",
                    f"add one to {provider.name}, or messages that fail over to it may be filtered"))
    return checks


def check_window(instants: list[datetime] | None, zone: str, window: Window) -> str | None:
    """None when every instant falls inside the window on the recipients' clock; else the first
    local time outside it ("06:30"), or "any" for a live campaign that may send at any hour."""
    if instants is None:
        return None if window.start == window.end else "any"
    tz = ZoneInfo(zone)
    for instant in instants:
        local = instant.astimezone(tz).time().replace(tzinfo=None)
        if not window.contains(local):
            return local.strftime("%H:%M")
    return None
