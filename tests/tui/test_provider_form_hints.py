"""Adding a provider as a newcomer does: the Sandbox (which the picker says needs no account) is the
first kind offered, the form's examples read as examples, and testing a Generic HTTP provider that
has nothing to check says so rather than calling it healthy."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot
from textual.widgets import DataTable, Input, OptionList

from smsconsole.app import SmsConsoleApp
from smsconsole.runtime import Runtime
from smsconsole.screens.dialogs.kind_picker import KindPickerDialog
from smsconsole.screens.dialogs.provider_form import ProviderFormDialog
from smsconsole.screens.providers import ProvidersScreen
from tests.tui.seed import add_provider
from tests.tui.support import make_app, wait_for


async def open_providers(pilot: Pilot[Any], app: SmsConsoleApp, rows: int) -> DataTable[Any]:
    await app.switch_mode("providers")
    await wait_for(pilot, lambda: isinstance(app.screen, ProvidersScreen), what="Providers")
    table = app.screen.query_one("#providers-table", DataTable)
    await wait_for(pilot, lambda: table.row_count == rows, what=f"{rows} providers")
    return table


async def pick_kind(pilot: Pilot[Any], app: SmsConsoleApp) -> OptionList:
    app.screen.query_one("#providers-table").focus()
    await pilot.press("a")
    await wait_for(pilot, lambda: isinstance(app.screen, KindPickerDialog), what="the kind picker")
    return app.screen.query_one("#kind-options", OptionList)


async def test_the_sandbox_is_the_first_kind_and_enter_picks_it(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_providers(pilot, app, 0)
        options = await pick_kind(pilot, app)
        assert options.get_option_at_index(0).id == "sandbox"
        assert options.option_count > 10  # every kind is still offered
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ProviderFormDialog), what="the form")
        assert isinstance(app.screen, ProviderFormDialog) and app.screen.kind.kind == "sandbox"


async def test_form_placeholders_read_as_examples(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_providers(pilot, app, 0)
        options = await pick_kind(pilot, app)
        options.highlighted = options.get_option_index("twilio")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ProviderFormDialog), what="the form")
        form = app.screen
        placeholders = {i.id: i.placeholder for i in form.query(Input) if i.placeholder}
        assert placeholders["input-base-url"] == "default: https://api.twilio.com"
        shown_as_examples = [p for key, p in placeholders.items()
                             if key not in ("input-base-url", "input-rate-limit", "input-sender-rate-limit")]
        assert shown_as_examples and all(p.startswith("e.g. ") for p in shown_as_examples), placeholders


async def test_testing_a_generic_provider_without_a_check_url_says_not_checked(runtime: Runtime) -> None:
    await add_provider(runtime, "generic", "gw", url="https://unreachable.invalid/send", params="to=$$To")
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        table = await open_providers(pilot, app, 1)
        table.focus()
        await pilot.press("t")
        await wait_for(pilot, lambda: any(n.title == "gw: not checked" for n in app._notifications),
                       what="the test's notice")
        await wait_for(pilot, lambda: str(table.get_cell("gw", "checked")) != "-", what="the checked time")
        assert str(table.get_cell("gw", "health")) == "○ unknown"
