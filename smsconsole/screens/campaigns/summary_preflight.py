"""The wizard Summary's Preflight section and the campaign page's note on a run's preflight, as rich
Text: the verdict; each finding with its country, recipients, what is wrong and how to fix it
(blocking ones red, warnings yellow); then the estimated cost (total, per country, the sampling
bound, what smart encoding or a shorter body would save). The words come from
services/compliance/words.py, so the CLI's `campaigns preflight` reads the same."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from smsconsole import clock
from smsconsole.services.campaigns.materialize import MaterializeError
from smsconsole.services.compliance.preflight import Preflight, preflight_campaign
from smsconsole.services.compliance.views import RunPreflight
from smsconsole.services.compliance.words import cost_lines, verdict
from smsconsole.services.errors import ServiceError

SEVERITY = {"block": ("✖ BLOCKS ", "bold red", "red"), "warn": ("⚠ warning ", "bold yellow", "yellow")}
SHOWN_FINDINGS = 12  # beyond these, one line says how many more (the CLI lists them all)


def finding_text(finding: Any, *, enforced: bool = True) -> Text:
    """One finding in two lines: `✖ BLOCKS US (1,204): what is wrong` then `  fix: how`. A blocking
    finding that is not enforced (compliance_enforcement = warn) reads as a warning."""
    severity = finding.severity if enforced or finding.severity != "block" else "warn"
    label, label_style, style = SEVERITY.get(severity, (f"{severity} ", "bold", ""))
    if finding.severity == "block" and not enforced:
        label = "⚠ would block "
    where = finding.country or "all"
    if finding.variant:
        where += f" variant {finding.variant}"
    count = f" ({finding.recipients:,})" if finding.recipients else ""
    text = Text.assemble((label, label_style), (f"{where}{count}: ", "bold"), (finding.message, style))
    if finding.fix:
        text.append("\n  fix: ", style="dim")
        text.append(finding.fix)
    return text


def preflight_text(preflight: Preflight) -> Text:
    """The Summary's Preflight section."""
    enforced = preflight.enforcement == "block"
    blocking = bool(preflight.blocking)
    text = Text("Preflight\n", style="bold")
    style = "bold red" if blocking else ("yellow" if preflight.findings else "green")
    text.append(f"{verdict(preflight)}\n", style=style)
    if preflight.rules_version:
        text.append(f"{preflight.category} content; country rules of {preflight.rules_version}\n", style="dim")
    for finding in preflight.findings[:SHOWN_FINDINGS]:
        text.append_text(finding_text(finding, enforced=enforced))
        text.append("\n")
    if len(preflight.findings) > SHOWN_FINDINGS:
        more = len(preflight.findings) - SHOWN_FINDINGS
        text.append(f"… and {more} more (smsconsole campaigns preflight lists them all)\n", style="dim")
    text.append("Cost\n", style="bold")
    lines = cost_lines(preflight.cost)
    head, rest = lines[0], lines[1:]
    total = head.removeprefix("estimated cost: ")
    text.append("estimated ")
    text.append(total, style="bold" if preflight.cost.totals else "dim")
    for line in rest:
        text.append("\n")
        stripped = line.strip()
        if stripped.startswith(("smart encoding", "a body one segment")):
            text.append(line, style="cyan")
        elif "no price" in stripped or "without a price" in stripped:
            text.append(line, style="yellow")
        else:
            text.append(line)
    return text


async def summary_preflight(session: Any, document: Any, campaign_id: int | None) -> Text:
    """The Summary's section for the campaign as it stands (its next run), or why it cannot be
    checked yet."""
    try:
        checked = await preflight_campaign(session, document, now=clock.now(), campaign_id=campaign_id or 0)
    except (ServiceError, MaterializeError) as exc:
        return Text.assemble(("Preflight\n", "bold"), (f"not checked: {exc}", "dim"))
    return preflight_text(checked)


def run_preflight_text(run: RunPreflight) -> Text:
    """The campaign page's few lines on what the latest run's preflight held or suppressed."""
    if run.blocked:
        head = f"Run {run.run_number} held by its preflight"
    else:
        head = f"Run {run.run_number}: its preflight suppressed {', '.join(sorted(run.suppressed))}"
    text = Text(head, style="bold red" if run.blocked else "bold yellow")
    if run.checked_at is not None:
        text.append(f" (checked {run.checked_at:%Y-%m-%d %H:%M} UTC)", style="dim")
    for finding in run.findings[:4]:
        text.append("\n")
        text.append_text(finding_text(finding))
    if len(run.findings) > 4:
        text.append(f"\n… and {len(run.findings) - 4} more", style="dim")
    if not run.findings:
        for country, reason in sorted(run.suppressed.items()):
            text.append(f"\n{country}: {reason}", style="yellow")
    return text
