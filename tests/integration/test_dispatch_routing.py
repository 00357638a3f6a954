"""Routing, failover, the circuit breaker, claim-time guards, bulk writes and reconciliation, on a
real database (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import event, insert, update
from sqlalchemy.exc import IntegrityError

from smsconsole import clock
from smsconsole.engine.dispatcher import Dispatcher, DispatchSettings, dedupe_key
from smsconsole.engine.reconcile import reconcile_unknown
from smsconsole.models import Message
from smsconsole.runtime import Runtime
from smsconsole.services import rollup_batch
from tests.fakes.server import serve
from tests.fakes.sink import SmsSink, generic_config
from tests.integration.dispatch_support import (
    add_group,
    add_profile,
    add_provider,
    message,
    message_row,
    path,
    provider_row,
    queue,
    set_provider,
)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(0.5)) as http:
        yield http


def make_dispatcher(rt: Runtime, client: httpx.AsyncClient, **settings: object) -> Dispatcher:
    values: dict[str, object] = {"batch_size": 50, "max_attempts": 3}
    values.update(settings)
    return Dispatcher(rt.factory, rt.box, client, DispatchSettings(**values))  # type: ignore[arg-type]


# --- routing ------------------------------------------------------------------------------------


async def test_group_tries_members_in_priority_order_and_fails_over_on_transient(runtime: Runtime, client) -> None:
    down = await add_provider(runtime, "down", failure_rate="100")
    up = await add_provider(runtime, "up")
    group = await add_group(runtime, "main", [down, up])
    [message_id] = await queue(runtime, message_row(group_id=group))

    assert await make_dispatcher(runtime, client).run_once() == 1

    sent = await message(runtime, message_id)
    assert (sent.state, sent.provider_name, sent.provider_id) == ("sent", "up", up)
    assert await path(runtime, message_id) == [("down", "transient"), ("up", "sent")]


async def test_configuration_error_fails_over_too(runtime: Runtime, client, monkeypatch) -> None:
    monkeypatch.delenv("SMSC_TEST_UNSET_TOKEN", raising=False)
    broken = await add_provider(runtime, "tw", kind="twilio", account_sid="AC" + "0" * 32,
                                auth_token="env:SMSC_TEST_UNSET_TOKEN", sender="+15005550006")
    up = await add_provider(runtime, "up")
    group = await add_group(runtime, "main", [broken, up])
    [message_id] = await queue(runtime, message_row(group_id=group))

    await make_dispatcher(runtime, client).run_once()

    assert (await message(runtime, message_id)).state == "sent"
    assert await path(runtime, message_id) == [("tw", "configuration"), ("up", "sent")]
    tw = await provider_row(runtime, broken)
    assert tw.health == "unhealthy" and "SMSC_TEST_UNSET_TOKEN" in (tw.health_detail or "")


async def test_permanent_error_for_the_recipient_does_not_fail_over(runtime: Runtime, client) -> None:
    picky = await add_provider(runtime, "picky", fail_pattern=r"^\+1415")
    other = await add_provider(runtime, "other")
    group = await add_group(runtime, "main", [picky, other])
    [message_id] = await queue(runtime, message_row(group_id=group))

    await make_dispatcher(runtime, client).run_once()

    failed = await message(runtime, message_id)
    assert (failed.state, failed.error_code) == ("failed", "SANDBOX-REJECTED")
    assert await path(runtime, message_id) == [("picky", "permanent")]


async def test_unknown_outcome_is_never_sent_again_through_another_provider(runtime: Runtime, client) -> None:
    hanging, healthy = SmsSink(), SmsSink()
    hanging.mode = "hang"
    with serve(hanging) as first, serve(healthy) as second:
        slow = await add_provider(runtime, "slow", kind="generic", **generic_config(first.url))
        fine = await add_provider(runtime, "fine", kind="generic", **generic_config(second.url))
        group = await add_group(runtime, "main", [slow, fine])
        [message_id] = await queue(runtime, message_row(group_id=group))

        await make_dispatcher(runtime, client).run_once()

    unknown = await message(runtime, message_id)
    assert unknown.state == "unknown" and "not resent" in (unknown.reason or "")
    assert await path(runtime, message_id) == [("slow", "unknown")]
    assert healthy.received == []


async def test_country_group_then_default_group(runtime: Runtime, client) -> None:
    india = await add_provider(runtime, "india")
    world = await add_provider(runtime, "world")
    await add_group(runtime, "in", [india], countries=("IN",))
    await add_group(runtime, "everywhere", [world], default=True)
    to_india, to_us, unknown_country = await queue(
        runtime, message_row(1, country="IN", to_number="+919876543210"), message_row(2, country="US"), message_row(3),
    )

    await make_dispatcher(runtime, client).run_once()

    assert [(await message(runtime, m)).provider_name for m in (to_india, to_us, unknown_country)] == [
        "india", "world", "world"]


async def test_without_groups_the_only_provider_is_used_else_a_clear_failure(runtime: Runtime, client) -> None:
    await add_provider(runtime, "only")
    [first] = await queue(runtime, message_row(1))
    await make_dispatcher(runtime, client).run_once()
    assert (await message(runtime, first)).provider_name == "only"

    await add_provider(runtime, "second")
    [second] = await queue(runtime, message_row(2))
    await make_dispatcher(runtime, client).run_once()
    failed = await message(runtime, second)
    assert failed.state == "failed" and "no provider group" in (failed.reason or "")
    assert await path(runtime, second) == []


async def test_groups_without_default_or_country_match_fail_with_reason(runtime: Runtime, client) -> None:
    only = await add_provider(runtime, "only")
    await add_group(runtime, "gb", [only], countries=("GB",))
    [message_id] = await queue(runtime, message_row(country="US"))
    await make_dispatcher(runtime, client).run_once()
    failed = await message(runtime, message_id)
    assert failed.state == "failed" and "mark a group as the default" in (failed.reason or "")


async def test_disabled_members_are_skipped_without_an_attempt(runtime: Runtime, client) -> None:
    off = await add_provider(runtime, "off")
    on = await add_provider(runtime, "on")
    await set_provider(runtime, off, enabled=False)
    group = await add_group(runtime, "main", [off, on])
    [message_id] = await queue(runtime, message_row(group_id=group))
    await make_dispatcher(runtime, client).run_once()
    assert await path(runtime, message_id) == [("on", "sent")]


async def test_every_provider_failing_backs_off_then_gives_up(runtime: Runtime, client) -> None:
    first = await add_provider(runtime, "first", failure_rate="100")
    second = await add_provider(runtime, "second", failure_rate="100")
    group = await add_group(runtime, "main", [first, second])
    [message_id] = await queue(runtime, message_row(group_id=group))
    dispatcher = make_dispatcher(runtime, client, max_attempts=2, circuit_threshold=100)

    await dispatcher.run_once()
    waiting = await message(runtime, message_id)
    assert waiting.state == "queued" and waiting.attempts == 1
    assert "attempt 1 of 2 failed on every provider of group main" in (waiting.reason or "")
    assert waiting.next_attempt_at is not None and waiting.next_attempt_at > clock.now()
    assert await dispatcher.run_once() == 0  # not before its backoff

    async with runtime.factory() as session, session.begin():
        await session.execute(update(Message).values(next_attempt_at=clock.now() - timedelta(seconds=1)))
    await dispatcher.run_once()
    failed = await message(runtime, message_id)
    assert failed.state == "failed" and "gave up after 2 attempts" in (failed.reason or "")
    assert [outcome for _, outcome in await path(runtime, message_id)] == ["transient"] * 4


# --- circuit breaker ----------------------------------------------------------------------------


async def test_circuit_opens_after_failures_then_a_probe_closes_it(runtime: Runtime, client) -> None:
    flaky = await add_provider(runtime, "flaky", failure_rate="100")
    backup = await add_provider(runtime, "backup")
    group = await add_group(runtime, "main", [flaky, backup])
    dispatcher = make_dispatcher(runtime, client, batch_size=1, circuit_threshold=3, circuit_cooldown=30)
    ids = await queue(runtime, *(message_row(n, group_id=group) for n in range(5)))
    for _ in ids:
        await dispatcher.run_once()

    paths = [await path(runtime, m) for m in ids]
    assert paths[:3] == [[("flaky", "transient"), ("backup", "sent")]] * 3
    assert paths[3:] == [[("backup", "sent")]] * 2  # out of rotation: not even tried
    row = await provider_row(runtime, flaky)
    assert (row.circuit_state, row.circuit_failures, row.health) == ("open", 3, "unhealthy")
    assert row.circuit_until is not None and row.circuit_until > clock.now()

    clock.freeze(row.circuit_until + timedelta(seconds=1))  # the cool-down is over
    await set_provider(runtime, flaky, config={"failure_rate": "0"})  # and the provider recovered
    probe, after = await queue(runtime, message_row(10, group_id=group), message_row(11, group_id=group))
    await dispatcher.run_once()
    assert await path(runtime, probe) == [("flaky", "sent")]
    row = await provider_row(runtime, flaky)
    assert (row.circuit_state, row.circuit_failures, row.health) == ("closed", 0, "healthy")
    await dispatcher.run_once()
    assert await path(runtime, after) == [("flaky", "sent")]


async def test_failed_probe_reopens_for_longer(runtime: Runtime, client) -> None:
    flaky = await add_provider(runtime, "flaky", failure_rate="100")
    backup = await add_provider(runtime, "backup")
    group = await add_group(runtime, "main", [flaky, backup])
    dispatcher = make_dispatcher(runtime, client, batch_size=1, circuit_threshold=2, circuit_cooldown=10)
    for n in range(2):
        await queue(runtime, message_row(n, group_id=group))
        await dispatcher.run_once()
    first_until = (await provider_row(runtime, flaky)).circuit_until
    assert first_until is not None
    clock.freeze(first_until + timedelta(seconds=1))
    [probe] = await queue(runtime, message_row(9, group_id=group))
    await dispatcher.run_once()
    assert await path(runtime, probe) == [("flaky", "transient"), ("backup", "sent")]
    row = await provider_row(runtime, flaky)
    assert row.circuit_state == "open" and row.circuit_until is not None
    assert row.circuit_until - clock.now() == timedelta(seconds=20)


async def test_a_provider_named_explicitly_waits_while_its_circuit_is_open(runtime: Runtime, client) -> None:
    flaky = await add_provider(runtime, "flaky", failure_rate="100")
    dispatcher = make_dispatcher(runtime, client, batch_size=1, circuit_threshold=1, circuit_cooldown=60)
    await queue(runtime, message_row(1, provider_id=flaky, provider_name="flaky"))
    await dispatcher.run_once()
    [waiting] = await queue(runtime, message_row(2, provider_id=flaky, provider_name="flaky"))
    await dispatcher.run_once()
    row = await message(runtime, waiting)
    assert row.state == "queued" and row.attempts == 0 and "out of rotation" in (row.reason or "")
    assert await path(runtime, waiting) == []


# --- guards -------------------------------------------------------------------------------------


async def test_opted_out_recipients_are_suppressed_at_claim_time_except_auto_responses(runtime: Runtime,
                                                                                      client) -> None:
    provider = await add_provider(runtime, "sbx")
    gone = await add_profile(runtime, "+14155550001", "unsubscribed")
    never = await add_profile(runtime, "+14155550002", "never")
    await add_profile(runtime, "+14155550003", "unsubscribed")  # found by number
    rows = [
        message_row(1, kind="campaign", profile_id=gone, to_number="+14155550001"),
        message_row(2, kind="auto", profile_id=gone, to_number="+14155550001"),  # a STOP confirmation
        message_row(3, kind="campaign", profile_id=never, to_number="+14155550002"),
        message_row(4, kind="transactional", profile_id=never, to_number="+14155550002"),
        message_row(5, kind="test", to_number="+14155550003"),
        message_row(6, kind="test", to_number="+14155550009"),  # nobody we know
    ]
    ids = await queue(runtime, *({**r, "provider_id": provider, "provider_name": "sbx"} for r in rows))

    await make_dispatcher(runtime, client).run_once()

    settled = [await message(runtime, m) for m in ids]
    assert [m.state for m in settled] == ["suppressed", "sent", "suppressed", "sent", "suppressed", "sent"]
    assert settled[0].reason == "the recipient unsubscribed from SMS"
    assert settled[2].reason == "the recipient never opted in to SMS"
    assert settled[0].attempts == 0 and await path(runtime, ids[0]) == []


async def test_guard_list_is_the_place_for_more_guards(runtime: Runtime, client) -> None:
    provider = await add_provider(runtime, "sbx")
    [capped, fine] = await queue(runtime, message_row(1, provider_id=provider, provider_name="sbx"),
                                 message_row(2, provider_id=provider, provider_name="sbx"))

    def frequency_cap(claimed, context) -> str | None:  # type: ignore[no-untyped-def]
        return "frequency cap: 3 messages this week" if claimed.id == capped else None

    dispatcher = Dispatcher(runtime.factory, runtime.box, client, DispatchSettings(), guards=[frequency_cap])
    await dispatcher.run_once()
    assert (await message(runtime, capped)).reason == "frequency cap: 3 messages this week"
    assert (await message(runtime, fine)).state == "sent"


# --- bulk writes, dedupe, reconciliation --------------------------------------------------------


async def test_a_batch_costs_the_same_statements_whatever_its_size(runtime: Runtime, client) -> None:
    """Claim and outcome writes cost the same for 10 messages as for 200 (from
    rollup_batch.DEFER_FROM messages on, SQLite's rollups move once per batch: a dozen statements
    more, whatever the size; smaller batches leave them to the per-row triggers). The send gate (marking
    `sending` and re-checking consent right before requests leave) is counted apart: it writes
    once per group of requests leaving together, never once per message."""
    first = await add_provider(runtime, "first", failure_rate="100")
    second = await add_provider(runtime, "second")
    group = await add_group(runtime, "main", [first, second])
    profile = await add_profile(runtime, "+14155550001", "subscribed")
    statements: list[str] = []
    gate_writes: list[int] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if statement.startswith("UPDATE messages SET state=") and "sending_at=" in statement.split("WHERE")[0]:
            gate_writes.append(1)
            return
        if statement.startswith("UPDATE messages SET sending_at="):
            return  # the gate, on a failover to the second provider
        if statement.startswith("SELECT profiles.id, profiles.phone, profiles.subscription"):
            return  # the gate's consent re-check, one per gate write (the claim's own is counted)
        statements.append(statement.split()[0])

    event.listen(runtime.db.sync_engine, "before_cursor_execute", count)
    dispatcher = make_dispatcher(runtime, client, batch_size=500, circuit_threshold=10_000)
    counts = []
    for size in (1, max(10, rollup_batch.DEFER_FROM), 200):  # the first batch also writes both circuits' first state
        await queue(runtime, *(message_row(n, kind="campaign", group_id=group, profile_id=profile)
                               for n in range(size)))
        statements.clear()
        gate_writes.clear()
        assert await dispatcher.run_once() == size
        counts.append(len(statements))
    event.remove(runtime.db.sync_engine, "before_cursor_execute", count)
    assert counts[1] == counts[2], statements
    # 200 messages, one request each on the first provider (all fail) and again on the second:
    # the gate's writes are shared by the requests in flight together (8 per provider).
    assert 0 < len(gate_writes) <= 400 / 4, len(gate_writes)


async def test_at_most_one_message_per_campaign_run_and_user(runtime: Runtime) -> None:
    assert dedupe_key(7, 42) == "run:7:profile:42"
    await queue(runtime, message_row(1, kind="campaign", dedupe_key=dedupe_key(7, 42)))
    with pytest.raises(IntegrityError):
        async with runtime.factory() as session, session.begin():
            await session.execute(insert(Message), [message_row(2, kind="campaign", dedupe_key=dedupe_key(7, 42))])


async def test_unknown_messages_are_reconciled_through_the_status_api(runtime: Runtime, client) -> None:
    provider = await add_provider(runtime, "sbx", receipt_delay="0")
    on_provider = {"provider_id": provider, "provider_name": "sbx"}
    known, anonymous, delivered = await queue(runtime, message_row(1, **on_provider), message_row(2, **on_provider),
                                              message_row(3, **on_provider))
    await make_dispatcher(runtime, client).run_once()
    async with runtime.factory() as session, session.begin():
        await session.execute(update(Message).where(Message.id.in_([known, anonymous]))
                              .values(state="unknown"))
        await session.execute(update(Message).where(Message.id == anonymous).values(provider_message_id=None))
        await session.execute(update(Message).where(Message.id == delivered).values(state="delivered"))

    assert await reconcile_unknown(runtime.factory, runtime.box, client) == 1

    assert [(await message(runtime, m)).state for m in (known, anonymous, delivered)] == [
        "delivered", "unknown", "delivered"]
    assert await reconcile_unknown(runtime.factory, runtime.box, client) == 0  # nothing moves twice
