"""How an A/B campaign looks in the wizard at 80×24 and 120×36: the What step with three variants
(B shown), a control group and the conversion goal, and the Summary with the arms, each
variant's preview and the goal. A seeded draft (the weekly Spring sale of campaign_seed.py with
variants), clock frozen, engine off. Update a snapshot (--snapshot-update) only after reading its
diff in the report."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Static

from smsconsole.config import Config
from smsconsole.runtime import Runtime
from smsconsole.screens.campaigns.steps_send import SendTestStep, SummaryStep
from smsconsole.screens.campaigns.steps_what import WhatStep
from smsconsole.screens.campaigns.steps_when import TypeStep, WhenStep
from smsconsole.screens.campaigns.steps_who import WhoStep
from tests.conftest import copy_sqlite_template
from tests.tui.campaign_seed import DOCUMENT, create
from tests.tui.seed import seed_providers
from tests.tui.segment_seed import seed_segments
from tests.tui.support import make_app, settle, wait_for

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 36), id="120x36")]
STEPS = [TypeStep, WhenStep, WhoStep, WhatStep, SendTestStep, SummaryStep]


def ab_document() -> dict[str, Any]:
    document = copy.deepcopy(DOCUMENT)
    document["what"].pop("body")
    document["what"].pop("generic")
    document["what"].pop("dlt")
    document["what"]["variants"] = [
        {"name": "A", "split": 30, "body": 'Hi {{ profile.name | default: "there" }}, 20% off this week 🌷'},
        {"name": "B", "split": 30, "body": "{{ profile.name }}: your code SPRING20 takes 20% off"},
        {"name": "C", "split": 30, "body": "Spring sale: 20% off everything until Sunday"},
    ]
    document["what"]["control"] = 10
    document["goal"] = {"event": "order", "where": [{"property": "amount", "op": "greater", "value": 0}],
                        "window": "24h", "value": "amount"}
    return document


@pytest.fixture
def ab_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.chdir(tmp_path)
    config = Config(config_dir=Path("config"), data_dir=Path("data"))

    async def seed() -> None:
        await copy_sqlite_template(Path("data/smsconsole.db"))
        rt = await Runtime.open(config)
        try:
            await seed_providers(rt)
            await seed_segments(rt)
            await create(rt, ab_document())
        finally:
            await rt.close()

    asyncio.run(seed())
    return config


def at_step(kind: type) -> Any:
    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.press("0")
        await wait_for(pilot, lambda: bool(pilot.app.screen.query("#campaigns-table"))
                       and pilot.app.screen.query_one("#campaigns-table", DataTable).row_count == 1, what="the list")
        await settle(pilot)
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, TypeStep), what="the wizard")
        for later in STEPS[1:STEPS.index(kind) + 1]:
            await settle(pilot)
            await pilot.press("ctrl+f")
            await wait_for(pilot, lambda later=later: isinstance(pilot.app.screen, later), what=later.__name__)
        screen = pilot.app.screen
        if isinstance(screen, WhatStep):
            await settle(pilot)
            screen.query_one("#what-variant-b", Button).press()
            preview = screen.query_one("#what-preview", Static)
            await wait_for(pilot, lambda: "SPRING20" in str(preview.render()), what="B's preview")
        if isinstance(screen, SummaryStep):
            runs = screen.query_one("#summary-runs", Static)
            await wait_for(pilot, lambda: "Next runs" in str(runs.render()), what="the figures")
        await settle(pilot)

    return run_before


@pytest.mark.parametrize("size", SIZES)
def test_what_with_variants(snap_compare: Any, ab_config: Config, size: tuple[int, int]) -> None:
    """What: the variants row (B shown, each with its share), B's split and the control, B's body
    and preview."""
    assert snap_compare(make_app(ab_config), terminal_size=size, run_before=at_step(WhatStep))


@pytest.mark.parametrize("size", SIZES)
def test_summary_with_variants(snap_compare: Any, ab_config: Config, size: tuple[int, int]) -> None:
    """Summary: the arms, each variant's preview (encoding, segments), then the choices and the goal."""
    assert snap_compare(make_app(ab_config), terminal_size=size, run_before=at_step(SummaryStep))
