"""Long replies made whole (services/inbound_parts.py): the parts of a concatenated reply are held
until every one is there, in whatever order they come, and the whole text then goes through the
replies pipeline once (a STOP split over two parts opts out once); a part delivered twice changes
nothing; a set that never completes goes through after the hold time with its gaps marked; and
the same through the real doors, an SMPP bind (UDH parts from the fake SMSC) and Vonage webhooks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from smsconsole import clock
from smsconsole.listener.app import create_app
from smsconsole.models import InboundMessage, InboundPart, Message, Profile
from smsconsole.models import Provider as ProviderRow
from smsconsole.providers.base import CallbackRequest, InboundReport
from smsconsole.providers.smpp import pdu as codec
from smsconsole.providers.smpp.adapter import SmppProvider
from smsconsole.runtime import Runtime
from smsconsole.services import inbound_parts, providers, replies
from smsconsole.services import settings as settings_service
from tests.fakes.smsc import FakeSmsc
from tests.integration.dispatch_support import add_profile
from tests.providers import test_vonage_receipts as V

NUMBER = "+447400123456"
T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


async def _provider(rt: Runtime, name: str = "sbx") -> int:
    async with rt.factory() as session, session.begin():
        view = await providers.create_provider(session, rt.box, kind="sandbox", name=name, values={}, actor="test")
    return view.id


async def _part(rt: Runtime, text: str, part: int, parts: int, *, ref: str = "42", sender: str = NUMBER,
                message_id: str | None = None) -> replies.InboundView | None:
    async with rt.factory() as session, session.begin():
        provider_id = await session.scalar(select(ProviderRow.id).where(ProviderRow.name == "sbx"))
        return await replies.record_inbound(
            session, provider_id=provider_id, provider_name="sbx", via="poll",
            report=InboundReport(provider_message_id=message_id, sender=sender, recipient="+14155552671", text=text,
                                 part=part, parts=parts, concat_ref=ref))


async def _inbox(rt: Runtime) -> list[InboundMessage]:
    async with rt.factory() as session:
        return list(await session.scalars(select(InboundMessage).order_by(InboundMessage.id)))


async def _auto_messages(rt: Runtime) -> int:
    async with rt.factory() as session:
        return int(await session.scalar(select(func.count()).select_from(Message).where(Message.kind == "auto")) or 0)


async def test_parts_in_order_make_one_reply_with_the_whole_text(runtime: Runtime) -> None:
    await _provider(runtime)
    assert await _part(runtime, "Thanks for the offer, I would ", 1, 2, message_id="MO-1") is None
    assert await _inbox(runtime) == []  # held: the Inbox shows no fragment
    view = await _part(runtime, "like to hear more about it.", 2, 2, message_id="MO-2")
    assert view is not None and not view.duplicate
    [row] = await _inbox(runtime)
    assert (row.id, row.text, row.action, row.provider_message_id) == (
        view.id, "Thanks for the offer, I would like to hear more about it.", "reply", "MO-1")


async def test_parts_out_of_order_are_put_in_order(runtime: Runtime) -> None:
    await _provider(runtime)
    assert await _part(runtime, "three", 3, 3) is None
    assert await _part(runtime, "one ", 1, 3) is None
    assert await _part(runtime, "two ", 2, 3) is not None
    assert [row.text for row in await _inbox(runtime)] == ["one two three"]


async def test_a_stop_split_over_two_parts_opts_out_once(runtime: Runtime) -> None:
    await _provider(runtime)
    profile_id = await add_profile(runtime, NUMBER, "subscribed")
    assert await _part(runtime, "ST", 1, 2) is None
    async with runtime.factory() as session:  # a fragment is no keyword: nothing happened yet
        profile = await session.get(Profile, profile_id)
    assert profile is not None and profile.subscription == "subscribed"
    view = await _part(runtime, "OP", 2, 2)
    assert view is not None and view.action == "opt_out" and view.keyword == "STOP"
    for _ in range(2):  # the provider delivers both parts again: nothing more happens
        again = await _part(runtime, "OP", 2, 2)
        assert again is not None and again.duplicate and again.id == view.id
        await _part(runtime, "ST", 1, 2)
    async with runtime.factory() as session:
        profile = await session.get(Profile, profile_id)
    assert profile is not None and profile.subscription == "unsubscribed"
    assert [row.action for row in await _inbox(runtime)] == ["opt_out"]
    assert await _auto_messages(runtime) == 1  # one confirmation


async def test_a_part_delivered_twice_while_held_is_held_once(runtime: Runtime) -> None:
    await _provider(runtime)
    assert await _part(runtime, "hello ", 1, 2) is None
    assert await _part(runtime, "hello ", 1, 2) is None
    async with runtime.factory() as session:
        assert await session.scalar(select(func.count()).select_from(InboundPart)) == 1
    assert await _part(runtime, "world", 2, 2) is not None
    assert [row.text for row in await _inbox(runtime)] == ["hello world"]


async def test_sets_are_kept_apart_by_sender_and_reference(runtime: Runtime) -> None:
    await _provider(runtime)
    assert await _part(runtime, "a1 ", 1, 2, ref="7") is None
    assert await _part(runtime, "b1 ", 1, 2, ref="8") is None
    assert await _part(runtime, "c1 ", 1, 2, ref="7", sender="+447400999999") is None
    assert await _part(runtime, "b2", 2, 2, ref="8") is not None
    assert [row.text for row in await _inbox(runtime)] == ["b1 b2"]


async def test_a_reused_reference_with_a_new_text_is_a_new_message(runtime: Runtime) -> None:
    await _provider(runtime)
    await _part(runtime, "first ", 1, 2)
    await _part(runtime, "message", 2, 2)
    assert await _part(runtime, "second ", 1, 2) is None  # the phone's reference came round again
    assert await _part(runtime, "one", 2, 2) is not None
    assert [row.text for row in await _inbox(runtime)] == ["first message", "second one"]


async def test_an_incomplete_set_goes_through_after_the_hold_time_with_its_gaps_marked(runtime: Runtime) -> None:
    await _provider(runtime)
    clock.freeze(T0)
    assert await _part(runtime, "Please call ", 1, 3) is None
    clock.freeze(T0 + timedelta(seconds=20))
    assert await _part(runtime, " tomorrow", 3, 3) is None
    clock.freeze(T0 + inbound_parts.HOLD - timedelta(seconds=1))
    assert await inbound_parts.flush_held_parts(runtime.factory) == 0  # still waiting for part 2
    assert await _inbox(runtime) == []
    clock.freeze(T0 + inbound_parts.HOLD + timedelta(seconds=1))
    # two chore turns at once (a lease handover): the set goes through once
    flushed = await asyncio.gather(*(inbound_parts.flush_held_parts(runtime.factory) for _ in range(2)))
    assert sorted(flushed) == [0, 1]
    [row] = await _inbox(runtime)
    assert row.text == "Please call …[part 2 of 3 missing]… tomorrow"
    assert row.received_at == T0  # dated at its first part
    assert row.action == "reply"
    assert await inbound_parts.flush_held_parts(runtime.factory) == 0
    assert await _part(runtime, " tomorrow", 3, 3) is not None  # a late retry of a part changes nothing
    assert len(await _inbox(runtime)) == 1


async def test_finished_parts_are_forgotten_after_a_day(runtime: Runtime) -> None:
    await _provider(runtime)
    clock.freeze(T0)
    await _part(runtime, "a", 1, 2)
    await _part(runtime, "b", 2, 2)
    clock.freeze(T0 + inbound_parts.FINISHED_KEPT + timedelta(minutes=1))
    assert await inbound_parts.flush_held_parts(runtime.factory) == 0
    async with runtime.factory() as session:
        assert await session.scalar(select(func.count()).select_from(InboundPart)) == 0
    assert len(await _inbox(runtime)) == 1


async def test_a_single_part_message_takes_the_usual_path(runtime: Runtime) -> None:
    await _provider(runtime)
    for part, parts, ref in ((None, None, None), (1, 1, "9"), (1, 2, None)):  # nothing to reassemble
        async with runtime.factory() as session, session.begin():
            view = await replies.record_inbound(
                session, provider_id=None, provider_name="sbx", via="poll",
                report=InboundReport(provider_message_id=f"S{part}{parts}{ref}", sender=NUMBER, recipient=None,
                                     text="hi", part=part, parts=parts, concat_ref=ref))
        assert view is not None
    assert len(await _inbox(runtime)) == 3
    async with runtime.factory() as session:
        assert await session.scalar(select(func.count()).select_from(InboundPart)) == 0


# --- the real doors ------------------------------------------------------------------------------


async def _udh_part(smsc: FakeSmsc, text: str, ref: int, total: int, part: int) -> int:
    return await smsc.deliver(source_addr="14155550123", destination_addr="447700900000",
                              esm_class=codec.ESM_UDHI,
                              short_message=bytes((5, 0, 3, ref, total, part)) + codec.gsm_encode(text))


async def test_an_smpp_udh_pair_is_one_reply(runtime: Runtime, smsc: FakeSmsc,
                                             bound: tuple[int, SmppProvider]) -> None:
    profile_id = await add_profile(runtime, "+14155550123", "subscribed")
    assert await _udh_part(smsc, "unsubscribe me", 77, 2, 2) == codec.ROK  # answered once held
    assert await _inbox(runtime) == []
    assert await _udh_part(smsc, "Please ", 77, 2, 1) == codec.ROK
    assert await _udh_part(smsc, "unsubscribe me", 77, 2, 2) == codec.ROK  # the SMSC retries: nothing new
    [row] = await _inbox(runtime)
    assert (row.sender, row.text, row.via, row.profile_id) == ("+14155550123", "Please unsubscribe me", "smpp",
                                                                profile_id)


async def test_an_smpp_stop_split_over_udh_parts_opts_out(runtime: Runtime, smsc: FakeSmsc,
                                                          bound: tuple[int, SmppProvider]) -> None:
    profile_id = await add_profile(runtime, "+14155550123", "subscribed")
    assert await _udh_part(smsc, "ST", 9, 2, 1) == codec.ROK
    assert await _udh_part(smsc, "OP", 9, 2, 2) == codec.ROK
    async with runtime.factory() as session:
        profile = await session.get(Profile, profile_id)
    assert profile is not None and profile.subscription == "unsubscribed"
    assert [row.action for row in await _inbox(runtime)] == ["opt_out"]


@pytest.fixture
async def listener(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with runtime.factory() as session, session.begin():
        await settings_service.update_settings(session, {"public_base_url": "https://console.example.com"},
                                               actor="test")
        await providers.create_provider(session, runtime.box, kind="vonage", name="vonage-main", values=V.SIGNED,
                                        actor="test")
    app = create_app(runtime.factory, box=runtime.box, engine_state=lambda: "running")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://listener") as http:
        yield http


def _vonage_part(text: str, message_id: str, part: int) -> CallbackRequest:
    params = {**{k: v for k, v in V.INBOUND.items() if k != "keyword"}, "text": text, "messageId": message_id,
              "concat": "true", "concat-ref": "108", "concat-total": "2", "concat-part": str(part)}
    return V.as_request(V.signed_params(params), "POST", V.INBOUND_URL)


async def _post(http: httpx.AsyncClient, request: CallbackRequest) -> httpx.Response:
    parts = urlsplit(request.url)
    headers = {k: v for k, v in request.headers.items() if k != "host"}
    return await http.request(request.method, parts.path + (f"?{parts.query}" if parts.query else ""),
                              headers=headers, content=request.body or None)


async def test_a_vonage_concatenated_pair_through_the_listener_is_one_reply(runtime: Runtime,
                                                                             listener: httpx.AsyncClient) -> None:
    # split at a space: a part's text is kept as sent, so the join keeps it
    second = _vonage_part(" see you at eight.", "0A00000000000002", 2)
    assert (await _post(listener, second)).status_code < 300  # held, committed, answered
    assert await _inbox(runtime) == []
    assert (await _post(listener, _vonage_part("Yes please,", "0A00000000000001", 1))).status_code < 300
    assert (await _post(listener, second)).status_code < 300  # Vonage retries: nothing changes
    [row] = await _inbox(runtime)
    assert (row.sender, row.text, row.provider_message_id, row.via) == (
        "+447700900001", "Yes please, see you at eight.", "0A00000000000001", "webhook")
