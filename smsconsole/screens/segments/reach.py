"""A reach estimate in words: qualified, reachable, why the rest cannot be reached, the top
countries, warnings and when it was computed. Pure functions returning styled text."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

from smsconsole.screens.widgets.formatting import format_time
from smsconsole.services.segments import ReachEstimate

TOP_COUNTRIES = 5
LABEL_WIDTH = 20


def _line(label: str, count: int, style: str = "", indent: int = 0) -> Text:
    label = " " * indent + label
    return Text.assemble((label.ljust(LABEL_WIDTH), "dim" if indent else ""), (f"{count:>9,}", style))


def reach_panel_text(estimate: ReachEstimate) -> Text:
    """The builder's reach panel."""
    text = Text()
    text.append_text(_line("Qualified", estimate.qualified, "bold"))
    share = f" {estimate.reachable / estimate.qualified:.0%}" if estimate.qualified else ""
    text.append("\n")
    text.append_text(_line("Reachable by SMS", estimate.reachable, "bold green"))
    text.append(share, style="green")
    text.append("\n")
    text.append_text(_line("Not reachable", estimate.unreachable.total, "yellow"))
    for reason, count in estimate.unreachable.items():
        text.append("\n")
        text.append_text(_line(reason, count, "yellow" if count else "dim", indent=2))
    if estimate.by_country:
        text.append("\n\nTop countries", style="bold")
        text.append(f"{'qual':>11}{'reach':>7}", style="dim")
        for country in estimate.by_country[:TOP_COUNTRIES]:
            text.append(f"\n  {(country.country or '—'):<11}{country.qualified:>11,}{country.reachable:>7,}")
        more = len(estimate.by_country) - TOP_COUNTRIES
        if more > 0:
            text.append(f"\n  and {more} more", style="dim")
    for warning in estimate.warnings:
        text.append(f"\n⚠ {warning}", style="yellow")
    text.append(f"\n\ncomputed {format_time(estimate.computed_at, seconds=True)}", style="dim")
    return text


def reach_problems_text(problems: Sequence[tuple[str, str]]) -> Text:
    """Instead of numbers, for a definition the service refused."""
    text = Text("No estimate: the definition has ", style="bold yellow")
    text.append(f"{len(problems)} problem{'s' if len(problems) != 1 else ''}", style="bold yellow")
    for path, reason in problems[:8]:
        text.append(f"\n✖ {path}: ", style="red")
        text.append(reason)
    if len(problems) > 8:
        text.append(f"\n… and {len(problems) - 8} more", style="dim")
    return text


def reach_summary(estimate: ReachEstimate) -> Text:
    """One or two lines for the list's detail panel."""
    text = Text.assemble(("Qualified ", "dim"), (f"{estimate.qualified:,}", "bold"), ("  reachable ", "dim"),
                         (f"{estimate.reachable:,}", "bold green"))
    reasons = [f"{reason} {count:,}" for reason, count in estimate.unreachable.items() if count]
    if reasons:
        text.append("  not reachable: ", style="dim")
        text.append(", ".join(reasons), style="yellow")
    if estimate.by_country:
        text.append("\nTop countries: ", style="dim")
        text.append(", ".join(f"{c.country or '—'} {c.qualified:,}" for c in estimate.by_country[:TOP_COUNTRIES]))
    for warning in estimate.warnings:
        text.append(f"\n⚠ {warning}", style="yellow")
    return text
