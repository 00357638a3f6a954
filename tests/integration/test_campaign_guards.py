"""The campaign guards at claim and in the send gate (engine/guards.py, engine/gate.py), on SQLite
and PostgreSQL, with the real Dispatcher and the Sandbox provider; campaigns, runs and outbox rows
are inserted directly:

- a paused campaign (or run) sends nothing: its claimed messages go back to `held`, not
  suppressed; a stopped or deleted one's are suppressed;
- frequency caps per person per rolling 24 hours and 7 days across campaigns, counting the
  messages admitted in the same batch; tests and auto-responses neither count nor are capped; a
  campaign with ignore_global_limits is exempt;
- do-not-disturb hours of the run, on the recipient's clock: delay puts the message back in the
  queue until the window ends, discard suppresses it."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from smsconsole import clock
from smsconsole.engine.dispatcher import DispatchSettings, Dispatcher, dedupe_key
from smsconsole.models import Campaign, CampaignRun, Message, MessageAttempt, Profile
from smsconsole.runtime import Runtime
from smsconsole.services.settings import update_settings
from tests.integration.dispatch_support import add_provider, message_row, queue

DOCUMENT: dict[str, Any] = {
    "name": "Spring sale", "type": "one_time",
    "when": {"timezone": "UTC", "at": "now"},
    "who": {"segment": "Everyone"},
    "what": {"route": {"provider": "sbx"}, "body": "Spring sale: 20% off today"},
}
LONDON_PHONE = "+442071234567"
INDIA_PHONE = "+919876543210"
NOON = datetime(2026, 12, 24, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen() -> None:
    clock.freeze(NOON)


@pytest.fixture
async def provider_id(runtime: Runtime) -> int:
    return await add_provider(runtime, "sbx")


async def _campaign(rt: Runtime, *, state: str = "running", run_state: str = "running", deleted: bool = False,
                    when: dict[str, Any] | None = None, name: str = "Spring sale") -> tuple[int, int]:
    """A campaign and one run of it (its document snapshot with `when` merged in)."""
    document = copy.deepcopy(DOCUMENT)
    document["name"] = name
    document["when"].update(when or {})
    now = clock.now()
    async with rt.factory() as session, session.begin():
        campaign = Campaign(name=name, type="one_time", state=state, document=document, created_at=now,
                            updated_at=now, deleted_at=now if deleted else None)
        session.add(campaign)
        await session.flush()
        run = CampaignRun(campaign_id=campaign.id, number=1, planned_at=now, state=run_state, document=document,
                          suppressed={}, updated_at=now)
        session.add(run)
        await session.flush()
        return campaign.id, run.id


async def _profile(rt: Runtime, phone: str, timezone: str | None = None) -> int:
    now = clock.now()
    async with rt.factory() as session, session.begin():
        profile = Profile(phone=phone, phone_raw=phone, phone_status="valid", sms_capable=True,
                          subscription="subscribed", properties={}, timezone=timezone,
                          subscription_at=now, created_at=now, updated_at=now)
        session.add(profile)
        await session.flush()
        return profile.id


_counter = iter(range(1, 1_000_000))


def _row(provider_id: int, phone: str, profile_id: int | None, campaign: tuple[int, int] | None = None, *,
         kind: str = "campaign", **fields: Any) -> dict[str, Any]:
    n = next(_counter)
    row = message_row(n, kind=kind, provider_id=provider_id, provider_name="sbx", profile_id=profile_id,
                      to_number=phone, body=f"{kind} {n}")
    if campaign is not None:
        campaign_id, run_id = campaign
        row.update(campaign_id=campaign_id, run_id=run_id, variant="A", render=False,
                   dedupe_key=f"{dedupe_key(run_id, profile_id or 0)}:{n}")
    row.update(fields)
    return row


async def _earlier(rt: Runtime, provider_id: int, phone: str, profile_id: int | None,
                   campaign: tuple[int, int] | None, ago: timedelta, *, kind: str = "campaign",
                   state: str = "sent") -> None:
    """A message that left `ago` before now."""
    at = clock.now() - ago
    await queue(rt, _row(provider_id, phone, profile_id, campaign, kind=kind, state=state, sending_at=at,
                         sent_at=at if state == "sent" else None, attempts=1))


async def _drain(rt: Runtime) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        dispatcher = Dispatcher(rt.factory, rt.box, client, DispatchSettings(batch_size=50))
        while await dispatcher.run_once():
            pass


async def _rows(rt: Runtime, ids: list[int]) -> list[Message]:
    async with rt.factory() as session:
        return list(await session.scalars(select(Message).where(Message.id.in_(ids)).order_by(Message.id)))


async def _outcomes(rt: Runtime, ids: list[int]) -> list[tuple[str, str | None]]:
    return [(m.state, m.reason) for m in await _rows(rt, ids)]


async def _attempts(rt: Runtime, ids: list[int]) -> int:
    async with rt.factory() as session:
        return len(list(await session.scalars(select(MessageAttempt.id).where(MessageAttempt.message_id.in_(ids)))))


async def _settings(rt: Runtime, **values: str) -> None:
    async with rt.factory() as session, session.begin():
        await update_settings(session, values, actor="test")


# --- campaign state -------------------------------------------------------------------------------

@pytest.mark.parametrize(("campaign_state", "run_state"), [("paused", "running"), ("running", "paused")],
                         ids=["campaign-paused", "run-paused"])
async def test_paused_messages_are_held_and_nothing_is_sent(runtime: Runtime, provider_id: int,
                                                            campaign_state: str, run_state: str) -> None:
    campaign = await _campaign(runtime, state=campaign_state, run_state=run_state)
    profile = await _profile(runtime, LONDON_PHONE)
    ids = await queue(runtime, _row(provider_id, LONDON_PHONE, profile, campaign),
                      _row(provider_id, LONDON_PHONE, profile, campaign))
    await _drain(runtime)
    rows = await _rows(runtime, ids)
    assert [(m.state, m.reason, m.attempts, m.claim_token, m.sending_at) for m in rows] == [
        ("held", "campaign paused", 0, None, None)] * 2
    assert await _attempts(runtime, ids) == 0
    # resumed (the lifecycle moves held rows back to the queue): they go
    async with runtime.factory() as session, session.begin():
        await session.execute(update(Campaign).values(state="running"))
        await session.execute(update(CampaignRun).values(state="running"))
        await session.execute(update(Message).where(Message.state == "held").values(state="queued"))
    await _drain(runtime)
    assert [m.state for m in await _rows(runtime, ids)] == ["sent", "sent"]


@pytest.mark.parametrize(("campaign_state", "run_state", "deleted", "reason"), [
    ("stopped", "running", False, "campaign stopped"),
    ("running", "stopped", False, "campaign stopped"),
    ("stopped", "stopped", True, "campaign deleted"),
], ids=["campaign-stopped", "run-stopped", "deleted"])
async def test_stopped_messages_are_suppressed(runtime: Runtime, provider_id: int, campaign_state: str,
                                               run_state: str, deleted: bool, reason: str) -> None:
    campaign = await _campaign(runtime, state=campaign_state, run_state=run_state, deleted=deleted)
    profile = await _profile(runtime, LONDON_PHONE)
    ids = await queue(runtime, _row(provider_id, LONDON_PHONE, profile, campaign))
    await _drain(runtime)
    assert await _outcomes(runtime, ids) == [("suppressed", reason)]
    assert await _attempts(runtime, ids) == 0


async def test_paused_while_waiting_for_the_gate_goes_back_to_held(runtime: Runtime, provider_id: int) -> None:
    """Claimed while running, paused before the request leaves: the gate holds it in the same
    transaction as its `sending` write; the dispatcher sends nothing and writes nothing over it.
    The test message in the same batch still goes."""
    campaign = await _campaign(runtime)
    profile = await _profile(runtime, LONDON_PHONE)
    ids = await queue(runtime, _row(provider_id, LONDON_PHONE, profile, campaign),
                      _row(provider_id, LONDON_PHONE, profile, kind="test"))
    async with httpx.AsyncClient(timeout=5) as client:
        dispatcher = Dispatcher(runtime.factory, runtime.box, client, DispatchSettings(batch_size=50))
        batch = await dispatcher._claim()
        assert batch is not None
        async with runtime.factory() as session, session.begin():
            await session.execute(update(Campaign).values(state="paused"))
        await dispatcher._process(*batch)
        assert await dispatcher.run_once() == 0
    held, test = await _rows(runtime, ids)
    assert (held.state, held.reason, held.attempts, held.claim_token, held.sending_at) == (
        "held", "campaign paused", 0, None, None)
    assert (test.state, test.attempts) == ("sent", 1)
    assert await _attempts(runtime, ids[:1]) == 0


# --- frequency caps -------------------------------------------------------------------------------

async def test_day_cap_counts_earlier_sends_and_the_same_batch(runtime: Runtime, provider_id: int) -> None:
    await _settings(runtime, campaign_cap_day="2")
    other = await _campaign(runtime, name="Earlier campaign")
    campaign = await _campaign(runtime)
    profile = await _profile(runtime, LONDON_PHONE)
    second = await _profile(runtime, INDIA_PHONE)
    await _earlier(runtime, provider_id, LONDON_PHONE, profile, other, timedelta(hours=2))
    await _earlier(runtime, provider_id, LONDON_PHONE, profile, other, timedelta(hours=25))  # outside the day
    ids = await queue(runtime, *[_row(provider_id, LONDON_PHONE, profile, campaign) for _ in range(3)],
                      *[_row(provider_id, INDIA_PHONE, second, campaign) for _ in range(3)])
    await _drain(runtime)
    cap = "frequency cap: 2 campaign SMS per day"
    assert await _outcomes(runtime, ids) == [
        ("sent", None), ("suppressed", cap), ("suppressed", cap),
        ("sent", None), ("sent", None), ("suppressed", cap)]


async def test_week_cap_is_a_rolling_seven_days(runtime: Runtime, provider_id: int) -> None:
    await _settings(runtime, campaign_cap_week="3")
    other = await _campaign(runtime, name="Earlier campaign")
    campaign = await _campaign(runtime)
    profile = await _profile(runtime, LONDON_PHONE)
    for ago in (timedelta(days=2), timedelta(days=6, hours=23), timedelta(days=7, minutes=1)):
        await _earlier(runtime, provider_id, LONDON_PHONE, profile, other, ago)
    ids = await queue(runtime, _row(provider_id, LONDON_PHONE, profile, campaign),
                      _row(provider_id, LONDON_PHONE, profile, campaign))
    await _drain(runtime)
    assert await _outcomes(runtime, ids) == [
        ("sent", None), ("suppressed", "frequency cap: 3 campaign SMS per week")]


async def test_day_and_week_caps_together(runtime: Runtime, provider_id: int) -> None:
    await _settings(runtime, campaign_cap_day="5", campaign_cap_week="2")
    other = await _campaign(runtime, name="Earlier campaign")
    campaign = await _campaign(runtime)
    profile = await _profile(runtime, LONDON_PHONE)
    await _earlier(runtime, provider_id, LONDON_PHONE, profile, other, timedelta(days=3))
    ids = await queue(runtime, *[_row(provider_id, LONDON_PHONE, profile, campaign) for _ in range(2)])
    await _drain(runtime)
    assert await _outcomes(runtime, ids) == [("sent", None), ("suppressed", "frequency cap: 2 campaign SMS per week")]


async def test_tests_and_auto_responses_neither_count_nor_are_capped(runtime: Runtime, provider_id: int) -> None:
    await _settings(runtime, campaign_cap_day="1")
    campaign = await _campaign(runtime)
    profile = await _profile(runtime, LONDON_PHONE)
    for kind in ("test", "auto", "transactional"):
        await _earlier(runtime, provider_id, LONDON_PHONE, profile, None, timedelta(hours=1), kind=kind)
    # a campaign message that never left (suppressed, held back) does not count either
    await _earlier(runtime, provider_id, LONDON_PHONE, profile, campaign, timedelta(hours=1), state="suppressed")
    ids = await queue(runtime, _row(provider_id, LONDON_PHONE, profile, campaign),
                      _row(provider_id, LONDON_PHONE, profile, kind="test"),
                      _row(provider_id, LONDON_PHONE, profile, kind="auto"))
    await _drain(runtime)
    assert [state for state, _ in await _outcomes(runtime, ids)] == ["sent", "sent", "sent"]
    # now at the cap: the next campaign message is held back, a test still goes
    more = await queue(runtime, _row(provider_id, LONDON_PHONE, profile, campaign),
                       _row(provider_id, LONDON_PHONE, profile, kind="test"))
    await _drain(runtime)
    assert await _outcomes(runtime, more) == [
        ("suppressed", "frequency cap: 1 campaign SMS per day"), ("sent", None)]


async def test_a_message_without_a_profile_is_capped_by_its_number(runtime: Runtime, provider_id: int) -> None:
    await _settings(runtime, campaign_cap_day="1")
    other = await _campaign(runtime, name="Earlier campaign")
    campaign = await _campaign(runtime)
    profile = await _profile(runtime, LONDON_PHONE)  # the opt-in the number's messages need
    await _earlier(runtime, provider_id, LONDON_PHONE, profile, other, timedelta(hours=3))
    ids = await queue(runtime, _row(provider_id, LONDON_PHONE, None, campaign),
                      _row(provider_id, INDIA_PHONE, None, campaign, state="queued"))
    await _profile(runtime, INDIA_PHONE)
    await _drain(runtime)
    assert await _outcomes(runtime, ids) == [
        ("suppressed", "frequency cap: 1 campaign SMS per day"), ("sent", None)]


async def test_a_campaign_ignoring_global_limits_is_not_capped(runtime: Runtime, provider_id: int) -> None:
    await _settings(runtime, campaign_cap_day="1", campaign_cap_week="1")
    other = await _campaign(runtime, name="Earlier campaign")
    exempt = await _campaign(runtime, when={"ignore_global_limits": True})
    profile = await _profile(runtime, LONDON_PHONE)
    await _earlier(runtime, provider_id, LONDON_PHONE, profile, other, timedelta(hours=1))
    ids = await queue(runtime, *[_row(provider_id, LONDON_PHONE, profile, exempt) for _ in range(2)])
    await _drain(runtime)
    assert [state for state, _ in await _outcomes(runtime, ids)] == ["sent", "sent"]


async def test_no_caps_set_means_no_cap(runtime: Runtime, provider_id: int) -> None:
    campaign = await _campaign(runtime)
    profile = await _profile(runtime, LONDON_PHONE)
    ids = await queue(runtime, *[_row(provider_id, LONDON_PHONE, profile, campaign) for _ in range(4)])
    await _drain(runtime)
    assert [state for state, _ in await _outcomes(runtime, ids)] == ["sent"] * 4


async def test_cap_checked_again_at_the_gate(runtime: Runtime, provider_id: int) -> None:
    """A campaign message sent to the same person between the claim and the request (another
    batch) counts: the gate suppresses the claimed one."""
    await _settings(runtime, campaign_cap_day="1")
    other = await _campaign(runtime, name="Earlier campaign")
    campaign = await _campaign(runtime)
    profile = await _profile(runtime, LONDON_PHONE)
    ids = await queue(runtime, _row(provider_id, LONDON_PHONE, profile, campaign))
    async with httpx.AsyncClient(timeout=5) as client:
        dispatcher = Dispatcher(runtime.factory, runtime.box, client, DispatchSettings(batch_size=50))
        batch = await dispatcher._claim()
        assert batch is not None
        await _earlier(runtime, provider_id, LONDON_PHONE, profile, other, timedelta(seconds=1))
        await dispatcher._process(*batch)
    assert await _outcomes(runtime, ids) == [("suppressed", "frequency cap: 1 campaign SMS per day")]
    assert (await _rows(runtime, ids))[0].attempts == 0


# --- do not disturb -------------------------------------------------------------------------------

NIGHT = {"start": "21:00", "end": "09:00"}


@pytest.mark.parametrize(("phone", "timezone", "now", "expected"), [
    # 22:00 in London: waits until 09:00 there
    (LONDON_PHONE, "Europe/London", "2026-12-24 22:00", "2026-12-25 09:00"),
    # early morning: this morning's end
    (LONDON_PHONE, None, "2026-12-24 06:30", "2026-12-24 09:00"),
    # 16:00 UTC is 21:30 in Kolkata: the profile's zone, else the phone's
    (LONDON_PHONE, "Asia/Kolkata", "2026-12-24 16:00", "2026-12-25 03:30"),
    (INDIA_PHONE, None, "2026-12-24 16:00", "2026-12-25 03:30"),
], ids=["london-evening", "london-morning-by-phone", "kolkata-profile", "kolkata-by-phone"])
async def test_dnd_delay_puts_the_message_back_until_the_window_ends(
        runtime: Runtime, provider_id: int, phone: str, timezone: str | None, now: str, expected: str) -> None:
    campaign = await _campaign(runtime, when={"dnd": {**NIGHT, "action": "delay"}})
    profile = await _profile(runtime, phone, timezone)
    ids = await queue(runtime, _row(provider_id, phone, profile, campaign))
    clock.freeze(datetime.fromisoformat(now).replace(tzinfo=UTC))
    await _drain(runtime)
    due = datetime.fromisoformat(expected).replace(tzinfo=UTC)
    [row] = await _rows(runtime, ids)
    assert (row.state, row.next_attempt_at, row.attempts, row.claim_token) == ("queued", due, 0, None)
    assert row.reason and row.reason.startswith("do not disturb hours: waiting until")
    assert await _attempts(runtime, ids) == 0
    clock.freeze(due - timedelta(seconds=1))
    await _drain(runtime)
    assert (await _rows(runtime, ids))[0].state == "queued"  # not before its time
    clock.freeze(due)
    await _drain(runtime)
    assert await _outcomes(runtime, ids) == [("sent", None)]


async def test_dnd_discard_and_outside_the_window(runtime: Runtime, provider_id: int) -> None:
    campaign = await _campaign(runtime, when={"dnd": {**NIGHT, "action": "discard"}})
    london = await _profile(runtime, LONDON_PHONE)
    india = await _profile(runtime, INDIA_PHONE)
    clock.freeze(datetime(2026, 12, 24, 16, 0, tzinfo=UTC))  # 16:00 in London, 21:30 in Kolkata
    ids = await queue(runtime, _row(provider_id, LONDON_PHONE, london, campaign),
                      _row(provider_id, INDIA_PHONE, india, campaign),
                      _row(provider_id, INDIA_PHONE, india, kind="test"))
    await _drain(runtime)
    assert await _outcomes(runtime, ids) == [
        ("sent", None), ("suppressed", "do not disturb hours"), ("sent", None)]


async def test_dnd_uses_the_default_time_zone_when_nothing_else_tells(runtime: Runtime, provider_id: int) -> None:
    await _settings(runtime, default_timezone="Asia/Kolkata")
    campaign = await _campaign(runtime, when={"dnd": {"start": "13:00", "end": "14:00", "action": "discard"}})
    unknown = "+447700900123"  # a drama number: phonenumbers knows no zone for it
    profile = await _profile(runtime, unknown)
    clock.freeze(datetime(2026, 12, 24, 7, 45, tzinfo=UTC))  # 13:15 in Kolkata, 07:45 in London
    ids = await queue(runtime, _row(provider_id, unknown, profile, campaign))
    await _drain(runtime)
    assert await _outcomes(runtime, ids) == [("suppressed", "do not disturb hours")]


async def test_dnd_checked_again_at_the_gate(runtime: Runtime, provider_id: int) -> None:
    """Claimed at 20:59:59 London time, reaching the gate at 21:00: deferred to 09:00."""
    campaign = await _campaign(runtime, when={"dnd": {**NIGHT, "action": "delay"}})
    profile = await _profile(runtime, LONDON_PHONE, "Europe/London")
    ids = await queue(runtime, _row(provider_id, LONDON_PHONE, profile, campaign))
    clock.freeze(datetime(2026, 12, 24, 20, 59, 59, tzinfo=UTC))
    async with httpx.AsyncClient(timeout=5) as client:
        dispatcher = Dispatcher(runtime.factory, runtime.box, client, DispatchSettings(batch_size=50))
        batch = await dispatcher._claim()
        assert batch is not None
        clock.freeze(datetime(2026, 12, 24, 21, 0, tzinfo=UTC))
        await dispatcher._process(*batch)
    [row] = await _rows(runtime, ids)
    assert (row.state, row.next_attempt_at, row.attempts, row.sending_at) == (
        "queued", datetime(2026, 12, 25, 9, 0, tzinfo=UTC), 0, None)
    assert await _attempts(runtime, ids) == 0


async def test_caps_and_dnd_settings_saved_through_the_service(runtime: Runtime) -> None:
    await _settings(runtime, campaign_cap_day=" 3 ", campaign_misfire_grace="",
                    campaign_alert_webhook="https://alerts.example.com/sms")
    from smsconsole.services.settings import CampaignLimits, campaign_limits
    async with runtime.factory() as session:
        assert await campaign_limits(session) == CampaignLimits(3, None, 3600.0, "https://alerts.example.com/sms")
    from smsconsole.services.errors import ValidationError
    with pytest.raises(ValidationError) as refused:
        await _settings(runtime, campaign_cap_day="0", campaign_cap_week="x", campaign_alert_webhook="ftp://x")
    assert [field for field, _ in refused.value.problems] == [
        "campaign_cap_day", "campaign_cap_week", "campaign_alert_webhook"]


async def test_guards_cost_one_query_each_per_batch_and_gate_write(runtime: Runtime, provider_id: int) -> None:
    """Campaign state, caps and DND for 3 or 60 messages: one query for the campaigns and runs,
    one for the cap counts, at each claim and at each send-gate write; never one per message."""
    from sqlalchemy import event

    await _settings(runtime, campaign_cap_day="5", campaign_cap_week="10")
    campaign = await _campaign(runtime, when={"dnd": {**NIGHT, "action": "delay"}})
    clock.freeze(datetime(2026, 12, 24, 20, 0, tzinfo=UTC))  # noon in California: outside the window
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(runtime.db.sync_engine, "before_cursor_execute", count)
    try:
        for size in (3, 60):
            phones = [f"+1415555{size:02d}{n:02d}" for n in range(size)]
            profiles = [await _profile(runtime, phone) for phone in phones]
            await queue(runtime, *[_row(provider_id, phone, p, campaign) for phone, p in zip(phones, profiles, strict=True)])
            statements.clear()
            await _drain(runtime)
            gate_writes = sum(1 for s in statements if s.startswith("UPDATE messages SET state=")
                              and "messages.attempts + " in s.split("WHERE")[0])
            campaign_reads = sum(1 for s in statements if s.startswith("SELECT campaigns.id"))
            cap_reads = sum(1 for s in statements if s.startswith("SELECT messages.profile_id, messages.to_number"))
            assert gate_writes >= 1
            claims = -(-size // 50)  # batches of 50
            assert campaign_reads == cap_reads == gate_writes + claims, (size, gate_writes, campaign_reads, cap_reads)
            async with runtime.factory() as session:
                sent = len(list(await session.scalars(select(Message.id).where(Message.state == "sent"))))
            assert sent == (3 if size == 3 else 63)
    finally:
        event.remove(runtime.db.sync_engine, "before_cursor_execute", count)
