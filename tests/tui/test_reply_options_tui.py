"""Reply options in the console at 80×24: the What step collects the options typed into its rows
(words, and a 0-10 range as numbers; an empty row skipped) into the document's `replies` and loads
them back, reads them in words as they are typed, and names a bad window or range under its field
(the row it is on, even after an empty row); the Inbox says which campaign and option a reply
picked; the campaign's report shows the answers per option and variant, the scores and the NPS."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Select, Static

from smsconsole.models import CampaignRun, Message
from smsconsole.runtime import Runtime
from smsconsole.screens.campaigns.screen import CampaignsScreen
from smsconsole.screens.campaigns.steps_send import SendTestStep, SummaryStep
from smsconsole.screens.campaigns.steps_what import WhatStep
from smsconsole.screens.campaigns.steps_when import TypeStep, WhenStep
from smsconsole.screens.campaigns.steps_who import WhoStep
from smsconsole.screens.widgets.fields import FormField
from smsconsole.services.campaigns.definition import parse_document
from smsconsole.services.campaigns.reply_options import ReplyOption, ReplyOptions
from smsconsole.services.replies import simulate_reply
from tests.tui.campaign_seed import ONE_TIME, create
from tests.tui.seed import FROZEN, seed_providers
from tests.tui.segment_seed import seed_segments
from tests.tui.support import make_app, notifications, type_text, wait_for
from tests.tui.test_campaign_report import open_page, text_of
from tests.tui.test_campaigns_wizard import (
    SIZE,
    campaigns,
    fill_what,
    open_wizard,
    step,
)
from tests.tui.test_wizard_variants import at_what

WORDS = "Within 2d: C or CONFIRM → appointment_confirmed + answer; a number 0-10 → nps (score)"


def screen_text(pilot: Pilot[Any]) -> str:
    """What the screen shows, as text."""
    return "\n".join(strip.text for strip in pilot.app.screen._compositor.render_strips())


def words_of(what: WhatStep) -> str:
    return str(what.query_one("#replies-words", Static).render())


def row_input(what: WhatStep, part: str, row: int) -> Input:
    return what.query_one(f"#input-replies-{part}-{row}", Input)


def field(what: WhatStep, part: str, row: int) -> FormField:
    return what.query_one(f"#field-replies-options-{row}-{part}", FormField)


def shown_rows(what: WhatStep) -> list[int]:
    return [row for row in range(1, 11) if what.query_one(f"#replies-row-{row}").display]


async def test_reply_options_are_collected_into_the_document_and_loaded_back(runtime: Runtime) -> None:
    await seed_providers(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        what = await at_what(pilot, app, "Appointments")
        assert words_of(what) == "No reply options: replies are logged as sms_reply."
        assert shown_rows(what) == [1, 2, 3, 4]
        reply = row_input(what, "reply", 1)
        reply.focus()
        await type_text(pilot, "c, confirm")  # typed as keys: the words are read upper case
        row_input(what, "event", 1).value = "appointment_confirmed"
        row_input(what, "answer", 1).value = "Thanks, see you then."
        row_input(what, "reply", 3).value = "0-10"  # row 2 left empty: skipped
        row_input(what, "event", 3).value = "nps"
        await wait_for(pilot, lambda: words_of(what) == WORDS, what="the options in words")
        # the third row holds the second option: its fields are named as the check names that option
        assert (field(what, "reply", 3).field_name, field(what, "event", 3).field_name) == (
            "replies.options.2.numbers", "replies.options.2.event")
        assert what.state.document["replies"] == {"options": [
            {"reply": ["c", "confirm"], "event": "appointment_confirmed", "answer": "Thanks, see you then."},
            {"numbers": "0-10", "event": "nps"}]}
        row_input(what, "reply", 4).value = "R"
        await wait_for(pilot, lambda: shown_rows(what) == [1, 2, 3, 4, 5], what="a fifth row after the fourth")
        row_input(what, "reply", 4).value = ""
        await wait_for(pilot, lambda: shown_rows(what) == [1, 2, 3, 4], what="the fifth row gone again")
        what.query_one("#input-replies-window", Input).value = "36h"
        await wait_for(pilot, lambda: words_of(what).startswith("Within 36h: C or CONFIRM"), what="the window")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "Draft saved" in [n.title for n in app._notifications], what="the save")

        # the saved draft (a draft keeps what was typed) opened again with "e" on the list: its What step
        # loads the options, the empty row closed up
        while not isinstance(app.screen, CampaignsScreen):
            await pilot.press("escape")
            await pilot.pause()
        await wait_for(pilot, lambda: app.screen.table.row_count == 1, what="the draft listed")
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, TypeStep), what="the wizard")
        for kind in (WhenStep, WhoStep, WhatStep):
            what = await step(pilot, app, kind)
        assert [(row_input(what, "reply", row).value, row_input(what, "event", row).value,
                 row_input(what, "answer", row).value) for row in (1, 2, 3)] == [
            ("c, confirm", "appointment_confirmed", "Thanks, see you then."), ("0-10", "nps", ""), ("", "", "")]
        assert what.query_one("#input-replies-window", Input).value == "36h"
        assert words_of(what).startswith("Within 36h: C or CONFIRM → appointment_confirmed + answer; a number 0-10")
        assert field(what, "reply", 2).field_name == "replies.options.2.numbers"
        # the canonical form a scheduled campaign keeps (window in minutes, words and numbers as lists) reads too
        what.replies.load({"replies": {"window": 2880, "options": [{"numbers": [0, 10], "event": "nps"},
                                                                  {"reply": "R", "event": "callback"}]}})
        assert [row_input(what, "reply", row).value for row in (1, 2)] == ["0-10", "R"]
        assert what.query_one("#input-replies-window", Input).value == "2d"
    [view] = await campaigns(runtime)
    assert view.document["replies"] == {"window": "36h", "options": [
        {"reply": ["c", "confirm"], "event": "appointment_confirmed", "answer": "Thanks, see you then."},
        {"numbers": "0-10", "event": "nps"}]}
    parsed, problems = parse_document(view.document)
    assert problems == []
    assert parsed.replies == ReplyOptions((ReplyOption("appointment_confirmed", ("C", "CONFIRM"),
                                                       answer="Thanks, see you then."),
                                           ReplyOption("nps", low=0, high=10)), 36 * 60)


async def test_a_bad_window_and_a_bad_range_are_named_under_their_fields(runtime: Runtime) -> None:
    await seed_providers(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        what = await at_what(pilot, app, "Survey")
        what.query_one("#input-replies-window", Input).value = "soon"
        row_input(what, "reply", 1).value = "10-0"
        row_input(what, "event", 1).value = "nps"
        row_input(what, "reply", 3).value = "R"  # the second option, on the third row: no event
        await wait_for(pilot, lambda: "does not" in words_of(what) or "must be" in words_of(what),
                       what="the first problem in words")
        assert words_of(what) == ('Answers count within: must be a duration from 1 minute to 30 days, e.g. "48h", '
                                  '"90m" or "7d". (2 more: Next names each under its field)')
        await pilot.press("ctrl+f")  # refused: each problem under its field, the step kept
        window = what.query_one("#field-replies-window", FormField).error
        await wait_for(pilot, lambda: window.reason is not None, what="the window's error")
        assert isinstance(app.screen, WhatStep)
        assert window.message == ('Answers count within must be a duration from 1 minute to 30 days, e.g. "48h", '
                                  '"90m" or "7d"')
        assert field(what, "reply", 1).error.message == (
            "Option 1 reply must be a range of whole numbers such as 0-10 (from 0 to 1,000)")
        assert field(what, "event", 3).error.message == (
            "Event: name the event an answer records, e.g. appointment_confirmed")
        assert field(what, "reply", 3).error.reason is None and field(what, "event", 1).error.reason is None
        assert what.query_one("#wizard-error").display is False or not str(
            what.query_one("#wizard-error", Static).render())

        # corrected as typed: the error under the field goes, the words read again
        what.query_one("#input-replies-window", Input).value = "90m"
        row_input(what, "reply", 1).value = "1 to 5"
        row_input(what, "event", 3).value = "callback"
        await wait_for(pilot, lambda: words_of(what) == "Within 90m: a number 1-5 → nps (score); R → callback",
                       what="the options in words")
        assert window.reason is None and field(what, "reply", 1).error.reason is None

        # a window with no option: the first row's reply asks for one
        for row in (1, 3):
            for part in ("reply", "event"):
                row_input(what, part, row).value = ""
        await pilot.pause()
        await pilot.press("ctrl+f")
        first = field(what, "reply", 1).error
        await wait_for(pilot, lambda: first.reason is not None, what="the missing option named")
        assert (first.message or "").startswith("Option 1 reply: add at least one option")

        # nothing typed: no replies in the document
        what.query_one("#input-replies-window", Input).value = ""
        await wait_for(pilot, lambda: "replies" not in what.state.document, what="replies removed")
        assert words_of(what) == "No reply options: replies are logged as sms_reply."



async def test_a_keyword_as_an_option_word_is_refused_at_scheduling_under_its_row(runtime: Runtime) -> None:
    await seed_providers(runtime)
    await seed_segments(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await open_wizard(pilot, app)
        await type_text(pilot, "Keywords")
        await step(pilot, app, WhenStep)
        who = await step(pilot, app, WhoStep)
        segment = who.query_one("#input-who-segment", Select)
        await wait_for(pilot, lambda: len(segment._options) > 1, what="the segments")
        segment.value = "gold-plan"
        what = await fill_what(pilot, app, "Reply Y to confirm")
        row_input(what, "reply", 2).value = "Y"
        row_input(what, "event", 2).value = "confirmed"
        row_input(what, "reply", 4).value = "help, stop"  # the second option: both are keywords
        row_input(what, "event", 4).value = "other"
        await pilot.pause()
        await step(pilot, app, SendTestStep)
        summary = await step(pilot, app, SummaryStep)
        choices = str(summary.query_one("#summary-choices", Static).render())
        assert "Reply options\n  Within 2d: Y → confirmed; HELP or STOP → other\n" in choices
        await pilot.press("ctrl+f")  # schedule: refused, back on What with the row named
        await wait_for(pilot, lambda: isinstance(app.screen, WhatStep), what="back on What")
        what = app.screen
        error = field(what, "reply", 4).error
        await wait_for(pilot, lambda: error.reason is not None, what="the keyword named")
        assert error.message == ("Option 4 reply: HELP is a keyword (help) and keywords always win; choose another "
                                 "word; STOP is a keyword (opt-out) and keywords always win; choose another word")
        assert app.focused is row_input(what, "reply", 4)
        assert field(what, "reply", 2).error.reason is None
        assert any("replies.options.2.reply" in text for text in notifications(app))
    assert [(view.name, view.state) for view in await campaigns(runtime)] == [("Keywords", "draft")]

# --- the Inbox and the report: an A/B campaign that asks for a confirmation and a score --------------

REPLIES = {"window": "48h", "options": [
    {"reply": ["C", "CONFIRM"], "event": "appointment_confirmed", "answer": "Thanks, see you then."},
    {"reply": "R", "event": "appointment_reschedule"},
    {"numbers": "0-10", "event": "nps"}]}
DOCUMENT: dict[str, Any] = {
    **copy.deepcopy(ONE_TIME), "name": "Appointments",
    "what": {"route": {"provider": "sandbox"}, "sender": None,
             "variants": [{"body": "Reply C to confirm, R to reschedule, or 0-10: how likely to recommend us?"},
                          {"body": "Confirm with C (R: another time); and 0-10, would you recommend us?"}],
             "linked_content": {"timeout": 3.0, "on_failure": "skip"}},
    "replies": REPLIES,
}
# (variant, the replies in order): "r" then "c" is a changed mind (counted once, as C); STOP is a keyword
ANSWERS = [("A", ["C"]), ("A", ["confirm"]), ("A", ["r", "c"]), ("A", ["R"]), ("A", ["9"]), ("A", ["10"]),
           ("A", ["3"]), ("B", ["c please"]), ("B", ["8"]), ("B", ["10"]), ("B", ["10"]), ("B", ["STOP"]),
           ("B", ["maybe"])]


async def seed_answers(runtime: Runtime) -> Any:
    """The campaign scheduled, its run 30 minutes before FROZEN with a delivered message to each
    number, and the replies through the Sandbox's inbound door (as `sandbox reply` sends them)."""
    await seed_providers(runtime)
    await seed_segments(runtime)
    view = await create(runtime, DOCUMENT, schedule=True)
    at = FROZEN - timedelta(minutes=30)
    async with runtime.factory() as session, session.begin():
        run = CampaignRun(campaign_id=view.id, number=1, planned_at=at, state="completed", started_at=at,
                          materialized_at=at, finished_at=at, qualified=len(ANSWERS), materialized=len(ANSWERS),
                          suppressed={}, updated_at=at)
        session.add(run)
        await session.flush()
        session.add_all(Message(
            kind="campaign", priority=0, provider_name="sandbox", country="GB", to_number=f"+4474009000{index:02d}",
            body="Reply C to confirm", encoding="GSM-7", segments=1, state="delivered", attempts=1,
            campaign_id=view.id, run_id=run.id, variant=variant, dedupe_key=f"run:{run.id}:profile:{index}",
            created_at=at, updated_at=at, sent_at=at, finished_at=at) for index, (variant, _) in enumerate(ANSWERS))
    for index, (_, texts) in enumerate(ANSWERS):
        for text in texts:
            async with runtime.factory() as session, session.begin():
                await simulate_reply(session, "sandbox", f"+4474009000{index:02d}", text)
    return view


def cells(table: DataTable[Any], column: str) -> list[str]:
    return [str(getattr(cell, "plain", cell)) for cell in table.get_column(column)]


async def test_the_inbox_says_which_campaign_and_option_a_reply_picked(runtime: Runtime) -> None:
    view = await seed_answers(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("8")
        table = app.screen.query_one("#inbox-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 14, what="the replies")
        texts, actions, answers = cells(table, "text"), cells(table, "action"), cells(table, "answers")
        picked = {text: (action, answer.split(" ", 1)[1]) for text, action, answer in zip(texts, actions, answers)}
        arm_a, arm_b = f"{view.code}/A", f"{view.code}/B"
        # the Action column names the option (seen at 80 columns), the Answers column the campaign too
        assert picked["confirm"] == ("option C", f"{arm_a} option C")
        assert picked["c please"] == ("option C", f"{arm_b} option C")
        assert picked["9"] == ("option 9", f"{arm_a} option 9") and picked["8"] == ("option 8", f"{arm_b} option 8")
        assert picked["STOP"][0] == "opt-out" and picked["maybe"][0] == "reply"
        assert "option" not in picked["STOP"][1] and "option" not in picked["maybe"][1]

        # the highlighted reply's line names the option too
        table.move_cursor(row=texts.index("9"))
        detail = app.screen.query_one("#inbox-detail", Static)
        await wait_for(pilot, lambda: f"picked {arm_a} option 9" in str(detail.render()), what="the detail line")

        # the action filter has the campaign options
        choice = app.screen.query_one("#inbox-action", Select)
        assert ("campaign option", "option") in [(str(label), value) for label, value in choice._options]
        choice.value = "option"
        await wait_for(pilot, lambda: table.row_count == 12, what="the options only")
        assert sorted(cells(table, "action")) == sorted(
            ["option C"] * 4 + ["option R"] * 2 + ["option 9", "option 3", "option 8"] + ["option 10"] * 3)


async def test_the_report_shows_the_answers_per_option_and_variant_and_the_nps(runtime: Runtime) -> None:
    await seed_answers(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        page = await open_page(pilot, app)
        report = page.report
        assert report is not None and report.answers is not None
        # each message's last answer: the changed mind counts once, as C; STOP and "maybe" are no answer
        assert report.answers.answers == (("C", 4), ("R", 1))
        assert dict(report.answers.scores) == {**dict.fromkeys(range(11), 0), 3: 1, 8: 1, 9: 1, 10: 3}
        assert (report.answers.total, report.answers.nps) == (11, 50.0)
        block = page.query_one("#report-answers", Static)
        assert block.display
        lines = text_of(page, "#report-answers").splitlines()
        assert lines[0] == "Answers 11 · 84.6% of delivered · each message's last answer"
        assert lines[1].split() == ["C", "█" * 16, "4", "36.4%", "A", "3", "·", "B", "1"]
        assert lines[2].split() == ["R", "████░░░░░░░░░░░░", "1", "9.1%", "A", "1", "·", "B", "0"]
        assert lines[3] == "Scores 0-10 · 6 answers · mean 8.3"
        assert lines[8].split() == [str(score) for score in range(11)]
        assert lines[9].split() == ["0", "0", "0", "1", "0", "0", "0", "0", "1", "1", "3"]
        assert lines[10] == "NPS +50 (promoters 4 · passives 1 · detractors 1)"
        assert lines[11].split() == ["by", "variant:", "A", "+33", "·", "B", "+67"]
        assert max(map(len, lines)) <= 76  # fits the page at 80 columns
        page.query_one("#report-answers").scroll_visible(animate=False)
        await wait_for(pilot, lambda: "NPS +50 (promoters 4 · passives 1 · detractors 1)" in screen_text(pilot),
                       what="the NPS on the screen")
