"""Test send's starting choices and hints: it offers the default group (else the healthiest enabled
provider), its examples read as examples and follow the default region, a character that forces
UCS-2 is named once, and a message waiting for another attempt shows as retrying with its time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rich.text import Text
from sqlalchemy import update
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Select, Static, TextArea

from smsconsole.app import SmsConsoleApp
from smsconsole.models import Message, Provider as ProviderRow
from smsconsole.runtime import Runtime
from smsconsole.screens.send_test import SendTestScreen, describe_body
from smsconsole.services import groups
from smsconsole.services.messages import queue_test_message
from tests.tui.seed import FROZEN, add_provider, set_region
from tests.tui.support import make_app, wait_for

EMOJI = "\U0001f600"


async def set_health(rt: Runtime, **health: str) -> None:
    async with rt.factory() as session, session.begin():
        for name, state in health.items():
            await session.execute(update(ProviderRow).where(ProviderRow.name == name).values(health=state))


async def open_test_send(pilot: Pilot[Any], app: SmsConsoleApp) -> SendTestScreen:
    await app.switch_mode("test-send")
    await wait_for(pilot, lambda: isinstance(app.screen, SendTestScreen), what="Test send")
    screen = app.screen
    assert isinstance(screen, SendTestScreen)
    select = screen.query_one("#input-provider", Select)
    await wait_for(pilot, lambda: len(select._options) > 1, what="the providers")
    return screen


def chosen(app: SmsConsoleApp) -> object:
    return app.screen.query_one("#input-provider", Select).value


async def test_the_default_group_is_offered_first(runtime: Runtime) -> None:
    await add_provider(runtime, "sandbox", "a-broken")
    await add_provider(runtime, "sandbox", "z-good")
    await set_health(runtime, **{"a-broken": "unhealthy", "z-good": "healthy"})
    async with runtime.factory() as session, session.begin():
        await groups.create_group(session, name="other", providers="a-broken", actor="test")
        await groups.create_group(session, name="main", providers="z-good", is_default=True, actor="test")
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_test_send(pilot, app)
        await wait_for(pilot, lambda: chosen(app) == "group:main", what="the default group")


async def test_without_groups_the_healthiest_enabled_provider_is_offered(runtime: Runtime) -> None:
    for name in ("a-down", "b-untested", "c-up", "d-off"):
        await add_provider(runtime, "sandbox", name)
    await set_health(runtime, **{"a-down": "unhealthy", "c-up": "healthy", "d-off": "healthy"})
    async with runtime.factory() as session, session.begin():
        await session.execute(update(ProviderRow).where(ProviderRow.name == "d-off").values(enabled=False))
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_test_send(pilot, app)
        await wait_for(pilot, lambda: chosen(app) == "c-up", what="the healthy provider")


async def test_the_number_example_follows_the_default_region_and_reads_as_an_example(runtime: Runtime) -> None:
    await add_provider(runtime, "sandbox", "sandbox")
    await set_region(runtime, "US")
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_test_send(pilot, app)
        to = screen.query_one("#input-to", Input)
        await wait_for(pilot, lambda: "201" in to.placeholder, what="a US example")
        assert to.placeholder == "e.g. +1 201-555-0123 or (201) 555-0123"
        hint = str(screen.query_one("#number-info", Static).render())
        assert "+44" not in hint and "e.g. +1 201-555-0123" in hint
        assert str(screen.query_one("#input-body", TextArea).placeholder).startswith("e.g. ")


async def test_a_retrying_message_shows_retrying_and_its_next_attempt(runtime: Runtime) -> None:
    await add_provider(runtime, "sandbox", "sandbox")
    async with runtime.factory() as session, session.begin():
        queued = await queue_test_message(session, provider_name="sandbox", to="+14155550123", body="hi",
                                          default_region=None, actor="test")
        await session.execute(update(Message).where(Message.id == queued.id).values(
            attempts=4, next_attempt_at=FROZEN + timedelta(seconds=75), error_code="SANDBOX-TRANSIENT",
            reason="attempt 4 of 5 failed on provider sandbox (sandbox: simulated transient failure); "
                   "retrying in 75s"))
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_test_send(pilot, app)
        table = screen.query_one("#recent-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1, what="the message")
        assert str(table.get_cell(str(queued.id), "state")) == "retrying"
        assert str(table.get_cell(str(queued.id), "detail")) == (
            "next attempt 09:31:15 · [SANDBOX-TRANSIENT] attempt 4 of 5 failed on provider sandbox "
            "(sandbox: simulated transient failure)")


def test_a_character_that_forces_ucs2_is_named_once_with_its_count() -> None:
    _, why = describe_body(EMOJI * 196, smart=False)
    assert isinstance(why, Text) and why.plain == f"UCS-2 because of {EMOJI} ×196 (first at 1)"
    _, why = describe_body(f"Hi {EMOJI} “you” {EMOJI}", smart=False)
    assert why.plain == (f"UCS-2 because of {EMOJI} ×2 (first at 4)  “ at 6 (look-alike)  ” at 10 (look-alike)")
    _, why = describe_body(f"Hi {EMOJI} “you”", smart=True)  # look-alikes replaced: only the emoji is left
    assert why.plain == f"UCS-2 because of {EMOJI} at 4"


async def test_a_retrying_message_shows_retrying_in_stats_and_its_path(runtime: Runtime) -> None:
    from smsconsole.screens.dialogs.message_path import MessagePathDialog

    await add_provider(runtime, "sandbox", "sandbox")
    async with runtime.factory() as session, session.begin():
        queued = await queue_test_message(session, provider_name="sandbox", to="+14155550123", body="hi",
                                          default_region=None, actor="test")
        await session.execute(update(Message).where(Message.id == queued.id).values(
            attempts=2, next_attempt_at=FROZEN + timedelta(seconds=8),
            reason="attempt 2 of 5 failed on provider sandbox (sandbox: simulated transient failure); retrying in 8s"))
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(120, 36)) as pilot:
        await app.switch_mode("stats")
        recent = app.screen.query_one("#stats-recent-table", DataTable)
        await wait_for(pilot, lambda: recent.row_count == 1, what="the message")
        assert str(recent.get_cell(str(queued.id), "state")) == "retrying"
        assert str(recent.get_cell(str(queued.id), "detail")).startswith("next attempt 09:30:08 · attempt 2 of 5")
        recent.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MessagePathDialog), what="the path")
        summary = str(app.screen.query_one("#message-detail-summary", Static).render())
        assert "state retrying" in summary and "Next attempt 09:30:08" in summary
        assert "retrying in" not in summary
