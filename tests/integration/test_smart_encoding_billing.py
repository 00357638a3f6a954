"""Messages through a Twilio provider with Smart Encoding on are recorded as Twilio bills them:
the encoding and segments of the body with its look-alikes replaced, while the body sent stays
the operator's text (Twilio replaces them, asked by SmartEncoded=true). Test sends, group routes
and a campaign run (materialized, rendered at claim, sent to the loopback Twilio fake), on both
databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select

from smsconsole import clock
from smsconsole.engine.dispatcher import DispatchSettings, Dispatcher
from smsconsole.models import Campaign, Message, Profile
from smsconsole.runtime import Runtime
from smsconsole.services import messages
from smsconsole.services.campaigns.materialize import materialize_run
from smsconsole.services.campaigns.runs import start_due_runs
from smsconsole.services.settings import update_settings
from smsconsole.services.smart_encoding import provider_smart_encodes, route_smart_encodes
from smsconsole.sms import Encoding, analyze
from tests.fakes.server import serve
from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.integration.dispatch_support import add_group, add_provider

# Curly quotes, an ellipsis and a dash from a word processor: UCS-2 in 4 parts as typed, GSM-7 in
# 2 once replaced.
TYPED = ("“Your order is ready…” — pick it up at the front desk before 6pm today, and bring the "
         "code we sent you. Questions? Reply HELP. “Thanks” for shopping with us — see you soon!")
PLANNED = datetime(2026, 12, 24, 10, 0, tzinfo=UTC)


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio()
    with serve(fake.app) as server:
        fake.url = server.url  # type: ignore[attr-defined]
        yield fake


async def add_twilio(rt: Runtime, twilio: FakeTwilio, name: str = "tw", *, smart: bool = True) -> int:
    return await add_provider(rt, name, kind="twilio", base_url=twilio.url,  # type: ignore[attr-defined]
                              account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, sender="+15005550006",
                              smart_encoding="true" if smart else "false")


async def queue(rt: Runtime, *, provider: str = "", group: str = "", body: str = TYPED) -> messages.MessageView:
    async with rt.factory() as session, session.begin():
        return await messages.queue_test_message(session, provider_name=provider, group_name=group,
                                                 to="+14155550123", body=body, default_region=None, actor="test")


async def drain(rt: Runtime) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        dispatcher = Dispatcher(rt.factory, rt.box, client, DispatchSettings(batch_size=25))
        while await dispatcher.run_once():
            pass


def test_the_typed_body_and_what_twilio_bills() -> None:
    typed, billed = analyze(TYPED), analyze(TYPED, smart_encoding=True)
    assert (typed.encoding, typed.segments) == (Encoding.UCS2, 3)
    assert (billed.encoding, billed.segments) == (Encoding.GSM7, 2)


def test_which_providers_smart_encode() -> None:
    assert provider_smart_encodes("twilio", {"smart_encoding": "true"})
    assert not provider_smart_encodes("twilio", {"smart_encoding": "false"})
    assert not provider_smart_encodes("twilio", {})  # off by default
    assert not provider_smart_encodes("sandbox", {"smart_encoding": "true"})  # no such setting


async def test_a_test_send_is_recorded_as_billed_and_sent_as_typed(runtime: Runtime, twilio: FakeTwilio) -> None:
    await add_twilio(runtime, twilio)
    view = await queue(runtime, provider="tw")
    assert (view.body, view.encoding, view.segments) == (TYPED, "GSM-7", 2)
    await drain(runtime)
    [request] = [r for r in twilio.requests if r.method == "POST"]
    assert request.form["Body"] == TYPED
    assert request.form["SmartEncoded"] == "true"


async def test_without_smart_encoding_the_typed_text_is_counted(runtime: Runtime, twilio: FakeTwilio) -> None:
    await add_twilio(runtime, twilio, smart=False)
    view = await queue(runtime, provider="tw")
    assert (view.body, view.encoding, view.segments) == (TYPED, "UCS-2", 3)


async def test_the_test_sends_own_replacement_still_changes_the_body(runtime: Runtime, twilio: FakeTwilio) -> None:
    await add_twilio(runtime, twilio, smart=False)
    async with runtime.factory() as session, session.begin():
        view = await messages.queue_test_message(session, provider_name="tw", to="+14155550123", body=TYPED,
                                                 default_region=None, actor="test", smart_encoding=True)
    assert view.body.startswith('"Your order is ready..." - pick')
    assert (view.encoding, view.segments) == ("GSM-7", 2)


async def test_a_group_counts_smart_only_when_every_enabled_member_smart_encodes(
        runtime: Runtime, twilio: FakeTwilio) -> None:
    smart_id = await add_twilio(runtime, twilio, "tw")
    sandbox_id = await add_provider(runtime, "sbx")
    await add_group(runtime, "twilio-only", [smart_id])
    await add_group(runtime, "mixed", [smart_id, sandbox_id])
    assert (await queue(runtime, group="twilio-only")).encoding == "GSM-7"
    assert (await queue(runtime, group="mixed")).encoding == "UCS-2"
    async with runtime.factory() as session:
        assert not await route_smart_encodes(session, provider_id=None, group_id=None)  # the sandbox does not


async def test_a_campaign_run_is_recorded_as_billed_and_sent_as_rendered(
        runtime: Runtime, twilio: FakeTwilio) -> None:
    clock.freeze(PLANNED - timedelta(days=1))
    await add_twilio(runtime, twilio)
    async with runtime.factory() as session, session.begin():  # this test is about counting, not compliance
        await update_settings(session, {"compliance_enforcement": "warn"}, actor="test")
    now = clock.now()
    async with runtime.factory() as session, session.begin():
        await session.execute(insert(Profile), [
            {"phone": f"+1415555{n:04d}", "phone_raw": None, "phone_status": "valid", "sms_capable": True,
             "country": "US", "subscription": "subscribed", "name": f"P{n}", "properties": {},
             "subscription_at": now, "created_at": now, "updated_at": now} for n in range(3)])
    body = "Hi {{ profile.name }}! " + TYPED
    doc: dict[str, Any] = {
        "name": "Pickup", "type": "one_time", "when": {"timezone": "UTC", "at": "2026-12-24 10:00"},
        "who": {"definition": {"conditions": []}}, "what": {"route": {"provider": "tw"}, "body": body},
    }
    async with runtime.factory() as session, session.begin():
        campaign = Campaign(name=doc["name"], type=doc["type"], state="scheduled", document=doc,
                            next_run_at=PLANNED, created_at=now, updated_at=now, scheduled_at=now)
        session.add(campaign)
    clock.freeze(PLANNED)
    [run_id] = await start_due_runs(runtime.factory, now=PLANNED)
    await materialize_run(runtime.factory, run_id)
    async with runtime.factory() as session:
        queued = list(await session.scalars(select(Message).where(Message.run_id == run_id)))
    assert {(m.encoding, m.segments) for m in queued} == {("GSM-7", 2)}  # the template, smart-encoded

    await drain(runtime)
    async with runtime.factory() as session:
        sent = list(await session.scalars(select(Message).where(Message.run_id == run_id).order_by(Message.id)))
    assert len(sent) == 3 and {m.state for m in sent} == {"sent"}
    for m in sent:
        assert m.body == f"Hi P{m.to_number[-1]}! " + TYPED
        billed = analyze(m.body, smart_encoding=True)
        assert (m.encoding, m.segments) == (str(billed.encoding), billed.segments) == ("GSM-7", 2)
        assert (analyze(m.body).encoding, analyze(m.body).segments) == (Encoding.UCS2, 3)  # counted as typed
    bodies = sorted(r.form["Body"] for r in twilio.requests if r.method == "POST")
    assert bodies == sorted(m.body for m in sent)
