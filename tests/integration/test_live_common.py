"""The pipeline every live trigger goes through (services/campaigns/live/common.py), on both
databases: the Who filter and reach sample, reachability, re-eligibility, one message per person
when re-eligibility says so, the daily and target budgets, the dedupe key (a trigger seen twice
queues once) and the counters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update

from smsconsole import clock
from smsconsole.models import Campaign, CampaignLiveDay, CampaignRun, Message, Profile
from smsconsole.runtime import Runtime
from smsconsole.services.campaigns.live.common import (
    Candidate,
    live_campaigns,
    queue_candidates,
    queued_so_far,
)

NOW = datetime(2026, 12, 24, 10, 0, tzinfo=UTC)


def live_document(**who: Any) -> dict[str, Any]:
    trigger = who.pop("trigger", {})
    return {"name": "Order thanks", "type": "action", "when": {"timezone": "UTC"},
            "who": {"trigger": {"event": "order", **trigger}, **who},
            "what": {"route": {}, "body": "Thanks {{ event.amount }}"}}


async def add_live(rt: Runtime, doc: dict[str, Any]) -> tuple[int, int]:
    async with rt.factory() as session, session.begin():
        campaign = Campaign(name=doc["name"], type=doc["type"], state="running", document=doc, created_at=NOW,
                            updated_at=NOW, scheduled_at=NOW)
        session.add(campaign)
        await session.flush()
        run = CampaignRun(campaign_id=campaign.id, number=1, planned_at=NOW, state="live", document=doc,
                          started_at=NOW, materialized_at=NOW, suppressed={}, updated_at=NOW)
        session.add(run)
        await session.flush()
        return campaign.id, run.id


async def add_people(rt: Runtime, rows: list[dict[str, Any]]) -> list[int]:
    base = {"phone_raw": None, "phone_status": "valid", "sms_capable": True, "country": "GB", "timezone": None,
            "subscription": "subscribed", "properties": {}, "subscription_at": NOW, "created_at": NOW, "updated_at": NOW}
    async with rt.factory() as session, session.begin():
        result = await session.execute(insert(Profile).returning(Profile.id),
                                       [{**base, "phone": f"+4477009{n:05d}", **row} for n, row in enumerate(rows)])
        return list(result.scalars().all())


async def queue(rt: Runtime, candidates: list[Candidate], *, now: datetime = NOW) -> dict[str, str]:
    async with rt.factory() as session, session.begin():
        [live] = await live_campaigns(session)
        return await queue_candidates(session, live, candidates, now=now)


async def counters(rt: Runtime, campaign_id: int) -> dict[str, int]:
    async with rt.factory() as session:
        row = await session.scalar(select(CampaignLiveDay).where(CampaignLiveDay.campaign_id == campaign_id))
        assert row is not None
        return {name: getattr(row, name) for name in ("triggered", "queued", "not_in_filter", "unreachable",
                                                      "not_eligible", "limited")}


async def test_each_candidate_gets_its_outcome_and_the_counters_count_them(runtime: Runtime) -> None:
    clock.freeze(NOW)
    campaign_id, run_id = await add_live(runtime, live_document(
        definition={"conditions": [{"field": "country", "op": "equals", "value": "GB"}]}))
    ok, us, stopped, missing = await add_people(runtime, [
        {}, {"country": "US"}, {"subscription": "unsubscribed"}, {"phone_status": "missing", "sms_capable": False}])
    outcomes = await queue(runtime, [Candidate(ok, "ev:1", event_id=1), Candidate(us, "ev:2", event_id=2),
                                     Candidate(stopped, "ev:3", event_id=3), Candidate(missing, "ev:4", event_id=4),
                                     Candidate(987654, "ev:5", event_id=5)])
    assert outcomes == {"ev:1": "queued", "ev:2": "not_in_filter", "ev:3": "unreachable", "ev:4": "unreachable",
                        "ev:5": "unreachable"}
    async with runtime.factory() as session:
        [message] = list(await session.scalars(select(Message).where(Message.campaign_id == campaign_id)))
    assert (message.profile_id, message.run_id, message.event_id, message.state, message.render,
            message.dedupe_key, message.kind) == (ok, run_id, 1, "queued", True, f"live:{campaign_id}:ev:1", "campaign")
    assert await counters(runtime, campaign_id) == {"triggered": 5, "queued": 1, "not_in_filter": 1,
                                                    "unreachable": 3, "not_eligible": 0, "limited": 0}
    # The same trigger again queues nothing new.
    assert await queue(runtime, [Candidate(ok, "ev:1", event_id=1)]) == {"ev:1": "duplicate"}
    assert (await counters(runtime, campaign_id))["queued"] == 1


async def test_once_keeps_one_per_person_and_after_days_counts_from_the_last_message(runtime: Runtime) -> None:
    clock.freeze(NOW)
    campaign_id, _ = await add_live(runtime, live_document(trigger={"reeligible": "after_days", "reeligible_days": 2}))
    [person] = await add_people(runtime, [{}])
    outcomes = await queue(runtime, [Candidate(person, "ev:1"), Candidate(person, "ev:2")])
    assert outcomes == {"ev:1": "queued", "ev:2": "not_eligible"}
    assert await queue(runtime, [Candidate(person, "ev:3")], now=NOW + timedelta(days=1)) == {"ev:3": "not_eligible"}
    assert await queue(runtime, [Candidate(person, "ev:4")], now=NOW + timedelta(days=2, seconds=1)) == {"ev:4": "queued"}
    # A suppressed message does not count: the person may get it again.
    async with runtime.factory() as session, session.begin():
        await session.execute(update(Message).where(Message.campaign_id == campaign_id).values(state="suppressed"))
    assert await queue(runtime, [Candidate(person, "ev:5")], now=NOW + timedelta(days=2, hours=1)) == {"ev:5": "queued"}


async def test_daily_and_target_limits(runtime: Runtime) -> None:
    clock.freeze(NOW)
    campaign_id, _ = await add_live(runtime, live_document(daily_limit=2, target_limit=3))
    people = await add_people(runtime, [{} for _ in range(5)])
    first = await queue(runtime, [Candidate(p, f"ev:{p}") for p in people])
    assert sorted(first.values()) == ["limited", "limited", "limited", "queued", "queued"]
    assert [first[f"ev:{p}"] for p in people[:2]] == ["queued", "queued"]  # the first ones, in order
    second = await queue(runtime, [Candidate(p, f"ev2:{p}") for p in people], now=NOW + timedelta(days=1))
    assert sorted(second.values()) == ["limited"] * 4 + ["queued"]  # the target (3) leaves one for day two
    async with runtime.factory() as session:
        assert await queued_so_far(session, campaign_id, (NOW + timedelta(days=1)).date()) == (1, 3)
