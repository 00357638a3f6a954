"""A modal form that never throws typed work away unasked: escape (or its Cancel button) closes it
at once when nothing was changed, and asks "Discard your changes?" when something was."""

from __future__ import annotations

from typing import TypeVar

from textual import on
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

from smsconsole.screens.dialogs.confirm import ConfirmDialog

ResultT = TypeVar("ResultT")
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
