"""The campaign wizard at 80×24: type → When → Who → What → Test → Summary, back and forth with
everything kept; a draft saved from any step; a refused schedule names the field and goes back to
its step; a schedule that passes shows in the list."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input, RadioButton, Select, Static, TextArea

from smsconsole.app import SmsConsoleApp
from smsconsole.runtime import Runtime
from smsconsole.screens.campaigns.screen import CampaignsScreen
from smsconsole.screens.campaigns.steps_send import SummaryStep, SendTestStep
from smsconsole.screens.campaigns.steps_what import WhatStep
from smsconsole.screens.campaigns.steps_when import TypeStep, WhenStep
from smsconsole.screens.campaigns.steps_who import WhoStep
from smsconsole.screens.campaigns.wizard import WizardStep
from smsconsole.services.campaigns import crud
from tests.tui.seed import seed_providers
from tests.tui.segment_seed import seed_audience, seed_segments
from tests.tui.support import make_app, notifications, type_text, wait_for

SIZE = (80, 24)


async def open_wizard(pilot: Pilot[Any], app: SmsConsoleApp) -> TypeStep:
    await pilot.press("0")
    await wait_for(pilot, lambda: isinstance(app.screen, CampaignsScreen), what="the campaigns")
    await pilot.press("a")
    await wait_for(pilot, lambda: isinstance(app.screen, TypeStep), what="the type step")
    await pilot.pause()
    assert isinstance(app.screen, TypeStep)
    return app.screen


async def step(pilot: Pilot[Any], app: SmsConsoleApp, kind: type[WizardStep], key: str = "ctrl+f") -> Any:
    await pilot.press(key)
    await wait_for(pilot, lambda: isinstance(app.screen, kind), what=kind.__name__)
    await pilot.pause()
    return app.screen


async def campaigns(runtime: Runtime) -> list[Any]:
    async with runtime.factory() as session:
        return await crud.list_campaigns(session)


async def test_walk_every_step_and_back_keeping_what_was_typed(runtime: Runtime) -> None:
    await seed_providers(runtime)
    await seed_audience(runtime)
    await seed_segments(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        first = await open_wizard(pilot, app)
        first.query_one("#input-campaign-name", Input).value = "Spring sale"
        first.query_one("#type-recurring", RadioButton).value = True
        when = await step(pilot, app, WhenStep)
        when.query_one("#input-when-every", Select).value = "month"
        when.query_one("#input-when-time", Input).value = "10:00"
        when.query_one("#input-when-day", Input).value = "31"
        await pilot.pause()
        who = await step(pilot, app, WhoStep)
        back = await step(pilot, app, WhenStep, "escape")
        assert back.query_one("#input-when-day", Input).value == "31"
        assert app.screen.query_one("#input-when-every", Select).value == "month"
        await step(pilot, app, WhoStep)
        what = await step(pilot, app, WhatStep)
        await step(pilot, app, SendTestStep)
        summary = await step(pilot, app, SummaryStep)
        text = str(summary.query_one("#summary-choices", Static).render())
        assert "Spring sale" in text and "every month on the 31st" in text
        assert who is not None and what is not None
