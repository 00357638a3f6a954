"""A campaign's report on its page (an A/B campaign with a control group and a goal,
tests/tui/report_seed.py): the figures per arm, the funnel, the lift verdicts and the breakdowns as
the service computes them; `o` exports the report to a file named by the operator (CSV or JSON by
its extension), a bad path is named under the field and nothing is lost; and how the report looks
at 80×24 (the page scrolls down to it) and 120×36. Clock frozen, engine off. Update a snapshot
(--snapshot-update) only after reading its diff in the report."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from smsconsole.app import SmsConsoleApp
from smsconsole.config import Config
from smsconsole.runtime import Runtime
from smsconsole.screens.campaigns.page import CampaignPageScreen
from smsconsole.screens.campaigns.report_panel import ReportChart
from smsconsole.screens.campaigns.screen import CampaignsScreen
from smsconsole.screens.dialogs.report_export import ExportReportDialog
from smsconsole.screens.widgets.fields import FormField
from tests.conftest import copy_sqlite_template
from tests.tui.report_seed import seed_report_campaign
from tests.tui.support import make_app, notifications, settle, type_text, wait_for


async def open_page(pilot: Pilot[Any], app: SmsConsoleApp) -> CampaignPageScreen:
    await pilot.press("0")
    await wait_for(pilot, lambda: isinstance(app.screen, CampaignsScreen) and app.screen.table.row_count == 1,
                   what="the campaigns")
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, CampaignPageScreen) and app.screen.report is not None
                   and app.screen.query_one("#campaign-runs-table", DataTable).row_count == 1, what="the report")
    assert isinstance(app.screen, CampaignPageScreen)
    return app.screen


def text_of(page: CampaignPageScreen, selector: str) -> str:
    """What a Static shows, as plain text (a Rich table printed at 120 columns)."""
    console = Console(width=120, file=io.StringIO(), color_system=None)
    with console.capture() as capture:
        console.print(page.query_one(selector, Static).content)
    return capture.get()


async def test_the_page_shows_the_report(runtime: Runtime) -> None:
    view = await seed_report_campaign(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(120, 36)) as pilot:
        page = await open_page(pilot, app)
        report = page.report
        assert report is not None and report.code == view.code
        arms = {arm.arm: arm for arm in report.arms}
        assert (arms["A"].assigned, arms["B"].assigned, arms["control"].reached) == (300, 300, 150)
        assert (arms["A"].conversions, arms["B"].conversions, arms["control"].conversions) == (24, 45, 8)
        table = text_of(page, "#report-arms")
        for arm in (arms["A"], arms["B"], arms["control"], report.total):
            assert f"{arm.conversion_rate * 100:.1f}%" in table
        funnel = text_of(page, "#report-funnel")
        assert "qualified" in funnel and "1,000" in funnel and "converted" in funnel
        verdicts = text_of(page, "#report-verdicts")
        assert "A: no clear difference yet" in verdicts and "B beats control" in verdicts
        assert "Delivery time p50" in verdicts
        assert "sandbox-fail" in text_of(page, "#report-providers")
        assert "GB" in text_of(page, "#report-countries")
        assert "Cost 4.13 USD" in text_of(page, "#report-summary")
        chart = page.query_one(ReportChart)
        assert chart._shown is not None and sum(point[1] for point in chart._shown[1]) == sum(
            p.sent for p in report.series) > 0


async def test_the_keyboard_reaches_the_report_at_80x24(runtime: Runtime) -> None:
    """The report sits below the runs: tab gives it the focus (the page scrolls to it) and
    PageDown then scrolls the page on, as it would with the mouse wheel."""
    from textual.containers import VerticalScroll

    from smsconsole.screens.campaigns.report_panel import ReportPanel

    await seed_report_campaign(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        page = await open_page(pilot, app)
        scroller = page.query_one("#campaign-page", VerticalScroll)
        assert scroller.scroll_y == 0
        for _ in range(4):
            if isinstance(app.focused, ReportPanel):
                break
            await pilot.press("tab")
            await pilot.pause()
        assert isinstance(app.focused, ReportPanel)
        await wait_for(pilot, lambda: scroller.scroll_y > 0, what="the page to scroll to the report")
        before = scroller.scroll_y
        await pilot.press("pagedown")
        await wait_for(pilot, lambda: scroller.scroll_y > before, what="PageDown to scroll the page")


async def test_o_exports_the_report_and_names_a_bad_path(runtime: Runtime, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    await seed_report_campaign(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_page(pilot, app)
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportReportDialog), what="the export dialog")
        field = app.screen.query_one("#input-report-path", Input)
        assert field.value == "C1-report.csv" and app.focused is field
        field.value = ""
        await type_text(pilot, "nowhere/report.csv")
        await pilot.press("enter")
        error = app.screen.query_one(FormField).error
        await wait_for(pilot, lambda: "no folder nowhere" in str(error.render()), what="the path's error")
        assert isinstance(app.screen, ExportReportDialog) and field.value == "nowhere/report.csv"  # nothing lost
        field.value = "report.txt"
        await pilot.press("enter")
        await wait_for(pilot, lambda: "must end in .csv or .json" in str(error.render()), what="the extension's error")
        field.value = "report.json"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, CampaignPageScreen), what="the page again")
        data = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
        assert data["code"] == "C1" and {arm["arm"] for arm in data["arms"]} == {"A", "B", "control"}
        written = (tmp_path / "report.json").resolve()
        assert any(f"Wrote the report of C1 to {written}." in note for note in notifications(app))

        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportReportDialog), what="the export dialog")
        await pilot.press("enter")  # the default: C1-report.csv
        await wait_for(pilot, lambda: isinstance(app.screen, CampaignPageScreen), what="the page again")
        with (tmp_path / "C1-report.csv").open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert {(row["run"], row["arm"]) for row in rows if row["section"] == "arm"} >= {("1", "B"), ("all", "control")}


# --- how it looks --------------------------------------------------------------------------------


@pytest.fixture
def report_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.chdir(tmp_path)
    config = Config(config_dir=Path("config"), data_dir=Path("data"))

    async def seed() -> None:
        await copy_sqlite_template(Path("data/smsconsole.db"))
        rt = await Runtime.open(config)
        try:
            await seed_report_campaign(rt)
        finally:
            await rt.close()

    asyncio.run(seed())
    return config


def scrolled_to(selector: str | None) -> Any:
    """Open the page and scroll it so `selector` is at the top (None: to the end)."""

    async def run_before(pilot: Pilot[Any]) -> None:
        page = await open_page(pilot, pilot.app)  # type: ignore[arg-type]
        await settle(pilot)
        scroll = page.query_one("#campaign-page")
        if selector is None:
            scroll.scroll_end(animate=False)
        else:
            scroll.scroll_to_widget(page.query_one(selector), animate=False, top=True)
        await pilot.pause()
        await settle(pilot)

    return run_before


@pytest.mark.parametrize(("size", "selector"), [
    pytest.param((80, 24), "#campaign-report", id="80x24-table"),
    pytest.param((80, 24), "#report-over-time", id="80x24-chart"),
    pytest.param((80, 24), None, id="80x24-end"),
    pytest.param((120, 36), "#campaign-report", id="120x36-report"),
    pytest.param((120, 36), None, id="120x36-end"),
])
def test_report_snapshot(snap_compare: Any, report_config: Config, size: tuple[int, int], selector: str | None) -> None:
    """The report: the table per arm, the funnel, the chart, the lift verdicts and the breakdowns."""
    assert snap_compare(make_app(report_config), terminal_size=size, run_before=scrolled_to(selector))
