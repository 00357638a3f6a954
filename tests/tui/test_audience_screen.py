"""Audience: find people by phone in any format, user id or name as you type; open a profile;
unsubscribe someone on their behalf; import a file with a bad row; a missing file explained."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from smsconsole.app import SmsConsoleApp
from smsconsole.messages import AudienceImported, SubscriptionChanged
from smsconsole.models import Consent, Profile
from smsconsole.runtime import Runtime
from smsconsole.screens.audience.importing import ImportScreen
from smsconsole.screens.audience.profile import ProfileScreen
from smsconsole.screens.audience.search import AudienceScreen
from smsconsole.screens.dialogs.confirm import ConfirmDialog
from smsconsole.screens.widgets.fields import FormField
from tests.tui.seed import seed_audience, set_region
from tests.tui.support import make_app, type_text, wait_for


def result_ids(app: SmsConsoleApp) -> list[str]:
    table = app.screen.query_one("#audience-table", DataTable)
    return [str(table.get_cell(row.key, "user_id")) for row in table.ordered_rows]


def sent(posted: list[Message], kind: type[Message]) -> list[Any]:
    """Each message of `kind` once (the hook sees a bubbling message at every node it reaches)."""
    return list({id(m): m for m in posted if isinstance(m, kind)}.values())


def text_of(app: SmsConsoleApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def cells(app: SmsConsoleApp, selector: str) -> list[list[str]]:
    table = app.screen.query_one(selector, DataTable)
    return [[str(cell) for cell in table.get_row(row.key)] for row in table.ordered_rows]


async def seeded(runtime: Runtime) -> None:
    await set_region(runtime, "GB")
    await seed_audience(runtime)


async def open_audience(pilot: Pilot[Any], app: SmsConsoleApp) -> None:
    await pilot.press("5")
    await wait_for(pilot, lambda: isinstance(app.screen, AudienceScreen) and len(result_ids(app)) == 5,
                   what="the latest profiles")


async def search(pilot: Pilot[Any], app: SmsConsoleApp, query: str, expect: list[str]) -> None:
    search_field = app.screen.query_one("#audience-search", Input)
    search_field.focus()
    search_field.value = ""
    await type_text(pilot, query)
    await wait_for(pilot, lambda: result_ids(app) == expect, what=f"{expect} for {query!r}")


@pytest.mark.parametrize(
    ("query", "expect"),
    [
        pytest.param("07400 123456", ["cust-1001"], id="national, read in the default region"),
        pytest.param("+447400123457", ["cust-1002"], id="E.164"),
        pytest.param("+1 (415) 555-0123", ["cust-1003"], id="international with punctuation"),
        pytest.param("07400 12", ["cust-1001", "cust-1002"], id="the start of a national number"),
        pytest.param("+44 7400", ["cust-1001", "cust-1002"], id="the start of an E.164 number"),
        pytest.param("cust-1004", ["cust-1004"], id="user id"),
        pytest.param("smith", ["cust-1001", "cust-1005"], id="name, any case"),
        pytest.param("nobody", [], id="no match"),
    ],
)
async def test_search_finds_people_as_you_type(runtime: Runtime, query: str, expect: list[str]) -> None:
    await seeded(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_audience(pilot, app)
        await search(pilot, app, query, expect)
        hint = text_of(app, "#audience-hint")
        assert (f"{len(expect)} profile" in hint) if expect else ("No profile matches" in hint)


async def test_enter_opens_the_profile_and_escape_goes_back(runtime: Runtime) -> None:
    await seeded(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_audience(pilot, app)
        await search(pilot, app, "07400 123456", ["cust-1001"])
        await pilot.press("enter")  # the only match opens straight away
        await wait_for(pilot, lambda: isinstance(app.screen, ProfileScreen) and app.screen.profile is not None,
                       what="the profile")
        identity = text_of(app, "#profile-summary")
        assert "Ann Smith" in identity and "cust-1001" in identity
        assert "+447400123456 · mobile" in identity and "(given as 07400 123456)" in identity
        assert "Europe/London (from the phone's region)" in identity
        assert ["plan", "string", "gold"] in cells(app, "#profile-properties-table")
        assert ["vip", "boolean", "true"] in cells(app, "#profile-properties-table")
        assert [row[1:3] for row in cells(app, "#profile-consents-table")] == [["subscribed", "import"]]
        events = cells(app, "#profile-events-table")
        assert [row[1] for row in events] == ["app_launched", "order_completed", "added_to_cart",
                                              "product_viewed", "app_launched"]  # newest first
        assert "Events (5" in str(app.screen.query_one("#profile-events").border_title)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, AudienceScreen), what="the search")

        # from the list: down moves there, enter opens the highlighted profile
        await search(pilot, app, "smith", ["cust-1001", "cust-1005"])
        await pilot.press("down", "down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ProfileScreen) and app.screen.profile is not None,
                       what="the second profile")
        assert app.screen.profile.user_id == "cust-1005"
        assert "may not receive SMS" in text_of(app, "#profile-summary")  # a landline


async def test_an_invalid_phone_is_shown_with_its_reason(runtime: Runtime) -> None:
    await seeded(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_audience(pilot, app)
        await search(pilot, app, "cust-1004", ["cust-1004"])
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ProfileScreen) and app.screen.profile is not None,
                       what="the profile")
        identity = text_of(app, "#profile-summary")
        assert "'12345' is not usable" in identity
        assert "✖ invalid phone" in identity


async def test_operator_unsubscribe_is_confirmed_and_recorded(runtime: Runtime, posted: list[Message]) -> None:
    await seeded(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24), message_hook=posted.append) as pilot:
        await open_audience(pilot, app)
        await search(pilot, app, "cust-1001", ["cust-1001"])
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ProfileScreen) and app.screen.profile is not None,
                       what="the profile")
        profile_id = app.screen.profile.id
        await pilot.press("u")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question")
        await pilot.press("n")  # cancel first: nothing changes
        await wait_for(pilot, lambda: isinstance(app.screen, ProfileScreen), what="the profile again")
        await pilot.press("u")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question")
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, ProfileScreen)
                       and app.screen.profile is not None and app.screen.profile.subscription == "unsubscribed",
                       what="the new state")
        history = cells(app, "#profile-consents-table")
        assert [row[1:3] for row in history] == [["unsubscribed", "operator"], ["subscribed", "import"]]
        assert history[0][3] == "+447400123456"  # the number it applies to
    assert [(m.profile_id, m.state) for m in sent(posted, SubscriptionChanged)] == [
        (profile_id, "unsubscribed")]
    async with runtime.factory() as session:
        row = await session.get(Profile, profile_id)
        consents = (await session.scalars(select(Consent).where(Consent.profile_id == profile_id)
                                          .order_by(Consent.id))).all()
    assert row is not None and row.subscription == "unsubscribed"
    assert [(c.state, c.source) for c in consents] == [("subscribed", "import"), ("unsubscribed", "operator")]


async def test_import_is_reachable_from_the_search_field_and_the_table(runtime: Runtime) -> None:
    await seeded(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_audience(pilot, app)
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        shown = {key for key, active in app.screen.active_bindings.items() if active.binding.show}
        assert "ctrl+o" in shown and "i" not in shown  # the field takes `i`; the footer offers ctrl+o
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, ImportScreen), what="the import screen")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, AudienceScreen), what="the search")
        app.screen.query_one("#audience-table", DataTable).focus()
        await pilot.pause()
        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(app.screen, ImportScreen), what="the import screen")


async def open_import(pilot: Pilot[Any], app: SmsConsoleApp, path: Path | str) -> ImportScreen:
    await open_audience(pilot, app)
    await pilot.press("ctrl+o")
    await wait_for(pilot, lambda: isinstance(app.screen, ImportScreen), what="the import screen")
    screen = app.screen
    assert isinstance(screen, ImportScreen)
    screen.query_one("#import-path", Input).value = str(path)
    await pilot.press("enter")
    return screen


CONTACTS = (
    "user_id,phone,name,optin_at,plan\n"
    "walk-1,07400 555001,Ann Walker,2026-01-02T10:00:00Z,gold\n"
    "walk-2,+44 7400 555002,Bob Walker,yesterday,silver\n"
    ",,No One,,gold\n"
    "walk-4,+447400555004,Di Walker,,bronze\n"
)


async def test_import_keeps_good_rows_and_lists_each_bad_one(runtime: Runtime, tmp_path: Path,
                                                             posted: list[Message]) -> None:
    await seeded(runtime)
    source = tmp_path / "contacts.csv"
    source.write_text(CONTACTS, encoding="utf-8")
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24), message_hook=posted.append) as pilot:
        screen = await open_import(pilot, app, source)
        await wait_for(pilot, lambda: screen.preview is not None, what="the preview")
        assert [row[:2] for row in cells(app, "#import-rows")] == [["2", "walk-1"], ["3", "walk-2"], ["4", ""],
                                                                   ["5", "walk-4"]]
        assert "2 bad rows in the first 4" in text_of(app, "#import-notes")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen.query_one("#import-summary").display, what="the summary")
        summary = text_of(app, "#import-summary-text")
        assert "4 rows read · 2 imported · 2 bad rows" in summary
        assert "Profiles: 2 created · 0 updated · 0 unchanged" in summary
        assert str(tmp_path / "contacts.errors.csv") in summary.replace("\n", "")
        assert [row[:2] for row in cells(app, "#import-problems-table")] == [["3", "optin_at"], ["4", "user_id"]]
        assert "'yesterday' is not a date" in cells(app, "#import-problems-table")[0][2]
    assert (tmp_path / "contacts.errors.csv").exists()
    assert [(m.kind, m.rows, m.bad_rows) for m in sent(posted, AudienceImported)] == [("profiles", 4, 2)]
    async with runtime.factory() as session:
        imported = (await session.scalars(select(Profile.user_id).where(Profile.user_id.like("walk-%"))
                                          .order_by(Profile.user_id))).all()
    assert imported == ["walk-1", "walk-4"]


async def test_a_missing_file_is_explained_under_its_field(runtime: Runtime, tmp_path: Path) -> None:
    await seeded(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_import(pilot, app, tmp_path / "nope.csv")
        path_field = screen.query_one("#field-path", FormField)
        await wait_for(pilot, lambda: path_field.error.reason is not None, what="the field error")
        assert "nope.csv does not exist" in (path_field.error.reason or "")
        assert screen.query_one("#import-start").disabled
        assert not screen.query_one("#import-preview").display
        # an empty path is refused by name too
        screen.query_one("#import-path", Input).value = ""
        await pilot.press("enter")
        await wait_for(pilot, lambda: (path_field.error.reason or "").startswith("is required"),
                       what="the required error")


async def test_leaving_a_running_import_asks_first(runtime: Runtime, tmp_path: Path) -> None:
    await seeded(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_import(pilot, app, tmp_path / "nope.csv")
        screen.importing = True  # as while run_file_import runs
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question")
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is screen, what="the import screen again")
        screen.importing = False
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, AudienceScreen), what="the search")


async def test_the_import_summary_names_rows_kept_without_a_reachable_phone(runtime: Runtime, tmp_path: Path) -> None:
    await seeded(runtime)
    source = tmp_path / "kept.csv"
    source.write_text("user_id,phone\nk-1,+44 12\nk-2,+447400555010\nk-3,+44 7400 1234\n", encoding="utf-8")
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_import(pilot, app, source)
        await wait_for(pilot, lambda: screen.preview is not None, what="the preview")
        assert "2 of the first 3 rows have a phone that is not valid" in text_of(app, "#import-notes")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen.query_one("#import-summary").display, what="the summary")
        summary = text_of(app, "#import-summary-text").replace("\n", " ")
        assert "3 rows read · 3 imported · 0 bad rows" in summary
        assert ("⚠ 2 rows imported without a reachable phone (no SMS can reach them): row 2 (The number is too "
                "short for United Kingdom), row 4 (The number is too short for United Kingdom)") in summary
