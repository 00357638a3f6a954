"""Provider outage: during a 10,000-message send through a group of two providers, the first one
starts answering 503, then stops answering at all (connections time out before a request can
leave). Everything is delivered through the second provider, nothing twice, and the first
provider's circuit opens (out of rotation) instead of slowing every message down."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from pathlib import Path

import httpx
from sqlalchemy import func, insert, select

from smsconsole import clock
from smsconsole.engine.dispatcher import DispatchSettings, Dispatcher
from smsconsole.models import Message, MessageAttempt, Provider as ProviderRow
from smsconsole.runtime import Runtime
from smsconsole.services import providers
from tests.conftest import make_config
from tests.fakes.server import LoopbackServer, serve
from tests.fakes.sink import SmsSink, generic_config
from tests.integration.dispatch_support import add_group

MESSAGES = 10_000
PER_REQUEST = 10


def _blackhole(port: int) -> list[socket.socket]:
    """A listener on `port` that never accepts, its queue already full: new connections time out
    in the handshake, before any request is written."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(0)
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    return [listener, *fillers]


async def _wait_for(condition, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_first_provider_503_then_timing_out_everything_goes_through_the_second(tmp_path: Path) -> None:
    config = make_config(tmp_path, f"sqlite:///{tmp_path / 'outage.db'}")
    rt = await Runtime.open(config)
    first_sink, second_sink = SmsSink(), SmsSink()
    first_server = LoopbackServer(first_sink)
    first_server.start()
    holes: list[socket.socket] = []
    try:
        with serve(second_sink) as second_server:
            async with rt.factory() as session, session.begin():
                first = await providers.create_provider(session, rt.box, kind="generic", name="first",
                                                        values=generic_config(first_server.url, PER_REQUEST),
                                                        actor="test")
                second = await providers.create_provider(session, rt.box, kind="generic", name="second",
                                                         values=generic_config(second_server.url, PER_REQUEST),
                                                         actor="test")
            group = await add_group(rt, "main", [first.id, second.id], default=True)
            now = clock.now()
            async with rt.factory() as session, session.begin():
                await session.execute(insert(Message), [
                    {"kind": "transactional", "priority": 0, "group_id": group, "to_number": f"+1415{n:07d}",
                     "body": f"message {n}", "encoding": "GSM-7", "segments": 1, "state": "queued", "attempts": 0,
                     "created_at": now, "updated_at": now} for n in range(MESSAGES)
                ])

            async def circuit_open() -> bool:
                async with rt.factory() as session:
                    return await session.scalar(
                        select(ProviderRow.circuit_state).where(ProviderRow.id == first.id)) == "open"

            async def all_settled() -> bool:
                async with rt.factory() as session:
                    return not await session.scalar(select(func.count()).select_from(Message).where(
                        Message.state.in_(("queued", "sending"))))

            async with httpx.AsyncClient(timeout=httpx.Timeout(10, connect=0.3)) as client:
                dispatcher = Dispatcher(rt.factory, rt.box, client, DispatchSettings(
                    batch_size=200, circuit_threshold=5, circuit_cooldown=1.0, max_attempts=5))
                stop, wake = asyncio.Event(), asyncio.Event()
                running = asyncio.create_task(dispatcher.run(stop, wake, 0.05))
                try:
                    await _wait_for(lambda: _true_when(len(first_sink.received) >= 2_000))
                    first_sink.mode = "503"
                    await _wait_for(circuit_open)
                    first_server.stop()
                    holes = _blackhole(first_server.port)
                    await _wait_for(all_settled, timeout=120)
                finally:
                    stop.set()
                    await running

            async with rt.factory() as session:
                states = Counter(dict((await session.execute(
                    select(Message.state, func.count()).group_by(Message.state))).all()))
                attempts = (await session.execute(
                    select(MessageAttempt.provider_name, MessageAttempt.outcome, MessageAttempt.http_status,
                           MessageAttempt.error_message))).all()
                first_row = await session.get(ProviderRow, first.id)
    finally:
        for hole in holes:
            hole.close()
        first_server.stop()
        await rt.close()

    assert states == {"sent": MESSAGES}
    received = Counter(first_sink.received) + Counter(second_sink.received)
    assert len(received) == MESSAGES and set(received.values()) == {1}  # every message, once
    assert 2_000 <= len(first_sink.received) < MESSAGES and len(second_sink.received) >= MESSAGES - len(first_sink.received)
    first_failures = [a for a in attempts if a.provider_name == "first" and a.outcome != "sent"]
    assert {a.outcome for a in first_failures} == {"transient"}
    assert any(a.http_status == 503 for a in first_failures)
    assert any("cannot connect" in (a.error_message or "") for a in first_failures)  # the timeouts
    # out of rotation: only a handful of messages paid for the outage with a failed try
    assert len(first_failures) < 40 * PER_REQUEST
    assert first_row is not None and first_row.circuit_state in ("open", "half_open")
    assert first_row.health == "unhealthy"


async def _true_when(value: bool) -> bool:
    return value
