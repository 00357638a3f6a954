"""Paste a provider's sample curl command: returns what it imports as Generic HTTP settings, or
None. An unreadable command is explained under the text and the dialog stays open."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Footer, Static, TextArea

from smsconsole.screens.dialogs.form import FormDialog
from smsconsole.screens.widgets.fields import FieldError
from smsconsole.services.providers import CurlImport, CurlParseError, import_curl


class CurlPasteDialog(FormDialog[CurlImport | None]):
    AUTO_FOCUS = "#curl-command"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="curl-paste.cancel", tooltip="Close without importing"),
        Binding("ctrl+s", "import_command", "Import", id="curl-paste.import",
                tooltip="Fill the form from the command"),
    ]

    def __init__(self) -> None:
        super().__init__(classes="dialog-screen")

    def compose(self) -> ComposeResult:
        with Vertical(id="curl-paste", classes="dialog") as dialog:
            dialog.border_title = "Paste a curl command"
            yield Static("Paste the provider's sample request (from its API docs). Method, URL, auth, "
                         "headers, params and body fill the form; then put $$To and $$Body where the "
                         "sample number and text are.", classes="dialog-help")
            yield TextArea(id="curl-command", soft_wrap=True, compact=True,
                           placeholder="curl -X POST https://api.example.com/sms -d to=... -d text=...")
            yield FieldError(id="curl-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Import", id="import", variant="primary", compact=True)
                yield Button("Cancel", id="cancel", compact=True)
        yield Footer()

    @on(Button.Pressed, "#import")
    def action_import_command(self) -> None:
        command = self.query_one("#curl-command", TextArea).text
        try:
            imported = import_curl(command)
        except CurlParseError as exc:
            self.query_one("#curl-error", FieldError).show(str(exc))
            return
        self.dismiss(imported)
