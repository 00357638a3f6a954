"""Bind limits (engine/binds.py): an SMPP provider's `bind_limit` says how many engine processes may
bind to it at once. Slots are taken in the database, so no more processes bind than the limit, a
dead holder's slot is taken by another, and a process without a bind hands that provider's
messages to the processes that hold one instead of failing them over or binding anyway. Against a
real database and the loopback SMSC (which refuses binds beyond the account's limit)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from smsconsole import clock
from smsconsole.config import Config
from smsconsole.engine import lease
from smsconsole.engine.binds import give_back, take_slots
from smsconsole.engine.dispatcher import Dispatcher, DispatchSettings
from smsconsole.engine.runner import Engine, EngineState
from smsconsole.engine.workers import describe_binds, live_workers
from smsconsole.models import EngineWorker, Message, ProviderBind
from smsconsole.models import Provider as ProviderRow
from smsconsole.providers.smpp import pdu as codec
from smsconsole.providers.smpp.session import BindState
from smsconsole.runtime import Runtime
from smsconsole.services import providers
from tests.fakes.smsc import FakeSmsc, provider_values
from tests.integration.dispatch_support import (
    add_group,
    add_provider,
    eventually,
    message_row,
    path,
    queue,
)
from tests.tui.support import make_app, wait_for


async def live_token(rt: Runtime) -> str:
    """A token some live engine process carries (its engine_workers row has not expired)."""
    token, now = uuid.uuid4().hex, clock.now()
    async with rt.factory() as session, session.begin():
        session.add(EngineWorker(id=f"box:{token[:6]}", host="box", pid=1, role="worker", token=token,
                                 claimed_per_minute=0, sent_per_minute=0, started_at=now, heartbeat_at=now,
                                 expires_at=now + timedelta(hours=1)))
    return token


async def lapse(rt: Runtime, token: str, *, alive: bool = False) -> None:
    """The process's row expires (it died), or with `alive` is renewed again."""
    expires = clock.now() + (timedelta(hours=1) if alive else -timedelta(seconds=1))
    async with rt.factory() as session, session.begin():
        await session.execute(update(EngineWorker).where(EngineWorker.token == token).values(expires_at=expires))


async def slots(rt: Runtime) -> list[tuple[int, int, str]]:
    async with rt.factory() as session:
        rows = await session.execute(select(ProviderBind.provider_id, ProviderBind.slot, ProviderBind.token)
                                     .order_by(ProviderBind.provider_id, ProviderBind.slot))
        return [tuple(row) for row in rows.all()]  # type: ignore[misc]


async def test_no_more_processes_hold_a_slot_than_the_limit_and_a_gone_holders_slot_is_free(
        runtime: Runtime, smsc: FakeSmsc) -> None:
    pid = await add_provider(runtime, "smsc", kind="smpp", **provider_values(smsc))
    a, b, c = [await live_token(runtime) for _ in range(3)]
    f = runtime.factory
    assert await take_slots(f, a, {pid: 1}) == {pid}
    assert await take_slots(f, b, {pid: 1}) == set()
    assert await take_slots(f, a, {pid: 1}) == {pid}  # kept, turn after turn
    assert await take_slots(f, b, {pid: 2}) == {pid}  # raised: a second process may bind
    assert await take_slots(f, c, {pid: 2}) == set()
    assert await slots(runtime) == [(pid, 0, a), (pid, 1, b)]
    assert await take_slots(f, b, {pid: 1}) == set()  # lowered: the holder of the second slot gives it up
    assert await slots(runtime) == [(pid, 0, a)]
    await lapse(runtime, a)  # a's process died: its slot is free for the next to ask
    assert await take_slots(f, c, {pid: 1}) == {pid}
    assert await slots(runtime) == [(pid, 0, c)]
    assert await take_slots(f, c, {}) == set()  # the provider is no longer one to bind (disabled)
    assert await slots(runtime) == []
    assert await take_slots(f, b, {pid: 1}) == {pid}
    await give_back(f, b)  # a tenure that ends frees its slots at once
    assert await slots(runtime) == []
    async with runtime.factory() as session, session.begin():  # two at once took a slot each for one process
        session.add_all([ProviderBind(provider_id=pid, slot=slot, token=a, taken_at=clock.now()) for slot in (0, 1)])
    await lapse(runtime, a, alive=True)
    assert await take_slots(f, a, {pid: 2}) == {pid}
    assert await slots(runtime) == [(pid, 0, a)]  # the second given back for another process


async def _dispatcher(rt: Runtime, client: httpx.AsyncClient, token: str, *, heartbeat: bool = True) -> Dispatcher:
    async def take(limits: dict[int, int]) -> set[int]:
        return await take_slots(rt.factory, token, limits)

    adapters = providers.Adapters(rt.box, client, rt.factory, slots=take)
    if heartbeat:
        async with rt.factory() as session:
            await adapters.bind_enabled(session)  # as the engine does at each heartbeat
    return Dispatcher(rt.factory, rt.box, client, DispatchSettings(batch_size=50), adapters=adapters)


async def test_a_process_without_the_bind_hands_its_messages_to_the_one_bound(runtime: Runtime,
                                                                              smsc: FakeSmsc) -> None:
    smsc.max_binds = 1  # the account allows one bind: a second would be refused
    pid = await add_provider(runtime, "smsc", kind="smpp", **provider_values(smsc, bind_limit="1"))
    sandbox = await add_provider(runtime, "spare")  # the group's second provider: never used for a handoff
    group = await add_group(runtime, "smpp-first", [pid, sandbox])
    ids = await queue(runtime, *(message_row(n, group_id=group) for n in range(20)))
    async with httpx.AsyncClient() as client:
        bound = await _dispatcher(runtime, client, await live_token(runtime))
        other = await _dispatcher(runtime, client, await live_token(runtime))
        try:
            await eventually(lambda: bound.adapters.bind_statuses()[pid].state is BindState.BOUND)
            assert other.adapters.bind_statuses()[pid].state is BindState.STANDBY
            assert await other.run_once() == 20  # claimed, then handed back: not failed over, not sent
            async with runtime.factory() as session:
                rows = (await session.execute(select(Message.state, Message.needs_bind_id, Message.attempts)
                                              .where(Message.id.in_(ids)))).all()
            assert set(rows) == {("queued", pid, 0)}
            assert await other.run_once() == 0  # it leaves them to the bound process from now on
            while await bound.run_once():
                pass
        finally:
            await bound.adapters.aclose()
            await other.adapters.aclose()
    async with runtime.factory() as session:
        states = set((await session.scalars(select(Message.state).where(Message.id.in_(ids)))).all())
    assert states == {"sent"}
    assert sorted(smsc.received) == sorted(message_row(n)["to_number"].lstrip("+") for n in range(20))
    assert [await path(runtime, i) for i in ids] == [[("smsc", "sent")]] * 20  # never through the spare provider
    assert [b[2] for b in smsc.binds] == [codec.ROK] and smsc.peak_bound == 1


async def test_a_provider_enabled_since_the_last_heartbeat_is_bound_at_its_first_message(
        runtime: Runtime, smsc: FakeSmsc) -> None:
    async with httpx.AsyncClient() as client:
        dispatcher = await _dispatcher(runtime, client, await live_token(runtime))  # before the provider exists
        pid = await add_provider(runtime, "smsc", kind="smpp", **provider_values(smsc))
        ids = await queue(runtime, *(message_row(n, provider_id=pid, provider_name="smsc") for n in range(3)))
        try:
            assert await dispatcher.run_once() == 3
        finally:
            await dispatcher.adapters.aclose()
    assert [await path(runtime, i) for i in ids] == [[("smsc", "sent")]] * 3  # not handed off to wait a heartbeat
    assert len(smsc.binds) == 1


async def test_a_handed_back_message_goes_on_from_the_provider_it_waited_for(runtime: Runtime,
                                                                              smsc: FakeSmsc) -> None:
    sandbox = await add_provider(runtime, "first")
    pid = await add_provider(runtime, "smsc", kind="smpp", **provider_values(smsc))
    group = await add_group(runtime, "sandbox-first", [sandbox, pid])
    [waiting] = await queue(runtime, message_row(0, group_id=group, needs_bind_id=pid))
    [fresh] = await queue(runtime, message_row(1, group_id=group))
    async with httpx.AsyncClient() as client:
        bound = await _dispatcher(runtime, client, await live_token(runtime))
        try:
            await eventually(lambda: bound.adapters.bind_statuses()[pid].state is BindState.BOUND)
            assert await bound.run_once() == 2
        finally:
            await bound.adapters.aclose()
    assert await path(runtime, waiting) == [("smsc", "sent")]
    assert await path(runtime, fresh) == [("first", "sent")]


async def test_two_engines_one_bind_and_the_other_takes_it_when_the_holder_stops(
        runtime: Runtime, smsc: FakeSmsc) -> None:
    """PostgreSQL: a scheduler and a worker process with a bind limit of 1 — one binds, the other
    stands by (Home and Providers say so); every message is sent once over the one bind; when the
    process holding it stops, the other binds."""
    if runtime.db.dialect.name != "postgresql":
        pytest.skip("several engine processes share one database on PostgreSQL only")
    smsc.max_binds = 1
    pid = await add_provider(runtime, "smsc", kind="smpp", **provider_values(smsc))
    first = Engine(runtime.factory, runtime.box, runtime.config, holder=lease.Holder.for_this_process(),
                   workers=True)
    second = Engine(runtime.factory, runtime.box, runtime.config, holder=lease.Holder.for_this_process(),
                    workers=True)
    stops = [asyncio.Event(), asyncio.Event()]
    tasks = [asyncio.create_task(first.run(stops[0]))]
    await eventually(lambda: first.state is EngineState.RUNNING)
    tasks.append(asyncio.create_task(second.run(stops[1])))
    engines = (first, second)

    def states() -> list[str]:
        return sorted(str(e.bind_statuses()[pid].state) for e in engines if pid in e.bind_statuses())

    try:
        await eventually(lambda: second.state is EngineState.WORKER and states() == ["bound", "standby"])

        async def shown() -> list[str]:  # what Home and Providers read: each process's row
            async with runtime.factory() as session:
                return describe_binds(await live_workers(session), pid)

        await eventually(lambda: _both_shown(shown))
        ids = await queue(runtime, *(message_row(n, provider_id=pid, provider_name="smsc") for n in range(40)))
        for engine in engines:
            engine.poke()

        async def all_sent() -> bool:
            async with runtime.factory() as session:
                found = (await session.scalars(select(Message.state).where(Message.id.in_(ids)))).all()
            return set(found) == {"sent"}

        await eventually(all_sent)
        assert len(smsc.received) == 40 == len(set(smsc.received))
        holder = next(i for i, e in enumerate(engines) if e.bind_statuses()[pid].state is BindState.BOUND)
        stops[holder].set()
        await asyncio.wait_for(tasks[holder], timeout=30)
        survivor = engines[1 - holder]
        await eventually(lambda: survivor.bind_statuses().get(pid) is not None
                         and survivor.bind_statuses()[pid].state is BindState.BOUND)
        assert smsc.peak_bound == 1 and all(status == codec.ROK for _, _, status in smsc.binds)
    finally:
        for stop in stops:
            stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=30)
    assert await slots(runtime) == []


async def _both_shown(shown: Callable[[], Awaitable[list[str]]]) -> bool:
    lines = await shown()
    return len(lines) == 2 and sum(line.startswith("standby on ") for line in lines) == 1 \
        and sum(line.startswith("bound, window 0/10 on ") for line in lines) == 1


async def test_test_connection_reports_the_live_bind_instead_of_binding_beyond_the_limit(
        runtime: Runtime, smsc: FakeSmsc) -> None:
    smsc.max_binds = 1
    pid = await add_provider(runtime, "smsc", kind="smpp", **provider_values(smsc))
    engine = Engine(runtime.factory, runtime.box, runtime.config)
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    try:
        async def bound_on_the_row() -> bool:
            async with runtime.factory() as session:
                return any(w.binds.get(str(pid), {}).get("state") == "bound" for w in await live_workers(session))

        await eventually(bound_on_the_row)
        async with httpx.AsyncClient() as client:
            check = await providers.test_provider(runtime.factory, runtime.box, "smsc", client, "test")
            assert check.ok and check.detail.startswith("not bound again: the engine holds 1 of this account's "
                                                        "1 bind(s) (bound on ")
            assert len(smsc.binds) == 1  # the engine's, and nothing refused
            async with runtime.factory() as session, session.begin():
                row = await session.get(ProviderRow, pid)
                assert row is not None
                row.config = {**row.config, "bind_limit": "2"}  # the account allows two: the test binds
            smsc.max_binds = 2
            check = await providers.test_provider(runtime.factory, runtime.box, "smsc", client, "test")
        assert check.ok and check.detail.startswith(f"bound to 127.0.0.1:{smsc.port} as 'acme'")
        assert smsc.peak_bound == 2 and all(status == codec.ROK for _, _, status in smsc.binds)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


async def test_providers_shows_each_process_bind_and_refreshes_it_while_shown(runtime: Runtime,
                                                                               smsc: FakeSmsc) -> None:
    """Providers reads the processes' rows again every few seconds: a bind that moves from one
    process to another shows without a key pressed."""
    pid = await add_provider(runtime, "smsc", kind="smpp", **provider_values(smsc))
    first, second = await live_token(runtime), await live_token(runtime)

    async def write(token: str, state: str) -> None:
        async with runtime.factory() as session, session.begin():
            await session.execute(update(EngineWorker).where(EngineWorker.token == token).values(
                binds={str(pid): {"state": state, "window": 10, "in_flight": 0, "last_error": None}}))

    await write(first, "bound")
    await write(second, "standby")
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")

        def detail() -> str:
            return str(app.screen.query_one("#provider-detail").render())

        await wait_for(pilot, lambda: "standby on box:1: its bind limit is held by other processes" in detail()
                       and "bound, window 0/10 on box:1" in detail(), what="both processes' binds")
        await lapse(runtime, first)  # the bound process died; the other took the slot and bound
        await write(second, "bound")
        await wait_for(pilot, lambda: "standby" not in detail() and detail().count("bound, window 0/10") == 1,
                       what="the binds as they are now, without a key pressed", timeout=10)


def test_the_workers_command_names_who_holds_each_bind(config: Config, cli: Any) -> None:
    async def seed() -> None:
        rt = await Runtime.open(config)
        try:
            pid = await add_provider(rt, "smsc", kind="smpp", host="127.0.0.1", port="2775", system_id="acme",
                                     password="secret", sender="ACME")
            for state in ("bound", "standby"):
                token = await live_token(rt)
                async with rt.factory() as session, session.begin():
                    await session.execute(update(EngineWorker).where(EngineWorker.token == token).values(
                        binds={str(pid): {"state": state, "window": 10, "in_flight": 2, "last_error": None}}))
        finally:
            await rt.close()

    asyncio.run(seed())
    code, out, err = cli("workers")
    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == ("bind smsc: bound, window 2/10 on box:1; "
                                    "standby on box:1: its bind limit is held by other processes")
    code, out, _ = cli("workers", "--json")
    assert sorted(w["binds"]["smsc"]["state"] for w in json.loads(out)) == ["bound", "standby"]
