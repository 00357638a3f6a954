"""Providers: add through the generated form, refused input shown under its field, edit keeping the
secret, remove after confirming, test the connection, fill a Generic HTTP form from a curl
command — all without leaving the screen."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, OptionList, Static, TextArea

from smsconsole.app import SmsConsoleApp
from smsconsole.messages import ProviderRemoved, ProviderSaved, ProviderTested
from smsconsole.models import Provider as ProviderRow
from smsconsole.runtime import Runtime
from smsconsole.screens.dialogs.confirm import ConfirmDialog
from smsconsole.screens.dialogs.curl_paste import CurlPasteDialog
from smsconsole.screens.dialogs.kind_picker import KindPickerDialog
from smsconsole.screens.dialogs.provider_form import KEEP_SECRET, ProviderFormDialog
from smsconsole.screens.providers import ProvidersScreen
from smsconsole.screens.widgets.fields import FieldError, FormField
from smsconsole.services import providers as provider_service
from tests.tui.seed import TWILIO_SID, TWILIO_TOKEN, seed_demo, seed_providers
from tests.tui.support import make_app, notifications, paste, run_command, type_text, wait_for


def table_names(app: SmsConsoleApp) -> list[str]:
    table = app.screen.query_one("#providers-table", DataTable)
    return [str(row.key.value) for row in table.ordered_rows]


def cell(app: SmsConsoleApp, row: str, column: str) -> str:
    return str(app.screen.query_one("#providers-table", DataTable).get_cell(row, column))


async def open_providers(pilot: Pilot[Any], app: SmsConsoleApp, expect: list[str]) -> None:
    await pilot.press("2")
    await wait_for(pilot, lambda: table_names(app) == expect, what=f"providers {expect}")


async def highlight(pilot: Pilot[Any], app: SmsConsoleApp, name: str) -> None:
    table = app.screen.query_one("#providers-table", DataTable)
    table.move_cursor(row=table.get_row_index(name))
    await pilot.pause()


async def choose_kind(pilot: Pilot[Any], app: SmsConsoleApp, kind: str) -> ProviderFormDialog:
    await pilot.press("a")
    await wait_for(pilot, lambda: isinstance(app.screen, KindPickerDialog), what="the kind picker")
    options = app.screen.query_one(OptionList)
    options.highlighted = options.get_option_index(kind)
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, ProviderFormDialog), what="the form")
    assert isinstance(app.screen, ProviderFormDialog)
    return app.screen


def field(form: ProviderFormDialog, name: str) -> FormField:
    return next(f for f in form.fields if f.field_name == name)


async def stored(runtime: Runtime) -> list[provider_service.ProviderView]:
    async with runtime.factory() as session:
        return await provider_service.list_providers(session)


async def test_adding_a_sandbox_provider_shows_it_in_the_table(runtime: Runtime, posted: list[Message]) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24), message_hook=posted.append) as pilot:
        await open_providers(pilot, app, [])
        form = await choose_kind(pilot, app, "sandbox")
        assert [f.field_name for f in form.fields] == ["name", "sender", "fail_pattern", "failure_rate", "receipt_delay",
                                                       "undelivered_pattern", "undelivered_rate",
                                                       "failed_receipt_pattern", "base_url", "rate_limit",
                                                       "sender_rate_limit"]
        await type_text(pilot, "my-sandbox")  # the name field has focus
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ProvidersScreen), what="the form to close")
        await wait_for(pilot, lambda: table_names(app) == ["my-sandbox"], what="the new row")
        assert cell(app, "my-sandbox", "health") == "○ unknown"
    assert [(v.name, v.kind) for v in await stored(runtime)] == [("my-sandbox", "sandbox")]
    assert any(isinstance(m, ProviderSaved) and m.name == "my-sandbox" and m.created for m in posted)


async def test_bad_twilio_input_is_shown_under_each_field_and_nothing_is_created(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_providers(pilot, app, [])
        form = await choose_kind(pilot, app, "twilio")
        await type_text(pilot, "tw")
        field(form, "account_sid").control.focus()
        await type_text(pilot, "AC123")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: field(form, "account_sid").error.reason is not None, what="field errors")
        assert app.screen is form  # still open, nothing lost
        assert field(form, "account_sid").error.reason == "must be an Account SID: AC followed by 32 hex digits"
        assert field(form, "auth_token").error.reason == "is required"
        assert field(form, "name").error.reason is None
        assert field(form, "name").value == "tw" and field(form, "account_sid").value == "AC123"
        assert app.focused is field(form, "account_sid").control  # the first bad field

        # corrected, the same form saves
        field(form, "account_sid").control.value = TWILIO_SID  # type: ignore[attr-defined]
        field(form, "auth_token").control.value = TWILIO_TOKEN  # type: ignore[attr-defined]
        field(form, "sender").control.value = "+14155552671"  # type: ignore[attr-defined]
        assert field(form, "auth_token").control.password  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: table_names(app) == ["tw"], what="the saved provider")
    assert [v.name for v in await stored(runtime)] == ["tw"]


async def test_a_refused_form_writes_nothing(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_providers(pilot, app, [])
        form = await choose_kind(pilot, app, "twilio")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: field(form, "name").error.reason is not None, what="field errors")
        assert field(form, "name").error.reason == "is required"
        await pilot.press("escape")
        assert isinstance(app.screen, ProvidersScreen)
    async with runtime.factory() as session:
        assert await session.scalar(select(ProviderRow.id)) is None


async def test_editing_keeps_the_stored_secret_and_never_shows_it(runtime: Runtime, posted: list[Message]) -> None:
    await seed_providers(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(120, 36), message_hook=posted.append) as pilot:
        await open_providers(pilot, app, ["sandbox", "sandbox-fail", "twilio-us"])
        await highlight(pilot, app, "twilio-us")
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ProviderFormDialog), what="the form")
        form = app.screen
        assert isinstance(form, ProviderFormDialog)
        token = field(form, "auth_token").control
        assert isinstance(token, Input)
        assert token.value == "" and token.placeholder == KEEP_SECRET
        assert all(TWILIO_TOKEN not in getattr(w, "value", "") for w in form.query(Input))
        assert field(form, "account_sid").value == TWILIO_SID
        sender = field(form, "sender").control
        assert isinstance(sender, Input)
        sender.value = "+14155552672"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ProvidersScreen), what="the form to close")
    async with runtime.factory() as session:
        view = await provider_service.get_provider(session, "twilio-us")
        spec = await provider_service.load_spec(session, runtime.box, "twilio-us")
    assert view.settings["sender"] == "+14155552672"
    assert spec.values["auth_token"] == TWILIO_TOKEN
    assert any(isinstance(m, ProviderSaved) and m.name == "twilio-us" and not m.created for m in posted)


async def test_an_env_reference_is_shown_as_typed(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_providers(pilot, app, [])
        form = await choose_kind(pilot, app, "twilio")
        token = field(form, "auth_token").control
        assert isinstance(token, Input)
        token.focus()
        await type_text(pilot, "env:TW")
        assert not token.password
        token.value = "s3cret"
        await pilot.pause()
        assert token.password


async def test_removing_asks_first(runtime: Runtime, posted: list[Message]) -> None:
    await seed_providers(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24), message_hook=posted.append) as pilot:
        await open_providers(pilot, app, ["sandbox", "sandbox-fail", "twilio-us"])
        await highlight(pilot, app, "sandbox-fail")
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question")
        await pilot.press("escape")
        await pilot.pause()
        assert table_names(app) == ["sandbox", "sandbox-fail", "twilio-us"]
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question")
        await pilot.press("y")
        await wait_for(pilot, lambda: table_names(app) == ["sandbox", "twilio-us"], what="the row to go")
    assert [v.name for v in await stored(runtime)] == ["sandbox", "twilio-us"]
    assert any(isinstance(m, ProviderRemoved) and m.name == "sandbox-fail" for m in posted)


async def test_removing_a_provider_with_queued_messages_is_refused_with_a_notification(runtime: Runtime) -> None:
    await seed_demo(runtime)  # a queued message goes through "sandbox"
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_providers(pilot, app, ["sandbox", "sandbox-fail", "twilio-us"])
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question")
        await pilot.press("y")
        await wait_for(pilot, lambda: any("queued or sending" in n for n in notifications(app)),
                       what="the refusal")
        assert table_names(app) == ["sandbox", "sandbox-fail", "twilio-us"]


async def test_testing_a_connection_updates_the_health(runtime: Runtime, posted: list[Message]) -> None:
    await seed_providers(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24), message_hook=posted.append) as pilot:
        await open_providers(pilot, app, ["sandbox", "sandbox-fail", "twilio-us"])
        assert cell(app, "sandbox-fail", "health") == "○ unknown"
        await highlight(pilot, app, "sandbox-fail")
        await pilot.press("t")
        await wait_for(pilot, lambda: cell(app, "sandbox-fail", "health") == "● healthy", what="healthy")
        assert cell(app, "sandbox-fail", "checked") == "09:30"
        assert any("connection ok" in (n.title or "") for n in app._notifications)
    assert any(isinstance(m, ProviderTested) and m.name == "sandbox-fail" and m.ok for m in posted)


async def test_palette_tests_a_named_provider(runtime: Runtime) -> None:
    await seed_providers(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await run_command(pilot, "Test provider connection: sandbox-fail")
        await wait_for(pilot, lambda: app.current_mode == "providers", what="providers")
        await wait_for(pilot, lambda: "sandbox-fail" in table_names(app)
                       and cell(app, "sandbox-fail", "health") == "● healthy", what="healthy")


async def test_a_pasted_curl_command_fills_the_generic_form_and_the_preview(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(100, 40)) as pilot:
        await open_providers(pilot, app, [])
        form = await choose_kind(pilot, app, "generic")
        assert "url: is required" in str(form.query_one("#request-preview", Static).render())
        await pilot.click("#paste-curl")
        await wait_for(pilot, lambda: isinstance(app.screen, CurlPasteDialog), what="the paste dialog")
        paste(pilot, "curl -X POST 'https://gw.example.com/send")
        await pilot.pause()
        await pilot.press("ctrl+s")
        error = app.screen.query_one("#curl-error", FieldError)
        assert error.reason == "cannot read the command: no closing quotation (unbalanced quotes?)"
        app.screen.query_one("#curl-command", TextArea).text = (
            "curl https://gw.example.com/send -u ops:s3cret -d to=447400123456 -d text=hello"
        )
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is form, what="back to the form")
        assert field(form, "url").value == "https://gw.example.com/send"
        assert field(form, "method").value == "POST"
        assert field(form, "params").value == "to=447400123456\ntext=hello"
        assert "$$To" in str(form.query_one("#curl-notes", Static).render())
        preview = str(form.query_one("#request-preview", Static).render())
        assert preview.startswith("curl -X POST https://gw.example.com/send")
        assert "s3cret" not in preview


async def test_forms_of_other_kinds_have_no_curl_tools(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_providers(pilot, app, [])
        form = await choose_kind(pilot, app, "sandbox")
        assert not form.query("#paste-curl") and not form.query("#request-preview")
