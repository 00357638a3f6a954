"""The preflight's message sample, content checks and cost estimate.

The message is rendered for a sample of the reachable audience: everyone up to SAMPLE people,
else SAMPLE people in the campaign's pseudo-random order (the pick key that also draws its reach
percentage). Segments per message are the sample's mean (a country's own mean when the sample
holds at least MIN_COUNTRY_SAMPLE of its people), with a 95% error bound of
1.96 · s / (mean · √n) · √(1 − n/N) (normal approximation with the finite-population correction).
Cost = recipients the run sends to (the control group left out) × segments × the primary
provider's price for the country (per message: recipients × price)."""

from __future__ import annotations

import functools
import math
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole.models import Profile
from smsconsole.services.campaigns.arms import arm_of
from smsconsole.services.campaigns.definition import LIVE_TYPES, CampaignDocument
from smsconsole.services.campaigns.materialize import pick_key
from smsconsole.services.campaigns.render import (
    RenderProblem,
    compile_body,
    profile_mapping,
    render_for,
)
from smsconsole.services.compliance.checks import Finding, RouteCheck
from smsconsole.services.compliance.dlt import (
    best_match,
    liquid_skeleton,
    match_template,
)
from smsconsole.services.compliance.prices import pick_price, price_lookup
from smsconsole.services.compliance.rules import RuleBook
from smsconsole.services.compliance.templates import list_dlt_templates
from smsconsole.services.links import NO_DOMAIN, preview_links
from smsconsole.services.smart_encoding import provider_smart_encodes
from smsconsole.sms import analyze, has_lookalikes, lookalike_report, replace_lookalikes

SAMPLE = 2_000
MIN_COUNTRY_SAMPLE = 30
LONG_MESSAGE = 3  # segments
_URL = re.compile(r"https?://([^/\s?#:]+)", re.IGNORECASE)


@dataclass(frozen=True)
class SampleRow:
    country: str
    variant: str
    body: str | None
    problem: str | None = None

    @functools.cached_property
    def segments(self) -> int:
        return max(1, analyze(self.body).segments) if self.body else 0

    @functools.cached_property
    def smart_segments(self) -> int:
        if not self.body or not has_lookalikes(self.body):
            return self.segments
        return max(1, analyze(replace_lookalikes(self.body)[0]).segments)


@dataclass
class Sample:
    rows: list[SampleRow] = field(default_factory=list)
    population: int = 0  # the reachable audience the sample was drawn from
    complete: bool = True  # everyone was rendered (the control group is never sent, so never rendered)


async def sample_messages(session: AsyncSession, document: CampaignDocument, condition: Any, *,
                          campaign_id: int, population: int, size: int = SAMPLE) -> Sample:
    """Render each sampled person's variant (the control group is never sent, so not sampled);
    `population` is how many the condition holds (the caller has counted them)."""
    query = select(Profile).where(condition).order_by(pick_key(campaign_id)).limit(size)
    arms = document.what.arms
    compiled: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for variant in arms:
        try:
            compiled[variant.name] = compile_body(variant.body, document.type in LIVE_TYPES)
        except RenderProblem as exc:
            problems[variant.name] = exc.reason
    sample = Sample(population=population, complete=population <= size)
    links = await preview_links(session)  # `track`: the short-link domain and a code of the real length
    for profile in await session.scalars(query):
        name = arm_of(campaign_id, profile.id, arms) if len(arms) > 1 or document.what.control else arms[0].name
        if name not in {v.name for v in arms}:
            continue  # held out (control)
        country = (profile.country or "??").upper()
        if name in problems:
            sample.rows.append(SampleRow(country, name, None, problems[name]))
            continue
        try:
            body = await render_for(compiled[name], profile_mapping(profile), linked=None, event={}, links=links)
        except RenderProblem as exc:
            sample.rows.append(SampleRow(country, name, None, exc.reason))
            continue
        sample.rows.append(SampleRow(country, name, body))
    return sample


def _by_country(sample: Sample) -> dict[str, list[SampleRow]]:
    out: dict[str, list[SampleRow]] = defaultdict(list)
    for row in sample.rows:
        out[row.country].append(row)
    return out


async def content_findings(session: AsyncSession, sample: Sample, document: CampaignDocument, rules: RuleBook,
                           per_country: Mapping[str, int], checks: Mapping[str, RouteCheck]) -> list[Finding]:
    findings: list[Finding] = []
    total = sum(per_country.values())
    category = document.compliance.category
    rows_by_country = _by_country(sample)
    many = len(document.what.arms) > 1
    if any(r.problem == NO_DOMAIN for r in sample.rows):  # every message of the campaign would be suppressed
        findings.append(Finding("block", "short_link_domain", None, total,
                                "the body tracks links (| track) but no short-link domain is set",
                                "set the short-link domain in Settings (e.g. https://go.example.com)"))
    failed = [r for r in sample.rows if r.problem and r.problem != NO_DOMAIN]
    if failed and sample.rows:
        share = len(failed) / len(sample.rows)
        findings.append(Finding(
            "warn", "personalization", None, round(total * share),
            f"the message cannot be rendered for {share:.0%} of the sampled recipients ({failed[0].problem}); "
            "they will be suppressed", "fix the template or the profiles' properties (preview a recipient in the What step)"))
    for variant in document.what.arms:
        label = variant.name if many else None
        body = variant.body
        report = lookalike_report(body)
        if report.forced_by_lookalikes:
            chars = ", ".join(f"{c!r} → {r!r}" + (f" ×{n}" if n > 1 else "") for c, r, n in report.culprits[:6])
            findings.append(Finding(
                "warn", "lookalike_ucs2", None, total,
                f"look-alike characters force UCS-2 ({chars}): {report.before.segments} segments instead of "
                f"{report.after.segments}", "replace them with plain characters, or turn on smart encoding",
                label))
        filtered = sorted({d for d in (m.group(1).lower() for m in _URL.finditer(body))
                           if any(d == f or d.endswith("." + f) for f in rules.filtered_link_domains)})
        if filtered:
            findings.append(Finding(
                "warn", "filtered_link", None, total,
                f"links on {', '.join(filtered)}: public shorteners that carriers are known to filter",
                "use your own domain for links (a branded short domain)", label))
        segments = [r.segments for r in sample.rows if r.variant == variant.name and r.body]
        if segments and sum(segments) / len(segments) > LONG_MESSAGE:
            findings.append(Finding(
                "warn", "long_message", None, total,
                f"about {sum(segments) / len(segments):.1f} segments per message (more than {LONG_MESSAGE}): "
                "long messages cost more and some carriers split or drop them", "shorten the message", label))
        for country, n in per_country.items():
            rule = rules.get(country)
            if rule is None or not n:
                continue
            rendered = [r.body for r in rows_by_country.get(country, []) if r.variant == variant.name and r.body]
            texts = rendered or [body]
            if rule.opt_out_required and rule.applies(rule.opt_out_applies, category):
                missing = sum(1 for t in texts if not rule.has_opt_out(t))
                if missing:
                    findings.append(Finding(
                        "warn", "opt_out_text", country, round(n * missing / len(texts)),
                        f"the message has no opt-out text, which {rule.name} expects",
                        f"add it, e.g. “{rule.opt_out_example}”", label))
        if "IN" in per_country and per_country["IN"] and rules.get("IN") is not None:
            findings += await _dlt_findings(session, variant, rows_by_country.get("IN", []), per_country["IN"],
                                            checks.get("IN"), label)
    return findings


async def _dlt_findings(session: AsyncSession, variant: Any, rows: list[SampleRow], recipients: int,
                        check: RouteCheck | None, label: str | None) -> list[Finding]:
    if check is not None and check.exempt:
        return []
    templates = await list_dlt_templates(session)
    headers = set(check.dlt_headers) if check is not None else set()
    chosen_id = str(variant.dlt.get("dlt_template_id") or "").strip()
    texts = [r.body for r in rows if r.variant == variant.name and r.body] or [liquid_skeleton(variant.body)]
    if chosen_id:
        template = next((t for t in templates if t.template_id == chosen_id), None)
        if template is None:
            return [Finding("block", "dlt_template", "IN", recipients,
                            f"DLT template {chosen_id} is not registered",
                            "add it (Settings → Compliance, or smsconsole templates add …) or pick a registered one",
                            label)]
        if headers and template.header not in headers:
            return [Finding("block", "dlt_template", "IN", recipients,
                            f"DLT template {chosen_id} belongs to header {template.header}, but the route sends from "
                            f"{', '.join(sorted(headers))}", "use a template of the sending header", label)]
        results = [match_template(template.content, t) for t in texts]
        bad = [m for m in results if not m.ok]
        if bad:
            return [Finding("block", "dlt_template", "IN", round(recipients * len(bad) / len(results)),
                            f"the message does not match DLT template {chosen_id}: {bad[0].difference}",
                            "make the body match the registered template word for word ({#var#} filled)", label)]
        return []
    pool = [(t.template_id, t.content) for t in templates if not headers or t.header in headers]
    if not pool:
        where = f"header {', '.join(sorted(headers))}" if headers else "any header"
        return [Finding("block", "dlt_template", "IN", recipients, f"no DLT template is registered for {where}",
                        "register the template on the DLT platform and add it (smsconsole templates add …)", label)]
    misses = []
    for text in texts:
        found, match = best_match(pool, text)
        if not match.ok:
            misses.append((found, match))
    if misses:
        found, match = misses[0]
        closest = f" (closest: {found}: {match.difference})" if found else ""
        return [Finding("block", "dlt_template", "IN", round(recipients * len(misses) / len(texts)),
                        f"the message matches no registered DLT template{closest}",
                        "make the body match a registered template word for word, or register a new one", label)]
    return []


# --- cost --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CountryCost:
    country: str
    recipients: int  # sent to (the control group left out)
    segments: float  # per message
    unit_price: float | None
    unit: str
    currency: str | None
    cost: float | None
    provider: str | None
    priced_at: datetime | None
    smart_saving: float = 0.0  # what smart encoding would save


@dataclass(frozen=True)
class CostEstimate:
    countries: tuple[CountryCost, ...] = ()
    totals: Mapping[str, float] = field(default_factory=dict)  # currency -> amount
    sampled: int = 0
    population: int = 0
    margin: float = 0.0  # relative 95% error bound of the segments per message
    complete: bool = True  # every message was rendered (no sampling error)
    saving_smart_encoding: Mapping[str, float] = field(default_factory=dict)
    saving_shorter: Mapping[str, float] = field(default_factory=dict)  # one segment fewer per message
    unpriced: int = 0  # recipients in countries without a price

    def words(self) -> str:
        if not self.totals:
            return "no estimate (no prices)" if self.unpriced else "nothing to send"
        return " + ".join(f"{amount:,.2f} {currency}" for currency, amount in sorted(self.totals.items()))


def _margin(values: Sequence[int], population: int) -> float:
    n = len(values)
    if n < 2 or n >= population:
        return 0.0
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return 1.96 * sd / (mean * math.sqrt(n)) * math.sqrt(1 - n / population) if mean else 0.0


async def estimate(session: AsyncSession, sample: Sample, per_country: Mapping[str, int],
                   checks: Mapping[str, RouteCheck], document: CampaignDocument) -> CostEstimate:
    sent_share = 1 - document.what.control / 100
    primaries = {c.primary.id for c in checks.values() if c.primary is not None}
    prices = await price_lookup(session, primaries) if primaries else {}
    rows = [r for r in sample.rows if r.body]
    overall = [r.segments for r in rows]
    overall_mean = sum(overall) / len(overall) if overall else float(max(1, analyze(document.what.arms[0].body).segments))
    by_country = _by_country(Sample(rows, sample.population))
    lines: list[CountryCost] = []
    totals: dict[str, float] = defaultdict(float)
    smart: dict[str, float] = defaultdict(float)
    shorter: dict[str, float] = defaultdict(float)
    unpriced = 0
    for country, n in sorted(per_country.items(), key=lambda item: -item[1]):
        recipients = round(n * sent_share)
        own = by_country.get(country, [])
        mean = (sum(r.segments for r in own) / len(own)) if len(own) >= MIN_COUNTRY_SAMPLE else overall_mean
        smart_mean = ((sum(r.smart_segments for r in own) / len(own)) if len(own) >= MIN_COUNTRY_SAMPLE else
                      (sum(r.smart_segments for r in rows) / len(rows) if rows else mean))
        check = checks.get(country)
        primary = check.primary if check is not None else None
        price = pick_price(prices.get((primary.id, country), []), check.sender_type) if primary and check else None
        if price is None:
            unpriced += recipients
            lines.append(CountryCost(country, recipients, mean, None, "segment", None, None,
                                     primary.name if primary else None, None))
            continue
        per_message = price.amount * (mean if price.unit == "segment" else 1)
        cost = recipients * per_message
        saving = recipients * price.amount * (mean - smart_mean) if price.unit == "segment" else 0.0
        totals[price.currency] += cost
        if saving > 0 and not (primary is not None and provider_smart_encodes(primary.kind, primary.config)):
            smart[price.currency] += saving
        if price.unit == "segment" and mean > 1:
            shorter[price.currency] += recipients * price.amount
        lines.append(CountryCost(country, recipients, mean, price.amount, price.unit, price.currency, cost,
                                 primary.name if primary else None, price.fetched_at or price.updated_at,
                                 saving))
    return CostEstimate(countries=tuple(lines), totals=dict(totals), sampled=len(sample.rows),
                        population=sample.population, complete=sample.complete,
                        margin=0.0 if sample.complete else _margin(overall, sample.population),
                        saving_smart_encoding=dict(smart), saving_shorter=dict(shorter), unpriced=unpriced)


def cost_findings(estimate_: CostEstimate, document: CampaignDocument) -> list[Finding]:
    findings: list[Finding] = []
    for line in estimate_.countries:
        if line.cost is None and line.recipients:
            findings.append(Finding(
                "warn", "no_price", line.country, line.recipients,
                f"no price for {line.country} on {line.provider or 'its route'}: the estimate leaves it out",
                f"set one (smsconsole prices set {line.provider or 'PROVIDER'} {line.country} 0.0079) or fetch them"))
    budget = document.budget
    if budget is not None:
        spent = estimate_.totals.get(budget.currency, 0.0)
        if spent > budget.amount:
            findings.append(Finding(
                "block", "budget", None, sum(c.recipients for c in estimate_.countries),
                f"the run would cost about {spent:,.2f} {budget.currency}, over its budget of "
                f"{budget.amount:,.2f} {budget.currency}",
                "raise the budget, narrow the audience or set a run limit"))
        others = sorted(c for c in estimate_.totals if c != budget.currency)
        if others:
            findings.append(Finding(
                "warn", "budget_currency", None, 0,
                f"part of the cost is in {', '.join(others)}, which the {budget.currency} budget cannot count",
                "price those countries in the budget's currency"))
    return findings


def cost_dict(estimate_: CostEstimate) -> dict[str, Any]:
    out = asdict(estimate_)
    out["countries"] = [{**asdict(c), "priced_at": c.priced_at.isoformat() if c.priced_at else None}
                        for c in estimate_.countries]
    out["totals"] = dict(estimate_.totals)
    return out


@dataclass(frozen=True)
class MessageCost:
    segments: int
    encoding: str
    amount: float | None  # for the whole message
    unit_price: float | None
    unit: str
    currency: str | None
    provider: str | None
    priced_at: datetime | None

    def words(self) -> str:
        if self.amount is None:
            return f"{self.segments} segment{'s' if self.segments != 1 else ''} ({self.encoding}); no price known"
        per = f"{self.segments} × {self.unit_price:g}" if self.unit == "segment" else "per message"
        when = f", priced {self.priced_at:%Y-%m-%d}" if self.priced_at else ""
        return f"{self.amount:.4f} {self.currency} ({per}, {self.provider}{when})"


async def estimate_message_cost(session: AsyncSession, *, body: str, country: str | None, provider_id: int | None,
                                provider: str | None = None, sender_type: str | None = None,
                                smart_encoding: bool = False) -> MessageCost:
    """What one message costs on one provider (a test send's price, shown before it is sent)."""
    info = analyze(replace_lookalikes(body)[0] if smart_encoding else body)
    segments = max(1, info.segments)
    price = None
    if provider_id is not None and country:
        price = pick_price((await price_lookup(session, [provider_id])).get((provider_id, country.upper()), []),
                           sender_type)
    if price is None:
        return MessageCost(segments, info.encoding.value, None, None, "segment", None, provider, None)
    amount = price.amount * (segments if price.unit == "segment" else 1)
    return MessageCost(segments, info.encoding.value, amount, price.amount, price.unit, price.currency, provider,
                       price.fetched_at or price.updated_at)
