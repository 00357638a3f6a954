"""Home: who runs the engine, the providers with their health, circuit and last hour's traffic, and
the live delivery monitor (sent, delivered, undelivered, failed, unknown and replies for the last
hour and today, with the per-minute throughput) — refreshed from the database every second. The
counts come from the rollups (services/stats.py reads stat_traffic and stat_series, which database
triggers keep as messages change state): a refresh reads the rollup rows of its windows (a few
dozen a minute at 100,000 messages a day), never the messages table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Sparkline, Static

from smsconsole.engine import lease
from smsconsole.screens.base import LiveSectionScreen
from smsconsole.screens.widgets.formatting import (
    format_time,
    health_circuit_text,
    health_text,
    short_database_url,
    throughput_caption,
)
from smsconsole.screens.widgets.tables import cursor_row_key, sync_rows
from smsconsole.secrets import mask_url
from smsconsole.services.campaigns.alerts import BlockedCampaign, blocked_campaigns
from smsconsole.services.providers import ProviderView, list_providers
from smsconsole.services.stats import (
    DeliveryCounts,
    DeliveryStats,
    counts_by_provider,
    delivery_stats,
    window_start,
)
from smsconsole.services.workers import (
    WorkerView,
    describe_binds,
    live_workers,
    summarize,
)

REFRESH_SECONDS = 1.0


@dataclass(frozen=True)
class HomeSnapshot:
    providers: list[ProviderView]
    hour: DeliveryStats
    today: DeliveryCounts
    holder: lease.LeaseInfo | None
    blocked: list[BlockedCampaign]
    workers: list[WorkerView]


MONITOR_ROWS = (("sent", "sent", ""), ("delivered", "delivered", "green"), ("undelivered", "undelivered", "yellow"),
                ("failed", "failed", "red"), ("unknown", "unknown", "yellow"), ("replies", "replies", "cyan"),
                ("waiting", "waiting", "cyan"))


class HomeScreen(LiveSectionScreen):
    MODE = "home"
    MAIN = "#home-providers-table"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "refresh", "Refresh", id="home.refresh", tooltip="Read the database again now"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._workers: list[WorkerView] = []
        self._providers: dict[str, ProviderView] = {}
        self._holder: lease.LeaseInfo | None = None

    def compose_body(self) -> ComposeResult:
        yield Static("", id="home-campaign-alert", markup=False)
        with Horizontal(id="home-body"):
            with Vertical(id="home-providers", classes="panel") as panel:
                panel.border_title = "Providers (last hour)"
                yield DataTable(id="home-providers-table", cursor_type="row", zebra_stripes=True)
                yield Static("No providers yet: press 2, then a to add one (Sandbox needs no account).",
                             id="home-provider-detail", markup=False)
            with Vertical(id="home-side"):
                with Vertical(id="home-counts", classes="panel") as counts:
                    counts.border_title = "Delivery (UTC)"
                    yield DataTable(id="home-counts-table", cursor_type="none", cell_padding=0)
                    yield Sparkline([0] * 60, id="home-sparkline")
                    yield Static("", id="home-throughput", markup=False)
                with Vertical(id="home-engine", classes="panel") as engine:
                    engine.border_title = "Engine"
                    yield Static("", id="home-engine-detail", markup=False)

    def on_mount(self) -> None:
        providers = self.query_one("#home-providers-table", DataTable)
        providers.add_column("Name", key="name")
        providers.add_column("Health", key="health")
        providers.add_column("Sent", key="sent")
        providers.add_column("Fail", key="failed")
        counts = self.query_one("#home-counts-table", DataTable)
        counts.add_column("", key="state", width=12)
        counts.add_column("   1 h", key="hour", width=6)
        counts.add_column(" today", key="today", width=6)
        self.query_one("#home-campaign-alert").display = False
        self.start_live(REFRESH_SECONDS, self.refresh_home)
        self.watch(self.app, "engine_info", lambda _: self._show_engine(self._holder), init=False)

    @work(exclusive=True, group="home-refresh", exit_on_error=False)
    async def refresh_home(self) -> None:
        runtime = await self.runtime()
        async with runtime.factory() as session:
            snapshot = HomeSnapshot(
                providers=await list_providers(session),
                hour=await delivery_stats(session, "hour"),
                today=(await counts_by_provider(session, window_start("today")))[0],
                holder=await lease.current(session),
                blocked=await blocked_campaigns(session),
                workers=await live_workers(session),
            )
        self._show(snapshot)

    def _show(self, snapshot: HomeSnapshot) -> None:
        self._providers = {view.name: view for view in snapshot.providers}
        with self.app.batch_update():
            by_provider = snapshot.hour.by_provider
            sync_rows(self.query_one("#home-providers-table", DataTable), {
                view.name: (view.name, health_circuit_text(view.health, view.circuit_state, view.circuit_until),
                            _count(by_provider.get(view.name, DeliveryCounts()).sent, ""),
                            _count(by_provider.get(view.name, DeliveryCounts()).failed, "red"))
                for view in snapshot.providers
            })
            hour = snapshot.hour.total
            rows: dict[str, tuple[Any, ...]] = {
                key: (Text(label, style=style), _count(getattr(hour, key), style),
                      _count(getattr(snapshot.today, key), style))
                for label, key, style in MONITOR_ROWS
            }
            sync_rows(self.query_one("#home-counts-table", DataTable), rows)
            self.query_one("#home-sparkline", Sparkline).data = list(snapshot.hour.per_minute)
            self.query_one("#home-throughput", Static).update(throughput_caption(snapshot.hour.per_minute, short=True))
            self._show_provider_detail()
            self._workers = snapshot.workers
            self._show_engine(snapshot.holder)
            self._show_blocked(snapshot.blocked)

    @on(DataTable.RowHighlighted, "#home-providers-table")
    def _provider_highlighted(self) -> None:
        self._show_provider_detail()

    def _show_provider_detail(self) -> None:
        detail = self.query_one("#home-provider-detail", Static)
        table = self.query_one("#home-providers-table", DataTable)
        view = self._providers.get(cursor_row_key(table) or "")
        if view is None:
            detail.update("No providers yet: press 2, then a to add one (Sandbox needs no account).")
            return
        checked = f" (checked {format_time(view.health_checked_at)})" if view.health_checked_at else ""
        line = Text.assemble((f"{view.name} ", "bold"), (f"({view.display_name}): ", "dim"),
                             health_text(view.health), checked)
        line.append(f"\n{view.health_detail}" if view.health_detail else "\nnot tested yet: press 2, then t",
                    style="dim" if not view.health_detail else "")
        if view.kind == "smpp":
            binds = describe_binds(self._workers, view.id)
            line.append("\n" + ("\n".join(f"bind: {b}" for b in binds) if binds
                                else "bind: none (no engine is running: the engine binds)"),
                        style="" if binds else "dim")
        detail.update(line)

    def _show_engine(self, holder: lease.LeaseInfo | None) -> None:
        self._holder = holder
        info = self.console.engine_info
        lines = [info.description]
        if holder is not None:
            state = "alive" if holder.alive else "expired"
            lines.append(f"lease: {holder.host} pid {holder.pid} ({state}), "
                         f"heartbeat {format_time(holder.heartbeat_at, seconds=True)}")
        else:
            lines.append("lease: free")
        if info.tone == "none":
            lines.append("queued messages wait for an engine: run `smsconsole serve`")
        url = mask_url(self.console.config.effective_database_url)
        detail = self.query_one("#home-engine-detail", Static)
        room = detail.content_region.width or 26
        lines.append(f"db: {short_database_url(url, room - len('db: '))}")  # never wrapped mid-word
        workers = self._workers
        if any(worker.role == "worker" for worker in workers):
            # several processes share the work (PostgreSQL): a summary under the engine line, each
            # process at the end with what it sent in the last minute (as many as there is room
            # for; `smsconsole workers` lists them all)
            lines.insert(1, summarize(workers).line)
            for worker in (w for w in workers if w.role != "standby"):
                role = "sched" if worker.role == "scheduler" else "work"
                lines.append(f" {role} {worker.host}:{worker.pid} {worker.sent_per_minute:,}/min"[:room])
        detail.update("\n".join(lines))
        detail.tooltip = f"database: {url}"

    def _show_blocked(self, blocked: list[BlockedCampaign]) -> None:
        """An alert line per campaign its safety check holds back (press 0 to act on it)."""
        alert = self.query_one("#home-campaign-alert", Static)
        alert.display = bool(blocked)
        alert.update("\n".join(f"⚠ {campaign.sentence} (0: Campaigns)" for campaign in blocked))

    def on_resize(self) -> None:
        self.call_after_refresh(self._show_engine, self._holder)


def _count(value: int, style: str) -> Text:
    return Text(f"{value:>6,}", style=style if value else "dim")
