"""The console app: sections as modes, palette commands, the engine run in-process (or the banner
naming the process that runs it), and the runtime every screen works through."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import signal
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.screen import Screen
from textual.worker import Worker

from smsconsole.config import Config
from smsconsole.db import DatabaseError
from smsconsole.messages import TestMessageQueued
from smsconsole.runtime import Runtime
from smsconsole.screens.sections import SECTIONS
from smsconsole.screens.widgets import tables as _tables  # noqa: F401  (DataTable redraws at new widths)
from smsconsole.screens.widgets.errors import report_worker_error
from smsconsole.screens.widgets.top_bar import EngineInfo
from smsconsole.secrets import SecretError

if TYPE_CHECKING:
    from textual.command import Provider

    from smsconsole.engine.runner import Engine

ENGINE_STATUS_SECONDS = 1.0
ENGINE_START_WAIT = 3.0  # seconds the engine waits for the first screen to show its data
SECTION_GROUP = Binding.Group("Sections", compact=True)


# Each section's screen (and the services behind it) is imported when the section is first opened,
# so the first frame waits only for Home.
SCREENS_BY_MODE = {
    "home": "smsconsole.screens.home:HomeScreen",
    "providers": "smsconsole.screens.providers:ProvidersScreen",
    "test-send": "smsconsole.screens.send_test:SendTestScreen",
    "settings": "smsconsole.screens.settings:SettingsScreen",
    "audience": "smsconsole.screens.audience.search:AudienceScreen",
    "segments": "smsconsole.screens.segments.screen:SegmentsScreen",
    "groups": "smsconsole.screens.groups:GroupsScreen",
    "inbox": "smsconsole.screens.inbox:InboxScreen",
    "stats": "smsconsole.screens.stats:StatsScreen",
    "campaigns": "smsconsole.screens.campaigns.screen:CampaignsScreen",
}


def _load(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _section(target: str) -> Callable[[], Screen[Any]]:
    def make() -> Screen[Any]:
        return _load(target)()

    make.__qualname__ = make.__name__ = target.rpartition(":")[2]
    return make


def _provider_commands() -> type[Provider]:
    return _load("smsconsole.screens.commands:ProviderCommands")


def _group_commands() -> type[Provider]:
    return _load("smsconsole.screens.commands:GroupCommands")


def _campaign_commands() -> type[Provider]:
    return _load("smsconsole.screens.commands:CampaignCommands")


class SmsConsoleApp(App[None]):
    TITLE = "smsconsole"
    CSS_PATH = "smsconsole.tcss"
    MODES: ClassVar[dict[str, Any]] = {mode: _section(target) for mode, target in SCREENS_BY_MODE.items()}
    DEFAULT_MODE = "home"
    COMMANDS = App.COMMANDS | {_provider_commands, _group_commands, _campaign_commands}
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]  # noqa: RUF012 (declared by App)
    # The digits and q reach the app only when the focused widget does not take printable keys;
    # the F-keys are priority bindings, so no widget shadows them (a TextArea binds F6 and F7).
    BINDINGS: ClassVar[list[BindingType]] = [
        *(Binding(section.key, f"switch_mode('{section.mode}')", section.title,
                  id=f"app.{section.mode}", tooltip=section.tooltip, group=SECTION_GROUP) for section in SECTIONS),
        *(Binding(section.fkey, f"switch_mode('{section.mode}')", section.title, priority=True,
                  id=f"app.{section.mode}-fkey", tooltip=section.tooltip, group=SECTION_GROUP) for section in SECTIONS),
        Binding("q", "quit", "Quit", id="app.quit", tooltip="Quit (the engine stops and hands over its lease)"),
        Binding("question_mark", "help", "Keys", show=False, id="app.help",
                tooltip="Show or hide the keys of the focused screen and widget"),
    ]

    engine_info: reactive[EngineInfo] = reactive(EngineInfo("engine: starting", short="starting"))

    def __init__(self, config: Config, *, runtime: Runtime | None = None, run_engine: bool = True,
                 cursor_blink: bool = True) -> None:
        super().__init__()
        self.config = config
        self.run_engine = run_engine
        self.cursor_blink = cursor_blink
        self.engine: Engine | None = None
        self._runtime = runtime
        self._owns_runtime = runtime is None
        self._runtime_ready = asyncio.Event()
        self._engine_stop = asyncio.Event()
        self._engine_task: asyncio.Task[None] | None = None

    async def runtime(self) -> Runtime:
        """The runtime, waiting for it to open if need be."""
        await self._runtime_ready.wait()
        assert self._runtime is not None
        return self._runtime

    def on_mount(self) -> None:
        # An SSH disconnect (SIGHUP) or a kill (SIGTERM) exits like `q`, so the lease is released.
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGHUP, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.exit)
        self.open_runtime()
        # the in-process engine's state is in memory; another process's lease is read at heartbeat pace
        interval = ENGINE_STATUS_SECONDS if self.run_engine else max(ENGINE_STATUS_SECONDS, self.config.heartbeat_seconds)
        self.set_interval(interval, self._refresh_engine_info)

    @work(exclusive=True, group="app-runtime", exit_on_error=False)
    async def open_runtime(self) -> None:
        if self._runtime is None:
            try:
                self._runtime = await Runtime.open(self.config)
            except (DatabaseError, SecretError) as exc:
                self.exit(return_code=2, message=f"smsconsole: error: {exc}")
                return
        self._runtime_ready.set()
        if self.run_engine:
            self.call_after_refresh(self.start_engine)
        self._refresh_engine_info()

    @work(exclusive=True, group="app-engine-start", exit_on_error=False)
    async def start_engine(self) -> None:
        """Start the in-process engine once the first frame is on screen with its data. Its code
        (dispatcher, providers, listener) is imported in a thread, so the screen keeps answering
        meanwhile; imports hold the interpreter's lock, so they wait until the screen has read its
        data (at most ENGINE_START_WAIT seconds) rather than slow that first read down."""
        await self._first_data_shown()
        runner = await asyncio.to_thread(importlib.import_module, "smsconsole.engine.runner")
        if self._engine_stop.is_set() or self._runtime is None:  # quit while it was loading
            return
        self.engine = runner.Engine(self._runtime.factory, self._runtime.box, self.config)
        self._engine_task = asyncio.create_task(self.engine.run(self._engine_stop), name="engine")
        self._refresh_engine_info()

    async def _first_data_shown(self) -> None:
        """Until the screen shown first has no worker left running (its first read is done)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ENGINE_START_WAIT
        while loop.time() < deadline and not self._engine_stop.is_set():
            screen = self.screen
            if not any(worker.node is screen and not worker.is_finished for worker in self.workers):
                return
            await asyncio.sleep(0.02)

    # --- engine ------------------------------------------------------------------------------

    def _refresh_engine_info(self) -> None:
        if self.engine is not None:
            status = self.engine.status
            tone = {"running": "here", "standby": "elsewhere"}.get(status.state.value, "none")
            if status.state.value == "standby" and status.holder is None:
                tone = "none"
            short = {"here": "running here"}.get(tone) or (
                f"on {status.holder.host}" if tone == "elsewhere" and status.holder else status.state.value)
            self.engine_info = EngineInfo(status.describe(), tone, short)
        elif self._runtime_ready.is_set() and not self.run_engine:  # the engine, while it loads, stays "starting"
            self._read_lease()

    @work(exclusive=True, group="app-engine-status", exit_on_error=False)
    async def _read_lease(self) -> None:
        from smsconsole.engine import lease

        runtime = await self.runtime()
        async with runtime.factory() as session:
            holder = await lease.current(session)
        if holder is not None and holder.alive:
            self.engine_info = EngineInfo(f"engine: on {holder.host} pid {holder.pid}", "elsewhere", f"on {holder.host}")
        else:
            self.engine_info = EngineInfo("engine: not running", "none", "not running")

    def on_test_message_queued(self, _: TestMessageQueued) -> None:
        if self.engine is not None:
            self.engine.poke()

    async def on_unmount(self) -> None:
        self._engine_stop.set()
        if self._engine_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._engine_task, timeout=10)
        if self._owns_runtime and self._runtime is not None:
            await self._runtime.close()

    # --- app-wide behaviour ------------------------------------------------------------------

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        report_worker_error(self, event)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # a dialog asks its question first: section keys (the F-keys too) wait until it is closed
        return not (action == "switch_mode" and self.screen.is_modal)

    def action_help(self) -> None:
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        if not self.cursor_blink and hasattr(event.widget, "cursor_blink"):
            event.widget.cursor_blink = False

    # --- command palette ---------------------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield SystemCommand("Home", "Engine status, provider health and today's counts",
                            lambda: self.switch_mode("home"))
        yield SystemCommand("Providers", "List, add, edit, remove and test providers",
                            lambda: self.switch_mode("providers"))
        yield SystemCommand("Add provider", "Connect a new SMS provider", self.add_provider)
        yield SystemCommand("Send test SMS", "Send a test message and watch its status",
                            lambda: self.switch_mode("test-send"))
        yield SystemCommand("Open settings", "Default region, callback URL, configuration, audit log",
                            lambda: self.switch_mode("settings"))
        yield SystemCommand("Audience", "Find a person by phone, user id or name; import profiles or events",
                            lambda: self.switch_mode("audience"))
        yield SystemCommand("Segments", "Saved segments: build one, estimate its reach",
                            lambda: self.switch_mode("segments"))
        yield SystemCommand("Provider groups", "Priority order, failover, countries, live health",
                            lambda: self.switch_mode("groups"))
        yield SystemCommand("Inbox", "Replies as they arrive, with the keyword matched and the action taken",
                            lambda: self.switch_mode("inbox"))
        yield SystemCommand("Delivery stats", "Live delivery per provider; open a message's path",
                            lambda: self.switch_mode("stats"))
        yield SystemCommand("Campaigns", "Campaigns with their runs and live counts",
                            lambda: self.switch_mode("campaigns"))
        yield SystemCommand("New campaign", "Create a campaign: type, When, Who, What, test, schedule",
                            self.new_campaign)
        yield from super().get_system_commands(screen)

    def _section_screen(self, mode: str) -> Any:
        """The current screen if it is `mode`'s section screen (its class is loaded by now)."""
        return self.screen if isinstance(self.screen, _load(SCREENS_BY_MODE[mode])) else None

    async def add_provider(self) -> None:
        await self.switch_mode("providers")
        if (screen := self._section_screen("providers")) is not None:
            screen.action_add()

    async def edit_provider(self, name: str) -> None:
        await self.switch_mode("providers")
        if (screen := self._section_screen("providers")) is not None:
            screen.edit_provider(name)

    async def edit_group(self, name: str) -> None:
        await self.switch_mode("groups")
        if (screen := self._section_screen("groups")) is not None:
            screen.edit_group(name)

    async def make_default_group(self, name: str) -> None:
        await self.switch_mode("groups")
        if (screen := self._section_screen("groups")) is not None:
            screen.set_default(name)

    async def new_campaign(self) -> None:
        await self.switch_mode("campaigns")
        if (screen := self._section_screen("campaigns")) is not None:
            screen.action_add()

    async def open_campaign(self, code: str) -> None:
        await self.switch_mode("campaigns")
        if (screen := self._section_screen("campaigns")) is not None:
            screen.open_campaign(code)

    async def campaign_action(self, code: str, action: str) -> None:
        await self.switch_mode("campaigns")
        if (screen := self._section_screen("campaigns")) is not None:
            screen.apply_to(code, action)

    async def test_provider_connection(self, name: str) -> None:
        await self.switch_mode("providers")
        if (screen := self._section_screen("providers")) is not None:
            screen.test_connection(name)
