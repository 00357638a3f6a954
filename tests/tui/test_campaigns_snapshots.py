"""How Campaigns looks at 80×24 and 120×36: the list, each wizard step (type, When, Who with its
reach estimate, What with the live preview, Test, Summary) opened on the seeded draft, and a
campaign's page with a finished run. Clock frozen, the data of tests/tui/campaign_seed.py, engine
off. Update a snapshot (--snapshot-update) only after reading its diff in the report."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from smsconsole.config import Config
from smsconsole.runtime import Runtime
from smsconsole.screens.campaigns.page import CampaignPageScreen
from smsconsole.screens.campaigns.steps_send import SendTestStep, SummaryStep
from smsconsole.screens.campaigns.steps_what import WhatStep
from smsconsole.screens.campaigns.steps_when import TypeStep, WhenStep
from smsconsole.screens.campaigns.steps_who import WhoStep
from smsconsole.screens.campaigns.wizard import WizardStep
from tests.conftest import copy_sqlite_template
from tests.tui.campaign_seed import seed_campaigns
from tests.tui.support import make_app, settle, wait_for

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 36), id="120x36")]
STEPS = [TypeStep, WhenStep, WhoStep, WhatStep, SendTestStep, SummaryStep]


@pytest.fixture
def campaigns_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.chdir(tmp_path)
    config = Config(config_dir=Path("config"), data_dir=Path("data"))

    async def seed() -> None:
        await copy_sqlite_template(Path("data/smsconsole.db"))
        rt = await Runtime.open(config)
        try:
            await seed_campaigns(rt)
        finally:
            await rt.close()

    asyncio.run(seed())
    return config


async def list_loaded(pilot: Pilot[Any], highlight: str) -> None:
    await pilot.press("0")
    await wait_for(pilot, lambda: bool(pilot.app.screen.query("#campaigns-table"))
                   and pilot.app.screen.query_one("#campaigns-table", DataTable).row_count == 2, what="the campaigns")
    table = pilot.app.screen.query_one("#campaigns-table", DataTable)
    table.move_cursor(row=table.get_row_index(highlight))
    detail = pilot.app.screen.query_one("#campaign-detail", Static)
    # the details follow the cursor, and a live refresh may be in flight: wait for both to settle
    await wait_for(pilot, lambda: f"{highlight} ·" in str(detail.render()), what="the highlighted details")
    await settle(pilot)
    await pilot.pause()


def at_step(index: int) -> Any:
    async def run_before(pilot: Pilot[Any]) -> None:
        await list_loaded(pilot, "C1")
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, TypeStep), what="the wizard")
        for kind in STEPS[1:index + 1]:
            await settle(pilot)
            await pilot.press("ctrl+f")
            await wait_for(pilot, lambda kind=kind: isinstance(pilot.app.screen, kind), what=kind.__name__)
        screen = pilot.app.screen
        assert isinstance(screen, WizardStep)
        if isinstance(screen, WhoStep):
            await pilot.press("ctrl+r")
            text = screen.query_one("#who-estimate-text", Static)
            await wait_for(pilot, lambda: "Qualified" in str(text.render()), what="the estimate")
        if isinstance(screen, WhatStep):
            preview = screen.query_one("#what-preview", Static)
            await wait_for(pilot, lambda: "chars" in str(preview.render()), what="the preview")
        if isinstance(screen, SummaryStep):
            runs = screen.query_one("#summary-runs", Static)
            await wait_for(pilot, lambda: "Next runs" in str(runs.render()), what="the figures")
        await settle(pilot)

    return run_before


@pytest.mark.parametrize("size", SIZES)
def test_campaigns_list(snap_compare: Any, campaigns_config: Config, size: tuple[int, int]) -> None:
    """The list: a draft and a scheduled campaign whose run is done (progress, sent and failed)."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await list_loaded(pilot, "C2")

    assert snap_compare(make_app(campaigns_config), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("index", range(len(STEPS)), ids=[kind.__name__ for kind in STEPS])
def test_wizard_step(snap_compare: Any, campaigns_config: Config, size: tuple[int, int], index: int) -> None:
    """Each wizard step on the seeded weekly draft: usable at 80×24 (the form scrolls), its figures shown."""
    assert snap_compare(make_app(campaigns_config), terminal_size=size, run_before=at_step(index))


@pytest.mark.parametrize("size", SIZES)
def test_campaign_page(snap_compare: Any, campaigns_config: Config, size: tuple[int, int]) -> None:
    """A campaign's page: its choices in words, the run with its counts and who was held back."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await list_loaded(pilot, "C2")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, CampaignPageScreen)
                       and pilot.app.screen.query_one("#campaign-runs-table", DataTable).row_count == 1,
                       what="the page")
        await settle(pilot)

    assert snap_compare(make_app(campaigns_config), terminal_size=size, run_before=run_before)
