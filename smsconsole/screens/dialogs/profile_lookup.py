"""Open a profile by phone (any format), user id or profile id: returns the key to open it by, or
None. A key that finds nobody is explained under the field and the dialog stays open."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Footer, Input
from textual.worker import Worker

from smsconsole.screens.dialogs.form import FormDialog
from smsconsole.screens.widgets.errors import report_worker_error
from smsconsole.screens.widgets.fields import FormField
from smsconsole.services.errors import ServiceError

FindProfile = Callable[[str], Awaitable[str]]  # typed text → the key to open it by; raises NotFound


class ProfileLookupDialog(FormDialog[str | None]):
    AUTO_FOCUS = "#lookup-key"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="profile-lookup.cancel", tooltip="Close without opening a profile"),
    ]

    def __init__(self, find: FindProfile) -> None:
        super().__init__(classes="dialog-screen")
        self.find = find

    def compose(self) -> ComposeResult:
        with Vertical(id="profile-lookup", classes="dialog") as dialog:
            dialog.border_title = "Open profile"
            yield FormField("key", "Phone, user id or profile id",
                            Input(placeholder="+44 7400 123456, 07400 123456 or u-1001", compact=True,
                                  id="lookup-key"),
                            help="National numbers are read in the default region (Settings)")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Open", id="open", variant="primary", compact=True)
                yield Button("Cancel", id="cancel", compact=True)
        yield Footer()

    @property
    def field(self) -> FormField:
        return self.query_one("#field-key", FormField)

    @on(Input.Submitted)
    @on(Button.Pressed, "#open")
    def action_open(self) -> None:
        if not self.field.value.strip():
            self.field.error.show("is required")
            return
        self._find(self.field.value)

    @work(exclusive=True, group="profile-lookup-find", exit_on_error=False)
    async def _find(self, text: str) -> None:
        try:
            key = await self.find(text)
        except ServiceError as exc:
            self.field.error.show(str(exc))
            return
        self.dismiss(key)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        report_worker_error(self.app, event)
