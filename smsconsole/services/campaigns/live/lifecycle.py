"""How a live campaign ends: at its end time (`when.end`) or once its target limit is reached.

`settle_live` (the engine's live tick) ends those campaigns: their pending waits and due times
become `ended` with the reason, and the run leaves `live` for `running` with that reason — it
takes no trigger any more and, like any run, is completed by runs.settle_runs once none of its
messages is open (queued, held, claimed or sending); the campaign is completed with it. A stop
(services/campaigns/lifecycle.py) ends the pending waits and due times the same way."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsconsole.models import CampaignDue, CampaignLiveDay, CampaignRun, CampaignWait
from smsconsole.services import audit
from smsconsole.services.campaigns.definition import campaign_code
from smsconsole.services.campaigns.live.common import LiveCampaign, live_campaigns

log = logging.getLogger("smsconsole.campaigns")

ENDED_REASON = "campaign ended"
TARGET_REASON = "target limit reached"


async def end_pending(session: AsyncSession, campaign_id: int, reason: str, *, now: datetime) -> tuple[int, int]:
    """The campaign's pending waits and due times become `ended` with `reason`; (waits, due times)."""
    waits = await session.execute(
        update(CampaignWait).where(CampaignWait.campaign_id == campaign_id, CampaignWait.state == "pending")
        .values(state="ended", reason=reason, ended_at=now).execution_options(synchronize_session=False))
    due = await session.execute(
        update(CampaignDue).where(CampaignDue.campaign_id == campaign_id, CampaignDue.state == "pending")
        .values(state="ended", reason=reason, updated_at=now).execution_options(synchronize_session=False))
    return int(waits.rowcount or 0), int(due.rowcount or 0)


@dataclass(frozen=True)
class Ended:
    campaign_id: int
    reason: str


def end_reason(live: LiveCampaign, total_queued: int, now: datetime) -> str | None:
    """Why the campaign ends now, or None while it goes on."""
    end = live.document.when.end
    if end is not None and end.astimezone(UTC) <= now:
        return ENDED_REASON
    limit = live.document.who.target_limit
    if limit is not None and total_queued >= limit:
        return TARGET_REASON
    return None


async def settle_live(factory: async_sessionmaker[AsyncSession], now: datetime) -> list[Ended]:
    """End the live campaigns whose end time has passed or whose target limit is reached (a
    paused one ends at the first tick after it resumes). One transaction; commits itself.
    Returns what ended."""
    async with factory() as session, session.begin():
        found = await live_campaigns(session)
        with_target = [live.campaign_id for live in found if live.document.who.target_limit is not None]
        totals: dict[int, int] = {}
        if with_target:
            totals = {campaign_id: int(total) for campaign_id, total in await session.execute(
                select(CampaignLiveDay.campaign_id, func.sum(CampaignLiveDay.queued))
                .where(CampaignLiveDay.campaign_id.in_(with_target)).group_by(CampaignLiveDay.campaign_id))}
        ended: list[Ended] = []
        for live in found:
            reason = end_reason(live, totals.get(live.campaign_id, 0), now)
            if reason is None:
                continue
            await end_live(session, live, reason, now=now)
            ended.append(Ended(live.campaign_id, reason))
    return ended


async def end_live(session: AsyncSession, live: LiveCampaign, reason: str, *, now: datetime) -> None:
    """The run stops taking triggers (`running` with the reason, draining its open messages) and
    what was pending ends."""
    result = await session.execute(
        update(CampaignRun).where(CampaignRun.id == live.run_id, CampaignRun.state == "live")
        .values(state="running", reason=reason, updated_at=now).execution_options(synchronize_session=False))
    if not result.rowcount:
        return  # ended already (by a concurrent settle)
    waits, due = await end_pending(session, live.campaign_id, reason, now=now)
    code = campaign_code(live.campaign_id)
    await audit.record(session, "engine", "campaign.end", code, code=code, reason=reason, waits_ended=waits,
                       due_ended=due)
    log.info("campaign %s ended (%s): %d waits and %d due times ended", code, reason, waits, due)

