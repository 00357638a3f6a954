"""A live campaign in the Campaigns section: the list names its type and trigger; its page shows
the live panel (trigger in words, waits pending, today's counts, cancelled by the follow-up event,
held back by reason, the target) and the latest messages it queued, following new ones as they
come; the keys work from the panel."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from smsconsole.app import SmsConsoleApp
from smsconsole.runtime import Runtime
from smsconsole.screens.campaigns.page import CampaignPageScreen
from smsconsole.screens.campaigns.screen import CampaignsScreen
from smsconsole.screens.campaigns.steps_when import TypeStep
from smsconsole.screens.dialogs.confirm import ConfirmDialog
from tests.tui.live_campaign_seed import add_fire, seed_live
from tests.tui.support import make_app, wait_for

SIZE = (80, 24)


async def open_page(pilot: Pilot[Any], app: SmsConsoleApp, code: str) -> CampaignPageScreen:
    await pilot.press("0")
    await wait_for(pilot, lambda: isinstance(app.screen, CampaignsScreen)
                   and app.screen.table.row_count == 2, what="the campaigns")
    table = app.screen.query_one("#campaigns-table", DataTable)
    table.move_cursor(row=table.get_row_index(code))
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, CampaignPageScreen)
                   and app.screen.query_one("#campaign-fires-table", DataTable).row_count > 0, what="the page")
    assert isinstance(app.screen, CampaignPageScreen)
    return app.screen


async def test_the_list_names_a_live_campaign_by_its_trigger(runtime: Runtime) -> None:
    await seed_live(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("0")
        await wait_for(pilot, lambda: isinstance(app.screen, CampaignsScreen)
                       and app.screen.table.row_count == 2, what="the campaigns")
        table = app.screen.table
        assert [str(cell) for cell in table.get_row("C1")[2:4]] == ["running", "inaction"]
        assert [str(cell) for cell in table.get_row("C2")[2:4]] == ["draft", "on date"]
        detail = app.screen.query_one("#campaign-detail", Static)
        await wait_for(pilot, lambda: "C1 ·" in str(detail.render()), what="the details")
        assert "When someone does add_to_cart (amount > 100) and does not do checkout within 5 minutes" in str(
            detail.render())


async def test_the_page_of_a_live_campaign_shows_the_live_panel_and_follows_new_fires(runtime: Runtime) -> None:
    cart, run_id, _ = await seed_live(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        page = await open_page(pilot, app, "C1")
        figures = str(page.query_one("#campaign-live-figures", Static).render())
        assert "When someone does add_to_cart (amount > 100) and does not do checkout within 5 minutes" in figures
        assert "Pending 2 waits · Today 6 triggered · 2 queued · 1 cancelled by checkout" in figures
        assert "Held back today not in the filter 1, not reachable 1 · Target 5 of 1,000" in figures
        assert not page.query_one("#campaign-runs-table").display  # a live campaign has no runs to list
        assert "live since" in str(page.query_one("#campaign-head", Static).render())
        fires = page.query_one("#campaign-fires-table", DataTable)
        assert app.focused is fires
        assert [[str(cell) for cell in fires.get_row(key)] for key in ("2", "1")] == [
            ["08:45:00", "+447400900001", "wait: add_to_cart", "delivered"],
            ["08:35:00", "+447400900001", "add_to_cart", "failed (rejected by provider)"]]
        new_id = await add_fire(runtime, cart.id, run_id, "+447400900004", minutes_later=1)
        await wait_for(pilot, lambda: fires.row_count == 3, what="the new fire")  # the live refresh, no key pressed
        assert str(fires.get_row(str(new_id))[3]) == "queued"
        assert next(str(row.key.value) for row in fires.ordered_rows) == str(new_id)  # newest first


async def test_the_page_keys_act_on_the_live_campaign(runtime: Runtime) -> None:
    await seed_live(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await open_page(pilot, app, "C1")
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="stop asks first")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, CampaignPageScreen), what="back on the page")
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, TypeStep), what="the wizard")
        assert app.screen.state.document["type"] == "inaction"
