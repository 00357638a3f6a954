"""The wizard's Who step: a saved segment or an ad-hoc one built in place with the segment builder,
the campaign reach (a random percentage), the target, run and daily limits, the safety limit, and
Estimate reach (qualified, reachable now, and why the rest are not)."""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Button, Input, RadioButton, RadioSet, Select, Static

from smsconsole import clock
from smsconsole.screens.campaigns.wizard import (
    WizardStep,
    show_segments,
    step_field,
    text_number,
)
from smsconsole.screens.segments.builder import (
    EMPTY_DEFINITION,
    SegmentBuilderScreen,
    canonical,
)
from smsconsole.services.campaigns.definition import parse_document
from smsconsole.services.campaigns.reasons import describe_held_back
from smsconsole.services.campaigns.runs import estimate_campaign
from smsconsole.services.errors import ServiceError, ValidationError
from smsconsole.services.segments import estimate_reach, list_segments
from smsconsole.services.segments.descriptions import describe_definition

LIMITS = (("reach_percent", "Reach %", "100"), ("target_limit", "Target limit", "all"),
          ("run_limit", "Run limit", "none"), ("daily_limit", "Daily limit", "none"),
          ("safety_limit", "Safety limit", "none"))
LIMIT_HELP = ("Reach: a random sample of those who qualify. Target: at most N messages over all runs (a random "
              "pick). Run / daily: at most N per run / per day. Safety: more qualify than this and the run is "
              "blocked until you raise it and resume, or stop.")


class AdHocSegmentScreen(SegmentBuilderScreen):
    """The segment builder for a campaign's own audience: no name, and ctrl+s hands the checked
    definition back to the Who step instead of saving a segment."""

    MODE = "campaigns"

    def __init__(self, definition: dict[str, Any] | None) -> None:
        super().__init__(None)
        self.document = copy.deepcopy(definition or EMPTY_DEFINITION)
        self._saved = ("", canonical(self.document))

    def on_mount(self) -> None:
        # runs before the builder's own on_mount, which focuses the name: hide it and focus the tree after
        self.call_after_refresh(self._without_name)

    def _without_name(self) -> None:
        self.query_one("#builder-header").display = False
        self.query_one("#builder-definition").border_title = "Ad-hoc segment (ctrl+s: use it)"
        self.query_one("#segment-tree").focus()

    @work(exclusive=True, group="segment-builder-save", exit_on_error=False)
    async def action_save(self) -> None:
        definition = self.definition()
        runtime = await self.runtime()
        try:
            async with runtime.factory() as session:
                await estimate_reach(session, definition)  # checks the definition against the catalog
        except ValidationError as exc:
            self._show_problems(exc.problems)
            self.notify("Correct the conditions marked.", title="Segment not used", severity="error")
            return
        self.dismiss(definition)  # type: ignore[arg-type]  (a definition, not a saved name)


class WhoStep(WizardStep):
    INDEX = 2
    MAIN = "#who-choice"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "estimate", "Estimate", id="campaign-wizard.estimate",
                tooltip="Estimate reach: who qualifies, who SMS reaches now, why not the rest"),
    ]

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        who = state.section("who")
        self.definition: dict[str, Any] | None = who.get("definition") if isinstance(who.get("definition"), dict) \
            else None
        self._segments_ready = False  # until then the document's segment stands

    def compose_step(self) -> ComposeResult:
        with RadioSet(id="who-choice", compact=True):
            yield RadioButton("A saved segment", id="who-saved")
            yield RadioButton("An ad-hoc segment, built here", id="who-adhoc")
        yield step_field("who.segment", "Segment", Select([], prompt="Choose a segment", compact=True,
                                                          id="input-who-segment"), classes="-saved")
        with Horizontal(classes="wizard-row -adhoc"):
            yield step_field("who.definition", "Ad-hoc segment", Static("", id="who-definition", markup=False))
            yield Button("Build…", id="who-build", compact=True, tooltip="Open the segment builder")
        with Horizontal(classes="wizard-row"):
            for key, label, placeholder in LIMITS[:3]:
                yield step_field(f"who.{key}", label, Input(placeholder=placeholder, compact=True,
                                                            id=f"input-who-{key.replace('_', '-')}"))
        with Horizontal(classes="wizard-row"):
            for key, label, placeholder in LIMITS[3:]:
                yield step_field(f"who.{key}", label, Input(placeholder=placeholder, compact=True,
                                                            id=f"input-who-{key.replace('_', '-')}"))
            yield Button("Estimate reach", id="who-estimate", compact=True, tooltip="ctrl+r")
        yield Static(LIMIT_HELP, classes="wizard-note", markup=False)
        yield Static(Text("Estimate reach (ctrl+r): qualified, reachable now, and why not the rest", style="dim"),
                     id="who-estimate-text")

    def on_mount(self) -> None:
        self.load_segments()

    @work(exclusive=True, group="campaign-who-segments", exit_on_error=False)
    async def load_segments(self) -> None:
        runtime = await self.runtime()
        async with runtime.factory() as session:
            views = await list_segments(session)
        show_segments(self, views)
        self._segments_ready = True

    def load(self) -> None:
        who = self.state.section("who")
        adhoc = self.definition is not None and not who.get("segment")
        self.query_one("#who-adhoc" if adhoc else "#who-saved", RadioButton).value = True
        for key, _, _ in LIMITS:
            value = who.get(key)
            shown = "" if value is None or (key == "reach_percent" and value in (100, 100.0)) else str(value)
            self.query_one(f"#input-who-{key.replace('_', '-')}", Input).value = shown
        self._show_definition()
        self._show_parts()

    def collect(self) -> None:
        who = self.state.section("who")
        if self.query_one("#who-adhoc", RadioButton).value:
            who.pop("segment", None)
            who["definition"] = self.definition
        else:
            select = self.query_one("#input-who-segment", Select)
            if self._segments_ready:
                who["segment"] = None if select.value is Select.NULL else select.value
            who.pop("definition", None)
        for key, _, _ in LIMITS:
            value = text_number(self.query_one(f"#input-who-{key.replace('_', '-')}", Input).value)
            who[key] = 100 if key == "reach_percent" and value is None else value

    def _show_definition(self) -> None:
        text = describe_definition(self.definition) if self.definition is not None else "none yet: press Build…"
        self.query_one("#who-definition", Static).update(text)

    @on(RadioSet.Changed, "#who-choice")
    def _show_parts(self) -> None:
        adhoc = self.query_one("#who-adhoc", RadioButton).value
        for widget in self.query(".-adhoc"):
            widget.display = adhoc
        for widget in self.query(".-saved"):
            widget.display = not adhoc

    @on(Button.Pressed, "#who-build")
    def _build(self) -> None:
        self.app.push_screen(AdHocSegmentScreen(self.definition), self._built)

    def _built(self, definition: Any) -> None:
        if isinstance(definition, dict):
            self.definition = definition
            self._show_definition()
            self.collect()

    @on(Button.Pressed, "#who-estimate")
    def action_estimate(self) -> None:
        self.collect()
        self.estimate()

    @work(exclusive=True, group="campaign-who-estimate", exit_on_error=False)
    async def estimate(self) -> None:
        line = self.query_one("#who-estimate-text", Static)
        line.update(Text("estimating…", style="italic dim"))
        document, problems = parse_document(self.state.document, default_timezone=self.state.default_timezone,
                                            strict=False)
        if self.show_step_problems(problems):
            line.update(Text("No estimate: correct the fields marked", style="red"))
            return
        runtime = await self.runtime()
        try:
            async with runtime.factory() as session:
                estimate = await estimate_campaign(session, document, now=clock.now())
        except ValidationError as exc:
            self.show_step_problems(exc.problems)
            line.update(Text("No estimate: " + "; ".join(f"{f}: {r}" for f, r in exc.problems), style="red"))
            return
        except ServiceError as exc:
            line.update(Text(f"No estimate: {exc}", style="red"))
            return
        line.update(estimate_text(estimate, control=document.what.control))


def estimate_text(estimate: Any, *, control: float = 0.0) -> Text:
    """Qualified, reachable now, the reasons for the rest, and what will be sent (with a control
    group of `control` percent: the estimate's `held_out` are held out instead)."""
    if getattr(estimate, "problem", None):
        return Text(f"No estimate: {estimate.problem}", style="yellow")
    text = Text.assemble(("Qualified ", "bold"), f"{estimate.qualified:,}", ("  reachable now ", "bold"),
                         (f"{estimate.reachable:,}", "green"))
    reasons = getattr(estimate, "unreachable", None) or {}
    if any(reasons.values()):
        text.append("\nnot reachable: ", style="dim")
        text.append(describe_held_back(reasons))
    held = {code: n for code, n in (getattr(estimate, "held_back", None) or {}).items() if code not in reasons}
    if any(held.values()):
        text.append("\nheld back: ", style="dim")
        text.append(describe_held_back(held))
    will_send = getattr(estimate, "will_send", None)
    if will_send is not None:
        held_out = getattr(estimate, "held_out", 0) or 0
        text.append("\nwill be sent per run: ", style="dim")
        text.append(f"{'≈ ' if held_out else ''}{will_send - held_out:,}", style="bold")
        if held_out:
            text.append(f" · ≈ {held_out:,} held out as the control group ({control:g}%)", style="dim")
    passed = getattr(estimate, "local_time_passed", None)
    if passed:
        text.append(f"\nlocal time already passed for {passed:,} (see When)", style="yellow")
    if getattr(estimate, "blocked_by_safety", False):
        text.append("\n⚠ more qualify than the safety limit: the run would be blocked", style="bold red")
    return text
