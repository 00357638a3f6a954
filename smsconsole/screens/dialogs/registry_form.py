"""What the compliance registry forms share (a sender, a DLT template, a 10DLC campaign, a price):
a title, a form-level error line, the fields in a scrolling box (they fit 80×24), Save and Cancel.
The draft is {field name: text} with the service's field names, so a refused save shows each reason
under its field (SavingFormDialog)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Footer, Select, Static

from smsconsole.screens.dialogs.form import SavingFormDialog
from smsconsole.screens.widgets.fields import FieldError

Draft = dict[str, str]
SaveDraft = Callable[[Draft], Awaitable[Any]]


def choices(values: Iterable[str], labels: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """Select options for service words: (label, word)."""
    return [((labels or {}).get(value, value), value) for value in values]


def select(options: list[tuple[str, str]], value: str | None, *, id: str, prompt: str = "Select",
           allow_blank: bool = True) -> Select[str]:
    """A compact Select showing `value` when it is one of the options."""
    known = {word for _, word in options}
    chosen = value if value in known else (Select.NULL if allow_blank else options[0][1])
    return Select[str](options, value=chosen, allow_blank=allow_blank, prompt=prompt, compact=True, id=id)


class RegistryFormDialog(SavingFormDialog[Draft, Any]):
    """Subclasses give HELP (a line above the fields, optional) and compose_fields(); FIRST names
    the control that takes the focus. It takes it once the form is laid out, so the form opens at
    its top (focused before the layout, Textual centres the control and hides the fields above)."""

    FORM_ERROR = "#registry-form-error"
    AUTO_FOCUS = ""
    FIRST: str = ""
    HELP: ClassVar[str] = ""
    SAVE_LABEL: ClassVar[str] = "Save"
    SHORT: ClassVar[bool] = False  # a few fields: the dialog takes their height, not the screen's
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="registry-form.cancel",
                tooltip="Close without saving (asks first when something was changed)"),
        Binding("ctrl+s", "save", "Save", id="registry-form.save", tooltip="Validate and save"),
    ]

    def __init__(self, title: str, save: SaveDraft) -> None:
        super().__init__(save, classes="dialog-screen")
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog registry-form" + (" -short" if self.SHORT else "")) as dialog:
            dialog.border_title = self.title_text
            if self.HELP:
                yield Static(self.HELP, classes="dialog-help", markup=False)
            yield FieldError(id="registry-form-error")
            with VerticalScroll(classes="registry-form-fields"):
                yield from self.compose_fields()
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.SAVE_LABEL, id="save", variant="primary", compact=True)
                yield Button("Cancel", id="cancel", compact=True)
        yield Footer()

    def compose_fields(self) -> ComposeResult:
        raise NotImplementedError

    def on_mount(self) -> None:
        self.call_after_refresh(self._focus_first)

    def _focus_first(self) -> None:
        for control in self.query(self.FIRST):
            control.focus(scroll_visible=False)
            return

    def draft(self) -> Draft:
        return {field.field_name: field.value for field in self.fields}
