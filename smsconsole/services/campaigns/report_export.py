"""A campaign report (services/campaigns/report.py) as JSON and as CSV, and written to a file
whose extension (.csv or .json) says which.

The CSV is one table with a `section` column; every row fills the columns its section has and
leaves the others empty:

- `arm`: one row per run × arm (run = the run's number, or "all" for every run together; arm =
  A…E, control, or "all" for the run's total): qualified (the run's; on "all" rows only),
  assigned, queued, held, sent, delivered, failed, undelivered, unknown, suppressed, control,
  reached, replies, opt_outs, conversions, conversion_rate (a fraction), revenue, cost, currency,
  clicks (on tracked links), unique_clicks (messages clicked), click_rate (unique_clicks / delivered).
- `held_back`: per run, people held back before any row was written: name = the reason in
  words, value = people.
- `suppressed`: per run × arm, rows suppressed at claim: name = the reason, note = its group
  (unsubscribed, cap, DND, safety, personalization, other), value = rows.
- `failure`: per run × arm, failed and undelivered rows: name = the error code (else the
  reason), note = failed or undelivered, value = rows.
- `lift`: per run × variant against control: conversion_rate (the variant's), value = the
  difference in percentage points, low and high = its 95 % interval, p_value, note = the verdict.
- `provider`, `country`: run "all" (or the run reported), name = provider or country: assigned
  (messages), queued, sent (reached), delivered, failed (with undelivered), unknown, suppressed,
  cost, currency, note = median delivery time.
- `answer`: per arm (and "all"), answers to the campaign's reply options: name = the option (its
  first word, or the score), value = answers (each recipient's last answer to a message).
- `nps`: when a reply option takes scores 0-10: value = the Net Promoter Score, note = promoters,
  passives and detractors.
- `latency`: name = p50, p90 or p99, note = the bucket bound ("≤ 5 s").
- `series`: name = the bucket's first minute (ISO 8601, UTC), sent, delivered, failed,
  conversions; value = the bucket's length in minutes."""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smsconsole.services.campaigns.reasons import held_back_words
from smsconsole.services.campaigns.reply_options import answers_dict, replies_dict
from smsconsole.services.errors import ValidationError

if TYPE_CHECKING:
    from smsconsole.services.campaigns.report import ArmFigures, CampaignReport

COLUMNS = ("section", "run", "arm", "name", "qualified", "assigned", "queued", "held", "sent", "delivered", "failed",
           "undelivered", "unknown", "suppressed", "control", "reached", "replies", "opt_outs", "conversions",
           "conversion_rate", "revenue", "cost", "currency", "value", "low", "high", "p_value", "note", "clicks",
           "unique_clicks", "click_rate")
ARM_COLUMNS = ("assigned", "queued", "held", "sent", "delivered", "failed", "undelivered", "unknown", "suppressed",
               "control", "reached", "replies", "opt_outs", "conversions", "conversion_rate", "revenue", "cost",
               "clicks", "unique_clicks", "click_rate")
FORMATS = (".csv", ".json")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def report_dict(report: CampaignReport) -> dict[str, Any]:
    """The report as JSON holds it (times in ISO 8601), with the funnel and the cost in words."""
    out = _plain(asdict(report))
    out["funnel"] = dict(report.funnel())
    out["cost_words"] = report.cost_words()
    out["replies_offered"] = replies_dict(report.replies_offered)
    out["answers"] = answers_dict(report.answers)
    return out


def report_json(report: CampaignReport) -> str:
    return json.dumps(report_dict(report), indent=2, ensure_ascii=False) + "\n"


def _number(value: float | None) -> str:
    """A figure for the CSV: ten significant digits, enough for revenue and cost to the cent (or a
    price's fourth decimal) without a float's binary noise."""
    if value is None:
        return ""
    return f"{value:.10g}" if isinstance(value, float) else str(value)


def _arm_row(run: str, arm: ArmFigures, qualified: int | None, currency: str | None) -> dict[str, Any]:
    row: dict[str, Any] = {"section": "arm", "run": run, "arm": arm.arm,
                           **{name: _number(getattr(arm, name)) for name in ARM_COLUMNS}}
    if arm.arm == "all":
        row["qualified"] = "" if qualified is None else qualified
    row["currency"] = currency or ""
    return row


def _arm_details(run: str, arm: ArmFigures) -> list[dict[str, Any]]:
    from smsconsole.services.campaigns.report import (
        suppression_group,  # lazy: report imports this module
    )

    rows = [{"section": "suppressed", "run": run, "arm": arm.arm, "name": reason, "note": suppression_group(reason),
             "value": n} for reason, n in arm.suppressed_reasons.items()]
    rows += [{"section": "failure", "run": run, "arm": arm.arm, "name": f.detail, "note": f.state, "value": f.n}
             for f in arm.failures]
    return rows


def _lift_rows(run: str, lifts: Any) -> list[dict[str, Any]]:
    return [{"section": "lift", "run": run, "arm": lift.variant, "reached": lift.people,
             "conversions": lift.conversions, "conversion_rate": _number(lift.rate), "value": _number(lift.diff_pts),
             "low": _number(lift.low_pts), "high": _number(lift.high_pts), "p_value": _number(lift.p_value),
             "note": lift.verdict} for lift in lifts]


def report_rows(report: CampaignReport) -> list[dict[str, Any]]:
    """The CSV's rows (see the module's docstring), as dicts keyed by COLUMNS."""
    currency = report.currency or ("mixed" if report.currencies else "")
    rows: list[dict[str, Any]] = []
    scope = "all" if report.run_number is None else str(report.run_number)
    for run in report.runs:
        number = str(run.number)
        rows += [_arm_row(number, arm, None, currency) for arm in run.arms]
        rows.append(_arm_row(number, run.total, run.qualified, currency))
    if report.run_number is None:
        rows += [_arm_row("all", arm, None, currency) for arm in report.arms]
        rows.append(_arm_row("all", report.total, report.qualified, currency))
    for run in report.runs:
        rows += [{"section": "held_back", "run": str(run.number), "arm": "all", "name": held_back_words(code),
                  "value": n} for code, n in run.held_back.items()]
        for arm in run.arms:
            rows += _arm_details(str(run.number), arm)
        rows += _lift_rows(str(run.number), run.lift)
    if report.run_number is None:
        rows += _lift_rows("all", report.lift)
    for section, breakdowns in (("provider", report.providers), ("country", report.countries)):
        rows += [{"section": section, "run": scope, "arm": "all", "name": b.name, "assigned": b.messages,
                  "queued": b.queued, "sent": b.sent, "delivered": b.delivered, "failed": b.failed,
                  "unknown": b.unknown, "suppressed": b.suppressed, "cost": _number(b.cost),
                  "currency": b.currency or "", "note": b.latency.get("p50", "")} for b in breakdowns]
    arms = report.runs[0].arms if report.run_number is not None and report.runs else report.arms
    rows += [{"section": "answer", "run": scope, "arm": arm.arm, "name": label, "value": n}
             for arm in (*arms, report.total) for label, n in arm.answers.items()]
    if report.answers is not None and report.answers.nps is not None:
        figures = report.answers
        rows.append({"section": "nps", "run": scope, "arm": "all", "name": "nps", "value": _number(figures.nps),
                     "note": f"promoters {figures.promoters} · passives {figures.passives} · "
                             f"detractors {figures.detractors}"})
    rows += [{"section": "latency", "run": scope, "arm": "all", "name": name, "note": bound}
             for name, bound in report.latency.items()]
    rows += [{"section": "series", "run": scope, "arm": "all", "name": p.at.isoformat(), "sent": p.sent,
              "delivered": p.delivered, "failed": p.failed, "conversions": p.converted,
              "value": report.bucket_minutes} for p in report.series]
    return rows


def report_csv(report: CampaignReport) -> str:
    """The report as one CSV table (layout in the module's docstring)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n", restval="")
    writer.writeheader()
    writer.writerows(report_rows(report))
    return out.getvalue()


def export_path(text: str, kind: str | None = None) -> tuple[Path, str]:
    """The file a report goes to and its format ("csv" or "json": `kind`, else the file's
    extension), or a ValidationError on `path`."""
    raw = (text or "").strip()
    if not raw:
        raise ValidationError([("path", "give a file path ending in .csv or .json")])
    path = Path(raw).expanduser()
    suffix = path.suffix.lower()
    if kind is None and suffix not in FORMATS:
        raise ValidationError([("path", f"must end in .csv or .json (the format follows it), not {path.name!r}")])
    if path.is_dir():
        raise ValidationError([("path", f"{path} is a folder; give a file name")])
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ValidationError([("path", f"no folder {parent}")])
    return path, kind or suffix[1:]


def write_report(report: CampaignReport, text: str, kind: str | None = None) -> Path:
    """Write the report to the file `text` names, as CSV or JSON (`kind`, else by its extension; a
    file already there is replaced whole, never half-written). A bad path is a ValidationError on
    `path`."""
    path, kind = export_path(text, kind)
    content = report_csv(report) if kind == "csv" else report_json(report)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with open(partial, "w", encoding="utf-8", newline="") as handle:
            handle.write(content)
        os.replace(partial, path)
    except OSError as exc:
        try:
            partial.unlink(missing_ok=True)
        except OSError:
            pass
        reason = exc.strerror or type(exc).__name__
        raise ValidationError([("path", f"{path} cannot be written ({reason})")]) from None
    return path
