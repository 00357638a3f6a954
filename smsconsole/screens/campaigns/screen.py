"""Campaigns: every campaign with its Campaign ID, status, type, next run and its last run's
progress and counts, refreshed live; create one with the wizard, open its page, pause or resume,
stop, duplicate and delete it."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from smsconsole.screens.campaigns.actions import (
    CampaignActions,
    counts_of,
    counts_text,
    held_back_text,
    progress_bar,
    short_counts,
    state_words,
)
from smsconsole.screens.campaigns.page import CampaignPageScreen
from smsconsole.screens.widgets.tables import cursor_row_key, sync_rows
from smsconsole.services.campaigns import crud
from smsconsole.services.campaigns.definition import LIVE_TYPES
from smsconsole.services.campaigns.words import when_lines, who_lines
from smsconsole.services.errors import ServiceError

REFRESH_SECONDS = 1.0
EMPTY_HINT = "No campaigns yet. Press a to create one: type, When, Who, What, a test, then schedule."
TYPE_SHORT = {"one_time": "once", "multiple_dates": "dates", "recurring": "repeat", "action": "action",
              "inaction": "inaction", "date": "on date"}


def short_time(at: Any) -> str:
    return "-" if at is None else at.strftime("%m-%d %H:%M")


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class CampaignsScreen(CampaignActions):
    MODE = "campaigns"
    MAIN = "#campaigns-table"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "add", "New", id="campaigns.new", tooltip="Create a campaign with the wizard"),
        Binding("e", "edit", "Edit", id="campaigns.edit", tooltip="Edit the highlighted campaign in the wizard"),
        Binding("p", "toggle_pause", "Pause/resume", id="campaigns.pause",
                tooltip="Pause the highlighted campaign (nothing of it leaves), or resume it"),
        Binding("x", "stop", "Stop", id="campaigns.stop", tooltip="Stop the highlighted campaign (asks first)"),
        Binding("c", "copy", "Copy", id="campaigns.duplicate", tooltip="Duplicate the highlighted campaign as a draft"),
        Binding("d,delete", "delete", "Delete", id="campaigns.delete",
                tooltip="Delete the highlighted campaign (asks first; sent messages keep their history)"),
        Binding("r", "refresh", "Refresh", id="campaigns.refresh", show=False, tooltip="Read the campaigns now"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.campaigns: dict[str, Any] = {}
        self._select: str | None = None

    def compose_body(self) -> ComposeResult:
        with Vertical(id="campaigns-body"):
            with Vertical(id="campaigns-list", classes="panel") as panel:
                panel.border_title = "Campaigns (enter: open)"
                yield DataTable(id="campaigns-table", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="campaigns-detail", classes="panel") as detail:
                detail.border_title = "Details"
                yield Static(EMPTY_HINT, id="campaign-detail")

    def on_mount(self) -> None:
        table = self.query_one("#campaigns-table", DataTable)
        for label, key in (("ID", "code"), ("Name", "name"), ("Status", "state"), ("Type", "type"),
                           ("Next run", "next"), ("Last run", "progress"), ("Sent/failed", "counts")):
            table.add_column(label, key=key)
        self.start_live(REFRESH_SECONDS, self.load_campaigns)

    @property
    def table(self) -> DataTable[Any]:
        return self.query_one("#campaigns-table", DataTable)

    def current_campaign(self) -> Any | None:
        return self.campaigns.get(cursor_row_key(self.table) or "")

    @work(exclusive=True, group="campaigns-load", exit_on_error=False)
    async def load_campaigns(self) -> None:
        runtime = await self.runtime()
        async with runtime.factory() as session:
            views = await crud.list_campaigns(session)
        self.campaigns = {view.code: view for view in views}
        name_width = 28 if self.app.size.width >= 100 else 14
        with self.app.batch_update():
            sync_rows(self.table, {view.code: (view.code, shorten(view.name, name_width), state_words(view.state),
                                               TYPE_SHORT.get(view.type, view.type), short_time(view.next_run_at),
                                               progress_bar(view.last_run), short_counts(view.last_run))
                                   for view in views})
            if self._select in self.campaigns:
                self.table.move_cursor(row=self.table.get_row_index(self._select))
            self._select = None
            self._show_detail()

    @on(DataTable.RowHighlighted, "#campaigns-table")
    def _show_detail(self) -> None:
        detail = self.query_one("#campaign-detail", Static)
        view = self.current_campaign()
        if view is None:
            detail.update(EMPTY_HINT)
            return
        text = Text.assemble((f"{view.name} ", "bold"), (f"{view.code} · ", "dim"), state_words(view.state))
        if view.blocked_reason:
            text.append(f"\n⚠ {view.blocked_reason}", style="bold red")
        document = {**view.document, "type": view.type}
        for line in (who_lines(document) if view.type in LIVE_TYPES else when_lines(document))[:1]:
            text.append(f"\n{line}")
        run = view.last_run
        if run is not None:
            text.append(f"\nrun {run.number} ({run.state}): ", style="dim")
            text.append_text(counts_text(counts_of(run)))
            if held := held_back_text(run):
                text.append("\n")
                text.append_text(held)
        detail.update(text)

    def campaign_changed(self, code: str | None = None) -> None:
        if code:
            self._select = code
        self.action_refresh()

    # --- keys --------------------------------------------------------------------------------

    def action_add(self) -> None:
        self.new_campaign()

    @on(DataTable.RowSelected, "#campaigns-table")
    def _open(self) -> None:
        if (view := self.current_campaign()) is not None:
            self.app.push_screen(CampaignPageScreen(view.code), lambda _: self.action_refresh())

    # --- from the palette --------------------------------------------------------------------

    def open_campaign(self, code: str) -> None:
        self.app.push_screen(CampaignPageScreen(code), lambda _: self.action_refresh())

    @work(exclusive=True, group="campaigns-palette", exit_on_error=False)
    async def apply_to(self, code: str, action: str) -> None:
        runtime = await self.runtime()
        try:
            async with runtime.factory() as session:
                view = await crud.get_campaign(session, code)
        except ServiceError as exc:
            self.notify(str(exc), severity="error")
            return
        self._select = view.code
        if action == "stop":
            self.stop_asking(view)
        else:
            self.apply(f"{action}_campaign", view, {"pause": "Paused", "resume": "Resumed"}[action])
