"""The app factory and a waiting helper for console tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from textual import events
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import DataTable

from smsconsole.app import SmsConsoleApp
from smsconsole.config import Config
from smsconsole.runtime import Runtime


def make_app(config: Config, runtime: Runtime | None = None, *, run_engine: bool = False) -> SmsConsoleApp:
    """The app as tests use it: engine off unless asked for, no cursor blink."""
    return SmsConsoleApp(config, runtime=runtime, run_engine=run_engine, cursor_blink=False)


async def wait_for(pilot: Pilot[Any], condition: Callable[[], object], timeout: float = 20.0,
                   what: str = "condition") -> None:
    """Let the app run until `condition()` is true (workers and timers included)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


async def settle(pilot: Pilot[Any], timeout: float = 20.0) -> None:
    """Let every running worker (reads, saves) finish and the screen redraw, so a snapshot does not
    catch a half-done refresh on a loaded machine."""
    # a worker still waiting to start counts too: the engine banner's lease read is queued when the
    # database opens, and a snapshot taken before it ran showed "starting" (CI, 120x36 Inbox)
    await wait_for(pilot, lambda: all(w.is_finished for w in pilot.app.workers), timeout=timeout,
                   what="the workers to finish")
    await pilot.pause()
    # then until the layout holds still: a table filled by the last read can still grow a panel
    # (and move a scrollbar) a frame or two later (CI: Settings → Keywords, Stats at 80x24). A
    # screen that never holds still (a live chart) is taken as it is after LAYOUT_WAIT seconds.
    deadline = time.monotonic() + LAYOUT_WAIT
    last = _layout(pilot)
    while time.monotonic() < deadline:
        await pilot.pause(0.05)
        now = _layout(pilot)
        if now == last and not _tables_pending(pilot):
            break
        last = now


LAYOUT_WAIT = 3.0


def _tables_pending(pilot: Pilot[Any]) -> bool:
    """A DataTable measures its new rows' columns when it is next idle: until then a snapshot
    shows the columns as wide as their headers (CI: Inbox at 80x24)."""
    return any(table._require_update_dimensions or table._updated_cells
               for table in pilot.app.screen.query(DataTable))


def _layout(pilot: Pilot[Any]) -> tuple[Any, ...]:
    """What a snapshot's layout depends on: every widget's region, and the scrollable ones'
    content size and offset."""
    return tuple((w.region, w.virtual_size, w.scroll_offset) for w in pilot.app.screen.query("*"))


async def type_text(pilot: Pilot[Any], text: str) -> None:
    """Type printable ASCII as key presses into the focused widget."""
    for ch in text:
        await pilot.press("space" if ch == " " else ch)


def paste(pilot: Pilot[Any], text: str) -> None:
    """Paste text into the focused widget, as a terminal does (works for emoji and curly quotes)."""
    assert pilot.app.focused is not None, "nothing has focus"
    pilot.app.post_message(events.Paste(text))  # the app forwards it to the focused widget


def notifications(app: App[Any]) -> list[str]:
    return [notification.message for notification in app._notifications]


async def run_command(pilot: Pilot[Any], query: str) -> None:
    """Open the command palette, search for `query` and run the best hit."""
    await pilot.press("ctrl+p")
    await type_text(pilot, query)
    await pilot.pause(0.3)  # the palette searches in the background
    await pilot.press("enter")
