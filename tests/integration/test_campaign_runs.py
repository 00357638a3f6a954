"""Campaign runs on both databases, with campaigns written straight into the table and a frozen
clock: starting runs (idempotent, misfire grace, safety check with its alert), materializing them
set-based (reachable only, sampling, target/run/daily limits, user time zones, DND, late users,
paused campaigns), counting and settling them; and kill -9 during materialization: a run killed
mid-way and resumed by the engine reaches every reachable user exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select, update

from smsconsole import clock
from smsconsole.models import AuditEntry, Campaign, CampaignRun, Message, Profile, Setting
from smsconsole.runtime import Runtime
from smsconsole.services.campaigns.definition import parse_document
from smsconsole.services.campaigns.materialize import materialize_run
from smsconsole.services.campaigns.runs import estimate_campaign, run_counts, settle_runs, start_due_runs
from smsconsole.services import providers
from tests.conftest import make_config
from tests.fakes.server import serve
from tests.fakes.sink import SmsSink, generic_config

PLANNED = datetime(2026, 12, 24, 10, 0, tzinfo=UTC)
GB = {"conditions": [{"field": "country", "op": "equals", "value": "GB"}]}


def document(*, when: dict[str, Any] | None = None, who: dict[str, Any] | None = None,
             type_: str = "one_time") -> dict[str, Any]:
    return {
        "name": "Spring sale", "type": type_,
        "when": {"timezone": "UTC", "at": "2026-12-24 10:00", **(when or {})},
        "who": {"definition": GB, **(who or {})},
        "what": {"route": {}, "body": "Hi {{ profile.name | default: \"there\" }}"},
    }


async def add_profiles(rt: Runtime, count: int, *, country: str = "GB", subscription: str = "subscribed",
                       phone_status: str = "valid", timezone: str | None = None, prefix: str = "+447700",
                       start: int = 0) -> None:
    now = clock.now()
    rows = [{"phone": None if phone_status == "missing" else f"{prefix}{start + n:06d}",
             "phone_raw": None, "phone_status": phone_status, "sms_capable": phone_status == "valid",
             "country": country, "timezone": timezone, "subscription": subscription, "properties": {},
             "subscription_at": now, "created_at": now, "updated_at": now} for n in range(count)]
    async with rt.factory() as session, session.begin():
        await session.execute(insert(Profile), rows)


async def add_campaign(rt: Runtime, doc: dict[str, Any], *, next_run_at: datetime | None = PLANNED,
                       state: str = "scheduled", scheduled_at: datetime | None = None) -> int:
    now = clock.now()
    async with rt.factory() as session, session.begin():
        row = Campaign(name=doc["name"], type=doc["type"], state=state, document=doc, next_run_at=next_run_at,
                       created_at=now, updated_at=now, scheduled_at=scheduled_at or now)
        session.add(row)
        await session.flush()
        return row.id


async def set_setting(rt: Runtime, key: str, value: str) -> None:
    async with rt.factory() as session, session.begin():
        session.add(Setting(key=key, value=value, updated_at=clock.now()))


async def run_row(rt: Runtime, run_id: int) -> CampaignRun:
    async with rt.factory() as session:
        row = await session.get(CampaignRun, run_id)
        assert row is not None
        return row


async def campaign_row(rt: Runtime, campaign_id: int) -> Campaign:
    async with rt.factory() as session:
        row = await session.get(Campaign, campaign_id)
        assert row is not None
        return row


async def messages(rt: Runtime, run_id: int) -> list[Message]:
    async with rt.factory() as session:
        return list(await session.scalars(select(Message).where(Message.run_id == run_id).order_by(Message.profile_id)))


async def start_and_materialize(rt: Runtime, at: datetime, *, grace: float | None = None,
                                chunk: int = 7) -> list[int]:
    clock.freeze(at)
    started = await start_due_runs(rt.factory, now=at, grace=grace)
    for run_id in started:
        await materialize_run(rt.factory, run_id, chunk=chunk)
    return started


async def test_a_run_materializes_the_reachable_members_once(runtime: Runtime) -> None:
    clock.freeze(PLANNED - timedelta(days=1))
    await add_profiles(runtime, 10)
    await add_profiles(runtime, 3, subscription="unsubscribed", start=100)
    await add_profiles(runtime, 2, subscription="never", start=200)
    await add_profiles(runtime, 1, phone_status="missing")
    await add_profiles(runtime, 4, country="US", prefix="+1415555", start=300)
    campaign_id = await add_campaign(runtime, document())

    assert await start_due_runs(runtime.factory, now=PLANNED - timedelta(seconds=1)) == []
    [run_id] = await start_and_materialize(runtime, PLANNED)
    # Idempotent: starting again creates nothing, materializing again inserts nothing.
    assert await start_due_runs(runtime.factory, now=PLANNED) == []
    async with runtime.factory() as session, session.begin():
        await session.execute(update(CampaignRun).where(CampaignRun.id == run_id)
                              .values(state="materializing", materialized_at=None, cursor=0))
    assert await materialize_run(runtime.factory, run_id, chunk=3) == 0

    rows = await messages(runtime, run_id)
    assert len(rows) == 10
    assert {m.profile_id for m in rows} == set(range(1, 11))
    first = rows[0]
    assert (first.kind, first.state, first.render, first.body, first.variant, first.priority) == (
        "campaign", "queued", True, "", "A", 0)
    assert first.campaign_id == campaign_id and first.country == "GB" and first.to_number == "+447700000000"
    assert first.dedupe_key == f"run:{run_id}:profile:{first.profile_id}"
    assert first.next_attempt_at is None
    run = await run_row(runtime, run_id)
    assert (run.state, run.number, run.planned_at, run.qualified, run.materialized) == ("running", 1, PLANNED, 16, 10)
    assert run.suppressed == {"unsubscribed": 3, "never_opted_in": 2, "no_phone": 1}
    assert run.document["name"] == "Spring sale"
    campaign = await campaign_row(runtime, campaign_id)
    assert (campaign.state, campaign.next_run_at) == ("running", None)

    async with runtime.factory() as session:
        counts = (await run_counts(session, [run_id]))[run_id]
    assert (counts.queued, counts.total, counts.held_back["unsubscribed"]) == (10, 10, 3)


async def test_chunks_written_side_by_side_leave_a_cursor_that_covers_them_all(runtime: Runtime) -> None:
    clock.freeze(PLANNED)
    await add_profiles(runtime, 500)
    await add_campaign(runtime, document())
    [run_id] = await start_due_runs(runtime.factory, now=PLANNED)
    chunks: list[int] = []
    assert await materialize_run(runtime.factory, run_id, chunk=37, parallel=3, on_chunk=chunks.append) == 500
    run = await run_row(runtime, run_id)
    assert (run.cursor, run.materialized, run.state) == (500, 500, "running")
    assert sum(chunks) == 500 and len(chunks) == 14
    assert sorted(m.profile_id for m in await messages(runtime, run_id)) == list(range(1, 501))


async def test_settling_completes_the_run_and_the_campaign(runtime: Runtime) -> None:
    clock.freeze(PLANNED)
    await add_profiles(runtime, 3)
    campaign_id = await add_campaign(runtime, document())
    [run_id] = await start_and_materialize(runtime, PLANNED)
    assert await settle_runs(runtime.factory, now=PLANNED) == []
    async with runtime.factory() as session, session.begin():
        ids = list(await session.scalars(select(Message.id).where(Message.run_id == run_id)))
        await session.execute(update(Message).where(Message.id == ids[0]).values(state="delivered"))
        await session.execute(update(Message).where(Message.id == ids[1]).values(state="failed"))
        await session.execute(update(Message).where(Message.id == ids[2])
                              .values(state="suppressed", reason="frequency cap: 1 per day"))
    assert await settle_runs(runtime.factory, now=PLANNED) == [run_id]
    assert (await run_row(runtime, run_id)).state == "completed"
    assert (await campaign_row(runtime, campaign_id)).state == "completed"
    async with runtime.factory() as session:
        counts = (await run_counts(session, [run_id]))[run_id]
    assert (counts.delivered, counts.failed, counts.suppressed) == (1, 1, 1)
    assert counts.suppressed_by_reason == {"frequency cap: 1 per day": 1}


async def test_reach_percent_samples_at_random(runtime: Runtime) -> None:
    clock.freeze(PLANNED)
    await add_profiles(runtime, 1000)
    await add_campaign(runtime, document(who={"reach_percent": 30}))
    [run_id] = await start_and_materialize(runtime, PLANNED, chunk=250)
    rows = await messages(runtime, run_id)
    assert 250 <= len(rows) <= 350
    run = await run_row(runtime, run_id)
    assert run.suppressed == {"sampled_out": 1000 - len(rows)}
    ids = sorted(m.profile_id for m in rows)
    assert ids[0] < 50 and ids[-1] > 950  # spread over the audience, not its first ids


async def test_run_and_target_limits_hold_across_runs(runtime: Runtime) -> None:
    clock.freeze(PLANNED)
    await add_profiles(runtime, 400)
    doc = document(type_="multiple_dates", who={"run_limit": 100, "target_limit": 150},
                   when={"at": None, "dates": ["2026-12-24 10:00", "2026-12-25 10:00", "2026-12-26 10:00"]})
    await add_campaign(runtime, doc)
    counts = []
    for day in range(3):
        [run_id] = await start_and_materialize(runtime, PLANNED + timedelta(days=day), chunk=64)
        counts.append((len(await messages(runtime, run_id)), (await run_row(runtime, run_id)).suppressed))
    assert counts == [(100, {"run_limit": 300}), (50, {"target_limit": 350}), (0, {"target_limit": 400})]
    async with runtime.factory() as session:
        sent_to = await session.scalar(select(func.count()).select_from(Message))
    assert sent_to == 150


async def test_daily_limit_counts_the_runs_of_the_same_day(runtime: Runtime) -> None:
    clock.freeze(PLANNED)
    await add_profiles(runtime, 100)
    doc = document(type_="multiple_dates", who={"daily_limit": 60},
                   when={"at": None, "dates": ["2026-12-24 10:00", "2026-12-24 16:00", "2026-12-25 10:00"]})
    await add_campaign(runtime, doc)
    sizes = []
    for moment in (PLANNED, PLANNED + timedelta(hours=6), PLANNED + timedelta(days=1)):
        [run_id] = await start_and_materialize(runtime, moment)
        sizes.append(len(await messages(runtime, run_id)))
    assert sizes == [60, 0, 60]


async def test_safety_check_blocks_the_run_and_alerts(runtime: Runtime) -> None:
    received: list[dict[str, Any]] = []

    async def webhook(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        received.append(json.loads(body))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    clock.freeze(PLANNED)
    await add_profiles(runtime, 12)
    await add_profiles(runtime, 5, subscription="unsubscribed", start=100)
    campaign_id = await add_campaign(runtime, document(who={"safety_limit": 10}))
    with serve(webhook) as server:
        await set_setting(runtime, "campaign_alert_webhook", f"{server.url}/alerts")
        assert await start_due_runs(runtime.factory, now=PLANNED) == []
    async with runtime.factory() as session:
        run = await session.scalar(select(CampaignRun).where(CampaignRun.campaign_id == campaign_id))
        audit = list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "campaign.blocked")))
        outbox = await session.scalar(select(func.count()).select_from(Message))
    assert run is not None and (run.state, run.qualified) == ("blocked", 12)
    campaign = await campaign_row(runtime, campaign_id)
    assert campaign.state == "blocked"
    assert "12 people qualify" in (campaign.blocked_reason or "") and "safety limit of 10" in (campaign.blocked_reason or "")
    assert [(a.target, a.details["qualified"], a.details["safety_limit"]) for a in audit] == [(f"C{campaign_id}", 12, 10)]
    assert outbox == 0
    assert len(received) == 1
    assert received[0]["event"] == "campaign.blocked" and received[0]["qualified"] == 12
    assert received[0]["campaign_id"] == f"C{campaign_id}"

    # Resumed with a higher limit (what `campaigns resume` does): the run is checked again and goes.
    async with runtime.factory() as session, session.begin():
        doc = document(who={"safety_limit": 20})
        await session.execute(update(Campaign).where(Campaign.id == campaign_id)
                              .values(state="scheduled", blocked_reason=None, document=doc, next_run_at=PLANNED))
        await session.execute(update(CampaignRun).where(CampaignRun.id == run.id)
                              .values(state="planned", reason=None, started_at=None))
    assert await start_due_runs(runtime.factory, now=PLANNED) == [run.id]
    assert (await run_row(runtime, run.id)).document["who"]["safety_limit"] == 20
    async with runtime.factory() as session:
        assert await session.scalar(select(func.count()).select_from(CampaignRun)) == 1
    assert (await campaign_row(runtime, campaign_id)).next_run_at is None


async def test_an_unreachable_alert_webhook_is_not_fatal(runtime: Runtime) -> None:
    clock.freeze(PLANNED)
    await add_profiles(runtime, 3)
    await set_setting(runtime, "campaign_alert_webhook", "http://127.0.0.1:9/alerts")
    campaign_id = await add_campaign(runtime, document(who={"safety_limit": 2}))
    assert await start_due_runs(runtime.factory, now=PLANNED) == []
    assert (await campaign_row(runtime, campaign_id)).state == "blocked"


async def test_a_run_past_the_grace_is_missed_one_within_it_starts(runtime: Runtime) -> None:
    clock.freeze(PLANNED)
    await add_profiles(runtime, 2)
    late = await add_campaign(runtime, document(type_="recurring", when={
        "at": None, "recurrence": {"every": "day", "time": "08:00", "start": "2026-12-20"}}),
        next_run_at=PLANNED - timedelta(hours=2), scheduled_at=PLANNED - timedelta(days=5))
    doc = document(when={"at": "2026-12-24 09:30"})
    doc["name"] = "Within grace"
    within = await add_campaign(runtime, doc, next_run_at=PLANNED - timedelta(minutes=30),
                                scheduled_at=PLANNED - timedelta(days=1))
    started = await start_due_runs(runtime.factory, now=PLANNED)
    async with runtime.factory() as session:
        runs = {r.campaign_id: r for r in await session.scalars(select(CampaignRun))}
    assert runs[late].state == "missed" and "misfire grace of 60 min" in (runs[late].reason or "")
    assert runs[within].state == "materializing" and started == [runs[within].id]
    assert (await campaign_row(runtime, late)).next_run_at == PLANNED + timedelta(days=1) - timedelta(hours=2)


async def test_user_time_zone_not_before_per_zone_and_late_users(runtime: Runtime) -> None:
    clock.freeze(PLANNED - timedelta(days=2))
    await add_profiles(runtime, 2, timezone="Asia/Kolkata", prefix="+9198765")
    await add_profiles(runtime, 2, timezone="America/New_York", prefix="+1212555")
    await add_profiles(runtime, 2, prefix="+447700", start=50)  # no zone: the phone's, Europe/London
    await add_profiles(runtime, 1, timezone="Asia/Tokyo", prefix="+8190123")
    await set_setting(runtime, "campaign_misfire_grace", "600")
    await add_campaign(runtime, document(when={"user_timezone": True, "late": "next_day"},
                                        who={"definition": None}))
    # Started 9 h after the first zone reached 10:00 (a generous grace for the start itself):
    # Tokyo's and Kolkata's 10:00 have passed, so they get it at 10:00 the next day.
    moment = datetime(2026, 12, 24, 5, 0, tzinfo=UTC)
    clock.freeze(moment)
    [run_id] = await start_due_runs(runtime.factory, now=moment, grace=86400)
    assert await materialize_run(runtime.factory, run_id, chunk=3) == 7
    by_zone = {m.to_number[:4]: m.next_attempt_at for m in await messages(runtime, run_id)}
    assert by_zone == {
        "+919": datetime(2026, 12, 25, 4, 30, tzinfo=UTC),
        "+121": datetime(2026, 12, 24, 15, 0, tzinfo=UTC),
        "+447": datetime(2026, 12, 24, 10, 0, tzinfo=UTC),
        "+819": datetime(2026, 12, 25, 1, 0, tzinfo=UTC),
    }
    assert (await run_row(runtime, run_id)).suppressed == {}


async def test_user_time_zone_skip_counts_local_time_passed(runtime: Runtime) -> None:
    clock.freeze(PLANNED - timedelta(days=2))
    await add_profiles(runtime, 3, timezone="Asia/Kolkata", prefix="+9198765")
    await add_profiles(runtime, 2, timezone="America/New_York", prefix="+1212555")
    await set_setting(runtime, "campaign_misfire_grace", "600")
    doc = document(when={"user_timezone": True, "late": "skip"}, who={"definition": None})
    await add_campaign(runtime, doc)
    async with runtime.factory() as session:
        parsed, _ = parse_document(doc, default_timezone="UTC", strict=False)
        estimate = await estimate_campaign(session, parsed, now=datetime(2026, 12, 24, 5, 0, tzinfo=UTC))
    assert (estimate.qualified, estimate.reachable) == (5, 5)
    [run_id] = await start_and_materialize(runtime, datetime(2026, 12, 24, 5, 0, tzinfo=UTC), grace=86400)
    assert [m.to_number[:4] for m in await messages(runtime, run_id)] == ["+121", "+121"]
    assert (await run_row(runtime, run_id)).suppressed == {"local_time_passed": 3}


async def test_user_time_zone_scheduled_after_its_start_instant_starts_at_once(runtime: Runtime) -> None:
    """10:00 in each user's zone starts at 10:00 UTC+14 (20:00 UTC the day before); scheduled at
    05:00 UTC, the run is not missed: it starts, and Kolkata's 10:00 (04:30 UTC) is late."""
    moment = datetime(2026, 12, 24, 5, 0, tzinfo=UTC)
    clock.freeze(moment)
    await add_profiles(runtime, 2, timezone="Asia/Kolkata", prefix="+9198765")
    await add_profiles(runtime, 2, timezone="America/New_York", prefix="+1212555")
    await set_setting(runtime, "campaign_misfire_grace", "600")
    await add_campaign(runtime, document(when={"user_timezone": True, "late": "skip"}, who={"definition": None}),
                       scheduled_at=moment)
    [run_id] = await start_and_materialize(runtime, moment + timedelta(seconds=5))
    assert [m.next_attempt_at for m in await messages(runtime, run_id)] == [datetime(2026, 12, 24, 15, 0, tzinfo=UTC)] * 2
    assert (await run_row(runtime, run_id)).suppressed == {"local_time_passed": 2}
    # The same campaign scheduled long before, with no engine running since: missed.
    async with runtime.factory() as session, session.begin():
        await session.execute(delete(CampaignRun))
        await session.execute(delete(Message))
        await session.execute(update(Campaign).values(scheduled_at=moment - timedelta(days=3), next_run_at=PLANNED,
                                                      state="scheduled"))
    assert await start_due_runs(runtime.factory, now=moment) == []
    async with runtime.factory() as session:
        assert await session.scalar(select(CampaignRun.state)) == "missed"


@pytest.mark.parametrize("action", ["delay", "discard"])
async def test_do_not_disturb_in_the_recipients_zone(runtime: Runtime, action: str) -> None:
    clock.freeze(PLANNED - timedelta(days=1))
    await add_profiles(runtime, 1, timezone="Europe/London", prefix="+447700")  # 22:00 local: inside
    await add_profiles(runtime, 1, timezone="Asia/Kolkata", prefix="+919876")  # 03:30 local: inside
    await add_profiles(runtime, 1, timezone="America/New_York", prefix="+121255")  # 17:00 local: outside
    planned = datetime(2026, 12, 24, 22, 0, tzinfo=UTC)
    await add_campaign(runtime, document(when={"at": "2026-12-24 22:00",
                                               "dnd": {"start": "21:00", "end": "09:00", "action": action}},
                                         who={"definition": None}), next_run_at=planned)
    [run_id] = await start_and_materialize(runtime, planned)
    by_zone = {m.to_number[:4]: m.next_attempt_at for m in await messages(runtime, run_id)}
    if action == "delay":
        assert by_zone == {"+447": datetime(2026, 12, 25, 9, 0, tzinfo=UTC),
                           "+919": datetime(2026, 12, 25, 3, 30, tzinfo=UTC),
                           "+121": planned}
        assert (await run_row(runtime, run_id)).suppressed == {}
    else:
        assert by_zone == {"+121": planned}
        assert (await run_row(runtime, run_id)).suppressed == {"dnd_discard": 2}


async def test_a_paused_campaign_materializes_held_rows(runtime: Runtime) -> None:
    clock.freeze(PLANNED)
    await add_profiles(runtime, 5)
    campaign_id = await add_campaign(runtime, document())
    [run_id] = await start_due_runs(runtime.factory, now=PLANNED)
    async with runtime.factory() as session, session.begin():
        await session.execute(update(Campaign).where(Campaign.id == campaign_id).values(state="paused"))
        await session.execute(update(CampaignRun).where(CampaignRun.id == run_id).values(state="paused"))
    await materialize_run(runtime.factory, run_id, chunk=2)
    assert {m.state for m in await messages(runtime, run_id)} == {"held"}
    assert (await run_row(runtime, run_id)).state == "paused"


async def test_a_missing_segment_fails_the_run_with_the_reason(runtime: Runtime) -> None:
    clock.freeze(PLANNED)
    await add_profiles(runtime, 2)
    await add_campaign(runtime, document(who={"definition": None, "segment": "Gone"}))
    [run_id] = await start_and_materialize(runtime, PLANNED)
    run = await run_row(runtime, run_id)
    assert run.state == "failed" and "segment 'Gone' does not exist" in (run.reason or "")


MATERIALIZE = """
import asyncio, sys, time
from smsconsole.db import open_database, session_factory
from smsconsole.services.campaigns.materialize import materialize_run

async def main():
    engine = await open_database(sys.argv[1], migrate=False)
    try:
        await materialize_run(session_factory(engine), int(sys.argv[2]), chunk=int(sys.argv[3]),
                              on_chunk=lambda n: time.sleep(0.03))
    finally:
        await engine.dispose()

asyncio.run(main())
"""
REACHABLE = 6_000


async def _cursor(rt: Runtime, run_id: int) -> int:
    async with rt.factory() as session:
        return await session.scalar(select(CampaignRun.cursor).where(CampaignRun.id == run_id)) or 0


async def test_kill_9_during_materialization_and_sending_reaches_everyone_once(tmp_path: Any,
                                                                              database_url: str) -> None:
    """A materialization in its own process, SIGKILLed twice at seeded random points, then resumed
    by `smsconsole serve`, which sends the run to a loopback gateway and is itself SIGKILLed once
    mid-sending; a second engine finishes. Everyone reachable gets one row and at most one request."""
    config = make_config(tmp_path, database_url)
    sink = SmsSink()
    rng = random.Random(1313)
    with serve(sink) as server:
        rt = await Runtime.open(config)
        try:
            async with rt.factory() as session, session.begin():
                await providers.create_provider(session, rt.box, kind="generic", name="sink",
                                                values=generic_config(server.url, 10), actor="test")
            await add_profiles(rt, REACHABLE)
            await add_profiles(rt, 600, subscription="unsubscribed", start=REACHABLE)
            planned = clock.now().replace(second=0, microsecond=0)
            doc = document(when={"at": planned.strftime("%Y-%m-%d %H:%M")})
            doc["what"]["route"] = {"provider": "sink"}
            await add_campaign(rt, doc, next_run_at=planned)
            [run_id] = await start_due_runs(rt.factory)

            env = {**os.environ, "SMSCONSOLE_CONFIG_DIR": str(config.config_dir),
                   "SMSCONSOLE_DATA_DIR": str(config.data_dir), "SMSCONSOLE_DATABASE_URL": database_url,
                   "SMSCONSOLE_LEASE_TTL_SECONDS": "1", "SMSCONSOLE_HEARTBEAT_SECONDS": "0.2",
                   "SMSCONSOLE_DISPATCH_BATCH_SIZE": "200", "SMSCONSOLE_DISPATCH_INTERVAL_SECONDS": "0.05",
                   "SMSCONSOLE_SEND_TIMEOUT_SECONDS": "30"}
            env.pop("SMSCONSOLE_SECRET_KEY", None)
            log = tmp_path / "engine.log"
            cursors = []
            for threshold in (REACHABLE // 5, REACHABLE // 2):
                with log.open("ab") as out:
                    worker = subprocess.Popen([sys.executable, "-c", MATERIALIZE, database_url, str(run_id), "100"],
                                              env=env, stdout=out, stderr=subprocess.STDOUT)
                deadline = time.monotonic() + 60
                while await _cursor(rt, run_id) < threshold and worker.poll() is None and time.monotonic() < deadline:
                    await asyncio.sleep(0.005)
                await asyncio.sleep(rng.uniform(0, 0.02))
                assert worker.poll() is None, log.read_text()[-3000:]
                worker.send_signal(signal.SIGKILL)
                worker.wait(10)
                cursors.append(await _cursor(rt, run_id))
            assert 0 < cursors[0] < cursors[1] < REACHABLE
            assert (await run_row(rt, run_id)).state == "materializing"

            def start_engine() -> subprocess.Popen[bytes]:
                with log.open("ab") as out:
                    return subprocess.Popen([sys.executable, "-m", "smsconsole", "serve"], env=env, stdout=out,
                                            stderr=subprocess.STDOUT)

            # The engine resumes the materialization and sends; it is SIGKILLed once while sending
            # (rendered at claim, some requests in flight), and a second engine finishes the run.
            engine = start_engine()
            try:
                deadline = time.monotonic() + 120
                while len(sink.received) < REACHABLE // 3 and time.monotonic() < deadline:
                    assert engine.poll() is None, log.read_text()[-3000:]
                    await asyncio.sleep(0.002)
                await asyncio.sleep(rng.uniform(0, 0.05))
                killed_at = len(sink.received)
                engine.send_signal(signal.SIGKILL)
                engine.wait(10)
                assert 0 < killed_at < REACHABLE, killed_at
                engine = start_engine()
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    if (await run_row(rt, run_id)).state == "completed":
                        break
                    assert engine.poll() is None, log.read_text()[-3000:]
                    await asyncio.sleep(0.2)
            finally:
                engine.send_signal(signal.SIGTERM)
                engine.wait(20)
            rows = await messages(rt, run_id)
            run = await run_row(rt, run_id)
        finally:
            await rt.close()

    assert run.state == "completed", (run.state, run.reason, log.read_text()[-3000:])
    per_profile = Counter(m.profile_id for m in rows)
    assert len(per_profile) == REACHABLE and set(per_profile.values()) == {1}
    assert max(per_profile) == REACHABLE  # the unsubscribed (ids above) got nothing
    assert run.materialized == REACHABLE
    # Sent once each; a request that timed out on a loaded machine is `unknown` and never resent.
    states = {str(m.id): m.state for m in rows}
    assert set(states.values()) <= {"sent", "unknown"}, Counter(states.values())
    received = Counter(sink.received)
    assert [ref for ref, times in received.items() if times > 1] == []
    assert [ref for ref, state in states.items() if state == "sent" and received[ref] != 1] == []
    assert set(received) <= set(states)


async def test_the_engine_scheduler_keeps_one_job_per_campaign_from_the_database(runtime: Runtime) -> None:
    from smsconsole.engine.campaigns import CampaignScheduler

    await add_profiles(runtime, 3)
    soon = clock.now() + timedelta(seconds=1)
    doc = document(when={"at": soon.strftime("%Y-%m-%d %H:%M:%S")})
    due = await add_campaign(runtime, doc, next_run_at=soon)
    later_doc = document(when={"at": "2099-01-01 10:00"})
    later_doc["name"] = "Later"
    later = await add_campaign(runtime, later_doc, next_run_at=datetime(2099, 1, 1, 10, tzinfo=UTC))
    pokes: list[int] = []
    scheduler = CampaignScheduler(runtime.factory, poke=lambda: pokes.append(1), rebuild_seconds=3600)
    await scheduler.start()
    try:
        assert scheduler.job_times() == {due: soon, later: datetime(2099, 1, 1, 10, tzinfo=UTC)}
        # Paused from elsewhere (the CLI): the next rebuild drops its job.
        async with runtime.factory() as session, session.begin():
            await session.execute(update(Campaign).where(Campaign.id == later).values(state="paused"))
        await scheduler.rebuild()
        assert set(scheduler.job_times()) == {due}
        # Scheduled from elsewhere: the next settle (every few seconds) sees the change.
        newer_doc = document(when={"at": "2099-02-01 10:00"})
        newer_doc["name"] = "Newer"
        newer = await add_campaign(runtime, newer_doc, next_run_at=datetime(2099, 2, 1, 10, tzinfo=UTC))
        await scheduler.settle()
        assert set(scheduler.job_times()) == {due, newer}
        async with runtime.factory() as session, session.begin():
            await session.execute(update(Campaign).where(Campaign.id == newer)
                                  .values(state="paused", updated_at=clock.now() + timedelta(seconds=1)))
        await scheduler.settle()
        assert set(scheduler.job_times()) == {due}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            async with runtime.factory() as session:
                run = await session.scalar(select(CampaignRun).where(CampaignRun.campaign_id == due))
            if run is not None and run.state == "running":
                break
            await asyncio.sleep(0.05)
        assert run is not None and run.state == "running" and run.materialized == 3
        assert pokes
        assert scheduler.job_times() == {}
    finally:
        await scheduler.stop()
    assert not scheduler.running


async def test_the_engine_scheduler_starts_a_run_put_back_to_planned(runtime: Runtime) -> None:
    """A blocked campaign resumed after its limit was raised has its run planned again and no next
    run time (so no date job): the scheduler's rebuild starts it at once."""
    from smsconsole.engine.campaigns import CampaignScheduler
    from smsconsole.services.campaigns import crud

    await add_profiles(runtime, 3)
    clock.freeze(PLANNED)
    campaign_id = await add_campaign(runtime, document(who={"safety_limit": 2}))
    await start_and_materialize(runtime, PLANNED)
    assert (await campaign_row(runtime, campaign_id)).state == "blocked"
    clock.freeze(None)
    scheduler = CampaignScheduler(runtime.factory, rebuild_seconds=3600, settle_seconds=0.2)
    await scheduler.start()
    try:
        async with runtime.factory() as session, session.begin():  # while the engine runs, from the CLI
            await crud.update_campaign(session, campaign_id, document(who={"safety_limit": 10}), actor="test")
            await crud.resume_campaign(session, campaign_id, actor="test")
        assert (await campaign_row(runtime, campaign_id)).next_run_at is None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            async with runtime.factory() as session:
                run = await session.scalar(select(CampaignRun).where(CampaignRun.campaign_id == campaign_id))
            if run is not None and run.state == "running":
                break
            await asyncio.sleep(0.05)
        assert run is not None and (run.state, run.materialized) == ("running", 3)
    finally:
        await scheduler.stop()
