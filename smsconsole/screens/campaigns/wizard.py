"""The campaign wizard: type → When → Who → What → Test → Summary, each step a screen pushed over
the last, so escape (or Back) goes back through them with everything kept. Every step edits one
shared WizardState holding the campaign file's mapping (the same document `campaigns create --file`
reads); ctrl+s saves it as a draft from any step, and scheduling from the Summary names each
problem under its field, back on the step it belongs to."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widget import Widget
from textual.widgets import Button, Select, Static

from smsconsole.screens.base import ACTOR, SectionScreen
from smsconsole.screens.dialogs.confirm import ConfirmDialog
from smsconsole.screens.dialogs.form import DISCARD_QUESTION
from smsconsole.screens.widgets.fields import FieldError, FormField, show_problems
from smsconsole.services.campaigns import crud
from smsconsole.services.campaigns.definition import LIVE_TYPES, parse_document
from smsconsole.services.errors import ServiceError, ValidationError

STEP_TITLES = ("Type", "When", "Who", "What", "Test", "Summary")
SECTION_STEPS = {"name": 0, "type": 0, "when": 1, "who": 2, "what": 3, "goal": 3, "replies": 3, "compliance": 3,
                 "budget": 3}  # the goal, reply options, compliance and budget are on What


def new_document(default_timezone: str) -> dict[str, Any]:
    return {"name": "", "type": "one_time", "when": {"timezone": default_timezone, "at": "now"},
            "who": {"reach_percent": 100}, "what": {"route": {}, "body": ""}}


def canonical(document: dict[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, default=str)


def step_of(field: str) -> int:
    """The wizard step a problem's field belongs to (`when.recurrence.time` → When)."""
    return SECTION_STEPS.get(field.split(".", 1)[0].split("[", 1)[0], len(STEP_TITLES) - 1)


class WizardState:
    """What the steps share: the document being edited, the saved campaign (after a first save) and
    the problems a refused schedule named."""

    def __init__(self, document: dict[str, Any], *, default_timezone: str, campaign_id: int | None = None,
                 code: str | None = None, campaign_state: str = "draft",
                 on_close: Callable[[str | None], None] | None = None) -> None:
        self.document = copy.deepcopy(document)
        for key, empty in (("when", {}), ("who", {}), ("what", {})):
            if not isinstance(self.document.get(key), dict):
                self.document[key] = empty
        self.default_timezone = default_timezone
        self.campaign_id = campaign_id
        self.code = code
        self.campaign_state = campaign_state  # a draft is scheduled from the Summary; others are saved
        self.problems: list[tuple[str, str]] = []
        self.saved = canonical(self.document) if campaign_id is not None else canonical(new_document(default_timezone))
        self.on_close = on_close

    @property
    def dirty(self) -> bool:
        return canonical(self.document) != self.saved

    def section(self, name: str) -> dict[str, Any]:
        return self.document.setdefault(name, {})

    def draft_problems(self) -> list[tuple[str, str]]:
        """What a draft check finds in what is filled in (bad dates, numbers, times...)."""
        return parse_document(self.document, default_timezone=self.default_timezone, strict=False)[1]


def step_field(name: str, label: str, control: Widget, *, help: str = "", required: bool = False,
               classes: str | None = None) -> FormField:
    """A FormField named by the document's dotted path (`when.recurrence.time`); ids take no dots."""
    form_field = FormField(name.replace(".", "-"), label, control, help=help, required=required, classes=classes)
    form_field.field_name = name
    return form_field


def owner(fields: Iterable[FormField], problem_field: str) -> str | None:
    """The shown field a problem belongs to: the longest whose name starts the problem's path."""
    best: str | None = None
    for form_field in fields:
        name = form_field.field_name
        if (problem_field == name or problem_field.startswith((name + ".", name + "["))) and \
                (best is None or len(name) > len(best)):
            best = name
    return best


def text_number(value: str) -> int | float | str | None:
    """A typed number as the document holds it: int or float, '' → None, anything else as typed
    (the document check names it)."""
    value = value.strip().replace(",", "").replace("_", "")
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        try:
            return float(value)
        except ValueError:
            return value


def show_segments(step: WizardStep, views: list[Any]) -> None:
    """The saved segments in the step's segment choice (#input-who-segment), the one the document
    names chosen again."""
    select = step.query_one("#input-who-segment", Select)
    select.set_options([(f"{view.name}: {view.summary}"[:70], view.name) for view in views])
    chosen = step.state.section("who").get("segment")
    if chosen in {view.name for view in views}:
        select.value = chosen


class WizardStep(SectionScreen[None]):
    """One step. Subclasses set INDEX, compose_step, load (document → widgets) and collect
    (widgets → document)."""

    MODE = "campaigns"
    INDEX: ClassVar[int] = 0
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="campaign-wizard.back",
                tooltip="From a field: leave it; else back one step (what you typed is kept)"),
        Binding("ctrl+f", "next", "Next", id="campaign-wizard.next",
                tooltip="On to the next step (the Summary: schedule the campaign)"),
        Binding("ctrl+s", "save_draft", "Save draft", id="campaign-wizard.save",
                tooltip="Save what is filled in as a draft; nothing is sent"),
    ]
    NEXT_LABEL = "Next ›"

    def __init__(self, state: WizardState) -> None:
        super().__init__()
        self.state = state

    def compose_body(self) -> ComposeResult:
        yield Static(self._steps_line(), id="wizard-steps", markup=False)
        with VerticalScroll(id="wizard-form"):
            yield FieldError(id="wizard-error")
            yield from self.compose_step()
        with Horizontal(id="wizard-buttons"):
            yield Button("‹ Back", id="wizard-back", compact=True, tooltip="Back one step (escape)")
            yield Button("Save draft", id="wizard-save", compact=True, tooltip="Save as a draft (ctrl+s)")
            yield Button(self.NEXT_LABEL, id="wizard-next", variant="primary", compact=True, tooltip="ctrl+f")

    def _steps_line(self) -> str:
        who = self.state.code or "new campaign"
        steps = " › ".join(f"[{title}]" if index == self.INDEX else title for index, title in enumerate(STEP_TITLES))
        return f"{who}: {steps}"

    def compose_step(self) -> ComposeResult:
        raise NotImplementedError

    def load(self) -> None:
        """Fill the widgets from the document."""

    def collect(self) -> None:
        """Write the widgets' values into the document."""

    def on_mount(self) -> None:
        self.load()

    def on_screen_resume(self) -> None:
        self.query_one("#wizard-steps", Static).update(self._steps_line())
        if self.state.problems:
            self.show_step_problems(self.state.problems)

    @property
    def fields(self) -> list[FormField]:
        return list(self.query(FormField))

    def show_step_problems(self, problems: list[tuple[str, str]]) -> bool:
        """Show this step's problems under their fields (or above the form); True when there were any."""
        fields = self.fields
        mine = [(owner(fields, name) or name, reason) for name, reason in problems if step_of(name) == self.INDEX]
        general = self.query_one("#wizard-error", FieldError)
        first = show_problems(fields, ValidationError(mine) if mine else None, general)
        if first is not None:
            first.control.focus()
            self.call_after_refresh(first.scroll_visible)
        return bool(mine)

    # --- moving ------------------------------------------------------------------------------

    @on(Button.Pressed, "#wizard-back")
    def _back_pressed(self) -> None:
        self.go_back()

    @on(Button.Pressed, "#wizard-next")
    def _next_pressed(self) -> None:
        self.action_next()

    @on(Button.Pressed, "#wizard-save")
    def _save_pressed(self) -> None:
        self.action_save_draft()

    def action_back(self) -> None:
        if self.leave_field():
            return
        self.go_back()

    def go_back(self) -> None:
        self.collect()
        if self.INDEX == 0:
            self.close_wizard_asking()
        else:
            self.app.pop_screen()

    def action_next(self) -> None:
        self.collect()
        if self.show_step_problems(self.state.draft_problems()):
            self.notify("Correct the fields marked, then go on.", title="Check this step", severity="warning")
            return
        # a refused schedule's problems on this step count as seen; the Summary checks them all again
        self.state.problems = [(name, reason) for name, reason in self.state.problems if step_of(name) != self.INDEX]
        self.app.push_screen(next_step(self.INDEX + 1, self.state.document.get("type"))(self.state))

    @work(exclusive=True, group="campaign-wizard-close", exit_on_error=False)
    async def close_wizard_asking(self) -> None:
        if self.state.dirty and not await self.app.push_screen_wait(ConfirmDialog(
                "Unsaved changes", f"{DISCARD_QUESTION} (ctrl+s saves a draft.)", confirm_label="Discard",
                destructive=True)):
            return
        close_wizard(self, None)

    # --- saving ------------------------------------------------------------------------------

    def action_save_draft(self) -> None:
        self.collect()
        self.save_draft()

    @work(exclusive=True, group="campaign-wizard-save", exit_on_error=False)
    async def save_draft(self) -> None:
        if await self.save() is not None:
            self.notify(f"Saved {self.state.document.get('name')} ({self.state.code}) as a draft.",
                        title="Draft saved")

    async def save(self) -> Any:
        """Create or update the campaign from the document; problems shown on their steps. The view,
        or None when refused."""

        runtime = await self.runtime()
        try:
            async with runtime.factory() as session, session.begin():
                if self.state.campaign_id is None:
                    view = await crud.create_campaign(session, self.state.document, actor=ACTOR)
                else:
                    view = await crud.update_campaign(session, self.state.code, self.state.document, actor=ACTOR)
        except ValidationError as exc:
            await self.refused(exc.problems, "Not saved")
            return None
        except ServiceError as exc:
            self.notify(str(exc), title="Not saved", severity="error", timeout=8)
            return None
        self.state.campaign_id, self.state.code = view.id, view.code
        self.state.saved = canonical(self.state.document)
        self.query_one("#wizard-steps", Static).update(self._steps_line())
        return view

    async def refused(self, problems: list[tuple[str, str]], title: str) -> None:
        """Name the fields, and go back to the first step with a problem, which shows them."""
        self.state.problems = list(problems)
        fields = ", ".join(dict.fromkeys(name for name, _ in problems))
        self.notify(f"Correct {fields}.", title=title, severity="error", timeout=8)
        target = min(step_of(name) for name, _ in problems)
        if target == self.INDEX:
            self.show_step_problems(problems)
            return
        go_to_step(self, target)


def next_step(index: int, kind: Any = None) -> type[WizardStep]:
    """The step class at `index` for a campaign of type `kind` (a live campaign's Who is its
    trigger); imported here: each step's module imports this one."""
    from smsconsole.screens.campaigns.steps_send import SendTestStep, SummaryStep
    from smsconsole.screens.campaigns.steps_trigger import TriggerStep
    from smsconsole.screens.campaigns.steps_what import WhatStep
    from smsconsole.screens.campaigns.steps_when import TypeStep, WhenStep
    from smsconsole.screens.campaigns.steps_who import WhoStep

    who = TriggerStep if kind in LIVE_TYPES else WhoStep
    return (TypeStep, WhenStep, who, WhatStep, SendTestStep, SummaryStep)[index]


def go_to_step(screen: WizardStep, index: int) -> None:
    """Pop steps until the one at `index` is on top. The app does it: a step's own worker would be
    cancelled by popping its screen."""
    app = screen.app

    async def pop() -> None:
        while isinstance(app.screen, WizardStep) and app.screen.INDEX > index:
            await app.pop_screen()

    app.call_later(pop)


def close_wizard(screen: WizardStep, result: str | None) -> None:
    """Leave the wizard (every step), handing `result` (the saved campaign's code) to its opener."""
    app = screen.app
    state = screen.state

    async def pop() -> None:
        while isinstance(app.screen, WizardStep):
            await app.pop_screen()
        if state.on_close is not None:
            state.on_close(result)

    app.call_later(pop)


def open_wizard(opener: SectionScreen[Any], state: WizardState) -> None:
    opener.app.push_screen(next_step(0)(state))
