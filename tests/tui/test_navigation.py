"""Sections are modes: keys, function keys (while typing), tabs and the command palette switch them;
the banner says who runs the engine; an unexpected worker error is a notification, not a crash."""

from __future__ import annotations

import contextlib

import pytest
from textual.widgets import Input

from smsconsole.engine import lease
from smsconsole.runtime import Runtime
from smsconsole.screens.dialogs.kind_picker import KindPickerDialog
from smsconsole.screens.widgets.top_bar import EngineBanner
from tests.tui.support import make_app, run_command, wait_for


async def test_number_keys_switch_sections(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.current_mode == "home"
        for key, mode in (("2", "providers"), ("4", "settings"), ("1", "home"), ("3", "test-send")):
            await pilot.press("escape", key)  # escape leaves a focused field first
            assert app.current_mode == mode


async def test_function_keys_switch_sections_even_while_typing(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3", "e")  # e: to the message form
        await wait_for(pilot, lambda: isinstance(app.focused, Input), what="the To field to take focus")
        await pilot.press("2")  # typed into the field, not a section switch
        assert app.current_mode == "test-send"
        assert app.screen.query_one("#input-to", Input).value == "2"
        await pilot.press("f2")
        assert app.current_mode == "providers"


async def test_clicking_a_tab_switches_section(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        for tab, mode in (("#tab-settings", "settings"), ("#tab-providers", "providers")):
            # the tab of the section on screen, laid out (a click on the previous screen's is lost)
            await wait_for(pilot, lambda: app.screen.query_one(tab).region.width > 0, what=f"{tab} on screen")
            for _ in range(5):  # a click that lands while the screen is still mounting is lost; click again, as a user would
                await pilot.click(tab)
                with contextlib.suppress(AssertionError):
                    await wait_for(pilot, lambda: app.current_mode == mode, timeout=2.0, what=f"the {mode} section")
                    break
            assert app.current_mode == mode


@pytest.mark.parametrize(("query", "mode"), [("Send test SMS", "test-send"), ("Open settings", "settings"),
                                             ("Providers", "providers")])
async def test_palette_commands_switch_sections(runtime: Runtime, query: str, mode: str) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await run_command(pilot, query)
        await wait_for(pilot, lambda: app.current_mode == mode, what=f"mode {mode}")


async def test_palette_add_provider_opens_the_kind_picker(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await run_command(pilot, "Add provider")
        await wait_for(pilot, lambda: isinstance(app.screen, KindPickerDialog), what="the kind picker")
        assert app.current_mode == "providers"


async def test_banner_without_an_engine_says_not_running(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime, run_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        banner = app.screen.query_one(EngineBanner)
        await wait_for(pilot, lambda: "not running" in str(banner.content), what="the banner")
        assert banner.has_class("-none")


async def test_engine_runs_in_process_and_releases_its_lease_on_exit(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime, run_engine=True)
    async with app.run_test(size=(80, 24)) as pilot:
        banner = app.screen.query_one(EngineBanner)
        # the engine's code is imported in a thread after the first frame: seconds on a loaded machine
        await wait_for(pilot, lambda: banner.has_class("-here"), timeout=30, what="the engine")
        # 80 columns hold six tabs and the short banner; the whole description is its tooltip
        assert str(banner.content) == "● running here"
        assert "running in this process" in str(banner.tooltip)
        async with runtime.factory() as session:
            holder = await lease.current(session)
        assert holder is not None and holder.holder == app.engine.holder.id  # type: ignore[union-attr]
    assert app._engine_task is not None and app._engine_task.done()
    async with runtime.factory() as session:
        assert await lease.current(session) is None


async def test_an_unexpected_error_in_a_worker_becomes_a_notification(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken(session: object) -> list[object]:
        raise RuntimeError("database fell over")

    monkeypatch.setattr("smsconsole.screens.providers.list_providers", broken)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: any("database fell over" in n.message for n in app._notifications),
                       what="the notification")
        assert app.is_running
