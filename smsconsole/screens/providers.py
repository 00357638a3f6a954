"""Providers: the table of connected providers; add, edit, remove and test their connection."""

from __future__ import annotations

from typing import ClassVar

import httpx
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from smsconsole.messages import ProviderRemoved, ProviderSaved, ProviderTested
from smsconsole.screens.base import ACTOR, LiveSectionScreen
from smsconsole.screens.dialogs.kind_picker import KindPickerDialog
from smsconsole.screens.dialogs.provider_form import ProviderDraft, ProviderFormDialog
from smsconsole.screens.widgets.formatting import format_time, health_text, yes_no
from smsconsole.screens.widgets.tables import cursor_row_key, sync_rows
from smsconsole.services.errors import ServiceError
from smsconsole.services.providers import (
    ProviderView,
    create_provider,
    get_provider,
    kind_view,
    list_providers,
    provider_kinds,
    provider_values,
    remove_provider,
    test_provider,
    update_provider,
)
from smsconsole.services.workers import WorkerView, describe_binds, live_workers

EMPTY_HINT = "No providers yet. Press a to add one — Sandbox needs no account."
REFRESH_SECONDS = 2.0  # health and the engine's binds (each process writes them at its heartbeat)


class ProvidersScreen(LiveSectionScreen):
    MODE = "providers"
    MAIN = "#providers-table"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "add", "Add", id="providers.add",
                tooltip="Add a provider: choose its kind, then fill in its form"),
        Binding("e", "edit", "Edit", id="providers.edit", tooltip="Edit the highlighted provider"),
        Binding("d,delete", "delete", "Remove", id="providers.remove",
                tooltip="Remove the highlighted provider (asks first)"),
        Binding("t", "test", "Test", id="providers.test",
                tooltip="Test the highlighted provider's connection (sends nothing)"),
        Binding("r", "refresh", "Refresh", id="providers.refresh", tooltip="Read the database again now"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._providers: dict[str, ProviderView] = {}
        self._workers: list[WorkerView] = []

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="providers-body"):
            with Vertical(id="providers-list", classes="panel") as panel:
                panel.border_title = "Providers"
                yield DataTable(id="providers-table", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="providers-detail", classes="panel") as detail:
                detail.border_title = "Details"
                yield Static(EMPTY_HINT, id="provider-detail", markup=False)

    def on_mount(self) -> None:
        table = self.query_one("#providers-table", DataTable)
        table.add_column("Name", key="name")
        table.add_column("Kind", key="kind")
        table.add_column("On", key="enabled")
        table.add_column("Health", key="health")
        table.add_column("Checked", key="checked")
        self.start_live(REFRESH_SECONDS, self.load_providers)  # loads on each resume, then every 2 s

    @property
    def table(self) -> DataTable[object]:
        return self.query_one("#providers-table", DataTable)

    @property
    def highlighted(self) -> str | None:
        return cursor_row_key(self.table)

    # --- loading -----------------------------------------------------------------------------

    @work(exclusive=True, group="providers-load", exit_on_error=False)
    async def load_providers(self, select: str | None = None) -> None:
        runtime = await self.runtime()
        async with runtime.factory() as session:
            views = await list_providers(session)
            self._workers = await live_workers(session)  # their SMPP binds, shown in the details
        self._show(views, select)

    def _show(self, views: list[ProviderView], select: str | None = None) -> None:
        self._providers = {view.name: view for view in views}
        with self.app.batch_update():
            sync_rows(self.table, {
                view.name: (view.name, view.display_name, yes_no(view.enabled), health_text(view.health),
                            format_time(view.health_checked_at))
                for view in views
            })
            if select in self._providers:
                self.table.move_cursor(row=self.table.get_row_index(select))
            self._show_detail()

    @on(DataTable.RowHighlighted, "#providers-table")
    def _show_detail(self) -> None:
        detail = self.query_one("#provider-detail", Static)
        view = self._providers.get(self.highlighted or "")
        if view is None:
            detail.update(EMPTY_HINT)
            return
        kind = kind_view(view.kind)
        text = Text.assemble((view.name, "bold"), (f"  {view.display_name}", "dim"))
        text.append_text(Text.assemble(("\nEnabled  ", "dim"), yes_no(view.enabled)))
        if view.kind != "smpp":  # SMPP has a host and port instead
            base_url = view.base_url or f"{kind.default_base_url or '-'} (default)"
            text.append_text(Text.assemble(("\nBase URL ", "dim"), base_url))
        text.append_text(Text.assemble(("\nHealth   ", "dim"), health_text(view.health),
                                       (f"  checked {format_time(view.health_checked_at)}", "dim")
                                       if view.health_checked_at else ("  not tested yet: press t", "dim")))
        if view.health_detail:
            text.append(f"\n{view.health_detail}")
        if view.kind == "smpp":
            binds = describe_binds(self._workers, view.id)
            for bind in binds or ["none: no engine is running (the engine binds; t tests a bind)"]:
                text.append_text(Text.assemble(("\nBind     ", "dim"), bind))
        text.append("\n")
        for field in kind.fields:
            value = view.settings.get(field.name, "")
            shown = value or (f"{field.default} (default)" if field.default else "-")
            text.append_text(Text.assemble((f"\n{field.label}: ", "dim"), shown))
        detail.update(text)

    # --- add and edit ------------------------------------------------------------------------

    @work(exclusive=True, group="providers-add", exit_on_error=False)
    async def action_add(self) -> None:
        kind = await self.app.push_screen_wait(KindPickerDialog(provider_kinds()))
        if kind is None:
            return

        async def save(draft: ProviderDraft) -> ProviderView:
            runtime = await self.runtime()
            async with runtime.factory() as session, session.begin():
                return await create_provider(session, runtime.box, kind=kind, name=draft.name,
                                             values=draft.values, base_url=draft.base_url, actor=ACTOR,
                                             rate_limit=draft.rate_limit, sender_rate_limit=draft.sender_rate_limit)

        view = await self.app.push_screen_wait(ProviderFormDialog(kind_view(kind), save))
        if view is not None:
            self.notify(f"Added {view.name}. Press t to test its connection.", title="Provider saved")
            self.post_message(ProviderSaved(view.name, created=True))
            self.load_providers(select=view.name)

    def action_edit(self) -> None:
        if (name := self._require_highlighted("edit")) is not None:
            self.edit_provider(name)

    @work(exclusive=True, group="providers-edit", exit_on_error=False)
    async def edit_provider(self, name: str) -> None:
        runtime = await self.runtime()
        try:
            async with runtime.factory() as session:
                current = await get_provider(session, name)
                values = await provider_values(session, runtime.box, name)
        except ServiceError as exc:
            self.notify(str(exc), title="Cannot edit", severity="error")
            return

        async def save(draft: ProviderDraft) -> ProviderView:
            async with runtime.factory() as session, session.begin():
                return await update_provider(session, runtime.box, name, values=draft.values,
                                             base_url=draft.base_url, new_name=draft.name,
                                             enabled=draft.enabled, actor=ACTOR, rate_limit=draft.rate_limit,
                                             sender_rate_limit=draft.sender_rate_limit)

        view = await self.app.push_screen_wait(
            ProviderFormDialog(kind_view(current.kind), save, current=current, values=values)
        )
        if view is not None:
            self.notify(f"Saved {view.name}; its health is unknown until tested.", title="Provider saved")
            self.post_message(ProviderSaved(view.name, created=False))
            self.load_providers(select=view.name)

    # --- remove and test ---------------------------------------------------------------------

    def action_delete(self) -> None:
        if (name := self._require_highlighted("remove")) is not None:
            self.remove_provider(name)

    @work(exclusive=True, group="providers-remove", exit_on_error=False)
    async def remove_provider(self, name: str) -> None:
        if not await self.confirm_and_apply(
            "Remove provider",
            f"Remove provider {name}? Messages it sent keep their history; its settings and stored "
            "secrets are deleted.",
            "Remove", lambda session: remove_provider(session, name, ACTOR), refused="Not removed",
        ):
            return
        self.notify(f"Removed {name}.", title="Provider removed")
        self.post_message(ProviderRemoved(name))
        self.load_providers()

    def action_test(self) -> None:
        if (name := self._require_highlighted("test")) is not None:
            self.test_connection(name)

    @work(exclusive=True, group="providers-test", exit_on_error=False)
    async def test_connection(self, name: str) -> None:
        runtime = await self.runtime()
        if name in self._providers:
            self.table.update_cell(name, "health", Text("… testing", style="italic"), update_width=True)
        try:
            async with httpx.AsyncClient(timeout=runtime.config.send_timeout_seconds) as client:
                check = await test_provider(runtime.factory, runtime.box, name, client, ACTOR)
        except ServiceError as exc:
            self.notify(str(exc), title="Test failed", severity="error")
            self.load_providers()
            return
        if not check.checked:
            self.notify(check.detail, title=f"{name}: not checked", severity="warning", timeout=10)
        elif check.ok:
            self.notify(check.detail, title=f"{name}: connection ok")
        else:
            self.notify(check.detail, title=f"{name}: connection failed", severity="error", timeout=10)
        self.post_message(ProviderTested(name, check.ok, check.detail))
        self.load_providers(select=name)

    def _require_highlighted(self, verb: str) -> str | None:
        name = self.highlighted
        if name is None:
            self.notify(f"No provider to {verb}: press a to add one.", severity="warning")
        return name
