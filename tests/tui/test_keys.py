"""Keys and focus, as a k9s or lazygit user expects them (issue 11), at 80×24:

- entering any section puts the focus on its main list (never in a text field), so the section
  keys (1-9, q, the section's letters) work straight away;
- escape from any field gives the keys back: the focus goes to the section's main list;
- F1-F10 switch sections from everywhere, also from inside an Input or a TextArea (a TextArea binds
  F6 and F7 itself: the app's F-keys are priority bindings, so no widget can shadow them);
- one meaning per key across the app (the table in README's "Keys");
- Settings: focus on entry, a tab order through fields then tables, the page scrolls with
  PageUp/PageDown/Home/End;
- escape in a changed form asks "Discard your changes?", in an unchanged one it closes at once."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from textual.binding import Binding
from textual.keys import _character_to_key, key_to_character
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Input, OptionList, Select, TextArea, Tree

import smsconsole.screens
from smsconsole.app import SmsConsoleApp
from smsconsole.runtime import Runtime
from smsconsole.screens.audience.importing import ImportScreen
from smsconsole.screens.audience.profile import ProfileScreen
from smsconsole.screens.audience.search import AudienceScreen
from smsconsole.screens.base import SectionScreen
from smsconsole.screens.dialogs.api_key_create import ApiKeyCreateDialog
from smsconsole.screens.dialogs.condition_editor import ConditionEditorDialog
from smsconsole.screens.dialogs.confirm import ConfirmDialog
from smsconsole.screens.dialogs.group_form import GroupFormDialog
from smsconsole.screens.dialogs.keyword_form import KeywordFormDialog
from smsconsole.screens.dialogs.kind_picker import KindPickerDialog
from smsconsole.screens.dialogs.provider_form import ProviderFormDialog
from smsconsole.screens.dialogs.segment_name import SegmentNameDialog
from smsconsole.screens.sections import SECTIONS
from smsconsole.screens.segments.builder import SegmentBuilderScreen
from tests.tui.seed import seed_audience, seed_providers, set_region
from tests.tui.segment_seed import save_segment
from tests.tui.support import make_app, type_text, wait_for

SIZE = (80, 24)
README = Path(__file__).resolve().parents[2] / "README.md"
TEXT_FIELDS = (Input, TextArea)
# each section's main widget: where the focus goes on entry and on escape from a field
MAIN = {
    "home": "home-providers-table", "providers": "providers-table", "test-send": "recent-table",
    "settings": "settings-body", "audience": "audience-table", "segments": "segments-table",
    "groups": "groups-table", "inbox": "inbox-table", "stats": "stats-recent-table",
    "campaigns": "campaigns-table",
}
MODES = [section.mode for section in SECTIONS]
KEY_OF = {section.mode: section.key for section in SECTIONS}
FKEY_OF = {section.mode: section.fkey for section in SECTIONS}  # F1-F9, F10 for 0


def other_mode(mode: str) -> str:
    return "home" if mode != "home" else "stats"


async def enter(pilot: Pilot[Any], app: SmsConsoleApp, mode: str) -> None:
    """Switch to `mode` by its F-key and let the section settle (its first loads done)."""
    await pilot.press(FKEY_OF[mode])
    await wait_for(pilot, lambda: app.current_mode == mode and isinstance(app.screen, SectionScreen),
                   what=f"section {mode}")
    await pilot.pause(0.2)


def focused_id(app: App[Any]) -> str | None:
    return app.focused.id if app.focused is not None else None


def text_fields(screen: Screen[Any]) -> list[Widget]:
    return [widget for widget in screen.query("Input, TextArea") if widget.focusable]


# --- entering a section ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_entering_a_section_focuses_its_main_list_and_the_section_keys_work(runtime: Runtime,
                                                                                  mode: str) -> None:
    await seed_providers(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        if mode != "home":
            await pilot.press(KEY_OF[mode])  # from Home's table, the digit switches
        await wait_for(pilot, lambda: app.current_mode == mode, what=f"section {mode}")
        await wait_for(pilot, lambda: focused_id(app) == MAIN[mode] or mode == "inbox",
                       what=f"the focus on {MAIN[mode]}")
        assert not isinstance(app.focused, TEXT_FIELDS)
        await pilot.press(KEY_OF[other_mode(mode)])
        assert app.current_mode == other_mode(mode)
        # coming back (the section was left with a field focused) lands on the list again
        await pilot.press(KEY_OF[mode])
        await pilot.pause(0.2)
        if fields := text_fields(app.screen):
            fields[0].focus()
            await pilot.pause()
            await pilot.press(FKEY_OF[other_mode(mode)])
            await pilot.press(FKEY_OF[mode])
            await pilot.pause(0.2)
            assert not isinstance(app.focused, TEXT_FIELDS), f"{mode}: back in {focused_id(app)}"


async def test_entering_test_send_does_not_type_section_keys_into_to(runtime: Runtime) -> None:
    await seed_providers(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await wait_for(pilot, lambda: focused_id(app) == "recent-table", what="the recent messages")
        await pilot.press("6")
        assert app.current_mode == "segments"
        await pilot.press("3")
        await pilot.pause(0.3)
        assert app.screen.query_one("#input-to", Input).value == ""
        await pilot.press("q")
        await pilot.pause()
        assert app.return_code == 0  # q quit, rather than typing a q


async def test_e_in_test_send_goes_to_the_message_form(runtime: Runtime) -> None:
    await seed_providers(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await enter(pilot, app, "test-send")
        await pilot.press("e")
        assert focused_id(app) == "input-to"
        await type_text(pilot, "+14155550123")
        await pilot.press("escape")
        assert focused_id(app) == "recent-table"
        assert app.screen.query_one("#input-to", Input).value == "+14155550123"  # kept


# --- escape from each field ------------------------------------------------------------------


@pytest.mark.parametrize("mode", [mode for mode in MODES if mode in ("test-send", "settings", "audience", "inbox")])
async def test_escape_from_each_field_gives_the_section_keys_back(runtime: Runtime, mode: str) -> None:
    await seed_providers(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await enter(pilot, app, mode)
        count = len(text_fields(app.screen))
        assert count, f"{mode} has no text field"
        for index in range(count):
            if app.current_mode != mode:
                await enter(pilot, app, mode)
            field = text_fields(app.screen)[index]
            field.focus()
            await pilot.pause()
            await pilot.press("escape")
            assert focused_id(app) == MAIN[mode] or (mode == "inbox" and not isinstance(app.focused, TEXT_FIELDS)), \
                f"{mode}: escape from {field.id} left the focus on {focused_id(app)}"
            await pilot.press(KEY_OF[other_mode(mode)])
            assert app.current_mode == other_mode(mode), f"{mode}: section key swallowed after {field.id}"


async def test_escape_from_a_profile_lands_on_the_results_not_the_search(runtime: Runtime) -> None:
    await set_region(runtime, "GB")
    await seed_audience(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await enter(pilot, app, "audience")
        await pilot.press("slash")
        assert focused_id(app) == "audience-search"
        await type_text(pilot, "cust-1001")
        await wait_for(pilot, lambda: app.screen.query_one("#audience-table", DataTable).row_count == 1,
                       what="one match")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ProfileScreen), what="the profile")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, AudienceScreen), what="the search")
        await pilot.pause()
        assert focused_id(app) == "audience-table"
        await pilot.press("6")
        assert app.current_mode == "segments"


async def test_escape_in_the_builder_name_leaves_the_field_then_goes_back(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await enter(pilot, app, "segments")
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, SegmentBuilderScreen), what="the builder")
        assert focused_id(app) == "input-segment-name"
        await pilot.press("escape")
        assert isinstance(app.screen, SegmentBuilderScreen)
        assert isinstance(app.focused, Tree)
        await pilot.press("escape")  # nothing changed: back at once
        await wait_for(pilot, lambda: not isinstance(app.screen, SegmentBuilderScreen), what="the list")
        assert focused_id(app) == "segments-table"


async def test_escape_from_the_import_path_goes_back_to_the_list(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await enter(pilot, app, "audience")
        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(app.screen, ImportScreen), what="the import")
        assert focused_id(app) == "import-path"  # the import is a form: its field takes the focus
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, AudienceScreen), what="the search")
        assert focused_id(app) == "audience-table"
        await pilot.press("1")
        assert app.current_mode == "home"


# --- F-keys ----------------------------------------------------------------------------------


async def test_every_f_key_switches_from_inside_the_message_text_area(runtime: Runtime) -> None:
    await seed_providers(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        for mode in MODES:
            await enter(pilot, app, "test-send")
            app.screen.query_one("#input-body", TextArea).focus()
            await pilot.pause()
            # the footer offers every F-key here (it showed f1f2f3f4f5f8f9)
            bindings = app.screen.active_bindings
            assert bindings[FKEY_OF[mode]].binding.action == f"switch_mode('{mode}')"
            keys = list(bindings)  # in the footer's order: the F-keys in one run, not "f6f7 … f1f2f3f4f5f8f9"
            first = keys.index("f1")
            assert keys[first:first + 10] == [f"f{n}" for n in range(1, 11)]
            await pilot.press(FKEY_OF[mode])
            assert app.current_mode == mode, f"F{KEY_OF[mode]} from the message field"
        await enter(pilot, app, "test-send")
        assert app.screen.query_one("#input-body", TextArea).text == ""  # F6/F7 typed or selected nothing


@pytest.mark.parametrize("mode", ["test-send", "settings", "audience", "inbox"])
async def test_f_keys_switch_from_inside_every_input(runtime: Runtime, mode: str) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await enter(pilot, app, mode)
        for index in range(len(text_fields(app.screen))):
            await enter(pilot, app, mode)
            field = text_fields(app.screen)[index]
            field.focus()
            await pilot.pause()
            await pilot.press("f2")
            assert app.current_mode == "providers", f"F2 from {field.id}"


async def test_f_keys_wait_while_a_dialog_asks(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await enter(pilot, app, "providers")
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, KindPickerDialog), what="the kind picker")
        await pilot.press("f3", "3")
        assert isinstance(app.screen, KindPickerDialog) and app.current_mode == "providers"
        await pilot.press("escape")
        await pilot.press("f3")
        assert app.current_mode == "test-send"


# --- one meaning per key ---------------------------------------------------------------------


def screen_classes() -> list[type[Any]]:
    for module in pkgutil.walk_packages(smsconsole.screens.__path__, "smsconsole.screens."):
        importlib.import_module(module.name)
    found: dict[str, type[Any]] = {}
    for module_name, module in list(importlib.sys.modules.items()):  # type: ignore[attr-defined]
        if not module_name.startswith("smsconsole.screens"):
            continue
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Screen) and cls.__module__.startswith("smsconsole.screens"):
                found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return [SmsConsoleApp, *found.values()]


# key name → the printable character it stands for ("slash" → "/", which key_to_character misses);
# textual is pinned, so its private name table is relied on
KEY_CHARACTERS = {_character_to_key(chr(code)): chr(code) for code in range(33, 127)}


def character_bindings() -> dict[str, dict[str, set[str]]]:
    """character → action → the classes binding it."""
    table: dict[str, dict[str, set[str]]] = {}
    for cls in screen_classes():
        for binding in Binding.make_bindings(cls.__dict__.get("BINDINGS", [])):
            character = KEY_CHARACTERS.get(binding.key) or key_to_character(binding.key)
            if character is None or not character.isprintable() or character == " ":
                continue
            table.setdefault(character, {}).setdefault(binding.action, set()).add(cls.__name__)
    return table


def test_screens_are_found() -> None:
    names = {cls.__name__ for cls in screen_classes()}
    assert {"ProvidersScreen", "SegmentsScreen", "GroupsScreen", "SettingsScreen", "ConfirmDialog",
            "SegmentBuilderScreen", "GroupFormDialog"} <= names


def test_each_key_means_one_thing_across_the_app() -> None:
    clashes = {character: actions for character, actions in character_bindings().items() if len(actions) > 1}
    assert clashes == {}


def test_every_bound_action_exists() -> None:
    for cls in screen_classes():
        for binding in Binding.make_bindings(cls.__dict__.get("BINDINGS", [])):
            name = binding.action.split("(")[0]
            if "." in name:
                continue
            assert hasattr(cls, f"action_{name}"), f"{cls.__name__}: {binding.key} → {binding.action}"


def test_readme_keys_table_names_every_key() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("### Keys", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    documented = set(re.findall(r"`([^`\s])`", section))
    missing = set(character_bindings()) - documented - set("123456789")
    assert missing == set(), f"keys bound but not in README's Keys table: {sorted(missing)}"
    assert "`1`–`9`" in section or "`1`-`9`" in section


# --- Settings: focus, tab order, scrolling ---------------------------------------------------


async def test_settings_focus_on_entry_tab_order_and_scrolling(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await enter(pilot, app, "settings")
        await wait_for(pilot, lambda: app.screen.query_one("#keywords-table", DataTable).row_count > 0,
                       what="the keywords")
        page = app.screen.query_one("#settings-body")
        assert app.focused is page
        # tab: the page, each setting, the API keys, the message templates, the keywords, the compliance
        # panel (its enforcement choice, its tab bar, the shown tab's table), and round again (no
        # buttons, no read-only tables)
        settings = [widget.id for widget in app.screen.query("#settings-form Input")]
        expected = [*settings, "api-keys-table", "message-templates-table", "keywords-table",
                    "compliance-enforcement", None, "compliance-senders-table", "settings-body"]
        order = []
        for _ in range(len(expected) + 2):  # round again to the first fields (the page back at its top)
            await pilot.press("tab")
            order.append(focused_id(app))
        assert order == [*expected, *settings[:2]]
        page.focus()
        await pilot.pause()
        assert page.scroll_y == 0
        await pilot.press("pagedown")
        await pilot.pause()
        assert page.scroll_y > 0
        await pilot.press("end")
        await pilot.pause()
        assert page.scroll_y == page.max_scroll_y > 0
        audit = app.screen.query_one("#settings-audit")
        assert audit.region.overlaps(page.region)  # the audit log is on screen
        await pilot.press("home")
        await pilot.pause()
        assert page.scroll_y == 0
        # PageDown from a field scrolls the page too
        app.screen.query_one("#settings-form Input").focus()
        await pilot.pause()
        await pilot.press("pagedown")
        await pilot.pause()
        assert page.scroll_y > 0


async def test_settings_letters_follow_the_focused_table(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await enter(pilot, app, "settings")
        await pilot.press("e")  # from the page: edit the settings form
        assert focused_id(app) == app.screen.query("#settings-form Input").first().id
        app.screen.query_one("#keywords-table").focus()
        await wait_for(pilot, lambda: app.screen.query_one("#keywords-table", DataTable).row_count > 0,
                       what="the keywords")
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, KeywordFormDialog), what="the keyword form")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, KeywordFormDialog), what="the form to close")
        app.screen.query_one("#api-keys-table").focus()
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ApiKeyCreateDialog), what="the API key form")


# --- escape in a form: discard only after asking ---------------------------------------------


async def assert_escape_asks(pilot: Pilot[Any], app: SmsConsoleApp, form: type[Screen[Any]],
                             change: Any) -> None:
    """The form is open and unchanged: change it, escape asks; no keeps it; yes closes it."""
    assert isinstance(app.screen, form)
    await change()
    await pilot.pause()
    await pilot.press("escape")
    await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the discard question")
    assert "Discard your changes?" in str(app.screen.query_one("#confirm-question").render())
    await pilot.press("escape")  # no: back in the form, nothing lost
    await wait_for(pilot, lambda: isinstance(app.screen, form), what="the form again")
    await pilot.press("escape")
    await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the discard question")
    await pilot.press("y")
    await wait_for(pilot, lambda: not isinstance(app.screen, (form, ConfirmDialog)), what="the form to close")


async def assert_escape_closes(pilot: Pilot[Any], app: SmsConsoleApp, form: type[Screen[Any]]) -> None:
    assert isinstance(app.screen, form)
    await pilot.pause()
    await pilot.press("escape")
    await wait_for(pilot, lambda: not isinstance(app.screen, form), what="the form to close")
    assert not isinstance(app.screen, ConfirmDialog)


async def open_provider_form(pilot: Pilot[Any], app: SmsConsoleApp) -> None:
    await pilot.press("a")
    await wait_for(pilot, lambda: isinstance(app.screen, KindPickerDialog), what="the kind picker")
    options = app.screen.query_one(OptionList)
    options.highlighted = options.get_option_index("sandbox")
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, ProviderFormDialog), what="the form")


async def test_provider_form_asks_before_discarding(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await enter(pilot, app, "providers")
        await open_provider_form(pilot, app)
        await assert_escape_closes(pilot, app, ProviderFormDialog)
        await open_provider_form(pilot, app)

        async def change() -> None:
            await type_text(pilot, "half")

        await assert_escape_asks(pilot, app, ProviderFormDialog, change)
        assert isinstance(app.screen, SectionScreen) and app.current_mode == "providers"


async def test_group_form_asks_before_discarding(runtime: Runtime) -> None:
    await seed_providers(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await enter(pilot, app, "groups")
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, GroupFormDialog), what="the group form")
        await assert_escape_closes(pilot, app, GroupFormDialog)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, GroupFormDialog), what="the group form")

        async def add_member() -> None:  # a change that is no typed text: a provider added
            app.screen.query_one("#add-member", Select).value = "sandbox"

        await assert_escape_asks(pilot, app, GroupFormDialog, add_member)


async def test_keyword_form_asks_before_discarding(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await enter(pilot, app, "settings")
        await wait_for(pilot, lambda: app.screen.query_one("#keywords-table", DataTable).row_count > 0,
                       what="the keywords")
        app.screen.query_one("#keywords-table").focus()
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, KeywordFormDialog), what="the keyword form")
        await assert_escape_closes(pilot, app, KeywordFormDialog)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, KeywordFormDialog), what="the keyword form")

        async def change() -> None:
            await type_text(pilot, "PROMO")

        await assert_escape_asks(pilot, app, KeywordFormDialog, change)


async def test_api_key_form_asks_before_discarding(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await enter(pilot, app, "settings")
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, ApiKeyCreateDialog), what="the API key form")
        await assert_escape_closes(pilot, app, ApiKeyCreateDialog)
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, ApiKeyCreateDialog), what="the API key form")

        async def change() -> None:
            await type_text(pilot, "crm")

        await assert_escape_asks(pilot, app, ApiKeyCreateDialog, change)


async def test_builder_and_condition_editor_ask_before_discarding(runtime: Runtime) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await enter(pilot, app, "segments")
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, SegmentBuilderScreen), what="the builder")
        await pilot.press("escape")  # out of the name field
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ConditionEditorDialog), what="the condition editor")
        await assert_escape_closes(pilot, app, ConditionEditorDialog)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ConditionEditorDialog), what="the condition editor")

        async def change() -> None:
            app.screen.query_one("#input-value", Input).value = "gold"

        await assert_escape_asks(pilot, app, ConditionEditorDialog, change)
        assert isinstance(app.screen, SegmentBuilderScreen)

        async def name_it() -> None:
            app.screen.query_one("#input-segment-name", Input).value = "half done"
            app.screen.query_one("#segment-tree").focus()

        await assert_escape_asks(pilot, app, SegmentBuilderScreen, name_it)
        assert app.current_mode == "segments" and focused_id(app) == "segments-table"


async def test_segment_name_form_asks_before_discarding(runtime: Runtime) -> None:
    await save_segment(runtime, "everyone", {"match": "all", "conditions": []})
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=SIZE) as pilot:
        await enter(pilot, app, "segments")
        await wait_for(pilot, lambda: app.screen.query_one("#segments-table", DataTable).row_count == 1,
                       what="the segment")
        await pilot.press("c")  # copy
        await wait_for(pilot, lambda: isinstance(app.screen, SegmentNameDialog), what="the name form")
        await assert_escape_closes(pilot, app, SegmentNameDialog)
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, SegmentNameDialog), what="the name form")

        async def change() -> None:
            await type_text(pilot, "2")

        await assert_escape_asks(pilot, app, SegmentNameDialog, change)
