"""The Campaign ID wherever a campaign's messages appear: message views and paths (with the run
number), Stats (a line per campaign, a campaign filter), replies answering a campaign message
(Inbox), and the CLI's text and --json."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

from smsconsole import clock
from smsconsole.models import Campaign, CampaignRun
from smsconsole.runtime import Runtime
from smsconsole.services import messages, replies, stats
from tests.conftest import make_config
from tests.integration.dispatch_support import add_provider, message_row, queue

TO = "+447400123456"


async def _seed(rt: Runtime) -> tuple[int, int, int]:
    """A Sandbox provider, campaign "Spring sale" with run 2, a sent campaign message to TO, a
    test message, and a reply from TO. Returns (campaign id, campaign message id, test message id)."""
    provider_id = await add_provider(rt, "sandbox")
    now = clock.now()
    async with rt.factory() as session, session.begin():
        campaign = Campaign(name="Spring sale", type="recurring", state="running", document={},
                            created_at=now, updated_at=now)
        session.add(campaign)
        await session.flush()
        runs = [CampaignRun(campaign_id=campaign.id, number=number, planned_at=now - timedelta(days=2 - number),
                            state="running", document={}, suppressed={}, updated_at=now) for number in (1, 2)]
        session.add_all(runs)
        await session.flush()
        campaign_id, run_id = campaign.id, runs[1].id
    sent = now - timedelta(minutes=1)
    campaign_message, test_message = await queue(
        rt,
        message_row(1, kind="campaign", provider_id=provider_id, provider_name="sandbox", to_number=TO,
                    campaign_id=campaign_id, run_id=run_id, variant="A", body="Spring sale!", state="delivered",
                    sent_at=sent),
        message_row(2, kind="test", provider_id=provider_id, provider_name="sandbox", state="sent", sent_at=sent),
    )
    async with rt.factory() as session, session.begin():
        await replies.simulate_reply(session, "sandbox", TO, "thanks")
    return campaign_id, campaign_message, test_message


async def test_message_views_paths_stats_and_replies_carry_the_campaign(runtime: Runtime) -> None:
    campaign_id, campaign_message, test_message = await _seed(runtime)
    code = f"C{campaign_id}"
    async with runtime.factory() as session:
        view = await messages.get_message(session, campaign_message)
        assert (view.campaign_id, view.campaign, view.run_number) == (campaign_id, code, 2)
        other = await messages.get_message(session, test_message)
        assert (other.campaign, other.run_number) == (None, None)
        path = await stats.message_path(session, campaign_message)
        assert path.timeline[0][2] == f"campaign {code} run 2 message to {TO}"
        assert [m.campaign for m in await stats.recent_messages(session)] == [None, code]

        result = await stats.delivery_stats(session, "hour")
        assert result.total.sent == 2 and result.campaign is None
        assert list(result.by_campaign) == [code] and result.campaign_names == {code: "Spring sale"}
        counts = result.by_campaign[code]
        assert (counts.sent, counts.delivered, counts.replies) == (1, 1, 1)
        only = await stats.delivery_stats(session, "hour", campaign_id=campaign_id)
        assert only.campaign == code and (only.total.sent, only.total.replies) == (1, 1)

        [reply] = await replies.recent_inbound(session)
        assert (reply.answers_message_id, reply.answers_campaign_id, reply.answers_campaign) == (
            campaign_message, campaign_id, code)
        assert await stats.find_campaign_id(session, code.lower()) == campaign_id
        assert await stats.find_campaign_id(session, " Spring   sale ") == campaign_id


def test_cli_shows_the_campaign_id(cli, tmp_path: Path, database_url: str) -> None:  # type: ignore[no-untyped-def]
    async def seed() -> tuple[int, int, int]:
        rt = await Runtime.open(make_config(tmp_path, database_url))
        try:
            return await _seed(rt)
        finally:
            await rt.close()

    campaign_id, _, _ = asyncio.run(seed())
    code = f"C{campaign_id}"
    status, out, _ = cli("stats")
    assert status == 0
    line = next(row for row in out.splitlines() if row.startswith(code))
    assert line.split()[:5] == [code, "Spring", "sale", "1", "1"]
    status, out, _ = cli("stats", "--campaign", code, "--json")
    body = json.loads(out)
    assert status == 0 and body["campaign"] == code and body["total"]["sent"] == 1
    assert body["campaigns"][code]["name"] == "Spring sale" and body["campaigns"][code]["replies"] == 1
    status, out, _ = cli("stats", "--campaign", "Spring sale")
    assert status == 0 and out.startswith(f"Delivery, campaign {code} Spring sale, last hour")
    status, _, err = cli("stats", "--campaign", "C999")
    assert status != 0 and err.count("\n") == 1 and "no campaign 'C999'" in err
    status, out, _ = cli("inbox")
    assert status == 0 and "CAMPAIGN" in out and f" {code}/A " in out  # the campaign and the variant answered
    status, out, _ = cli("inbox", "--json")
    assert json.loads(out)[0]["answers_campaign"] == code
