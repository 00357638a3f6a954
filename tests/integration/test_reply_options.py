"""Campaign reply options ("Reply C to confirm", "Reply 0-10"): the document part and its checks,
matching a reply to the message it answers (inside and outside the window, only from the
campaign's recipients, keywords first), the event and auto-answer it records, and the report's
answers per option with the NPS. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from smsconsole import clock
from smsconsole.models import Campaign, CampaignRun, Event, InboundMessage, Message
from smsconsole.runtime import Runtime
from smsconsole.services import replies
from smsconsole.services.campaigns import reply_options
from smsconsole.services.campaigns.definition import parse_document
from smsconsole.services.campaigns.records import reference_problems
from smsconsole.services.campaigns.report import build_report
from smsconsole.services.campaigns.reply_options import ArmAnswers, answers_by_arm, match, parse_replies
from tests.conftest import make_config
from tests.integration.dispatch_support import add_provider, message_row, queue

APPOINTMENT = {"window": "48h", "options": [
    {"reply": ["C", "confirm"], "event": "appointment_confirmed", "answer": "Thanks, see you on Friday."},
    {"reply": "R", "event": "appointment_reschedule", "answer": "We will call you to find a new time."},
]}
NPS = {"window": "2d", "options": [{"numbers": "0-10", "event": "nps", "answer": "Thank you for your score."}]}
ANN, BOB, CAT, DAN, EVE = "+447400200001", "+447400200002", "+447400200003", "+447400200004", "+447400200005"


def _parse(data: Any) -> tuple[reply_options.ReplyOptions | None, list[tuple[str, str]]]:
    problems: list[tuple[str, str]] = []
    return parse_replies(data, problems), problems


# --- the document ---------------------------------------------------------------------------------


def test_options_read_words_and_numbers_and_round_trip() -> None:
    value, problems = _parse({**APPOINTMENT, "options": [*APPOINTMENT["options"], {"numbers": "1 to 5", "event": "rating"}]})
    assert problems == [] and value is not None
    assert value.window_minutes == 48 * 60
    assert [(o.words, o.low, o.high, o.event) for o in value.options] == [
        (("C", "CONFIRM"), None, None, "appointment_confirmed"), (("R",), None, None, "appointment_reschedule"),
        ((), 1, 5, "rating")]
    document = {"name": "Reminder", "type": "one_time", "replies": APPOINTMENT}
    parsed, _ = parse_document(document)
    again, _ = parse_document(parsed.to_dict())
    assert again.replies == parsed.replies and parsed.to_dict()["replies"]["options"][0]["reply"] == ["C", "CONFIRM"]


@pytest.mark.parametrize(("data", "field", "words"), [
    ({"options": [{"reply": "C", "event": "x"}], "window": "3 weeks"}, "replies.window", "1 minute to 30 days"),
    ({"options": []}, "replies.options", "at least one option"),
    ({"options": [{"reply": "C"}]}, "replies.options.1.event", "name the event"),
    ({"options": [{"reply": "C", "event": "has space"}]}, "replies.options.1.event", "letters, digits"),
    ({"options": [{"event": "x"}]}, "replies.options.1.reply", "give the word"),
    ({"options": [{"reply": "C", "numbers": "0-10", "event": "x"}]}, "replies.options.1.reply", "not both"),
    ({"options": [{"reply": "C", "event": "x"}, {"reply": "c", "event": "y"}]}, "replies.options.2.reply",
     "already a reply of option 1"),
    ({"options": [{"numbers": "10-0", "event": "x"}]}, "replies.options.1.numbers", "range of whole numbers"),
    ({"options": [{"numbers": "0-6", "event": "x"}, {"numbers": "5-10", "event": "y"}]},
     "replies.options.2.numbers", "overlaps option 1"),
    ({"options": [{"numbers": "0-10", "event": "x"}, {"reply": "5", "event": "y"}]}, "replies.options.2.reply",
     "also in a numbers range"),
    ({"options": [{"reply": "C", "event": "x", "answer": "a" * 481}]}, "replies.options.1.answer", "at most 480"),
    ({"options": [{"reply": "C", "event": "x", "colour": "red"}]}, "replies.options.1.colour", "unknown field"),
    ({"options": [{"reply": f"W{n}", "event": "x"} for n in range(11)]}, "replies.options", "at most 10"),
])
def test_bad_options_are_named(data: dict[str, Any], field: str, words: str) -> None:
    _, problems = _parse(data)
    assert any(name == field and words in reason for name, reason in problems), problems


def test_a_reply_matches_the_whole_text_or_its_first_word() -> None:
    appointment, _ = _parse(APPOINTMENT)
    nps, _ = _parse(NPS)
    assert appointment is not None and nps is not None
    assert match(appointment, " c ").label == "C"  # type: ignore[union-attr]
    assert match(appointment, "Confirm.").label == "C"  # type: ignore[union-attr]  # another word of the option
    assert match(appointment, "r please, Friday is bad").option.event == "appointment_reschedule"  # type: ignore[union-attr]
    assert match(appointment, "Cancel") is None and match(appointment, "ok") is None and match(appointment, "") is None
    eight = match(nps, "8")
    assert eight is not None and (eight.label, eight.score) == ("8", 8)
    assert match(nps, "10!").score == 10  # type: ignore[union-attr]
    assert match(nps, "11") is None and match(nps, "-1") is not None  # "-1" reads as the number 1
    assert match(nps, "great service") is None


# --- matching replies ------------------------------------------------------------------------------


async def _campaign(rt: Runtime, replies_part: dict[str, Any] | None, name: str = "Reminder") -> tuple[int, int]:
    now = clock.now()
    document = {"name": name, "type": "one_time", **({"replies": replies_part} if replies_part else {})}
    async with rt.factory() as session, session.begin():
        campaign = Campaign(name=name, type="one_time", state="running", document=document, created_at=now,
                            updated_at=now)
        session.add(campaign)
        await session.flush()
        run = CampaignRun(campaign_id=campaign.id, number=1, planned_at=now, state="running", document=document,
                          suppressed={}, updated_at=now)
        session.add(run)
        await session.flush()
        return campaign.id, run.id


async def _sent(rt: Runtime, provider_id: int, to: str, campaign_id: int | None, run_id: int | None,
                ago: timedelta, variant: str | None = "A", kind: str = "campaign") -> int:
    sent = clock.now() - ago
    (message_id,) = await queue(rt, message_row(
        0, to_number=to, campaign_id=campaign_id, run_id=run_id, variant=variant if campaign_id else None, kind=kind,
        provider_id=provider_id, provider_name="sandbox", state="delivered", sent_at=sent, created_at=sent))
    return message_id


async def _reply(rt: Runtime, sender: str, text: str) -> replies.InboundView:
    async with rt.factory() as session, session.begin():
        return await replies.simulate_reply(session, "sandbox", sender, text)


async def _events(rt: Runtime, name: str) -> list[Event]:
    async with rt.factory() as session:
        return list(await session.scalars(select(Event).where(Event.name == name).order_by(Event.id)))


async def _answer(rt: Runtime, view: replies.InboundView) -> Message | None:
    if view.response_message_id is None:
        return None
    async with rt.factory() as session:
        return await session.get(Message, view.response_message_id)


async def test_an_answer_inside_the_window_records_the_option_event_and_answers(runtime: Runtime) -> None:
    provider_id = await add_provider(runtime, "sandbox")
    campaign_id, run_id = await _campaign(runtime, APPOINTMENT)
    message_id = await _sent(runtime, provider_id, ANN, campaign_id, run_id, timedelta(hours=47), variant="B")
    view = await _reply(runtime, ANN, "c")
    assert (view.action, view.reply_option, view.answers_message_id) == ("option", "C", message_id)
    assert (view.answers_campaign_id, view.answers_run_id, view.answers_variant) == (campaign_id, run_id, "B")
    (event,) = await _events(runtime, "appointment_confirmed")
    assert event.profile_id == view.profile_id
    assert {k: event.properties[k] for k in ("option", "campaign", "campaign_id", "run_id", "variant", "text")} == {
        "option": "C", "campaign": f"C{campaign_id}", "campaign_id": campaign_id, "run_id": run_id, "variant": "B",
        "text": "c"}
    assert await _events(runtime, replies.REPLY_EVENT) == []  # the option's event instead of sms_reply
    answer = await _answer(runtime, view)
    assert answer is not None and (answer.kind, answer.body, answer.to_number, answer.state) == (
        "auto", "Thanks, see you on Friday.", ANN, "queued")


async def test_an_answer_after_the_window_is_a_plain_reply(runtime: Runtime) -> None:
    provider_id = await add_provider(runtime, "sandbox")
    campaign_id, run_id = await _campaign(runtime, APPOINTMENT)
    await _sent(runtime, provider_id, ANN, campaign_id, run_id, timedelta(hours=48, minutes=1))
    view = await _reply(runtime, ANN, "C")
    assert (view.action, view.reply_option, view.response_message_id) == ("reply", None, None)
    assert view.answers_campaign_id == campaign_id  # still linked to the message it answers
    assert await _events(runtime, "appointment_confirmed") == []
    assert len(await _events(runtime, replies.REPLY_EVENT)) == 1


async def test_the_window_is_measured_on_the_clock(runtime: Runtime) -> None:
    provider_id = await add_provider(runtime, "sandbox")
    campaign_id, run_id = await _campaign(runtime, {**APPOINTMENT, "window": "30m"})
    start = clock.now()
    await _sent(runtime, provider_id, ANN, campaign_id, run_id, timedelta(0))
    await _sent(runtime, provider_id, BOB, campaign_id, run_id, timedelta(0))
    try:
        clock.freeze(start + timedelta(minutes=29))
        assert (await _reply(runtime, ANN, "R")).action == "option"
        clock.freeze(start + timedelta(minutes=31))
        assert (await _reply(runtime, BOB, "R")).action == "reply"
    finally:
        clock.freeze(None)


async def test_only_the_campaigns_recipients_answer_it(runtime: Runtime) -> None:
    provider_id = await add_provider(runtime, "sandbox")
    campaign_id, run_id = await _campaign(runtime, APPOINTMENT)
    await _sent(runtime, provider_id, ANN, campaign_id, run_id, timedelta(hours=1))
    await _sent(runtime, provider_id, CAT, None, None, timedelta(minutes=5), kind="transactional")
    stranger = await _reply(runtime, BOB, "C")  # never sent anything
    other = await _reply(runtime, CAT, "C")  # sent an order update only
    assert (stranger.action, stranger.reply_option) == ("reply", None)
    assert (other.action, other.reply_option) == ("reply", None)
    async with runtime.factory() as session:
        assert await answers_by_arm(session, campaign_id) == []


async def test_an_older_campaign_message_is_answered_past_a_newer_message(runtime: Runtime) -> None:
    """An order update sent after the reminder does not hide the reminder's options."""
    provider_id = await add_provider(runtime, "sandbox")
    campaign_id, run_id = await _campaign(runtime, APPOINTMENT)
    plain_id, plain_run = await _campaign(runtime, None, name="Newsletter")
    reminder = await _sent(runtime, provider_id, ANN, campaign_id, run_id, timedelta(hours=3))
    await _sent(runtime, provider_id, ANN, plain_id, plain_run, timedelta(hours=1))
    await _sent(runtime, provider_id, ANN, None, None, timedelta(minutes=10), kind="transactional")
    view = await _reply(runtime, ANN, "confirm")
    assert (view.action, view.reply_option, view.answers_message_id) == ("option", "C", reminder)


async def test_global_keywords_always_win(runtime: Runtime) -> None:
    provider_id = await add_provider(runtime, "sandbox")
    # a snapshot that (wrongly) offers STOP and HELP: scheduling refuses it, the inbound door still obeys keywords
    campaign_id, run_id = await _campaign(runtime, {"options": [
        {"reply": "STOP", "event": "odd"}, {"reply": "HELP", "event": "odd2"}, {"reply": "Y", "event": "yes"}]})
    await _sent(runtime, provider_id, ANN, campaign_id, run_id, timedelta(hours=1))
    await _sent(runtime, provider_id, BOB, campaign_id, run_id, timedelta(hours=1))
    stop = await _reply(runtime, ANN, "STOP")
    help_ = await _reply(runtime, BOB, "help")
    assert (stop.action, stop.reply_option) == ("opt_out", None)
    assert (help_.action, help_.reply_option) == ("help", None)
    assert await _events(runtime, "odd") == [] and await _events(runtime, "odd2") == []


async def test_scheduling_refuses_an_option_word_that_is_a_keyword(runtime: Runtime) -> None:
    parsed, problems = parse_document({"name": "x", "type": "one_time", "replies": {"options": [
        {"reply": ["Y", "stop"], "event": "yes"}, {"reply": "info", "event": "info"}]}})
    assert problems == []
    async with runtime.factory() as session, session.begin():
        found = await reference_problems(session, parsed)
    assert ("replies.options.1.reply", "STOP is a keyword (opt-out) and keywords always win; choose another word") \
        in found
    assert ("replies.options.2.reply", "INFO is a keyword (help) and keywords always win; choose another word") in found


async def test_an_opted_out_recipient_is_recorded_but_not_answered(runtime: Runtime) -> None:
    provider_id = await add_provider(runtime, "sandbox")
    campaign_id, run_id = await _campaign(runtime, APPOINTMENT)
    await _sent(runtime, provider_id, ANN, campaign_id, run_id, timedelta(hours=2))
    await _reply(runtime, ANN, "STOP")
    view = await _reply(runtime, ANN, "C")
    assert (view.action, view.reply_option, view.response_message_id) == ("option", "C", None)
    assert len(await _events(runtime, "appointment_confirmed")) == 1


async def test_the_same_answer_is_not_answered_twice_within_ten_minutes(runtime: Runtime) -> None:
    provider_id = await add_provider(runtime, "sandbox")
    campaign_id, run_id = await _campaign(runtime, APPOINTMENT)
    await _sent(runtime, provider_id, ANN, campaign_id, run_id, timedelta(hours=2))
    first = await _reply(runtime, ANN, "C")
    again = await _reply(runtime, ANN, "confirm")
    changed = await _reply(runtime, ANN, "R")  # another option: answered
    assert first.response_message_id is not None and again.response_message_id is None
    assert changed.response_message_id is not None
    assert len(await _events(runtime, "appointment_confirmed")) == 2  # each answer is recorded
    async with runtime.factory() as session:  # the message's last answer counts
        assert await answers_by_arm(session, campaign_id) == [ArmAnswers(run_id, "A", "R", 1)]


async def test_a_test_send_takes_answers_but_the_report_leaves_them_out(runtime: Runtime) -> None:
    provider_id = await add_provider(runtime, "sandbox")
    campaign_id, _ = await _campaign(runtime, APPOINTMENT)
    await _sent(runtime, provider_id, ANN, campaign_id, None, timedelta(minutes=3), kind="test")
    view = await _reply(runtime, ANN, "C")
    assert (view.action, view.reply_option, view.answers_run_id) == ("option", "C", None)
    async with runtime.factory() as session:
        report = await build_report(session, campaign_id)
    assert report.answers is not None and report.answers.total == 0


async def test_nps_answers_by_arm_and_in_the_report(runtime: Runtime) -> None:
    provider_id = await add_provider(runtime, "sandbox")
    campaign_id, run_id = await _campaign(runtime, NPS, name="Survey")
    scores = {ANN: ("A", "10"), BOB: ("A", "9"), CAT: ("B", "7"), DAN: ("B", "3"), EVE: ("A", "8")}
    for number, (variant, _) in scores.items():
        await _sent(runtime, provider_id, number, campaign_id, run_id, timedelta(hours=5), variant=variant)
    for number, (_, score) in scores.items():
        await _reply(runtime, number, score)
    await _reply(runtime, EVE, "10")  # Eve changes her mind: 8 → 10
    await _reply(runtime, DAN, "great")  # not a number: a plain reply
    async with runtime.factory() as session:
        arms = await answers_by_arm(session, campaign_id)
        report = await build_report(session, campaign_id)
        (event,) = [e for e in await session.scalars(select(Event).where(Event.name == "nps"))
                    if e.properties.get("text") == "3"]
    assert arms == [ArmAnswers(run_id, "A", "10", 2), ArmAnswers(run_id, "A", "9", 1),
                    ArmAnswers(run_id, "B", "3", 1), ArmAnswers(run_id, "B", "7", 1)]
    assert event.properties["score"] == 3 and event.properties["variant"] == "B"
    figures = report.answers
    assert figures is not None and figures.total == 5
    assert dict(figures.scores)[10] == 2 and dict(figures.scores)[8] == 0 and len(figures.scores) == 11
    assert (figures.promoters, figures.passives, figures.detractors, figures.nps) == (3, 1, 1, 40.0)
    by_arm = {arm.arm: arm.answers for arm in report.arms}
    assert by_arm["A"] == {"10": 2, "9": 1} and by_arm["B"] == {"3": 1, "7": 1}
    assert report.total.replies == 7  # every reply, options or not


async def test_word_options_count_per_option(runtime: Runtime) -> None:
    provider_id = await add_provider(runtime, "sandbox")
    campaign_id, run_id = await _campaign(runtime, APPOINTMENT)
    for number in (ANN, BOB, CAT):
        await _sent(runtime, provider_id, number, campaign_id, run_id, timedelta(hours=1))
    for number, text in ((ANN, "C"), (BOB, "confirm"), (CAT, "R")):
        await _reply(runtime, number, text)
    async with runtime.factory() as session:
        report = await build_report(session, campaign_id)
        rows = list(await session.scalars(select(InboundMessage.reply_option).order_by(InboundMessage.id)))
    assert rows == ["C", "C", "R"]
    assert report.answers is not None and report.answers.answers == (("C", 2), ("R", 1))
    assert report.answers.nps is None and report.answers.scores == ()


def test_cli_inbox_report_and_campaign_file(cli, tmp_path: Path, database_url: str) -> None:  # type: ignore[no-untyped-def]
    async def seed() -> int:
        rt = await Runtime.open(make_config(tmp_path, database_url))
        try:
            provider_id = await add_provider(rt, "sandbox")
            campaign_id, run_id = await _campaign(rt, NPS, name="Survey")
            await _sent(rt, provider_id, ANN, campaign_id, run_id, timedelta(hours=1))
            await _sent(rt, provider_id, BOB, campaign_id, run_id, timedelta(hours=1))
            await _reply(rt, ANN, "9")
            await _reply(rt, BOB, "2")
            return campaign_id
        finally:
            await rt.close()

    campaign_id = asyncio.run(seed())
    status, out, _ = cli("inbox")
    assert status == 0 and "option 9" in out and f"C{campaign_id}/A" in out
    status, out, _ = cli("inbox", "--action", "option")
    assert status == 0 and "option 2" in out and "option 9" in out
    status, out, _ = cli("campaigns", "report", f"C{campaign_id}")
    assert status == 0 and "NPS 0" in out and "promoters 1" in out and "detractors 1" in out
    status, out, _ = cli("campaigns", "report", f"C{campaign_id}", "--json")
    answers = json.loads(out)["answers"]
    assert answers["nps"] == 0.0 and answers["scores"]["9"] == 1 and answers["total"] == 2
    status, out, _ = cli("campaigns", "report", f"C{campaign_id}", "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {(r["arm"], r["name"], r["value"]) for r in rows if r["section"] == "answer"} == {
        ("A", "9", "1"), ("A", "2", "1"), ("all", "9", "1"), ("all", "2", "1")}
    [nps] = [r for r in rows if r["section"] == "nps"]
    assert nps["value"] == "0" and nps["note"] == "promoters 1 · passives 0 · detractors 1"
    status, out, _ = cli("campaigns", "show", f"C{campaign_id}")
    assert "Reply: answers within 2d of the message" in out
    assert "a number 0-10 → nps (with the score), answers 'Thank you for your score.'" in out


async def test_a_stop_after_the_auto_answer_is_the_campaigns_opt_out(runtime: Runtime) -> None:
    """The auto-answer is the last message the number got; the STOP still answers the campaign."""
    provider_id = await add_provider(runtime, "sandbox")
    campaign_id, run_id = await _campaign(runtime, NPS, name="Survey")
    message_id = await _sent(runtime, provider_id, ANN, campaign_id, run_id, timedelta(hours=1))
    scored = await _reply(runtime, ANN, "2")
    async with runtime.factory() as session, session.begin():  # the engine sent the answer
        answer = await session.get(Message, scored.response_message_id)
        assert answer is not None
        answer.state, answer.sent_at = "sent", clock.now()
    stop = await _reply(runtime, ANN, "STOP")
    assert (stop.action, stop.answers_message_id, stop.answers_campaign_id) == ("opt_out", message_id, campaign_id)
    async with runtime.factory() as session:
        report = await build_report(session, campaign_id)
    assert (report.total.replies, report.total.opt_outs) == (2, 1)
