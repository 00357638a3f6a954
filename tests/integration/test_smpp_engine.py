"""The engine keeps one bind per SMPP provider: bound when the tenure starts (so replies arrive
before anything is sent), sending through the dispatcher, settling receipts that come over the
bind, showing its state, and unbinding when the engine stops. A bind that drops with submits in
flight leaves them `unknown`, never resent. Against a real database and the loopback SMSC."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select

from smsconsole.engine.dispatcher import Dispatcher, DispatchSettings
from smsconsole.engine.runner import Engine, EngineState
from smsconsole.engine.workers import live_workers
from smsconsole.models import InboundMessage, Message
from smsconsole.providers.smpp import pdu as codec
from smsconsole.providers.smpp.session import BindState
from smsconsole.runtime import Runtime
from smsconsole.services import providers
from tests.fakes.smsc import FakeSmsc, provider_values
from tests.integration.dispatch_support import (
    add_profile,
    add_provider,
    eventually,
    message_row,
    queue,
    set_provider,
)
from tests.tui.support import make_app, wait_for


async def states(rt: Runtime, ids: list[int]) -> list[str]:
    async with rt.factory() as session:
        rows = await session.execute(select(Message.id, Message.state).where(Message.id.in_(ids)))
        by_id = dict(rows.all())
    return [by_id[i] for i in ids]


@pytest.fixture
async def engine(runtime: Runtime) -> AsyncIterator[Engine]:
    engine = Engine(runtime.factory, runtime.box, runtime.config)
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    await eventually(lambda: engine.state is EngineState.RUNNING)
    yield engine
    stop.set()
    await asyncio.wait_for(task, timeout=30)


async def test_the_engine_binds_sends_and_settles_over_one_bind(runtime: Runtime, smsc: FakeSmsc,
                                                                engine: Engine) -> None:
    provider_id = await add_provider(runtime, "smsc", kind="smpp", **provider_values(smsc, window_size="5"))
    profile_id = await add_profile(runtime, "+14155550123", "subscribed")
    # bound at the next heartbeat, before anything is sent: a reply arrives and is stored
    await eventually(lambda: engine.bind_statuses().get(provider_id) is not None
                     and engine.bind_statuses()[provider_id].state is BindState.BOUND)
    assert await smsc.send_mo("14155550123", "hello there") == codec.ROK
    smsc.receipts = True  # every accepted submit gets a DELIVRD receipt over the bind
    ids = await queue(runtime, *(message_row(n, provider_id=provider_id, provider_name="smsc", profile_id=profile_id)
                                 for n in range(12)))
    engine.poke()

    async def all_delivered() -> bool:
        return await states(runtime, ids) == ["delivered"] * len(ids)

    await eventually(all_delivered)
    assert len(smsc.received) == len(ids) == len(set(smsc.received))  # each sent once
    assert smsc.max_outstanding <= 5
    assert [b[0] for b in smsc.binds] == ["bind_transceiver"]  # one bind for all of it
    async with runtime.factory() as session:
        assert [row.text for row in (await session.scalars(select(InboundMessage))).all()] == ["hello there"]
    status = engine.bind_statuses()[provider_id]
    assert status.state is BindState.BOUND and status.window_size == 5 and status.last_error is None


async def test_the_engine_unbinds_when_it_stops_and_when_the_provider_is_disabled(
        runtime: Runtime, smsc: FakeSmsc) -> None:
    provider_id = await add_provider(runtime, "smsc", kind="smpp", **provider_values(smsc))
    engine = Engine(runtime.factory, runtime.box, runtime.config)
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    await eventually(lambda: provider_id in engine.bind_statuses()
                     and engine.bind_statuses()[provider_id].state is BindState.BOUND)
    await set_provider(runtime, provider_id, enabled=False)
    await eventually(lambda: smsc.unbinds == 1 and provider_id not in engine.bind_statuses())
    await set_provider(runtime, provider_id, enabled=True)
    await eventually(lambda: len(smsc.binds) == 2 and provider_id in engine.bind_statuses())
    stop.set()
    await asyncio.wait_for(task, timeout=30)
    assert smsc.unbinds == 2 and engine.bind_statuses() == {}


async def test_a_dropped_bind_leaves_in_flight_messages_unknown_and_never_resends(runtime: Runtime,
                                                                                 smsc: FakeSmsc) -> None:
    provider_id = await add_provider(runtime, "smsc", kind="smpp", **provider_values(smsc, window_size="5"))
    ids = await queue(runtime, *(message_row(n, provider_id=provider_id, provider_name="smsc") for n in range(10)))
    smsc.delay = 0.05
    smsc.drop_after = 7  # five answered, then the 7th submit drops the bind with the 6th in flight
    async with httpx.AsyncClient() as client:
        adapters = providers.Adapters(runtime.box, client, runtime.factory)
        dispatcher = Dispatcher(runtime.factory, runtime.box, client, DispatchSettings(batch_size=10),
                                adapters=adapters)
        try:
            await dispatcher.run_once()
            first = await states(runtime, ids)
            assert "unknown" in first and "sent" in first
            for _ in range(3):  # later turns: the queued ones go on the new bind, the unknown ones never again
                await eventually(lambda: adapters.bind_statuses()[provider_id].state is BindState.BOUND)
                await dispatcher.run_once()
        finally:
            await adapters.aclose()
    final = await states(runtime, ids)
    assert [f for s, f in zip(first, final) if s == "unknown"] == [s for s in first if s == "unknown"]  # stay so
    assert set(final) <= {"sent", "unknown", "queued"}  # nothing lost: the rest wait for their retry
    assert len(smsc.received) == len(set(smsc.received))  # nothing reached the SMSC twice
    numbers = [message_row(n)["to_number"].lstrip("+") for n in range(10)]
    assert {numbers[n] for n, state in enumerate(final) if state == "queued"}.isdisjoint(smsc.received)


async def test_the_bind_shows_on_home_and_in_providers_from_the_database(runtime: Runtime, smsc: FakeSmsc,
                                                                         engine: Engine) -> None:
    """The engine writes its binds on its engine_workers row each heartbeat; a console reading the
    database (here one that does not run the engine) shows them in Providers and on Home."""
    provider_id = await add_provider(runtime, "smsc", kind="smpp", **provider_values(smsc, window_size="7"))

    async def bound_on_the_row() -> bool:
        async with runtime.factory() as session:
            workers = await live_workers(session)
        return any(w.binds.get(str(provider_id), {}).get("state") == "bound" for w in workers)

    await eventually(bound_on_the_row)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: "Bind" in str(app.screen.query_one("#provider-detail").render()),
                       what="the bind line in Providers")
        detail = str(app.screen.query_one("#provider-detail").render())
        assert "bound, window 0/7 on " in detail and "Base URL" not in detail
        await pilot.press("1")
        await wait_for(pilot, lambda: "bind: bound" in str(app.screen.query_one("#home-provider-detail").render()),
                       what="the bind line on Home")
    stop_at = engine.bind_statuses()[provider_id]
    assert stop_at.window_size == 7


def test_describe_binds_names_each_process_and_the_last_error() -> None:
    from datetime import UTC, datetime

    from smsconsole.engine.workers import WorkerView, bind_report, describe_binds
    from smsconsole.providers.smpp.session import BindStatus

    at = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    report = bind_report({3: BindStatus(BindState.DOWN, 10, 0, "connection refused", None, 2)})
    assert report == {"3": {"state": "down", "window": 10, "in_flight": 0, "last_error": "connection refused",
                            "rebinds": 2, "bound_since": None}}
    workers = [WorkerView("box-1", 11, "scheduler", None, 0, 0, at, at, report),
               WorkerView("box-2", 12, "worker", None, 0, 0, at, at, {})]
    assert describe_binds(workers, 3) == ["down, window 0/10 on box-1:11; last error: connection refused"]
    assert describe_binds(workers, 4) == []
