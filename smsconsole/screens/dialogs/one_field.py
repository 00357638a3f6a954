"""A dialog that asks for one value and makes a service call with it (a segment's name, the file a
report is written to). It stays open until the call succeeds: a refused value is shown under the
field with its reason, anything else the service refuses above it. Subclasses give the ids, the
bindings and the words."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Footer, Input, Static
from textual.worker import Worker

from smsconsole.screens.dialogs.form import FormDialog
from smsconsole.screens.widgets.errors import report_worker_error
from smsconsole.screens.widgets.fields import FieldError, FormField, show_problems
from smsconsole.services.errors import ServiceError, ValidationError


class OneFieldDialog(FormDialog[Any]):
    """Returns what `submit` returned, or None when cancelled. `PREFIX` names the dialog
    (`#PREFIX-dialog`, `#PREFIX-error`), `FIELD` the field (the name its problems carry) and
    AUTO_FOCUS its input's id."""

    PREFIX: ClassVar[str] = "one-field"
    FIELD: ClassVar[str] = "value"

    def __init__(self, title: str, help: str, label: str, submit: Callable[[str], Awaitable[Any]], *,
                 value: str = "", confirm_label: str = "Save") -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        self.help_text = help
        self.label = label
        self.submit = submit
        self.initial_value = value
        self.confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical(id=f"{self.PREFIX}-dialog", classes="dialog") as dialog:
            dialog.border_title = self.title_text
            yield Static(self.help_text, classes="dialog-help", markup=False)
            yield FieldError(id=f"{self.PREFIX}-error")
            yield FormField(self.FIELD, self.label, Input(self.initial_value, compact=True,
                                                          id=str(self.AUTO_FOCUS).removeprefix("#")),
                            required=True)
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.confirm_label, id="save", variant="primary", compact=True)
                yield Button("Cancel", id="cancel", compact=True)
        yield Footer()

    @on(Button.Pressed, "#save")
    @on(Input.Submitted)
    def _save_pressed(self) -> None:
        self.action_save()

    @work(exclusive=True, group="one-field-save", exit_on_error=False)
    async def action_save(self) -> None:
        field = self.query_one(FormField)
        general = self.query_one(f"#{self.PREFIX}-error", FieldError)
        try:
            result = await self.submit(field.value)
        except ValidationError as exc:
            show_problems([field], exc, general)
            field.control.focus()
            return
        except ServiceError as exc:
            general.show(str(exc))
            return
        self.dismiss(result)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        report_worker_error(self.app, event)
