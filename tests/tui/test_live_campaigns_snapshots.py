"""How live campaigns look at 80×24: the When step (the span it is live), the trigger step of an
abandoned cart and of a date reminder, the Summary in words, and the page with the live panel (also
at 120×36).
Clock frozen, the data of tests/tui/live_campaign_seed.py, engine off. Update a snapshot
(--snapshot-update) only after reading its diff in the report."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Select, Static

from smsconsole.config import Config
from smsconsole.runtime import Runtime
from smsconsole.screens.campaigns.page import CampaignPageScreen
from smsconsole.screens.campaigns.steps_send import SendTestStep, SummaryStep
from smsconsole.screens.campaigns.steps_trigger import TriggerStep
from smsconsole.screens.campaigns.steps_what import WhatStep
from smsconsole.screens.campaigns.steps_when import TypeStep, WhenStep
from smsconsole.screens.campaigns.wizard import WizardStep
from tests.conftest import copy_sqlite_template
from tests.tui.live_campaign_seed import seed_catalog, seed_live
from tests.tui.support import make_app, settle, wait_for
from tests.tui.test_campaigns_snapshots import list_loaded

SIZE = (80, 24)
STEPS = [TypeStep, WhenStep, TriggerStep, WhatStep, SendTestStep, SummaryStep]


@pytest.fixture
def live_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.chdir(tmp_path)
    config = Config(config_dir=Path("config"), data_dir=Path("data"))

    async def seed() -> None:
        await copy_sqlite_template(Path("data/smsconsole.db"))
        rt = await Runtime.open(config)
        try:
            await seed_live(rt)
            await seed_catalog(rt)
        finally:
            await rt.close()

    asyncio.run(seed())
    return config


def at_step(code: str, index: int) -> Any:
    async def run_before(pilot: Pilot[Any]) -> None:
        await list_loaded(pilot, code)
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, TypeStep), what="the wizard")
        for kind in STEPS[1:index + 1]:
            await settle(pilot)
            await pilot.press("ctrl+f")
            await wait_for(pilot, lambda kind=kind: isinstance(pilot.app.screen, kind), what=kind.__name__)
        screen = pilot.app.screen
        assert isinstance(screen, WizardStep)
        if isinstance(screen, TriggerStep) and screen.state.document["who"].get("segment"):
            select = screen.query_one("#input-who-segment", Select)
            await wait_for(pilot, lambda: select.value == screen.state.document["who"]["segment"], what="the filter")
        if isinstance(screen, SummaryStep):
            runs = screen.query_one("#summary-runs", Static)
            await wait_for(pilot, lambda: "Live" in str(runs.render()), what="the figures")
        await settle(pilot)

    return run_before


@pytest.mark.parametrize(("code", "index"), [pytest.param("C1", 1, id="cart-when"),
                                             pytest.param("C1", 2, id="cart-trigger"),
                                             pytest.param("C2", 2, id="trip-trigger"),
                                             pytest.param("C1", 5, id="cart-summary")])
def test_live_wizard_step(snap_compare: Any, live_config: Config, code: str, index: int) -> None:
    """A live campaign's steps: the span, the trigger read back in words, the Summary."""
    assert snap_compare(make_app(live_config), terminal_size=SIZE, run_before=at_step(code, index))


@pytest.mark.parametrize("size", [pytest.param((80, 24), id="80x24"), pytest.param((120, 36), id="120x36")])
def test_live_campaign_page(snap_compare: Any, live_config: Config, size: tuple[int, int]) -> None:
    """The page of a live campaign: the live panel and the latest messages it queued."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await list_loaded(pilot, "C1")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, CampaignPageScreen)
                       and pilot.app.screen.query_one("#campaign-fires-table", DataTable).row_count == 2,
                       what="the page")
        await settle(pilot)

    assert snap_compare(make_app(live_config), terminal_size=size, run_before=run_before)


def test_live_campaigns_list(snap_compare: Any, live_config: Config) -> None:
    """The list with a running live campaign and a live draft."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await list_loaded(pilot, "C1")

    assert snap_compare(make_app(live_config), terminal_size=SIZE, run_before=run_before)
