"""The Campaigns list and a campaign's page at 80×24: status, next run and the last run's progress
and counts; pause and resume (p), stop (x, asks first), duplicate (c), delete (d, asks first); the
page shows the runs with their counts and why people were held back; Home names a campaign its
safety check blocked."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from smsconsole.app import SmsConsoleApp
from smsconsole.runtime import Runtime
from smsconsole.screens.campaigns.page import CampaignPageScreen
from smsconsole.screens.campaigns.screen import CampaignsScreen
from smsconsole.screens.dialogs.confirm import ConfirmDialog
from smsconsole.services.campaigns import crud
from tests.tui.campaign_seed import block, seed_campaigns
from tests.tui.support import make_app, wait_for

SIZE = (80, 24)


def rows(app: SmsConsoleApp) -> dict[str, list[str]]:
    table = app.screen.query_one("#campaigns-table", DataTable)
    return {str(row.key.value): [str(cell) for cell in table.get_row(row.key)] for row in table.ordered_rows}


async def open_list(pilot: Pilot[Any], app: SmsConsoleApp, count: int) -> CampaignsScreen:
    await pilot.press("0")
    await wait_for(pilot, lambda: isinstance(app.screen, CampaignsScreen) and len(rows(app)) == count,
                   what=f"{count} campaigns")
    assert isinstance(app.screen, CampaignsScreen)
    return app.screen


async def highlight(pilot: Pilot[Any], app: SmsConsoleApp, code: str) -> None:
    table = app.screen.query_one("#campaigns-table", DataTable)
    table.move_cursor(row=table.get_row_index(code))
    await pilot.pause()


async def state_of(runtime: Runtime, code: str) -> str:
    async with runtime.factory() as session:
        return (await crud.get_campaign(session, code)).state


async def test_the_list_shows_status_next_run_and_the_last_runs_progress(runtime: Runtime) -> None:
    draft, scheduled = await seed_campaigns(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await open_list(pilot, app, 2)
        shown = rows(app)
        assert shown[draft.code][:4] == [draft.code, "Spring sale", "draft", "repeat"]
        assert shown[scheduled.code][2:5] == ["scheduled", "once", "11-30 12:00"]
        assert "100%" in shown[scheduled.code][5]  # 3 of 3 messages have left the queue
        assert shown[scheduled.code][6] == "✔2 ✖1"
        await highlight(pilot, app, scheduled.code)
        detail = str(app.screen.query_one("#campaign-detail", Static).render())
        assert "1 failed" in detail and "unsubscribed 1" in detail


async def test_pause_resume_duplicate_stop_and_delete(runtime: Runtime) -> None:
    draft, scheduled = await seed_campaigns(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await open_list(pilot, app, 2)
        await highlight(pilot, app, scheduled.code)
        await pilot.press("p")
        await wait_for(pilot, lambda: rows(app)[scheduled.code][2] == "paused", what="paused")
        assert await state_of(runtime, scheduled.code) == "paused"
        await pilot.press("p")
        await wait_for(pilot, lambda: rows(app)[scheduled.code][2] == "scheduled", what="resumed")
        await pilot.press("c")
        await wait_for(pilot, lambda: len(rows(app)) == 3, what="the copy")
        copy = next(code for code in rows(app) if code not in (draft.code, scheduled.code))
        assert rows(app)[copy][2] == "draft"
        await highlight(pilot, app, scheduled.code)
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the stop question")
        await pilot.press("n")  # not confirmed: nothing changes
        await wait_for(pilot, lambda: isinstance(app.screen, CampaignsScreen), what="the list")
        assert await state_of(runtime, scheduled.code) == "scheduled"
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the stop question")
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, CampaignsScreen)
                       and rows(app)[scheduled.code][2] == "stopped", what="stopped")
        await highlight(pilot, app, copy)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the delete question")
        await pilot.press("y")
        await wait_for(pilot, lambda: copy not in rows(app), what="the copy gone")
        async with runtime.factory() as session:
            assert [view.code for view in await crud.list_campaigns(session)] == [draft.code, scheduled.code]


async def test_the_page_shows_runs_with_counts_and_reasons(runtime: Runtime) -> None:
    _, scheduled = await seed_campaigns(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await open_list(pilot, app, 2)
        await highlight(pilot, app, scheduled.code)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, CampaignPageScreen)
                       and app.screen.query_one("#campaign-runs-table", DataTable).row_count == 1, what="the page")
        page = app.screen
        table = page.query_one("#campaign-runs-table", DataTable)
        assert [str(cell) for cell in table.get_row("1")] == ["1", "08:30", "completed", "4", "0", "1", "1", "1", "0"]
        detail = str(page.query_one("#campaign-run-detail", Static).render())
        assert "unsubscribed 1" in detail and "1 delivered" in detail
        assert "Flash sale" in str(page.query_one("#campaign-head", Static).render())
        await pilot.press("p")  # pause from the page
        await wait_for(pilot, lambda: "paused" in str(page.query_one("#campaign-head", Static).render()),
                       what="paused on the page")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, CampaignsScreen), what="back to the list")


async def test_home_names_a_campaign_blocked_by_its_safety_check(runtime: Runtime) -> None:
    _, scheduled = await seed_campaigns(runtime)
    await block(runtime, scheduled.id, 12000)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        alert = app.screen.query_one("#home-campaign-alert", Static)
        await wait_for(pilot, lambda: alert.display and "blocked" in str(alert.render()), what="the alert")
        assert f"Flash sale ({scheduled.code}) blocked by its safety check: 12,000 qualified, safety limit 5,000" \
            in str(alert.render())


async def test_the_palette_opens_pauses_and_creates_campaigns(runtime: Runtime) -> None:
    from smsconsole.screens.campaigns.steps_when import TypeStep
    from tests.tui.support import run_command

    _, scheduled = await seed_campaigns(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await run_command(pilot, "Open campaign: Flash")
        await wait_for(pilot, lambda: isinstance(app.screen, CampaignPageScreen), what="the page")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, CampaignsScreen), what="the list")
        await run_command(pilot, "Pause campaign: Flash")
        await wait_for(pilot, lambda: scheduled.code in rows(app) and rows(app)[scheduled.code][2] == "paused",
                       what="paused")
        await run_command(pilot, "New campaign")
        await wait_for(pilot, lambda: isinstance(app.screen, TypeStep), what="the wizard")


async def test_the_page_follows_the_runs_counts_live(runtime: Runtime) -> None:
    from sqlalchemy import update

    from smsconsole.models import Message

    _, scheduled = await seed_campaigns(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(CampaignPageScreen(scheduled.code))
        table = app.screen.query_one("#campaign-runs-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1, what="the run")
        assert str(table.get_cell("1", "delivered")) == "1"
        async with runtime.factory() as session, session.begin():  # the sent one is delivered meanwhile
            await session.execute(update(Message).where(Message.campaign_id == scheduled.id, Message.state == "sent")
                                  .values(state="delivered"))
        await wait_for(pilot, lambda: str(table.get_cell("1", "delivered")) == "2", what="the count to follow")
        assert str(table.get_cell("1", "sent")) == "0"


async def test_editing_a_scheduled_campaign_saves_changes_for_future_runs(runtime: Runtime) -> None:
    from textual.widgets import TextArea

    from smsconsole.screens.campaigns.steps_send import SummaryStep
    from smsconsole.screens.campaigns.steps_what import WhatStep
    from smsconsole.screens.campaigns.steps_when import TypeStep

    from tests.tui.campaign_seed import ONE_TIME, create

    await seed_campaigns(runtime)
    scheduled = await create(runtime, {**ONE_TIME, "name": "Later sale", "when": {"timezone": "UTC",
                                                                                  "at": "2026-12-05 12:00"}},
                             schedule=True)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await open_list(pilot, app, 3)
        await highlight(pilot, app, scheduled.code)
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, TypeStep), what="the wizard")
        for kind in ("WhenStep", "WhoStep", "WhatStep"):
            await pilot.press("ctrl+f")
            await wait_for(pilot, lambda kind=kind: type(app.screen).__name__ == kind, what=kind)
        assert isinstance(app.screen, WhatStep)
        app.screen.query_one("#input-what-body", TextArea).text = "Last hours of the flash sale"
        await pilot.pause()
        for kind in ("SendTestStep", "SummaryStep"):
            await pilot.press("ctrl+f")
            await wait_for(pilot, lambda kind=kind: type(app.screen).__name__ == kind, what=kind)
        assert isinstance(app.screen, SummaryStep)
        assert str(app.screen.query_one("#wizard-next").label) == "Save changes"
        await pilot.press("ctrl+f")
        await wait_for(pilot, lambda: isinstance(app.screen, CampaignsScreen), what="the list")
        async with runtime.factory() as session:
            view = await crud.get_campaign(session, scheduled.code)
        assert (view.state, view.document["what"]["body"]) == ("scheduled", "Last hours of the flash sale")
