"""Settings → Message templates, driven with Pilot at 80×24 against a real database: adding through
the form (a body that is not Liquid refused under its field, the typed text kept), the live cost line,
editing (a rename), deleting after the question, and the table's letters."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Input, TextArea

from smsconsole.config import Config
from smsconsole.runtime import Runtime
from smsconsole.screens.dialogs.confirm import ConfirmDialog
from smsconsole.screens.dialogs.message_template_form import MessageTemplateFormDialog
from smsconsole.screens.settings import SettingsScreen, first_line
from smsconsole.services import message_templates
from tests.tui.support import make_app, notifications, paste, type_text, wait_for

SIZE = (80, 24)
TABLE = "#message-templates-table"


def table(pilot: Pilot[Any]) -> DataTable[Any]:
    return pilot.app.screen.query_one(TABLE, DataTable)


def names(pilot: Pilot[Any]) -> list[str]:
    t = table(pilot)
    return [str(t.get_cell(row.key, "name")) for row in t.ordered_rows]


async def add_template(runtime: Runtime, name: str, body: str, description: str | None = None) -> None:
    async with runtime.factory() as session, session.begin():
        await message_templates.create_template(session, name, body, description=description, actor="test")


async def open_settings(pilot: Pilot[Any]) -> SettingsScreen:
    await pilot.press("4")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, SettingsScreen), what="Settings")
    await wait_for(pilot, lambda: pilot.app.screen.query_one("#keywords-table", DataTable).row_count > 0,
                   what="Settings loaded")
    screen = pilot.app.screen
    assert isinstance(screen, SettingsScreen)
    return screen


async def test_add_refuses_a_bad_body_under_its_field_keeps_the_text_then_saves(runtime: Runtime,
                                                                                config: Config) -> None:
    app = make_app(config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        settings = await open_settings(pilot)
        assert settings.query_one("#settings-message-templates").border_subtitle == "none yet"
        assert settings.query_one("#message-template-edit", Button).disabled
        table(pilot).focus()
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, MessageTemplateFormDialog), what="the form")
        form = pilot.app.screen
        assert pilot.app.focused is form.query_one("#input-template-name")
        await type_text(pilot, "order_shipped")
        form.query_one("#input-template-description", Input).value = "When the parcel leaves"
        body = form.query_one("#input-template-body", TextArea)
        body.focus()
        await pilot.pause()
        paste(pilot, "Hi {{ x | shout }}")
        await wait_for(pilot, lambda: body.text == "Hi {{ x | shout }}", what="the body typed")
        info = str(form.query_one("#field-body > .form-field-help").render())
        assert "18 of 1,600 chars · GSM-7 · 1 segment" in info
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: form.query_one("#field-body").error.reason, what="the body's error")
        assert "shout" in str(form.query_one("#field-body").error.reason)
        assert form.query_one("#field-name").error.reason is None
        assert pilot.app.screen is form and pilot.app.focused is body  # the bad field takes the focus
        assert form.query_one("#input-template-name", Input).value == "order_shipped"  # nothing lost
        assert body.text == "Hi {{ x | shout }}"
        # a character outside GSM-7 makes it UCS-2 (the line follows the typing)
        body.text = "Hi {{ profile.name }}, order {{ data.order }} shipped ✓"
        await pilot.pause()
        assert form.query_one("#field-body").error.reason is None  # changed: the error goes
        assert "UCS-2" in str(form.query_one("#field-body > .form-field-help").render())
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: pilot.app.screen is settings, what="the form to close")
        await wait_for(pilot, lambda: names(pilot) == ["order_shipped"], what="the new row")
        assert "Saved template order_shipped" in notifications(pilot.app)
        assert settings.query_one("#settings-message-templates").border_subtitle == "1 template"
        assert not settings.query_one("#message-template-edit", Button).disabled
    async with runtime.factory() as session:
        view = await message_templates.get_template(session, "order_shipped")
    assert view.body == "Hi {{ profile.name }}, order {{ data.order }} shipped ✓"
    assert view.description == "When the parcel leaves"


async def test_edit_renames_and_delete_asks_first(runtime: Runtime, config: Config) -> None:
    await add_template(runtime, "order_shipped", "Order {{ data.order }} has shipped.\nTrack it online.",
                       "Parcel left")
    await add_template(runtime, "welcome", "Welcome {{ profile.name }}!")
    app = make_app(config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        settings = await open_settings(pilot)
        await wait_for(pilot, lambda: names(pilot) == ["order_shipped", "welcome"], what="the templates")
        assert settings.query_one("#settings-message-templates").border_subtitle == "2 templates"
        t = table(pilot)
        assert str(t.get_cell("order_shipped", "body")).startswith("Order {{ data.order }} has shipped.")
        assert t.region.right <= SIZE[0]  # the body is cut to fit: no sideways scrolling
        assert t.max_scroll_x == 0
        t.focus()
        t.move_cursor(row=t.get_row_index("order_shipped"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, MessageTemplateFormDialog), what="the form")
        form = pilot.app.screen
        assert form.query_one("#input-template-description", Input).value == "Parcel left"
        name = form.query_one("#input-template-name", Input)
        name.value = "welcome"  # taken
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: form.query_one("#field-name").error.reason, what="the name's error")
        assert "already exists" in str(form.query_one("#field-name").error.reason)
        name.value = "parcel_shipped"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: pilot.app.screen is settings, what="the form to close")
        await wait_for(pilot, lambda: names(pilot) == ["parcel_shipped", "welcome"], what="renamed")
        assert "Saved template parcel_shipped" in notifications(pilot.app)
        # e edits too; escape in an unchanged form closes it at once
        t = table(pilot)
        t.focus()
        t.move_cursor(row=t.get_row_index("welcome"))
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, MessageTemplateFormDialog), what="the form")
        await pilot.pause()
        await pilot.press("escape")
        await wait_for(pilot, lambda: pilot.app.screen is settings, what="the form to close")
        # d asks; no keeps it; yes deletes
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmDialog), what="the question")
        assert "welcome" in str(pilot.app.screen.query_one("#confirm-question").render())
        await pilot.press("n")
        await wait_for(pilot, lambda: pilot.app.screen is settings, what="the question to close")
        assert names(pilot) == ["parcel_shipped", "welcome"]
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmDialog), what="the question")
        await pilot.press("y")
        await wait_for(pilot, lambda: names(pilot) == ["parcel_shipped"], what="deleted")
    async with runtime.factory() as session:
        assert [v.name for v in await message_templates.list_templates(session)] == ["parcel_shipped"]
        view = await message_templates.get_template(session, "parcel_shipped")
    assert view.body.startswith("Order {{ data.order }}") and view.description == "Parcel left"


async def test_a_changed_form_asks_before_discarding(runtime: Runtime, config: Config) -> None:
    app = make_app(config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        settings = await open_settings(pilot)
        settings.query_one("#message-template-add", Button).press()
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, MessageTemplateFormDialog), what="the form")
        await pilot.pause()
        await type_text(pilot, "promo")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmDialog), what="the discard question")
        await pilot.press("escape")  # no: back in the form, nothing lost
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, MessageTemplateFormDialog), what="the form")
        assert pilot.app.screen.query_one("#input-template-name", Input).value == "promo"
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmDialog), what="the discard question")
        await pilot.press("y")
        await wait_for(pilot, lambda: pilot.app.screen is settings, what="the form to close")
    async with runtime.factory() as session:
        assert await message_templates.list_templates(session) == []


def test_first_line_is_cut_to_the_width() -> None:
    assert first_line("Hello there", 20) == "Hello there"
    assert first_line("\n  Hello\nsecond", 20) == "Hello …"
    assert first_line("A" * 30, 10) == "A" * 9 + "…"
