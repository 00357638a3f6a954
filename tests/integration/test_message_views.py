"""A message as the console and the CLI show it: a queued message that failed an attempt reads as
retrying, with the time of its next attempt rather than a countdown that went stale."""

from __future__ import annotations

import httpx

from smsconsole import clock
from smsconsole.engine.dispatcher import DispatchSettings, Dispatcher
from smsconsole.runtime import Runtime
from smsconsole.services import messages, providers


async def _queue_through_failing_sandbox(rt: Runtime) -> int:
    async with rt.factory() as session, session.begin():
        await providers.create_provider(session, rt.box, kind="sandbox", name="sbx",
                                        values={"failure_rate": "100"}, actor="test")
        view = await messages.queue_test_message(session, provider_name="sbx", to="+14155550123", body="hi",
                                                 default_region=None, actor="test")
    return view.id


async def test_a_failed_attempt_reads_as_retrying_with_the_next_attempt_time(runtime: Runtime) -> None:
    message_id = await _queue_through_failing_sandbox(runtime)
    async with runtime.factory() as session:
        queued = await messages.get_message(session, message_id)
    assert (queued.shown_state, queued.retrying, queued.next_attempt_at) == ("queued", False, None)

    async with httpx.AsyncClient(timeout=2) as client:
        await Dispatcher(runtime.factory, runtime.box, client, DispatchSettings(max_attempts=5)).run_once()
    async with runtime.factory() as session:
        view = await messages.get_message(session, message_id)
        [listed] = await messages.recent_messages(session, kind="test")
    assert view.state == "queued" and view.attempts == 1  # machine state unchanged
    assert view.retrying and view.shown_state == "retrying"
    assert view.next_attempt_at is not None and view.next_attempt_at > clock.now()
    assert "retrying in" in (view.reason or "")
    assert view.shown_reason is not None and view.shown_reason.startswith("attempt 1 of 5 failed on provider sbx")
    assert "retrying in" not in view.shown_reason
    assert listed.retrying and listed.next_attempt_at == view.next_attempt_at
