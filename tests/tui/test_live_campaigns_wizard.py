"""The wizard for live campaigns at 80×24: the type step offers Single action, Inaction within time
and On a date; When is the span it is live; Who is the trigger with the optional filter and the
limits; every bad field is named at the field with its reason; the Summary says the trigger in
words; the document saved is the campaign file's mapping."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot
from textual.widgets import Checkbox, Input, RadioButton, Select, Static

from smsconsole.app import SmsConsoleApp
from smsconsole.runtime import Runtime
from smsconsole.screens.campaigns.screen import CampaignsScreen
from smsconsole.screens.campaigns.steps_send import SendTestStep, SummaryStep
from smsconsole.screens.campaigns.steps_trigger import TriggerStep
from smsconsole.screens.campaigns.steps_what import WhatStep
from smsconsole.screens.campaigns.steps_when import TypeStep, WhenStep
from smsconsole.screens.campaigns.steps_who import WhoStep
from smsconsole.services.campaigns import crud
from tests.tui.live_campaign_seed import CART, TRIP, create, seed_catalog
from tests.tui.seed import seed_providers
from tests.tui.segment_seed import seed_segments
from tests.tui.support import make_app, notifications, type_text, wait_for
from tests.tui.test_campaigns_wizard import fill_what, open_wizard, step

SIZE = (80, 24)
SENTENCE = "When someone does add_to_cart (amount > 100) and does not do checkout within 5 minutes"


def field_error(screen: Any, name: str) -> str | None:
    """The reason shown under the field named `name` (the document's dotted path), or None."""
    error = screen.query_one(f"#field-{name.replace('.', '-').replace('_', '-')}").error
    return error.message if error.reason is not None else None


async def new_live(pilot: Pilot[Any], app: SmsConsoleApp, name: str, kind: str) -> TriggerStep:
    first = await open_wizard(pilot, app)
    await type_text(pilot, name)
    first.query_one(f"#type-{kind}", RadioButton).value = True
    await step(pilot, app, WhenStep)
    return await step(pilot, app, TriggerStep)


async def test_the_type_step_offers_the_live_types_and_who_becomes_the_trigger(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        first = await open_wizard(pilot, app)
        labels = [str(button.label) for button in first.query(RadioButton)]
        assert [label.split(":")[0] for label in labels] == [
            "One time", "Multiple dates", "Recurring", "Single action", "Inaction within time", "On a date"]
        await type_text(pilot, "Welcome")
        first.query_one("#type-action", RadioButton).value = True
        when = await step(pilot, app, WhenStep)
        assert when.query("#input-when-start") and not when.query("#when-at-choice")
        assert not when.query("#input-when-user-tz")  # a time of day only matters for On a date
        who = await step(pilot, app, TriggerStep)
        assert who.query("#input-trigger-delay") and not who.query("#input-trigger-within")
        await step(pilot, app, WhenStep, "escape")
        await step(pilot, app, TypeStep, "escape")
        app.screen.query_one("#type-one_time", RadioButton).value = True
        await step(pilot, app, WhenStep)
        await step(pilot, app, WhoStep)  # a scheduled campaign's Who is its segment again
        assert "trigger" not in app.screen.state.document["who"]


async def test_an_abandoned_cart_campaign_walks_to_the_summary_in_words_and_schedules(runtime: Runtime) -> None:
    await seed_providers(runtime)
    await seed_segments(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        first = await open_wizard(pilot, app)
        await type_text(pilot, "Abandoned cart")
        first.query_one("#type-inaction", RadioButton).value = True
        when = await step(pilot, app, WhenStep)
        when.query_one("#input-when-timezone", Input).value = "Europe/London"
        when.query_one("#input-when-start", Input).value = "2026-12-01 09:00"
        await pilot.pause()
        span = when.query_one("#when-next-runs", Static)
        await wait_for(pilot, lambda: "Live from 2026-12-01 09:00" in str(span.render()), what="the span")
        who = await step(pilot, app, TriggerStep)
        assert app.focused is who.query_one("#input-trigger-event", Input)
        await type_text(pilot, "add_to_cart")
        who.query_one("#input-trigger-where", Input).value = "amount > 100"
        who.query_one("#input-trigger-cancel", Input).value = "checkout"
        who.query_one("#input-trigger-within", Input).value = "5m"
        who.query_one("#input-trigger-reeligible", Select).value = "after_days"
        await pilot.pause()
        assert who.query_one("#field-who-trigger-reeligible-days").display
        who.query_one("#input-trigger-reeligible-days", Input).value = "7"
        segment = who.query_one("#input-who-segment", Select)
        await wait_for(pilot, lambda: len(segment._options) > 1, what="the segments")
        segment.value = "gold-plan"
        who.query_one("#input-who-daily-limit", Input).value = "500"
        await pilot.pause()
        words = str(who.query_one("#trigger-words", Static).render())
        assert SENTENCE in words and "again after 7 days" in words
        await fill_what(pilot, app, "Hi {{ profile.name }}, your cart is waiting")
        await step(pilot, app, SendTestStep)
        summary = await step(pilot, app, SummaryStep)
        figures = summary.query_one("#summary-estimate", Static)
        await wait_for(pilot, lambda: "Trigger" in str(figures.render()), what="the trigger")
        assert SENTENCE in str(figures.render())
        choices = str(summary.query_one("#summary-choices", Static).render())
        assert "Live from 2026-12-01 09:00 until stopped or the target limit is reached (Europe/London)" in choices
        assert "Only people in segment gold-plan" in choices and "At most 500 messages a day" in choices
        runs = summary.query_one("#summary-runs", Static)
        await wait_for(pilot, lambda: "Live from" in str(runs.render()), what="the span")
        await pilot.press("ctrl+f")  # refused: the catalog knows no property amount of add_to_cart
        await wait_for(pilot, lambda: isinstance(app.screen, TriggerStep), what="back on the trigger")
        who = app.screen
        await wait_for(pilot, lambda: field_error(who, "who.trigger.where") is not None, what="the field's error")
        assert "unknown property of event 'add_to_cart' 'amount'" in (field_error(who, "who.trigger.where") or "")
        await seed_catalog(runtime)
        await step(pilot, app, WhatStep)
        await step(pilot, app, SendTestStep)
        summary = await step(pilot, app, SummaryStep)
        await pilot.press("ctrl+f")  # refused by the preflight: a promotional live campaign sends at any hour
        error = summary.query_one("#wizard-error")
        await wait_for(pilot, lambda: "preflight: IN" in str(error.render()), what="the preflight's refusal")
        assert "outside the promotional window 09:00–21:00" in str(error.render())
        assert isinstance(app.screen, SummaryStep)
        for kind in (SendTestStep, WhatStep, TriggerStep, WhenStep):
            await step(pilot, app, kind, "escape")
        when = app.screen
        when.query_one("#input-when-dnd", Checkbox).value = True
        await pilot.pause()
        when.query_one("#input-dnd-start", Input).value = "21:00"
        when.query_one("#input-dnd-end", Input).value = "09:00"
        for kind in (TriggerStep, WhatStep, SendTestStep, SummaryStep):
            await step(pilot, app, kind)
        await pilot.press("ctrl+f")
        await wait_for(pilot, lambda: isinstance(app.screen, CampaignsScreen), what="back on the list")
        async with runtime.factory() as session:
            views = await crud.list_campaigns(session)
        assert [(view.name, view.type, view.state) for view in views] == [("Abandoned cart", "inaction", "scheduled")]
        assert views[0].document["who"]["trigger"] == {
            "event": "add_to_cart", "where": [{"property": "amount", "op": "greater", "value": 100}],
            "cancel_event": "checkout", "cancel_where": [], "within_minutes": 5, "reeligible": "after_days",
            "reeligible_days": 7}
        assert views[0].document["when"]["start"] == "2026-12-01 09:00"
        assert views[0].document["when"]["dnd"] == {"start": "21:00", "end": "09:00", "action": "delay"}
        assert "run_limit" not in views[0].document["who"] and "safety_limit" not in views[0].document["who"]


async def test_every_bad_trigger_field_is_named_at_the_field_with_its_reason(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        who = await new_live(pilot, app, "Cart", "inaction")
        for selector, value in (("#input-trigger-event", "add_to_cart"), ("#input-trigger-where", "amount >, vip"),
                                ("#input-trigger-cancel-where", "total 5"), ("#input-trigger-within", "5x"),
                                ("#input-who-reach-percent", "150"), ("#input-who-daily-limit", "many")):
            who.query_one(selector, Input).value = value
        who.query_one("#input-trigger-reeligible", Select).value = "after_days"
        await pilot.pause()
        who.query_one("#input-trigger-reeligible-days", Input).value = "0"
        await pilot.pause()
        await pilot.press("ctrl+f")
        await wait_for(pilot, lambda: field_error(who, "who.trigger.within_minutes") is not None, what="the errors")
        assert isinstance(app.screen, TriggerStep)  # it does not go on
        where = field_error(who, "who.trigger.where") or ""
        assert "condition 1: 'amount >': say the value after '>'" in where
        assert "condition 2: 'vip': write conditions as property op value" in where
        assert "condition 1: 'total 5'" in (field_error(who, "who.trigger.cancel_where") or "")
        assert "a duration such as 30m, 2h or 1d" in (field_error(who, "who.trigger.within_minutes") or "")
        assert "between 1 and 3,650" in (field_error(who, "who.trigger.reeligible_days") or "")
        assert "at most 100" in (field_error(who, "who.reach_percent") or "")
        assert "whole number" in (field_error(who, "who.daily_limit") or "")
        assert app.focused is who.query_one("#input-trigger-where", Input)  # the first field named
        assert "some fields do not read yet" in str(who.query_one("#trigger-words", Static).render())
        who.query_one("#input-trigger-where", Input).value = "amount > 100, vip = true"
        who.query_one("#input-trigger-cancel-where", Input).value = ""
        who.query_one("#input-trigger-within", Input).value = "2h"
        who.query_one("#input-trigger-reeligible-days", Input).value = "7"
        who.query_one("#input-who-reach-percent", Input).value = "50"
        who.query_one("#input-who-daily-limit", Input).value = ""
        await pilot.pause()
        await step(pilot, app, WhatStep)
        trigger = who.state.document["who"]["trigger"]
        assert trigger["where"] == [{"property": "amount", "op": "greater", "value": 100},
                                    {"property": "vip", "op": "equals", "value": True}]
        assert trigger["within_minutes"] == 120


async def test_a_date_campaign_asks_for_the_property_offset_and_time(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        first = await open_wizard(pilot, app)
        await type_text(pilot, "Trip")
        first.query_one("#type-date", RadioButton).value = True
        when = await step(pilot, app, WhenStep)
        when.query_one("#input-when-user-tz", Checkbox).value = True
        await pilot.pause()
        assert not when.query_one("#field-when-late").display  # no 'time passed' choice for a live campaign
        who = await step(pilot, app, TriggerStep)
        assert app.focused is who.query_one("#input-trigger-property", Input)
        await type_text(pilot, "travel_date")
        who.query_one("#input-trigger-offset", Input).value = "tomorrow"
        who.query_one("#input-trigger-at", Input).value = "25:00"
        await pilot.pause()
        await pilot.press("ctrl+f")
        await wait_for(pilot, lambda: field_error(who, "who.trigger.at") is not None, what="the errors")
        assert "whole number of days" in (field_error(who, "who.trigger.offset_days") or "")
        assert "HH:MM" in (field_error(who, "who.trigger.at") or "")
        who.query_one("#input-trigger-offset", Input).value = "-1"
        who.query_one("#input-trigger-at", Input).value = "09:00"
        await pilot.pause()
        assert "1 day before each person's travel_date, at 09:00 their local time" in str(
            who.query_one("#trigger-words", Static).render())
        await step(pilot, app, WhatStep)
        assert who.state.document["who"]["trigger"]["offset_days"] == -1


async def test_scheduling_without_a_trigger_event_goes_back_to_the_trigger_step(runtime: Runtime) -> None:
    await seed_providers(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await new_live(pilot, app, "No event", "action")
        await fill_what(pilot, app, "Thanks!")
        await step(pilot, app, SendTestStep)
        await step(pilot, app, SummaryStep)
        await pilot.press("ctrl+f")
        await wait_for(pilot, lambda: isinstance(app.screen, TriggerStep), what="back on the trigger")
        who = app.screen
        await wait_for(pilot, lambda: field_error(who, "who.trigger.event") is not None, what="the field's error")
        assert "choose the event that triggers the campaign" in (field_error(who, "who.trigger.event") or "")
        assert any("who.trigger.event" in text for text in notifications(app))
        assert app.focused is who.query_one("#input-trigger-event", Input)


async def test_editing_a_live_campaign_shows_its_trigger_as_written(runtime: Runtime) -> None:
    await seed_providers(runtime)
    await seed_segments(runtime)
    await create(runtime, CART)
    await create(runtime, TRIP)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("0")
        await wait_for(pilot, lambda: isinstance(app.screen, CampaignsScreen)
                       and app.screen.table.row_count == 2, what="the campaigns")
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, TypeStep), what="the wizard")
        assert app.screen.query_one("#type-inaction", RadioButton).value
        when = await step(pilot, app, WhenStep)
        assert when.query_one("#input-when-end", Input).value == "2026-12-31 00:00"
        who = await step(pilot, app, TriggerStep)
        assert who.query_one("#input-trigger-where", Input).value == "amount > 100"
        assert who.query_one("#input-trigger-within", Input).value == "5m"
        assert who.query_one("#input-trigger-reeligible-days", Input).value == "7"
        segment = who.query_one("#input-who-segment", Select)
        await wait_for(pilot, lambda: segment.value == "gold-plan", what="the filter")
        assert SENTENCE in str(who.query_one("#trigger-words", Static).render())


async def test_what_and_test_render_the_body_with_a_sample_event(runtime: Runtime) -> None:
    from smsconsole.services.messages import recent_messages

    await seed_providers(runtime)
    await seed_catalog(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        who = await new_live(pilot, app, "Cart", "inaction")
        who.query_one("#input-trigger-event", Input).value = "add_to_cart"
        await pilot.pause()
        what = await fill_what(pilot, app, "Your cart of {{ event.amount }} is waiting")
        assert "event.properties.amount" in what.known  # the @ menu offers the trigger event's properties
        shown = what.query_one("#what-preview", Static)
        await wait_for(pilot, lambda: "none: no add_to_cart event yet" in str(shown.render()), what="no event yet")
        what.query_one("#input-what-event", Input).value = "120"
        await wait_for(pilot, lambda: field_error(what, "event") is not None, what="the event's error")
        assert "must be a JSON object of the event's properties" in (field_error(what, "event") or "")
        what.query_one("#input-what-event", Input).value = '{"amount": 120}'
        await wait_for(pilot, lambda: "Your cart of 120 is waiting" in str(shown.render()), what="the preview")
        assert field_error(what, "event") is None and "with event: as given" in str(shown.render())
        test = await step(pilot, app, SendTestStep)
        test.query_one("#input-test-event", Input).value = '{"amount": 99.5}'
        test.query_one("#input-test-to", Input).value = "+14155550123"
        test.query_one("#test-send").press()
        result = test.query_one("#test-result", Static)
        await wait_for(pilot, lambda: "+14155550123" in str(result.render()), what="the queued test")
        async with runtime.factory() as session:
            sent = await recent_messages(session, kind="test")
        assert [view.body for view in sent] == ["Your cart of 99.5 is waiting"]
