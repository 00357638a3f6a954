"""Never send what must not be sent (issue 10, items 1–4, 8, 9), on SQLite and PostgreSQL:

- a claim takes at most its batch, whatever plan the database picks;
- claimed is not sending: claimed messages go back to the queue after a crash, only messages whose
  request may have left become `unknown`;
- consent is re-checked right before each request leaves (a STOP while a message waits for its
  rate limit stops it), and an opt-out belongs to the phone number, not to one profile;
- an engine paused past its lease and replaced sends nothing more (the lease fence);
- a database error while writing outcomes is retried, nothing stranded `sending`.

Messages go to a loopback fake gateway (tests/fakes/sink.py) through the Generic HTTP provider;
the fake records when each message arrived and which engine sent it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event, func, insert, select, text, update
from sqlalchemy.exc import OperationalError

from smsconsole import clock
from smsconsole.engine import lease
from smsconsole.engine.dispatcher import Dispatcher, DispatchSettings
from smsconsole.engine.runner import Engine, EngineState
from smsconsole.models import EngineLease, Message, Profile
from smsconsole.providers.base import InboundReport
from smsconsole.runtime import Runtime
from smsconsole.services import profiles as profile_service
from smsconsole.services import replies
from smsconsole.services.receipts import stored_id
from tests.conftest import make_config
from tests.fakes.server import serve
from tests.fakes.sink import SmsSink, generic_config
from tests.integration.dispatch_support import (
    add_profile,
    add_provider,
    message_row,
    queue,
    set_provider,
)
from tests.integration.serve_support import start_serve

NUMBER = "+14155550123"


class TimedSink(SmsSink):
    """The sink, remembering when each message arrived and the `x-engine` header it came with."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[tuple[str, float, str]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        before = len(self.received)
        await super().__call__(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        engine = headers.get(b"x-engine", b"").decode()
        now = time.monotonic()
        self.arrivals.extend((ref, now, engine) for ref in self.received[before:])

    def after(self, moment: float) -> list[str]:
        return [ref for ref, at, _ in self.arrivals if at > moment]


async def _until(predicate, timeout: float = 30.0, step: float = 0.02) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(step)


async def _states(rt: Runtime) -> Counter[str]:
    async with rt.factory() as session:
        rows = await session.execute(select(Message.state, func.count()).group_by(Message.state))
        return Counter({state: count for state, count in rows})


@contextlib.asynccontextmanager
async def _dispatching(rt: Runtime) -> AsyncIterator[asyncio.Event]:
    """The dispatcher's loop running in the background; yields its wake event."""
    stop, wake = asyncio.Event(), asyncio.Event()
    async with httpx.AsyncClient() as client:
        dispatcher = Dispatcher(rt.factory, rt.box, client, DispatchSettings(batch_size=50))
        running = asyncio.create_task(dispatcher.run(stop, wake, 0.05))
        try:
            yield wake
        finally:
            stop.set()
            await running


async def _arrived(sink: SmsSink, count: int) -> None:
    async def enough() -> bool:
        return len(sink.received) >= count

    await _until(enough)


async def _settled(rt: Runtime) -> None:
    async def nothing_open() -> bool:
        states = await _states(rt)
        return states["queued"] + states["claimed"] + states["sending"] == 0

    await _until(nothing_open)


async def _sink_provider(rt: Runtime, url: str, per_request: int = 1, rate: float | None = None) -> int:
    provider_id = await add_provider(rt, "sink", kind="generic", **generic_config(url, per_request))
    if rate is not None:
        await set_provider(rt, provider_id, rate_limit=rate)
    return provider_id


# --- 1. a claim never exceeds its batch ----------------------------------------------------------


async def test_one_claim_takes_at_most_its_batch_even_with_a_settled_history_analyzed(runtime: Runtime) -> None:
    """The reproduction from the issue: 20,000 delivered messages, ANALYZE, 3,000 queued. On
    PostgreSQL an `UPDATE … WHERE id IN (SELECT … LIMIT 50 FOR UPDATE SKIP LOCKED)` may run its
    subquery once per outer row and claim all 3,000."""
    provider = await add_provider(runtime, "sbx")
    now = clock.now()
    settled = [message_row(n, provider_id=provider, provider_name="sbx", state="delivered", attempts=1,
                           sent_at=now, finished_at=now) for n in range(20_000)]
    waiting = [message_row(n, provider_id=provider, provider_name="sbx") for n in range(3_000)]
    async with runtime.factory() as session, session.begin():
        for start in range(0, len(settled), 5_000):
            await session.execute(insert(Message), settled[start:start + 5_000])
    async with runtime.db.connect() as connection:  # statistics that say nothing is queued …
        await connection.execute(text("ANALYZE"))
        await connection.commit()
    async with runtime.factory() as session, session.begin():  # … then the queue fills up
        await session.execute(insert(Message), waiting)

    async with httpx.AsyncClient() as client:
        dispatcher = Dispatcher(runtime.factory, runtime.box, client, DispatchSettings(batch_size=50))
        claimed = await dispatcher._claim()
    assert claimed is not None
    assert len(claimed[0]) == 50
    states = await _states(runtime)
    assert states["claimed"] == 50
    assert states["queued"] == 2_950
    assert states["sending"] == 0


async def test_a_claim_holds_no_more_than_the_providers_can_take_soon(runtime: Runtime) -> None:
    provider = await add_provider(runtime, "sbx")
    await set_provider(runtime, provider, rate_limit=5.0)
    await queue(runtime, *(message_row(n, provider_id=provider, provider_name="sbx") for n in range(100)))
    async with httpx.AsyncClient() as client:
        dispatcher = Dispatcher(runtime.factory, runtime.box, client, DispatchSettings(batch_size=50))
        claimed = await dispatcher._claim()
    assert claimed is not None
    assert len(claimed[0]) == 10  # 5 messages a second, two seconds ahead


# --- 3. claimed is not sending -----------------------------------------------------------------


async def test_claimed_but_unsent_messages_go_back_to_the_queue_after_a_crash(runtime: Runtime) -> None:
    sink = TimedSink()
    with serve(sink) as server:
        provider = await _sink_provider(runtime, server.url)
        ids = await queue(runtime, *(message_row(n, provider_id=provider, provider_name="sink") for n in range(30)))
        async with httpx.AsyncClient() as client:
            crashed = Dispatcher(runtime.factory, runtime.box, client, DispatchSettings(batch_size=30))
            assert await crashed._claim() is not None  # … and the process dies before sending any
            assert (await _states(runtime))["claimed"] == 30

            restarted = Dispatcher(runtime.factory, runtime.box, client, DispatchSettings(batch_size=30))
            assert await restarted.recover() == 0  # nothing became unknown: nothing had left
            assert (await _states(runtime))["queued"] == 30
            while await restarted.run_once():
                pass
    assert await _states(runtime) == Counter({"sent": 30})
    assert sorted(sink.received, key=int) == [str(i) for i in ids]


# --- 2 and 4. consent right before the request; an opt-out belongs to the number ---------------


async def test_a_stop_committed_while_messages_wait_for_their_rate_limit_stops_them(runtime: Runtime) -> None:
    sink = TimedSink()
    with serve(sink) as server:
        provider = await _sink_provider(runtime, server.url, rate=4.0)
        profile = await add_profile(runtime, NUMBER, "subscribed")
        await queue(runtime, *(message_row(n, provider_id=provider, provider_name="sink", profile_id=profile,
                                           to_number=NUMBER) for n in range(24)))
        async with _dispatching(runtime):
            await _arrived(sink, 6)
            async with runtime.factory() as session, session.begin():  # an operator unsubscribes them
                await profile_service.set_subscription(session, profile, "unsubscribed", source="operator")
            committed = time.monotonic()
            await _settled(runtime)
    late = sink.after(committed)
    assert len(late) <= 1, f"{len(late)} message(s) reached the gateway after the opt-out was committed"
    states = await _states(runtime)
    assert states["sent"] == len(sink.received) < 24
    assert states["suppressed"] == 24 - len(sink.received)
    async with runtime.factory() as session:
        reasons = set(await session.scalars(select(Message.reason).where(Message.state == "suppressed")))
    assert reasons == {"the recipient unsubscribed from SMS"}


async def test_a_stop_stops_every_profile_holding_the_number(runtime: Runtime) -> None:
    sink = TimedSink()
    with serve(sink) as server:
        provider = await _sink_provider(runtime, server.url, rate=4.0)
        first = await add_profile(runtime, NUMBER, "subscribed", user_id="u-first")
        second = await add_profile(runtime, NUMBER, "subscribed", user_id="u-second")
        await queue(runtime, *(message_row(n, provider_id=provider, provider_name="sink", profile_id=second,
                                           to_number=NUMBER) for n in range(24)))
        async with _dispatching(runtime) as wake:
            await _arrived(sink, 6)
            async with runtime.factory() as session, session.begin():
                view = await replies.record_inbound(
                    session, provider_id=provider, provider_name="sink", via="poll",
                    report=InboundReport(provider_message_id="mo-1", sender=NUMBER, recipient="+14155552671",
                                         text="STOP"))
            committed = time.monotonic()
            assert view.action == "opt_out"
            await _settled(runtime)
            # a message queued to the second profile after the STOP does not go either
            later = await queue(runtime, message_row(99, provider_id=provider, provider_name="sink",
                                                     profile_id=second, to_number=NUMBER))
            wake.set()
            await _settled(runtime)
    assert len(sink.after(committed)) <= 1
    async with runtime.factory() as session:
        subscriptions = dict((await session.execute(select(Profile.id, Profile.subscription))).all())
        last = await session.get(Message, later[0])
    assert subscriptions == {first: "unsubscribed", second: "unsubscribed"}
    assert last is not None and last.state == "suppressed"
    assert str(later[0]) not in sink.received


async def test_an_opt_out_on_one_profile_covers_another_profile_with_the_same_number(runtime: Runtime) -> None:
    """However the opt-out was recorded (here an operator, not a STOP), the number is out."""
    sink = TimedSink()
    with serve(sink) as server:
        provider = await _sink_provider(runtime, server.url)
        await add_profile(runtime, NUMBER, "unsubscribed", user_id="u-old")
        holder = await add_profile(runtime, NUMBER, "subscribed", user_id="u-holder")
        other = await add_profile(runtime, "+14155550199", "subscribed")
        blocked, fine = await queue(
            runtime,
            message_row(1, kind="campaign", provider_id=provider, provider_name="sink", profile_id=holder,
                        to_number=NUMBER),
            message_row(2, kind="campaign", provider_id=provider, provider_name="sink", profile_id=other,
                        to_number="+14155550199"),
        )
        async with httpx.AsyncClient() as client:
            dispatcher = Dispatcher(runtime.factory, runtime.box, client, DispatchSettings())
            await dispatcher.run_once()
    assert sink.received == [str(fine)]
    async with runtime.factory() as session:
        row = await session.get(Message, blocked)
    assert row is not None and row.state == "suppressed"
    assert row.reason == "this number unsubscribed from SMS (on another profile holding it)"


async def test_a_later_explicit_opt_in_gives_the_number_back(runtime: Runtime) -> None:
    """The latest consent change of the number wins: START (or a newer recorded opt-in) after an
    older opt-out on another profile holding the number."""
    sink = TimedSink()
    with serve(sink) as server:
        provider = await _sink_provider(runtime, server.url)
        old = await add_profile(runtime, NUMBER, "subscribed", user_id="u-old")
        new = await add_profile(runtime, NUMBER, "never", user_id="u-new")
        async with runtime.factory() as session, session.begin():
            await profile_service.set_subscription(session, old, "unsubscribed", source="operator")
        clock.freeze(clock.now() + timedelta(minutes=5))
        async with runtime.factory() as session, session.begin():
            await profile_service.set_subscription(session, new, "subscribed", source="operator")
        clock.freeze(None)
        (message_id,) = await queue(runtime, message_row(1, kind="campaign", provider_id=provider,
                                                         provider_name="sink", profile_id=new, to_number=NUMBER))
        async with httpx.AsyncClient() as client:
            await Dispatcher(runtime.factory, runtime.box, client, DispatchSettings()).run_once()
    assert sink.received == [str(message_id)]


# --- 8. fencing: a stale engine sends nothing ----------------------------------------------------


async def test_an_engine_whose_lease_was_taken_sends_and_writes_nothing(runtime: Runtime) -> None:
    """Engine A claims a batch and stalls (as under SIGSTOP) past its lease; B takes over. When A
    goes on with its batch, the send gate's fenced write refuses it: no request leaves."""
    sink = TimedSink()
    with serve(sink) as server:
        provider = await _sink_provider(runtime, server.url)
        await queue(runtime, *(message_row(n, provider_id=provider, provider_name="sink") for n in range(40)))
        a, b = lease.Holder("a:1:x", "a", 1), lease.Holder("b:2:y", "b", 2)
        token_a = await lease.acquire(runtime.factory, a, ttl=30)
        assert token_a is not None
        async with httpx.AsyncClient() as client:
            stale = Dispatcher(runtime.factory, runtime.box, client, DispatchSettings(batch_size=20), token=token_a)
            batch = await stale._claim()
            assert batch is not None and len(batch[0]) == 20

            async with runtime.factory() as session, session.begin():  # A stalls past its TTL
                await session.execute(update(EngineLease).values(expires_at=clock.now()))
            token_b = await lease.acquire(runtime.factory, b, ttl=30)
            assert token_b is not None and token_b != token_a
            assert await lease.renew(runtime.factory, a, ttl=30, token=token_a) is False
            fresh = Dispatcher(runtime.factory, runtime.box, client, DispatchSettings(batch_size=20), token=token_b)
            assert await fresh.recover() == 0

            await stale._process(*batch)  # A wakes up and carries on
            assert sink.received == []
            assert await stale._claim() is None  # and cannot claim either

            while await fresh.run_once():
                pass
    assert await _states(runtime) == Counter({"sent": 40})
    assert len(sink.received) == len(set(sink.received)) == 40


async def _pause_outside_a_transaction(process: subprocess.Popen[bytes], rt: Runtime) -> None:
    """SIGSTOP the process at a moment it holds no open transaction. (Paused inside one, it holds
    SQLite's write lock, or PostgreSQL row locks, and nobody can take over until it resumes:
    that is the database's rule, not the engine's, and not what this test is about.)"""
    sqlite = rt.db.dialect.name == "sqlite"
    for _ in range(200):
        process.send_signal(signal.SIGSTOP)
        await asyncio.sleep(0.05)
        if sqlite:
            import sqlite3

            path = rt.db.url.database
            try:
                with sqlite3.connect(path, timeout=0.2, isolation_level=None) as probe:
                    probe.execute("BEGIN IMMEDIATE")
                    probe.execute("ROLLBACK")
                return
            except sqlite3.OperationalError:
                pass
        else:
            async with rt.factory() as session:
                busy = await session.scalar(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%' OR "
                    "(datname = current_database() AND pid <> pg_backend_pid() AND state = 'active')"))
            if not busy:
                return
        process.send_signal(signal.SIGCONT)
        await asyncio.sleep(0.01)
    raise AssertionError("could not pause the engine outside a transaction")


async def test_sigstop_past_the_ttl_then_sigcont_the_stale_engine_sends_nothing(
        database_url: str, tmp_path: Path) -> None:
    """A real `smsconsole serve` (A) is stopped with SIGSTOP past its lease, an engine in this
    process (B, its requests tagged) takes over, then A gets SIGCONT: from then on A sends
    nothing but the requests that were already in flight when it was paused."""
    # A 3 s lease: long enough that B, heartbeating every 0.2 s, keeps it on a loaded machine (a
    # lapsed lease would let A take over legitimately, which is not what this test is about).
    config = make_config(tmp_path, database_url, lease_ttl_seconds=3.0, heartbeat_seconds=0.2)
    sink = TimedSink()
    with serve(sink) as server:
        rt = await Runtime.open(config)
        try:
            provider = await _sink_provider(rt, server.url, rate=40.0)
            await queue(rt, *(message_row(n, provider_id=provider, provider_name="sink") for n in range(1_500)))
            env = {**os.environ, "SMSCONSOLE_CONFIG_DIR": str(config.config_dir),
                   "SMSCONSOLE_DATA_DIR": str(config.data_dir), "SMSCONSOLE_DATABASE_URL": database_url,
                   "SMSCONSOLE_LEASE_TTL_SECONDS": "3", "SMSCONSOLE_HEARTBEAT_SECONDS": "0.2",
                   "SMSCONSOLE_DISPATCH_BATCH_SIZE": "200", "SMSCONSOLE_DISPATCH_INTERVAL_SECONDS": "0.05",
                   # on PostgreSQL A would otherwise go on as a worker beside B, legitimately sending
                   # new claims (tests/integration/test_workers.py); here A must stay a lone engine
                   "SMSCONSOLE_WORKER_DISPATCH": "false"}
            engine_a = start_serve(env, tmp_path / "a.log")
            b_client = httpx.AsyncClient(headers={"x-engine": "B"}, timeout=5)
            stop_b = asyncio.Event()
            engine_b = Engine(rt.factory, rt.box, config, client=b_client)
            task_b: asyncio.Task[None] | None = None
            try:
                async def a_sending() -> bool:
                    return len(sink.received) >= 60

                await _until(a_sending)
                await _pause_outside_a_transaction(engine_a, rt)
                await asyncio.sleep(config.lease_ttl_seconds + 0.5)
                task_b = asyncio.create_task(engine_b.run(stop_b))

                async def b_sending() -> bool:
                    return engine_b.state is EngineState.RUNNING and any(e == "B" for _, _, e in sink.arrivals)

                await _until(b_sending)
                engine_a.send_signal(signal.SIGCONT)
                resumed = time.monotonic()
                await asyncio.sleep(3.0)  # A's heartbeat fails within 0.2 s; its claimed batch waited on tokens
            finally:
                engine_a.send_signal(signal.SIGCONT)
                engine_a.send_signal(signal.SIGTERM)
                engine_a.wait(20)
                stop_b.set()
                if task_b is not None:
                    await task_b
                await b_client.aclose()
            from_a = [ref for ref, at, engine in sink.arrivals if at > resumed + 0.05 and engine != "B"]
            # The only exception the fence allows: requests A had already let through its send gate
            # when it was paused (in flight: marked `sending`, so B's recovery made them unknown,
            # never resent). No new claim, nothing that was merely claimed, at most one gate group.
            async with rt.factory() as session:
                late_states = set(await session.scalars(
                    select(Message.state).where(Message.id.in_([int(ref) for ref in from_a]))))
            assert len(from_a) <= 8, f"the stale engine sent {len(from_a)} message(s) after SIGCONT"
            assert late_states <= {"unknown"}, late_states
            assert len(sink.received) == len(set(sink.received)), "a message was sent twice"
        finally:
            await rt.close()


# --- 9. a database error during the outcome write -----------------------------------------------


async def test_a_database_error_while_writing_outcomes_is_retried_and_strands_nothing(runtime: Runtime) -> None:
    sink = TimedSink()
    failures = {"left": 3}

    def refuse_outcomes(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if failures["left"] and statement.startswith("INSERT INTO message_attempts"):
            failures["left"] -= 1
            raise OperationalError(statement, parameters, Exception("injected: could not write (disk I/O error)"))

    with serve(sink) as server:
        provider = await _sink_provider(runtime, server.url, per_request=50)
        await queue(runtime, *(message_row(n, provider_id=provider, provider_name="sink") for n in range(100)))
        event.listen(runtime.db.sync_engine, "before_cursor_execute", refuse_outcomes)
        try:
            async with httpx.AsyncClient() as client:
                dispatcher = Dispatcher(runtime.factory, runtime.box, client, DispatchSettings(batch_size=100))
                assert await dispatcher.run_once() == 100
        finally:
            event.remove(runtime.db.sync_engine, "before_cursor_execute", refuse_outcomes)
    assert failures["left"] == 0
    assert await _states(runtime) == Counter({"sent": 100})
    assert len(sink.received) == 100



async def test_a_provider_message_id_over_128_characters_is_kept_as_its_stored_key(runtime: Runtime) -> None:
    """A gateway may answer with a very long id: the message is `sent` (not stranded by a failed
    write on PostgreSQL) under the same key receipts use to find it."""
    long_id = "gw-" + "x" * 300

    async def gateway(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        body = ('{"id": "%s"}' % long_id).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    with serve(gateway) as server:
        provider = await _sink_provider(runtime, server.url)
        (message_id,) = await queue(runtime, message_row(1, provider_id=provider, provider_name="sink"))
        async with httpx.AsyncClient() as client:
            await Dispatcher(runtime.factory, runtime.box, client, DispatchSettings()).run_once()
    async with runtime.factory() as session:
        row = await session.get(Message, message_id)
    assert row is not None and row.state == "sent"
    assert row.provider_message_id == stored_id(long_id)
    assert len(row.provider_message_id) <= 128
