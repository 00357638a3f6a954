"""Crash safety of inaction waits (DESIGN.md invariants 2 and 3): 3,000 pending waits of a live
abandoned-cart campaign fall due over a few seconds while `smsconsole serve` runs in its own
process; it is SIGKILLed at seeded random points — once while the waits are firing, once while
their messages are being sent — and started again. At the end every wait fired exactly once, each
with one message (its dedupe key is the wait's), and the loopback gateway received each message at
most once (exactly once for those recorded `sent`; a request that may have left when the engine
died is `unknown`, never resent). On SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

from smsconsole import clock
from smsconsole.models import CampaignRun, CampaignWait, Message, Profile
from smsconsole.runtime import Runtime
from smsconsole.services import providers
from smsconsole.services.campaigns import crud
from smsconsole.services.campaigns.runs import start_due_runs
from tests.conftest import make_config
from tests.fakes.server import serve
from tests.fakes.sink import SmsSink, generic_config

WAITS = 3_000
SPREAD_MS = 2  # the waits fall due one every 2 ms: 6 seconds of them
SEED = 1414


async def _count(rt: Runtime, model: type, *conditions: object) -> int:
    async with rt.factory() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*conditions)) or 0


async def _setup(rt: Runtime, url: str) -> int:
    async with rt.factory() as session, session.begin():
        await providers.create_provider(session, rt.box, kind="generic", name="sink", values=generic_config(url, 10),
                                        actor="test")
    now = clock.now()
    async with rt.factory() as session, session.begin():
        await session.execute(insert(Profile), [
            {"user_id": f"u{n}", "phone": f"+4477009{n:05d}", "phone_status": "valid", "sms_capable": True,
             "country": "GB", "subscription": "subscribed", "properties": {}, "subscription_at": now, "created_at": now, "updated_at": now}
            for n in range(WAITS)])
    doc = {"name": "Abandoned cart", "type": "inaction", "when": {"timezone": "UTC"},
           "who": {"trigger": {"event": "add_to_cart", "cancel_event": "checkout", "within_minutes": 5}},
           "what": {"route": {"provider": "sink"}, "body": "Hi {{ profile.user_id }}, your cart is waiting"}}
    async with rt.factory() as session, session.begin():
        view = await crud.create_campaign(session, doc, actor="test")
        await crud.schedule_campaign(session, view.code, actor="test")
    await start_due_runs(rt.factory)
    async with rt.factory() as session, session.begin():
        run_id = await session.scalar(select(CampaignRun.id).where(CampaignRun.campaign_id == view.id,
                                                                   CampaignRun.state == "live"))
        ids = list(await session.scalars(select(Profile.id).order_by(Profile.id)))
        first_due = clock.now() + timedelta(seconds=3)  # the engine is up by then
        await session.execute(insert(CampaignWait), [
            {"campaign_id": view.id, "run_id": run_id, "profile_id": profile_id, "event_id": None,
             "started_at": first_due - timedelta(minutes=5) + timedelta(milliseconds=SPREAD_MS * n),
             "due_at": first_due + timedelta(milliseconds=SPREAD_MS * n), "state": "pending", "created_at": now}
            for n, profile_id in enumerate(ids)])
    return view.id


async def test_kill_9_with_waits_pending_loses_none_and_sends_none_twice(tmp_path: Path, database_url: str) -> None:
    config = make_config(tmp_path, database_url)
    sink = SmsSink()
    rng = random.Random(SEED)
    with serve(sink) as server:
        rt = await Runtime.open(config)
        try:
            campaign_id = await _setup(rt, server.url)
            env = {**os.environ, "SMSCONSOLE_CONFIG_DIR": str(config.config_dir),
                   "SMSCONSOLE_DATA_DIR": str(config.data_dir), "SMSCONSOLE_DATABASE_URL": database_url,
                   "SMSCONSOLE_LEASE_TTL_SECONDS": "1", "SMSCONSOLE_HEARTBEAT_SECONDS": "0.2",
                   "SMSCONSOLE_DISPATCH_BATCH_SIZE": "100", "SMSCONSOLE_DISPATCH_INTERVAL_SECONDS": "0.05",
                   "SMSCONSOLE_SEND_TIMEOUT_SECONDS": "30"}
            env.pop("SMSCONSOLE_SECRET_KEY", None)
            log = tmp_path / "engine.log"

            def start_engine() -> subprocess.Popen[bytes]:
                with log.open("ab") as out:
                    return subprocess.Popen([sys.executable, "-m", "smsconsole", "serve"], env=env, stdout=out,
                                            stderr=subprocess.STDOUT)

            fired = CampaignWait.state != "pending"
            kills: list[tuple[int, int]] = []
            # Once while the waits fire (some fired, many not), once while their messages are sent.
            for ready in (lambda: _count(rt, CampaignWait, fired), lambda: _received(sink)):
                engine = start_engine()
                threshold = (kills[-1][1] if kills else 0) + rng.randint(WAITS // 5, WAITS // 3)
                deadline = time.monotonic() + 90
                while await ready() < threshold and time.monotonic() < deadline:
                    assert engine.poll() is None, log.read_text()[-3000:]
                    await asyncio.sleep(0.005)
                await asyncio.sleep(rng.uniform(0, 0.05))
                assert engine.poll() is None, log.read_text()[-3000:]
                engine.send_signal(signal.SIGKILL)
                engine.wait(10)
                kills.append((await _count(rt, CampaignWait, fired), len(sink.received)))
            engine = start_engine()
            try:
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    pending = await _count(rt, CampaignWait, CampaignWait.state == "pending")
                    open_ = await _count(rt, Message, Message.state.in_(("queued", "claimed", "sending")))
                    if pending == 0 and open_ == 0 and await _count(rt, Message) == WAITS:
                        break
                    assert engine.poll() is None, log.read_text()[-3000:]
                    await asyncio.sleep(0.2)
            finally:
                engine.send_signal(signal.SIGTERM)
                engine.wait(20)
            async with rt.factory() as session:
                waits = dict((await session.execute(select(CampaignWait.id, CampaignWait.state)
                                                    .where(CampaignWait.campaign_id == campaign_id))).all())
                rows = (await session.execute(select(Message.id, Message.state, Message.wait_id, Message.dedupe_key)
                                              .where(Message.campaign_id == campaign_id))).all()
        finally:
            await rt.close()

    print(f"\n{database_url.split(':')[0]}: (waits fired, messages received) at each kill: {kills}")
    assert 0 < kills[0][0] < WAITS, kills  # the first kill came while waits were still firing
    assert kills[0][1] < kills[1][1] < WAITS, kills  # the second engine sent some, not all
    assert Counter(waits.values()) == {"fired": WAITS}, log.read_text()[-3000:]
    per_wait = Counter(wait_id for _, _, wait_id, _ in rows)
    assert set(per_wait) == set(waits) and set(per_wait.values()) == {1}
    assert all(key == f"live:{campaign_id}:wait:{wait_id}" for _, _, wait_id, key in rows)
    states = {str(message_id): state for message_id, state, _, _ in rows}
    assert set(states.values()) <= {"sent", "unknown"}, Counter(states.values())
    received = Counter(sink.received)
    assert [ref for ref, times in received.items() if times > 1] == []
    assert [ref for ref, state in states.items() if state == "sent" and received[ref] != 1] == []
    assert set(received) <= set(states)


async def _received(sink: SmsSink) -> int:
    return len(sink.received)
