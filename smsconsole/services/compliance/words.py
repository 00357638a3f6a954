"""The preflight in words: one line per finding, the countries and the cost, for the CLI
(`campaigns preflight`), the wizard's Summary and the campaign page."""

from __future__ import annotations

from smsconsole.services.compliance.checks import Finding
from smsconsole.services.compliance.cost import CostEstimate
from smsconsole.services.compliance.preflight import Preflight

SEVERITY_WORDS = {"block": "BLOCKS", "warn": "warning"}


def finding_line(f: Finding) -> str:
    """`BLOCKS US (1,204): no sender … — fix: add …`"""
    where = f.country or "all"
    arm = f" variant {f.variant}" if f.variant else ""
    count = f" ({f.recipients:,})" if f.recipients else ""
    return f"{SEVERITY_WORDS.get(f.severity, f.severity)} {where}{arm}{count}: {f.message} — fix: {f.fix}"


def verdict(p: Preflight) -> str:
    blocking = [f for f in p.findings if f.severity == "block"]
    warnings = len(p.findings) - len(blocking)
    plural = "s" if warnings != 1 else ""
    if not blocking:
        return f"preflight passed: {warnings} warning{plural}" if warnings else "preflight passed: no findings"
    countries = sorted({f.country for f in blocking if f.country})
    where = f" ({', '.join(countries)})" if countries else ""
    if p.enforcement != "block":
        return (f"preflight: {len(blocking)} blocking finding{'s' if len(blocking) != 1 else ''}{where}, "
                f"not enforced (compliance_enforcement = warn); {warnings} warning{plural}")
    return (f"preflight BLOCKS: {len(blocking)} blocking finding{'s' if len(blocking) != 1 else ''}{where}; "
            f"{warnings} warning{plural}")


def cost_lines(cost: CostEstimate) -> list[str]:
    lines = [f"estimated cost: {cost.words()}"]
    if cost.population:
        if cost.complete:
            lines.append(f"  segments counted on every message, {cost.sampled:,} rendered")
        else:
            lines.append(f"  segments from {cost.sampled:,} of {cost.population:,} recipients rendered "
                         f"(95% error bound ±{cost.margin:.1%})")
    for line in cost.countries:
        price = (f"{line.segments:.2f} seg × {line.unit_price:g} {line.currency}" if line.unit == "segment"
                 and line.unit_price is not None else
                 f"{line.unit_price:g} {line.currency} per message" if line.unit_price is not None else "no price")
        total = f"{line.cost:,.2f} {line.currency}" if line.cost is not None else "-"
        via = f" via {line.provider}" if line.provider else ""
        lines.append(f"  {line.country} {line.recipients:>7,} × {price} = {total}{via}")
    for currency, amount in sorted(cost.saving_smart_encoding.items()):
        lines.append(f"  smart encoding would save about {amount:,.2f} {currency}")
    for currency, amount in sorted(cost.saving_shorter.items()):
        lines.append(f"  a body one segment shorter would save about {amount:,.2f} {currency}")
    if cost.unpriced:
        lines.append(f"  {cost.unpriced:,} recipients in countries without a price are not counted")
    return lines


def preflight_lines(p: Preflight) -> list[str]:
    when = f" for the run at {p.planned_at:%Y-%m-%d %H:%M} UTC" if p.planned_at else ""
    countries = ", ".join(f"{c} {n:,}" for c, n in p.countries[:12]) or "nobody reachable"
    more = f" and {len(p.countries) - 12} more" if len(p.countries) > 12 else ""
    lines = [verdict(p) + when,
             f"reachable: {p.recipients:,} ({countries}{more}); content: {p.category}; rules {p.rules_version}"]
    lines += [finding_line(f) for f in p.findings]
    lines += cost_lines(p.cost)
    return lines
