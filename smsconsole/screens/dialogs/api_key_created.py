"""A new API key, shown this once: the only place its plaintext appears. Copy puts it on the
terminal's clipboard (OSC 52, where the terminal allows); it is never logged or notified."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Static

from smsconsole.services.api_keys import ApiKeyView


class ApiKeyCreatedDialog(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="api-key-created.close",
                tooltip="Close: the key is not shown again"),
        Binding("c", "copy", "Copy key", id="api-key-created.copy",
                tooltip="Copy the key to the clipboard (if your terminal allows it)"),
    ]

    def __init__(self, view: ApiKeyView, key: str) -> None:
        super().__init__(classes="dialog-screen")
        self.view = view
        self._key = key

    def compose(self) -> ComposeResult:
        with Vertical(id="api-key-created-dialog", classes="dialog") as dialog:
            dialog.border_title = f"API key {self.view.name!r} created"
            yield Static("⚠ Copy it now: it will not be shown again.", id="api-key-warning")
            yield Static(self._key, id="api-key-value", markup=False)
            yield Static(Text.assemble(
                "Only its SHA-256 is kept; lists show its prefix ", (self.view.hint, "bold"), ". "
                "Send it as the header ", ("Authorization: Bearer <key>", "bold"),
                ". Lost it? Revoke it and create another."), classes="dialog-help")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Copy", id="copy", variant="primary", compact=True)
                yield Button("Done, I have copied it", id="close", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#copy", Button).focus()

    @on(Button.Pressed, "#copy")
    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self._key)
        self.notify("Copied to the clipboard (if your terminal allows it). Paste it somewhere safe.",
                    title="API key", timeout=4)

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        self._key = ""
        self.dismiss(None)
