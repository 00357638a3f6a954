"""Replies to an A/B campaign in the Inbox, at 80×24 and 120×36: the Answers column names the
campaign and variant each answers ("C1/B"); and a priced message's path says what it cost. The demo
seed plus campaign "Spring sale" (run 1 sent variant A, run 2 variant B, priced by the provider) and
two replies (a STOP, a plain reply), clock frozen, engine off."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from smsconsole import clock
from smsconsole.config import Config
from smsconsole.models import Campaign, CampaignRun, Message, Provider as ProviderRow
from smsconsole.providers.base import InboundReport
from smsconsole.runtime import Runtime
from smsconsole.screens.dialogs.message_path import MessagePathDialog
from smsconsole.services.replies import record_inbound
from tests.conftest import copy_sqlite_template
from tests.tui.seed import FROZEN, seed_demo
from tests.tui.support import make_app, settle, wait_for

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 36), id="120x36")]
ARMS = [  # (to, run number, variant, minutes before FROZEN it was sent, reply, minutes before FROZEN)
    ("+447400123461", 1, "A", 15, "STOP", 4),
    ("+447400123462", 2, "B", 10, "Yes please!", 2),
]


async def seed_arms(rt: Runtime) -> None:
    async with rt.factory() as session, session.begin():
        provider_id = await session.scalar(select(ProviderRow.id).where(ProviderRow.name == "sandbox"))
        campaign = Campaign(name="Spring sale", type="recurring", state="running", document={},
                            created_at=FROZEN - timedelta(days=2), updated_at=FROZEN - timedelta(days=2))
        session.add(campaign)
        await session.flush()
        runs = {n: CampaignRun(campaign_id=campaign.id, number=n, planned_at=FROZEN - timedelta(minutes=30 - n),
                               state="running", document={}, suppressed={}, updated_at=FROZEN) for n in (1, 2)}
        session.add_all(runs.values())
        await session.flush()
        for to, run, variant, sent, _, _ in ARMS:
            at = FROZEN - timedelta(minutes=sent)
            await session.execute(insert(Message), [{
                "kind": "campaign", "priority": 0, "provider_id": provider_id, "provider_name": "sandbox",
                "country": "GB", "to_number": to, "body": f"Spring sale: 20% off ({variant})", "encoding": "GSM-7",
                "segments": 1, "state": "delivered", "attempts": 1, "campaign_id": campaign.id,
                "run_id": runs[run].id, "variant": variant, "provider_message_id": f"SBXARM{run}{variant}",
                "price": 0.0333, "price_currency": "EUR", "created_at": at, "updated_at": at, "sent_at": at,
                "finished_at": at + timedelta(seconds=3)}])
    for index, (to, _, _, _, text, minutes) in enumerate(ARMS):
        clock.freeze(FROZEN - timedelta(minutes=minutes))
        async with rt.factory() as session, session.begin():
            await record_inbound(session, provider_id=provider_id, provider_name="sandbox", via="poll",
                                 report=InboundReport(provider_message_id=f"MOARM{index}", sender=to,
                                                      recipient="SANDBOX", text=text))
    clock.freeze(FROZEN)


@pytest.fixture
def arms_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.chdir(tmp_path)
    config = Config(config_dir=Path("config"), data_dir=Path("data"))

    async def seed() -> None:
        await copy_sqlite_template(Path("data/smsconsole.db"))
        rt = await Runtime.open(config)
        try:
            await seed_demo(rt)
            await seed_arms(rt)
        finally:
            await rt.close()

    asyncio.run(seed())
    return config


def rows(pilot: Pilot[Any], selector: str) -> int:
    return pilot.app.screen.query_one(selector, DataTable).row_count


@pytest.mark.parametrize("size", SIZES)
def test_inbox_names_the_campaign_and_variant_answered(snap_compare: Any, arms_config: Config,
                                                       size: tuple[int, int]) -> None:
    """Inbox: the STOP answers C1/A, the plain reply C1/B."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.press("8")
        await wait_for(pilot, lambda: rows(pilot, "#inbox-table") == 2, what="replies")
        await settle(pilot)

    assert snap_compare(make_app(arms_config), terminal_size=size, run_before=run_before)


async def test_the_message_path_says_what_it_cost(arms_config: Config) -> None:
    """The path of the B message (id 7: after the demo seed's five and the A one) shows its cost."""
    app = make_app(arms_config)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("9")
        await wait_for(pilot, lambda: rows(pilot, "#stats-recent-table") >= 7, what="messages")
        table = pilot.app.screen.query_one("#stats-recent-table", DataTable)
        table.move_cursor(row=table.get_row_index("7"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, MessagePathDialog), what="the path")
        await settle(pilot)
        summary = str(pilot.app.screen.query_one("#message-detail-summary", Static).render())
        assert "Cost 0.0333 EUR" in summary and "Campaign C1 run 2" in summary
