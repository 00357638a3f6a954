"""Test send: the number and the message are explained as they are typed; a sent message's row
changes state live, through the real engine running in-process."""

from __future__ import annotations

from typing import Any

from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import Checkbox, DataTable, Select, Static

from smsconsole.app import SmsConsoleApp
from smsconsole.messages import TestMessageQueued
from smsconsole.phone import parse_number
from smsconsole.runtime import Runtime
from smsconsole.screens.dialogs.message_detail import MessageDetailDialog
from smsconsole.screens.send_test import SendTestScreen
from smsconsole.screens.widgets.fields import FormField
from smsconsole.services.messages import recent_messages
from tests.tui.seed import add_provider, seed_demo, set_region
from tests.tui.support import make_app, paste, type_text, wait_for


def text_of(app: SmsConsoleApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def error_of(app: SmsConsoleApp, name: str) -> str | None:
    return app.screen.query_one(f"#field-{name}", FormField).error.reason


def recent_rows(app: SmsConsoleApp) -> list[str]:
    table = app.screen.query_one("#recent-table", DataTable)
    return [str(row.key.value) for row in table.ordered_rows]


def recent_cell(app: SmsConsoleApp, message_id: int, column: str) -> str:
    table = app.screen.query_one("#recent-table", DataTable)
    return str(table.get_cell(str(message_id), column))


async def open_test_send(pilot: Pilot[Any], app: SmsConsoleApp, provider: str | None = "sandbox") -> SendTestScreen:
    await pilot.press("3", "e")  # e: from the recent list to the form
    screen = app.screen
    assert isinstance(screen, SendTestScreen)
    select = screen.query_one("#input-provider", Select)
    await wait_for(pilot, lambda: app.focused is screen.query_one("#input-to"), what="focus on To")
    if provider is not None:
        await wait_for(pilot, lambda: select.value == provider or provider in [v for _, v in select._options],
                       what=f"provider {provider}")
        select.value = provider
    return screen


async def type_body(pilot: Pilot[Any], app: SmsConsoleApp, text: str) -> None:
    app.screen.query_one("#input-body").focus()
    await pilot.pause()
    paste(pilot, text)
    await pilot.pause()


async def test_a_national_number_shows_its_e164_form(runtime: Runtime) -> None:
    await add_provider(runtime, "sandbox", "sandbox")
    await set_region(runtime, "GB")
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_test_send(pilot, app)
        await wait_for(pilot, lambda: "GB" in text_of(app, "#field-to .form-field-label"), what="the region")
        await type_text(pilot, "07400 123456")
        assert text_of(app, "#number-info") == "✔ +447400123456 · United Kingdom · mobile"


async def test_an_invalid_number_shows_why(runtime: Runtime) -> None:
    await set_region(runtime, "GB")
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_test_send(pilot, app, provider=None)
        await wait_for(pilot, lambda: "GB" in text_of(app, "#field-to .form-field-label"), what="the region")
        await type_text(pilot, "07400 12")
        reason = parse_number("07400 12", "GB").reason
        assert reason
        assert text_of(app, "#number-info") == f"✖ {reason}"


async def test_a_landline_is_valid_with_a_warning(runtime: Runtime) -> None:
    await set_region(runtime, "GB")
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_test_send(pilot, app, provider=None)
        await wait_for(pilot, lambda: "GB" in text_of(app, "#field-to .form-field-label"), what="the region")
        await type_text(pilot, "020 7183 8750")
        info = text_of(app, "#number-info")
        assert info.startswith("✔ +442071838750 · United Kingdom · fixed line")
        assert "may not receive SMS" in info


async def test_an_emoji_makes_the_message_ucs2_and_shows_the_segments(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_test_send(pilot, app, provider=None)
        await type_body(pilot, app, "Party at 8 🎉")
        assert text_of(app, "#body-stats") == "12 chars · UCS-2 · 1 segment · 57 of 70 left"
        ucs2 = app.screen.query_one("#ucs2-info", Static)
        assert ucs2.display and str(ucs2.render()).startswith("UCS-2 because of 🎉 at 12")
        await type_body(pilot, app, " " + "x" * 60)
        assert text_of(app, "#body-stats") == "73 chars · UCS-2 · 2 segments · 60 of 67 left"


async def test_a_plain_message_is_gsm7(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_test_send(pilot, app, provider=None)
        await type_body(pilot, app, "Your code is 123456")
        assert text_of(app, "#body-stats") == "19 chars · GSM-7 · 1 segment · 141 of 160 left"
        assert not app.screen.query_one("#ucs2-info").display


async def test_replacing_look_alikes_makes_the_message_gsm7(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_test_send(pilot, app, provider=None)
        await type_body(pilot, app, "It’s “fine” — really…")
        assert "UCS-2" in text_of(app, "#body-stats")
        assert "(look-alike)" in text_of(app, "#ucs2-info")
        await pilot.click("#input-smart-encoding")
        assert app.screen.query_one("#input-smart-encoding", Checkbox).value
        assert text_of(app, "#body-stats") == "23 chars · GSM-7 · 1 segment · 137 of 160 left · 5 look-alikes replaced"
        assert not app.screen.query_one("#ucs2-info").display


async def test_sending_through_the_sandbox_goes_to_sent_with_a_provider_id(
    runtime: Runtime, posted: list[Message],
) -> None:
    await add_provider(runtime, "sandbox", "sandbox")
    await set_region(runtime, "GB")
    app = make_app(runtime.config, runtime, run_engine=True)
    async with app.run_test(size=(80, 24), message_hook=posted.append) as pilot:
        await open_test_send(pilot, app)
        await type_text(pilot, "07400 123456")
        await type_body(pilot, app, "Hello 👋 from the console")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: recent_rows(app) == ["1"], what="the queued row")
        await wait_for(pilot, lambda: recent_cell(app, 1, "state") == "sent", what="sent", timeout=10)
        assert recent_cell(app, 1, "to") == "+447400123456"
        assert recent_cell(app, 1, "detail").startswith("SBX")

        await pilot.press("escape")  # leave the message field; the table takes enter
        app.screen.query_one("#recent-table").focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MessageDetailDialog), what="the detail")
        attempts = app.screen.query_one("#message-attempts", DataTable)
        assert str(attempts.get_row_at(0)[2]) == "sent"
    assert any(isinstance(m, TestMessageQueued) and m.message_id == 1 for m in posted)
    async with runtime.factory() as session:
        [message] = await recent_messages(session, kind="test")
    assert message.body == "Hello 👋 from the console" and message.encoding == "UCS-2"


async def test_a_fail_pattern_shows_failed_with_the_reason(runtime: Runtime) -> None:
    await add_provider(runtime, "sandbox", "sandbox-fail", fail_pattern=r"^\+44")
    app = make_app(runtime.config, runtime, run_engine=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_test_send(pilot, app, provider="sandbox-fail")
        await type_text(pilot, "+447400123456")
        await type_body(pilot, app, "This one fails")
        await pilot.click("#send")
        await wait_for(pilot, lambda: recent_rows(app) == ["1"], what="the queued row")
        await wait_for(pilot, lambda: recent_cell(app, 1, "state") == "failed", what="failed", timeout=10)
        assert recent_cell(app, 1, "detail") == "[SANDBOX-REJECTED] sandbox: recipient matches the fail pattern"


async def test_refused_input_is_shown_under_the_fields_and_nothing_is_queued(runtime: Runtime) -> None:
    await set_region(runtime, "GB")
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_test_send(pilot, app, provider=None)
        await type_text(pilot, "12")
        await pilot.press("enter")  # enter in the To field sends
        await wait_for(pilot, lambda: error_of(app, "to") is not None, what="field errors")
        assert error_of(app, "provider") == "choose a provider or a group"
        assert error_of(app, "to") == parse_number("12", "GB").reason
        assert error_of(app, "body") == "is required"
    async with runtime.factory() as session:
        assert await recent_messages(session, kind="test") == []


async def test_recent_messages_are_listed_newest_first_with_their_outcome(runtime: Runtime) -> None:
    await seed_demo(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_test_send(pilot, app)
        await wait_for(pilot, lambda: recent_rows(app) == ["5", "4", "3", "2", "1"], what="seeded rows")
        assert [recent_cell(app, i, "state") for i in (5, 4, 3, 2, 1)] == \
            ["queued", "unknown", "failed", "sent", "delivered"]
        assert recent_cell(app, 3, "detail") == "[SANDBOX-REJECTED] sandbox: recipient matches the fail pattern"
