"""The Campaign ID on the console: a line per campaign in Stats, the recent list's kind, the
message path's summary (with the run number) and the Inbox's answered message."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from smsconsole.config import Config
from smsconsole.runtime import Runtime
from smsconsole.screens.dialogs.message_path import MessagePathDialog
from tests.integration.test_campaign_ids import _seed
from tests.tui.support import make_app, wait_for


def table(pilot: Pilot[Any], selector: str) -> DataTable[Any]:
    return pilot.app.screen.query_one(selector, DataTable)


async def test_stats_path_and_inbox_show_the_campaign(runtime: Runtime, config: Config) -> None:
    campaign_id, campaign_message, _ = await _seed(runtime)
    code = f"C{campaign_id}"
    app = make_app(config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("9")
        providers = table(pilot, "#stats-providers-table")
        await wait_for(pilot, lambda: f"~campaign:{code}" in {str(k.value) for k in providers.rows}, what="campaign")
        row = f"~campaign:{code}"
        assert str(providers.get_cell(row, "provider")) == f"{code} Spring sale"
        assert (str(providers.get_cell(row, "sent")), str(providers.get_cell(row, "replies"))) == ("1", "1")
        recent = table(pilot, "#stats-recent-table")
        await wait_for(pilot, lambda: recent.row_count == 2, what="messages")
        assert str(recent.get_cell(str(campaign_message), "kind")) == f"campaign {code}"
        recent.focus()
        recent.move_cursor(row=recent.get_row_index(str(campaign_message)))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, MessagePathDialog), what="the path")
        summary = str(pilot.app.screen.query_one("#message-detail-summary", Static).render())
        assert f"Campaign {code} run 2" in summary
        await pilot.press("escape")
        await pilot.press("8")
        inbox = table(pilot, "#inbox-table")
        await wait_for(pilot, lambda: inbox.row_count == 1, what="the reply")
        assert str(inbox.get_cell_at((0, 6))).startswith(f"#{campaign_message} {code}/A ")
