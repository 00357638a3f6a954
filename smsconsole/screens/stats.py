"""Stats → Delivery: per provider, for the last hour or today, what was sent, delivered, undelivered,
failed, unknown and replied, each provider's health and circuit, a chart of the messages sent per
minute over the last 60 minutes by provider, and the latest messages (enter opens a message's whole
path). Refreshed live; the counts come from the rollups (services/stats.py), not from scanning
messages, so a refresh costs the same with a million messages as with ten."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from smsconsole.screens.base import LiveSectionScreen
from smsconsole.screens.dialogs.message_path import open_message_path
from smsconsole.screens.widgets.formatting import (
    format_time,
    health_circuit_text,
    message_detail,
    state_text,
    throughput_caption,
)
from smsconsole.screens.widgets.tables import sync_rows
from smsconsole.screens.widgets.throughput_chart import ThroughputChart
from smsconsole.services.messages import MessageView
from smsconsole.services.stats import (
    DeliveryCounts,
    DeliveryStats,
    ProviderHealth,
    delivery_stats,
    describe_rate,
    recent_messages,
)

REFRESH_SECONDS = 1.0
RECENT = 50
WINDOW_LABELS = {"hour": "last hour", "today": "today (UTC)"}
RATE_NOTE = "rate: delivered of settled"
NARROW = 100  # below this many columns Health shows its mark only, so the rate keeps its "of N"


def rate_text(counts: DeliveryCounts) -> Text:
    """Delivered of settled, with how many settled (`100% of 2`): never a bare percentage."""
    rate = counts.delivery_rate
    if rate is None:
        return Text("-", style="dim")
    return Text(describe_rate(counts), style="green" if rate >= 0.95 else "yellow" if rate >= 0.8 else "bold red")


def count_cells(counts: DeliveryCounts) -> tuple[Text, ...]:
    def cell(value: int, style: str = "") -> Text:
        return Text(f"{value:,}", style=style if value else "dim")

    return (cell(counts.sent), cell(counts.delivered, "green"), cell(counts.undelivered, "yellow"),
            cell(counts.failed, "red"), cell(counts.unknown, "yellow"), cell(counts.replies, "cyan"),
            rate_text(counts))


class StatsScreen(LiveSectionScreen):
    MODE = "stats"
    MAIN = "#stats-recent-table"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("w", "toggle_window", "Hour/today", id="stats.window",
                tooltip="Switch the window between the last hour and today"),
        Binding("r", "refresh", "Refresh", id="stats.refresh", tooltip="Read the database again now"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.window = "hour"

    def compose_body(self) -> ComposeResult:
        with Vertical(id="stats-body"):
            with Vertical(id="stats-delivery", classes="panel") as panel:
                panel.border_title = f"Delivery, {WINDOW_LABELS['hour']} ({RATE_NOTE})"
                yield DataTable(id="stats-providers-table", cursor_type="none", zebra_stripes=True)
            with Vertical(id="stats-throughput", classes="panel") as chart:
                chart.border_title = "Sent per minute by provider, last hour (UTC)"
                yield Static("", id="stats-throughput-caption", markup=False)
                yield ThroughputChart(id="stats-chart")
            with Vertical(id="stats-recent", classes="panel") as recent:
                recent.border_title = "Latest messages (enter: its path)"
                yield DataTable(id="stats-recent-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one("#stats-providers-table", DataTable)
        for label, key in (("Provider", "provider"), ("Health", "health"), ("Sent", "sent"),
                           ("Deliv", "delivered"), ("Undel", "undelivered"), ("Fail", "failed"),
                           ("Unkn", "unknown"), ("Repl", "replies"), ("Rate", "rate")):
            table.add_column(label, key=key)
        recent = self.query_one("#stats-recent-table", DataTable)
        for label, key in (("#", "id"), ("Time", "time"), ("Kind", "kind"), ("To", "to"), ("Provider", "provider"),
                           ("State", "state"), ("Detail", "detail")):
            recent.add_column(label, key=key)
        self.start_live(REFRESH_SECONDS, self.refresh_stats)

    def action_toggle_window(self) -> None:
        self.window = "today" if self.window == "hour" else "hour"
        self.query_one("#stats-delivery").border_title = f"Delivery, {WINDOW_LABELS[self.window]} ({RATE_NOTE})"
        self.action_refresh()

    @work(exclusive=True, group="stats-refresh", exit_on_error=False)
    async def refresh_stats(self) -> None:
        runtime = await self.runtime()
        async with runtime.factory() as session:
            result = await delivery_stats(session, self.window)
            messages = await recent_messages(session, limit=RECENT)
        self._show(result, messages)

    def _show(self, result: DeliveryStats, messages: list[MessageView]) -> None:
        health = {view.name: view for view in result.providers}
        rows: dict[str, tuple[Any, ...]] = {}
        for name, counts in result.by_provider.items():
            view: ProviderHealth | None = health.get(name)
            rows[name] = (name, health_circuit_text(view.health, view.circuit_state, view.circuit_until,
                                                    compact=self.app.size.width < NARROW)
                          if view else Text("-", style="dim"), *count_cells(counts))
        rows["~total"] = (Text("total", style="bold"), "", *count_cells(result.total))
        for code, counts in result.by_campaign.items():  # a line per campaign sent in the window
            label = f"{code} {result.campaign_names.get(code, '')}".strip()
            label = label if len(label) <= 14 else label[:13] + "…"
            rows[f"~campaign:{code}"] = (Text(label), Text("campaign", style="dim"),
                                         *count_cells(counts))
        with self.app.batch_update():
            sync_rows(self.query_one("#stats-providers-table", DataTable), rows)
            self.query_one("#stats-chart", ThroughputChart).show(result.per_minute_by_provider, result.last_minute,
                                                                len(result.per_minute))
            self.query_one("#stats-throughput-caption", Static).update(throughput_caption(result.per_minute))
            self.query_one("#stats-delivery").border_subtitle = (
                f"{result.total.awaiting_receipt:,} awaiting receipt · {result.total.waiting:,} waiting · "
                f"{result.total.suppressed:,} suppressed")
            sync_rows(self.query_one("#stats-recent-table", DataTable), {
                str(m.id): (str(m.id), format_time(m.created_at, seconds=True),
                            f"campaign {m.campaign}" if m.campaign else m.kind, m.to_number,
                            m.provider_name or "-", state_text(m.shown_state), message_detail(m))
                for m in messages
            })

    @on(DataTable.RowSelected, "#stats-recent-table")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.show_path(int(event.row_key.value))

    @work(exclusive=True, group="stats-path", exit_on_error=False)
    async def show_path(self, message_id: int) -> None:
        await open_message_path(self, message_id)
