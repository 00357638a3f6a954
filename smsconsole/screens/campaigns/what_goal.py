"""The What step's optional conversion goal: the event that counts as a conversion (a known event
suggested as it is typed, like the live trigger's), conditions on its properties in the trigger's
one-line form ("amount > 0, currency = GBP"), the window after the message (24h by default) and
a numeric property of the event summed as revenue. Read back in words as it is typed. The goal
is the campaign's (every variant and the control share it), so it sits after the message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.suggester import SuggestFromList
from textual.widgets import Input, Static

from smsconsole.screens.campaigns.wizard import step_field
from smsconsole.services.campaigns.arms import parse_goal
from smsconsole.services.campaigns.words import (
    conditions_text,
    goal_sentence,
    minutes_text,
    parse_conditions_text,
)

GOAL_INPUTS = {"event": "#input-goal-event", "where": "#input-goal-where", "window": "#input-goal-window",
               "value": "#input-goal-value"}


class GoalSection(Vertical):
    """The goal's fields; `load` and `collect` read and write the document's top-level `goal`."""

    def __init__(self, changed: Callable[[], None]) -> None:
        super().__init__(id="what-goal")
        self.changed = changed  # the step collects the document and calls show_words
        self.numeric: dict[str, list[str]] = {}  # event → its numeric properties (the value's suggestions)

    def compose(self) -> ComposeResult:
        yield Static("Conversion goal (optional)", classes="wizard-heading", markup=False)
        yield Static("", id="goal-words", classes="wizard-note")
        with Horizontal(classes="wizard-row"):
            yield step_field("goal.event", "Event", Input(
                placeholder="e.g. order; empty: no goal", compact=True, id="input-goal-event"))
            yield step_field("goal.window", "Within", Input(
                placeholder="24h", compact=True, id="input-goal-window"), classes="-goal-window")
        with Horizontal(classes="wizard-row"):
            yield step_field("goal.where", "Its conditions (optional)", Input(
                placeholder="e.g. amount > 0", compact=True, id="input-goal-where"))
            yield step_field("goal.value", "Revenue property (optional)", Input(
                placeholder="a number of the event, e.g. amount", compact=True, id="input-goal-value"))

    def set_catalog(self, catalog: Any) -> None:
        """Known events (and their numeric properties) as suggestions."""
        self.numeric = {event.name: sorted(p.name for p in event.properties if p.type == "number")
                        for event in catalog.events}
        self.query_one("#input-goal-event", Input).suggester = SuggestFromList(sorted(self.numeric),
                                                                              case_sensitive=True)
        self._suggest_values()

    def _suggest_values(self) -> None:
        event = self.query_one("#input-goal-event", Input).value.strip()
        self.query_one("#input-goal-value", Input).suggester = SuggestFromList(self.numeric.get(event, []),
                                                                              case_sensitive=True)

    def load(self, document: dict[str, Any]) -> None:
        goal = document.get("goal") if isinstance(document.get("goal"), dict) else {}
        where = goal.get("where")
        window = goal.get("window")
        shown = {"event": goal.get("event"), "where": where if isinstance(where, str) else conditions_text(where),
                 "window": minutes_text(window) if isinstance(window, int) else window, "value": goal.get("value")}
        for key, selector in GOAL_INPUTS.items():
            self.query_one(selector, Input).value = "" if shown[key] is None else str(shown[key])
        self.show_words(document)

    def _text(self, key: str) -> str:
        return self.query_one(GOAL_INPUTS[key], Input).value.strip()

    def collect(self, document: dict[str, Any]) -> None:
        """The goal into the document; no goal (every field empty) removes it."""
        typed = {key: self._text(key) for key in GOAL_INPUTS}
        if not any(typed.values()):
            document.pop("goal", None)
            return
        goal: dict[str, Any] = {"event": typed["event"] or None}
        if typed["where"]:
            conditions, problems = parse_conditions_text(typed["where"])
            # a part that does not read is kept as typed: the draft check refuses it, the step says why
            goal["where"] = typed["where"] if problems else conditions
        if typed["window"]:
            goal["window"] = typed["window"]
        if typed["value"]:
            goal["value"] = typed["value"]
        document["goal"] = goal

    def condition_problems(self) -> list[tuple[str, str]]:
        """Each part of the conditions line that does not read, named."""
        text = self._text("where")
        return [("goal.where", f"condition {index}: {reason}")
                for index, reason in (parse_conditions_text(text)[1] if text else [])]

    def show_words(self, document: dict[str, Any]) -> None:
        raw = document.get("goal")
        problems: list[tuple[str, str]] = []
        goal = parse_goal(raw, problems) if isinstance(raw, dict) else None
        words = self.query_one("#goal-words", Static)
        if goal is None:
            words.update(Text("No goal: conversions are not counted." if not raw else
                              "Name the event that counts as a conversion.", style="dim" if not raw else "yellow"))
            return
        text = Text(f"Converts: {goal_sentence(goal)}", style="bold")
        if goal.value:
            text.append(f"; revenue: its {goal.value}", style="")
        if problems or self.condition_problems():
            text.append("  (some fields do not read yet)", style="yellow")
        words.update(text)

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "input-goal-event":
            self._suggest_values()
        self.changed()
