"""How the Groups section looks at 80×24 and 120×36: groups with the default mark and countries,
the highlighted group's providers in priority order with their health (healthy, unhealthy, out of
rotation until a time, probing) and rate limits; the group form with a refused save. Clock frozen,
seeded providers, engine off. Update a snapshot (--snapshot-update) only after reading its diff."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from smsconsole.config import Config
from smsconsole.models import Provider as ProviderRow
from smsconsole.runtime import Runtime
from smsconsole.screens.dialogs.group_form import GroupFormDialog
from smsconsole.services import groups as svc
from tests.conftest import copy_sqlite_template
from tests.tui.seed import FROZEN, add_provider, seed_providers
from tests.tui.support import make_app, settle, wait_for

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 36), id="120x36")]


@pytest.fixture
def groups_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.chdir(tmp_path)
    config = Config(config_dir=Path("config"), data_dir=Path("data"))

    async def seed() -> None:
        await copy_sqlite_template(Path("data/smsconsole.db"))
        rt = await Runtime.open(config)
        try:
            await seed_providers(rt)
            await add_provider(rt, "sandbox", "backup")
            async with rt.factory() as session, session.begin():
                await session.execute(update(ProviderRow).where(ProviderRow.name == "sandbox-fail")
                                      .values(circuit_state="open", circuit_until=FROZEN + timedelta(seconds=45),
                                              rate_limit=10, sender_rate_limit=1))
                await session.execute(update(ProviderRow).where(ProviderRow.name == "backup")
                                      .values(circuit_state="half_open", rate_limit=2.5))
                await svc.create_group(session, name="global", providers="twilio-us,sandbox,backup", actor="seed")
                await svc.create_group(session, name="india", providers="sandbox-fail,sandbox,backup",
                                       countries="IN", actor="seed")
                await svc.create_group(session, name="europe", providers="sandbox", countries="GB,FR,DE,IE",
                                       actor="seed")
        finally:
            await rt.close()

    asyncio.run(seed())
    return config


def rows(pilot: Pilot[Any], selector: str) -> int:
    return pilot.app.screen.query_one(selector, DataTable).row_count


async def groups_loaded(pilot: Pilot[Any]) -> None:
    await pilot.press("7")
    await wait_for(pilot, lambda: rows(pilot, "#groups-table") == 3, what="groups")
    await pilot.press("down", "down")  # india: a provider out of rotation and one probing
    await wait_for(pilot, lambda: "india" in str(pilot.app.screen.query_one("#group-summary").render()),
                   what="india's providers")
    await settle(pilot)  # a live refresh in flight re-sizes the columns (seen once in a loaded full run)
    await pilot.pause()


async def form_refused(pilot: Pilot[Any]) -> None:
    await groups_loaded(pilot)
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, GroupFormDialog), what="the form")
    pilot.app.screen.query_one("#input-countries", Input).value = "IN, GB"
    await pilot.press("ctrl+s")
    await wait_for(pilot, lambda: pilot.app.screen.query_one("#field-countries").error.reason is not None,
                   what="the refusal")
    pilot.app.screen.query_one("#group-form-fields").scroll_home(animate=False)
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES)
def test_groups(snap_compare: Any, groups_config: Config, size: tuple[int, int]) -> None:
    """Groups: ★ on the default, countries, providers in priority order with live health."""
    assert snap_compare(make_app(groups_config), terminal_size=size, run_before=groups_loaded)


@pytest.mark.parametrize("size", SIZES)
def test_group_form_refused(snap_compare: Any, groups_config: Config, size: tuple[int, int]) -> None:
    """The edit form after a refused save: the country already routed by another group, under its field."""
    assert snap_compare(make_app(groups_config), terminal_size=size, run_before=form_refused)
