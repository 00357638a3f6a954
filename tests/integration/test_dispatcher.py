"""The dispatcher's contract: outcomes recorded, transient errors retried with backoff, permanent
ones failed with the reason, ambiguous ones `unknown` and never resent, test traffic first."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from smsconsole import clock
from smsconsole.engine.dispatcher import DispatchSettings, Dispatcher
from smsconsole.models import Message, MessageAttempt, Provider as ProviderRow
from smsconsole.runtime import Runtime
from smsconsole.services import messages, providers


async def _provider(rt: Runtime, name: str = "sbx", kind: str = "sandbox", base_url: str | None = None,
                    **values: str) -> None:
    async with rt.factory() as session, session.begin():
        await providers.create_provider(session, rt.box, kind=kind, name=name, values=values,
                                        base_url=base_url, actor="test")


async def _queue(rt: Runtime, provider: str = "sbx", to: str = "+14155550123", body: str = "hello") -> int:
    async with rt.factory() as session, session.begin():
        view = await messages.queue_test_message(session, provider_name=provider, to=to, body=body,
                                                 default_region=None, actor="test")
    return view.id


async def _message(rt: Runtime, message_id: int) -> messages.MessageView:
    async with rt.factory() as session:
        return await messages.get_message(session, message_id)


@pytest.fixture
async def dispatcher(runtime: Runtime):  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(timeout=2) as client:
        yield Dispatcher(runtime.factory, runtime.box, client, DispatchSettings(max_attempts=3))


async def test_sent_with_provider_id_and_attempt(runtime: Runtime, dispatcher: Dispatcher) -> None:
    await _provider(runtime)
    message_id = await _queue(runtime, body="Hello 😀")
    assert await dispatcher.run_once() == 1
    view = await _message(runtime, message_id)
    assert view.state == "sent" and view.provider_message_id and view.provider_message_id.startswith("SBX")
    assert view.encoding == "UCS-2" and view.attempts == 1 and view.sent_at is not None
    async with runtime.factory() as session:
        attempts = await messages.message_attempts(session, message_id)
        health = await session.scalar(select(ProviderRow.health))
    assert [a.outcome for a in attempts] == ["sent"]
    assert health == "healthy"
    assert await dispatcher.run_once() == 0  # nothing is sent twice


async def test_permanent_error_fails_with_code_and_reason(runtime: Runtime, dispatcher: Dispatcher) -> None:
    await _provider(runtime, fail_pattern=r"^\+1415")
    message_id = await _queue(runtime)
    await dispatcher.run_once()
    view = await _message(runtime, message_id)
    assert (view.state, view.error_code) == ("failed", "SANDBOX-REJECTED")
    assert "fail pattern" in (view.reason or "")


async def test_transient_errors_back_off_then_give_up(runtime: Runtime, dispatcher: Dispatcher) -> None:
    await _provider(runtime, failure_rate="100")
    message_id = await _queue(runtime)
    for attempt in (1, 2):
        await dispatcher.run_once()
        view = await _message(runtime, message_id)
        assert view.state == "queued" and view.attempts == attempt
        assert f"attempt {attempt} of 3" in (view.reason or "")
        async with runtime.factory() as session:
            due = await session.scalar(select(Message.next_attempt_at))
        assert due is not None and due > clock.now()
        assert await dispatcher.run_once() == 0  # not before its backoff
        async with runtime.factory() as session, session.begin():
            await session.execute(update(Message).values(next_attempt_at=clock.now() - timedelta(seconds=1)))
    await dispatcher.run_once()
    view = await _message(runtime, message_id)
    assert view.state == "failed" and "gave up after 3 attempts" in (view.reason or "")
    async with runtime.factory() as session:
        outcomes = list(await session.scalars(select(MessageAttempt.outcome).order_by(MessageAttempt.id)))
    assert outcomes == ["transient", "transient", "transient"]


async def test_messages_left_sending_become_unknown_and_are_not_resent(runtime: Runtime,
                                                                      dispatcher: Dispatcher) -> None:
    await _provider(runtime)
    message_id = await _queue(runtime)
    async with runtime.factory() as session, session.begin():
        await session.execute(update(Message).values(state="sending", attempts=1))
    assert await dispatcher.recover() == 1
    view = await _message(runtime, message_id)
    assert view.state == "unknown" and "not resent" in (view.reason or "")
    assert await dispatcher.run_once() == 0


async def test_test_messages_go_before_bulk_traffic(runtime: Runtime) -> None:
    await _provider(runtime)
    bulk_id = await _queue(runtime)
    async with runtime.factory() as session, session.begin():
        await session.execute(update(Message).where(Message.id == bulk_id).values(kind="campaign", priority=0))
    test_id = await _queue(runtime)
    async with httpx.AsyncClient() as client:
        one_at_a_time = Dispatcher(runtime.factory, runtime.box, client, DispatchSettings(batch_size=1))
        await one_at_a_time.run_once()
    assert (await _message(runtime, test_id)).state == "sent"
    assert (await _message(runtime, bulk_id)).state == "queued"


async def test_disabled_provider_and_unset_env_secret_fail_with_reason(runtime: Runtime, dispatcher: Dispatcher,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    await _provider(runtime, name="off")
    off_id = await _queue(runtime, provider="off")
    async with runtime.factory() as session, session.begin():
        await session.execute(update(ProviderRow).values(enabled=False))
    await _provider(runtime, name="tw", kind="twilio", account_sid="AC" + "0" * 32,
                    auth_token="env:SMSC_TEST_UNSET_TOKEN", sender="+15005550006")
    tw_id = await _queue(runtime, provider="tw")
    monkeypatch.delenv("SMSC_TEST_UNSET_TOKEN", raising=False)
    await dispatcher.run_once()
    off = await _message(runtime, off_id)
    tw = await _message(runtime, tw_id)
    assert off.state == "failed" and "disabled" in (off.reason or "")
    assert tw.state == "failed" and "SMSC_TEST_UNSET_TOKEN is not set" in (tw.reason or "")
    async with runtime.factory() as session:
        health = await session.scalar(select(ProviderRow.health).where(ProviderRow.name == "tw"))
    assert health == "unhealthy"


async def test_no_answer_in_time_is_unknown_and_never_resent(runtime: Runtime) -> None:
    from tests.fakes.server import serve
    from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, Reply

    fake = FakeTwilio()
    with serve(fake.app) as server:
        await _provider(runtime, name="tw", kind="twilio", base_url=server.url, account_sid=ACCOUNT_SID,
                        auth_token=AUTH_TOKEN, sender="+15005550006")
        message_id = await _queue(runtime, provider="tw")
        fake.answer_next(Reply(201, {"sid": "SM" + "0" * 32, "status": "queued"}, delay=3))
        async with httpx.AsyncClient(timeout=0.5) as client:
            dispatcher = Dispatcher(runtime.factory, runtime.box, client)
            await dispatcher.run_once()
            view = await _message(runtime, message_id)
            assert view.state == "unknown" and "not resent" in (view.reason or "")
            assert await dispatcher.run_once() == 0
        fake.close()
    assert len(fake.requests) == 1
