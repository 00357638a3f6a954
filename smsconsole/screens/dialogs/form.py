"""A modal form that never throws typed work away unasked: escape (or its Cancel button) closes it
at once when nothing was changed, and asks "Discard your changes?" when something was. A form saved
by a service call stays open until the save succeeds (SavingFormDialog)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ClassVar, Generic, TypeVar

from textual import on, work
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import (
    Button,
    Checkbox,
    Input,
    RadioButton,
    Select,
    SelectionList,
    Switch,
    TextArea,
)
from textual.worker import Worker

from smsconsole.screens.dialogs.confirm import ConfirmDialog
from smsconsole.screens.widgets.errors import report_worker_error
from smsconsole.screens.widgets.fields import FieldError, FormField, show_problems
from smsconsole.services.errors import ServiceError, ValidationError

ResultT = TypeVar("ResultT")
DraftT = TypeVar("DraftT")
CONTROLS = "Input, TextArea, Select, Switch, Checkbox, RadioButton, SelectionList"
DISCARD_QUESTION = "Discard your changes?"


def control_state(widget: Widget) -> object:
    """What the operator has set in a control, comparable."""
    if isinstance(widget, Input):
        return widget.value
    if isinstance(widget, TextArea):
        return widget.text
    if isinstance(widget, (Switch, Checkbox, RadioButton)):
        return widget.value
    if isinstance(widget, Select):
        return None if widget.value is Select.NULL else widget.value
    if isinstance(widget, SelectionList):
        return tuple(widget.selected)
    return None


class FormDialog(ModalScreen[ResultT]):
    """Subclasses bind escape to "cancel" and may add to `form_state` what lives outside the
    controls (the group form's provider order)."""

    _clean: object = None

    def on_mount(self) -> None:
        # after the subclass's on_mount and the first refresh: the form as it opened is "unchanged"
        self.call_after_refresh(self.mark_clean)

    def form_state(self) -> object:
        return tuple((widget.id, control_state(widget)) for widget in self.query(CONTROLS))

    def mark_clean(self) -> None:
        self._clean = self.form_state()

    @property
    def changed(self) -> bool:
        return self._clean is not None and self.form_state() != self._clean

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        if not self.changed:
            self.dismiss(None)
            return
        self.app.push_screen(ConfirmDialog("Unsaved changes", DISCARD_QUESTION, confirm_label="Discard",
                                           destructive=True), self._discard_answered)

    def _discard_answered(self, discard: bool | None) -> None:
        if discard:
            self.dismiss(None)


class SavingFormDialog(FormDialog[ResultT], Generic[DraftT, ResultT]):
    """A form saved by a service call: ctrl+s, enter in a field or Save runs `save(draft())` in a
    worker and returns what it saved. A refused save shows each reason under its field (the first
    bad field takes the focus) or in the form-level line FORM_ERROR, and loses nothing."""

    FORM_ERROR: ClassVar[str]  # the selector of the form-level FieldError

    def __init__(self, save: Callable[[DraftT], Awaitable[ResultT]], *, classes: str | None = None) -> None:
        super().__init__(classes=classes)
        self.save = save

    @property
    def fields(self) -> list[FormField]:
        return list(self.query(FormField))

    def draft(self) -> DraftT:
        """What the operator typed, as the service takes it."""
        raise NotImplementedError

    @on(Input.Submitted)
    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        self._save(self.draft())

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        report_worker_error(self.app, event)

    @work(exclusive=True, group="form-save", exit_on_error=False)
    async def _save(self, draft: DraftT) -> None:
        general = self.query_one(self.FORM_ERROR, FieldError)
        try:
            saved = await self.save(draft)
        except ValidationError as exc:
            first = show_problems(self.fields, exc, general)
            if first is not None:
                first.control.focus()
            return
        except ServiceError as exc:
            show_problems(self.fields, None, general)
            general.show(str(exc))
            return
        self.dismiss(saved)
