"""The preflight in the console: the wizard's Summary names what blocks a campaign (country,
recipients, what and how to fix) and its estimated cost, and refuses to schedule it with the
reason shown while the wizard stays open; the campaign page shows what its latest run's preflight
held; Test send prices the message for the typed number's country as it is typed. Real services,
seeded through them (tests/tui/preflight_seed.py); the engine off."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Select, Static

from smsconsole import clock
from smsconsole.app import SmsConsoleApp
from smsconsole.config import Config
from smsconsole.models import CampaignRun
from smsconsole.runtime import Runtime
from smsconsole.screens.campaigns.page import CampaignPageScreen
from smsconsole.screens.campaigns.screen import CampaignsScreen
from smsconsole.screens.campaigns.steps_send import SummaryStep
from smsconsole.screens.campaigns.steps_when import TypeStep
from smsconsole.screens.send_test import SendTestScreen
from smsconsole.services.campaigns import crud
from smsconsole.services.campaigns.definition import parse_document
from smsconsole.services.compliance.preflight import preflight_campaign, preflight_dict
from tests.conftest import copy_sqlite_template
from tests.tui.preflight_seed import seed_preflight
from tests.tui.support import make_app, paste, settle, wait_for

BLOCK_US = "BLOCKS US (3): no sender of an allowed type routes to US through sandbox"


def text_of(app: SmsConsoleApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def to_summary(pilot: Pilot[Any], code: str) -> SummaryStep:
    app = pilot.app
    await pilot.press("0")
    await wait_for(pilot, lambda: isinstance(app.screen, CampaignsScreen)
                   and app.screen.query_one("#campaigns-table", DataTable).row_count == 1, what="the campaign")
    table = app.screen.query_one("#campaigns-table", DataTable)
    table.move_cursor(row=table.get_row_index(code))
    await pilot.pause()
    await pilot.press("e")
    await wait_for(pilot, lambda: isinstance(app.screen, TypeStep), what="the wizard")
    for kind in ("WhenStep", "WhoStep", "WhatStep", "SendTestStep", "SummaryStep"):
        await settle(pilot)
        await pilot.press("ctrl+f")
        await wait_for(pilot, lambda kind=kind: type(app.screen).__name__ == kind, what=kind)
    screen = app.screen
    assert isinstance(screen, SummaryStep)
    await wait_for(pilot, lambda: "BLOCKS" in text_of(app, "#summary-preflight"), what="the preflight")
    return screen


async def test_the_summary_names_what_blocks_and_refuses_to_schedule(runtime: Runtime) -> None:
    draft = await seed_preflight(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(120, 36)) as pilot:
        await to_summary(pilot, draft.code)
        shown = " ".join(text_of(app, "#summary-preflight").split())
        assert "preflight BLOCKS: 1 blocking finding (US)" in shown
        assert BLOCK_US in shown
        assert "'ACME' (alphanumeric); United States allows long code, short code or toll-free" in shown
        assert "fix: add a long code, short code or toll-free sender to sandbox for US" in shown
        # the cost: GB is priced (2 × 1 segment × 0.04), the US is not, and says so
        assert "estimated 0.08 USD" in shown
        assert "GB 2 × 1.00 seg × 0.04 USD = 0.08 USD via sandbox" in shown
        assert "warning US (3): no price for US on sandbox" in shown
        assert "3 recipients in countries without a price are not counted" in shown

        await pilot.press("ctrl+f")  # Schedule
        error = app.screen.query_one("#wizard-error", Static)
        await wait_for(pilot, lambda: "Not scheduled" in str(error.render()), what="the refusal")
        refusal = " ".join(str(error.render()).split())
        assert "preflight: US: no sender of an allowed type routes to US" in refusal
        assert isinstance(app.screen, SummaryStep)  # the wizard stays open
        await pilot.pause()
    async with runtime.factory() as session:
        assert (await crud.get_campaign(session, draft.code)).state == "draft"


async def test_the_campaign_page_shows_what_the_latest_runs_preflight_held(runtime: Runtime) -> None:
    draft = await seed_preflight(runtime)
    async with runtime.factory() as session, session.begin():
        document, _ = parse_document(draft.document, default_timezone="UTC")
        checked = await preflight_campaign(session, document, now=clock.now(), campaign_id=draft.id)
        session.add(CampaignRun(campaign_id=draft.id, number=1, planned_at=clock.now(), state="blocked",
                                reason="preflight: US: no sender", qualified=5, preflight=preflight_dict(checked),
                                updated_at=clock.now()))
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("0")
        await wait_for(pilot, lambda: isinstance(app.screen, CampaignsScreen)
                       and app.screen.query_one("#campaigns-table", DataTable).row_count == 1, what="the campaign")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, CampaignPageScreen)
                       and app.screen.query_one("#campaign-preflight").display, what="the preflight note")
        shown = " ".join(text_of(app, "#campaign-preflight").split())
        assert shown.startswith("Run 1 held by its preflight (checked 2026-11-23 09:30 UTC)")
        assert BLOCK_US in shown and "fix: add a long code" in shown
        assert "no price" not in shown  # warnings stay in the preflight itself


async def test_test_send_prices_the_message_as_it_is_typed(runtime: Runtime) -> None:
    await seed_preflight(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3", "e")
        screen = app.screen
        assert isinstance(screen, SendTestScreen)
        select = screen.query_one("#input-provider", Select)
        await wait_for(pilot, lambda: "sandbox" in [v for _, v in select._options], what="the providers")
        select.value = "sandbox"
        screen.query_one("#input-to", Input).value = "+447400123456"
        screen.query_one("#input-body").focus()
        await pilot.pause()
        paste(pilot, "Your parcel is on its way")
        price = screen.query_one("#price-info", Static)
        await wait_for(pilot, lambda: "0.04 USD" in str(price.render()), what="the price")
        assert str(price.render()) == "Price 1 segment × 0.04 USD = 0.04 USD on sandbox, priced 2026-11-23"
        paste(pilot, " " + "x" * 150)  # two segments now
        await wait_for(pilot, lambda: "2 segments × 0.04 USD = 0.08 USD" in str(price.render()), what="2 segments")
        screen.query_one("#input-to", Input).value = "+14155550101"
        await wait_for(pilot, lambda: "no price for US" in str(price.render()), what="the US line")
        assert str(price.render()) == "Price 2 segments (GSM-7); no price for US on sandbox"
        screen.query_one("#input-to", Input).value = "12"
        await wait_for(pilot, lambda: "needs a valid number" in str(price.render()), what="no country")


# --- how it looks ------------------------------------------------------------------------------


@pytest.fixture
def preflight_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.chdir(tmp_path)
    config = Config(config_dir=Path("config"), data_dir=Path("data"))

    async def seed() -> None:
        await copy_sqlite_template(Path("data/smsconsole.db"))
        rt = await Runtime.open(config)
        try:
            await seed_preflight(rt)
        finally:
            await rt.close()

    asyncio.run(seed())
    return config


@pytest.mark.parametrize("size", [pytest.param((80, 24), id="80x24"), pytest.param((120, 36), id="120x36")])
def test_summary_with_findings(snap_compare: Any, preflight_config: Config, size: tuple[int, int]) -> None:
    """The Summary at the fold: the reach, then the preflight (the US blocked, its fix) and the cost."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await to_summary(pilot, "C1")
        runs = pilot.app.screen.query_one("#summary-runs", Static)
        await wait_for(pilot, lambda: "Next runs" in str(runs.render()), what="the figures")
        await settle(pilot)

    assert snap_compare(make_app(preflight_config), terminal_size=size, run_before=run_before)
