"""Segments: build a segment through the condition editor and see reach match the seeded audience;
edit the raw JSON and see refused definitions explained by path; save, edit, duplicate and delete
from the list (a delete refused while a scheduled campaign uses the segment); unsaved changes are
never dropped without asking."""

from __future__ import annotations

import re
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Select, Static

from smsconsole.app import SmsConsoleApp
from smsconsole.runtime import Runtime
from smsconsole.screens.dialogs.condition_editor import ConditionEditorDialog
from smsconsole.screens.dialogs.confirm import ConfirmDialog
from smsconsole.screens.dialogs.segment_name import SegmentNameDialog
from smsconsole.screens.segments.builder import SegmentBuilderScreen
from smsconsole.screens.segments.screen import SegmentsScreen
from smsconsole.screens.widgets.fields import FieldError
from smsconsole.services import segments as segment_service
from tests.tui.segment_seed import GOLD, ORDERED_TWICE_IN_IN_GB, seed_audience, seed_segments
from tests.tui.support import make_app, notifications, type_text, wait_for


def table_names(app: SmsConsoleApp) -> list[str]:
    table = app.screen.query_one("#segments-table", DataTable)
    return [str(row.key.value) for row in table.ordered_rows]


def cell(app: SmsConsoleApp, row: str, column: str) -> str:
    return str(app.screen.query_one("#segments-table", DataTable).get_cell(row, column))


async def open_segments(pilot: Pilot[Any], app: SmsConsoleApp, expect: list[str]) -> SegmentsScreen:
    await pilot.press("6")
    await wait_for(pilot, lambda: isinstance(app.screen, SegmentsScreen) and table_names(app) == expect,
                   what=f"segments {expect}")
    assert isinstance(app.screen, SegmentsScreen)
    return app.screen


async def highlight(pilot: Pilot[Any], app: SmsConsoleApp, name: str) -> None:
    table = app.screen.query_one("#segments-table", DataTable)
    table.move_cursor(row=table.get_row_index(name))
    await pilot.pause()


async def builder_settled(pilot: Pilot[Any], builder: SegmentBuilderScreen) -> None:
    await pilot.pause()  # pending messages handled (a JSON edit's Changed: its estimate scheduled), under load too
    await pilot.pause(0.1)
    await wait_for(pilot, lambda: not builder.estimating, what="the reach estimate")


async def open_editor(pilot: Pilot[Any], app: SmsConsoleApp, key: str | None = "a") -> ConditionEditorDialog:
    if key:
        await pilot.press(key)
    await wait_for(pilot, lambda: isinstance(app.screen, ConditionEditorDialog)
                   and bool(app.screen.query("#select-name")), what="the condition editor")
    await pilot.pause()
    assert isinstance(app.screen, ConditionEditorDialog)
    return app.screen


async def choose(pilot: Pilot[Any], dialog: ConditionEditorDialog, selector: str, value: str) -> None:
    dialog.query_one(selector, Select).value = value
    await pilot.pause()


async def fill(pilot: Pilot[Any], dialog: ConditionEditorDialog, selector: str, text: str) -> None:
    field = dialog.query_one(selector, Input)
    field.focus()
    field.value = ""
    await type_text(pilot, text)


def error_of(dialog: ConditionEditorDialog, row: str) -> str | None:
    return dialog.query_one(f"#error-{row}", FieldError).reason


async def add_event_condition(pilot: Pilot[Any], app: SmsConsoleApp, count: str = "2", days: str = "30",
                              ) -> ConditionEditorDialog:
    dialog = await open_editor(pilot, app)
    await choose(pilot, dialog, "#select-kind", "event")
    await choose(pilot, dialog, "#select-event", "order")
    await choose(pilot, dialog, "#select-count-op", "at_least")
    await fill(pilot, dialog, "#input-count", count)
    await choose(pilot, dialog, "#select-window", "last_days")
    await fill(pilot, dialog, "#input-days", days)
    await pilot.press("ctrl+s")
    return dialog


async def add_country_condition(pilot: Pilot[Any], app: SmsConsoleApp, countries: str) -> None:
    dialog = await open_editor(pilot, app)
    await choose(pilot, dialog, "#select-kind", "field")
    await choose(pilot, dialog, "#select-name", "country")
    await choose(pilot, dialog, "#select-op", "in")
    await fill(pilot, dialog, "#input-value", countries)
    await pilot.press("ctrl+s")
    await wait_for(pilot, lambda: not isinstance(app.screen, ConditionEditorDialog), what="the editor to close")


async def stored(runtime: Runtime) -> dict[str, dict[str, Any]]:
    async with runtime.factory() as session:
        return {view.name: view.definition for view in await segment_service.list_segments(session)}


async def test_a_segment_built_in_the_dialogs_shows_the_reach_the_data_gives(runtime: Runtime) -> None:
    await seed_audience(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_segments(pilot, app, [])
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, SegmentBuilderScreen), what="the builder")
        builder = app.screen
        assert isinstance(builder, SegmentBuilderScreen)
        await builder_settled(pilot, builder)
        assert builder.estimate is not None and (builder.estimate.qualified, builder.estimate.reachable) == (9, 4)

        await type_text(pilot, "buyers")  # the name field has focus
        await pilot.press("tab")  # to the tree
        await add_event_condition(pilot, app)
        await wait_for(pilot, lambda: app.screen is builder, what="the editor to close")
        await add_country_condition(pilot, app, "in, GB")
        assert builder.document == ORDERED_TWICE_IN_IN_GB | {"conditions": [
            ORDERED_TWICE_IN_IN_GB["conditions"][0], {"field": "country", "op": "in", "value": ["in", "GB"]}]}

        await builder_settled(pilot, builder)
        estimate = builder.estimate
        assert estimate is not None
        assert (estimate.qualified, estimate.reachable) == (7, 2)
        assert estimate.unreachable.items() == [("no phone", 1), ("invalid phone", 1), ("not mobile-capable", 1),
                                                ("unsubscribed", 1), ("never opted in", 1)]
        assert [(c.country, c.qualified, c.reachable) for c in estimate.by_country] == [("IN", 4, 2), ("GB", 3, 0)]
        panel = str(builder.query_one("#reach-text", Static).render())
        for label, number in [("Qualified", 7), ("Reachable by SMS", 2), ("Not reachable", 5), ("no phone", 1),
                              ("never opted in", 1), ("IN", 4), ("GB", 3)]:
            assert re.search(rf"{label} +{number}\b", panel), f"{label} {number} not in the reach panel"
        assert "computed 09:30:00" in panel

        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, SegmentsScreen) and "buyers" in table_names(app),
                       what="the saved segment in the list")
        await wait_for(pilot, lambda: cell(app, "buyers", "qualified") == "7", what="the list's reach")
        assert cell(app, "buyers", "reachable") == "2"
    assert (await stored(runtime))["buyers"] == ORDERED_TWICE_IN_IN_GB  # country codes upper-cased


async def test_bad_values_in_the_condition_editor_are_named_and_nothing_is_added(runtime: Runtime) -> None:
    await seed_audience(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_segments(pilot, app, [])
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, SegmentBuilderScreen), what="the builder")
        builder = app.screen
        assert isinstance(builder, SegmentBuilderScreen)
        await pilot.press("tab")
        dialog = await open_editor(pilot, app)
        await choose(pilot, dialog, "#select-name", "lifetime_value")
        assert [value for _, value in dialog.query_one("#select-op", Select)._options] == [
            "equals", "not_equals", "in", "not_in", "greater", "less", "between", "exists", "not_exists"]
        await choose(pilot, dialog, "#select-op", "greater")
        await fill(pilot, dialog, "#input-value", "1O0")  # a letter O in a number
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: error_of(dialog, "value") is not None, what="the value's error")
        assert error_of(dialog, "value") == "Value: must be a number"
        assert app.screen is dialog and dialog.query_one("#input-value", Input).value == "1O0"

        await choose(pilot, dialog, "#select-kind", "event")
        await choose(pilot, dialog, "#select-event", "order")
        await fill(pilot, dialog, "#input-count", "two")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: error_of(dialog, "count") is not None, what="the count's error")
        assert error_of(dialog, "count") == "Count: must be a whole number from 0 to 1000000"
        assert app.focused is dialog.query_one("#input-count")

        await pilot.press("escape")  # changed: it asks first
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the discard question")
        await pilot.press("y")
        await wait_for(pilot, lambda: app.screen is builder, what="the builder")
        assert builder.document == {"match": "all", "conditions": []}


async def test_raw_json_shows_each_problem_by_path_and_a_refused_save_keeps_the_text(runtime: Runtime) -> None:
    await seed_segments(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_segments(pilot, app, ["gold-plan", "india"])
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, SegmentBuilderScreen), what="the builder")
        builder = app.screen
        assert isinstance(builder, SegmentBuilderScreen)
        builder.query_one("#input-segment-name", Input).focus()  # the builder opens on its tree
        await pilot.pause()
        await type_text(pilot, "typo")
        await pilot.press("ctrl+t")
        assert builder.json_mode and app.focused is builder.json_area
        text = ('{"match": "all", "conditions": [{"field": "country", "op": "in", "value": ["IN"]},'
                ' {"property": "plann", "op": "equals", "value": "gold"},'
                ' {"event": "order", "count": {"op": "at_least", "value": -1}}]}')
        builder.json_area.text = text
        await builder_settled(pilot, builder)
        assert builder.estimate is None
        assert builder.problems == [
            ("conditions[1].property", "unknown profile property 'plann' (did you mean 'plan'?)"),
            ("conditions[2].count.value", "must be a whole number from 0 to 1000000"),
        ]
        problems = str(builder.query_one("#segment-problems", Static).render())
        assert "conditions[1].property: unknown profile property 'plann'" in problems
        assert "No estimate" in str(builder.query_one("#reach-text", Static).render())

        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: any("Not saved" in n for n in notifications(app)), what="the refusal")
        assert app.screen is builder and builder.json_area.text == text
        assert builder.query_one("#input-segment-name", Input).value == "typo"

        # back in the tree, each problem sits next to its condition, named by field
        await pilot.press("ctrl+t")
        await builder_settled(pilot, builder)
        labels = [str(node.label) for node in builder.tree.root.children]
        assert "✖ Property: unknown profile property 'plann'" in labels[1]
        assert "✖ Count: must be a whole number" in labels[2]
        assert "✖" not in labels[0]

        # JSON that does not parse keeps JSON mode and says why
        await pilot.press("ctrl+t")
        builder.json_area.text = '{"match": "all", "conditions": ['
        await builder_settled(pilot, builder)
        assert builder.problems[0][0] == "definition" and "is not valid JSON" in builder.problems[0][1]
        await pilot.press("ctrl+t")
        assert builder.json_mode
        assert any("not valid JSON" in n for n in notifications(app))
    assert set(await stored(runtime)) == {"gold-plan", "india"}


async def test_editing_a_saved_segment_changes_it_and_its_reach(runtime: Runtime) -> None:
    await seed_segments(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_segments(pilot, app, ["gold-plan", "india"])
        # each segment's reach arrives in turn: wait for both
        await wait_for(pilot, lambda: cell(app, "gold-plan", "qualified") == "4"
                       and cell(app, "india", "qualified") != "…", what="gold-plan's and india's reach")
        assert cell(app, "india", "qualified") == "4" and cell(app, "india", "reachable") == "2"
        assert cell(app, "gold-plan", "used_by") == "-"
        await highlight(pilot, app, "india")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SegmentBuilderScreen), what="the builder")
        builder = app.screen
        assert isinstance(builder, SegmentBuilderScreen)
        await builder_settled(pilot, builder)
        assert builder.estimate is not None and builder.estimate.qualified == 4
        builder.tree.move_cursor(builder.tree.root.children[0])
        await pilot.press("e")
        dialog = await open_editor(pilot, app, key=None)  # already open
        assert dialog.query_one("#input-value", Input).value == "IN"
        await fill(pilot, dialog, "#input-value", "IN, FR")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is builder, what="the builder")
        await builder_settled(pilot, builder)
        assert builder.document["conditions"] == [{"field": "country", "op": "in", "value": ["IN", "FR"]}]
        assert builder.estimate is not None and (builder.estimate.qualified, builder.estimate.reachable) == (5, 3)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, SegmentsScreen), what="the list")
        await wait_for(pilot, lambda: cell(app, "india", "qualified") == "5", what="the new reach")
    assert (await stored(runtime))["india"]["conditions"][0]["value"] == ["IN", "FR"]


async def test_duplicate_asks_the_new_name_and_refuses_a_taken_one(runtime: Runtime) -> None:
    await seed_segments(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_segments(pilot, app, ["gold-plan", "india"])
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, SegmentNameDialog), what="the name dialog")
        dialog = app.screen
        assert isinstance(dialog, SegmentNameDialog)
        await pilot.pause()
        name = dialog.query_one("#input-segment-name", Input)
        assert name.value == "gold-plan (copy)"
        name.value = "india"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: dialog.query_one("#field-name FieldError", FieldError).reason is not None,
                       what="the name's error")
        assert dialog.query_one("#field-name FieldError", FieldError).reason == "a segment named 'india' already exists"
        name.value = "gold-vip"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: table_names(app) == ["gold-plan", "gold-vip", "india"], what="the copy")
        await wait_for(pilot, lambda: cell(app, "gold-vip", "qualified") == "4", what="the copy's reach")
    assert (await stored(runtime))["gold-vip"] == (await stored(runtime))["gold-plan"]


async def test_delete_asks_first_and_deletes(runtime: Runtime) -> None:
    await seed_segments(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_segments(pilot, app, ["gold-plan", "india"])
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, SegmentsScreen), what="the list")
        assert table_names(app) == ["gold-plan", "india"]
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
        await pilot.press("y")
        await wait_for(pilot, lambda: table_names(app) == ["india"], what="the row to go")
    assert set(await stored(runtime)) == {"india"}


async def test_a_segment_a_scheduled_campaign_uses_is_not_deleted(runtime: Runtime,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    await seed_segments(runtime)

    async def used_by_black_friday(session: Any, segment_id: int) -> list[str]:
        return ["black-friday"]

    # the seam the campaigns service will fill: pretend a scheduled campaign targets every segment
    monkeypatch.setattr(segment_service.crud, "campaigns_using_segment", used_by_black_friday)
    monkeypatch.setattr("smsconsole.screens.segments.screen.campaigns_using_segment", used_by_black_friday)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_segments(pilot, app, ["gold-plan", "india"])
        assert cell(app, "gold-plan", "used_by") == "black-friday"
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
        await pilot.press("y")
        await wait_for(pilot, lambda: any("black-friday" in n for n in notifications(app)), what="the refusal")
        assert any("used by scheduled campaign(s) black-friday" in n for n in notifications(app))
        assert table_names(app) == ["gold-plan", "india"]
    assert set(await stored(runtime)) == {"gold-plan", "india"}


async def test_leaving_with_unsaved_changes_asks_and_keeps_them_unless_discarded(runtime: Runtime) -> None:
    await seed_segments(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_segments(pilot, app, ["gold-plan", "india"])
        await pilot.press("enter")  # edit gold-plan
        await wait_for(pilot, lambda: isinstance(app.screen, SegmentBuilderScreen), what="the builder")
        builder = app.screen
        assert isinstance(builder, SegmentBuilderScreen)
        await pilot.press("escape")  # nothing changed: straight back
        await wait_for(pilot, lambda: isinstance(app.screen, SegmentsScreen), what="the list")

        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SegmentBuilderScreen), what="the builder")
        builder = app.screen
        assert isinstance(builder, SegmentBuilderScreen)
        await pilot.press("m")  # ALL → ANY
        assert builder.document["match"] == "any" and builder.dirty
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question")
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is builder, what="the builder again")
        assert builder.document["match"] == "any"
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question")
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, SegmentsScreen), what="the list")
    assert (await stored(runtime))["gold-plan"] == GOLD
