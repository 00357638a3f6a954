"""The dispatcher's batch writes as statements over a whole batch (engine/claims.py, engine/many.py):
the claim walks the queue index in the claim order; the outcome writer's set-based SQLite write
stores exactly what its executemany stored, value for value and in the same stored form; the
claim and the send gate, which hold the per-row rollup triggers aside, leave every rollup equal to
a recount, also when the gate suppresses part of a batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import bindparam, event, select, text, update

from smsconsole import clock
from smsconsole.engine import claims, many
from smsconsole.engine.circuit import CircuitBreaker
from smsconsole.engine.dispatcher import Dispatcher, DispatchSettings
from smsconsole.engine.jobs import Attempt
from smsconsole.engine.lease import Tenure
from smsconsole.engine.outcomes import OutcomeWriter
from smsconsole.engine.routing import ProviderEntry
from smsconsole.models import Message, MessageAttempt, Profile
from smsconsole.providers.base import SendOutcome, TransientError
from smsconsole.runtime import Runtime
from tests.integration.dispatch_support import add_profile, add_provider, message_row, queue
from tests.integration.test_rollups import read_rollups, recount

NOW = datetime(2026, 12, 4, 22, 0, 0, 123456, tzinfo=UTC)


async def test_the_claim_takes_the_due_queue_in_order_through_the_queue_index(runtime: Runtime) -> None:
    clock.freeze(NOW)
    later = NOW + timedelta(minutes=5)
    ids = await queue(runtime, *(message_row(n, priority=(100 if n % 5 == 0 else 0)) for n in range(30)),
                      message_row(30, next_attempt_at=later), message_row(31, priority=100, needs_bind_id=7),
                      message_row(32, state="held"))
    async with runtime.factory() as session:
        due = await claims.due_ids(session, NOW, 12, blocked={7})
        everything = await claims.due_ids(session, NOW, 100, blocked=())
        if runtime.db.dialect.name == "sqlite":
            plan = " ".join(str(row[-1]) for row in (await session.execute(
                text("EXPLAIN QUERY PLAN " + claims._SQLITE_DUE[True].text).bindparams(
                    bindparam("blocked", expanding=True)),
                {"now": "x", "limit": 1, "blocked": [7]})).all())
            assert "ix_messages_queue" in plan and "TEMP B-TREE" not in plan, plan
    first = [i for n, i in enumerate(ids[:30]) if n % 5 == 0]  # priority 100, oldest first
    assert due == (first + [i for n, i in enumerate(ids[:30]) if n % 5])[:12]
    assert ids[31] not in due and ids[31] in everything  # handed back for a bind this process lacks
    assert ids[30] not in everything and ids[32] not in everything  # not due yet; not queued
    async with runtime.factory() as session, session.begin():
        rows = await claims.take(session, due, "t" * 32, Tenure("t" * 32, fenced=False).fence(), NOW)
    assert [row.id for row in rows] == due
    async with runtime.factory() as session, session.begin():
        assert await claims.take(session, due, "u" * 32, Tenure("u" * 32, fenced=False).fence(), NOW) == []  # claimed already


def _entry(provider_id: int) -> ProviderEntry:
    return ProviderEntry(id=provider_id, name="ünï 'quoted'", kind="sandbox", enabled=True, spec=None, spec_error=None,
                         rate_limit=None, sender_rate_limit=None, circuit_state="closed", circuit_failures=0,
                         circuit_until=None)


def _outcomes(ids: list[int], provider_id: int) -> tuple[list[Any], list[Attempt]]:
    """Every shape of change the dispatcher writes, with awkward values."""
    entry = _entry(provider_id)
    sent = {"state": "sent", "provider_message_id": "SM-ü\"'\n\\x", "sent_at": NOW, "reason": None,
            "error_code": None, "next_attempt_at": None, "provider_id": provider_id, "provider_name": entry.name}
    finals = [
        (None, ids[0], sent),
        (None, ids[1], {**sent, "provider_message_id": "2", "sent_at": NOW.replace(microsecond=0),
                        "price": 0.0075, "price_currency": "EUR"}),
        (None, ids[2], {"state": "failed", "error_code": "21211", "finished_at": NOW, "next_attempt_at": None,
                        "reason": "bad number: «x»", "provider_id": provider_id, "provider_name": entry.name}),
        (None, ids[3], {"state": "queued", "next_attempt_at": NOW + timedelta(seconds=3.5), "error_code": None,
                        "reason": "attempt 1 of 5 failed; retrying in 4s"}),
        (None, ids[4], {"state": "suppressed", "reason": "the recipient unsubscribed from SMS", "finished_at": NOW,
                        "error_code": None, "next_attempt_at": None}),
    ]
    error = TransientError("timed out", code="503", http_status=503, retry_after=1.5)
    attempts = [Attempt(ids[0], entry, NOW, NOW, SendOutcome(ref="1", provider_message_id="x", http_status=200), None),
                Attempt(ids[3], entry, NOW, NOW + timedelta(microseconds=1), None, error)]
    return finals, attempts


async def test_the_set_based_outcome_write_stores_what_the_executemany_stored(runtime: Runtime,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    if runtime.db.dialect.name != "sqlite":
        pytest.skip("SQLite's set-based write; PostgreSQL writes UPDATE … FROM (VALUES …)")
    clock.freeze(NOW)
    provider_id = await add_provider(runtime, "alpha")
    stored: list[list[tuple[Any, ...]]] = []
    for set_based in (True, False):
        monkeypatch.setattr(many, "SET_BASED", set_based)
        token = ("s" if set_based else "m") * 32
        ids = await queue(runtime, *(message_row(n, state="sending", claim_token=token) for n in range(5)))
        writer = OutcomeWriter(runtime.factory, Tenure(token, fenced=False), CircuitBreaker(5, 30), stopping=None)  # type: ignore[arg-type]
        finals, attempts = _outcomes(ids, provider_id)
        statements: list[str] = []
        listen = lambda conn, cursor, sql, *_: statements.append(sql)  # noqa: E731
        event.listen(runtime.db.sync_engine, "before_cursor_execute", listen)
        try:
            await writer.record(finals, attempts)
        finally:
            event.remove(runtime.db.sync_engine, "before_cursor_execute", listen)
        writes = [sql for sql in statements if sql.startswith(("UPDATE messages", "INSERT INTO message_attempts"))]
        # the attempts, then one statement for each of the five sets of changed columns
        assert len(writes) == 6 and all(("json_each" in sql) is set_based for sql in writes), writes
        columns = ("state", "provider_message_id", "sent_at", "finished_at", "next_attempt_at", "reason",
                   "error_code", "provider_id", "provider_name", "price", "price_currency", "updated_at")
        raw = ", ".join(f"{c}, typeof({c})" for c in columns)
        attempt_columns = ("provider_id", "provider_name", "started_at", "finished_at", "http_status", "outcome",
                           "error_code", "error_message", "retry_after")
        raw_attempts = ", ".join(f"{c}, typeof({c})" for c in attempt_columns)
        async with runtime.factory() as session:
            rows = (await session.execute(text(f"SELECT {raw} FROM messages WHERE id IN ({','.join(map(str, ids))}) "
                                               "ORDER BY id"))).all()
            tries = (await session.execute(text(f"SELECT {raw_attempts} FROM message_attempts WHERE message_id IN "
                                                f"({','.join(map(str, ids))}) ORDER BY id"))).all()
        stored.append([tuple(row) for row in rows] + [tuple(row) for row in tries])
    assert stored[0] == stored[1]
    assert len(stored[0]) == 7
    assert stored[0][0][:6] == ("sent", "text", "SM-ü\"'\n\\x", "text", "2026-12-04 22:00:00.123456", "text")
    async with runtime.factory() as session:  # and read back as the ORM reads it
        message = await session.scalar(select(Message).where(Message.state == "queued").limit(1))
        attempt = await session.scalar(select(MessageAttempt).where(MessageAttempt.outcome == "transient").limit(1))
    assert message is not None and message.next_attempt_at == NOW + timedelta(seconds=3.5)
    assert attempt is not None and attempt.retry_after == 1.5 and attempt.error_code == "503"


async def test_the_outcome_write_is_fenced_on_the_claim_token(runtime: Runtime) -> None:
    """Only this tenure's messages in flight: another tenure's, or a settled one, is left alone."""
    clock.freeze(NOW)
    provider_id = await add_provider(runtime, "alpha")
    mine = "m" * 32
    ids = await queue(runtime, message_row(0, state="sending", claim_token=mine),
                      message_row(1, state="sending", claim_token="o" * 32),
                      message_row(2, state="delivered", claim_token=mine),
                      *(message_row(n, state="sending", claim_token=mine) for n in range(3, 5)))
    finals, _ = _outcomes(ids, provider_id)
    await OutcomeWriter(runtime.factory, Tenure(mine, fenced=False), CircuitBreaker(5, 30), stopping=None).record(  # type: ignore[arg-type]
        [(None, i, finals[0][2]) for i in ids], [])
    async with runtime.factory() as session:
        states = list(await session.scalars(select(Message.state).where(Message.id.in_(ids)).order_by(Message.id)))
    assert states == ["sent", "sending", "delivered", "sent", "sent"]


async def test_claim_and_gate_leave_the_rollups_equal_to_a_recount(runtime: Runtime) -> None:
    """Twenty messages claimed (the triggers held aside), five of whose recipients unsubscribe
    before the gate: the gate suppresses those five (counted by the triggers), sends the rest."""
    provider_id = await add_provider(runtime, "alpha")
    profiles = [await add_profile(runtime, f"+1415555{n:04d}", "subscribed") for n in range(20)]
    await queue(runtime, *(message_row(n, provider_id=provider_id, provider_name="alpha", profile_id=profile)
                           for n, profile in enumerate(profiles)))
    async with httpx.AsyncClient() as client:
        dispatcher = Dispatcher(runtime.factory, runtime.box, client, DispatchSettings(batch_size=50))
        batch = await dispatcher._claim()
        assert batch is not None and len(batch[0]) == 20
        async with runtime.factory() as session:
            assert await read_rollups(session) == await recount(session)
        async with runtime.factory() as session, session.begin():
            await session.execute(update(Profile).where(Profile.id.in_(profiles[:5]))
                                  .values(subscription="unsubscribed", subscription_at=clock.now()))
        await dispatcher._process(*batch)
    async with runtime.factory() as session:
        states = list(await session.scalars(select(Message.state).order_by(Message.id)))
        assert states == ["suppressed"] * 5 + ["sent"] * 15
        assert await read_rollups(session) == await recount(session)
