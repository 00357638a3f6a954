"""The wizard's A/B test at 80×24: on the What step a campaign gets variant B (a copy of A to
edit), each variant keeps its own body and preview as the operator switches between them, the
splits and the control group are checked as typed (the error names the field), the conversion
goal is saved into the document, the Test step sends the chosen variant through the sandbox,
and the Summary lists the arms and the goal. A refused schedule goes back to the variant with
the problem."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot
from textual.widgets import Button, Input, Select, Static, TextArea

from smsconsole.app import SmsConsoleApp
from smsconsole.runtime import Runtime
from smsconsole.screens.campaigns.screen import CampaignsScreen
from smsconsole.screens.campaigns.steps_send import SendTestStep, SummaryStep
from smsconsole.screens.campaigns.steps_what import WhatStep
from smsconsole.screens.campaigns.steps_when import WhenStep
from smsconsole.screens.campaigns.steps_who import WhoStep
from smsconsole.screens.dialogs.confirm import ConfirmDialog
from smsconsole.services.campaigns.arms import Goal
from smsconsole.services.campaigns.definition import parse_document
from smsconsole.services.messages import recent_messages
from tests.tui.seed import seed_providers
from tests.tui.segment_seed import seed_audience, seed_segments
from tests.tui.support import make_app, notifications, type_text, wait_for
from tests.tui.test_campaigns_wizard import (
    SIZE,
    campaigns,
    fill_what,
    open_wizard,
    step,
)

A_BODY = "Hi {{ profile.name }}, 20% off today"
B_BODY = "{{ profile.name }}: your 20% code is SPRING"


async def at_what(pilot: Pilot[Any], app: SmsConsoleApp, name: str, body: str = A_BODY) -> WhatStep:
    """A new campaign's What step, the route the sandbox and A's body written."""
    await open_wizard(pilot, app)
    await type_text(pilot, name)
    await step(pilot, app, WhenStep)
    await step(pilot, app, WhoStep)
    return await fill_what(pilot, app, body)


def text(screen: Any, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


def labels(what: WhatStep) -> list[str]:
    return [str(button.label) for button in what.query(".what-variant").results(Button) if button.display]


async def add_b(pilot: Pilot[Any], what: WhatStep, body: str = B_BODY) -> None:
    what.query_one("#what-add-variant", Button).press()
    await wait_for(pilot, lambda: labels(what) == ["A 50%", "B 50%"], what="variant B")
    area = what.query_one("#input-what-body", TextArea)
    assert area.text == A_BODY  # B starts as a copy of the variant shown
    area.text = body
    await pilot.pause()


async def show(pilot: Pilot[Any], what: WhatStep, letter: str) -> None:
    what.query_one(f"#what-variant-{letter.lower()}", Button).press()
    await wait_for(pilot, lambda: what.current == "ABCDE".index(letter), what=f"variant {letter} shown")
    await pilot.pause()


async def test_add_variant_b_and_switching_keeps_each_body_and_preview(runtime: Runtime) -> None:
    await seed_providers(runtime)
    await seed_audience(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        what = await at_what(pilot, app, "AB")
        # a single-variant campaign: two buttons, no variant row
        assert what.query_one("#what-arms-add").display and not what.query_one("#what-arms").display
        await add_b(pilot, what)
        assert what.query_one("#what-arms").display and not what.query_one("#what-arms-add").display
        assert str(what.query_one("#field-what-body .form-field-label").render()).startswith("Message B")
        preview = what.query_one("#what-preview", Static)
        await wait_for(pilot, lambda: "your 20% code is SPRING" in str(preview.render()), what="B's preview")
        await show(pilot, what, "A")
        assert what.query_one("#input-what-body", TextArea).text == A_BODY
        await wait_for(pilot, lambda: "20% off today" in str(preview.render()), what="A's preview")
        await show(pilot, what, "B")
        assert what.query_one("#input-what-body", TextArea).text == B_BODY
        what.collect()
        document = what.state.document
        assert "body" not in document["what"]
        assert [(v["name"], v["body"]) for v in document["what"]["variants"]] == [("A", A_BODY), ("B", B_BODY)]
        parsed, _ = parse_document(document)
        assert [(v.name, v.split) for v in parsed.what.arms] == [("A", 50.0), ("B", 50.0)]

        # removing B asks first, then the campaign is a single-variant one again
        what.query_one("#what-variant-remove", Button).press()
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question")
        await pilot.press("y")
        await wait_for(pilot, lambda: "variants" not in what.state.document["what"], what="B removed")
        await pilot.pause()
        assert what.state.document["what"]["body"] == A_BODY
        assert what.query_one("#input-what-body", TextArea).text == A_BODY
        assert what.query_one("#what-arms-add").display and not what.query_one("#what-arms").display


async def test_splits_that_do_not_add_up_are_named_and_keep_the_step(runtime: Runtime) -> None:
    await seed_providers(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        what = await at_what(pilot, app, "Splits")
        await add_b(pilot, what)
        what.query_one("#input-what-split", Input).value = "40"  # B
        await show(pilot, what, "A")
        what.query_one("#input-what-split", Input).value = "50"  # A
        what.query_one("#input-what-control", Input).value = "20"
        error = what.query_one("#field-what-variants").error
        await wait_for(pilot, lambda: error.reason is not None, what="the splits' error, as typed")
        assert error.message == "Variants: the splits (90%) and the control (20%) must add up to 100%"
        assert labels(what) == ["A 50%", "B 40%"]
        await pilot.press("ctrl+f")  # refused: still on What, the field named
        await wait_for(pilot, lambda: any("Correct the fields" in n for n in notifications(app)), what="refused")
        assert isinstance(app.screen, WhatStep)
        assert error.message == "Variants: the splits (90%) and the control (20%) must add up to 100%"

        what.query_one("#input-what-split", Input).value = "70"  # A 70 + B 40: nothing left
        what.query_one("#input-what-control", Input).value = ""
        await wait_for(pilot, lambda: "(110%)" in (error.message or ""), what="the new sum")
        what.query_one("#input-what-split", Input).value = "0"
        split_error = what.query_one(".-split").error
        await wait_for(pilot, lambda: split_error.reason is not None, what="A's split refused")
        assert split_error.message == "Split % of A must be a percentage above 0 and at most 100"

        what.query_one("#input-what-split", Input).value = "45"
        what.query_one("#input-what-control", Input).value = "15"
        await wait_for(pilot, lambda: error.reason is None and split_error.reason is None, what="errors gone")
        assert labels(what) == ["A 45%", "B 40%"]
        await step(pilot, app, SendTestStep)
        document = app.screen.state.document
        assert [v.get("split") for v in document["what"]["variants"]] == [45, 40] and document["what"]["control"] == 15


async def test_a_control_group_without_variants(runtime: Runtime) -> None:
    await seed_providers(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        what = await at_what(pilot, app, "Held out")
        what.query_one("#what-add-control", Button).press()
        control = what.query_one("#input-what-control", Input)
        await wait_for(pilot, lambda: app.focused is control, what="the control's field")
        assert control.value == "10" and what.state.document["what"]["control"] == 10
        assert "variants" not in what.state.document["what"]  # still the single-variant form
        assert labels(what) == ["A 90%"]
        assert not what.query_one(".-split").display and not what.query_one("#what-variant-remove").display
        control.value = "60"
        error = what.query_one(".-control").error
        await wait_for(pilot, lambda: error.reason is not None, what="the control refused")
        assert error.message == "Control group % must be a percentage from 0 to 50 (the share held out, never sent)"
        control.value = "20"
        await wait_for(pilot, lambda: error.reason is None, what="the control taken")
        assert labels(what) == ["A 80%"]
        parsed, problems = parse_document(what.state.document)
        assert problems == [] and parsed.what.control == 20 and [v.split for v in parsed.what.arms] == [80]


async def test_the_goal_is_saved_into_the_document(runtime: Runtime) -> None:
    await seed_providers(runtime)
    await seed_audience(runtime)  # order events with a numeric amount
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        what = await at_what(pilot, app, "Goal")
        words = what.query_one("#goal-words", Static)
        assert "No goal" in str(words.render())
        what.query_one("#input-goal-where", Input).value = "amount >"
        what.query_one("#input-goal-window", Input).value = "2d"
        what.query_one("#input-goal-value", Input).value = "amount"
        await pilot.pause()
        await pilot.press("ctrl+f")  # no event, a condition that does not read: both named
        event_error = what.query_one("#field-goal-event").error
        await wait_for(pilot, lambda: event_error.reason is not None, what="the goal's errors")
        assert event_error.message == "Event: name the conversion event (e.g. order)"
        where_error = what.query_one("#field-goal-where").error
        assert (where_error.message or "").startswith("Its conditions: condition 1: 'amount >'")
        assert isinstance(app.screen, WhatStep)

        # the known events are suggested as the event is typed, and their numeric properties as the value
        event = what.query_one("#input-goal-event", Input)
        event.focus()
        await type_text(pilot, "or")
        await wait_for(pilot, lambda: event._suggestion == "order", what="the event suggested")
        await pilot.press("right")
        assert event.value == "order"
        value = what.query_one("#input-goal-value", Input)
        value.value = ""
        value.focus()
        await type_text(pilot, "a")
        await wait_for(pilot, lambda: value._suggestion == "amount", what="the numeric property suggested")
        await pilot.press("right")
        assert value.value == "amount"
        what.query_one("#input-goal-where", Input).value = "amount > 0, currency = GBP"
        await wait_for(pilot, lambda: "GBP" in str(words.render()), what="the goal in words")
        assert str(words.render()) == ('Converts: order (amount > 0 and currency is "GBP") within 2 days of the '
                                       "message; revenue: its amount")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "Draft saved" in [n.title for n in app._notifications], what="the save")
    [view] = await campaigns(runtime)
    assert view.document["goal"] == {"event": "order", "window": "2d", "value": "amount",
                                     "where": [{"property": "amount", "op": "greater", "value": 0},
                                               {"property": "currency", "op": "equals", "value": "GBP"}]}
    parsed, _ = parse_document(view.document)
    assert parsed.goal == Goal("order", ({"property": "amount", "op": "greater", "value": 0},
                                         {"property": "currency", "op": "equals", "value": "GBP"}), 2880, "amount")


async def test_the_test_send_of_variant_b_goes_out_with_b_body(runtime: Runtime) -> None:
    await seed_providers(runtime)
    await seed_audience(runtime)
    app = make_app(runtime.config, runtime, run_engine=True)
    async with app.run_test(size=SIZE) as pilot:
        what = await at_what(pilot, app, "Test B")
        await add_b(pilot, what)
        test = await step(pilot, app, SendTestStep)
        choice = test.query_one("#input-test-variant", Select)
        assert choice.value == "A" and [value for _, value in choice._options] == ["A", "B"]
        choice.value = "B"
        test.query_one("#input-test-to", Input).value = "+14155550123"
        test.query_one("#test-send", Button).press()
        result = test.query_one("#test-result", Static)
        await wait_for(pilot, lambda: str(result.render()).endswith(": sent"), what="the test sent", timeout=15)
        assert "(variant B) to +14155550123" in str(result.render())
        assert "your 20% code is SPRING" in text(test, "#test-preview")
    async with runtime.factory() as session:
        [sent] = await recent_messages(session, kind="test")
    assert (sent.to_number, sent.provider_name, sent.state) == ("+14155550123", "sandbox", "sent")
    assert sent.body.endswith(": your 20% code is SPRING") and "off today" not in sent.body


async def test_the_summary_lists_the_arms_each_message_and_the_goal(runtime: Runtime) -> None:
    await seed_providers(runtime)
    await seed_audience(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        what = await at_what(pilot, app, "Summary")
        await add_b(pilot, what)
        what.query_one("#input-what-control", Input).value = "10"
        what.query_one("#input-goal-event", Input).value = "order"
        what.query_one("#input-goal-value", Input).value = "amount"
        await pilot.pause()
        await step(pilot, app, SendTestStep)
        summary = await step(pilot, app, SummaryStep)
        figures = summary.query_one("#summary-preview", Static)
        await wait_for(pilot, lambda: "Message B" in str(figures.render()), what="each variant's preview")
        shown = str(figures.render())
        assert shown.startswith("Arms A 45% · B 45% · control 10%\nMessage A\n")
        assert "20% off today" in shown and "your 20% code is SPRING" in shown
        choices = text(summary, "#summary-choices")
        assert ("  Arms: A 45% · B 45% · control 10%\n"
                f"  Message A: {A_BODY}\n"
                f"  Message B: {B_BODY}\n"
                "  Control group: 10% held out: qualified and recorded, never sent\n") in choices
        assert ("Goal\n  Converts: order within 1 day of the message (for control: of the would-be send time)\n"
                "  Revenue: the sum of each conversion's amount") in choices


async def test_a_refused_schedule_shows_the_variant_with_the_problem(runtime: Runtime) -> None:
    await seed_providers(runtime)
    await seed_segments(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await open_wizard(pilot, app)
        await type_text(pilot, "Empty A")
        await step(pilot, app, WhenStep)
        who = await step(pilot, app, WhoStep)
        segment = who.query_one("#input-who-segment", Select)
        await wait_for(pilot, lambda: len(segment._options) > 1, what="the segments")
        segment.value = "gold-plan"
        what = await fill_what(pilot, app, A_BODY)
        await add_b(pilot, what)
        await show(pilot, what, "A")
        what.query_one("#input-what-body", TextArea).text = ""  # A left empty
        await pilot.pause()
        await show(pilot, what, "B")
        await step(pilot, app, SendTestStep)
        await step(pilot, app, SummaryStep)
        await pilot.press("ctrl+f")  # schedule: refused, back on What showing A
        await wait_for(pilot, lambda: isinstance(app.screen, WhatStep), what="back on What")
        error = what.query_one("#field-what-body").error
        await wait_for(pilot, lambda: error.reason is not None, what="A's body named")
        assert what.current == 0 and what.query_one("#input-what-body", TextArea).text == ""
        assert error.message == "Message A: write the message"
        assert app.focused is what.query_one("#input-what-body", TextArea)
        assert any("what.variants.1.body" in n for n in notifications(app))
        what.query_one("#input-what-body", TextArea).text = "A again"
        await pilot.pause()
        await step(pilot, app, SendTestStep)
        await step(pilot, app, SummaryStep)
        await pilot.press("ctrl+f")
        await wait_for(pilot, lambda: isinstance(app.screen, CampaignsScreen), what="scheduled")
    [view] = await campaigns(runtime)
    assert view.state == "scheduled"
    assert [v["body"] for v in view.document["what"]["variants"]] == ["A again", B_BODY]


async def test_each_variant_has_its_own_dlt_fields(runtime: Runtime) -> None:
    from tests.tui.seed import add_provider

    await seed_providers(runtime)
    await add_provider(runtime, "msg91", "india", auth_key="a" * 24, sender="ACMEIN")
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        what = await at_what(pilot, app, "DLT")
        dlt = what.query_one("#what-dlt")
        what.query_one("#input-what-route", Select).value = "provider:india"
        await wait_for(pilot, lambda: dlt.display, what="the DLT fields")
        template = what.query_one("#input-dlt-template-id", Input)
        template.value = "1107001"
        await pilot.pause()
        await add_b(pilot, what)
        await wait_for(pilot, lambda: dlt.display, what="B's DLT fields")
        assert template.value == "1107001"  # a copy of A's, to change
        template.value = "1107002"
        await pilot.pause()
        await show(pilot, what, "A")
        await wait_for(pilot, lambda: dlt.display, what="A's DLT fields")
        assert template.value == "1107001"
        what.collect()
        assert [v["dlt"] for v in what.state.document["what"]["variants"]] == [
            {"dlt_template_id": "1107001"}, {"dlt_template_id": "1107002"}]
        assert what.query_one("#field-what-dlt-dlt-template-id").field_name == "what.variants.1.dlt.dlt_template_id"
        what.query_one("#wizard-form").scroll_to_widget(template, animate=False)
        await pilot.pause(0.3)
        assert template.region.height == 1  # not squeezed out by the longer form
