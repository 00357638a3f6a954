"""How the Inbox, Stats → Delivery, the Home monitor and Settings → Keywords look at 80×24 and
120×36: seeded replies (STOP, HELP, ARRÊT, a plain reply) on the demo seed, clock frozen, engine off."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable

from smsconsole.config import Config
from smsconsole.runtime import Runtime
from smsconsole.screens.dialogs.message_path import MessagePathDialog
from tests.conftest import copy_sqlite_template
from tests.tui.replies_seed import seed_replies
from tests.tui.seed import seed_demo
from tests.tui.support import make_app, settle, wait_for

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 36), id="120x36")]


@pytest.fixture
def replies_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.chdir(tmp_path)
    config = Config(config_dir=Path("config"), data_dir=Path("data"))

    async def seed() -> None:
        await copy_sqlite_template(Path("data/smsconsole.db"))
        rt = await Runtime.open(config)
        try:
            await seed_demo(rt)
            await seed_replies(rt)
        finally:
            await rt.close()

    asyncio.run(seed())
    return config


def rows(pilot: Pilot[Any], selector: str) -> int:
    return pilot.app.screen.query_one(selector, DataTable).row_count


@pytest.mark.parametrize("size", SIZES)
def test_inbox(snap_compare: Any, replies_config: Config, size: tuple[int, int]) -> None:
    """Inbox: replies newest first with keyword, action, profile and the message answered."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.press("8")
        await wait_for(pilot, lambda: rows(pilot, "#inbox-table") == 4, what="replies")
        await settle(pilot)

    assert snap_compare(make_app(replies_config), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_stats_delivery(snap_compare: Any, replies_config: Config, size: tuple[int, int]) -> None:
    """Stats → Delivery: per provider with health and circuit, throughput, latest messages."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.press("9")
        await wait_for(pilot, lambda: rows(pilot, "#stats-recent-table") == 8, what="messages")
        await wait_for(pilot, lambda: rows(pilot, "#stats-providers-table") == 4, what="providers")
        await settle(pilot)

    assert snap_compare(make_app(replies_config), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_home_monitor(snap_compare: Any, replies_config: Config, size: tuple[int, int]) -> None:
    """Home: providers with circuit and last hour's traffic; the delivery monitor with replies."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_for(pilot, lambda: rows(pilot, "#home-providers-table") == 3, what="providers")
        await wait_for(pilot, lambda: rows(pilot, "#home-counts-table") == 7, what="monitor")
        await wait_for(pilot, lambda: "lease" in str(pilot.app.screen.query_one("#home-engine-detail").render()),
                       what="engine detail")
        await settle(pilot)

    assert snap_compare(make_app(replies_config), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_keywords_panel(snap_compare: Any, replies_config: Config, size: tuple[int, int]) -> None:
    """Settings → Keywords: the defaults in four languages, flagged, with their responses."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.press("4")
        await wait_for(pilot, lambda: rows(pilot, "#keywords-table") > 20, what="keywords")
        table = pilot.app.screen.query_one("#keywords-table", DataTable)
        table.focus()
        await settle(pilot)  # every panel filled first: the scroll below lands where it stays
        pilot.app.screen.query_one("#settings-keywords").scroll_visible(animate=False, top=True)
        await settle(pilot)

    assert snap_compare(make_app(replies_config), terminal_size=size, run_before=run_before)


def test_message_path(snap_compare: Any, replies_config: Config) -> None:
    """A delivered message's path: its attempt, and the replies that answer it (a thanks, a STOP)."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.press("9")
        await wait_for(pilot, lambda: rows(pilot, "#stats-recent-table") == 8, what="messages")
        table = pilot.app.screen.query_one("#stats-recent-table", DataTable)
        table.move_cursor(row=table.get_row_index("1"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, MessagePathDialog), what="the path")
        await settle(pilot)

    assert snap_compare(make_app(replies_config), terminal_size=(80, 24), run_before=run_before)
