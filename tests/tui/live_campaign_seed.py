"""Live campaigns for console tests: an abandoned-cart campaign (inaction) that has been live for an
hour, in the state the engine leaves its tables (a `live` run, pending and finished waits, today's
counters, messages from waits and events), and a draft 'On a date' reminder. Times are relative to
tests.tui.seed.FROZEN; rows are written directly, as tests/tui/campaign_seed.py does for runs."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from smsconsole.models import (
    Campaign,
    CampaignLiveDay,
    CampaignRun,
    CampaignWait,
    Event,
    Message,
    Profile,
    PropertyDef,
)
from smsconsole.runtime import Runtime
from smsconsole.services.campaigns import crud
from tests.tui.seed import FROZEN, seed_providers
from tests.tui.segment_seed import seed_segments

CART: dict[str, Any] = {
    "name": "Abandoned cart",
    "type": "inaction",
    "when": {"timezone": "Europe/London", "start": "2026-11-23 08:00", "end": "2026-12-31 00:00",
             "dnd": {"start": "21:00", "end": "09:00", "action": "delay"}, "ignore_global_limits": False},
    "who": {"segment": "gold-plan", "reach_percent": 100, "daily_limit": 500, "target_limit": 1000,
            "trigger": {"event": "add_to_cart", "where": [{"property": "amount", "op": "greater", "value": 100}],
                        "cancel_event": "checkout", "within_minutes": 5, "reeligible": "after_days",
                        "reeligible_days": 7}},
    "what": {"route": {"provider": "sandbox"}, "body": "Hi {{ profile.name | default: 'there' }}, your cart of "
             "{{ event.amount }} is waiting"},
}
TRIP: dict[str, Any] = {
    "name": "Trip reminder",
    "type": "date",
    "when": {"timezone": "UTC", "user_timezone": True},
    "who": {"trigger": {"property": "travel_date", "offset_days": -1, "at": "09:00", "reeligible": "every_time"}},
    "what": {"route": {"provider": "sandbox"}, "body": "Your trip is tomorrow. Bon voyage!"},
}


async def seed_catalog(runtime: Runtime) -> None:
    """The event properties the triggers name: add_to_cart's amount, checkout's total."""
    async with runtime.factory() as session, session.begin():
        session.add_all([PropertyDef(scope="event:add_to_cart", name="amount", type="number"),
                         PropertyDef(scope="event:checkout", name="total", type="number"),
                         PropertyDef(scope="profile", name="travel_date", type="date")])


async def create(runtime: Runtime, document: dict[str, Any]) -> crud.CampaignView:
    async with runtime.factory() as session, session.begin():
        return await crud.create_campaign(session, copy.deepcopy(document), actor="seed")


async def make_live(runtime: Runtime, campaign_id: int, *, since: Any = None) -> int:
    """The state the engine leaves a scheduled live campaign in: one `live` run, the campaign running."""
    since = since or FROZEN - timedelta(hours=1)
    async with runtime.factory() as session, session.begin():
        campaign = await session.get(Campaign, campaign_id)
        assert campaign is not None
        campaign.state, campaign.next_run_at, campaign.scheduled_at = "running", None, since
        run = CampaignRun(campaign_id=campaign_id, number=1, planned_at=since, state="live", started_at=since,
                          materialized_at=since, suppressed={}, updated_at=since)
        session.add(run)
        await session.flush()
        return run.id


async def add_activity(runtime: Runtime, campaign_id: int, run_id: int) -> None:
    """Four people added to cart: two waits pending, one cancelled by checkout, one fired (its message
    delivered); an earlier action message failed; today's counters to match, and some held back."""
    async with runtime.factory() as session, session.begin():
        people = [Profile(user_id=f"c{index}", phone=f"+4474009000{index:02d}", phone_raw=f"+4474009000{index:02d}",
                          phone_status="valid", sms_capable=True, created_at=FROZEN - timedelta(days=30),
                          updated_at=FROZEN - timedelta(days=30)) for index in range(1, 5)]
        session.add_all(people)
        await session.flush()
        events = [Event(profile_id=person.id, name="add_to_cart", at=FROZEN - timedelta(minutes=50 - index * 12),
                        properties={"amount": 120 + index}, dedupe=f"seed-cart-{index}")
                  for index, person in enumerate(people)]
        session.add_all(events)
        await session.flush()
        states = ("fired", "cancelled", "pending", "pending")
        waits = []
        for person, event, state in zip(people, events, states, strict=True):
            wait = CampaignWait(campaign_id=campaign_id, run_id=run_id, profile_id=person.id, event_id=event.id,
                                started_at=event.at, due_at=event.at + timedelta(minutes=5), state=state,
                                reason="checkout arrived in time" if state == "cancelled" else None,
                                ended_at=event.at + timedelta(minutes=2) if state != "pending" else None,
                                created_at=event.at)
            session.add(wait)
            waits.append(wait)
        await session.flush()
        fired_at = waits[0].due_at
        for index, (state, wait) in enumerate((("failed", None), ("delivered", waits[0]))):
            at = fired_at - timedelta(minutes=10) if wait is None else fired_at
            session.add(Message(kind="campaign", priority=0, to_number=people[0].phone or "", body="Hi",
                                encoding="GSM-7", segments=1, state=state, attempts=1, campaign_id=campaign_id,
                                run_id=run_id, profile_id=people[0].id, event_id=events[0].id,
                                wait_id=wait.id if wait else None, dedupe_key=f"live:{campaign_id}:seed{index}",
                                reason="rejected by provider" if state == "failed" else None,
                                created_at=at, updated_at=at, sent_at=at if state == "delivered" else None))
        session.add(CampaignLiveDay(campaign_id=campaign_id, day=FROZEN.date(), triggered=6, queued=2,
                                    waits_started=4, waits_cancelled=1, not_in_filter=1, unreachable=1,
                                    not_eligible=0, limited=0, late=0))
        session.add(CampaignLiveDay(campaign_id=campaign_id, day=FROZEN.date() - timedelta(days=1), triggered=3,
                                    queued=3, waits_started=3, waits_cancelled=0, not_in_filter=0, unreachable=0,
                                    not_eligible=0, limited=0, late=0))


async def add_fire(runtime: Runtime, campaign_id: int, run_id: int, to_number: str, *, minutes_later: int) -> int:
    """One more message of the campaign (a wait that just ran out), as the engine queues it."""
    at = FROZEN + timedelta(minutes=minutes_later)
    async with runtime.factory() as session, session.begin():
        message = Message(kind="campaign", priority=0, to_number=to_number, body="", encoding="GSM-7", segments=1,
                          state="queued", attempts=0, campaign_id=campaign_id, run_id=run_id, render=True,
                          dedupe_key=f"live:{campaign_id}:late{minutes_later}", created_at=at, updated_at=at)
        session.add(message)
        await session.flush()
        return message.id


async def seed_live(runtime: Runtime) -> tuple[crud.CampaignView, int, crud.CampaignView]:
    """Providers, the segment audience, the live abandoned-cart campaign (C1) with activity, and the
    draft trip reminder (C2)."""
    await seed_providers(runtime)
    await seed_segments(runtime)
    cart = await create(runtime, CART)
    run_id = await make_live(runtime, cart.id)
    await add_activity(runtime, cart.id, run_id)
    trip = await create(runtime, TRIP)
    return cart, run_id, trip
