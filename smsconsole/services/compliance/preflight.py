"""The preflight: before a campaign is scheduled, and again when each run starts, check every
country of the run's reachable audience against the country rules (services/compliance/rules.py)
and the registered senders and templates, and estimate what the run will cost.

Blocking findings (a campaign with one is not scheduled; at run start the run is held, or the
country's recipients are suppressed while the rest go — the campaign's `compliance.on_block`):
no sender of an allowed type routes to the country; a required registration is missing (10DLC
campaign, toll-free verification, DLT entity, a registered sender id); an India body that matches
no DLT template of its header; promotional content sent outside a country's window; recipients
without a recorded consent where consent is required; a run over its budget.

Warnings: no opt-out text where expected; UCS-2 forced by look-alike characters; a link on a
shortener domain carriers filter; more than 3 segments; no price; a failover provider without an
allowed sender.

The audience is read in one GROUP BY (country, time zone) with a consent count; the message is
rendered for a sample of recipients (all of them up to SAMPLE) to count segments and check the
DLT match; the rest is arithmetic per group. Setting `compliance_enforcement` = warn shows the
same findings without blocking anything."""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole.models import Profile
from smsconsole.services.campaigns import schedule
from smsconsole.services.campaigns.definition import LIVE_TYPES, CampaignDocument
from smsconsole.services.campaigns.materialize import (
    audience_condition,
    default_timezone,
    group_instant,
    misfire_grace,
    sampled_condition,
)
from smsconsole.services.compliance import cost as costs
from smsconsole.services.compliance.checks import (
    Finding,
    RouteCheck,
    check_routes,
    check_window,
)
from smsconsole.services.compliance.routes import load_route_map
from smsconsole.services.compliance.rules import RuleBook, load_rules
from smsconsole.services.errors import ServiceError
from smsconsole.services.queries.reach import reachable_condition
from smsconsole.services.settings import get_settings

UNKNOWN_COUNTRY = "??"
class PreflightBlocked(ServiceError):
    """A campaign with blocking preflight findings is not scheduled; `preflight` holds them all."""

    def __init__(self, preflight: Preflight) -> None:
        self.preflight = preflight
        first = preflight.blocking[0]
        more = len(preflight.blocking) - 1
        where = f"{first.country}: " if first.country else ""
        super().__init__(f"preflight: {where}{first.message}" + (f" (and {more} more blocking)" if more else ""))

__all__ = ["Finding", "Preflight", "PreflightBlocked", "preflight_campaign", "preflight_dict"]


@dataclass(frozen=True)
class Preflight:
    planned_at: datetime | None
    checked_at: datetime
    category: str
    enforcement: str  # block | warn
    countries: tuple[tuple[str, int], ...]  # (country, recipients), most first
    findings: tuple[Finding, ...]
    cost: costs.CostEstimate
    rules_version: str = ""

    @property
    def blocking(self) -> tuple[Finding, ...]:
        """The findings that stop the campaign (none when enforcement is warn)."""
        if self.enforcement != "block":
            return ()
        return tuple(f for f in self.findings if f.severity == "block")

    @property
    def blocked_countries(self) -> frozenset[str]:
        return frozenset(f.country for f in self.blocking if f.country)

    @property
    def blocks_whole_run(self) -> bool:
        """A blocking finding about the run as a whole (a budget), not one country."""
        return any(f.country is None for f in self.blocking)

    @property
    def recipients(self) -> int:
        return sum(n for _, n in self.countries)


@dataclass
class _Group:
    country: str
    zone: str
    recipients: int
    without_consent: int


@dataclass
class _Audience:
    groups: list[_Group] = field(default_factory=list)

    def by_country(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for g in self.groups:
            out[g.country] += g.recipients
        return dict(out)


async def _audience(session: AsyncSession, document: CampaignDocument, campaign_id: int, now: datetime,
                    default_zone: str) -> tuple[_Audience, Any]:
    segment = await audience_condition(session, document, now=now)
    condition = and_(segment, reachable_condition())
    if document.type not in LIVE_TYPES and (sampled := sampled_condition(campaign_id, document.who.reach_percent)) is not None:
        condition = and_(condition, sampled)
    # consent on record: the opt-in time (imports' optin_at, the API, a START keyword, an operator)
    without = case((Profile.subscription_at.is_(None), 1), else_=0)
    rows = (await session.execute(
        select(Profile.country, Profile.timezone, func.min(Profile.phone), func.count(), func.sum(without))
        .where(condition).group_by(Profile.country, Profile.timezone))).all()
    audience = _Audience()
    for country, tz, phone, n, without in rows:
        zone = schedule.recipient_zone(tz, phone, default_zone)
        audience.groups.append(_Group((country or UNKNOWN_COUNTRY).upper(), zone, int(n), int(without or 0)))
    return audience, condition


def _limit_scale(document: CampaignDocument, total: int) -> float:
    """The share of the reachable audience a run's own limits let through (target and run limits;
    the daily and global caps depend on other runs and are left to the run)."""
    limits = [n for n in (document.who.run_limit, document.who.target_limit) if n is not None]
    if not limits or total == 0:
        return 1.0
    return min(1.0, min(limits) / total)


async def preflight_campaign(session: AsyncSession, document: CampaignDocument, *, now: datetime, campaign_id: int = 0,
                             planned_at: datetime | None = None, config_dir: Path | None = None,
                             rules: RuleBook | None = None) -> Preflight:
    """Check the campaign's next run (or the run planned at `planned_at`) and estimate its cost.
    Raises MaterializeError when its segment is gone."""
    rules = rules or load_rules(config_dir)
    settings = await get_settings(session)
    enforcement = settings.get("compliance_enforcement") or "block"
    live = document.type in LIVE_TYPES
    if planned_at is None and not live:
        upcoming = schedule.occurrences(document.when, document.type, after=now, limit=1, not_before=now) \
            if document.when.at is not None or document.when.dates or document.when.recurrence else []
        planned_at = upcoming[0] if upcoming else now
    default_zone = await default_timezone(session)
    audience, condition = await _audience(session, document, campaign_id, now, default_zone)
    per_country = audience.by_country()
    scale = _limit_scale(document, sum(per_country.values()))
    if scale < 1.0:
        per_country = {c: round(n * scale) for c, n in per_country.items()}
    category = document.compliance.category
    findings: list[Finding] = []

    routes = await load_route_map(session)
    route_checks: dict[str, RouteCheck] = await check_routes(
        session, routes, rules, per_country, document, findings)

    if live:
        grace = 0.0
    else:
        grace = await misfire_grace(session)
    window_hits: dict[tuple[str, str], int] = defaultdict(int)
    for group in audience.groups:
        rule = rules.get(group.country)
        if rule is None:
            continue
        instants = _send_instants(document, planned_at, group.zone, now, grace)
        for kind, window in (("quiet hours", rule.quiet_hours), ("promotional window", rule.promotional_window)):
            if window is None or not rule.applies(window.applies, category):
                continue
            outside = check_window(instants, group.zone, window)
            if outside is not None:
                window_hits[(group.country, f"{kind}|{window.words()}|{outside}")] += round(group.recipients * scale)
        if rule.consent_required and rule.applies(rule.consent_applies, category) and group.without_consent:
            window_hits[(group.country, "consent")] += round(group.without_consent * scale)
    for (country, what), n in sorted(window_hits.items()):
        if not n:
            continue
        if what == "consent":
            findings.append(Finding(
                "block", "consent", country, n,
                f"{_people(n)} in {country} {'has' if n == 1 else 'have'} no opt-in time on record, and {country} "
                f"requires consent "
                f"for {category} messages", "import their opt-in timestamps (an optin_at column) or leave them out "
                "with a segment condition"))
            continue
        kind, words, local = what.split("|")
        when = ("a live campaign sends at any hour" if local == "any" else f"they would get it at {local} local time")
        findings.append(Finding(
            "block", "send_window", country, n,
            f"{when[0].upper()}{when[1:]}, outside the {kind} {words} for {category} messages",
            f"set do-not-disturb outside {words} with action delay (When step), or send between {words} "
            "recipient local time"))

    sample = await costs.sample_messages(session, document, condition, campaign_id=campaign_id,
                                         population=sum(g.recipients for g in audience.groups))
    findings += await costs.content_findings(session, sample, document, rules, per_country, route_checks)
    estimate = await costs.estimate(session, sample, per_country, route_checks, document)
    findings += costs.cost_findings(estimate, document)
    order = {"block": 0, "warn": 1}
    findings.sort(key=lambda f: (order.get(f.severity, 2), f.country or "", f.code))
    return Preflight(planned_at=planned_at, checked_at=now, category=category, enforcement=enforcement,
                     countries=tuple(sorted(per_country.items(), key=lambda item: (-item[1], item[0]))),
                     findings=tuple(findings), cost=estimate, rules_version=rules.version)


def _people(n: int) -> str:
    return f"{n:,} recipient{'' if n == 1 else 's'}"


def _send_instants(document: CampaignDocument, planned_at: datetime | None, zone: str, now: datetime,
                   grace: float) -> list[datetime] | None:
    """When this zone's recipients get the message: one instant for a scheduled run (after DND);
    for a live campaign None (any hour) unless DND delays it, then each half hour of a day shifted."""
    if document.type in LIVE_TYPES or planned_at is None:
        dnd = document.when.dnd
        if dnd is None or dnd.action != "delay":
            return None
        tz = zoneinfo.ZoneInfo(zone)
        start = now.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
        out: list[datetime] = []
        for step in range(48):
            instant = start.replace(hour=step // 2, minute=30 * (step % 2))
            shifted = schedule.dnd_shift(instant, zone, dnd)
            if shifted is not None:
                out.append(shifted)
        return out
    instant, status = group_instant(document, planned_at, zone, moment=now, grace=grace)
    return [] if instant is None else [instant]


def preflight_dict(p: Preflight) -> dict[str, Any]:
    """The JSON shape (`campaigns preflight --json`, a run's stored preflight)."""
    return {
        "planned_at": p.planned_at.isoformat() if p.planned_at else None,
        "checked_at": p.checked_at.isoformat(), "category": p.category, "enforcement": p.enforcement,
        "rules_version": p.rules_version, "recipients": p.recipients,
        "countries": [{"country": c, "recipients": n} for c, n in p.countries],
        "blocked": bool(p.blocking), "blocked_countries": sorted(p.blocked_countries),
        "findings": [asdict(f) for f in p.findings],
        "cost": costs.cost_dict(p.cost),
    }

