"""Settings → API keys: a new key is shown once (never notified, posted or listed afterwards, only
its prefix), a refused name is explained under the field, revoking asks first."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from smsconsole.app import SmsConsoleApp
from smsconsole.messages import ApiKeyCreated, ApiKeyRevoked
from smsconsole.models import ApiKey
from smsconsole.runtime import Runtime
from smsconsole.screens.dialogs.api_key_create import ApiKeyCreateDialog
from smsconsole.screens.dialogs.api_key_created import ApiKeyCreatedDialog
from smsconsole.screens.dialogs.confirm import ConfirmDialog
from smsconsole.screens.settings import SettingsScreen
from smsconsole.screens.widgets.fields import FormField
from smsconsole.services.api_keys import authenticate
from tests.tui.seed import seed_api_keys
from tests.tui.support import make_app, notifications, type_text, wait_for


def key_rows(app: SmsConsoleApp) -> list[list[str]]:
    table = app.screen.query_one("#api-keys-table", DataTable)
    return [[str(cell) for cell in table.get_row(row.key)] for row in table.ordered_rows]


def sent(posted: list[Message], kind: type[Message]) -> list[Any]:
    return list({id(m): m for m in posted if isinstance(m, kind)}.values())


def state_of(app: SmsConsoleApp, name: str) -> str:
    return next(row[4] for row in key_rows(app) if row[0] == name)


async def open_settings(pilot: Pilot[Any], app: SmsConsoleApp, rows: int) -> None:
    await pilot.press("4")
    await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen) and len(key_rows(app)) == rows,
                   what=f"{rows} API keys")


async def test_a_new_key_is_shown_once_and_then_only_its_prefix(runtime: Runtime, posted: list[Message]) -> None:
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24), message_hook=posted.append) as pilot:
        await open_settings(pilot, app, 0)
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, ApiKeyCreateDialog), what="the name dialog")
        dialog = app.screen
        await pilot.press("enter")  # no name
        name_field = dialog.query_one("#field-name", FormField)
        await wait_for(pilot, lambda: name_field.error.reason is not None, what="the name error")
        assert (name_field.error.reason or "").startswith("is required")
        await type_text(pilot, "signup-service")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ApiKeyCreatedDialog), what="the key")
        key = str(app.screen.query_one("#api-key-value", Static).render())
        assert key.startswith("smsc_") and len(key) > 40
        assert "will not be shown again" in str(app.screen.query_one("#api-key-warning", Static).render())
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen) and len(key_rows(app)) == 1,
                       what="the listed key")
        [row] = key_rows(app)
        prefix = key.split("_")[1]
        assert row[:2] == ["signup-service", f"smsc_{prefix}_…"]
        assert row[3:] == ["never", "- (active)"]
        # the key itself went nowhere else: not in a message, a notification or the screen's tables
        assert [(m.name, m.prefix) for m in sent(posted, ApiKeyCreated)] == [("signup-service", prefix)]
        assert not any(key in repr(m) for m in posted)
        assert not any(key in text for text in notifications(app))
        for table in app.screen.query(DataTable):
            assert not any(key in str(cell) for row_key in table.rows for cell in table.get_row(row_key))
    async with runtime.factory() as session:
        stored = (await session.scalars(select(ApiKey))).one()
        assert key not in (stored.key_hash, stored.prefix)
        assert (await authenticate(session, key)) is not None  # the shown key is the one that works


async def test_a_taken_name_is_refused_under_the_field(runtime: Runtime) -> None:
    await seed_api_keys(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_settings(pilot, app, 3)
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, ApiKeyCreateDialog), what="the name dialog")
        await type_text(pilot, "crm-sync")
        await pilot.press("enter")
        name_field = app.screen.query_one("#field-name", FormField)
        await wait_for(pilot, lambda: name_field.error.reason is not None, what="the name error")
        assert "already named 'crm-sync'" in (name_field.error.reason or "")
        await pilot.press("escape")  # a name was typed: it asks first
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the discard question")
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen), what="settings")
        assert len(key_rows(app)) == 3


async def test_revoking_asks_first(runtime: Runtime, posted: list[Message]) -> None:
    await seed_api_keys(runtime)
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(120, 36), message_hook=posted.append) as pilot:
        await open_settings(pilot, app, 3)
        # active first, newest first
        assert [row[0] for row in key_rows(app)] == ["crm-sync", "signup-service", "old-website"]
        assert key_rows(app)[2][4] == "2026-11-03"  # revoked 20 days ago
        table = app.screen.query_one("#api-keys-table", DataTable)
        table.focus()
        table.move_cursor(row=0)  # crm-sync
        await pilot.pause()
        await pilot.press("delete")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question")
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen), what="settings")
        assert state_of(app, "crm-sync") == "- (active)"
        await pilot.press("delete")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question")
        assert "crm-sync" in str(app.screen.query_one("#confirm-question", Static).render())
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen) and state_of(app, "crm-sync") != "- (active)",
                       what="the revoked state")
        assert state_of(app, "crm-sync") == "09:30"  # revoked now
        assert [row[0] for row in key_rows(app)] == ["signup-service", "crm-sync", "old-website"]
        # the cursor stays on the revoked key, which cannot be revoked again
        assert app.screen.query_one("#api-key-revoke").disabled
    assert [m.prefix for m in sent(posted, ApiKeyRevoked)] == ["b4x8n1ze"]
    async with runtime.factory() as session:
        revoked = {name: at for name, at in await session.execute(select(ApiKey.name, ApiKey.revoked_at))}
    assert revoked["crm-sync"] is not None and revoked["signup-service"] is None
