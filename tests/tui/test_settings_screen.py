"""Settings: refused values are explained under their field and nothing is saved; good values are
saved (normalized) and appear in the audit log; the process configuration is shown masked."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from smsconsole.app import SmsConsoleApp
from smsconsole.messages import SettingsSaved
from smsconsole.runtime import Runtime
from smsconsole.screens.widgets.fields import FormField
from smsconsole.secrets import MASK
from smsconsole.services.settings import get_settings
from tests.tui.support import make_app, type_text, wait_for


def region_field(app: SmsConsoleApp) -> FormField:
    return app.screen.query_one("#field-default-region", FormField)


def audit_actions(app: SmsConsoleApp) -> list[str]:
    table = app.screen.query_one("#audit-table", DataTable)
    return [str(table.get_row(row.key)[2]) for row in table.ordered_rows]


async def open_settings(pilot: Pilot[Any], app: SmsConsoleApp) -> None:
    await pilot.press("4")
    assert app.current_mode == "settings"
    await pilot.pause(0.2)  # the stored values load in a worker
    region_field(app).control.focus()


async def stored_region(runtime: Runtime) -> str:
    async with runtime.factory() as session:
        return (await get_settings(session))["default_region"]


async def test_a_bad_region_is_explained_and_nothing_is_saved(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_settings(pilot, app)
        await type_text(pilot, "XX")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: region_field(app).error.reason is not None, what="the field error")
        assert region_field(app).error.reason == "must be a two-letter country code such as US, GB or IN"
        assert region_field(app).value == "XX"
    assert await stored_region(runtime) == ""


async def test_a_good_region_is_saved_normalized_and_audited(runtime: Runtime, posted: list[Message]) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24), message_hook=posted.append) as pilot:
        await open_settings(pilot, app)
        await type_text(pilot, "gb")
        await pilot.press("enter")  # enter in a field saves
        await wait_for(pilot, lambda: "settings.update" in audit_actions(app), what="the audit entry")
        assert region_field(app).value == "GB"
        assert region_field(app).error.reason is None
    assert await stored_region(runtime) == "GB"
    assert any(isinstance(m, SettingsSaved) and m.values["default_region"] == "GB" for m in posted)


async def test_an_earlier_error_clears_once_corrected(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_settings(pilot, app)
        await type_text(pilot, "XX")
        await pilot.press("enter")
        await wait_for(pilot, lambda: region_field(app).error.reason is not None, what="the field error")
        control = region_field(app).control
        assert isinstance(control, Input)
        control.value = "IN"
        await pilot.press("enter")
        await wait_for(pilot, lambda: region_field(app).error.reason is None, what="the error to clear")
    assert await stored_region(runtime) == "IN"


async def test_the_process_configuration_is_shown_with_the_database_password_masked(runtime: Runtime) -> None:
    config = runtime.config
    shown = replace(config, database_url="postgresql://ops:hunter2@db.example.com/sms")
    app = make_app(shown, runtime)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("4")
        table = app.screen.query_one("#config-table", DataTable)
        database = str(table.get_cell("database_url", "value"))
        assert "hunter2" not in database and MASK in database
        assert str(table.get_cell("log_file", "value")) == str(config.effective_log_file)
