"""Receipts and replies over an SMPP bind, stored through services/smpp.py against a real database
(SQLite, and PostgreSQL when configured): a receipt settles its message (also when it arrived
before the submit_sm_resp was recorded), the parts of a long message resolve to one status, a reply
goes through the replies pipeline and a STOP opts its sender out; a deliver_sm whose store failed
is answered with a temporary error, stores nothing, and is stored once when the SMSC tries again."""

from __future__ import annotations

from sqlalchemy import select

from smsconsole import clock
from smsconsole.models import InboundMessage, Message, Profile, Receipt
from smsconsole.providers.base import (
    InboundReport,
    OutboundMessage,
    SendOutcome,
    StatusReport,
)
from smsconsole.providers.smpp import pdu as codec
from smsconsole.providers.smpp.adapter import SmppProvider
from smsconsole.runtime import Runtime
from smsconsole.services.receipts import apply_pending_receipts, part_rows, record_parts
from smsconsole.services.smpp import store_deliveries
from tests.fakes.smsc import FakeSmsc
from tests.integration.dispatch_support import (
    add_profile,
    message_row,
    queue,
)


async def record_sent(rt: Runtime, provider_id: int, outcome: SendOutcome, to: str = "+447700900123") -> int:
    """What the dispatcher writes for an accepted message: sent, its id, and its parts' ids."""
    now = clock.now()
    async with rt.factory() as session, session.begin():
        row = Message(kind="test", priority=0, provider_id=provider_id, provider_name="smsc", to_number=to,
                      body="hi", encoding="GSM-7", segments=max(1, len(outcome.part_ids)), state="sent",
                      provider_message_id=outcome.provider_message_id, attempts=1, created_at=now, updated_at=now,
                      sent_at=now)
        session.add(row)
        await session.flush()
        await record_parts(session, part_rows(row.id, provider_id, outcome, now))
        return row.id


async def state_of(rt: Runtime, message_id: int) -> str:
    async with rt.factory() as session:
        return str(await session.scalar(select(Message.state).where(Message.id == message_id)))


async def test_a_receipt_settles_its_message(runtime: Runtime, smsc: FakeSmsc,
                                             bound: tuple[int, SmppProvider]) -> None:
    provider_id, adapter = bound
    [outcome] = await adapter.send([OutboundMessage(ref="1", to="+447700900123", body="hi")])
    message_id = await record_sent(runtime, provider_id, outcome)
    assert await smsc.send_receipt(outcome.provider_message_id or "", recipient="447700900123") == codec.ROK
    assert await state_of(runtime, message_id) == "delivered"
    assert await smsc.send_receipt(outcome.provider_message_id or "", "UNDELIV") == codec.ROK  # late: no step back
    assert await state_of(runtime, message_id) == "delivered"


async def test_a_receipt_before_the_submit_sm_resp_is_recorded_still_settles(
        runtime: Runtime, smsc: FakeSmsc, bound: tuple[int, SmppProvider]) -> None:
    provider_id, adapter = bound
    smsc.receipt_first = True  # the receipt comes before the submit_sm_resp
    [outcome] = await adapter.send([OutboundMessage(ref="1", to="+447700900123", body="hi")])
    assert smsc.deliver_answers == [codec.ROK]  # stored (and so answered) before the message was recorded
    async with runtime.factory() as session:
        [receipt] = (await session.scalars(select(Receipt))).all()
    assert (receipt.provider_message_id, receipt.message_id, receipt.applied_at) == (
        outcome.provider_message_id, None, None)  # pending
    message_id = await record_sent(runtime, provider_id, outcome)
    async with runtime.factory() as session, session.begin():
        assert await apply_pending_receipts(session) == 1  # the engine's pollers run this every tick
    assert await state_of(runtime, message_id) == "delivered"


async def test_the_parts_of_a_long_message_resolve_to_one_status(runtime: Runtime, smsc: FakeSmsc,
                                                                 bound: tuple[int, SmppProvider]) -> None:
    provider_id, adapter = bound
    [outcome] = await adapter.send([OutboundMessage(ref="1", to="+447700900123", body="z" * 400)])
    assert len(outcome.part_ids) == 3
    message_id = await record_sent(runtime, provider_id, outcome)
    for part_id in outcome.part_ids[:2]:
        await smsc.send_receipt(part_id)
    assert await state_of(runtime, message_id) == "sent"  # one part still out
    await smsc.send_receipt(outcome.part_ids[2])
    assert await state_of(runtime, message_id) == "delivered"


async def test_a_reply_goes_through_the_replies_pipeline(runtime: Runtime, smsc: FakeSmsc,
                                                         bound: tuple[int, SmppProvider]) -> None:
    await add_profile(runtime, "+14155550123", "subscribed")
    assert await smsc.send_mo("14155550123", "Sounds good 👍", ucs2=True) == codec.ROK
    async with runtime.factory() as session:
        [row] = (await session.scalars(select(InboundMessage))).all()
    assert (row.sender, row.text, row.action, row.via) == ("+14155550123", "Sounds good 👍", "reply", "smpp")
    assert row.profile_id is not None


async def test_stop_opts_the_sender_out_and_stops_their_queued_messages(runtime: Runtime, smsc: FakeSmsc,
                                                                        bound: tuple[int, SmppProvider]) -> None:
    provider_id, _ = bound
    profile_id = await add_profile(runtime, "+14155550123", "subscribed")
    [queued] = await queue(runtime, message_row(1, to_number="+14155550123", provider_id=provider_id,
                                                provider_name="smsc", profile_id=profile_id))
    assert await smsc.send_mo("14155550123", "STOP") == codec.ROK
    async with runtime.factory() as session:
        profile = await session.get(Profile, profile_id)
        message = await session.get(Message, queued)
        inbound = (await session.scalars(select(InboundMessage))).all()
    assert profile is not None and profile.subscription == "unsubscribed"
    assert message is not None and message.state == "suppressed"
    assert [row.action for row in inbound] == ["opt_out"]


async def test_a_failed_store_is_answered_with_a_temporary_error_and_stored_once_later(
        runtime: Runtime, smsc: FakeSmsc, bound: tuple[int, SmppProvider]) -> None:
    provider_id, adapter = bound
    failures = [RuntimeError("disk full")]

    async def flaky(statuses: list[StatusReport], inbound: list[InboundReport]) -> None:
        async with runtime.factory() as session, session.begin():
            await store_deliveries(session, provider_id, "smsc", statuses, inbound)
            if failures:
                raise failures.pop()  # after the writes: the transaction rolls back

    adapter.attach(flaky)
    assert await smsc.send_mo("447700900123", "hello") == codec.RX_T_APPN
    async with runtime.factory() as session:
        assert (await session.scalars(select(InboundMessage))).all() == []  # nothing half-stored
    assert await smsc.send_mo("447700900123", "hello") == codec.ROK  # the SMSC delivers it again
    async with runtime.factory() as session:
        assert [row.text for row in (await session.scalars(select(InboundMessage))).all()] == ["hello"]
