"""The campaign wizard at 80×24: type → When → Who → What → Test → Summary, back and forth with
everything kept; a draft saved from any step; a refused schedule names the field and goes back to
its step; a schedule that passes shows in the list."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input, RadioButton, Select, Static, TextArea

from smsconsole.app import SmsConsoleApp
from smsconsole.runtime import Runtime
from smsconsole.screens.campaigns.screen import CampaignsScreen
from smsconsole.screens.campaigns.steps_send import SummaryStep, SendTestStep
from smsconsole.screens.campaigns.steps_what import WhatStep
from smsconsole.screens.campaigns.steps_when import TypeStep, WhenStep
from smsconsole.screens.campaigns.steps_who import WhoStep
from smsconsole.screens.campaigns.wizard import WizardStep
from smsconsole.services.campaigns import crud
from tests.tui.seed import seed_providers
from tests.tui.segment_seed import seed_audience, seed_segments
from tests.tui.support import make_app, notifications, type_text, wait_for

SIZE = (80, 24)


async def open_wizard(pilot: Pilot[Any], app: SmsConsoleApp) -> TypeStep:
    await pilot.press("0")
    await wait_for(pilot, lambda: isinstance(app.screen, CampaignsScreen), what="the campaigns")
    await pilot.press("a")
    await wait_for(pilot, lambda: isinstance(app.screen, TypeStep), what="the type step")
    await pilot.pause()
    assert isinstance(app.screen, TypeStep)
    return app.screen


async def step(pilot: Pilot[Any], app: SmsConsoleApp, kind: type[WizardStep], key: str = "ctrl+f") -> Any:
    await pilot.press(key)
    await wait_for(pilot, lambda: isinstance(app.screen, kind), what=kind.__name__)
    await pilot.pause()
    return app.screen


async def campaigns(runtime: Runtime) -> list[Any]:
    async with runtime.factory() as session:
        return await crud.list_campaigns(session)


async def test_walk_every_step_and_back_keeping_what_was_typed(runtime: Runtime) -> None:
    await seed_providers(runtime)
    await seed_audience(runtime)
    await seed_segments(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        first = await open_wizard(pilot, app)
        first.query_one("#input-campaign-name", Input).value = "Spring sale"
        first.query_one("#type-recurring", RadioButton).value = True
        when = await step(pilot, app, WhenStep)
        when.query_one("#input-when-every", Select).value = "month"
        when.query_one("#input-when-time", Input).value = "10:00"
        when.query_one("#input-when-day", Input).value = "31"
        await pilot.pause()
        who = await step(pilot, app, WhoStep)
        back = await step(pilot, app, WhenStep, "escape")
        assert back.query_one("#input-when-day", Input).value == "31"
        assert app.screen.query_one("#input-when-every", Select).value == "month"
        await step(pilot, app, WhoStep)
        what = await step(pilot, app, WhatStep)
        await step(pilot, app, SendTestStep)
        summary = await step(pilot, app, SummaryStep)
        text = str(summary.query_one("#summary-choices", Static).render())
        assert "Spring sale" in text and "every month on the 31st" in text
        assert who is not None and what is not None


async def fill_what(pilot: Pilot[Any], app: SmsConsoleApp, body: str) -> WhatStep:
    what = await step(pilot, app, WhatStep)
    route = what.query_one("#input-what-route", Select)
    await wait_for(pilot, lambda: any(value == "provider:sandbox" for _, value in route._options), what="the routes")
    route.value = "provider:sandbox"
    what.query_one("#input-what-body", TextArea).text = body
    await pilot.pause()
    return what


async def test_a_refused_schedule_names_the_field_on_its_step_then_schedules(runtime: Runtime) -> None:
    await seed_providers(runtime)
    await seed_segments(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        first = await open_wizard(pilot, app)
        await type_text(pilot, "Monthly")
        assert first.query_one("#input-campaign-name", Input).value == "Monthly"
        first.query_one("#type-recurring", RadioButton).value = True
        when = await step(pilot, app, WhenStep)
        when.query_one("#input-when-every", Select).value = "month"
        when.query_one("#input-when-time", Input).value = "10:00"  # no day of the month
        await pilot.pause()
        who = await step(pilot, app, WhoStep)
        segment = who.query_one("#input-who-segment", Select)
        await wait_for(pilot, lambda: len(segment._options) > 1, what="the segments")
        segment.value = "gold-plan"
        await fill_what(pilot, app, "Hi {{ profile.name }}")
        await step(pilot, app, SendTestStep)
        summary = await step(pilot, app, SummaryStep)
        assert str(summary.query_one("#wizard-next").label) == "Schedule"
        await pilot.press("ctrl+f")  # schedule: refused, back on When with the field named
        await wait_for(pilot, lambda: isinstance(app.screen, WhenStep), what="back on When")
        when = app.screen
        error = when.query_one("#field-when-recurrence-day-of-month").error
        await wait_for(pilot, lambda: error.reason is not None, what="the field's error")
        assert "day of the month" in (error.message or "")
        assert app.focused is when.query_one("#input-when-day", Input)
        assert any("when.recurrence.day_of_month" in text for text in notifications(app))
        views = await campaigns(runtime)
        assert [(view.name, view.state) for view in views] == [("Monthly", "draft")]  # saved as a draft
        await type_text(pilot, "31")
        await step(pilot, app, WhoStep)
        await step(pilot, app, WhatStep)
        await step(pilot, app, SendTestStep)
        await step(pilot, app, SummaryStep)
        await pilot.press("ctrl+f")
        await wait_for(pilot, lambda: isinstance(app.screen, CampaignsScreen), what="back on the list")
        views = await campaigns(runtime)
        assert [(view.name, view.state) for view in views] == [("Monthly", "scheduled")]
        assert views[0].document["when"]["recurrence"]["day_of_month"] == 31
        assert views[0].next_run_at is not None


async def test_save_a_draft_from_a_step_and_leave(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await open_wizard(pilot, app)
        await type_text(pilot, "Later")
        when = await step(pilot, app, WhenStep)
        when.query_one("#when-later", RadioButton).value = True
        await pilot.pause()
        when.query_one("#input-when-at", Input).value = "2026-12-24 10:00"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "Draft saved" in [n.title for n in app._notifications], what="the save")
        views = await campaigns(runtime)
        assert [(view.code, view.name, view.state) for view in views] == [("C1", "Later", "draft")]
        assert views[0].document["when"]["at"] == "2026-12-24 10:00"
        assert "C1:" in str(app.screen.query_one("#wizard-steps", Static).render())
        await pilot.press("escape")  # back to Type, then out: nothing unsaved, no question
        await wait_for(pilot, lambda: isinstance(app.screen, TypeStep), what="the type step")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, CampaignsScreen), what="the list")


async def test_escape_from_a_changed_first_step_asks_first(runtime: Runtime) -> None:
    from smsconsole.screens.dialogs.confirm import ConfirmDialog

    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await open_wizard(pilot, app)
        await type_text(pilot, "Oops")
        await pilot.press("escape")  # leaves the name field
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question")
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, TypeStep), what="still in the wizard")
        assert app.screen.query_one("#input-campaign-name", Input).value == "Oops"
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question")
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, CampaignsScreen), what="the list")
        assert await campaigns(runtime) == []


async def test_at_offers_the_properties_and_the_preview_follows_the_body(runtime: Runtime) -> None:
    from smsconsole.screens.campaigns.property_picker import PropertyPickerDialog

    await seed_providers(runtime)
    await seed_audience(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await open_wizard(pilot, app)
        await type_text(pilot, "Hello")
        await step(pilot, app, WhenStep)
        await step(pilot, app, WhoStep)
        what = await fill_what(pilot, app, "")
        body = what.query_one("#input-what-body", TextArea)
        body.focus()
        await type_text(pilot, "Hi ")
        await pilot.press("@")
        await wait_for(pilot, lambda: isinstance(app.screen, PropertyPickerDialog), what="the @ menu")
        await type_text(pilot, "name")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, WhatStep), what="back in What")
        assert body.text == "Hi {{ profile.name }}"
        preview = what.query_one("#what-preview", Static)
        await wait_for(pilot, lambda: "chars" in str(preview.render()), what="the preview")
        assert "GSM-7" in str(preview.render())
        await type_text(pilot, " ")
        body.insert("🌷")
        await wait_for(pilot, lambda: "UCS-2" in str(preview.render()), what="the UCS-2 preview")
        assert "🌷" in str(preview.render())


async def test_send_a_test_rendered_as_a_profile_through_the_route(runtime: Runtime) -> None:
    from smsconsole.services.messages import recent_messages

    await seed_providers(runtime)
    await seed_audience(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await open_wizard(pilot, app)
        await type_text(pilot, "Tested")
        await step(pilot, app, WhenStep)
        await step(pilot, app, WhoStep)
        await fill_what(pilot, app, "Hi {{ profile.name | default: 'there' }}")
        test = await step(pilot, app, SendTestStep)
        test.query_one("#input-test-to", Input).value = "+14155550123"
        test.query_one("#test-send").press()
        result = test.query_one("#test-result", Static)
        await wait_for(pilot, lambda: "+14155550123" in str(result.render()), what="the queued test")
        async with runtime.factory() as session:
            sent = await recent_messages(session, kind="test")
        assert [(view.to_number, view.provider_name) for view in sent] == [("+14155550123", "sandbox")]
        assert sent[0].body.startswith("Hi ")
        test.query_one("#input-test-profile", Input).value = "nobody-here"
        test.query_one("#test-send").press()
        error = test.query_one("#field-profile").error
        await wait_for(pilot, lambda: error.reason is not None, what="the profile refused")


async def test_what_shows_generic_blocks_and_dlt_fields_only_for_providers_that_use_them(runtime: Runtime) -> None:
    from tests.tui.seed import add_provider

    await seed_providers(runtime)
    await add_provider(runtime, "generic", "gateway", url="https://gw.example.com/send", body_type="form",
                       headers="X-Campaign: $$CampaignName", params="to=$$To\ntext=$$Body\ntid=$$TemplateID\np=$$Priority",
                       custom_keys="CampaignName, Priority")
    await add_provider(runtime, "msg91", "india", auth_key="a" * 24, sender="ACMEIN")
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await open_wizard(pilot, app)
        await type_text(pilot, "Blocks")
        await step(pilot, app, WhenStep)
        await step(pilot, app, WhoStep)
        what = await fill_what(pilot, app, "Hi")
        generic, dlt = what.query_one("#what-generic"), what.query_one("#what-dlt")
        await wait_for(pilot, lambda: what.blocks.providers == ("sandbox",), what="sandbox's blocks")
        assert not generic.display and not dlt.display
        what.query_one("#input-what-route", Select).value = "provider:gateway"
        await wait_for(pilot, lambda: generic.display, what="the Generic blocks")
        assert what.query_one(".-template-id").display and not what.query_one(".-template-variables").display
        assert what.query_one("#input-generic-body-values", TextArea).text == "Priority="
        assert what.query_one("#input-generic-header-values", TextArea).text == "CampaignName="
        assert not what.query_one(".-global-values").display and not dlt.display
        what.query_one("#input-generic-template", Input).value = "T-100"
        what.query_one("#input-generic-body-values", TextArea).text = "Priority=high"
        await pilot.pause()
        what.collect()
        assert what.state.document["what"]["generic"] == {
            "template_id": "T-100", "body_values": {"Priority": "high"}, "header_values": {"CampaignName": ""}}
        what.query_one("#input-what-route", Select).value = "provider:india"
        await wait_for(pilot, lambda: dlt.display and not generic.display, what="the DLT fields")
        assert what.query_one(".-dlt-template-id").display and not what.query_one(".-dlt-entity-id").display
        what.query_one("#input-dlt-template-id", Input).value = "1107161234567890123"
        what.collect()
        assert what.state.document["what"]["dlt"] == {"dlt_template_id": "1107161234567890123"}
        assert what.state.document["what"]["route"] == {"provider": "india"}


async def test_an_ad_hoc_segment_is_built_in_place(runtime: Runtime) -> None:
    from smsconsole.screens.campaigns.steps_who import AdHocSegmentScreen

    await seed_audience(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await open_wizard(pilot, app)
        await type_text(pilot, "Everyone")
        await step(pilot, app, WhenStep)
        who = await step(pilot, app, WhoStep)
        who.query_one("#who-adhoc", RadioButton).value = True
        await pilot.pause()
        assert who.query_one("#who-build").display
        who.query_one("#who-build").press()
        await wait_for(pilot, lambda: isinstance(app.screen, AdHocSegmentScreen), what="the builder")
        await pilot.pause(0.2)
        assert not app.screen.query_one("#builder-header").display  # no name: it is the campaign's own
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, WhoStep), what="back on Who")
        assert who.state.document["who"]["definition"] == {"match": "all", "conditions": []}
        assert "segment" not in who.state.document["who"]
        await pilot.press("ctrl+r")
        text = who.query_one("#who-estimate-text", Static)
        await wait_for(pilot, lambda: "Qualified" in str(text.render()), what="the estimate")
        assert "Qualified 9  reachable now 4" in str(text.render())  # the whole audience
