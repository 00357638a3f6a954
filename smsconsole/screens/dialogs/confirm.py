"""A yes/no question: returns True when confirmed."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Static


class ConfirmDialog(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "cancel", "Cancel", id="confirm.cancel", tooltip="Close without doing anything"),
        Binding("y", "confirm", "Yes", id="confirm.yes", tooltip="Confirm"),
    ]

    def __init__(self, title: str, question: str, *, confirm_label: str = "OK", destructive: bool = False) -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        self.question = question
        self.confirm_label = confirm_label
        self.destructive = destructive

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog", classes="dialog") as dialog:
            dialog.border_title = self.title_text
            yield Static(self.question, id="confirm-question", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.confirm_label, id="confirm", compact=True,
                             variant="error" if self.destructive else "primary")
                yield Button("Cancel", id="cancel", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#cancel" if self.destructive else "#confirm", Button).focus()

    @on(Button.Pressed, "#confirm")
    def action_confirm(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(False)
