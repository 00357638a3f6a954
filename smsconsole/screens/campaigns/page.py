"""A campaign's page: its choices in words and its runs with live counts (queued, sent, delivered,
failed, suppressed and why), refreshed while shown; pause, resume, stop and edit from here. A live
campaign shows its live panel instead of runs: the trigger in words, waits pending, today's
counts (triggered, queued, cancelled by the follow-up event, held back by reason) and the latest
messages it queued, as they come (services/campaigns/live/stats.py, read once a second).

Below, the campaign's report (screens/campaigns/report_panel.py: arms, funnel, chart, lift,
breakdowns), read from the rollups with the rest (its series every SERIES_SECONDS); the page
scrolls at 80×24. `o` exports the report to a CSV or JSON file."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from smsconsole import clock
from smsconsole.screens.campaigns.actions import (
    CampaignActions,
    counts_of,
    counts_text,
    held_back_text,
    state_words,
)
from smsconsole.screens.campaigns.report_panel import ReportPanel
from smsconsole.screens.campaigns.summary_preflight import run_preflight_text
from smsconsole.screens.campaigns.words import STATE_STYLES
from smsconsole.screens.dialogs.report_export import ExportReportDialog
from smsconsole.screens.widgets.formatting import format_time
from smsconsole.screens.widgets.tables import cursor_row_key, sync_rows
from smsconsole.services.campaigns import crud
from smsconsole.services.campaigns.definition import LIVE_TYPES, parse_document
from smsconsole.services.campaigns.live.stats import (
    LiveStats,
    held_back_words,
    live_stats,
)
from smsconsole.services.campaigns.report import (
    CampaignReport,
    build_report,
    write_report,
)
from smsconsole.services.campaigns.words import (
    trigger_sentence,
    what_lines,
    when_lines,
    who_lines,
)
from smsconsole.services.compliance.views import latest_run_preflight
from smsconsole.services.errors import NotFound
from smsconsole.services.messages import state_words as message_state_words

REFRESH_SECONDS = 1.0
SERIES_SECONDS = 10.0  # the report's series (its cost grows with a long campaign's minutes) is read this often
WIDE_TABLE = 110  # columns from which the report's table adds assigned, replies, opt-outs and cost


def _number(value: int) -> Text:
    return Text(f"{value:,}", justify="right", style="" if value else "dim")


def live_text(kind: str, document: Any, stats: LiveStats) -> Text:
    """The live panel's figures in three or four lines: the trigger; what is pending and today's
    counts; who was held back today and the target."""
    today = stats.today
    text = Text.assemble(("Trigger ", "bold"), trigger_sentence(kind, document.who.trigger,
                                                                user_timezone=document.when.user_timezone), "\n")
    if kind in ("inaction", "date"):
        pending = stats.waits_pending if kind == "inaction" else stats.dues_pending
        text.append("Pending ", style="bold")
        text.append(f"{stats.count_words(pending)} {'waits' if kind == 'inaction' else 'due dates'}",
                    style="cyan" if pending else "dim")
        text.append(" · ", style="dim")
    text.append("Today ", style="bold")
    parts = [("triggered", today.get("triggered", 0), ""), ("queued", today.get("queued", 0), "green")]
    if kind == "inaction":
        follow_up = document.who.trigger.cancel_event if document.who.trigger else None
        parts.append((f"cancelled by {follow_up or 'the follow-up'}", today.get("waits_cancelled", 0), "magenta"))
    for index, (label, value, style) in enumerate(parts):
        if index:
            text.append(" · ", style="dim")
        text.append(f"{value:,} {label}", style=style if value else "dim")
    text.append("\n")
    if held := stats.held_back_today:
        text.append("Held back today ", style="bold")
        text.append(held_back_words(held), style="yellow")
        text.append(" · ", style="dim")
    target = document.who.target_limit
    if target:
        text.append("Target ", style="bold")
        text.append(f"{stats.queued_total:,} of {target:,}")
    else:
        text.append("In all ", style="bold")
        text.append(f"{stats.queued_total:,} queued, no target limit")
    return text


def _fire_cells(fire: Any) -> tuple[Any, ...]:
    source = (f"wait: {fire.event_name}" if fire.from_wait else fire.event_name) if fire.event_name else \
        ("wait" if fire.from_wait else "date")
    style = STATE_STYLES.get(fire.state, {"delivered": "green", "failed": "red", "suppressed": "magenta",
                                          "control": "dim"}.get(fire.state, ""))
    state = Text(message_state_words(fire.state), style=style)
    if fire.reason and fire.state in ("suppressed", "failed", "held"):
        state.append(f" ({fire.reason})", style="dim")
    return (format_time(fire.created_at, seconds=True), fire.to_number, source, state)


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
        Binding("o", "export", "Export", id="campaign-page.export",
                tooltip="Write the report to a file: CSV or JSON by its extension"),
        Binding("r", "refresh", "Refresh", id="campaign-page.refresh", show=False, tooltip="Read the runs now"),
    ]

    def __init__(self, code: str) -> None:
        super().__init__()
        self.code = code
        self.campaign: Any | None = None
        self.runs: dict[str, Any] = {}
        self.live = False
        self._laid_out = False
        self.report: CampaignReport | None = None
        self._series_read = 0.0  # time.monotonic() of the last series read

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="campaign-page"):
            yield Static("", id="campaign-head")
            yield Static("", id="campaign-preflight")
            with Horizontal(id="campaign-page-main"):
                with VerticalScroll(id="campaign-choices-panel", classes="panel") as choices:
                    choices.border_title = "Choices"
                    yield Static("", id="campaign-choices")
                with Vertical(id="campaign-runs", classes="panel") as runs:
                    runs.border_title = "Runs"
                    yield Static("", id="campaign-live-figures")
                    yield DataTable(id="campaign-fires-table", cursor_type="row", zebra_stripes=True)
                    yield DataTable(id="campaign-runs-table", cursor_type="row", zebra_stripes=True)
                    yield Static("No runs yet.", id="campaign-run-detail")
            report = ReportPanel(id="campaign-report", classes="panel")
            report.border_title = "Report"
            yield report

    def on_mount(self) -> None:
        table = self.query_one("#campaign-runs-table", DataTable)
        for label, key in (("#", "number"), ("Planned", "planned"), ("State", "state"), ("Qualified", "qualified"),
                           ("Queued", "queued"), ("Sent", "sent"), ("Deliv", "delivered"), ("Failed", "failed"),
                           ("Suppr", "suppressed")):
            table.add_column(label, key=key)
        fires = self.query_one("#campaign-fires-table", DataTable)
        for label, key in (("Queued at", "at"), ("To", "to"), ("From", "source"), ("State", "state")):
            fires.add_column(label, key=key)
        self._show_live(False)
        self.query_one("#campaign-preflight").display = False
        self.start_live(REFRESH_SECONDS, self.load_page)

    def _show_live(self, live: bool) -> None:
        """The live panel (figures and latest fires) or the runs, as the campaign's type says."""
        if self.live == live and self._laid_out:
            return
        self.live, self._laid_out = live, True
        self.MAIN = "#campaign-fires-table" if live else "#campaign-runs-table"
        for selector in ("#campaign-live-figures", "#campaign-fires-table"):
            self.query_one(selector).display = live
        for selector in ("#campaign-runs-table", "#campaign-run-detail"):
            self.query_one(selector).display = not live
        self.query_one("#campaign-runs").border_title = "Live: the latest messages as they come" if live else "Runs"
        if live and self.focused is self.query_one("#campaign-runs-table"):
            self.focus_main()

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
                preflight = await latest_run_preflight(session, self.code)
                known = {b.name: b.currency for b in self.report.providers if b.currency} if self.report else None
                moment = time.monotonic()
                with_series = self.report is None or moment - self._series_read >= SERIES_SECONDS
                report = await build_report(session, campaign.id, known_currencies=known, with_series=with_series)
                stats = None
                if campaign.type in LIVE_TYPES:
                    document, _ = parse_document({**campaign.document, "type": campaign.type})
                    stats = await live_stats(session, campaign.id, document, now=clock.now())
        except NotFound:
            self.notify(f"Campaign {self.code} is gone.", severity="warning")
            self.dismiss(None)
            return
        self.campaign = campaign
        self.runs = {str(run.number): run for run in runs}
        if with_series:
            self._series_read = moment
        elif self.report is not None:  # the chart keeps the series read a few seconds ago
            report = replace(report, bucket_minutes=self.report.bucket_minutes, series=self.report.series)
        self.report = report
        self._show(campaign, runs, upcoming)
        stopped = self.query_one("#campaign-preflight", Static)
        stopped.update(run_preflight_text(preflight) if preflight is not None else "")
        stopped.display = preflight is not None
        self.query_one(ReportPanel).show(report, wide=self.size.width >= WIDE_TABLE)
        if stats is not None:
            self._show_live_stats(campaign, document, stats)

    def _show_live_stats(self, campaign: Any, document: Any, stats: LiveStats) -> None:
        with self.app.batch_update():
            self._show_live(True)
            self.query_one("#campaign-live-figures", Static).update(live_text(campaign.type, document, stats))
            sync_rows(self.query_one("#campaign-fires-table", DataTable),
                      {str(fire.message_id): _fire_cells(fire) for fire in stats.latest})

    def _show(self, campaign: Any, runs: list[Any], upcoming: list[Any]) -> None:
        head = Text.assemble((f"{campaign.name} ", "bold"), (f"{campaign.code} · ", "dim"), state_words(campaign.state),
                             (f" · next run {format_time(campaign.next_run_at)}" if campaign.next_run_at else "", ""))
        run = campaign.last_run
        if campaign.type in LIVE_TYPES and run is not None and run.state in ("live", "paused") and run.started_at:
            head.append(f" · live since {format_time(run.started_at)}", style="dim")
        if campaign.blocked_reason:
            hint = ("resume (p) once fixed, or stop (x)" if campaign.blocked_reason.startswith("preflight")
                    else "raise the safety limit (e) and resume (p), or stop (x)")
            head.append(f"\n⚠ {campaign.blocked_reason} — {hint}", style="bold red")
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

    def action_export(self) -> None:
        if self.campaign is None:
            self.notify("The campaign is still being read.", severity="warning")
            return
        self.export_report(self.campaign.id, self.campaign.code)

    @work(exclusive=True, group="campaign-page-export", exit_on_error=False)
    async def export_report(self, campaign_id: int, code: str) -> None:
        runtime = await self.runtime()

        async def write(path: str) -> Any:
            async with runtime.factory() as session:
                report = await build_report(session, campaign_id)
            return write_report(report, path)

        written = await self.app.push_screen_wait(ExportReportDialog(code, write, path=f"{code}-report.csv"))
        if written is not None:
            self.notify(f"Wrote the report of {code} to {written.resolve()}.", title="Report exported")

    def action_close(self) -> None:
        self.dismiss(None)

    def campaign_deleted(self, view: Any) -> None:
        self.dismiss(None)
