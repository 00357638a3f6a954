"""The transactional send API: POST /v1/messages queues one message through the outbox (Liquid
with the profile and the request's data, opt-out always, caps and quiet hours when asked), the
Idempotency-Key makes retries safe (also ten at once), GET /v1/messages/{id} reads it back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select

from smsconsole import clock
from smsconsole.engine.dispatcher import Dispatcher, DispatchSettings
from smsconsole.listener.app import create_app
from smsconsole.models import IdempotencyKey, Message, Profile
from smsconsole.runtime import Runtime
from smsconsole.services import api_keys, groups, providers
from smsconsole.services.escalations import run_escalations
from smsconsole.services.settings import update_settings

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
ANN = "+447400123401"


class Api:
    def __init__(self, client: httpx.AsyncClient, key: str, pokes: list[int]) -> None:
        self.client, self.key, self.pokes = client, key, pokes

    async def send(self, body: Any, *, key: str | None = None, idempotency: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key or self.key}"}
        if idempotency is not None:
            headers["Idempotency-Key"] = idempotency
        return await self.client.post("/v1/messages", json=body, headers=headers)

    async def get(self, message_id: object) -> httpx.Response:
        return await self.client.get(f"/v1/messages/{message_id}", headers={"Authorization": f"Bearer {self.key}"})


async def new_key(rt: Runtime, name: str = "tests") -> str:
    async with rt.factory() as session, session.begin():
        return (await api_keys.create_api_key(session, name, "test"))[1]


@pytest.fixture
async def api(runtime: Runtime) -> AsyncIterator[Api]:
    clock.freeze(NOW)
    key = await new_key(runtime)
    async with runtime.factory() as session, session.begin():
        await providers.create_provider(session, runtime.box, kind="sandbox", name="sbx", values={}, actor="test")
        await groups.create_group(session, name="main", providers="sbx", actor="test")
    pokes: list[int] = []
    app = create_app(runtime.factory, box=runtime.box, engine_state=lambda: "running", poke=lambda: pokes.append(1))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://listener.test") as client:
        yield Api(client, key, pokes)


async def add_person(rt: Runtime, user_id: str = "ann", phone: str = ANN, **values: Any) -> int:
    row = {"user_id": user_id, "phone": phone, "phone_raw": None, "phone_status": "valid", "sms_capable": True,
           "name": "Ann", "country": "GB", "timezone": "Europe/London", "subscription": "never",
           "subscription_at": None, "properties": {"tier": "gold"}, "created_at": NOW, "updated_at": NOW, **values}
    async with rt.factory() as session, session.begin():
        return (await session.execute(insert(Profile).returning(Profile.id), [row])).scalar_one()


async def messages(rt: Runtime) -> list[Message]:
    async with rt.factory() as session:
        return list(await session.scalars(select(Message).order_by(Message.id)))


async def count(rt: Runtime, model: type) -> int:
    async with rt.factory() as session:
        return await session.scalar(select(func.count()).select_from(model)) or 0


def fields(response: httpx.Response) -> set[str]:
    return {e["field"] for e in response.json()["errors"]}


# --- sending -----------------------------------------------------------------------------------


async def test_a_message_to_a_user_is_rendered_queued_and_pokes_the_engine(runtime: Runtime, api: Api) -> None:
    profile_id = await add_person(runtime)
    response = await api.send({"to": {"user_id": "ann"}, "priority": 80, "sender": "Shop",
                               "body": "Hi {{ profile.name }} ({{ profile.tier }}): order {{ data.order }} shipped",
                               "data": {"order": "A-17"}})
    assert response.status_code == 201, response.text
    answer = response.json()
    assert response.headers["location"] == f"/v1/messages/{answer['id']}"
    assert answer["state"] == "queued" and answer["to"] == {"phone": ANN, "user_id": "ann"}
    assert answer["body"] == "Hi Ann (gold): order A-17 shipped" and answer["attempts"] == []
    [row] = await messages(runtime)
    assert (row.kind, row.profile_id, row.priority, row.sender, row.country) == ("transactional", profile_id, 80, "Shop", "GB")
    assert api.pokes == [1]
    read = await api.get(answer["id"])
    assert read.status_code == 200 and read.json() == answer


async def test_a_phone_without_a_profile_gets_its_message_through_the_engine(runtime: Runtime, api: Api) -> None:
    response = await api.send({"to": {"phone": "+44 7400 123499"}, "body": "Code {{ data.code }} for {{ profile.phone }}",
                               "data": {"code": 4711}, "group": "main"})
    assert response.status_code == 201, response.text
    message_id = response.json()["id"]
    async with httpx.AsyncClient() as client:
        await Dispatcher(runtime.factory, runtime.box, client, DispatchSettings()).run_once()
    answer = (await api.get(message_id)).json()
    assert answer["state"] == "sent" and answer["provider"] == "sbx" and answer["group"] == "main"
    assert answer["body"] == "Code 4711 for +447400123499"
    assert [(a["provider"], a["outcome"]) for a in answer["attempts"]] == [("sbx", "sent")]
    assert answer["sent_at"] is not None and answer["provider_message_id"]


async def test_every_bad_field_is_named_at_once_and_nothing_is_written(runtime: Runtime, api: Api) -> None:
    response = await api.send({"to": {"phone": "+44 12"}, "body": "Hi {{ profile.name | shout }}", "priority": 500,
                               "group": "nope", "colour": "red", "respect": ["marketing"],
                               "escalate": [{"after_minutes": 0, "group": "main"}, {"after_minutes": 5}]})
    assert response.status_code == 422
    assert response.json()["error"] == "invalid"
    assert fields(response) == {"colour", "priority", "respect", "escalate[0].after_minutes", "escalate[1]"}
    response = await api.send({"to": {"phone": "+44 12"}, "body": "Hi {{ profile.name | shout }}", "group": "nope",
                               "escalate": [{"after_minutes": 5, "group": "backup"}]})
    assert fields(response) == {"to.phone", "group", "escalate[0].group"}
    response = await api.send({"to": {"user_id": "nobody"}, "body": "x"})
    assert response.json()["errors"] == [{"field": "to.user_id", "reason": "no profile with user_id 'nobody'"}]
    await add_person(runtime)
    response = await api.send({"to": {"user_id": "ann"}, "body": "Hi {{ profile.name | shout }}\n{{ order }}"})
    [problem] = response.json()["errors"]
    assert problem["field"] == "body" and "line 1" in problem["reason"] and "shout" in problem["reason"]
    response = await api.send({"to": {"user_id": "ann"}, "template": "welcome"})
    assert response.json()["errors"] == [{"field": "template", "reason": "no saved template named 'welcome'"}]
    response = await api.send({"to": {"user_id": "ann"}})
    assert fields(response) == {"body"}
    response = await api.send({"to": {"user_id": "ann", "phone": ANN}, "body": "x"})
    assert fields(response) == {"to"}
    assert await count(runtime, Message) == 0


async def test_bad_requests_get_clear_4xx_answers(runtime: Runtime, api: Api) -> None:
    assert (await api.client.post("/v1/messages", json={"to": {"phone": ANN}, "body": "x"})).status_code == 401
    response = await api.client.post("/v1/messages", content=b"{", headers={
        "Authorization": f"Bearer {api.key}", "Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["error"] == "malformed_json"
    response = await api.client.post("/v1/messages", content=b"to=1", headers={
        "Authorization": f"Bearer {api.key}", "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415
    response = await api.send([{"to": {"phone": ANN}, "body": "x"}])
    assert response.status_code == 422
    response = await api.send({"to": {"phone": ANN}, "body": "a\u0000b"})
    assert response.status_code == 422 and fields(response) == {"body"}
    assert await count(runtime, Message) == 0


# --- guards ------------------------------------------------------------------------------------


async def test_an_opted_out_recipient_is_never_sent_to(runtime: Runtime, api: Api) -> None:
    await add_person(runtime, subscription="unsubscribed", subscription_at=NOW - timedelta(days=1))
    await add_person(runtime, user_id="bob", phone="+447400123402", subscription="never")
    await add_person(runtime, user_id="bob-old", phone="+447400123402", subscription="unsubscribed",
                     subscription_at=NOW - timedelta(days=2))
    for to in ({"user_id": "ann"}, {"phone": ANN}, {"user_id": "bob"}):
        response = await api.send({"to": to, "body": "Your order shipped"})
        assert response.status_code == 422, to
        assert response.json()["error"] == "suppressed" and "unsubscribed" in response.json()["reason"]
    assert await count(runtime, Message) == 0


async def test_frequency_caps_apply_only_when_the_request_asks(runtime: Runtime, api: Api) -> None:
    profile_id = await add_person(runtime)
    async with runtime.factory() as session, session.begin():
        await update_settings(session, {"campaign_cap_day": "1"}, "test")
        session.add(Message(kind="campaign", profile_id=profile_id, to_number=ANN, body="Sale", encoding="GSM-7",
                            segments=1, state="delivered", attempts=1, created_at=NOW - timedelta(hours=2),
                            sending_at=NOW - timedelta(hours=2), updated_at=NOW))
    response = await api.send({"to": {"user_id": "ann"}, "body": "Sale ends", "respect": ["caps"]})
    assert response.status_code == 422 and response.json()["reason"] == "frequency cap: 1 SMS per day"
    response = await api.send({"to": {"user_id": "ann"}, "body": "Your order shipped"})
    assert response.status_code == 201


async def test_quiet_hours_delay_or_discard_on_the_recipient_s_clock_when_asked(runtime: Runtime, api: Api) -> None:
    clock.freeze(datetime(2026, 12, 3, 22, 30, tzinfo=UTC))  # 22:30 in London
    await add_person(runtime)
    response = await api.send({"to": {"user_id": "ann"}, "body": "Reminder", "respect": ["quiet_hours"],
                               "escalate": [{"after_minutes": 5, "group": "main"}]})
    assert response.status_code == 201
    answer = response.json()
    assert answer["next_attempt_at"] == "2026-12-04T08:00:00Z"
    assert answer["escalations"][0]["due_at"] == "2026-12-04T08:05:00Z"
    response = await api.send({"to": {"user_id": "ann"}, "body": "Reminder", "respect": ["quiet_hours"],
                               "quiet_hours": {"start": "22:00", "end": "07:00", "action": "discard"}})
    assert response.status_code == 422 and response.json()["error"] == "suppressed"
    response = await api.send({"to": {"user_id": "ann"}, "body": "Your code is 1234"})
    assert response.status_code == 201 and response.json()["next_attempt_at"] is None


# --- idempotency -------------------------------------------------------------------------------


async def test_the_same_idempotency_key_answers_the_first_answer_and_sends_nothing_new(
        runtime: Runtime, api: Api) -> None:
    request = {"to": {"phone": ANN}, "body": "Order A-17 shipped"}
    first = await api.send(request, idempotency="order-A-17")
    again = await api.send(dict(reversed(list(request.items()))), idempotency="order-A-17")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert await count(runtime, Message) == 1
    other = await api.send({**request, "body": "Order A-18 shipped"}, idempotency="order-A-17")
    assert other.status_code == 422 and other.json()["error"] == "idempotency_key_reused"
    another_key = await api.send(request, key=await new_key(runtime, "other"), idempotency="order-A-17")
    assert another_key.status_code == 201 and another_key.json()["id"] != first.json()["id"]
    assert (await api.send(request, idempotency=" spaced ")).status_code == 422
    assert await count(runtime, Message) == 2


async def test_an_idempotency_key_expires_after_24_hours(runtime: Runtime, api: Api) -> None:
    request = {"to": {"phone": ANN}, "body": "Order A-17 shipped"}
    first = await api.send(request, idempotency="k1")
    clock.freeze(NOW + timedelta(hours=24, seconds=1))
    second = await api.send({**request, "body": "another"}, idempotency="k1")
    assert second.status_code == 201 and second.json()["id"] != first.json()["id"]
    assert await count(runtime, IdempotencyKey) == 1
    clock.freeze(NOW + timedelta(hours=48, seconds=2))
    async with httpx.AsyncClient() as client:  # the engine's escalation chore forgets expired keys
        await run_escalations(runtime.factory, client)
    assert await count(runtime, IdempotencyKey) == 0


async def test_ten_concurrent_retries_of_one_key_create_one_message(runtime: Runtime, api: Api) -> None:
    request = {"to": {"phone": ANN}, "body": "Your code is 4711"}
    answers = await asyncio.gather(*(api.send(request, idempotency="otp-1") for _ in range(10)))
    assert {a.status_code for a in answers} == {201}, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert await count(runtime, Message) == 1 and await count(runtime, IdempotencyKey) == 1


# --- reading -----------------------------------------------------------------------------------


async def test_reading_needs_a_key_and_shows_only_api_messages(runtime: Runtime, api: Api) -> None:
    assert (await api.client.get("/v1/messages/1")).status_code == 401
    for missing in ("999", "abc", "-1", "99999999999999999999999"):
        response = await api.get(missing)
        assert response.status_code == 404 and response.json()["error"] == "not_found"
    async with runtime.factory() as session, session.begin():
        session.add(Message(kind="test", to_number=ANN, body="x", encoding="GSM-7", segments=1, state="queued",
                            attempts=0, created_at=NOW, updated_at=NOW))
    [row] = await messages(runtime)
    assert (await api.get(row.id)).status_code == 404


async def test_an_opt_out_after_acceptance_suppresses_the_message_when_it_is_sent(runtime: Runtime, api: Api) -> None:
    await add_person(runtime)
    message_id = (await api.send({"to": {"user_id": "ann"}, "body": "Your order shipped"})).json()["id"]
    async with runtime.factory() as session, session.begin():
        person = await session.scalar(select(Profile).where(Profile.user_id == "ann"))
        assert person is not None
        person.subscription, person.subscription_at = "unsubscribed", NOW
    async with httpx.AsyncClient() as client:
        await Dispatcher(runtime.factory, runtime.box, client, DispatchSettings()).run_once()
    answer = (await api.get(message_id)).json()
    assert answer["state"] == "suppressed" and "unsubscribed" in answer["reason"] and answer["attempts"] == []


async def test_linked_content_and_tracked_links_are_refused_in_a_transactional_body(runtime: Runtime, api: Api) -> None:
    response = await api.send({"to": {"phone": ANN}, "body": '{% connected_content "https://x.example/a" as info %}hi'})
    assert response.status_code == 422
    [problem] = response.json()["errors"]
    assert problem["field"] == "body" and "only available in campaigns" in problem["reason"]
    response = await api.send({"to": {"phone": ANN}, "body": '{{ "https://shop.example.com" | track }}'})
    assert response.json()["errors"] == [{"field": "body", "reason": "the template has an error at line 1, column 33: "
                                          "tracked links (| track) are only available in campaigns"}]
