"""An A/B campaign with a control group and a conversion goal, for the report on its page: one run
three hours before FROZEN, 1,000 qualified (40 held back), variants A and B of 300 people each and
150 in control, sends over two hours through two providers into three countries, failures with
codes, suppressions, replies and STOPs, conversions with revenue (B beats control, A not yet).
Deterministic (a seeded random), written straight into the tables the engine would fill."""

from __future__ import annotations

import copy
import random
from datetime import timedelta
from typing import Any

from sqlalchemy import insert

from smsconsole.models import CampaignConversion, CampaignRun, InboundMessage, Message
from smsconsole.runtime import Runtime
from tests.tui.campaign_seed import ONE_TIME, create
from tests.tui.seed import FROZEN, seed_providers
from tests.tui.segment_seed import seed_segments

AB_DOCUMENT: dict[str, Any] = {
    **copy.deepcopy(ONE_TIME), "name": "Winter A/B",
    "when": {"timezone": "UTC", "at": "2026-11-30 12:00"},
    "what": {"route": {"provider": "sandbox"}, "sender": None,
             "variants": [{"body": "Winter sale: 20% off today", "split": 42.5},
                          {"body": "{{ profile.name }}, your 20% winter code is inside", "split": 42.5}],
             "control": 15, "linked_content": {"timeout": 3.0, "on_failure": "skip"}},
    "goal": {"event": "order", "where": [{"property": "amount", "op": "greater", "value": 0}],
             "window": "24h", "value": "amount"},
}
# arm -> (people, conversions)
ARMS = {"A": (300, 24), "B": (300, 45), "control": (150, 8)}


def _rows(rng: random.Random, campaign_id: int, run_id: int) -> tuple[list[dict[str, Any]], list[tuple[str, Any]]]:
    """The run's message rows, and (arm, reached moment) of each reached person."""
    start = FROZEN - timedelta(hours=3)
    rows: list[dict[str, Any]] = []
    reached: list[tuple[str, Any]] = []
    for arm, (people, _) in ARMS.items():
        for index in range(people):
            at = start + timedelta(seconds=int(7200 * (index / people) ** 1.5))
            base = {"kind": "campaign", "to_number": f"+1415555{len(rows):04d}", "body": "", "encoding": "GSM-7",
                    "segments": 1, "campaign_id": campaign_id, "run_id": run_id, "variant": arm, "render": arm != "control",
                    "priority": 0, "attempts": 1, "created_at": at, "updated_at": at,
                    "dedupe_key": f"run:{run_id}:profile:{len(rows)}"}
            if arm == "control":
                rows.append({**base, "state": "control", "segments": 0, "attempts": 0, "finished_at": at})
                reached.append((arm, at))
                continue
            roll = rng.random()
            provider, country = (("sandbox", "US") if rng.random() < 0.6 else ("sandbox-fail", rng.choice(["GB", "IN"])))
            sent = {**base, "provider_name": provider, "country": country, "sent_at": at, "price": 0.0075,
                    "price_currency": "USD"}
            if roll < 0.84:
                rows.append({**sent, "state": "delivered", "finished_at": at + timedelta(seconds=rng.choice([2, 4, 8, 40]))})
            elif roll < 0.90:
                rows.append({**sent, "state": "undelivered", "error_code": rng.choice(["30003", "30005"]),
                             "finished_at": at + timedelta(seconds=30)})
            elif roll < 0.93:
                rows.append({**sent, "state": "sent"})
            elif roll < 0.96:
                rows.append({**base, "provider_name": provider, "country": country, "state": "failed",
                             "error_code": "21211", "reason": "invalid number", "finished_at": at})
                continue
            else:
                rows.append({**base, "state": "suppressed", "finished_at": at,
                             "reason": rng.choice(["frequency cap: 2 campaign SMS per day",
                                                   "the recipient unsubscribed from SMS"])})
                continue
            reached.append((arm, at))
    return rows, reached


async def seed_report_campaign(runtime: Runtime) -> Any:
    """Providers, segments, and the campaign with its run; returns the campaign's view."""
    await seed_providers(runtime)
    await seed_segments(runtime)
    view = await create(runtime, AB_DOCUMENT, schedule=True)
    rng = random.Random(15)
    start = FROZEN - timedelta(hours=3)
    async with runtime.factory() as session, session.begin():
        run = CampaignRun(campaign_id=view.id, number=1, planned_at=start, state="completed", started_at=start,
                          materialized_at=start, finished_at=start + timedelta(hours=2), qualified=1000,
                          materialized=750, suppressed={"unsubscribed": 25, "never_opted_in": 15, "sampled_out": 210},
                          updated_at=start)
        session.add(run)
        await session.flush()
        rows, reached = _rows(rng, view.id, run.id)
        await session.execute(insert(Message), rows)
        conversions = []
        for arm, (_, count) in ARMS.items():
            mine = [at for name, at in reached if name == arm]
            for index, at in enumerate(rng.sample(mine, count)):
                conversions.append({"campaign_id": view.id, "run_id": run.id, "variant": arm,
                                    "profile_id": 100_000 + len(conversions), "event_id": len(conversions) + 1,
                                    "converted_at": min(at + timedelta(minutes=rng.randint(5, 90)), FROZEN),
                                    "revenue": round(rng.uniform(15, 120), 2) if index % 4 else None,
                                    "created_at": start, "updated_at": start})
        await session.execute(insert(CampaignConversion), conversions)
        await session.execute(insert(InboundMessage), [
            {"provider_name": "sandbox", "sender": f"+1415555{index:04d}", "recipient": "SANDBOX",
             "text": "STOP" if action == "opt_out" else "Thanks", "action": action, "campaign_id": view.id,
             "run_id": run.id, "variant": arm, "via": "sandbox", "received_at": start + timedelta(hours=1),
             "processed_at": start + timedelta(hours=1), "dedupe_key": f"seed-reply-{index}"}
            for index, (arm, action) in enumerate([("A", "reply"), ("A", "opt_out"), ("B", "reply"), ("B", "reply"),
                                                   ("B", "opt_out"), ("A", "reply")])])
    return view
