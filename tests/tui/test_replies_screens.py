"""Inbox, Stats, the Home monitor and Settings → Keywords, driven with Pilot against a real
database: what they show, filters, opening a profile or a message's path, and the keyword form
refusing bad input under its fields."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Select, Sparkline

from smsconsole.config import Config
from smsconsole.runtime import Runtime
from smsconsole.screens.audience.profile import ProfileScreen
from smsconsole.screens.dialogs.confirm import ConfirmDialog
from smsconsole.screens.dialogs.keyword_form import KeywordFormDialog
from smsconsole.screens.dialogs.message_path import MessagePathDialog
from smsconsole.services import keywords
from tests.tui.replies_seed import seed_replies
from tests.tui.seed import seed_demo
from tests.tui.support import make_app, type_text, wait_for


def table(pilot: Pilot[Any], selector: str) -> DataTable[Any]:
    return pilot.app.screen.query_one(selector, DataTable)


def column(t: DataTable[Any], key: str) -> list[str]:
    return [str(t.get_cell(row.key, key)) for row in t.ordered_rows]


async def test_inbox_lists_filters_and_opens_the_profile(runtime: Runtime, config: Config) -> None:
    await seed_demo(runtime)
    await seed_replies(runtime)
    app = make_app(config, runtime)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("8")
        await wait_for(pilot, lambda: table(pilot, "#inbox-table").row_count == 4, what="replies")
        t = table(pilot, "#inbox-table")
        assert column(t, "keyword") == ["STOP", "ARRET", "HELP", "-"]
        assert column(t, "action") == ["opt-out", "opt-out", "help", "reply"]
        assert column(t, "answers")[0].startswith("#1 ")  # the delivered test message to that number
        pilot.app.screen.query_one("#inbox-action", Select).value = "opt_out"
        await wait_for(pilot, lambda: table(pilot, "#inbox-table").row_count == 2, what="opt-outs only")
        pilot.app.screen.query_one("#inbox-action", Select).value = ""
        pilot.app.screen.query_one("#inbox-keyword", Input).value = "help"
        await wait_for(pilot, lambda: table(pilot, "#inbox-table").row_count == 1, what="HELP only")
        pilot.app.screen.query_one("#inbox-keyword", Input).value = "nothing"
        await wait_for(pilot, lambda: pilot.app.screen.query_one("#inbox-empty").display, what="empty state")
        pilot.app.screen.query_one("#inbox-keyword", Input).value = ""
        await wait_for(pilot, lambda: table(pilot, "#inbox-table").row_count == 4, what="all again")
        t = table(pilot, "#inbox-table")
        t.focus()
        t.move_cursor(row=0)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ProfileScreen), what="the profile")
        assert pilot.app.screen.key == "+447400123451"


async def test_inbox_empty_state_explains_how_replies_arrive(runtime: Runtime, config: Config) -> None:
    app = make_app(config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("8")
        await wait_for(pilot, lambda: pilot.app.screen.query_one("#inbox-empty").display, what="empty state")
        assert "sandbox reply" in str(pilot.app.screen.query_one("#inbox-empty").render())


async def test_stats_and_the_message_path(runtime: Runtime, config: Config) -> None:
    await seed_demo(runtime)
    await seed_replies(runtime)
    app = make_app(config, runtime)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("9")
        await wait_for(pilot, lambda: table(pilot, "#stats-recent-table").row_count > 0, what="messages")
        providers = table(pilot, "#stats-providers-table")
        await wait_for(pilot, lambda: "sandbox" in column(providers, "provider"), what="providers")
        sent, replies = (str(providers.get_cell("sandbox", key)) for key in ("sent", "replies"))
        assert (sent, replies) == ("2", "4")  # sent counts delivered + sent
        await pilot.press("w")
        await wait_for(pilot, lambda: "today" in str(pilot.app.screen.query_one("#stats-delivery").border_title),
                       what="today")
        recent = table(pilot, "#stats-recent-table")
        recent.focus()
        recent.move_cursor(row=recent.get_row_index("1"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, MessagePathDialog), what="the path")
        dialog = pilot.app.screen
        assert isinstance(dialog, MessagePathDialog)
        assert [r.text for r in dialog.path.replies] == ["Thanks, got it!", " Stop. "]


async def test_home_monitor_counts_and_sparkline(runtime: Runtime, config: Config) -> None:
    await seed_demo(runtime)
    await seed_replies(runtime)
    app = make_app(config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: table(pilot, "#home-counts-table").row_count == 7, what="monitor")
        counts = table(pilot, "#home-counts-table")
        assert str(counts.get_cell("replies", "hour")).strip() == "4"
        assert str(counts.get_cell("sent", "hour")).strip() == "2"
        assert str(counts.get_cell("failed", "today")).strip() == "1"
        assert sum(pilot.app.screen.query_one("#home-sparkline", Sparkline).data or []) == 2


async def test_keywords_panel_add_refused_then_saved_and_delete(runtime: Runtime, config: Config) -> None:
    app = make_app(config, runtime)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("4")
        await wait_for(pilot, lambda: table(pilot, "#keywords-table").row_count > 20, what="default keywords")
        settings = pilot.app.screen
        table(pilot, "#keywords-table").focus()
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, KeywordFormDialog), what="the form")
        await type_text(pilot, "stop")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: pilot.app.screen.query(".-shown"), what="field errors")
        form = pilot.app.screen
        assert "already exists" in str(form.query_one("#field-word").error.reason)
        assert "is required" in str(form.query_one("#field-event-name").error.reason)
        form.query_one("#input-word", Input).value = "survey"
        form.query_one("#input-event-name", Input).value = "survey_yes"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: pilot.app.screen is settings, what="the form to close")
        await wait_for(pilot, lambda: "SURVEY" in column(table(pilot, "#keywords-table"), "word"), what="saved")
        t = table(pilot, "#keywords-table")
        t.focus()
        t.move_cursor(row=t.get_row_index("SURVEY"))
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmDialog), what="the question")
        await pilot.press("y")
        await wait_for(pilot, lambda: "SURVEY" not in column(table(pilot, "#keywords-table"), "word"),
                       what="deleted")
    async with runtime.factory() as session:
        assert "SURVEY" not in {k.word for k in await keywords.list_keywords(session)}


async def test_editing_a_default_keyword_changes_only_its_response(runtime: Runtime, config: Config) -> None:
    app = make_app(config, runtime)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("4")
        await wait_for(pilot, lambda: table(pilot, "#keywords-table").row_count > 20, what="default keywords")
        t = table(pilot, "#keywords-table")
        t.focus()
        t.move_cursor(row=t.get_row_index("HELP"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, KeywordFormDialog), what="the form")
        form = pilot.app.screen
        assert form.query_one("#input-word", Input).disabled
        form.query_one("#input-response").text = "Reply STOP to stop. Help: help@example.com"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(pilot.app.screen, KeywordFormDialog), what="saved")
    async with runtime.factory() as session:
        view = await keywords.get_keyword(session, "help")
    assert view.response == "Reply STOP to stop. Help: help@example.com" and view.builtin


async def test_stats_rate_says_of_how_many_settled(runtime: Runtime, config: Config) -> None:
    """sandbox: 2 sent, 1 delivered, 1 awaiting its receipt — 100% of 1, never a bare 100%."""
    await seed_demo(runtime)
    app = make_app(config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.switch_mode("stats")
        await wait_for(pilot, lambda: table(pilot, "#stats-providers-table").row_count > 1, what="providers")
        providers = table(pilot, "#stats-providers-table")
        await wait_for(pilot, lambda: "sandbox" in column(providers, "provider"), what="the sandbox row")
        assert str(providers.get_cell("sandbox", "sent")) == "2"
        assert str(providers.get_cell("sandbox", "rate")) == "100% of 1"
        assert str(providers.get_cell("sandbox-fail", "rate")) == "0% of 1"  # a failed message settled too
        assert str(providers.get_cell("~total", "rate")) == "50% of 2"
        panel = pilot.app.screen.query_one("#stats-delivery")
        assert str(panel.border_title) == "Delivery, last hour (rate: delivered of settled)"
        assert str(panel.border_subtitle).startswith("1 awaiting receipt")
        assert providers.virtual_size.width <= providers.scrollable_content_region.width  # "of N" fits at 80 columns
