"""Replies linked to the campaign arm they answer: a reply matched to a campaign message carries
that message's campaign, run and variant; `replies_by_arm` counts replies and opt-outs per run,
variant and action from them; the Inbox view and `smsconsole inbox` say "C12/B". SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from smsconsole import clock
from smsconsole.models import Campaign, CampaignRun, InboundMessage
from smsconsole.runtime import Runtime
from smsconsole.services import replies
from smsconsole.services.replies import ArmReplies, replies_by_arm
from tests.conftest import make_config
from tests.integration.dispatch_support import add_provider, message_row, queue

A1, B1, B2, TEST, OTHER = "+447400123451", "+447400123452", "+447400123453", "+447400123454", "+447400123455"


async def _campaign(rt: Runtime, name: str, runs: int) -> tuple[int, list[int]]:
    now = clock.now()
    async with rt.factory() as session, session.begin():
        campaign = Campaign(name=name, type="recurring", state="running", document={}, created_at=now, updated_at=now)
        session.add(campaign)
        await session.flush()
        rows = [CampaignRun(campaign_id=campaign.id, number=n, planned_at=now - timedelta(days=runs - n),
                            state="running", document={}, suppressed={}, updated_at=now) for n in range(1, runs + 1)]
        session.add_all(rows)
        await session.flush()
        return campaign.id, [r.id for r in rows]


async def _seed(rt: Runtime) -> tuple[int, list[int], int]:
    """Campaign "Spring" (runs 1, 2) sent A1 (run 1, A), B1 and B2 (run 2, B); campaign "Other" sent
    OTHER; a test message went to TEST. Then: STOP from A1, B2, TEST and OTHER; "thanks" from B1 and
    a number never messaged. Returns (Spring's id, its run ids, Other's id)."""
    provider_id = await add_provider(rt, "sandbox")
    spring, (run1, run2) = await _campaign(rt, "Spring", 2)
    other, (other_run,) = await _campaign(rt, "Other", 1)
    sent = clock.now() - timedelta(minutes=5)
    common = {"kind": "campaign", "provider_id": provider_id, "provider_name": "sandbox", "state": "delivered",
              "sent_at": sent}
    await queue(
        rt,
        message_row(1, to_number=A1, campaign_id=spring, run_id=run1, variant="A", **common),
        message_row(2, to_number=B1, campaign_id=spring, run_id=run2, variant="B", **common),
        message_row(3, to_number=B2, campaign_id=spring, run_id=run2, variant="B", **common),
        message_row(4, to_number=OTHER, campaign_id=other, run_id=other_run, variant="A", **common),
        message_row(5, to_number=TEST, **{**common, "kind": "test"}),
    )
    for sender, text in ((A1, "STOP"), (B1, "thanks!"), (B2, "stop"), (TEST, "STOP"), (OTHER, "STOP"),
                         ("+447400123456", "who is this?")):
        async with rt.factory() as session, session.begin():
            await replies.simulate_reply(session, "sandbox", sender, text)
    return spring, [run1, run2], other


async def test_a_reply_carries_the_campaign_run_and_variant_it_answers(runtime: Runtime) -> None:
    spring, (run1, run2), other = await _seed(runtime)
    async with runtime.factory() as session:
        links = {sender: (campaign_id, run_id, variant, action) for sender, campaign_id, run_id, variant, action in
                 await session.execute(select(InboundMessage.sender, InboundMessage.campaign_id, InboundMessage.run_id,
                                              InboundMessage.variant, InboundMessage.action))}
        views = {v.sender: v for v in await replies.recent_inbound(session)}
    assert links[A1] == (spring, run1, "A", "opt_out")
    assert links[B1] == (spring, run2, "B", "reply")
    assert links[B2] == (spring, run2, "B", "opt_out")
    assert links[TEST] == (None, None, None, "opt_out")  # it answers a test message: no campaign
    assert links["+447400123456"] == (None, None, None, "reply")  # it answers nothing
    assert views[B2].answers_arm == f"C{spring}/B" and views[B2].answers_run_id == run2
    assert views[OTHER].answers_arm == f"C{other}/A"
    assert views[TEST].answers_arm is None and views[TEST].answers_message_id is not None


async def test_replies_by_arm_counts_opt_outs_and_replies_per_run_and_variant(runtime: Runtime) -> None:
    spring, (run1, run2), other = await _seed(runtime)
    async with runtime.factory() as session:
        every = await replies_by_arm(session, spring)
        second = await replies_by_arm(session, spring, run_ids=[run2])
        none = await replies_by_arm(session, spring, run_ids=[])
        others = await replies_by_arm(session, other)
    assert every == [ArmReplies(run1, "A", "opt_out", 1), ArmReplies(run2, "B", "opt_out", 1),
                     ArmReplies(run2, "B", "reply", 1)]
    assert second == every[1:] and none == []
    assert [tuple(row) for row in others] == [(others[0].run_id, "A", "opt_out", 1)]


async def test_a_repeated_reply_is_counted_once(runtime: Runtime) -> None:
    spring, (run1, _), _ = await _seed(runtime)
    async with runtime.factory() as session:
        provider_id = await session.scalar(select(InboundMessage.provider_id).limit(1))
        first = await session.scalar(select(InboundMessage).where(InboundMessage.sender == A1))
        assert first is not None
    from smsconsole.providers.base import InboundReport

    async with runtime.factory() as session, session.begin():
        again = await replies.record_inbound(session, provider_id=provider_id, provider_name="sandbox", via="poll",
                                             report=InboundReport(first.provider_message_id, A1, "SANDBOX", "STOP"))
    assert again.duplicate and again.answers_arm == f"C{spring}/A"
    async with runtime.factory() as session:
        assert (await replies_by_arm(session, spring, run_ids=[run1])) == [ArmReplies(run1, "A", "opt_out", 1)]


def test_cli_inbox_shows_the_campaign_and_variant(cli, tmp_path: Path, database_url: str) -> None:  # type: ignore[no-untyped-def]
    async def seed() -> int:
        rt = await Runtime.open(make_config(tmp_path, database_url))
        try:
            spring, _, _ = await _seed(rt)
            return spring
        finally:
            await rt.close()

    spring = asyncio.run(seed())
    status, out, _ = cli("inbox")
    assert status == 0
    line = next(row for row in out.splitlines() if row[20:].startswith(B2))
    assert f" C{spring}/B " in line
    status, out, _ = cli("inbox", "--action", "opt-out", "--json")
    body = {reply["sender"]: reply for reply in json.loads(out)}
    assert status == 0 and body[A1]["answers_campaign"] == f"C{spring}" and body[A1]["answers_variant"] == "A"
    assert body[TEST]["answers_variant"] is None
