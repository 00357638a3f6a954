"""Settings → Compliance: the words of the panel's rows, its detail line and its notifications
(screens/settings_compliance.py shows them)."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from smsconsole.screens.widgets.formatting import format_day
from smsconsole.services.compliance.prices import PriceView
from smsconsole.services.compliance.rules import SENDER_TYPE_LABELS
from smsconsole.services.compliance.senders import SenderView
from smsconsole.services.compliance.templates import (
    DltTemplateView,
    ImportReport,
    TenDlcCampaignView,
)

TABS = ("senders", "dlt", "tendlc", "prices")
TAB_TITLES = {"senders": "Senders", "dlt": "DLT templates", "tendlc": "10DLC campaigns", "prices": "Prices"}
WHAT = {"senders": "sender", "dlt": "DLT template", "tendlc": "10DLC campaign", "prices": "price"}
IMPORTS = ("dlt", "prices")
IMPLICIT = "from provider settings, not registered"
SHOWN_PROBLEMS = 4  # bad CSV rows named in the notification; the CLI lists them all


def clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def registration_words(view: SenderView, *, short: bool = False) -> Text:
    """The sender's registration: 10DLC brand / campaign, toll-free status, DLT entity; `short` for
    the table's column (the detail line under it has it whole)."""
    if view.implicit:
        return Text("not registered" if short else IMPLICIT, style="dim")
    parts = []
    if view.brand_id or view.tendlc_campaign:
        parts.append(f"10DLC {view.brand_id or '?'}/{view.tendlc_campaign or 'no campaign'}" if short else
                     f"10DLC brand {view.brand_id or 'not given'}, campaign {view.tendlc_campaign or 'not given'}")
    if view.tollfree_status:
        parts.append(f"toll-free {view.tollfree_status}")
    if view.dlt_entity_id:
        parts.append(f"DLT {view.dlt_entity_id}" if short else f"DLT principal entity {view.dlt_entity_id}")
    if not parts:
        return Text("no registration", style="dim")
    return Text(clip("; ".join(parts), 21) if short else "; ".join(parts))


def sender_row(view: SenderView) -> tuple[Any, ...]:
    cells = (view.value, view.provider, SENDER_TYPE_LABELS.get(view.type, view.type),
             ", ".join(view.countries) or "any")
    style = "dim" if view.implicit else ""
    return (*(Text(cell, style=style) for cell in cells), registration_words(view, short=True))


def detail_words(tab: str, view: Any) -> str:
    """The highlighted row in full, under the table (the columns clip at 80 columns)."""
    if view is None:
        return ""
    if tab == "senders":
        where = f"to {', '.join(view.countries)}" if view.countries else "any country"
        head = f"{view.value} ({view.provider}, {SENDER_TYPE_LABELS.get(view.type, view.type)}, {where})"
        if view.implicit:
            return f"{head}: {IMPLICIT}; e registers it"
        return f"{head}: {registration_words(view).plain}" + (f". {view.note}" if view.note else "")
    if tab == "dlt":
        extra = ", ".join(part for part in (f"name {view.name}" if view.name else "",
                                            f"entity {view.entity_id}" if view.entity_id else "") if part)
        return f"{view.template_id} ({view.header}, {view.variables} variable{'s' if view.variables != 1 else ''}{', ' + extra if extra else ''}): {view.content}"
    if tab == "tendlc":
        samples = " | ".join(view.samples) or "no sample messages"
        return f"{view.campaign_id} ({view.use_case}, brand {view.brand_id}, {view.status}): {samples}"
    kind = SENDER_TYPE_LABELS.get(view.sender_type, view.sender_type) if view.sender_type else "any sender type"
    source = {"manual": "entered by hand", "csv": "imported from a CSV",
              "api": "fetched from the provider's pricing API"}.get(view.source, view.source)
    when = f"fetched {format_day(view.fetched_at)}" if view.fetched_at else f"updated {format_day(view.updated_at)}"
    return f"{view.provider} → {view.country}, {kind}: {view.amount:g} {view.currency} per {view.unit}, {source}, {when}"


def sender_key(view: SenderView) -> str:
    return f"s{view.id}" if view.id is not None else f"p{view.provider_id}"


def dlt_row(view: DltTemplateView) -> tuple[Any, ...]:
    return (view.template_id, view.header, view.category, clip(view.content, 28))


def tendlc_row(view: TenDlcCampaignView) -> tuple[Any, ...]:
    samples = f"{len(view.samples)}: {clip(view.samples[0], 24)}" if view.samples else Text("none", style="yellow")
    status = Text(view.status, style="green" if view.status == "active" else "yellow")
    return (view.campaign_id, view.brand_id, view.use_case, samples, status)


def price_row(view: PriceView) -> tuple[Any, ...]:
    return (view.provider, view.country, SENDER_TYPE_LABELS.get(view.sender_type, view.sender_type) or "any",
            f"{view.amount:g} {view.currency}/{view.unit}", view.source, format_day(view.fetched_at))


def report_words(report: ImportReport) -> str:
    """'2 added, 0 updated, 1 row refused' and each refused line (the first few)."""
    lines = [report.words() + "."]
    lines += [f"line {line}: {reason}" for line, reason in report.problems[:SHOWN_PROBLEMS]]
    if len(report.problems) > SHOWN_PROBLEMS:
        lines.append(f"and {len(report.problems) - SHOWN_PROBLEMS} more lines refused")
    return "\n".join(lines)


def split_countries(text: str) -> list[str]:
    return [part.strip().upper() for part in text.replace(";", ",").replace(" ", ",").split(",") if part.strip()]


def describe(tab: str, view: Any) -> str:
    if tab == "senders":
        return f"{view.value} ({view.provider})"
    if tab == "dlt":
        return f"{view.template_id} ({view.header})"
    if tab == "tendlc":
        return str(view.campaign_id)
    return f"{view.provider} → {view.country}" + (f" {SENDER_TYPE_LABELS.get(view.sender_type, view.sender_type)}"
                                                   if view.sender_type else "")


ROWS = {"senders": sender_row, "dlt": dlt_row, "tendlc": tendlc_row, "prices": price_row}
