"""The report on a campaign's page (services/campaigns/report.py, read from the rollups): a table
per variant and control (reached, delivered, failed, suppressed, conversions, rate, revenue; at
120 columns also assigned, replies, opt-outs and cost), funnel bars (qualified → reached →
delivered → converted), the answers to the campaign's reply options (per option and variant; a
number option's scores as a column chart, and the NPS for 0-10), a chart of sends, deliveries,
failures and conversions over time (textual-plotext), the lift verdicts, delivery time percentiles,
and tables per provider and per country. Everything stacks at 80×24 (the page scrolls) and sits side
by side at 120×36."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static
from textual_plotext import PlotextPlot

from smsconsole.services.campaigns.definition import LIVE_TYPES
from smsconsole.services.campaigns.reasons import describe_held_back
from smsconsole.services.campaigns.reply_options import nps_score, option_figures

FUNNEL_CELLS = 28
FUNNEL_STYLES = {"qualified": "cyan", "reached": "blue", "delivered": "green", "converted": "magenta"}
TICKS = 4
METRICS = (("sent", "blue"), ("delivered", "green"), ("failed", "red"), ("converted", "magenta"))
ANSWER_CELLS = 16  # a word option's bar
SCORE_ROWS = 4  # the scores' column chart: its height in lines (eighths of a cell each)
SCORE_WIDTH = 72  # the scores' chart at most (a wide range is grouped): 18 columns of 4 at 80 columns
EIGHTHS = " ▁▂▃▄▅▆▇█"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _count(value: int, *, dash: bool = False) -> Text:
    if dash:
        return Text("-", style="dim", justify="right")
    return Text(f"{value:,}", style="" if value else "dim", justify="right")


def arms_table(report: Any, wide: bool) -> Table:
    """One row per variant and control, then all."""
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, show_edge=False, expand=False)
    columns = ["Arm", *(["Assigned"] if wide else []), "Reached", "Deliv", "Failed", "Suppr",
               *(["Replies", "Opt-outs"] if wide else []), "Conv", "Rate", "Revenue", *(["Cost"] if wide else [])]
    for name in columns:
        table.add_column(name, justify="left" if name == "Arm" else "right", no_wrap=True)
    for arm in (*report.arms, report.total):
        control = arm.arm == "control"
        cells: list[Any] = [Text(arm.arm or "(none)", style="bold" if arm.arm == "all" else "")]
        if wide:
            cells.append(_count(arm.assigned))
        cells += [_count(arm.reached), _count(arm.delivered, dash=control),
                  _count(arm.failed + arm.undelivered, dash=control), _count(arm.suppressed, dash=control)]
        if wide:
            cells += [_count(arm.replies, dash=control), _count(arm.opt_outs, dash=control)]
        cells += [_count(arm.conversions), Text(percent(arm.conversion_rate), justify="right"),
                  Text(f"{arm.revenue:,.2f}", justify="right", style="" if arm.revenue else "dim")]
        if wide:
            cells.append(Text(f"{arm.cost:,.2f}" if arm.cost else "-", justify="right", style="" if arm.cost else "dim"))
        table.add_row(*cells)
    return table


def funnel_text(report: Any, cells: int = FUNNEL_CELLS) -> Text:
    """Qualified → reached → delivered → converted as bars, each with its share of the step before."""
    steps = report.funnel()
    top = max((n for _, n in steps), default=0) or 1
    text = Text()
    previous: int | None = None
    for index, (label, n) in enumerate(steps):
        filled = round(cells * n / top)
        share = f" {n / previous * 100:5.1f}%" if previous else ""
        if index:
            text.append("\n")
        text.append(f"{label:<10}", style="bold")
        text.append("█" * filled, style=FUNNEL_STYLES.get(label, "cyan"))
        text.append("░" * (cells - filled), style="dim")
        text.append(f" {n:>7,}{share}")
        previous = n
    return text


def summary_text(report: Any) -> Text:
    scope = f"run {report.run_number}" if report.run_number is not None else (
        f"{len(report.runs)} runs" if len(report.runs) != 1 else "1 run")
    text = Text.assemble(("Results ", "bold"), (f"of {scope}", "dim"))
    text.append(" · goal ", style="dim")
    text.append(report.goal or "none (conversions are not counted)")
    text.append("\nQualified ", style="bold")
    if report.qualified is not None:
        text.append(f"{report.qualified:,}")
    else:
        text.append("- (live: people come one trigger at a time)" if report.type in LIVE_TYPES else "-", style="dim")
    if held := describe_held_back(report.held_back):
        text.append(" · held back ", style="dim")
        text.append(held, style="yellow")
    text.append("\nCost ", style="bold")
    text.append(report.cost_words())
    text.append(" · replies ", style="dim")
    text.append(f"{report.total.replies:,}")
    text.append(" · opt-outs caused ", style="dim")
    text.append(f"{report.total.opt_outs:,}", style="red" if report.total.opt_outs else "")
    if report.total.clicks:  # tracked links (| track): only when someone clicked, so other reports keep their lines
        text.append("\nClicks ", style="bold")
        text.append(f"{report.total.clicks:,}")
        text.append(" · unique ", style="dim")
        text.append(f"{report.total.unique_clicks:,}")
        text.append(" · click-through ", style="dim")
        text.append(percent(report.total.click_rate))
        if len(report.variants) > 1:
            text.append("  " + "  ".join(f"{arm.arm} {percent(arm.click_rate)}" for arm in report.variants),
                        style="dim")
    return text


def _short(n: int) -> str:
    """A count in at most 4 characters (a score column's width)."""
    return f"{n:,}" if n < 1000 else f"{n / 1000:.1f}k" if n < 9950 else f"{round(n / 1000)}k"


def _score_columns(scores: tuple[tuple[int, int], ...]) -> tuple[list[tuple[str, int]], int]:
    """(label, answers) per column and the columns' width: each score, or for a wide range groups
    of scores ("0-9") few enough to fit SCORE_WIDTH."""
    size = 1
    while True:
        groups = [scores[index:index + size] for index in range(0, len(scores), size)]
        columns = [(f"{group[0][0]}-{group[-1][0]}" if len(group) > 1 else str(group[0][0]),
                    sum(n for _, n in group)) for group in groups]
        width = max(4, *(len(label) + 1 for label, _ in columns))
        if len(columns) * width <= SCORE_WIDTH or len(columns) == 1:
            return columns, width
        size += 1


def scores_text(scores: tuple[tuple[int, int], ...]) -> Text:
    """The scores as a column chart: one column per score (SCORE_ROWS lines high, to eighths), its
    score under it and its answers under that."""
    columns, width = _score_columns(scores)
    top = max((n for _, n in columns), default=0) or 1
    levels = [round(n / top * SCORE_ROWS * 8) for _, n in columns]
    text = Text()
    for line in range(SCORE_ROWS, 0, -1):
        for level in levels:
            cell = EIGHTHS[max(0, min(8, level - (line - 1) * 8))]
            text.append(" " * (width - 2) + cell * 2, style="cyan")
        text.append("\n")
    text.append("".join(label.rjust(width) for label, _ in columns), style="bold")
    text.append("\n")
    text.append("".join(_short(n).rjust(width) for _, n in columns), style="dim")
    return text


def nps_words(figures: Any) -> Text:
    """NPS +23 (promoters 40 · passives 25 · detractors 17): the counts of each."""
    if figures.nps is None:
        return Text.assemble(("NPS ", "bold"), ("- (no scores yet)", "dim"))
    style = "green" if figures.nps > 0 else "red" if figures.nps < 0 else ""
    counts = f" (promoters {figures.promoters:,} · passives {figures.passives:,} · detractors {figures.detractors:,})"
    return Text.assemble(("NPS ", "bold"), (nps_score(figures.nps), f"bold {style}".strip()), counts)


def answers_text(report: Any) -> Text:
    """The answers to the reply options: each word option's count, bar and share of the answers
    (and per variant when there are several), then a number option's scores and, for 0-10, the NPS."""
    figures, offered = report.answers, report.replies_offered
    variants = [arm for arm in report.variants if arm.arm] if len(report.variants) > 1 else []
    text = Text.assemble(("Answers ", "bold"), f"{figures.total:,}")
    delivered = report.total.delivered
    if delivered:
        text.append(f" · {figures.total / delivered * 100:.1f}% of delivered", style="dim")
    text.append(" · each message's last answer", style="dim")
    events = {option.label: option.event for option in offered.options} if offered is not None else {}
    top = max((n for _, n in figures.answers), default=0) or 1
    for label, n in figures.answers:
        filled = round(ANSWER_CELLS * n / top) if n else 0
        text.append(f"\n{label[:10]:<10} ", style="bold")
        text.append("█" * filled, style="blue")
        text.append("░" * (ANSWER_CELLS - filled), style="dim")
        text.append(f" {n:>6,} {percent(n / figures.total if figures.total else None):>6}")
        if variants:
            text.append("  " + " · ".join(f"{arm.arm} {arm.answers.get(label, 0):,}" for arm in variants), style="dim")
        elif label in events:
            text.append(f"  → {events[label][:30]}", style="dim")
    if figures.scores:
        low, high = figures.scores[0][0], figures.scores[-1][0]
        rated, mean = figures.rated, figures.mean
        text.append(f"\nScores {low}-{high}", style="bold")
        text.append(f" · {rated:,} answers" + (f" · mean {mean:.1f}" if mean is not None else ""), style="dim")
        text.append("\n")
        text.append_text(scores_text(figures.scores))
        if figures.nps is not None or (low, high) == (0, 10):
            text.append("\n")
            text.append_text(nps_words(figures))
            if variants and offered is not None:
                by_arm = [(arm.arm, option_figures(offered, arm.answers)) for arm in variants]
                text.append("\n  by variant: ", style="dim")
                text.append(" · ".join(f"{name} " + ("-" if f is None or f.nps is None else nps_score(f.nps))
                                       for name, f in by_arm), style="dim")
    return text


def verdicts_text(report: Any) -> Text:
    """Lift against control, delivery time, why rows were suppressed and the top failures."""
    text = Text()
    if report.lift:
        for lift in report.lift:
            style = ("green" if lift.diff_pts and lift.diff_pts > 0 else "red") if lift.significant else "dim"
            text.append("Lift ", style="bold")
            verdict = lift.verdict if lift.verdict.startswith(f"{lift.variant} ") else f"{lift.variant}: {lift.verdict}"
            text.append(f"{verdict}\n", style=style)
    elif report.arms and not report.has_control:
        text.append("Lift ", style="bold")
        text.append("no control group: nothing to compare against\n", style="dim")
    latency = " · ".join(f"{name} {bound}" for name, bound in report.latency.items())
    text.append("Delivery time ", style="bold")
    text.append(latency or "nothing delivered yet", style="" if latency else "dim")
    groups: dict[str, int] = {}
    for arm in report.arms:
        for group, n in arm.suppressed_by.items():
            groups[group] = groups.get(group, 0) + n
    if groups:
        text.append("\nSuppressed ", style="bold")
        text.append(", ".join(f"{group} {n:,}" for group, n in sorted(groups.items(), key=lambda item: -item[1])),
                    style="magenta")
    failures: dict[str, int] = {}
    for arm in report.arms:
        for failure in arm.failures:
            failures[failure.detail] = failures.get(failure.detail, 0) + failure.n
    if failures:
        top = sorted(failures.items(), key=lambda item: -item[1])
        text.append("\nFailed ", style="bold")
        text.append(", ".join(f"{detail[:30]} {n:,}" for detail, n in top[:3]) + (" …" if len(top) > 3 else ""),
                    style="red")
    return text


def breakdown_table(title: str, breakdowns: tuple[Any, ...], currency: str | None) -> Table | Text:
    """Sent, delivered, failed, delivery rate, median delivery time and cost per provider or country
    (the cost's currency in its heading when there is one, else beside each figure); rows that
    never left (queued or suppressed before a provider was chosen) are left out."""
    breakdowns = tuple(b for b in breakdowns if b.sent or b.failed)
    if not breakdowns:
        return Text(f"{title}: nothing yet", style="dim")
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 0), pad_edge=False, show_edge=False)
    table.add_column(title, no_wrap=True, min_width=8, max_width=13, overflow="ellipsis")
    for name in ("Sent", "Deliv", "Failed", "Deliv%", "p50", f"Cost {currency}" if currency else "Cost"):
        table.add_column(name, justify="right", no_wrap=True)
    for b in breakdowns[:8]:
        cost = "-" if not b.cost else f"{b.cost:,.2f}" if currency else f"{b.cost:,.2f} {b.currency or ''}".strip()
        table.add_row(b.name or ("(not routed)" if title == "Provider" else "(unknown)"), _count(b.sent), _count(b.delivered), _count(b.failed),
                      percent(b.delivery_rate), b.latency.get("p50", "-"), cost)
    return table


class ReportChart(PlotextPlot):
    """Sent, delivered, failed and converted per bucket; `show` redraws only when they changed."""

    _shown: tuple[Any, ...] | None = None
    _right_axis = False  # conversions drawn against their own (right) axis

    def show(self, series: tuple[Any, ...], bucket_minutes: int) -> None:
        key = (bucket_minutes, tuple((p.at, p.sent, p.delivered, p.failed, p.converted) for p in series))
        if key == self._shown:
            return
        self._shown = key
        plt = self.plt
        plt.clear_figure()
        plt.frame(False)
        if not series:
            plt.plot([0, 1], [0, 0], marker="braille", color="gray")
            plt.yticks([0, 1])
            self.refresh()
            return
        xs = list(range(len(series)))
        top = max(max(p.sent, p.delivered, p.failed) for p in series)
        converted = max(p.converted for p in series)
        # conversions are often a few per bucket beside a send's burst: then they get the right axis
        own_axis = converted > 0 and converted * 5 < top
        for metric, color in METRICS:
            side = "right" if metric == "converted" and own_axis else "left"
            plt.plot(xs, [getattr(p, metric) for p in series], marker="braille", color=color, yside=side)
        step = max(1, len(series) // TICKS)
        ticks = list(range(0, len(series), step))
        span = series[-1].at - series[0].at
        pattern = "%d %b" if bucket_minutes >= 1440 else ("%d %b %H:%M" if span >= timedelta(days=1) else "%H:%M")
        plt.xticks(ticks, [series[t].at.strftime(pattern) for t in ticks])
        top = max(top, 0 if own_axis else converted) or 1
        plt.yticks(sorted({0, top // 2, top}) if top > 1 else [0, 1])
        plt.ylim(0, top)
        if own_axis:  # its scale is in the legend (the right edge has no room for labels)
            plt.yticks([], yside="right")
            plt.ylim(0, converted, yside="right")
        self._right_axis = own_axis
        plt.xlim(0, max(1, len(series) - 1))
        self.refresh()


def legend_text(report: Any) -> Text:
    """What the chart's lines are, in their colours, and the bucket; conversions on their own
    scale (the chart's right axis) when they would be a flat line beside the sends."""
    if not report.series:
        return Text.assemble(("Over time", "bold"), (" · nothing sent yet", "dim"))
    text = Text.assemble(("Over time", "bold"), (f", per {_bucket_words(report.bucket_minutes)} (UTC)", "dim"))
    top = max(max(p.sent, p.delivered, p.failed) for p in report.series)
    converted = max(p.converted for p in report.series)
    if converted and converted * 5 < top:
        text.append(f"; converted: own scale, peak {converted:,}", style="magenta")
    text.append("\n")
    for index, (metric, color) in enumerate(METRICS):
        text.append(("" if not index else " ") + f"━ {metric}", style=color)
    return text


def _bucket_words(minutes: int) -> str:
    if minutes % 1440 == 0:
        return "day" if minutes == 1440 else f"{minutes // 1440} days"
    if minutes % 60 == 0:
        return "hour" if minutes == 60 else f"{minutes // 60} h"
    return "minute" if minutes == 1 else f"{minutes} min"


class ReportPanel(Vertical):
    """The report's widgets; `show(report, wide)` fills them (wide: the table's extra columns).
    It takes the focus (tab from the runs), so the page scrolls to it and PageUp/PageDown, the
    arrows, Home and End then scroll the page (its bindings, up the focus chain)."""

    can_focus = True

    def compose(self) -> ComposeResult:
        yield Static("", id="report-summary")
        yield Static("", id="report-arms")
        yield Static("", id="report-answers")
        with Horizontal(id="report-middle"):
            yield Static("", id="report-funnel")
            with Vertical(id="report-over-time"):
                yield Static("", id="report-legend")
                yield ReportChart(id="report-chart")
        yield Static("", id="report-verdicts")
        with Horizontal(id="report-breakdowns"):
            yield Static("", id="report-providers")
            yield Static("", id="report-countries")

    def show(self, report: Any, wide: bool) -> None:
        summary = summary_text(report)
        if not report.runs:
            summary.append("\nNo runs yet: the report fills in as the campaign sends.", style="dim")
        self.query_one("#report-summary", Static).update(summary)
        for selector in ("#report-arms", "#report-middle", "#report-verdicts", "#report-breakdowns"):
            self.query_one(selector).display = bool(report.runs)
        self.query_one(ReportChart).display = bool(report.series)
        self.query_one("#report-arms", Static).update(arms_table(report, wide))
        answers = report.answers  # the campaign offers reply options
        self.query_one("#report-answers").display = bool(report.runs) and answers is not None
        self.query_one("#report-answers", Static).update(answers_text(report) if answers is not None else "")
        self.query_one("#report-funnel", Static).update(
            Group(Text("Funnel (the variants)", style="bold"), funnel_text(report)))
        self.query_one("#report-verdicts", Static).update(verdicts_text(report))
        self.query_one("#report-providers", Static).update(breakdown_table("Provider", report.providers,
                                                                           report.currency))
        self.query_one("#report-countries", Static).update(breakdown_table("Country", report.countries,
                                                                           report.currency))
        self.query_one("#report-legend", Static).update(legend_text(report))
        self.query_one(ReportChart).show(report.series, report.bucket_minutes)
