"""`smsconsole campaigns report CAMPAIGN [--run N] [--json | --csv] [--output FILE]`: a
campaign's results (services/campaigns/report.py) in words and tables that fit 80 columns, as
JSON or as CSV (its layout: services/campaigns/report_export.py), on stdout or in a file."""

from __future__ import annotations

import argparse
import textwrap
from typing import Any

from smsconsole.cli.output import UsageError

SPARKS = " ▁▂▃▄▅▆▇█"
WIDTH = 80


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", type=int, metavar="N", help="only run N (default: every run, with a line per run)")
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--json", action="store_true", help="the whole report as JSON")
    kind.add_argument("--csv", action="store_true", help="the report as one CSV table with a section column")
    parser.add_argument("--output", metavar="FILE", help="write to FILE instead of printing it (.csv or .json "
                        "picks the format when neither --json nor --csv is given)")


async def report_command(factory: Any, args: argparse.Namespace, document: Any) -> int:
    from smsconsole.services.campaigns import crud  # lazy: start-up
    from smsconsole.services.campaigns.report import (
        build_report,
        report_csv,
        report_json,
        write_report,
    )
    from smsconsole.services.errors import ValidationError

    if args.run is not None and args.run < 1:
        raise UsageError("--run: must be a run number, 1 or more")
    output = args.output
    if output is not None and not output.strip():
        raise UsageError("--output: give a file path")
    async with factory() as session:
        view = await crud.get_campaign(session, args.ref)
        report = await build_report(session, view.id, run_number=args.run)
    kind = "json" if args.json else "csv" if args.csv else None
    if output is None and kind is not None:
        print(report_json(report) if kind == "json" else report_csv(report), end="")
        return 0
    if output is not None:
        if kind is None and not output.lower().endswith((".csv", ".json")):
            raise UsageError(f"--output: {output} must end in .csv or .json, or add --json or --csv")
        try:
            path = write_report(report, output, kind)
        except ValidationError as exc:
            raise UsageError(f"--output: {exc.problems[0][1]}") from None
        print(f"wrote the report of {view.code} to {path}")
        return 0
    print("\n".join(report_lines(report)))
    return 0


# --- in words ------------------------------------------------------------------------------------


def wrap(text: str, indent: str = "  ") -> list[str]:
    """A line of words folded at WIDTH columns, the rest indented."""
    return textwrap.wrap(text, WIDTH, subsequent_indent=indent, break_on_hyphens=False, break_long_words=True) or [""]


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def money(value: float) -> str:
    return f"{value:,.2f}"


def sparkline(values: list[int]) -> str:
    top = max(values, default=0)
    if not top:
        return " " * len(values)
    return "".join(SPARKS[0] if not v else SPARKS[max(1, round(v / top * (len(SPARKS) - 1)))] for v in values)


def _arm_table(arms: tuple[Any, ...], total: Any) -> list[str]:
    lines = [(f"{'ARM':<8} {'ASSIGNED':>8} {'QUEUED':>6} {'REACHED':>7} {'DELIV':>6} {'FAILED':>6} {'SUPPR':>5} "
             f"{'CONV':>5} {'RATE':>6} {'REVENUE':>10}")]
    for arm in (*arms, total):
        def dash(value: int, control: bool = arm.arm == "control") -> str:
            return "-" if control else f"{value:,}"

        lines.append(f"{arm.arm or '(none)':<8} {arm.assigned:>8,} {dash(arm.queued + arm.held):>6} {arm.reached:>7,} "
                     f"{dash(arm.delivered):>6} {dash(arm.failed + arm.undelivered):>6} {dash(arm.suppressed):>5} "
                     f"{arm.conversions:>5,} {percent(arm.conversion_rate):>6} {money(arm.revenue):>10}")
    return lines


def _per_arm(arms: tuple[Any, ...], words: Any) -> str:
    parts = [f"{arm.arm} {text}" for arm in arms if (text := words(arm))]
    return "; ".join(parts) if parts else "none"


def _breakdown_table(title: str, breakdowns: tuple[Any, ...], currency: str | None, none: str) -> list[str]:
    if not breakdowns:
        return []
    lines = [(f"{title:<14} {'MESSAGES':>8} {'SENT':>7} {'DELIV':>7} {'FAILED':>6} {'DELIV%':>7} {'P50':>8} "
             f"{'COST':>12}")]
    for b in breakdowns:
        cost = f"{money(b.cost)} {b.currency or currency or ''}".strip() if b.cost else "-"
        lines.append(f"{(b.name or none)[:14]:<14} {b.messages:>8,} {b.sent:>7,} {b.delivered:>7,} {b.failed:>6,} "
                     f"{percent(b.delivery_rate):>7} {b.latency.get('p50', '-'):>8} {cost:>12}")
    return lines


def report_lines(report: Any) -> list[str]:
    """The report for a terminal, at most 80 columns wide."""
    from smsconsole.services.campaigns.reasons import (
        describe_held_back,  # lazy: start-up
    )
    from smsconsole.services.campaigns.reply_options import answers_words, nps_words

    scope = (f"run {report.run_number}" if report.run_number is not None
             else f"all {len(report.runs)} runs" if len(report.runs) != 1 else "its one run")
    lines = [f"{report.code}  {report.name} — {report.state} · {scope}"]
    lines.append(f"Goal: {report.goal}" if report.goal else "Goal: none (no conversions are counted)")
    lines.append(f"Qualified {report.qualified:,}" if report.qualified is not None else "Qualified -")
    if held := describe_held_back(report.held_back):
        lines += wrap(f"Held back before queueing: {held}")
    if not report.runs:
        lines.append("No runs yet.")
        return lines
    lines += ["", *_arm_table(report.arms, report.total), ""]
    total = report.total
    lines.append(f"Replies {total.replies:,}, opt-outs caused {total.opt_outs:,}"
                 + (f" ({_per_arm(report.variants, lambda a: f'{a.replies:,}/{a.opt_outs:,}' if a.replies else '')})"
                    if total.replies else ""))
    if report.answers is not None:
        figures = report.answers
        lines += wrap(f"Answers to reply options {figures.total:,} (each recipient's last): "
                      + (answers_words(figures) or "none yet"))
        if nps := nps_words(figures):
            lines.append(nps)
    if total.clicks:
        lines += wrap(f"Clicks {total.clicks:,}, unique {total.unique_clicks:,}, click-through "
                      f"{percent(total.click_rate)} of delivered"
                      + (f" ({_per_arm(report.variants, lambda a: f'{a.unique_clicks:,} {percent(a.click_rate)}')})"
                         if len(report.variants) > 1 else ""))
    lines += wrap(f"Cost {report.cost_words()} · {total.segments:,} segment{'s' if total.segments != 1 else ''}"
                  + (f" · test sends not counted: {report.test_sends:,}" if report.test_sends else ""))
    lines += wrap("Suppressed at claim: " + _per_arm(report.arms, lambda a: ", ".join(
        f"{group} {n:,}" for group, n in a.suppressed_by.items())))
    lines += wrap("Failed or undelivered: " + _per_arm(report.arms, lambda a: ", ".join(
        f"{f.detail[:24]} {f.n:,}" for f in a.failures[:3]) + (" …" if len(a.failures) > 3 else "")))
    if report.lift:
        lines.append("Lift against control:")
        for lift in report.lift:
            verdict = lift.verdict if lift.verdict.startswith(f"{lift.variant} ") else f"{lift.variant}: {lift.verdict}"
            lines += wrap(f"  {verdict}", indent="     ")
    latency = " · ".join(f"{name} {bound}" for name, bound in report.latency.items())
    lines.append(f"Delivery time (sent → delivered): {latency or 'nothing delivered yet'}")
    for title, breakdowns, none in (("PROVIDER", report.providers, "(not routed)"),
                                    ("COUNTRY", report.countries, "(unknown)")):
        table = _breakdown_table(title, breakdowns, report.currency, none)
        if table:
            lines += ["", *table]
    if report.run_number is None and len(report.runs) > 1:
        lines += ["", (f"{'RUN':>4}  {'PLANNED':<16}  {'STATE':<10} {'QUALIFIED':>9} {'REACHED':>8} {'DELIV':>7} "
                      f"{'CONV':>6} {'RATE':>6}")]
        for run in report.runs:
            qualified = f"{run.qualified:,}" if run.qualified is not None else "-"
            lines.append(f"{run.number:>4}  {run.planned_at:%Y-%m-%d %H:%M}  {run.state[:10]:<10} {qualified:>9} "
                         f"{run.total.reached:>8,} {run.total.delivered:>7,} {run.total.conversions:>6,} "
                         f"{percent(run.total.conversion_rate):>6}")
    if report.series:
        first, last = report.series[0].at, report.series[-1].at
        lines += ["", (f"Over time, {report.bucket_minutes}-minute buckets from {first:%Y-%m-%d %H:%M} to "
                      f"{last:%Y-%m-%d %H:%M} UTC:")]
        for metric in ("sent", "delivered", "failed", "converted"):
            values = [getattr(point, metric) for point in report.series]
            lines.append(f"  {metric:<9} {sparkline(values)} {sum(values):,}")
    return lines
