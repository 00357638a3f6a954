"""The console at real terminal widths, 80 columns and up: every section tab and the engine banner
fit the top line, no footer key is cut, the Stats sparkline label stays on one line, Home names the
database without wrapping it mid-word, and the segment tree never cuts a condition without showing
it whole. Pilot tests check each rule at every width; snapshots show the top bar and footer of
Home and Groups (the most keys) at 80×24 and 110×30 (clock frozen, seeded data, engine off)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len
from textual.pilot import Pilot
from textual.widgets import DataTable, Static
from textual.widgets._footer import FooterKey, FooterLabel

from smsconsole.config import Config
from smsconsole.runtime import Runtime
from smsconsole.screens.sections import SECTIONS
from smsconsole.screens.segments.builder import SegmentBuilderScreen
from smsconsole.screens.widgets.top_bar import EngineBanner, EngineInfo, SectionTab
from tests.conftest import copy_sqlite_template
from tests.tui.replies_seed import seed_replies
from tests.tui.seed import seed_demo
from tests.tui.segment_seed import ORDERED_TWICE_IN_IN_GB, save_segment, seed_audience
from tests.tui.support import make_app, wait_for

WIDTHS = [(80, 24), (100, 30), (110, 30), (120, 36), (126, 36)]
SNAPSHOT_SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((110, 30), id="110x30")]
RUNNING_HERE = EngineInfo("engine: running in this process", "here", "running here")


def screen_lines(pilot: Pilot[Any]) -> list[str]:
    """The screen as text, one string per terminal row."""
    return [strip.text for strip in pilot.app.screen._compositor.render_strips()]


async def footer_ready(pilot: Pilot[Any]) -> None:
    """The footer's keys composed and laid out."""

    def laid_out() -> bool:
        keys = [key for key in pilot.app.screen.query(FooterKey) if key.display and key.parent.display]
        return bool(keys) and all(key.region.width > 0 for key in keys)

    await wait_for(pilot, laid_out, what="the footer's keys")
    await pilot.pause()


def cut_keys(pilot: Pilot[Any]) -> list[str]:
    """Footer keys (and group labels) shown but running under the palette key or off the screen."""
    screen = pilot.app.screen
    width = screen.size.width
    palette = [key for key in screen.query(FooterKey) if key.has_class("-command-palette")]
    edge = palette[0].region.x if palette else width
    cut = []
    for widget in [*screen.query(FooterKey), *screen.query(FooterLabel)]:
        if widget in palette or not widget.display or not widget.parent or not widget.parent.display:
            continue
        if widget.region.right > edge or widget.region.width < cell_len(str(widget.render()).rstrip()):
            cut.append(str(widget.render()).strip())
    return cut


def top_bar_problems(pilot: Pilot[Any]) -> list[str]:
    """Tabs or banner that do not show whole on the top line."""
    screen = pilot.app.screen
    width = screen.size.width
    problems = []
    for tab in screen.query(SectionTab):
        text = str(tab.render())
        if tab.region.width == 0 or tab.region.right > width or tab.content_region.width < cell_len(text):
            problems.append(f"tab {text!r} at {tab.region}")
    banner = screen.query_one(EngineBanner)
    text = str(banner.render())
    if banner.region.right > width or banner.content_region.width < cell_len(text):
        problems.append(f"banner {text!r} in {banner.content_region.width} columns")
    return problems


@pytest.mark.parametrize("size", WIDTHS, ids=[f"{w}x{h}" for w, h in WIDTHS])
async def test_every_tab_and_the_engine_status_fit_the_top_line(runtime: Runtime, size: tuple[int, int]) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=size) as pilot:
        app.engine_info = RUNNING_HERE  # the longest short form the banner takes
        for section in SECTIONS:
            await app.switch_mode(section.mode)
            await pilot.pause()
            assert top_bar_problems(pilot) == [], section.mode
            banner = app.screen.query_one(EngineBanner)
            assert "running" in str(banner.render())
            top = screen_lines(pilot)[0]
            assert ("9 Stats" in top and "0 Camp" in top) or ("9Stats" in top and "0Camp" in top)  # 80: glued


@pytest.mark.parametrize("size", WIDTHS, ids=[f"{w}x{h}" for w, h in WIDTHS])
async def test_no_footer_key_is_cut(runtime: Runtime, size: tuple[int, int]) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=size) as pilot:
        for section in SECTIONS:
            await app.switch_mode(section.mode)
            app.screen.set_focus(None)  # the section's own keys, as after escape
            await footer_ready(pilot)

            def quit_shown() -> bool:
                return any(key.action in ("quit", "app.quit") and key.display for key in app.screen.query(FooterKey))

            with contextlib.suppress(AssertionError):  # let a recompose in flight finish
                await wait_for(pilot, lambda: not cut_keys(pilot) and quit_shown(), timeout=10,
                               what="a fitted footer")
            assert cut_keys(pilot) == [], section.mode
            assert quit_shown(), section.mode


async def test_the_footer_fits_again_after_a_resize(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(126, 36)) as pilot:
        await app.switch_mode("groups")
        await footer_ready(pilot)
        assert all(key.display for key in app.screen.query(FooterKey))  # room for every key
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: not cut_keys(pilot), what="the footer to fit 80 columns")
        await pilot.resize_terminal(126, 36)
        await wait_for(pilot, lambda: all(key.display for key in app.screen.query(FooterKey)),
                       what="every key back")


@pytest.mark.parametrize("width", [80, 120])
async def test_the_stats_sparkline_label_is_one_line(runtime: Runtime, width: int) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(width, 30)) as pilot:
        await app.switch_mode("stats")
        caption = app.screen.query_one("#stats-throughput-caption", Static)
        await wait_for(pilot, lambda: "peak" in str(caption.render()), what="the caption")
        await pilot.pause()
        text = str(caption.render())
        assert "\n" not in text
        assert sum("peak" in line for line in screen_lines(pilot)) == 1
        assert any("in all" in line and "now 0" in line for line in screen_lines(pilot))


@pytest.mark.parametrize("width", [80, 110])
async def test_home_names_the_database_without_breaking_it_mid_word(runtime: Runtime, width: int) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(width, 30)) as pilot:
        detail = app.screen.query_one("#home-engine-detail", Static)
        await wait_for(pilot, lambda: "db:" in str(detail.render()), what="the engine panel")
        await pilot.pause()
        url = runtime.config.effective_database_url
        name = url.rsplit("/", 1)[1]
        shown = screen_lines(pilot)
        at = next(index for index, line in enumerate(shown) if "db:" in line)
        assert url.split(":", 1)[0] in shown[at]  # the scheme says which kind of database
        # the database's own name is whole, ending its line (a long one may start the next line,
        # broken between words, never inside one)
        assert any(line.rstrip(" │").endswith(f"/{name}") for line in shown[at:at + 2])
        assert not any(name[:4] in line and not line.rstrip(" │").endswith(name) for line in shown[at:at + 2])
        assert detail.tooltip is not None and name in str(detail.tooltip)


async def test_a_long_condition_is_cut_with_an_ellipsis_and_shown_whole_under_the_tree(runtime: Runtime) -> None:
    await seed_audience(runtime)
    countries = ["IN", "GB", "US", "FR", "DE", "SG", "AU", "CA", "NZ"]
    await save_segment(runtime, "many countries", {"match": "all", "conditions": [
        {"field": "country", "op": "in", "value": countries}, ORDERED_TWICE_IN_IN_GB["conditions"][0]]})
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.switch_mode("segments")
        table = app.screen.query_one("#segments-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1, what="the segment")
        app.screen.action_edit_segment()  # type: ignore[attr-defined]
        await wait_for(pilot, lambda: isinstance(app.screen, SegmentBuilderScreen), what="the builder")
        builder = app.screen
        assert isinstance(builder, SegmentBuilderScreen)
        await pilot.pause()
        condition = builder.tree.root.children[0]
        builder.tree.move_cursor(condition)
        await pilot.pause()
        whole = 'country is one of ["IN", "GB", "US", "FR", "DE", "SG", "AU", "CA", "NZ"]'
        tree_line = next(line for line in screen_lines(pilot) if "country is one of" in line and "├─" in line)
        assert whole not in tree_line and "…" in tree_line  # cut where the tree ends, and says so
        assert whole in str(builder.query_one("#segment-node", Static).render())
        assert builder.tree.max_scroll_x == 0  # no sideways scrolling to read it


# --- snapshots ----------------------------------------------------------------------------------


@pytest.fixture
def layout_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.chdir(tmp_path)
    config = Config(config_dir=Path("config"), data_dir=Path("data"))

    async def seed() -> None:
        await copy_sqlite_template(Path("data/smsconsole.db"))
        rt = await Runtime.open(config)
        try:
            await seed_demo(rt)
            await seed_replies(rt)
        finally:
            await rt.close()

    asyncio.run(seed())
    return config


def rows(pilot: Pilot[Any], selector: str) -> int:
    return pilot.app.screen.query_one(selector, DataTable).row_count


@pytest.mark.parametrize("size", SNAPSHOT_SIZES)
def test_home_layout(snap_compare: Any, layout_config: Config, size: tuple[int, int]) -> None:
    """Home: all ten tabs and the banner on the top line, the database named on one line."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_for(pilot, lambda: rows(pilot, "#home-providers-table") == 3, what="providers")
        await wait_for(pilot, lambda: "db:" in str(pilot.app.screen.query_one("#home-engine-detail").render()),
                       what="the engine panel")
        await footer_ready(pilot)

    assert snap_compare(make_app(layout_config), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SNAPSHOT_SIZES)
def test_groups_layout(snap_compare: Any, layout_config: Config, size: tuple[int, int]) -> None:
    """Groups: a footer with many keys, fitted to the width (compact, then without the sections)."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.app.switch_mode("groups")  # type: ignore[attr-defined]
        pilot.app.screen.set_focus(None)
        await footer_ready(pilot)

    assert snap_compare(make_app(layout_config), terminal_size=size, run_before=run_before)
