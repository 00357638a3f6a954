"""A campaign's page: its choices in words and its runs with live counts (queued, sent, delivered,
failed, suppressed and why), refreshed while shown; pause, resume, stop and edit from here."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from smsconsole.screens.campaigns.actions import (
    CampaignActions,
    counts_of,
    counts_text,
    held_back_text,
    state_words,
)
from smsconsole.screens.campaigns.words import what_lines, when_lines, who_lines
from smsconsole.screens.widgets.formatting import format_time
from smsconsole.screens.widgets.tables import cursor_row_key, sync_rows
from smsconsole.services.campaigns import crud
from smsconsole.services.errors import NotFound

REFRESH_SECONDS = 1.0


def _number(value: int) -> Text:
    return Text(f"{value:,}", justify="right", style="" if value else "dim")


def _run_cells(run: Any) -> tuple[Any, ...]:
    counts = counts_of(run)
    return (str(run.number), format_time(run.planned_at), state_words(run.state), _number(run.qualified or 0),
            _number(counts.queued + counts.held), _number(counts.sent + counts.sending), _number(counts.delivered),
            _number(counts.failed + counts.undelivered), _number(counts.suppressed))


class CampaignPageScreen(CampaignActions):
    MODE = "campaigns"
    MAIN = "#campaign-runs-table"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back", id="campaign-page.close", tooltip="Back to the campaigns"),
        Binding("e", "edit", "Edit", id="campaign-page.edit", tooltip="Edit in the wizard (future runs only)"),
        Binding("p", "toggle_pause", "Pause/resume", id="campaign-page.pause",
                tooltip="Pause the campaign (nothing of it leaves), or resume it"),
        Binding("x", "stop", "Stop", id="campaign-page.stop", tooltip="Stop the campaign (asks first)"),
        Binding("r", "refresh", "Refresh", id="campaign-page.refresh", show=False, tooltip="Read the runs now"),
    ]

    def __init__(self, code: str) -> None:
        super().__init__()
        self.code = code
        self.campaign: Any | None = None
        self.runs: dict[str, Any] = {}

    def compose_body(self) -> ComposeResult:
        with Vertical(id="campaign-page"):
            yield Static("", id="campaign-head")
            with Horizontal(id="campaign-page-main"):
                with VerticalScroll(id="campaign-choices-panel", classes="panel") as choices:
                    choices.border_title = "Choices"
                    yield Static("", id="campaign-choices")
                with Vertical(id="campaign-runs", classes="panel") as runs:
                    runs.border_title = "Runs"
                    yield DataTable(id="campaign-runs-table", cursor_type="row", zebra_stripes=True)
                    yield Static("No runs yet.", id="campaign-run-detail")

    def on_mount(self) -> None:
        table = self.query_one("#campaign-runs-table", DataTable)
        for label, key in (("#", "number"), ("Planned", "planned"), ("State", "state"), ("Qualified", "qualified"),
                           ("Queued", "queued"), ("Sent", "sent"), ("Deliv", "delivered"), ("Failed", "failed"),
                           ("Suppr", "suppressed")):
            table.add_column(label, key=key)
        self.start_live(REFRESH_SECONDS, self.load_page)

    def current_campaign(self) -> Any | None:
        return self.campaign

    @work(exclusive=True, group="campaign-page-load", exit_on_error=False)
    async def load_page(self) -> None:
        runtime = await self.runtime()
        try:
            async with runtime.factory() as session:
                campaign = await crud.get_campaign(session, self.code)
                runs = await crud.list_runs(session, self.code)
                upcoming = await crud.upcoming_runs(session, self.code, limit=3)
        except NotFound:
            self.notify(f"Campaign {self.code} is gone.", severity="warning")
            self.dismiss(None)
            return
        self.campaign = campaign
        self.runs = {str(run.number): run for run in runs}
        self._show(campaign, runs, upcoming)

    def _show(self, campaign: Any, runs: list[Any], upcoming: list[Any]) -> None:
        head = Text.assemble((f"{campaign.name} ", "bold"), (f"{campaign.code} · ", "dim"), state_words(campaign.state),
                             (f" · next run {format_time(campaign.next_run_at)}" if campaign.next_run_at else "", ""))
        if campaign.blocked_reason:
            head.append(f"\n⚠ {campaign.blocked_reason} — raise the safety limit (e) and resume (p), or stop (x)",
                        style="bold red")
        document = {**campaign.document, "type": campaign.type}
        choices = Text()
        for title, lines in (("When", when_lines(document)), ("Who", who_lines(document)),
                             ("What", what_lines(document))):
            choices.append(f"{title}\n", style="bold")
            for line in lines:
                choices.append(f" {line}\n")
        if upcoming:
            choices.append("Next runs\n", style="bold")
            for moment in upcoming:
                choices.append(f" {format_time(moment)}\n")
        with self.app.batch_update():
            self.query_one("#campaign-head", Static).update(head)
            choices.rstrip()
            self.query_one("#campaign-choices", Static).update(choices)
            sync_rows(self.query_one("#campaign-runs-table", DataTable),
                      {str(run.number): _run_cells(run) for run in sorted(runs, key=lambda r: -r.number)})
            self._show_run()

    @on(DataTable.RowHighlighted, "#campaign-runs-table")
    def _show_run(self) -> None:
        detail = self.query_one("#campaign-run-detail", Static)
        run = self.runs.get(cursor_row_key(self.query_one("#campaign-runs-table", DataTable)) or "")
        if run is None:
            detail.update("No runs yet.")
            return
        text = Text.assemble((f"Run {run.number} ", "bold"), state_words(run.state),
                             (f" · planned {format_time(run.planned_at)}", "dim"))
        if run.reason:
            text.append(f"\n{run.reason}", style="yellow")
        text.append("\n")
        text.append_text(counts_text(counts_of(run)))
        if held := held_back_text(run):
            text.append("\n")
            text.append_text(held)
        detail.update(text)

    def action_close(self) -> None:
        self.dismiss(None)

    def campaign_deleted(self, view: Any) -> None:
        self.dismiss(None)
