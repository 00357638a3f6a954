"""The polling door: the engine's pollers ask providers (loopback fakes) for statuses and replies,
resume from the saved cursor, back off on errors; the Sandbox's receipts and simulated replies
take the same way as a real provider's."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy import select

from smsconsole.engine.dispatcher import Dispatcher
from smsconsole.engine.pollers import Pollers, PollSettings
from smsconsole.models import InboundMessage, Message, PollCursor, Provider as ProviderRow, Receipt
from smsconsole.providers.sandbox import SandboxProvider
from smsconsole.runtime import Runtime
from smsconsole.services import messages, providers
from smsconsole.services.errors import ValidationError
from smsconsole.services.replies import simulate_reply
from tests.fakes.server import Switchboard, serve
from tests.fakes.twilio import FakeTwilio, Reply
from tests.providers.test_twilio_receipts import CONFIG as TWILIO


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[Switchboard, str]]:
    switchboard = Switchboard()
    with serve(switchboard) as running:
        yield switchboard, running.url


@pytest.fixture
def twilio(server: tuple[Switchboard, str]) -> Iterator[FakeTwilio]:
    switchboard, url = server
    fake = FakeTwilio()
    fake.base_url = url
    switchboard.target = fake.app
    yield fake
    fake.close()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


async def _provider(rt: Runtime, name: str, kind: str, values: dict[str, str], base_url: str | None = None) -> int:
    async with rt.factory() as session, session.begin():
        await providers.create_provider(session, rt.box, kind=kind, name=name, values=values, base_url=base_url,
                                        actor="test")
        return int(await session.scalar(select(ProviderRow.id).where(ProviderRow.name == name)))


async def _states(rt: Runtime) -> dict[str, str]:
    async with rt.factory() as session:
        return {to: state for to, state in await session.execute(select(Message.to_number, Message.state))}


async def test_twilio_statuses_and_replies_are_polled_and_the_cursor_kept(
        runtime: Runtime, twilio: FakeTwilio, http: httpx.AsyncClient) -> None:
    provider_id = await _provider(runtime, "twilio-main", "twilio", TWILIO, base_url=twilio.base_url)
    outbound = twilio.receive("+15005550006", "+447400123456", "hello")
    twilio.messages[outbound].update(direction="outbound-api", status="delivered")
    async with runtime.factory() as session, session.begin():
        view = await messages.queue_test_message(session, provider_name="twilio-main", to="+447400123456",
                                                 body="hello", default_region=None, actor="test")
        await session.execute(Message.__table__.update().where(Message.id == view.id)
                              .values(state="sent", provider_message_id=outbound))
    reply = twilio.receive("+447400123456", "+15005550006", "Thanks!")
    pollers = Pollers(runtime.factory, runtime.box, http, PollSettings(interval_seconds=30))
    await pollers.tick()
    assert await _states(runtime) == {"+447400123456": "delivered"}
    async with runtime.factory() as session:
        receipts = list(await session.scalars(select(Receipt)))
        inbound = list(await session.scalars(select(InboundMessage)))
        cursors = {c.kind: c for c in await session.scalars(select(PollCursor))}
    assert [(r.provider_message_id, r.state, r.via) for r in receipts] == [(outbound, "delivered", "poll")]
    assert [(i.provider_message_id, i.text, i.via) for i in inbound] == [(reply, "Thanks!", "poll")]
    assert set(cursors) == {"status", "inbound"} and all(c.cursor and c.error is None for c in cursors.values())
    assert all(c.cursor for c in cursors.values()) and cursors["status"].provider_id == provider_id
    # Within the interval nothing is asked; a later poll that lists the same things changes nothing.
    asked = len(twilio.requests)
    await pollers.tick()
    assert len(twilio.requests) == asked


async def test_a_failing_poll_backs_off_and_records_the_error(
        runtime: Runtime, twilio: FakeTwilio, http: httpx.AsyncClient) -> None:
    await _provider(runtime, "twilio-main", "twilio", TWILIO, base_url=twilio.base_url)
    now = [1000.0]
    pollers = Pollers(runtime.factory, runtime.box, http, PollSettings(interval_seconds=10),
                      monotonic=lambda: now[0])
    twilio.answer_next(*[Reply(503, {"code": 20500, "message": "down"})] * 2)
    await pollers.tick()
    async with runtime.factory() as session:
        errors = {c.kind: c.error for c in await session.scalars(select(PollCursor))}
    assert errors and all("transient" in (e or "") for e in errors.values())
    asked = len(twilio.requests)
    now[0] += 15  # past the interval, but within the backoff
    await pollers.tick()
    assert len(twilio.requests) == asked
    now[0] += 60
    await pollers.tick()
    assert len(twilio.requests) > asked
    async with runtime.factory() as session:
        assert {c.error for c in await session.scalars(select(PollCursor))} == {None}


async def test_the_sandbox_delivers_fails_and_replies_through_the_same_doors(
        runtime: Runtime, http: httpx.AsyncClient) -> None:
    await _provider(runtime, "sbx", "sandbox", {"receipt_delay": "0", "undelivered_pattern": r"^\+1415555",
                                                "failed_receipt_pattern": r"^\+1415666"})
    async with runtime.factory() as session, session.begin():
        for to in ("+14155550100", "+14157770101", "+14156660100"):
            await messages.queue_test_message(session, provider_name="sbx", to=to, body="hi", default_region=None,
                                              actor="test")
    await Dispatcher(runtime.factory, runtime.box, http).run_once()
    assert set((await _states(runtime)).values()) == {"sent"}
    await Pollers(runtime.factory, runtime.box, http).tick()
    states = await _states(runtime)
    assert states["+14156660100"] == "failed"
    assert states["+14155550100"] == "undelivered" and states["+14157770101"] == "delivered"
    async with runtime.factory() as session, session.begin():
        view = await simulate_reply(session, "sbx", "+14155550100", "STOP")
    async with runtime.factory() as session:
        row = await session.scalar(select(InboundMessage))
    assert row is not None and (row.sender, row.text, row.via) == ("+14155550100", "STOP", "sandbox")
    assert view is not None


async def test_the_engine_builds_one_adapter_per_provider_and_rebuilds_it_when_the_provider_changes(
        runtime: Runtime, http: httpx.AsyncClient) -> None:
    """The dispatcher, the pollers and the listener's callbacks share the engine's adapter cache:
    the Sandbox that sent a message is the one asked for its receipt; an edit builds a new one."""
    await _provider(runtime, "sbx", "sandbox", {"receipt_delay": "0"})
    async with runtime.factory() as session, session.begin():
        await messages.queue_test_message(session, provider_name="sbx", to="+14155550100", body="hi",
                                          default_region=None, actor="test")
    adapters = providers.Adapters(runtime.box, http)
    await Dispatcher(runtime.factory, runtime.box, http, adapters=adapters).run_once()
    async with runtime.factory() as session:
        found = await adapters.named(session, "sbx")
    assert found is not None
    sent_through = found[1]
    assert isinstance(sent_through, SandboxProvider) and [m.to for m in sent_through.accepted] == ["+14155550100"]
    await Pollers(runtime.factory, runtime.box, http, adapters=adapters).tick()
    assert await _states(runtime) == {"+14155550100": "delivered"}
    async with runtime.factory() as session, session.begin():
        assert await adapters.named(session, "sbx") == found
        await providers.update_provider(session, runtime.box, "sbx", values={"receipt_delay": "5"}, actor="test")
    async with runtime.factory() as session:
        rebuilt = await adapters.named(session, "sbx")
    assert rebuilt is not None and rebuilt[1] is not sent_through and rebuilt[1].setting("receipt_delay") == "5"
    async with runtime.factory() as session:
        assert await adapters.named(session, "nobody") is None


async def test_sandbox_receipts_wait_for_the_delay(runtime: Runtime, http: httpx.AsyncClient) -> None:
    await _provider(runtime, "sbx", "sandbox", {"receipt_delay": "3600"})
    async with runtime.factory() as session, session.begin():
        await messages.queue_test_message(session, provider_name="sbx", to="+14155550100", body="hi",
                                          default_region=None, actor="test")
    await Dispatcher(runtime.factory, runtime.box, http).run_once()
    await Pollers(runtime.factory, runtime.box, http).tick()
    assert await _states(runtime) == {"+14155550100": "sent"}


async def test_simulated_replies_are_validated(runtime: Runtime) -> None:
    await _provider(runtime, "twilio-main", "twilio", TWILIO)
    await _provider(runtime, "sbx", "sandbox", {})
    async with runtime.factory() as session, session.begin():
        with pytest.raises(ValidationError) as bad:
            await simulate_reply(session, "twilio-main", "12", " ")
    assert {field for field, _ in bad.value.problems} == {"provider", "from", "text"}
    async with runtime.factory() as session:
        assert await session.scalar(select(InboundMessage.id)) is None
