"""Replies through `record_inbound`: keywords act (STOP unsubscribes, suppresses what is queued and
confirms once; START; HELP; custom events), other replies become `sms_reply` events linked to the
message they answer, duplicates do nothing, and a STOP mid-send stops that recipient's messages."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select, update

from smsconsole import clock
from smsconsole.engine.dispatcher import Dispatcher, DispatchSettings
from smsconsole.models import (
    AuditEntry,
    Consent,
    Event,
    InboundMessage,
    Message,
    Profile,
)
from smsconsole.models import Provider as ProviderRow
from smsconsole.providers.base import InboundReport
from smsconsole.runtime import Runtime
from smsconsole.services import keywords, messages, providers, replies
from smsconsole.services.errors import Conflict, ValidationError

NUMBER = "+447400123456"


async def _provider(rt: Runtime, name: str = "sbx") -> int:
    async with rt.factory() as session, session.begin():
        view = await providers.create_provider(session, rt.box, kind="sandbox", name=name, values={}, actor="test")
    return view.id


async def _reply(rt: Runtime, text: str, *, sender: str = NUMBER, message_id: str | None = None,
                 provider: str = "sbx") -> replies.InboundView:
    async with rt.factory() as session, session.begin():
        provider_id = await session.scalar(select(ProviderRow.id).where(ProviderRow.name == provider))
        return await replies.record_inbound(
            session, provider_id=provider_id, provider_name=provider, via="poll",
            report=InboundReport(provider_message_id=message_id, sender=sender, recipient="+14155552671", text=text),
        )


async def _queue(rt: Runtime, body: str, to: str = NUMBER) -> int:
    async with rt.factory() as session, session.begin():
        view = await messages.queue_test_message(session, provider_name="sbx", to=to, body=body,
                                                 default_region=None, actor="test")
    return view.id


async def _mark_sent(rt: Runtime, message_id: int, minutes_ago: int) -> None:
    async with rt.factory() as session, session.begin():
        at = clock.now() - timedelta(minutes=minutes_ago)
        await session.execute(update(Message).where(Message.id == message_id)
                              .values(state="delivered", sent_at=at, provider_message_id=f"SBX{message_id}"))


async def _profile(rt: Runtime, phone: str = NUMBER) -> Profile:
    async with rt.factory() as session:
        row = await session.scalar(select(Profile).where(Profile.phone == phone))
        assert row is not None
        return row


async def _states(rt: Runtime, to: str = NUMBER) -> dict[int, tuple[str, str, str | None]]:
    async with rt.factory() as session:
        rows = await session.execute(select(Message.id, Message.kind, Message.state, Message.reason)
                                     .where(Message.to_number == to).order_by(Message.id))
        return {i: (kind, state, reason) for i, kind, state, reason in rows.all()}


async def _events(rt: Runtime, name: str) -> list[Event]:
    async with rt.factory() as session:
        return list(await session.scalars(select(Event).where(Event.name == name).order_by(Event.id)))


async def test_stop_unsubscribes_suppresses_queued_and_confirms_once(runtime: Runtime) -> None:
    provider_id = await _provider(runtime)
    queued = [await _queue(runtime, f"offer {n}") for n in range(3)]
    other = await _queue(runtime, "for someone else", to="+447400999999")

    view = await _reply(runtime, " Stop! ", message_id="MO1")

    assert (view.keyword, view.action, view.suppressed) == ("STOP", "opt_out", 3)
    profile = await _profile(runtime)  # created for the unknown number
    assert profile.subscription == "unsubscribed" and profile.subscription_at is not None
    async with runtime.factory() as session:
        consents = list(await session.scalars(select(Consent).where(Consent.profile_id == profile.id)))
    assert [(c.state, c.source) for c in consents] == [("unsubscribed", "keyword")]
    states = await _states(runtime)
    assert [states[i][1] for i in queued] == ["suppressed"] * 3
    assert all("STOP" in (states[i][2] or "") for i in queued)
    auto = [(i, s) for i, s in states.items() if s[0] == "auto"]
    assert len(auto) == 1 and auto[0][1][1] == "queued" and auto[0][0] == view.response_message_id
    async with runtime.factory() as session:
        confirmation = await session.get(Message, view.response_message_id)
        assert confirmation is not None
        assert confirmation.provider_id == provider_id and confirmation.priority == replies.PRIORITY_AUTO
        assert "unsubscribed" in confirmation.body and "START" in confirmation.body
        assert confirmation.sender == "+14155552671"  # answered from the number they wrote to
        assert (await session.get(Message, other)).state == "queued"  # type: ignore[union-attr]
    assert [e.properties["keyword"] for e in await _events(runtime, "sms_optout")] == ["STOP"]

    again = await _reply(runtime, "STOP", message_id="MO2")
    assert again.action == "opt_out" and again.response_message_id is None  # no second confirmation
    assert sum(1 for s in (await _states(runtime)).values() if s[0] == "auto") == 1
    async with runtime.factory() as session:
        assert await session.scalar(select(func.count()).select_from(Consent)) == 1


async def test_stop_answers_again_after_the_window(runtime: Runtime) -> None:
    await _provider(runtime)
    first = await _reply(runtime, "STOP", message_id="MO1")
    clock.freeze(clock.now() + replies.AUTO_RESPONSE_WINDOW + timedelta(seconds=1))
    later = await _reply(runtime, "stop", message_id="MO2")
    assert first.response_message_id and later.response_message_id
    assert later.response_message_id != first.response_message_id


async def test_stop_mid_send_leaves_only_the_confirmation_to_send(runtime: Runtime) -> None:
    """Several messages queued to one number; STOP arrives; the dispatcher then sends the
    confirmation and nothing else to that number."""
    await _provider(runtime)
    sent_first = await _queue(runtime, "first of a series")
    async with httpx.AsyncClient(timeout=2) as client:
        dispatcher = Dispatcher(runtime.factory, runtime.box, client, DispatchSettings(max_attempts=3))
        assert await dispatcher.run_once() == 1  # the first one went out
        rest = [await _queue(runtime, f"part {n}") for n in range(4)]
        view = await _reply(runtime, "STOP")
        assert view.answers_message_id == sent_first
        await dispatcher.run_once()
        await dispatcher.run_once()
    states = await _states(runtime)
    assert states[sent_first][1] == "sent"
    assert [states[i][1] for i in rest] == ["suppressed"] * 4
    assert states[view.response_message_id][:2] == ("auto", "sent")  # type: ignore[index]
    assert sorted(s[1] for s in states.values()) == ["sent", "sent", *["suppressed"] * 4]


async def test_start_resubscribes_and_answers(runtime: Runtime) -> None:
    await _provider(runtime)
    await _reply(runtime, "STOP", message_id="MO1")
    view = await _reply(runtime, "Start", message_id="MO2")
    assert (view.keyword, view.action) == ("START", "opt_in")
    profile = await _profile(runtime)
    assert profile.subscription == "subscribed"
    async with runtime.factory() as session:
        response = await session.get(Message, view.response_message_id)
        sources = list(await session.scalars(select(Consent.source).where(Consent.profile_id == profile.id)))
    assert response is not None and "subscribed again" in response.body
    assert sources == ["keyword", "keyword"]
    assert len(await _events(runtime, "sms_optin")) == 1


async def test_regional_keywords_answer_in_their_language(runtime: Runtime) -> None:
    await _provider(runtime)
    stop = await _reply(runtime, "arrêt", message_id="MO1")
    help_ = await _reply(runtime, "¿Ayuda?", message_id="MO2", sender="+34612345678")
    async with runtime.factory() as session:
        fr = await session.get(Message, stop.response_message_id)
        es = await session.get(Message, help_.response_message_id)
    assert stop.keyword == "ARRET" and fr is not None and "désinscrit" in fr.body
    assert help_.action == "help" and es is not None and "BAJA" in es.body


async def test_help_answers_without_changing_the_subscription(runtime: Runtime) -> None:
    await _provider(runtime)
    queued = await _queue(runtime, "still wanted")
    view = await _reply(runtime, "HELP", message_id="MO1")
    assert view.action == "help" and view.response_message_id is not None
    profile = await _profile(runtime)
    assert profile.subscription == "never"
    assert (await _states(runtime))[queued][1] == "queued"
    repeat = await _reply(runtime, "help", message_id="MO2")
    assert repeat.response_message_id is None  # no ping-pong with an auto-responder


async def test_custom_keyword_logs_its_event(runtime: Runtime) -> None:
    await _provider(runtime)
    async with runtime.factory() as session, session.begin():
        await keywords.create_keyword(session, word="yes-survey", action="custom", event_name="survey_yes",
                                      response="Thanks for answering!", actor="test")
    sent = await _queue(runtime, "Did you like it? Reply YES SURVEY")
    await _mark_sent(runtime, sent, 5)
    view = await _reply(runtime, "Yes survey!", message_id="MO1")
    assert (view.keyword, view.action, view.answers_message_id) == ("YES SURVEY", "custom", sent)
    events = await _events(runtime, "survey_yes")
    assert len(events) == 1 and events[0].properties["answers_message_id"] == sent
    assert events[0].properties["text"] == "Yes survey!"
    assert view.response_message_id is not None


async def test_plain_reply_is_an_event_linked_to_the_latest_message_sent(runtime: Runtime) -> None:
    await _provider(runtime)
    older, newer, unsent = (await _queue(runtime, "older"), await _queue(runtime, "newer"),
                            await _queue(runtime, "not sent yet"))
    await _mark_sent(runtime, older, 30)
    await _mark_sent(runtime, newer, 5)
    view = await _reply(runtime, "stop sending me deals", message_id="MO1")
    assert (view.keyword, view.action) == (None, "reply")
    assert view.answers_message_id == newer and view.answers_body == "newer"
    assert view.response_message_id is None
    events = await _events(runtime, "sms_reply")
    assert len(events) == 1
    assert events[0].properties == {"text": "stop sending me deals", "number": NUMBER, "inbound_id": view.id,
                                    "provider": "sbx", "answers_message_id": newer, "answers_kind": "test"}
    states = await _states(runtime)
    assert states[unsent][1] == "queued"  # a reply is not an opt-out
    assert (await _profile(runtime)).subscription == "never"


async def test_existing_profile_is_used_not_duplicated(runtime: Runtime) -> None:
    from smsconsole.services import profiles

    await _provider(runtime)
    defaults = profiles.AudienceDefaults(region="GB")
    async with runtime.factory() as session, session.begin():
        await profiles.upsert_profiles(session, [profiles.prepare_profile(
            {"user_id": "cust-1", "phone": "07400 123456", "name": "Ann", "optin_at": "2026-01-01T00:00:00Z"},
            defaults)], source="import", defaults=defaults)
    view = await _reply(runtime, "STOP", message_id="MO2", sender="+44 7400 123456")  # normalized to E.164
    assert view.sender == NUMBER
    assert view.profile_name == "Ann" and view.profile_key == "cust-1"
    async with runtime.factory() as session:
        assert await session.scalar(select(func.count()).select_from(Profile)) == 1


async def test_duplicate_delivery_is_recorded_once(runtime: Runtime) -> None:
    await _provider(runtime)
    await _queue(runtime, "queued")
    first = await _reply(runtime, "STOP", message_id="MO-1")
    second = await _reply(runtime, "STOP", message_id="MO-1")
    assert second.duplicate and second.id == first.id and not first.duplicate
    async with runtime.factory() as session:
        assert await session.scalar(select(func.count()).select_from(InboundMessage)) == 1
        assert await session.scalar(select(func.count()).select_from(Consent)) == 1
        assert await session.scalar(select(func.count()).select_from(Message).where(Message.kind == "auto")) == 1
    assert len(await _events(runtime, "sms_optout")) == 1


async def test_same_id_from_another_provider_is_another_message(runtime: Runtime) -> None:
    await _provider(runtime, "a")
    await _provider(runtime, "b")
    one = await _reply(runtime, "hello", message_id="X1", provider="a")
    two = await _reply(runtime, "hello", message_id="X1", provider="b")
    assert one.id != two.id and not two.duplicate


async def test_disabled_keyword_is_a_plain_reply(runtime: Runtime) -> None:
    await _provider(runtime)
    async with runtime.factory() as session, session.begin():
        await keywords.update_keyword(session, "end", enabled=False, actor="test")
    view = await _reply(runtime, "End", message_id="MO1")
    assert view.action == "reply" and view.keyword is None


async def test_recent_inbound_filters(runtime: Runtime) -> None:
    await _provider(runtime)
    await _reply(runtime, "STOP", message_id="1")
    await _reply(runtime, "hello", message_id="2", sender="+447400111111")
    await _reply(runtime, "help", message_id="3", sender="+447400222222")
    async with runtime.factory() as session:
        everything = await replies.recent_inbound(session)
        opt_outs = await replies.recent_inbound(session, action="opt_out")
        helps = await replies.recent_inbound(session, keyword="Help")
        with pytest.raises(ValidationError):
            await replies.recent_inbound(session, action="nonsense")
    assert [v.text for v in everything] == ["help", "hello", "STOP"]
    assert [v.text for v in opt_outs] == ["STOP"] and [v.text for v in helps] == ["help"]


# --- keyword CRUD --------------------------------------------------------------------------------


async def test_defaults_exist_out_of_the_box_and_deletions_stick(runtime: Runtime) -> None:
    async with runtime.factory() as session, session.begin():
        words = {k.word: k for k in await keywords.list_keywords(session)}
    assert {"STOP", "OPT OUT", "BAJA", "ARRET", "START", "HELP", "AYUDA"} <= set(words)
    assert all(k.builtin and k.response for k in words.values())
    async with runtime.factory() as session, session.begin():
        await keywords.delete_keyword(session, "quit", actor="test")
    async with runtime.factory() as session, session.begin():
        assert "QUIT" not in {k.word for k in await keywords.list_keywords(session)}
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "keyword.delete"))
        assert entry is not None and entry.target == "QUIT"


async def test_keyword_validation_names_every_field(runtime: Runtime) -> None:
    async with runtime.factory() as session, session.begin():
        with pytest.raises(ValidationError) as refused:
            await keywords.create_keyword(session, word="!!", action="shout", language="english!",
                                          response="x" * 500, actor="test")
        assert {f for f, _ in refused.value.problems} == {"word", "action", "language", "response"}
        with pytest.raises(ValidationError) as custom:
            await keywords.create_keyword(session, word="survey", action="custom", actor="test")
        assert custom.value.for_field("event_name")
        with pytest.raises(ValidationError) as duplicate:
            await keywords.create_keyword(session, word="Stop.", action="help", actor="test")
        assert "already exists" in (duplicate.value.for_field("word") or "")
        with pytest.raises(ValidationError) as builtin:
            await keywords.update_keyword(session, "STOP", action="help", actor="test")
        assert builtin.value.for_field("action")
        with pytest.raises(Conflict):
            await keywords.delete_keyword(session, "STOP", actor="test")
    async with runtime.factory() as session:
        assert await session.scalar(select(func.count()).select_from(AuditEntry)) == 0


async def test_keyword_create_and_update(runtime: Runtime) -> None:
    async with runtime.factory() as session, session.begin():
        made = await keywords.create_keyword(session, word=" Promo-Code ", action="custom", language="EN",
                                             event_name="promo_reply", actor="test")
        assert (made.word, made.language, made.builtin) == ("PROMO CODE", "en", False)
        changed = await keywords.update_keyword(session, "promo code", new_word="PROMO", response="Saved!",
                                                actor="test")
        assert (changed.word, changed.response, changed.event_name) == ("PROMO", "Saved!", "promo_reply")
        stop = await keywords.update_keyword(session, "stop", response="Unsubscribed. Reply START to rejoin.",
                                             actor="test")
        assert stop.builtin and stop.response and stop.response.startswith("Unsubscribed")
        found = await keywords.match_keyword(session, "promo!")
        assert found is not None and found.word == "PROMO"
