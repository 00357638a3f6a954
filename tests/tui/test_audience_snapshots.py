"""How the Audience section and the API keys in Settings look at 80×24 and 120×36: the search, a
profile, an import's preview and summary, and the keys list. Same frozen clock and seed as
test_snapshots.py, plus the audience and API keys of seed.py. Update a snapshot only after reading
its diff."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from smsconsole.config import Config
from smsconsole.runtime import Runtime
from smsconsole.screens.audience.importing import ImportScreen
from smsconsole.screens.audience.profile import ProfileScreen
from tests.tui.seed import seed_api_keys, seed_audience
from tests.tui.support import make_app, settle, type_text, wait_for

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 36), id="120x36")]
CONTACTS = (
    "user_id,phone,name,optin_at,plan,score\n"
    "walk-1,07400 555001,Ann Walker,2026-01-02T10:00:00Z,gold,7\n"
    "walk-2,+44 7400 555002,Bob Walker,yesterday,silver,3\n"
    ",,No One,,gold,1\n"
    "walk-4,+447400555004,Di Walker,,bronze,lots\n"
)


@pytest.fixture
def audience_config(snapshot_config: Config, monkeypatch: pytest.MonkeyPatch) -> Config:
    """The snapshot database with profiles, events and API keys, and a file to import; the home
    folder is the working folder, so paths read the same on every machine."""
    monkeypatch.setenv("HOME", str(Path.cwd()))

    async def seed() -> None:
        rt = await Runtime.open(snapshot_config)
        try:
            await seed_audience(rt)
            await seed_api_keys(rt)
        finally:
            await rt.close()

    asyncio.run(seed())
    Path("contacts.csv").write_text(CONTACTS, encoding="utf-8")
    return snapshot_config


def rows(pilot: Pilot[Any], selector: str) -> int:
    return pilot.app.screen.query_one(selector, DataTable).row_count


async def searched(pilot: Pilot[Any]) -> None:
    await pilot.press("5")
    await wait_for(pilot, lambda: rows(pilot, "#audience-table") == 5, what="the latest profiles")
    await pilot.press("slash")  # to the search field
    await type_text(pilot, "smith")
    await wait_for(pilot, lambda: rows(pilot, "#audience-table") == 2, what="two Smiths")


async def profile_opened(pilot: Pilot[Any]) -> None:
    await searched(pilot)
    await pilot.press("enter", "enter")  # to the list, then open Ann Smith
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ProfileScreen) and pilot.app.screen.profile,
                   what="the profile")
    await wait_for(pilot, lambda: rows(pilot, "#profile-events-table") == 5, what="the events")


async def import_previewed(pilot: Pilot[Any]) -> None:
    await pilot.press("5")
    await wait_for(pilot, lambda: rows(pilot, "#audience-table") == 5, what="the latest profiles")
    await pilot.press("ctrl+o")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ImportScreen), what="the import screen")
    pilot.app.screen.query_one("#import-path", Input).value = "contacts.csv"
    await pilot.press("enter")
    await wait_for(pilot, lambda: pilot.app.screen.preview is not None, what="the preview")
    await pilot.pause()


async def import_finished(pilot: Pilot[Any]) -> None:
    await import_previewed(pilot)
    await pilot.press("ctrl+s")
    await wait_for(pilot, lambda: rows(pilot, "#import-problems-table") == 3, what="the summary")
    screen = pilot.app.screen
    assert isinstance(screen, ImportScreen) and screen.summary is not None
    screen._show_summary(replace(screen.summary, elapsed_seconds=0.2))  # the one figure that varies
    await pilot.pause()


async def api_keys_shown(pilot: Pilot[Any]) -> None:
    await pilot.press("4")
    await wait_for(pilot, lambda: rows(pilot, "#api-keys-table") == 3, what="the API keys")
    await settle(pilot)  # every Settings panel loaded (the page's height, hence the scrollbar, is final)
    table = pilot.app.screen.query_one("#api-keys-table", DataTable)
    table.focus()
    pilot.app.screen.query_one("#settings-api-keys").scroll_visible(animate=False, top=True)
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES)
def test_audience_search(snap_compare: Any, audience_config: Config, size: tuple[int, int]) -> None:
    """Audience: a name search as typed, the matches with subscription and reach."""
    assert snap_compare(make_app(audience_config), terminal_size=size, run_before=searched)


@pytest.mark.parametrize("size", SIZES)
def test_profile_page(snap_compare: Any, audience_config: Config, size: tuple[int, int]) -> None:
    """A profile: identity with the phone as typed and its time zone's source, typed properties,
    consent history, events newest first."""
    assert snap_compare(make_app(audience_config), terminal_size=size, run_before=profile_opened)


@pytest.mark.parametrize("size", SIZES)
def test_import_preview(snap_compare: Any, audience_config: Config, size: tuple[int, int]) -> None:
    """Import: the file's first rows, where each column goes with its type, the bad rows found."""
    assert snap_compare(make_app(audience_config), terminal_size=size, run_before=import_previewed)


@pytest.mark.parametrize("size", SIZES)
def test_import_summary(snap_compare: Any, audience_config: Config, size: tuple[int, int]) -> None:
    """Import done with bad rows: the counts, the error file, each bad row with its column and reason."""
    assert snap_compare(make_app(audience_config), terminal_size=size, run_before=import_finished)


@pytest.mark.parametrize("size", SIZES)
def test_settings_api_keys(snap_compare: Any, audience_config: Config, size: tuple[int, int]) -> None:
    """Settings → API keys: active keys newest first, a revoked one, prefixes only."""
    assert snap_compare(make_app(audience_config), terminal_size=size, run_before=api_keys_shown)
