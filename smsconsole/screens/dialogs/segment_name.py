"""Ask for a segment's name and make the service call with it (duplicate asks the copy's name). It
stays open until the call succeeds: a refused name is shown under the field with its reason."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Footer, Input, Static
from textual.worker import Worker

from smsconsole.screens.dialogs.form import FormDialog
from smsconsole.screens.widgets.errors import report_worker_error
from smsconsole.screens.widgets.fields import FieldError, FormField, show_problems
from smsconsole.services.errors import ServiceError, ValidationError
from smsconsole.services.segments import SegmentView

SaveName = Callable[[str], Awaitable[SegmentView]]


class SegmentNameDialog(FormDialog[SegmentView | None]):
    """Returns what `save` returned, or None when cancelled."""

    AUTO_FOCUS = "#input-segment-name"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="segment-name.cancel", tooltip="Close without saving"),
        Binding("ctrl+s", "save", "Save", id="segment-name.save", tooltip="Save under this name"),
    ]

    def __init__(self, title: str, help: str, save: SaveName, *, name: str = "", confirm_label: str = "Save") -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        self.help_text = help
        self.save_name = save
        self.initial_name = name
        self.confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical(id="segment-name-dialog", classes="dialog") as dialog:
            dialog.border_title = self.title_text
            yield Static(self.help_text, classes="dialog-help", markup=False)
            yield FieldError(id="segment-name-error")
            yield FormField("name", "Name", Input(self.initial_name, compact=True, id="input-segment-name"),
                            required=True)
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.confirm_label, id="save", variant="primary", compact=True)
                yield Button("Cancel", id="cancel", compact=True)
        yield Footer()

    @on(Button.Pressed, "#save")
    @on(Input.Submitted)
    def _save_pressed(self) -> None:
        self.action_save()

    @work(exclusive=True, group="segment-name-save", exit_on_error=False)
    async def action_save(self) -> None:
        field = self.query_one(FormField)
        general = self.query_one("#segment-name-error", FieldError)
        try:
            view = await self.save_name(field.value)
        except ValidationError as exc:
            show_problems([field], exc, general)
            field.control.focus()
            return
        except ServiceError as exc:
            general.show(str(exc))
            return
        self.dismiss(view)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        report_worker_error(self.app, event)
