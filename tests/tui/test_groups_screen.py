"""The Groups section: groups with their providers and live health, the group form (at most ten
providers, errors under the fields), reordering by keys and buttons, default and delete."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import update
from textual.pilot import Pilot
from textual.widgets import DataTable, OptionList

from smsconsole import clock
from smsconsole.app import SmsConsoleApp
from smsconsole.models import Provider as ProviderRow
from smsconsole.runtime import Runtime
from smsconsole.screens.dialogs.group_form import GroupFormDialog
from smsconsole.screens.groups import GroupsScreen
from smsconsole.services import groups as svc
from smsconsole.services import providers
from tests.tui.support import make_app, notifications, type_text, wait_for


async def seed(rt: Runtime, *names: str, groups: dict[str, str] | None = None) -> None:
    async with rt.factory() as session, session.begin():
        for name in names:
            await providers.create_provider(session, rt.box, kind="sandbox", name=name, values={}, actor="test")
        for group, members in (groups or {}).items():
            await svc.create_group(session, name=group, providers=members, actor="test")


async def stored(rt: Runtime) -> dict[str, svc.GroupView]:
    async with rt.factory() as session:
        return {g.name: g for g in await svc.list_groups(session)}


def table(app: SmsConsoleApp, selector: str) -> DataTable[Any]:
    return app.screen.query_one(selector, DataTable)


def cells(app: SmsConsoleApp, selector: str, column: int) -> list[str]:
    t = table(app, selector)
    return [str(t.get_row_at(i)[column]) for i in range(t.row_count)]


async def open_groups(pilot: Pilot[Any], app: SmsConsoleApp, count: int) -> None:
    await pilot.press("7")
    await wait_for(pilot, lambda: isinstance(app.screen, GroupsScreen) and table(app, "#groups-table").row_count == count,
                   what=f"{count} groups")


async def test_groups_and_members_show_priority_and_live_health(runtime: Runtime) -> None:
    await seed(runtime, "a", "b", "c", groups={"main": "a,b,c"})
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_groups(pilot, app, 1)
        assert cells(app, "#groups-table", 0) == ["★"]
        assert cells(app, "#members-table", 1) == ["a", "b", "c"]
        assert cells(app, "#members-table", 2) == ["○ unknown"] * 3
        until = clock.now() + timedelta(minutes=2)
        async with runtime.factory() as session, session.begin():  # what the engine writes
            await session.execute(update(ProviderRow).where(ProviderRow.name == "a")
                                  .values(circuit_state="open", circuit_until=until, health="unhealthy"))
            await session.execute(update(ProviderRow).where(ProviderRow.name == "b").values(health="healthy"))
            await session.execute(update(ProviderRow).where(ProviderRow.name == "c").values(circuit_state="half_open"))
        await wait_for(pilot, lambda: cells(app, "#members-table", 2)[1] == "● healthy", what="live health")
        assert cells(app, "#members-table", 2) == [
            f"⊘ out until {until:%H:%M:%S}", "● healthy", "◐ probing"]


async def test_reorder_by_keys_and_buttons(runtime: Runtime) -> None:
    await seed(runtime, "a", "b", "c", groups={"main": "a,b,c"})
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_groups(pilot, app, 1)
        members = table(app, "#members-table")
        members.focus()
        members.move_cursor(row=2)
        await pilot.press("shift+up")
        await wait_for(pilot, lambda: cells(app, "#members-table", 1) == ["a", "c", "b"], what="c moved up")
        assert (await stored(runtime))["main"].provider_names == ["a", "c", "b"]
        await wait_for(pilot, lambda: members.cursor_row == 1, what="cursor follows c")
        await pilot.press("ctrl+up")
        await wait_for(pilot, lambda: cells(app, "#members-table", 1) == ["c", "a", "b"], what="c first")
        await pilot.click("#member-down")  # the mouse: ▼ moves the highlighted provider down
        await wait_for(pilot, lambda: cells(app, "#members-table", 1) == ["a", "c", "b"], what="c back down")
        assert (await stored(runtime))["main"].provider_names == ["a", "c", "b"]


async def add_member(pilot: Pilot[Any], dialog: GroupFormDialog, steps_down: int = 1) -> None:
    dialog.query_one("#add-member").focus()
    await pilot.press("enter")
    for _ in range(steps_down):
        await pilot.press("down")
    await pilot.press("enter")
    await pilot.pause()


async def test_create_refuses_an_eleventh_provider_and_shows_errors_under_fields(runtime: Runtime) -> None:
    names = [f"p{i:02}" for i in range(11)]
    await seed(runtime, *names, groups={"india": "p00"})
    async with runtime.factory() as session, session.begin():
        await svc.update_group(session, "india", countries="IN", actor="test")
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_groups(pilot, app, 1)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, GroupFormDialog), what="the form")
        dialog = app.screen
        assert isinstance(dialog, GroupFormDialog)
        await type_text(pilot, "asia")
        dialog.query_one("#input-countries").focus()
        await type_text(pilot, "in, jp")
        for _ in range(11):
            await add_member(pilot, dialog)
        assert dialog.members == names[:10]
        assert dialog.query_one("#field-providers .form-field-label") is not None
        error = dialog.query_one("#field-providers").error  # type: ignore[attr-defined]
        assert error.reason == "a group holds at most 10 providers; remove one before adding p10"
        dialog.member_list.highlighted = 0
        await pilot.press("shift+down")  # order in the form: p00 goes second
        assert dialog.members[:2] == ["p01", "p00"]
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: dialog.query_one("#field-countries").error.reason is not None,  # type: ignore[attr-defined]
                       what="the country error")
        assert dialog.query_one("#field-countries").error.reason == (  # type: ignore[attr-defined]
            "IN already routed by group 'india' (a country belongs to one group)")
        assert list(await stored(runtime)) == ["india"]
        countries = dialog.query_one("#input-countries")
        countries.value = "jp"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, GroupsScreen), what="the form to close")
        await wait_for(pilot, lambda: table(app, "#groups-table").row_count == 2, what="the new group")
    group = (await stored(runtime))["asia"]
    assert (group.provider_names[:2], len(group.members), group.countries) == (["p01", "p00"], 10, ("JP",))


async def test_default_delete_and_edit(runtime: Runtime) -> None:
    await seed(runtime, "a", "b", groups={"one": "a", "two": "b"})
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_groups(pilot, app, 2)
        table(app, "#groups-table").focus()
        await pilot.press("d")
        await pilot.press("y")  # confirm
        await wait_for(pilot, lambda: any("is the default" in n for n in notifications(app)), what="refusal")
        assert list(await stored(runtime)) == ["one", "two"]
        await pilot.press("down", "asterisk")
        await wait_for(pilot, lambda: cells(app, "#groups-table", 0) == ["", "★"], what="two is the default")
        await pilot.press("up", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, GroupFormDialog), what="the edit form")
        dialog = app.screen
        assert isinstance(dialog, GroupFormDialog)
        await add_member(pilot, dialog)
        assert dialog.members == ["a", "b"]
        dialog.query_one("#group-members", OptionList).highlighted = 0
        await pilot.click("#member-remove")
        assert dialog.members == ["b"]
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, GroupsScreen), what="the form to close")
        await wait_for(pilot, lambda: cells(app, "#groups-table", 3)[0] == "b", what="one's new member")
        await pilot.press("d")
        await pilot.press("y")
        await wait_for(pilot, lambda: table(app, "#groups-table").row_count == 1, what="one deleted")
    assert list(await stored(runtime)) == ["two"]


async def test_palette_commands_open_a_group_and_make_it_default(runtime: Runtime) -> None:
    await seed(runtime, "a", "b", groups={"main": "a", "backup": "b"})
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.make_default_group("backup")
        await wait_for(pilot, lambda: isinstance(app.screen, GroupsScreen), what="the Groups section")
        await wait_for(pilot, lambda: "backup is now the default group." in notifications(app), what="the default")
        assert (await stored(runtime))["backup"].is_default
        await app.edit_group("main")
        await wait_for(pilot, lambda: isinstance(app.screen, GroupFormDialog), what="the group form")
        dialog = app.screen
        assert isinstance(dialog, GroupFormDialog)
        # the app must not close while the form is still mounting (its on_mount fills the lists)
        await wait_for(pilot, lambda: bool(dialog.query("#group-members")) and dialog.member_list.option_count == 1,
                       what="the group form's members")
        assert dialog.members == ["a"]
