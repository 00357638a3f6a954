"""Settings: the operator settings kept in the database (validated by the service), the process
configuration (read only, secrets masked) and the recent audit log."""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, DataTable, Input

from smsconsole.messages import SettingsSaved
from smsconsole.screens.base import ACTOR, SectionScreen
from smsconsole.screens.widgets.fields import FieldError, FormField, show_problems
from smsconsole.screens.widgets.formatting import compact_details, format_time
from smsconsole.screens.widgets.tables import sync_rows
from smsconsole.services import audit
from smsconsole.services.errors import ServiceError, ValidationError
from smsconsole.services.settings import SETTINGS, get_settings, update_settings


class SettingsScreen(SectionScreen):
    MODE = "settings"
    AUTO_FOCUS = None
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save", id="settings.save", tooltip="Validate and save the settings"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._stored: dict[str, str] = {}

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="settings-body"):
            with Vertical(id="settings-form", classes="panel") as form:
                form.border_title = "Settings (kept in the database, shared by every console)"
                yield FieldError(id="settings-error")
                for definition in SETTINGS.values():
                    yield FormField(definition.key, definition.label,
                                    Input(compact=True, id=f"setting-{definition.key.replace('_', '-')}",
                                          placeholder=definition.default or "not set"),
                                    help=definition.help)
                with Horizontal(classes="form-buttons"):
                    yield Button("Save", id="save-settings", variant="primary", compact=True,
                                 tooltip="Validate and save (ctrl+s)")
            with Vertical(id="settings-config", classes="panel") as config:
                config.border_title = "This process (read only; set in config.toml or SMSCONSOLE_* variables)"
                yield DataTable(id="config-table", cursor_type="none", show_header=False, zebra_stripes=True)
            with Vertical(id="settings-audit", classes="panel") as log:
                log.border_title = "Recent changes (audit log)"
                yield DataTable(id="audit-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        config = self.query_one("#config-table", DataTable)
        config.add_column("Key", key="key")
        config.add_column("Value", key="value")
        for key, value in self.console.config.masked().items():
            config.add_row(key, str(value), key=key)
        table = self.query_one("#audit-table", DataTable)
        table.add_column("Time", key="at")
        table.add_column("Actor", key="actor")
        table.add_column("Action", key="action")
        table.add_column("Target", key="target")
        table.add_column("Details", key="details")

    def on_screen_resume(self) -> None:
        self.load_settings()

    @property
    def fields(self) -> list[FormField]:
        return list(self.query(FormField))

    @work(exclusive=True, group="settings-load", exit_on_error=False)
    async def load_settings(self) -> None:
        runtime = await self.runtime()
        async with runtime.factory() as session:
            values = await get_settings(session)
            entries = await audit.recent(session)
        self._show_values(values)
        self._show_audit(entries)

    def _show_values(self, values: dict[str, str], *, force: bool = False) -> None:
        """Show stored values, except (unless forced) in fields the operator has changed and not
        yet saved."""
        for field in self.fields:
            control = field.control
            assert isinstance(control, Input)
            if force or control.value == self._stored.get(field.field_name, ""):
                control.value = values.get(field.field_name, "")
        self._stored = dict(values)

    def _show_audit(self, entries: list[audit.AuditView]) -> None:
        rows: dict[str, tuple[Any, ...]] = {}
        for index, entry in enumerate(entries):
            rows[str(index)] = (format_time(entry.at, seconds=True), entry.actor, entry.action,
                                entry.target or "-", compact_details(entry.details))
        sync_rows(self.query_one("#audit-table", DataTable), rows)

    @on(Input.Submitted)
    @on(Button.Pressed, "#save-settings")
    def action_save(self) -> None:
        changes = {field.field_name: field.value for field in self.fields
                   if field.value != self._stored.get(field.field_name, "")}
        if not changes:
            show_problems(self.fields, None, self.query_one("#settings-error", FieldError))
            self.notify("Nothing changed.", timeout=3)
            return
        self.save_settings(changes)

    @work(exclusive=True, group="settings-save", exit_on_error=False)
    async def save_settings(self, changes: dict[str, str]) -> None:
        runtime = await self.runtime()
        general = self.query_one("#settings-error", FieldError)
        try:
            async with runtime.factory() as session, session.begin():
                values = await update_settings(session, changes, ACTOR)
        except ValidationError as exc:
            first = show_problems(self.fields, exc, general)
            if first is not None:
                first.control.focus()
            return
        except ServiceError as exc:
            general.show(str(exc))
            return
        show_problems(self.fields, None, general)
        self._show_values(values, force=True)  # as saved: normalized, e.g. gb → GB
        self.notify("Settings saved.", title="Settings")
        self.post_message(SettingsSaved(values))
        self.load_settings()
