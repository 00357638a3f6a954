"""How the Segments section looks at 80×24 and 120×36: the list with reach, the builder with its
live reach panel, the condition editor, and raw JSON mode with a refused definition. Clock frozen,
the audience of tests/tui/segment_seed.py, engine off. Update a snapshot (--snapshot-update) only
after reading its diff in the report."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable

from smsconsole.config import Config
from smsconsole.runtime import Runtime
from smsconsole.screens.dialogs.condition_editor import ConditionEditorDialog
from smsconsole.screens.segments.builder import SegmentBuilderScreen
from tests.conftest import copy_sqlite_template
from tests.tui.segment_seed import ORDERED_TWICE_IN_IN_GB, save_segment, seed_segments
from tests.tui.support import make_app, wait_for

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 36), id="120x36")]
BAD_JSON = ('{"match": "all", "conditions": [\n  {"property": "plann", "op": "equals", "value": "gold"},\n'
            '  {"field": "country", "op": "in", "value": ["IN", "GB"]}\n]}')


@pytest.fixture
def segments_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    """Three saved segments over the small audience, in a temp working directory."""
    monkeypatch.chdir(tmp_path)
    config = Config(config_dir=Path("config"), data_dir=Path("data"))

    async def seed() -> None:
        await copy_sqlite_template(Path("data/smsconsole.db"))
        rt = await Runtime.open(config)
        try:
            await seed_segments(rt)
            await save_segment(rt, "orders-in-gb", ORDERED_TWICE_IN_IN_GB)
        finally:
            await rt.close()

    asyncio.run(seed())
    return config


def reach_shown(pilot: Pilot[Any]) -> bool:
    table = pilot.app.screen.query_one("#segments-table", DataTable)
    return table.row_count == 3 and all(
        str(table.get_cell(str(row.key.value), "qualified")) != "…" for row in table.ordered_rows)


async def list_loaded(pilot: Pilot[Any]) -> None:
    await pilot.press("6")
    await wait_for(pilot, lambda: reach_shown(pilot), what="the segments and their reach")
    table = pilot.app.screen.query_one("#segments-table", DataTable)
    table.move_cursor(row=table.get_row_index("orders-in-gb"))
    await pilot.pause()


async def builder_open(pilot: Pilot[Any]) -> SegmentBuilderScreen:
    await list_loaded(pilot)
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, SegmentBuilderScreen), what="the builder")
    builder = pilot.app.screen
    assert isinstance(builder, SegmentBuilderScreen)
    await pilot.pause(0.1)
    await wait_for(pilot, lambda: not builder.estimating and builder.estimate is not None, what="the estimate")
    await pilot.pause()
    return builder


async def editor_open(pilot: Pilot[Any]) -> None:
    builder = await builder_open(pilot)
    builder.tree.move_cursor(builder.tree.root.children[0])
    await pilot.press("e")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConditionEditorDialog), what="the editor")
    await pilot.pause(0.2)


async def json_with_error(pilot: Pilot[Any]) -> None:
    builder = await builder_open(pilot)
    await pilot.press("ctrl+t")
    builder.json_area.text = BAD_JSON
    await pilot.pause(0.1)
    await wait_for(pilot, lambda: not builder.estimating and bool(builder.problems), what="the problems")
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES)
def test_segments_list(snap_compare: Any, segments_config: Config, size: tuple[int, int]) -> None:
    """The list: name, summary, qualified and reachable (computed in the background), updated, used
    by; the highlighted segment's full summary and reach breakdown below."""
    assert snap_compare(make_app(segments_config), terminal_size=size, run_before=list_loaded)


@pytest.mark.parametrize("size", SIZES)
def test_segment_builder(snap_compare: Any, segments_config: Config, size: tuple[int, int]) -> None:
    """The builder: name, the definition tree (ALL group, event and field conditions) and the reach
    panel: 7 qualify, 2 reachable, one under each unreachable reason, IN and GB."""
    assert snap_compare(make_app(segments_config), terminal_size=size, run_before=builder_open)


@pytest.mark.parametrize("size", SIZES)
def test_condition_editor(snap_compare: Any, segments_config: Config, size: tuple[int, int]) -> None:
    """The condition editor on `did order at least 2 times in the last 30 days`."""
    assert snap_compare(make_app(segments_config), terminal_size=size, run_before=editor_open)


@pytest.mark.parametrize("size", SIZES)
def test_segment_json_with_error(snap_compare: Any, segments_config: Config, size: tuple[int, int]) -> None:
    """Raw JSON mode with an unknown property: the problem by path under the text and in the reach
    panel instead of a number."""
    assert snap_compare(make_app(segments_config), terminal_size=size, run_before=json_with_error)
