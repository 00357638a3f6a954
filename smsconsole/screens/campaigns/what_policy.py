"""The What step's compliance and budget: what kind of content this is (promotional by default:
country rules such as quiet hours, promotional windows and opt-out text apply to it), what a run
does when a country fails its preflight at run start (hold the run, or suppress that country's
recipients and send the rest) and an optional budget a run may not exceed. The Summary runs the
preflight with them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Select, Static

from smsconsole.screens.campaigns.wizard import step_field
from smsconsole.services.campaigns.policy import CATEGORIES, parse_budget

CATEGORY_CHOICES = [("promotional (marketing)", "promotional"), ("transactional (orders, codes)", "transactional"),
                    ("service (account updates)", "service")]
ON_BLOCK_CHOICES = [("hold the run", "hold"), ("suppress that country, send the rest", "suppress")]


class PolicySection(Vertical):
    """`load` and `collect` read and write the document's top-level `compliance` and `budget`."""

    def __init__(self, changed: Callable[[], None]) -> None:
        super().__init__(id="what-policy")
        self.changed = changed
        self.loaded = False  # a Select says Changed as it mounts: nothing is collected before load

    def compose(self) -> ComposeResult:
        yield Static("Compliance and budget", classes="wizard-heading", markup=False)
        yield Static("", id="policy-words", classes="wizard-note")
        with Horizontal(classes="wizard-row"):
            yield step_field("compliance.category", "Content", Select(
                CATEGORY_CHOICES, allow_blank=False, compact=True, id="input-compliance-category"))
            yield step_field("compliance.on_block", "A country blocked at run start", Select(
                ON_BLOCK_CHOICES, allow_blank=False, compact=True, id="input-compliance-on-block"))
        with Horizontal(classes="wizard-row"):
            yield step_field("budget.amount", "Budget per run (optional)", Input(
                placeholder="e.g. 250; empty: no budget", compact=True, id="input-budget-amount"))
            yield step_field("budget.currency", "Currency", Input(
                placeholder="USD", compact=True, max_length=3, id="input-budget-currency"), classes="-budget-currency")

    def load(self, document: dict[str, Any]) -> None:
        compliance = document.get("compliance") if isinstance(document.get("compliance"), dict) else {}
        category = compliance.get("category")
        self.query_one("#input-compliance-category", Select).value = (
            category if category in CATEGORIES else "promotional")
        self.query_one("#input-compliance-on-block", Select).value = (
            "suppress" if compliance.get("on_block") == "suppress" else "hold")
        budget = document.get("budget") if isinstance(document.get("budget"), dict) else {}
        amount = budget.get("amount")
        self.query_one("#input-budget-amount", Input).value = "" if amount in (None, "") else f"{amount:g}" \
            if isinstance(amount, float | int) else str(amount)
        self.query_one("#input-budget-currency", Input).value = str(budget.get("currency") or "")
        self.loaded = True
        self.show_words(document)

    def collect(self, document: dict[str, Any]) -> None:
        category = self.query_one("#input-compliance-category", Select).value
        on_block = self.query_one("#input-compliance-on-block", Select).value
        if category == "promotional" and on_block == "hold":
            document.pop("compliance", None)  # the defaults
        else:
            document["compliance"] = {"category": category, "on_block": on_block}
        amount = self.query_one("#input-budget-amount", Input).value.strip()
        currency = self.query_one("#input-budget-currency", Input).value.strip().upper()
        if not amount and not currency:
            document.pop("budget", None)
        else:
            # kept as typed: the draft check names a bad amount or currency under its field
            document["budget"] = {"amount": amount, "currency": currency or "USD"}

    def show_words(self, document: dict[str, Any]) -> None:
        compliance = document.get("compliance") if isinstance(document.get("compliance"), dict) else {}
        category = compliance.get("category") or "promotional"
        text = Text()
        if category == "promotional":
            text.append("Promotional: quiet hours, promotional windows, consent and opt-out text apply. ")
        else:
            text.append(f"{category.capitalize()}: rules for marketing do not apply; senders and registrations do. ")
        problems: list[tuple[str, str]] = []
        budget = parse_budget(document.get("budget"), problems) if document.get("budget") else None
        if problems:
            field, reason = problems[0]
            label = "Budget per run" if field.endswith("amount") else "Currency"
            text.append(f"{label}: {reason}.", style="yellow")
        else:
            text.append(f"A run may cost at most {budget.amount:,.2f} {budget.currency}." if budget else "No budget.",
                        style="dim" if budget is None else "")
        self.query_one("#policy-words", Static).update(text)

    @on(Select.Changed)
    @on(Input.Changed)
    def _changed(self, event: Any) -> None:
        event.stop()
        if self.loaded:
            self.changed()
