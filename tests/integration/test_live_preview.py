"""A live campaign's preview and test send render `event` from a sample event: the properties the
operator gives (`--event JSON`), else the person's latest trigger event, else nothing (`event`
renders empty); a scheduled campaign's body naming `event` is a problem. Through the services and
the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from smsconsole import clock
from smsconsole.runtime import Runtime
from smsconsole.services.campaigns.definition import parse_document
from smsconsole.services.campaigns.render import preview
from smsconsole.services.profiles import (
    AudienceDefaults,
    prepare_event,
    prepare_profile,
)
from smsconsole.services.profiles.writing import record_events, upsert_profiles
from tests.integration.cli_support import one_line_error

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
DEFAULTS = AudienceDefaults(region="GB", timezone="UTC")
BODY = "Hi {{ profile.name }}, your cart of {{ event.amount | default: 'some' }} is waiting ({{ event.name }})"
CART: dict[str, Any] = {
    "name": "Abandoned cart", "type": "inaction", "when": {"timezone": "Europe/London"},
    "who": {"trigger": {"event": "add_to_cart", "cancel_event": "checkout", "within_minutes": "5m"}},
    "what": {"route": {"group": "uk"}, "body": BODY},
}


async def _people_and_events(rt: Runtime) -> None:
    """Asha (u1) added to her cart twice (the latest: 120), Ben (u2) never."""
    async with rt.factory() as session, session.begin():
        types: dict[str, str] = {}
        people = [prepare_profile({"user_id": user, "phone": phone, "name": name, "optin_at": "2026-01-05"},
                                  DEFAULTS, types)
                  for user, phone, name in (("u1", "+447400123401", "Asha"), ("u2", "+447400123402", "Ben"))]
        await upsert_profiles(session, people, source="import", defaults=DEFAULTS)
        event_types: dict[str, str] = {}
        events = [prepare_event({"user_id": "u1", "name": "add_to_cart", "at": at, "properties": {"amount": amount}},
                                DEFAULTS, event_types)
                  for at, amount in (("2026-11-30T10:00:00Z", 80), ("2026-11-30T11:00:00Z", 120))]
        await record_events(session, events, source="import", defaults=DEFAULTS, may_trigger=False)


def _document(data: dict[str, Any]) -> Any:
    document, _ = parse_document(data)
    return document


async def test_preview_renders_the_persons_latest_event_or_the_one_given(runtime: Runtime) -> None:
    clock.freeze(NOW)
    await _people_and_events(runtime)
    async with runtime.factory() as session:
        shown = await preview(session, _document(CART), profile_ref="u1")
        assert (shown.text, shown.event_label, shown.problem) == (
            "Hi Asha, your cart of 120 is waiting (add_to_cart)", "add_to_cart of 2026-11-30 11:00 UTC", None)
        # With no profile named, the sample is someone who did the trigger event.
        shown = await preview(session, _document(CART))
        assert shown.profile_label == "Asha (u1)" and "120" in shown.text
        shown = await preview(session, _document(CART), profile_ref="u2")
        assert (shown.text, shown.event_label) == (
            "Hi Ben, your cart of some is waiting ()", "none: no add_to_cart event yet (event.* renders empty)")
        shown = await preview(session, _document(CART), profile_ref="u2", event={"amount": 99.5})
        assert (shown.text, shown.event_label) == ("Hi Ben, your cart of 99.5 is waiting (add_to_cart)", "as given")


async def test_a_scheduled_campaigns_body_may_not_name_event(runtime: Runtime) -> None:
    clock.freeze(NOW)
    await _people_and_events(runtime)
    scheduled = {"name": "Sale", "type": "one_time", "when": {"at": "now"}, "what": {"body": BODY}}
    async with runtime.factory() as session:
        shown = await preview(session, _document(scheduled), profile_ref="u1")
    assert shown.text == "" and shown.event_label is None
    assert shown.problem == ("the template has an error at line 1, column 40: event.<property> is only available "
                             "in live campaigns (single action, inaction within time, on a date)")


@pytest.fixture
def setup(cli, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """A Sandbox provider in group "uk", Asha and Ben, and the live campaign C1 (a draft)."""
    clock.freeze(NOW)
    (tmp_path / "people.csv").write_text("user_id,phone,name,optin_at\nu1,+447400123401,Asha,2026-01-05\n"
                                         "u2,+447400123402,Ben,2026-01-05\n")
    (tmp_path / "cart.json").write_text(json.dumps(CART))
    for argv in (("providers", "add", "sandbox", "--name", "sbx"), ("groups", "create", "uk", "--providers", "sbx"),
                 ("import", "profiles", str(tmp_path / "people.csv")),
                 ("campaigns", "create", "--file", str(tmp_path / "cart.json"))):
        code, out, err = cli(*argv)
        assert code == 0, out + err
    return tmp_path


def test_cli_preview_and_test_take_a_sample_event(cli, setup: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("campaigns", "preview", "C1", "--profile", "u2", "--event", '{"amount": 120}')
    assert code == 0, out
    assert out.splitlines()[:2] == ["C1 'Abandoned cart' as Ben (u2), event as given:",
                                    "  Hi Ben, your cart of 120 is waiting (add_to_cart)"]
    code, out, _ = cli("campaigns", "preview", "C1", "--profile", "u2", "--json")
    shown = json.loads(out)
    assert (shown["text"], shown["event_label"]) == ("Hi Ben, your cart of some is waiting ()",
                                                     "none: no add_to_cart event yet (event.* renders empty)")
    code, out, _ = cli("campaigns", "test", "C1", "--profile", "u1", "--to", "+447400123499",
                       "--event", '{"amount": 7}')
    assert code == 0, out
    assert out.splitlines()[0] == ("C1 test as Asha (u1), event as given, through group uk: "
                                   "'Hi Asha, your cart of 7 is waiting (add_to_cart)'")


@pytest.mark.parametrize("given", ["[1, 2]", "{amount: 1}", "12"], ids=["list", "not-json", "number"])
def test_cli_event_must_be_a_json_object(cli, setup: Path, given: str) -> None:  # type: ignore[no-untyped-def]
    for command in (("preview", "C1"), ("test", "C1", "--to", "+447400123499")):
        code, _, err = cli("campaigns", *command, "--event", given)
        assert code == 2
        assert one_line_error(err) == ('smsconsole: error: --event: must be a JSON object of the event\'s '
                                       'properties, e.g. {"amount": 120}')


async def test_the_at_menu_offers_the_trigger_events_properties(runtime: Runtime) -> None:
    from smsconsole.services.campaigns.render import known_properties

    await _people_and_events(runtime)
    async with runtime.factory() as session:
        known = await known_properties(session, event="add_to_cart")
        assert known[-3:] == ["event.name", "event.at", "event.properties.amount"]
        assert not any(name.startswith("event.") for name in await known_properties(session))


async def test_scheduling_names_event_in_a_scheduled_campaigns_body_at_what_body(runtime: Runtime) -> None:
    from smsconsole.services.campaigns import crud
    from smsconsole.services.errors import ValidationError

    clock.freeze(NOW)
    await _people_and_events(runtime)
    scheduled = {"name": "Sale", "type": "one_time", "when": {"at": "now"}, "who": {"definition": {"conditions": []}},
                 "what": {"body": "Your {{ event.amount }}"}}
    async with runtime.factory() as session, session.begin():
        view = await crud.create_campaign(session, scheduled, actor="test")
        with pytest.raises(ValidationError) as refused:
            await crud.schedule_campaign(session, view.code, actor="test")
    reason = ("line 1, column 9: event.<property> is only available in live campaigns (single action, "
              "inaction within time, on a date)")
    assert ("what.body", reason) in refused.value.problems
