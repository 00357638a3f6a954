"""Group commit of delivery receipts (listener/group_commit.py): concurrent callbacks share one
transaction, each is answered only once its receipts are committed, duplicates in one batch settle
once, a receipt the database refuses spoils only its own callback, and a failed commit answers
every waiting callback 503 with nothing written. On SQLite and PostgreSQL (real databases, the
real listener app over ASGI)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select

from smsconsole import clock
from smsconsole.listener.app import create_app
from smsconsole.listener.group_commit import GroupCommitter, Unavailable
from smsconsole.models import Message, Provider as ProviderRow, Receipt
from smsconsole.providers.base import StatusReport
from smsconsole.runtime import Runtime
from smsconsole.services import providers, settings as settings_service

PUBLIC = "https://console.example.com"
TOKEN = "group-commit-token-0123456789"
HOOK = f"/callbacks/gw/status?token={TOKEN}"
BULK = f"/callbacks/bulk/status?token={TOKEN}"
GENERIC = {"url": "https://gw.example.com/send", "params": "to=$$To\ntext=$$Body", "webhook_token": TOKEN}


async def _setup(rt: Runtime, count: int) -> dict[str, int]:
    """Providers `gw` (one receipt per callback) and `bulk` (a JSON list at `results`), and `count`
    sent messages of each: gw's named m-0…, bulk's b-0…"""
    async with rt.factory() as session, session.begin():
        await settings_service.update_settings(session, {"public_base_url": PUBLIC}, actor="test")
        await providers.create_provider(session, rt.box, kind="generic", name="gw", values=GENERIC, actor="test")
        await providers.create_provider(session, rt.box, kind="generic", name="bulk",
                                        values={**GENERIC, "receipt_items": "results"}, actor="test")
        ids = dict((await session.execute(select(ProviderRow.name, ProviderRow.id))).all())
        now = clock.now()
        for name, prefix in (("gw", "m"), ("bulk", "b")):
            for index in range(count):
                session.add(Message(kind="test", priority=0, provider_id=ids[name], provider_name=name,
                                    to_number="+447400123456", body="hi", encoding="GSM-7", segments=1,
                                    state="sent", provider_message_id=f"{prefix}-{index}", attempts=1,
                                    created_at=now, updated_at=now, sent_at=now))
    return ids


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(runtime.factory, box=runtime.box, engine_state=lambda: "running")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://listener") as http:
        yield http


async def _states(rt: Runtime) -> dict[str, str]:
    async with rt.factory() as session:
        return dict((await session.execute(select(Message.provider_message_id, Message.state))).all())


async def _receipts(rt: Runtime) -> int:
    async with rt.factory() as session:
        return int(await session.scalar(select(func.count()).select_from(Receipt)) or 0)


def _form(**fields: str) -> dict[str, Any]:
    return {"data": fields, "headers": {"content-type": "application/x-www-form-urlencoded"}}


def _count_commits(rt: Runtime) -> list[int]:
    commits = [0]

    def count(conn: Any) -> None:
        commits[0] += 1

    event.listen(rt.db.sync_engine, "commit", count)
    return commits


async def test_concurrent_callbacks_are_each_answered_after_their_receipt_is_committed(
        runtime: Runtime, client: httpx.AsyncClient) -> None:
    await _setup(runtime, 40)
    await client.post(HOOK, **_form(id="m-0", status="DELIVRD"))  # warm the adapter cache
    commits = _count_commits(runtime)

    async def one(index: int) -> tuple[int, str]:
        response = await client.post(HOOK, **_form(id=f"m-{index}", status="DELIVRD"))
        # by the time the 200 is seen, another connection reads the receipt committed
        return response.status_code, (await _states(runtime))[f"m-{index}"]

    answers = await asyncio.gather(*(one(index) for index in range(1, 40)))
    assert answers == [(200, "delivered")] * 39
    assert await _receipts(runtime) == 40
    assert 1 <= commits[0] <= 39


async def test_batched_callbacks_commit_together_duplicates_settle_once(runtime: Runtime) -> None:
    ids = await _setup(runtime, 5)
    committer = GroupCommitter(runtime.factory)
    delivered = StatusReport(provider_message_id="m-1", provider_status="DELIVRD", state="delivered")
    failed = StatusReport(provider_message_id="m-1", provider_status="REJECTD", state="failed")
    others = [[StatusReport(provider_message_id=f"m-{i}", provider_status="ACCEPTD", state="sent"),
               StatusReport(provider_message_id=f"m-{i}", provider_status="DELIVRD", state="delivered")]
              for i in (2, 3)]
    jobs = [[delivered], [delivered], [delivered, failed], [failed], *others,
            [StatusReport(provider_message_id="b-0", provider_status="UNDELIV", state="undelivered")]]
    names = ["gw"] * 6 + ["bulk"]
    await asyncio.gather(*(committer.submit(ids[name], name, job) for name, job in zip(names, jobs)))
    assert (committer.batches, committer.callbacks) == (1, 7)  # all seven in one transaction
    states = await _states(runtime)
    # the first final state wins; a late failure never undoes a delivery
    assert (states["m-1"], states["m-2"], states["m-3"], states["m-4"], states["b-0"]) == \
        ("delivered", "delivered", "delivered", "sent", "undelivered")
    async with runtime.factory() as session:
        rows = (await session.execute(select(Receipt.provider_message_id, Receipt.provider_status,
                                             Receipt.message_id.is_not(None)).order_by(Receipt.id))).all()
    # one row per distinct receipt, however often it came in the batch
    assert sorted(rows) == sorted([("m-1", "DELIVRD", True), ("m-1", "REJECTD", True), ("m-2", "ACCEPTD", True),
                                   ("m-2", "DELIVRD", True), ("m-3", "ACCEPTD", True), ("m-3", "DELIVRD", True),
                                   ("b-0", "UNDELIV", True)])
    await committer.submit(ids["gw"], "gw", [delivered, failed])  # a replay: no-op
    assert await _receipts(runtime) == 7
    assert (await _states(runtime))["m-1"] == "delivered"


async def test_a_receipt_the_database_refuses_spoils_only_its_own_callback(runtime: Runtime) -> None:
    ids = await _setup(runtime, 4)
    committer = GroupCommitter(runtime.factory)
    good = [[StatusReport(provider_message_id=f"m-{i}", provider_status="DELIVRD", state="delivered")]
            for i in range(3)]
    bad = [StatusReport(provider_message_id="m-3", provider_status="DELIVRD", state="delivered", part=10**30)]
    results = await asyncio.gather(*(committer.submit(ids["gw"], "gw", job) for job in [good[0], bad, *good[1:]]),
                                   return_exceptions=True)
    assert [r is None for r in results] == [True, False, True, True]
    assert not isinstance(results[1], Unavailable)  # its own error, not "retry later"
    states = await _states(runtime)
    assert [states[f"m-{i}"] for i in range(4)] == ["delivered", "delivered", "delivered", "sent"]
    assert await _receipts(runtime) == 3


async def test_a_failed_commit_answers_every_waiting_callback_503_and_writes_nothing(
        runtime: Runtime, client: httpx.AsyncClient) -> None:
    await _setup(runtime, 10)
    await client.post("/healthz")
    failing = True

    def refuse(conn: Any) -> None:
        if failing:
            raise RuntimeError("the disk is full")

    event.listen(runtime.db.sync_engine, "commit", refuse)
    batch = json.dumps({"results": [{"id": f"b-{i}", "status": "DELIVRD"} for i in range(10)]})
    calls = [client.post(HOOK, **_form(id=f"m-{i}", status="DELIVRD")) for i in range(10)]
    calls.append(client.post(BULK, content=batch, headers={"content-type": "application/json"}))
    answers = await asyncio.gather(*calls)
    assert [a.status_code for a in answers] == [503] * 11
    assert all(a.headers.get("retry-after") == "1" for a in answers)
    assert set((await _states(runtime)).values()) == {"sent"}
    assert await _receipts(runtime) == 0
    failing = False  # the provider retries: now they commit
    answers = await asyncio.gather(
        *(client.post(HOOK, **_form(id=f"m-{i}", status="DELIVRD")) for i in range(10)),
        client.post(BULK, content=batch, headers={"content-type": "application/json"}))
    assert [a.status_code for a in answers] == [200] * 11
    assert set((await _states(runtime)).values()) == {"delivered"}
    assert await _receipts(runtime) == 20


async def test_a_forged_callback_among_good_ones_is_refused_alone(runtime: Runtime,
                                                                  client: httpx.AsyncClient) -> None:
    await _setup(runtime, 6)
    forged = "/callbacks/gw/status?token=not-the-token-at-all-000"
    calls = [client.post(forged if i == 2 else HOOK, **_form(id=f"m-{i}", status="DELIVRD")) for i in range(6)]
    answers = await asyncio.gather(*calls)
    assert [a.status_code < 300 for a in answers] == [True, True, False, True, True, True]
    assert 400 <= answers[2].status_code < 500
    states = await _states(runtime)
    assert [states[f"m-{i}"] for i in range(6)] == ["delivered", "delivered", "sent", "delivered", "delivered",
                                                    "delivered"]
