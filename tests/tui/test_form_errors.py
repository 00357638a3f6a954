"""How every form shows what a service refused: each reason once, under its field (a line above the
form only for reasons about no field shown), as a sentence naming the field ("Name is required"),
and gone as soon as the field changes. Forms: test send, provider (Twilio and Generic HTTP), group,
keyword, API key, condition editor, segment builder, import."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input, Static

from smsconsole.app import SmsConsoleApp
from smsconsole.runtime import Runtime
from smsconsole.screens.audience.importing import ImportScreen
from smsconsole.screens.dialogs.api_key_create import ApiKeyCreateDialog
from smsconsole.screens.dialogs.condition_editor import ConditionEditorDialog
from smsconsole.screens.dialogs.group_form import GroupDraft, GroupFormDialog
from smsconsole.screens.dialogs.keyword_form import KeywordFormDialog
from smsconsole.screens.dialogs.provider_form import ProviderDraft, ProviderFormDialog
from smsconsole.screens.segments.builder import SegmentBuilderScreen
from smsconsole.screens.widgets.fields import FieldError, FormField
from smsconsole.services.groups import GroupView, create_group
from smsconsole.services.providers import (
    ProviderView,
    create_provider,
    kind_view,
    list_providers,
)
from smsconsole.services.segments import segment_catalog
from tests.tui.seed import add_provider
from tests.tui.segment_seed import GOLD, save_segment, seed_audience
from tests.tui.support import make_app, type_text, wait_for

SIZE = (100, 50)  # tall enough to see a whole dialog


def screen_text(pilot: Pilot[Any]) -> str:
    """What the current screen shows, as text (a dialog: the dialog alone)."""
    return "\n".join(strip.text for strip in pilot.app.screen._compositor.render_strips())


def shown_errors(app: SmsConsoleApp) -> list[FieldError]:
    return [error for error in app.screen.query(FieldError) if error.reason is not None]


def field(app: SmsConsoleApp, name: str) -> FormField:
    return app.screen.query_one(f"#field-{name.replace('_', '-')}", FormField)


async def type_into(pilot: Pilot[Any], control: Any, text: str) -> None:
    control.focus()
    await pilot.pause()
    await type_text(pilot, text)
    await pilot.pause()


def assert_each_error_once_naming_its_field(pilot: Pilot[Any]) -> None:
    """Every shown reason is under its field, once, starting with the field's name; no summary."""
    app = pilot.app
    text = screen_text(pilot)
    assert "Not saved" not in text
    for form_field in app.screen.query(FormField):
        error = form_field.error
        if error.reason is None:
            continue
        assert error.message is not None and error.message.startswith(form_field.problem_label), error.message
        others = [other for other in shown_errors(app) if other is not error and error.message in (other.message or "")]
        assert others == [], f"{error.reason!r} is shown again"


# --- test send ----------------------------------------------------------------------------------


async def open_test_send(pilot: Pilot[Any], app: SmsConsoleApp) -> None:
    await app.switch_mode("test-send")
    await wait_for(pilot, lambda: app.screen.query_one("#input-provider").value == "sbx",  # type: ignore[attr-defined]
                   what="the provider")


async def test_send_a_refused_number_is_said_once_and_goes_as_soon_as_the_number_changes(runtime: Runtime) -> None:
    await add_provider(runtime, "sandbox", "sbx")
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await open_test_send(pilot, app)
        to = app.screen.query_one("#input-to", Input)
        await type_into(pilot, to, "4155550123")
        app.screen.query_one("#input-body").text = "hello"  # type: ignore[attr-defined]
        app.screen.action_send()  # type: ignore[attr-defined]
        await wait_for(pilot, lambda: field(app, "to").error.reason is not None, what="the number's error")
        assert field(app, "to").error.message == f"To: {field(app, 'to').error.reason}"
        assert screen_text(pilot).count("no country code") == 1  # not again in the number's own line
        assert_each_error_once_naming_its_field(pilot)

        to.focus()
        await pilot.press("home")
        await type_text(pilot, "+1")
        await pilot.pause()
        assert to.value == "+14155550123"
        assert field(app, "to").error.reason is None
        text = screen_text(pilot)
        assert "no country code" not in text
        assert "✔ +1" in text  # the number's line says what it is now


async def test_send_every_refusal_names_its_field(runtime: Runtime) -> None:
    await add_provider(runtime, "sandbox", "sbx")
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await open_test_send(pilot, app)
        await type_into(pilot, app.screen.query_one("#input-to", Input), "+14155550123")
        app.screen.action_send()  # type: ignore[attr-defined]
        await wait_for(pilot, lambda: field(app, "body").error.reason is not None, what="the body's error")
        assert field(app, "body").error.message == "Message is required"
        assert "✖ Message is required" in screen_text(pilot)
        assert "✖ is required" not in screen_text(pilot)
        assert_each_error_once_naming_its_field(pilot)
        await type_into(pilot, app.screen.query_one("#input-body"), "hi")
        assert field(app, "body").error.reason is None


# --- provider form ------------------------------------------------------------------------------


async def open_provider_form(pilot: Pilot[Any], app: SmsConsoleApp, runtime: Runtime, kind: str) -> ProviderFormDialog:
    async def save(draft: ProviderDraft) -> ProviderView:
        async with runtime.factory() as session, session.begin():
            return await create_provider(session, runtime.box, kind=kind, name=draft.name, values=draft.values,
                                         base_url=draft.base_url, actor="test", rate_limit=draft.rate_limit,
                                         sender_rate_limit=draft.sender_rate_limit)

    dialog = ProviderFormDialog(kind_view(kind), save)
    await app.push_screen(dialog)
    await pilot.pause()
    return dialog


async def test_provider_form_errors_name_their_fields_once_and_clear_one_by_one(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        form = await open_provider_form(pilot, app, runtime, "twilio")
        await type_into(pilot, field(app, "account_sid").control, "AC123")
        form.action_save()
        await wait_for(pilot, lambda: field(app, "name").error.reason is not None, what="the errors")
        assert field(app, "name").error.message == "Name is required"
        assert field(app, "auth_token").error.message == f"{field(app, 'auth_token').problem_label} is required"
        assert field(app, "account_sid").error.message == (
            f"{field(app, 'account_sid').problem_label} must be an Account SID: AC followed by 32 hex digits")
        assert form.query_one("#provider-form-error", FieldError).reason is None  # no summary above
        assert_each_error_once_naming_its_field(pilot)

        await type_into(pilot, field(app, "name").control, "tw")
        assert field(app, "name").error.reason is None  # the changed field's error goes at once
        assert field(app, "auth_token").error.reason == "is required"  # the others stay until saved again
        assert field(app, "account_sid").error.reason is not None


async def test_generic_provider_form_errors_name_their_fields_once_and_clear(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        form = await open_provider_form(pilot, app, runtime, "generic")
        form.action_save()
        await wait_for(pilot, lambda: field(app, "name").error.reason is not None, what="the errors")
        assert field(app, "name").error.message == "Name is required"
        assert (field(app, "url").error.message or "").startswith("URL ")  # "URL is required"
        assert form.query_one("#provider-form-error", FieldError).reason is None
        assert_each_error_once_naming_its_field(pilot)
        refused = [f for f in form.fields if f.error.reason is not None and f.field_name != "name"]
        for form_field in refused:
            assert (form_field.error.message or "").startswith(form_field.problem_label)
        await type_into(pilot, field(app, "name").control, "gw")
        assert field(app, "name").error.reason is None


# --- group form ---------------------------------------------------------------------------------


async def test_group_form_country_error_names_the_field_once_and_goes_when_fixed(runtime: Runtime) -> None:
    await add_provider(runtime, "sandbox", "sbx")
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        async with runtime.factory() as session:
            providers = await list_providers(session)

        async def save(draft: GroupDraft) -> GroupView:
            async with runtime.factory() as session, session.begin():
                return await create_group(session, name=draft.name, providers=draft.providers,
                                          countries=draft.countries, is_default=draft.is_default, actor="test")

        dialog = GroupFormDialog(providers, save)
        await app.push_screen(dialog)
        await pilot.pause()
        await type_into(pilot, field(app, "name").control, "eu")
        await type_into(pilot, field(app, "countries").control, "ZZ")
        dialog.action_save()
        await wait_for(pilot, lambda: field(app, "countries").error.reason is not None, what="the country error")
        assert field(app, "countries").error.message == (
            f"Destination countries: {field(app, 'countries').error.reason}")
        assert (field(app, "providers").error.message or "").startswith("Providers in priority order")
        assert dialog.query_one("#group-form-error", FieldError).reason is None  # no "Not saved: correct …"
        assert_each_error_once_naming_its_field(pilot)
        assert screen_text(pilot).count("not an ISO 3166") == 1

        countries = field(app, "countries").control
        assert isinstance(countries, Input)
        countries.value = "GB"
        await pilot.pause()
        assert field(app, "countries").error.reason is None
        assert "not an ISO 3166" not in screen_text(pilot)


# --- keyword, API key ---------------------------------------------------------------------------


async def test_keyword_form_says_which_field_is_required_and_clears_it(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await app.switch_mode("settings")
        await pilot.pause()
        dialog = KeywordFormDialog(app.screen._save_keyword)  # type: ignore[attr-defined]
        await app.push_screen(dialog)
        await pilot.pause()
        dialog.action_save()
        await wait_for(pilot, lambda: field(app, "word").error.reason is not None, what="the word's error")
        assert (field(app, "word").error.message or "").startswith("Word is required")
        assert (field(app, "event_name").error.message or "").startswith("Event name is required")
        assert_each_error_once_naming_its_field(pilot)
        await type_into(pilot, field(app, "word").control, "PROMO")
        assert field(app, "word").error.reason is None
        assert field(app, "event_name").error.reason is not None


async def test_api_key_name_error_names_the_field_and_clears_when_typed(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await app.switch_mode("settings")
        await pilot.pause()
        dialog = ApiKeyCreateDialog(app.screen._create_api_key)  # type: ignore[attr-defined]
        await app.push_screen(dialog)
        await pilot.pause()
        dialog.action_create()
        await pilot.pause()
        assert (dialog.field.error.message or "").startswith("Name is required")
        assert "✖ Name is required" in screen_text(pilot)
        await type_into(pilot, dialog.field.control, "crm")
        assert dialog.field.error.reason is None
        assert "is required" not in screen_text(pilot)


# --- segments -----------------------------------------------------------------------------------


async def test_condition_editor_row_error_goes_when_the_row_changes(runtime: Runtime) -> None:
    await seed_audience(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        async with runtime.factory() as session:
            catalog = await segment_catalog(session)
        dialog = ConditionEditorDialog(catalog, condition={"property": "lifetime_value", "op": "greater", "value": 1})
        await app.push_screen(dialog)
        await pilot.pause()
        value = dialog.query_one("#input-value", Input)
        value.value = "1O0"  # a letter O in a number
        await pilot.pause()
        dialog.action_done()
        await pilot.pause()
        error = dialog.query_one("#error-value", FieldError)
        assert error.reason == "Value: must be a number"
        assert screen_text(pilot).count("must be a number") == 1
        await type_into(pilot, value, "0")
        assert error.reason is None
        assert "must be a number" not in screen_text(pilot)


async def test_segment_builder_name_error_names_the_field_and_goes_when_typed(runtime: Runtime) -> None:
    await seed_audience(runtime)
    await save_segment(runtime, "gold-plan", GOLD)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await app.switch_mode("segments")
        await pilot.pause()
        builder = SegmentBuilderScreen()
        await app.push_screen(builder)
        await pilot.pause()
        name = builder.query_one("#input-segment-name", Input)
        name.value = "gold-plan"
        await pilot.pause()  # the Changed message (which clears a shown error) lands before the save, as when typed
        builder.action_save()
        error = builder.query_one("#builder-name-error", FieldError)
        await wait_for(pilot, lambda: error.reason is not None, what="the name's error")
        assert error.message == "Name: a segment named 'gold-plan' already exists"
        await type_into(pilot, name, "-2")
        assert error.reason is None


# --- import -------------------------------------------------------------------------------------


async def test_import_file_error_names_the_field_and_goes_when_the_path_changes(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await app.switch_mode("audience")
        await pilot.pause()
        screen = ImportScreen()
        await app.push_screen(screen)
        await pilot.pause()
        screen.load_preview()
        await wait_for(pilot, lambda: screen.path_field.error.reason is not None, what="the path's error")
        assert screen.path_field.error.message == "File is required: the file to import"
        assert "✖ File is required" in screen_text(pilot)
        await type_into(pilot, screen.query_one("#import-path", Input), "people.csv")
        assert screen.path_field.error.reason is None
        assert str(screen.query_one("#import-error", Static).render()) == ""
