"""A number with letters in it is refused at every door, never read as keypad digits: phonenumbers
alone turns +1415555abcd into +14155552223 and the message goes to a stranger. The CLI (send-test,
sandbox reply, profile lookups), the console's Test send form, the ingestion API, file imports and
the Audience search each refuse it with the same reason and write nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from textual.widgets import Input, Select, Static

from smsconsole.listener.app import create_app
from smsconsole.models import Event, Message, Profile
from smsconsole.runtime import Runtime
from smsconsole.services import api_keys, imports
from smsconsole.services import profiles as P
from smsconsole.services.messages import recent_messages
from smsconsole.screens.send_test import SendTestScreen
from smsconsole.screens.widgets.fields import FormField
from tests.integration.cli_support import one_line_error
from tests.tui.seed import add_provider, set_region
from tests.tui.support import make_app, paste, wait_for

LETTERS = "+1415555abcd"  # phonenumbers alone: +14155552223
KEYPAD = "+14155552223"
REASON = ("The number contains letters (a, b, c, d): a phone number has only digits, spaces, dashes, dots, "
          "parentheses and a leading +.")
US = P.AudienceDefaults(region="US", timezone="UTC")


async def _count(rt: Runtime, model: type, *where: Any) -> int:
    async with rt.factory() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where)) or 0


# --- the CLI ---------------------------------------------------------------------------------------


def test_send_test_refuses_letters_in_one_line_and_sends_nothing(cli) -> None:  # type: ignore[no-untyped-def]
    cli("providers", "add", "sandbox", "--name", "sbx")
    code, out, err = cli("send-test", "--provider", "sbx", "--to", LETTERS, "--body", "x")
    assert (code, out) == (2, "")
    assert one_line_error(err) == f"smsconsole: error: --to: {REASON}"
    code, out, _ = cli("send-test", "--provider", "sbx", "--to", "+14155550123", "--body", "x", "--json")
    assert code == 0 and json.loads(out)["id"] == 1  # the refused one queued nothing


def test_sandbox_reply_refuses_letters_in_the_sender(cli) -> None:  # type: ignore[no-untyped-def]
    cli("providers", "add", "sandbox", "--name", "sbx")
    code, _, err = cli("sandbox", "reply", "--from", "+1 800 FLOWERS", "--text", "STOP")
    assert code == 2
    assert "letters (F, L, O, W, E, R, S)" in one_line_error(err)
    code, out, _ = cli("inbox", "--json")
    assert code == 0 and json.loads(out) == []


def test_profile_lookup_by_a_number_with_letters_finds_nobody(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    stranger = tmp_path / "stranger.csv"
    stranger.write_text(f"user_id,phone\nstranger,{KEYPAD}\n")
    assert cli("import", "profiles", str(stranger))[0] == 0
    assert cli("profiles", "show", KEYPAD)[0] == 0
    code, _, err = cli("profiles", "show", LETTERS)
    assert code != 0 and "no profile" in one_line_error(err)
    code, out, _ = cli("profiles", "search", LETTERS, "--json")
    assert code == 0 and json.loads(out) == []


# --- the ingestion API -----------------------------------------------------------------------------


async def _post(rt: Runtime, path: str, body: Any) -> httpx.Response:
    async with rt.factory() as session, session.begin():
        _, key = await api_keys.create_api_key(session, "tests", "test")
    app = create_app(rt.factory, box=rt.box, engine_state=lambda: "running")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://listener.test") as client:
        return await client.post(path, json=body, headers={"Authorization": f"Bearer {key}"})


async def test_the_profiles_api_refuses_letters_naming_the_field(runtime: Runtime) -> None:
    response = await _post(runtime, "/v1/profiles", [{"user_id": "u0", "phone": "+14155550123"},
                                                     {"user_id": "u1", "phone": LETTERS}])
    assert response.status_code == 422
    assert response.json()["errors"] == [{"index": 1, "field": "phone", "reason": REASON}]
    assert await _count(runtime, Profile) == 0


async def test_the_events_api_refuses_letters_naming_the_field(runtime: Runtime) -> None:
    response = await _post(runtime, "/v1/events", {"user_id": "u1", "phone": LETTERS, "name": "purchase",
                                                   "at": "2026-01-01T00:00:00Z"})
    assert response.status_code == 422
    assert response.json()["errors"] == [{"index": 0, "field": "phone", "reason": REASON}]
    assert (await _count(runtime, Profile), await _count(runtime, Event)) == (0, 0)


# --- imports ---------------------------------------------------------------------------------------


async def test_an_imported_row_with_letters_is_a_bad_row_even_with_a_user_id(runtime: Runtime, tmp_path: Path) -> None:
    source = tmp_path / "people.csv"
    source.write_text(f"user_id,phone\nu1,{LETTERS}\nu2,+14155550123\n,1-800-FLOWERS\n")
    summary = await imports.run_import(runtime.factory, source, "profiles", actor="tester", defaults=US)
    assert [(p.row, p.column, p.reason) for p in summary.problems] == [
        (2, "phone", REASON),
        (4, "phone", "The number contains letters (F, L, O, W, E, R, S): a phone number has only digits, "
                     "spaces, dashes, dots, parentheses and a leading +.")]
    assert (summary.good_rows, summary.bad_rows) == (1, 2)
    assert await _count(runtime, Profile, Profile.phone == KEYPAD) == 0
    assert await _count(runtime, Profile, Profile.user_id == "u1") == 0


async def test_an_imported_event_with_letters_in_its_phone_is_a_bad_row(runtime: Runtime, tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    source.write_text(json.dumps({"user_id": "u1", "phone": LETTERS, "name": "buy", "at": "2026-01-01"}) + "\n")
    summary = await imports.run_import(runtime.factory, source, "events", actor="tester", defaults=US)
    assert [(p.row, p.column, p.reason) for p in summary.problems] == [(1, "phone", REASON)]
    assert await _count(runtime, Event) == 0


# --- the Audience search ---------------------------------------------------------------------------


async def test_the_audience_search_does_not_read_letters_as_digits(runtime: Runtime) -> None:
    async with runtime.factory() as session, session.begin():
        prepared = P.prepare_profile({"user_id": "stranger", "phone": KEYPAD}, US)
        await P.upsert_profiles(session, [prepared], source="test", defaults=US)
    async with runtime.factory() as session:
        assert await P.search_profiles(session, LETTERS, default_region="US") == []
        assert [p.user_id for p in await P.search_profiles(session, KEYPAD, default_region="US")] == ["stranger"]


# --- the console's Test send form ------------------------------------------------------------------


async def test_the_test_send_form_shows_the_letters_under_the_number_and_queues_nothing(runtime: Runtime) -> None:
    await add_provider(runtime, "sandbox", "sandbox")
    await set_region(runtime, "US")
    app = make_app(runtime.config, runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.switch_mode(SendTestScreen.MODE)
        screen = app.screen
        assert isinstance(screen, SendTestScreen)
        select = screen.query_one("#input-provider", Select)
        await wait_for(pilot, lambda: "sandbox" in [v for _, v in select._options], what="the provider")
        select.value = "sandbox"
        screen.query_one("#input-to", Input).focus()
        await pilot.pause()
        paste(pilot, LETTERS)
        await wait_for(pilot, lambda: str(screen.query_one("#number-info", Static).render()) == f"✖ {REASON}",
                       what="the live reason")
        screen.query_one("#input-body").focus()
        await pilot.pause()
        paste(pilot, "hello")
        await pilot.click("#send")
        field = screen.query_one("#field-to", FormField)
        await wait_for(pilot, lambda: field.error.reason is not None, what="the field error")
        assert field.error.reason == REASON
    async with runtime.factory() as session:
        assert await recent_messages(session, kind="test") == []
    assert await _count(runtime, Message) == 0
