"""Name a new API key: returns the created key (its view and, once, its plaintext), or None. The
creation runs here, so a refused name is explained under the field and the dialog stays open."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Footer, Input, Static
from textual.worker import Worker

from smsconsole.screens.dialogs.form import FormDialog
from smsconsole.screens.widgets.errors import report_worker_error
from smsconsole.screens.widgets.fields import FormField
from smsconsole.services.api_keys import ApiKeyView
from smsconsole.services.errors import ServiceError, ValidationError


@dataclass(frozen=True)
class CreatedApiKey:
    view: ApiKeyView
    key: str  # the plaintext: shown once, never stored, logged or posted in a message

    def __repr__(self) -> str:  # keep the key out of any log or traceback that prints this
        return f"CreatedApiKey(view={self.view!r}, key='{self.view.hint}')"


CreateApiKey = Callable[[str], Awaitable[CreatedApiKey]]  # name → the new key; raises ValidationError


class ApiKeyCreateDialog(FormDialog[CreatedApiKey | None]):
    AUTO_FOCUS = "#api-key-name"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="api-key-create.cancel", tooltip="Close without creating a key"),
    ]

    def __init__(self, create: CreateApiKey) -> None:
        super().__init__(classes="dialog-screen")
        self.create = create

    def compose(self) -> ComposeResult:
        with Vertical(id="api-key-name-dialog", classes="dialog") as dialog:
            dialog.border_title = "New API key"
            yield Static("A key lets a service send profiles and events to POST /v1/profiles and /v1/events.",
                         classes="dialog-help", markup=False)
            yield FormField("name", "Name (what will use it)",
                            Input(placeholder="signup-service", compact=True, max_length=64, id="api-key-name"),
                            help="Up to 64 characters; unique among the active keys")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Create", id="create", variant="primary", compact=True)
                yield Button("Cancel", id="cancel", compact=True)
        yield Footer()

    @property
    def field(self) -> FormField:
        return self.query_one("#field-name", FormField)

    @on(Input.Submitted)
    @on(Button.Pressed, "#create")
    def action_create(self) -> None:
        if not self.field.value.strip():
            self.field.error.show("is required (what will use this key, e.g. 'signup-service')")
            return
        self._create(self.field.value)

    @work(exclusive=True, group="api-key-create", exit_on_error=False)
    async def _create(self, name: str) -> None:
        try:
            created = await self.create(name)
        except ValidationError as exc:
            self.field.error.show("; ".join(reason for _, reason in exc.problems))
            return
        except ServiceError as exc:
            self.field.error.show(str(exc))
            return
        self.dismiss(created)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        report_worker_error(self.app, event)
