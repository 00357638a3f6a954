"""How each section and dialog looks at 80×24 (the smallest supported terminal) and 120×36, with
the clock frozen, seeded data, the engine off (a fixed banner) and no cursor blink. Update a
snapshot (--snapshot-update) only after reading its diff in the report."""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, OptionList

from smsconsole.config import Config
from smsconsole.screens.dialogs.curl_paste import CurlPasteDialog
from smsconsole.screens.dialogs.kind_picker import KindPickerDialog
from smsconsole.screens.dialogs.message_detail import MessageDetailDialog
from smsconsole.screens.dialogs.provider_form import ProviderFormDialog
from tests.tui.support import make_app, paste, settle, type_text, wait_for

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 36), id="120x36")]


def rows(pilot: Pilot[Any], selector: str) -> int:
    return pilot.app.screen.query_one(selector, DataTable).row_count


async def home_loaded(pilot: Pilot[Any]) -> None:
    await wait_for(pilot, lambda: rows(pilot, "#home-providers-table") == 3, what="providers")
    await wait_for(pilot, lambda: "lease" in str(pilot.app.screen.query_one("#home-engine-detail").render()),
                   what="engine detail")
    await settle(pilot)  # the counts and throughput panels fill in their own reads


async def providers_loaded(pilot: Pilot[Any]) -> None:
    await pilot.press("2")
    await wait_for(pilot, lambda: rows(pilot, "#providers-table") == 3, what="providers")


async def fill_test_send(pilot: Pilot[Any]) -> None:
    """A national number with its E.164 form, and a message whose emoji and curly quotes force UCS-2."""
    await pilot.press("3")
    await wait_for(pilot, lambda: rows(pilot, "#recent-table") == 5, what="recent messages")
    await wait_for(pilot, lambda: "GB" in str(pilot.app.screen.query_one("#field-to .form-field-label").render()),
                   what="the default region")
    await pilot.press("e")  # from the recent list to the form
    await type_text(pilot, "07400 123456")
    pilot.app.screen.query_one("#input-body").focus()
    await pilot.pause()
    paste(pilot, "Your “table” is ready 🍽 see you at 8")
    await pilot.pause()


async def settings_loaded(pilot: Pilot[Any]) -> None:
    await pilot.press("4")
    await wait_for(pilot, lambda: rows(pilot, "#audit-table") > 0, what="the audit log")
    await wait_for(pilot, lambda: pilot.app.screen.query_one("#setting-default-region", Input).value == "GB",
                   what="the stored region")


@pytest.mark.parametrize("size", SIZES)
def test_home(snap_compare: Any, snapshot_config: Config, size: tuple[int, int]) -> None:
    """Home: providers with their health, today's counts by state, the engine (not running)."""
    assert snap_compare(make_app(snapshot_config), terminal_size=size, run_before=home_loaded)


@pytest.mark.parametrize("size", SIZES)
def test_providers(snap_compare: Any, snapshot_config: Config, size: tuple[int, int]) -> None:
    """Providers: the table and the highlighted provider's details (secrets masked)."""
    assert snap_compare(make_app(snapshot_config), terminal_size=size, run_before=providers_loaded)


@pytest.mark.parametrize("size", SIZES)
def test_test_send(snap_compare: Any, snapshot_config: Config, size: tuple[int, int]) -> None:
    """Test send: number and message explained as typed, recent test messages in every state."""
    assert snap_compare(make_app(snapshot_config), terminal_size=size, run_before=fill_test_send)


@pytest.mark.parametrize("size", SIZES)
def test_settings(snap_compare: Any, snapshot_config: Config, size: tuple[int, int]) -> None:
    """Settings: the database settings form, the masked process configuration, the audit log."""
    assert snap_compare(make_app(snapshot_config), terminal_size=size, run_before=settings_loaded)


def test_kind_picker(snap_compare: Any, snapshot_config: Config) -> None:
    """Adding a provider starts by choosing its kind."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await providers_loaded(pilot)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, KindPickerDialog), what="the picker")

    assert snap_compare(make_app(snapshot_config), terminal_size=(80, 24), run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_provider_form_errors(snap_compare: Any, snapshot_config: Config, size: tuple[int, int]) -> None:
    """A refused Twilio form: each reason under its field, the form still open with what was typed."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await providers_loaded(pilot)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, KindPickerDialog), what="the picker")
        options = pilot.app.screen.query_one(OptionList)
        options.highlighted = options.get_option_index("twilio")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ProviderFormDialog), what="the form")
        await type_text(pilot, "twilio-eu")
        pilot.app.screen.query_one("#input-account-sid").focus()
        await type_text(pilot, "AC123")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: pilot.app.screen.query(".-shown"), what="field errors")
        await wait_for(pilot, lambda: not any(w.is_running and w.group == "form-save" for w in pilot.app.workers),
                       what="the refused save to finish")
        await pilot.pause()

    assert snap_compare(make_app(snapshot_config), terminal_size=size, run_before=run_before)


def test_message_detail(snap_compare: Any, snapshot_config: Config) -> None:
    """A failed test message with its reason (no attempts recorded by the seed)."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.press("3")
        await wait_for(pilot, lambda: rows(pilot, "#recent-table") == 5, what="recent messages")
        table = pilot.app.screen.query_one("#recent-table", DataTable)
        table.focus()
        table.move_cursor(row=table.get_row_index("3"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, MessageDetailDialog), what="the detail")
        await settle(pilot)

    assert snap_compare(make_app(snapshot_config), terminal_size=(80, 24), run_before=run_before)


def test_generic_form_from_curl(snap_compare: Any, snapshot_config: Config) -> None:
    """A Generic HTTP form filled from a pasted curl command: what to adjust, and the request it
    will send with the secrets masked."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await providers_loaded(pilot)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, KindPickerDialog), what="the picker")
        options = pilot.app.screen.query_one(OptionList)
        options.highlighted = options.get_option_index("generic")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ProviderFormDialog), what="the form")
        form = pilot.app.screen
        await type_text(pilot, "gateway")
        await pilot.click("#paste-curl")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, CurlPasteDialog), what="the paste dialog")
        paste(pilot, "curl https://gw.example.com/send -H 'X-Api-Key: k3y' -d to=447400123456 -d text=hi")
        await pilot.pause()
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: pilot.app.screen is form, what="the form")
        form.query_one("#field-request-preview").scroll_visible(animate=False, top=True)
        await pilot.pause()

    assert snap_compare(make_app(snapshot_config), terminal_size=(120, 36), run_before=run_before)
