"""Escalation of transactional messages on a frozen clock: a missing receipt sends again through
the named group (never through a provider already used) or posts an alert to a loopback webhook;
a delivered receipt cancels the pending steps; steps survive a restart and fire once when ticks
overlap."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from smsconsole import clock
from smsconsole.engine import runner
from smsconsole.engine.dispatcher import Dispatcher, DispatchSettings
from smsconsole.listener.app import create_app
from smsconsole.models import Message, MessageEscalation
from smsconsole.providers.base import StatusReport
from smsconsole.runtime import Runtime
from smsconsole.services import api_keys, groups, providers
from smsconsole.services.escalations import run_escalations
from smsconsole.services.receipts import apply_status_reports
from tests.conftest import make_config
from tests.fakes.server import serve, unused_port

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
PHONE = "+447400123401"


class Api:
    def __init__(self, client: httpx.AsyncClient, key: str) -> None:
        self.client, self.key = client, key

    async def send(self, escalate: list[dict[str, Any]], group: str = "main") -> int:
        response = await self.client.post("/v1/messages", headers={"Authorization": f"Bearer {self.key}"}, json={
            "to": {"phone": PHONE}, "body": "The pump in hall 3 stopped", "group": group, "escalate": escalate})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    async def get(self, message_id: int) -> dict[str, Any]:
        response = await self.client.get(f"/v1/messages/{message_id}", headers={"Authorization": f"Bearer {self.key}"})
        assert response.status_code == 200
        return response.json()


@pytest.fixture
async def api(runtime: Runtime) -> AsyncIterator[Api]:
    clock.freeze(NOW)
    async with runtime.factory() as session, session.begin():
        _, key = await api_keys.create_api_key(session, "alerts", "test")
        for name in ("sbx", "sbx2"):
            await providers.create_provider(session, runtime.box, kind="sandbox", name=name,
                                            values={"receipt_delay": "3600"}, actor="test")
        await groups.create_group(session, name="main", providers="sbx", actor="test")
        await groups.create_group(session, name="backup", providers="sbx,sbx2", actor="test")
    app = create_app(runtime.factory, box=runtime.box, engine_state=lambda: "running")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://listener.test") as client:
        yield Api(client, key)


async def dispatch(rt: Runtime) -> None:
    async with httpx.AsyncClient() as client:
        dispatcher = Dispatcher(rt.factory, rt.box, client, DispatchSettings())
        while await dispatcher.run_once():
            pass


async def tick(rt: Runtime, minutes: float = 0) -> int:
    clock.freeze(clock.now() + timedelta(minutes=minutes))
    async with httpx.AsyncClient() as client:
        return await run_escalations(rt.factory, client)


async def message(rt: Runtime, message_id: int) -> Message:
    async with rt.factory() as session:
        row = await session.get(Message, message_id)
        assert row is not None
        return row


async def count_messages(rt: Runtime) -> int:
    async with rt.factory() as session:
        return len(list(await session.scalars(select(Message.id))))


async def deliver(rt: Runtime, message_id: int) -> None:
    row = await message(rt, message_id)
    async with rt.factory() as session, session.begin():
        await apply_status_reports(session, row.provider_id, row.provider_name, [StatusReport(
            provider_message_id=row.provider_message_id, provider_status="DELIVERED", state="delivered",
            at=clock.now())], via="test")


async def test_a_missing_receipt_sends_again_through_the_next_group_on_a_new_route(runtime: Runtime, api: Api) -> None:
    first = await api.send([{"after_minutes": 5, "group": "backup"}])
    await dispatch(runtime)
    assert (await message(runtime, first)).provider_name == "sbx"
    assert await tick(runtime, 4) == 0  # not due yet
    assert await tick(runtime, 1) == 1
    answer = await api.get(first)
    [step] = answer["escalations"]
    assert step["state"] == "fired" and "sbx2" in step["result"] and step["fired_at"] == "2026-12-03T12:05:00Z"
    await dispatch(runtime)
    resend = await api.get(step["message_id"])
    assert resend["state"] == "sent" and resend["provider"] == "sbx2" and resend["group"] == "backup"
    assert resend["escalation_of"] == first and resend["body"] == answer["body"]
    assert await tick(runtime, 60) == 0  # fired once


async def test_a_delivered_receipt_cancels_the_pending_steps(runtime: Runtime, api: Api) -> None:
    first = await api.send([{"after_minutes": 5, "group": "backup"}, {"after_minutes": 10, "webhook": "http://127.0.0.1:9/x"}])
    await dispatch(runtime)
    clock.freeze(NOW + timedelta(minutes=3))
    await deliver(runtime, first)
    assert await tick(runtime, 10) == 0
    steps = (await api.get(first))["escalations"]
    assert [s["state"] for s in steps] == ["cancelled", "cancelled"]
    assert await count_messages(runtime) == 1


async def test_a_delivered_resend_cancels_the_later_steps(runtime: Runtime, api: Api) -> None:
    first = await api.send([{"after_minutes": 5, "group": "backup"}, {"after_minutes": 30, "group": "backup"}])
    await dispatch(runtime)
    await tick(runtime, 5)
    await dispatch(runtime)
    resend = (await api.get(first))["escalations"][0]["message_id"]
    await deliver(runtime, resend)
    await tick(runtime, 30)
    assert [s["state"] for s in (await api.get(first))["escalations"]] == ["fired", "cancelled"]


async def test_no_route_is_used_twice(runtime: Runtime, api: Api) -> None:
    first = await api.send([{"after_minutes": 5, "group": "main"}, {"after_minutes": 6, "group": "backup"},
                            {"after_minutes": 7, "group": "backup"}])
    await dispatch(runtime)
    for minutes in (5, 1, 1):
        await tick(runtime, minutes)
        await dispatch(runtime)
    steps = (await api.get(first))["escalations"]
    assert [s["state"] for s in steps] == ["skipped", "fired", "skipped"]
    assert "used: sbx" in steps[0]["result"] and steps[0]["message_id"] is None
    assert "used: sbx, sbx2" in steps[2]["result"]
    assert (await api.get(steps[1]["message_id"]))["provider"] == "sbx2"
    assert await count_messages(runtime) == 2


async def test_a_webhook_step_posts_an_alert_and_records_the_answer(runtime: Runtime, api: Api) -> None:
    received: list[dict[str, Any]] = []

    async def alert(request: Request) -> JSONResponse:
        received.append(json.loads(await request.body()))
        return JSONResponse({"ok": True}, status_code=202)

    with serve(Starlette(routes=[Route("/alert", alert, methods=["POST"])])) as server:
        first = await api.send([{"after_minutes": 10, "webhook": f"{server.url}/alert"},
                                {"after_minutes": 11, "webhook": f"http://127.0.0.1:{unused_port()}/down"}])
        await dispatch(runtime)
        assert await tick(runtime, 10) == 1
        assert await tick(runtime, 1) == 1
    [payload] = received
    assert payload["event"] == "message.not_delivered"
    assert payload["message"]["id"] == first and payload["message"]["to"] == PHONE
    assert payload["message"]["state"] == "sent" and payload["escalation"]["after_minutes"] == 10
    steps = (await api.get(first))["escalations"]
    assert [(s["state"], s["http_status"]) for s in steps] == [("fired", 202), ("failed", None)]
    assert "did not answer" in steps[1]["result"]


async def test_pending_steps_survive_a_restart_and_overlapping_ticks_fire_once(runtime: Runtime, api: Api) -> None:
    first = await api.send([{"after_minutes": 5, "group": "backup"}])
    await dispatch(runtime)
    restarted = await Runtime.open(runtime.config)  # a new process: nothing but the database
    try:
        clock.freeze(NOW + timedelta(minutes=5))
        async with httpx.AsyncClient() as client:
            fired = await asyncio.gather(run_escalations(restarted.factory, client),
                                         run_escalations(restarted.factory, client))
        assert sum(fired) == 1
    finally:
        await restarted.close()
    async with runtime.factory() as session:
        [step] = await session.scalars(select(MessageEscalation).where(MessageEscalation.message_id == first))
    assert step.state == "fired" and step.sent_message_id is not None
    assert await count_messages(runtime) == 2


async def until(predicate: Any, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def test_the_engine_fires_due_steps_on_its_own(runtime: Runtime, api: Api, tmp_path: Path, database_url: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "ESCALATION_SECONDS", 0.05)
    first = await api.send([{"after_minutes": 2, "group": "backup"}])
    engine = runner.Engine(runtime.factory, runtime.box, make_config(tmp_path, database_url))
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    try:
        async def sent() -> bool:
            return (await message(runtime, first)).state == "sent"

        await until(sent)
        clock.freeze(NOW + timedelta(minutes=2))

        async def resent() -> bool:
            [step] = (await api.get(first))["escalations"]
            return step["message_id"] is not None and (await message(runtime, step["message_id"])).state == "sent"

        await until(resent)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=20)
    [step] = (await api.get(first))["escalations"]
    assert step["state"] == "fired" and (await api.get(step["message_id"]))["provider"] == "sbx2"


async def test_a_copy_still_queued_is_suppressed_when_the_resend_goes(runtime: Runtime, api: Api) -> None:
    """The engine never got to the first copy (a backlog, say): the resend goes, the first stays
    behind, so the person gets one message."""
    first = await api.send([{"after_minutes": 5, "group": "backup"}])
    assert await tick(runtime, 5) == 1
    [step] = (await api.get(first))["escalations"]
    assert step["state"] == "fired" and "the copy still queued was suppressed" in step["result"]
    original = await message(runtime, first)
    assert original.state == "suppressed" and original.reason == (
        f"escalated: sent again as message {step['message_id']} through sbx")
    await dispatch(runtime)
    assert (await message(runtime, first)).state == "suppressed"
    assert (await message(runtime, step["message_id"])).state == "sent"


async def test_a_webhook_step_left_firing_by_a_stopped_engine_fails_and_is_not_posted_again(
        runtime: Runtime, api: Api) -> None:
    from sqlalchemy import update

    from smsconsole.services.escalations import INTERRUPTED

    first = await api.send([{"after_minutes": 5, "webhook": f"http://127.0.0.1:{unused_port()}/a"},
                            {"after_minutes": 6, "webhook": f"http://127.0.0.1:{unused_port()}/b"}])
    async with runtime.factory() as session, session.begin():  # as an engine killed mid-POST leaves them
        steps = list(await session.scalars(select(MessageEscalation).where(MessageEscalation.message_id == first)
                                           .order_by(MessageEscalation.position)))
        for step, ago in zip(steps, (timedelta(minutes=2), timedelta(seconds=10)), strict=True):
            await session.execute(update(MessageEscalation).where(MessageEscalation.id == step.id)
                                  .values(state="firing", fired_at=NOW - ago))
    assert await tick(runtime) == 0
    states = [(s["state"], s["result"]) for s in (await api.get(first))["escalations"]]
    assert states == [("failed", INTERRUPTED), ("firing", None)]  # the recent one may still be posting
    assert await tick(runtime, 1) == 0
    assert [s["state"] for s in (await api.get(first))["escalations"]] == ["failed", "failed"]
