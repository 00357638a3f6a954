"""Campaigns for console tests: a full draft, a scheduled campaign with a finished run (messages in
several states, people held back), over the segment audience and the seeded providers."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from smsconsole.models import Campaign, CampaignRun, Message
from smsconsole.runtime import Runtime
from smsconsole.services.campaigns import crud
from tests.tui.seed import FROZEN, seed_providers
from tests.tui.segment_seed import seed_segments

DOCUMENT: dict[str, Any] = {
    "name": "Spring sale",
    "type": "recurring",
    "when": {"timezone": "Europe/London",
             "recurrence": {"every": "week", "interval": 1, "weekdays": ["mon", "thu"], "time": "10:00",
                            "start": "2026-12-01", "end": "2027-03-31"},
             "user_timezone": True, "late": "next_day", "dnd": {"start": "21:00", "end": "09:00", "action": "delay"},
             "ignore_global_limits": False},
    "who": {"segment": "gold-plan", "reach_percent": 100, "target_limit": None, "run_limit": 1000,
            "daily_limit": None, "safety_limit": 5000},
    "what": {"route": {"provider": "sandbox"}, "sender": None,
             "body": 'Hi {{ profile.name | default: "there" }}, 20% off this week 🌷',
             "generic": {}, "dlt": {}, "linked_content": {"timeout": 3.0, "on_failure": "skip"}},
}
ONE_TIME: dict[str, Any] = {**copy.deepcopy(DOCUMENT), "name": "Flash sale", "type": "one_time",
                            "when": {"timezone": "UTC", "at": "2026-11-23 12:00"}}


async def create(runtime: Runtime, document: dict[str, Any], *, schedule: bool = False) -> crud.CampaignView:
    async with runtime.factory() as session, session.begin():
        view = await crud.create_campaign(session, document, actor="seed")
        if schedule:
            view = await crud.schedule_campaign(session, view.code, actor="seed")
        return view


async def add_finished_run(runtime: Runtime, campaign_id: int) -> None:
    """Run 1, an hour ago: 4 qualified, 1 held back (unsubscribed); 3 messages sent, delivered, failed."""
    at = FROZEN - timedelta(hours=1)
    async with runtime.factory() as session, session.begin():
        run = CampaignRun(campaign_id=campaign_id, number=1, planned_at=at, state="completed", started_at=at,
                          materialized_at=at, finished_at=at + timedelta(minutes=2), qualified=4, materialized=3,
                          suppressed={"unsubscribed": 1}, updated_at=at)
        session.add(run)
        await session.flush()
        for index, state in enumerate(("sent", "delivered", "failed")):
            session.add(Message(kind="campaign", priority=0, to_number=f"+4474001234{index:02d}", body="Hi",
                                encoding="GSM-7", segments=1, state=state, attempts=1, campaign_id=campaign_id,
                                run_id=run.id, variant="A", dedupe_key=f"run:{run.id}:profile:{index}",
                                reason="rejected by provider" if state == "failed" else None,
                                created_at=at, updated_at=at, sent_at=at if state != "failed" else None))


async def block(runtime: Runtime, campaign_id: int, qualified: int) -> None:
    """The state the safety check leaves: a blocked run and a blocked campaign."""
    at = FROZEN - timedelta(minutes=5)
    async with runtime.factory() as session, session.begin():
        campaign = await session.get(Campaign, campaign_id)
        assert campaign is not None
        campaign.state = "blocked"
        campaign.blocked_reason = f"{qualified:,} qualified, more than the safety limit of 5,000"
        session.add(CampaignRun(campaign_id=campaign_id, number=2, planned_at=at, state="blocked", qualified=qualified,
                                reason=campaign.blocked_reason, suppressed={}, updated_at=at))


async def seed_campaigns(runtime: Runtime) -> tuple[crud.CampaignView, crud.CampaignView]:
    """Providers, the segment audience, a draft (Spring sale) and a scheduled one with a run (Flash sale)."""
    await seed_providers(runtime)
    await seed_segments(runtime)
    draft = await create(runtime, DOCUMENT)
    scheduled = await create(runtime, {**ONE_TIME, "when": {"timezone": "UTC", "at": "2026-11-30 12:00"}},
                             schedule=True)
    await add_finished_run(runtime, scheduled.id)
    return draft, scheduled
