"""Settings: the operator settings kept in the database (validated by the service), the API keys of
the ingestion API (create, shown once; revoke), the message templates the API sends by name, the
reply keywords, compliance, the process configuration (read only, secrets masked) and the recent
audit log."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, DataTable, Input

from smsconsole.messages import ApiKeyCreated, ApiKeyRevoked, SettingsSaved
from smsconsole.screens.base import ACTOR, SectionScreen
from smsconsole.screens.dialogs.api_key_create import ApiKeyCreateDialog, CreatedApiKey
from smsconsole.screens.dialogs.api_key_created import ApiKeyCreatedDialog
from smsconsole.screens.dialogs.keyword_form import KeywordFormDialog
from smsconsole.screens.dialogs.message_template_form import MessageTemplateFormDialog
from smsconsole.screens.settings_compliance import PANEL_SETTINGS, CompliancePanel
from smsconsole.screens.widgets.fields import FieldError, FormField, show_problems
from smsconsole.screens.widgets.formatting import (
    compact_details,
    format_day,
    format_time,
)
from smsconsole.screens.widgets.tables import cursor_row_key, sync_rows
from smsconsole.services import audit
from smsconsole.services.api_keys import (
    ApiKeyView,
    create_api_key,
    list_api_keys,
    revoke_api_key,
)
from smsconsole.services.errors import ServiceError, ValidationError
from smsconsole.services.keywords import (
    ACTION_LABELS,
    KeywordView,
    create_keyword,
    delete_keyword,
    list_keywords,
    update_keyword,
)
from smsconsole.services.message_templates import (
    TemplateView,
    create_template,
    delete_template,
    list_templates,
    update_template,
)
from smsconsole.services.settings import SETTINGS, get_settings, update_settings


def first_line(body: str, width: int) -> str:
    """A template body's first non-empty line, cut to `width` cells (… when cut or more lines follow)."""
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    line = lines[0] if lines else ""
    if len(line) > width:
        return line[:width - 1] + "…"
    return line + (" …" if len(lines) > 1 and len(line) + 2 <= width else "")


def revoked_text(view: ApiKeyView) -> Text:
    return Text("- (active)", style="green") if view.active else Text(format_day(view.revoked_at), style="yellow")


class SettingsScreen(SectionScreen):
    """One scrolling page. The page itself takes the focus on entry (PageUp/PageDown/Home/End and
    the arrows scroll it, so the process config and the audit log are in reach); tab goes through
    the settings fields, then the API keys, the message templates, then the keywords; the buttons and
    the read-only tables are left out of the tab order (their keys do the same: ctrl+s, ctrl+n, a, e,
    d). a, e and d act on the focused table; e from the page goes to the settings fields."""

    MODE = "settings"
    MAIN = "#settings-body"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save", id="settings.save", tooltip="Validate and save the settings"),
        Binding("ctrl+n", "create_api_key", "New API key", id="settings.api-key-create",
                tooltip="Create a key for the ingestion API (shown once)"),
        Binding("a", "add", "Add", id="settings.keyword-add",
                tooltip="Add a reply keyword, a message template or an API key (to the focused table)"),
        Binding("e", "edit", "Edit", id="settings.keyword-edit",
                tooltip="Edit the highlighted keyword or message template (enter does the same); from the "
                "page, the settings fields"),
        Binding("d,delete", "delete", "Delete", id="settings.keyword-delete",
                tooltip="Delete the highlighted keyword or message template, or revoke the highlighted API key "
                "(asks first)"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._stored: dict[str, str] = {}
        self._api_keys: dict[str, ApiKeyView] = {}
        self._keywords: dict[str, KeywordView] = {}
        self._templates: dict[str, TemplateView] = {}

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="settings-body"):
            with Vertical(id="settings-form", classes="panel") as form:
                form.border_title = "Settings (kept in the database, shared by every console)"
                yield FieldError(id="settings-error")
                for definition in SETTINGS.values():
                    if definition.key in PANEL_SETTINGS:
                        continue  # in the Compliance panel
                    yield FormField(definition.key, definition.label,
                                    Input(compact=True, id=f"setting-{definition.key.replace('_', '-')}",
                                          placeholder=definition.default or "not set"),
                                    help=definition.help)
                with Horizontal(classes="form-buttons"):
                    yield Button("Save", id="save-settings", variant="primary", compact=True,
                                 tooltip="Validate and save (ctrl+s)")
            with Vertical(id="settings-api-keys", classes="panel") as keys:
                keys.border_title = "API keys (ingestion API: POST /v1/profiles, /v1/events)"
                yield DataTable(id="api-keys-table", cursor_type="row", zebra_stripes=True)
                with Horizontal(classes="form-buttons"):
                    yield Button("New key…", id="api-key-create", variant="primary", compact=True,
                                 tooltip="Create a key (ctrl+n); it is shown once")
                    yield Button("Revoke…", id="api-key-revoke", variant="error", compact=True, disabled=True,
                                 tooltip="Revoke the highlighted key (delete); asks first")
            with Vertical(id="settings-message-templates", classes="panel") as templates:
                templates.border_title = 'Message templates (POST /v1/messages {"template": NAME})'
                yield DataTable(id="message-templates-table", cursor_type="row", zebra_stripes=True)
                with Horizontal(classes="form-buttons"):
                    yield Button("New template…", id="message-template-add", variant="primary", compact=True,
                                 tooltip="Add a message template (a with the table focused)")
                    yield Button("Edit…", id="message-template-edit", compact=True, disabled=True,
                                 tooltip="Edit the highlighted template (enter or e)")
                    yield Button("Delete…", id="message-template-delete", variant="error", compact=True,
                                 disabled=True, tooltip="Delete the highlighted template (d); asks first")
            with Vertical(id="settings-keywords", classes="panel") as keywords:
                keywords.border_title = "Reply keywords (a: add, enter: edit, d: delete)"
                yield DataTable(id="keywords-table", cursor_type="row", zebra_stripes=True)
                with Horizontal(classes="form-buttons"):
                    yield Button("Add…", id="keyword-add", variant="primary", compact=True,
                                 tooltip="Add a reply keyword")
                    yield Button("Edit…", id="keyword-edit", compact=True, tooltip="Edit the highlighted keyword")
                    yield Button("Delete…", id="keyword-delete", variant="error", compact=True,
                                 tooltip="Delete the highlighted keyword; asks first")
            yield CompliancePanel()
            with Vertical(id="settings-config", classes="panel") as config:
                config.border_title = "This process (read only; set in config.toml or SMSCONSOLE_* variables)"
                yield DataTable(id="config-table", cursor_type="none", show_header=False, zebra_stripes=True)
            with Vertical(id="settings-audit", classes="panel") as log:
                log.border_title = "Recent changes (audit log)"
                yield DataTable(id="audit-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        # the tab order: the fields, then the two tables that take keys; the page scrolls to the rest
        for widget in (*self.query(Button), self.query_one("#config-table"), self.query_one("#audit-table")):
            widget.can_focus = False
        config = self.query_one("#config-table", DataTable)
        config.add_column("Key", key="key")
        config.add_column("Value", key="value")
        for key, value in self.console.config.masked().items():
            config.add_row(key, str(value), key=key)
        keys = self.query_one("#api-keys-table", DataTable)
        keys.add_column("Name", key="name")
        keys.add_column("Key", key="prefix")
        keys.add_column("Created", key="created")
        keys.add_column("Last used", key="used")
        keys.add_column("Revoked", key="revoked")
        templates = self.query_one("#message-templates-table", DataTable)
        templates.add_column("Name", key="name")
        templates.add_column("Updated", key="updated")
        templates.add_column("Body", key="body")
        words = self.query_one("#keywords-table", DataTable)
        words.add_column("Word", key="word")
        words.add_column("Action", key="action")
        words.add_column("Lang", key="language")
        words.add_column("", key="flag")
        words.add_column("Response / event", key="response")
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
            api_keys = await list_api_keys(session)
            templates = await list_templates(session)
            keywords = await list_keywords(session)
            entries = await audit.recent(session)
            await session.commit()  # the default keywords, seeded on first use
        self._show_values(values)
        self._show_api_keys(api_keys)
        self._show_templates(templates)
        self._show_keywords(keywords)
        self._show_audit(entries)
        self.query_one(CompliancePanel).load()

    def _show_values(self, values: dict[str, str], *, force: bool = False) -> None:
        """Show stored values, except (unless forced) in fields the operator has changed and not
        yet saved."""
        for field in self.fields:
            control = field.control
            assert isinstance(control, Input)
            if force or control.value == self._stored.get(field.field_name, ""):
                control.value = values.get(field.field_name, "")
        self._stored = dict(values)

    def _show_api_keys(self, views: list[ApiKeyView]) -> None:
        self._api_keys = {str(view.id): view for view in views}
        table = self.query_one("#api-keys-table", DataTable)
        sync_rows(table, {
            str(view.id): (view.name, view.hint, format_day(view.created_at),
                           format_day(view.last_used_at) if view.last_used_at else "never", revoked_text(view))
            for view in views
        })
        active = sum(view.active for view in views)
        self.query_one("#settings-api-keys").border_subtitle = (
            f"{active} active" + (f", {len(views) - active} revoked" if len(views) > active else "") if views
            else "none yet: ctrl+n creates one")
        self._update_revoke_button()

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

    # --- API keys ----------------------------------------------------------------------------

    @property
    def highlighted_api_key(self) -> ApiKeyView | None:
        key = cursor_row_key(self.query_one("#api-keys-table", DataTable))
        return self._api_keys.get(key) if key is not None else None

    @on(DataTable.RowHighlighted, "#api-keys-table")
    def _update_revoke_button(self) -> None:
        view = self.highlighted_api_key
        self.query_one("#api-key-revoke", Button).disabled = view is None or not view.active
        self.refresh_bindings()

    @property
    def focused_table(self) -> str | None:
        """"keywords", "message-templates" or "api-keys" while that table has the focus."""
        focused = self.focused
        if isinstance(focused, DataTable) and focused.id in ("keywords-table", "message-templates-table",
                                                              "api-keys-table"):
            return focused.id.removesuffix("-table")
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        table = self.focused_table
        if action == "add":
            return table is not None
        if action == "edit":
            if table == "keywords":
                return self.highlighted_keyword is not None or None
            if table == "message-templates":
                return self.highlighted_template is not None or None
            return table is None
        if action == "delete":
            if table == "keywords":
                return self.highlighted_keyword is not None or None
            if table == "message-templates":
                return self.highlighted_template is not None or None
            if table == "api-keys":
                view = self.highlighted_api_key
                return view is not None and view.active or None
            return False
        return True

    def action_add(self) -> None:
        if self.focused_table == "api-keys":
            self.action_create_api_key()
        elif self.focused_table == "keywords":
            self.add_keyword()
        elif self.focused_table == "message-templates":
            self.add_template()

    def action_edit(self) -> None:
        if self.focused_table == "keywords":
            self.edit_keyword()
        elif self.focused_table == "message-templates":
            self.edit_template()
        elif self.focused_table is None:
            self.query_one("#settings-form Input", Input).focus()

    def action_delete(self) -> None:
        if self.focused_table == "api-keys":
            self.revoke_highlighted_api_key()
        elif self.focused_table == "keywords":
            self.delete_highlighted_keyword()
        elif self.focused_table == "message-templates":
            self.delete_highlighted_template()

    def on_descendant_focus(self) -> None:
        self.refresh_bindings()

    @on(Button.Pressed, "#api-key-create")
    def action_create_api_key(self) -> None:
        self.app.push_screen(ApiKeyCreateDialog(self._create_api_key), self._api_key_created)

    async def _create_api_key(self, name: str) -> CreatedApiKey:
        """Run by the dialog's worker, which shows a refused name under its field."""
        runtime = await self.runtime()
        async with runtime.factory() as session, session.begin():
            view, key = await create_api_key(session, name, ACTOR)
        return CreatedApiKey(view, key)

    def _api_key_created(self, created: CreatedApiKey | None) -> None:
        if created is None:
            return
        self.post_message(ApiKeyCreated(created.view.name, created.view.prefix))  # the prefix, never the key
        self.app.push_screen(ApiKeyCreatedDialog(created.view, created.key))
        self.load_settings()

    @on(Button.Pressed, "#api-key-revoke")
    def revoke_highlighted_api_key(self) -> None:
        view = self.highlighted_api_key
        if view is None or not view.active:
            return
        self.revoke_api_key(view)

    @work(exclusive=True, group="settings-api-key-revoke", exit_on_error=False)
    async def revoke_api_key(self, view: ApiKeyView) -> None:
        if not await self.confirm_and_apply(
            "Revoke API key",
            f"Revoke {view.name!r} ({view.hint})? Requests with it are refused (401) from now on. "
            "This cannot be undone: a service that still needs access gets a new key.",
            "Revoke", lambda session: revoke_api_key(session, view.id, ACTOR), refused="Not revoked",
        ):
            return
        self.notify(f"API key {view.name!r} ({view.hint}) revoked.", title="API keys")
        self.post_message(ApiKeyRevoked(view.prefix))
        self.load_settings()

    # --- message templates -------------------------------------------------------------------

    def _show_templates(self, views: list[TemplateView]) -> None:
        self._templates = {view.name: view for view in views}
        table = self.query_one("#message-templates-table", DataTable)
        updated = {view.name: format_day(view.updated_at) for view in views}
        # the body's first line, cut to what is left of the table's width (2 cells of padding a column)
        used = sum(max([len(title), *(len(text) for text in texts)]) + 2 for title, texts in (
            ("Name", [view.name for view in views]), ("Updated", list(updated.values()))))
        width = table.scrollable_content_region.width or 76
        room = max(16, width - used - 2 - 1)  # the body's padding; a cell for the vertical scrollbar
        sync_rows(table, {view.name: (view.name, updated[view.name], first_line(view.body, room)) for view in views})
        self.query_one("#settings-message-templates").border_subtitle = (
            f"{len(views)} template{'s' if len(views) != 1 else ''}" if views else "none yet")
        self._update_template_buttons()

    def on_resize(self) -> None:
        if self._templates:  # the body column follows the width
            self.call_after_refresh(lambda: self._show_templates(list(self._templates.values())))

    @property
    def highlighted_template(self) -> TemplateView | None:
        key = cursor_row_key(self.query_one("#message-templates-table", DataTable))
        return self._templates.get(key) if key is not None else None

    @on(DataTable.RowHighlighted, "#message-templates-table")
    def _update_template_buttons(self) -> None:
        none = self.highlighted_template is None
        self.query_one("#message-template-edit", Button).disabled = none
        self.query_one("#message-template-delete", Button).disabled = none
        self.refresh_bindings()

    @on(Button.Pressed, "#message-template-add")
    def add_template(self) -> None:
        self.app.push_screen(MessageTemplateFormDialog(self._save_template), self._template_saved)

    @on(Button.Pressed, "#message-template-edit")
    @on(DataTable.RowSelected, "#message-templates-table")
    def edit_template(self) -> None:
        view = self.highlighted_template
        if view is None:
            return

        async def save(values: dict[str, str]) -> TemplateView:
            return await self._save_template(values, view)

        self.app.push_screen(MessageTemplateFormDialog(save, view), self._template_saved)

    async def _save_template(self, values: dict[str, str], existing: TemplateView | None = None) -> TemplateView:
        """Run by the dialog's worker, which shows refused fields under them."""
        runtime = await self.runtime()
        async with runtime.factory() as session, session.begin():
            if existing is None:
                return await create_template(session, values["name"], values["body"],
                                             description=values["description"], actor=ACTOR)
            return await update_template(session, existing.name, body=values["body"],
                                         description=values["description"], new_name=values["name"], actor=ACTOR)

    def _template_saved(self, view: TemplateView | None) -> None:
        if view is not None:
            self.notify(f"Saved template {view.name}", title="Message templates")
            self.load_settings()

    @on(Button.Pressed, "#message-template-delete")
    def delete_highlighted_template(self) -> None:
        view = self.highlighted_template
        if view is not None:
            self.remove_template(view)

    @work(exclusive=True, group="settings-template-delete", exit_on_error=False)
    async def remove_template(self, view: TemplateView) -> None:
        if not await self.confirm_and_apply(
            "Delete message template", f"Delete {view.name}? Requests naming it are refused from now on.",
            "Delete", lambda session: delete_template(session, view.name, actor=ACTOR), refused="Not deleted",
        ):
            return
        self.notify(f"Template {view.name} deleted.", title="Message templates")
        self.load_settings()

    # --- reply keywords ----------------------------------------------------------------------

    def _show_keywords(self, views: list[KeywordView]) -> None:
        self._keywords = {view.word: view for view in views}
        rows: dict[str, tuple[Any, ...]] = {}
        for view in views:
            flag = Text("default", style="dim") if view.builtin else Text("added", style="cyan")
            if not view.enabled:
                flag = Text("off", style="yellow")
            response = view.response or (f"logs {view.event_name}" if view.event_name else "(no response)")
            if view.event_name and view.response:
                response = f"logs {view.event_name}; {view.response}"
            rows[view.word] = (view.word, ACTION_LABELS.get(view.action, view.action), view.language or "-", flag,
                               response[:70] + ("…" if len(response) > 70 else ""))
        sync_rows(self.query_one("#keywords-table", DataTable), rows)
        self.query_one("#settings-keywords").border_subtitle = (
            f"{len(views)} keywords, {sum(not v.builtin for v in views)} added" if views else "none")

    @property
    def highlighted_keyword(self) -> KeywordView | None:
        key = cursor_row_key(self.query_one("#keywords-table", DataTable))
        return self._keywords.get(key) if key is not None else None

    @on(Button.Pressed, "#keyword-add")
    def add_keyword(self) -> None:
        self.app.push_screen(KeywordFormDialog(self._save_keyword), self._keyword_saved)

    @on(Button.Pressed, "#keyword-edit")
    @on(DataTable.RowSelected, "#keywords-table")
    def edit_keyword(self) -> None:
        view = self.highlighted_keyword
        if view is None:
            return

        async def save(values: dict[str, str]) -> KeywordView:
            return await self._save_keyword(values, view)

        self.app.push_screen(KeywordFormDialog(save, view), self._keyword_saved)

    async def _save_keyword(self, values: dict[str, str], existing: KeywordView | None = None) -> KeywordView:
        """Run by the dialog's worker, which shows refused fields under them."""
        runtime = await self.runtime()
        async with runtime.factory() as session, session.begin():
            if existing is None:
                view = await create_keyword(session, word=values["word"], action=values["action"],
                                            language=values["language"], response=values["response"],
                                            event_name=values["event_name"], actor=ACTOR)
                if values.get("enabled") == "false":
                    view = await update_keyword(session, view.word, enabled=False, actor=ACTOR)
                return view
            return await update_keyword(
                session, existing.word, new_word=None if existing.builtin else values["word"],
                action=None if existing.builtin else values["action"], language=values["language"],
                response=values["response"], event_name=values["event_name"],
                enabled=values.get("enabled") != "false", actor=ACTOR)

    def _keyword_saved(self, view: KeywordView | None) -> None:
        if view is not None:
            self.notify(f"Keyword {view.word} saved.", title="Keywords")
            self.load_settings()

    @on(Button.Pressed, "#keyword-delete")
    def delete_highlighted_keyword(self) -> None:
        view = self.highlighted_keyword
        if view is not None:
            self.remove_keyword(view)

    @work(exclusive=True, group="settings-keyword-delete", exit_on_error=False)
    async def remove_keyword(self, view: KeywordView) -> None:
        note = " It is one of the defaults: turning it off (edit) keeps it for later." if view.builtin else ""
        if not await self.confirm_and_apply(
            "Delete keyword", f"Delete {view.word} ({ACTION_LABELS.get(view.action, view.action)})? Replies of "
            f"exactly {view.word} become plain replies.{note}",
            "Delete", lambda session: delete_keyword(session, view.word, actor=ACTOR), refused="Not deleted",
        ):
            return
        self.notify(f"Keyword {view.word} deleted.", title="Keywords")
        self.load_settings()
