"""Dispatch through a batching provider (the Generic provider, 100 messages per request, against
the loopback sink): a claim takes enough messages to fill the provider's concurrency with full
requests, whatever the configured batch size, and a batch costs one claim, one send-gate write
and one outcome write — not one per request or per message. Every message arrives once."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, insert, select

from smsconsole import clock
from smsconsole.engine.dispatcher import Dispatcher, DispatchSettings
from smsconsole.models import Message
from smsconsole.runtime import Runtime
from smsconsole.services import providers
from tests.fakes.server import serve
from tests.fakes.sink import SmsSink, generic_config

PER_REQUEST = 100


async def _queue(rt: Runtime, provider_id: int, count: int) -> None:
    now = clock.now()
    async with rt.factory() as session, session.begin():
        await session.execute(insert(Message), [
            {"kind": "transactional", "priority": 0, "provider_id": provider_id, "provider_name": "sink",
             "to_number": f"+1415{n:07d}", "body": f"message {n}", "encoding": "GSM-7", "segments": 1,
             "state": "queued", "attempts": 0, "created_at": now, "updated_at": now} for n in range(count)
        ])


async def _states(rt: Runtime) -> Counter[str]:
    async with rt.factory() as session:
        return Counter(dict((await session.execute(
            select(Message.state, func.count()).group_by(Message.state))).all()))


async def test_a_claim_fills_the_providers_concurrency_with_full_requests_in_three_writes(runtime: Runtime) -> None:
    sink = SmsSink()
    with serve(sink) as server:
        async with runtime.factory() as session, session.begin():
            view = await providers.create_provider(session, runtime.box, kind="generic", name="sink",
                                                   values=generic_config(server.url, PER_REQUEST), actor="test")
        await _queue(runtime, view.id, 450)
        writes: list[str] = []

        def count(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
            words = " ".join(statement.split()[:3]).lower()
            if words.startswith(("update messages ", "insert into message")):  # the outbox, not the circuit
                writes.append(words)

        event.listen(runtime.db.sync_engine, "before_cursor_execute", count)
        try:
            async with httpx.AsyncClient() as client:
                dispatcher = Dispatcher(runtime.factory, runtime.box, client,
                                        DispatchSettings(batch_size=50, provider_concurrency=3))
                handled = await dispatcher.run_once()
                first_writes = list(writes)
                assert await dispatcher.run_once() == 150
                assert await dispatcher.run_once() == 0
        finally:
            event.remove(runtime.db.sync_engine, "before_cursor_execute", count)

    assert handled == 3 * PER_REQUEST  # not the configured 50: three full requests
    # claim, gate (sending), outcomes (attempts, then messages): one statement each for 300 messages
    assert first_writes == ["update messages set", "update messages set", "insert into message_attempts",
                            "update messages set"]
    assert sink.requests == 5  # 100, 100, 100, then 100 and 50
    assert len(sink.received) == 450 and set(Counter(sink.received).values()) == {1}
    assert await _states(runtime) == {"sent": 450}


@pytest.mark.parametrize(("sharing", "claimed"), [(1, 120), (3, 40)], ids=["alone", "three-workers"])
async def test_a_rate_limited_batching_provider_is_claimed_for_its_horizon_only(runtime: Runtime, sharing: int,
                                                                              claimed: int) -> None:
    """60 a second for the claim horizon (2 s): 120, not the 300 that fill the requests; three
    processes dispatching each claim a third, so together they hold no more than one would."""
    sink = SmsSink()
    with serve(sink) as server:
        async with runtime.factory() as session, session.begin():
            view = await providers.create_provider(session, runtime.box, kind="generic", name="sink",
                                                   values=generic_config(server.url, PER_REQUEST), actor="test",
                                                   rate_limit=60)
        await _queue(runtime, view.id, 300)
        async with httpx.AsyncClient() as client:
            dispatcher = Dispatcher(runtime.factory, runtime.box, client,
                                    DispatchSettings(batch_size=50, provider_concurrency=3), sharing=lambda: sharing)
            handled = await dispatcher.run_once()
    assert handled == claimed
    assert (await _states(runtime))["sent"] == claimed

