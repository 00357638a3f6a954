"""A/B variants and the control group in the send path, on both databases with a frozen clock:
a run's rows carry each person's stable arm (split accuracy over 10,000 people, the same arm on
every run of a recurring campaign, the SQL and the Python assignment agreeing); control rows are
recorded (state `control`), never claimed, rendered nor sent, and stay so through pause, resume
and stop, and a run whose only rows left are control rows completes; each variant's message goes
out with its own body, Generic fields and DLT fields through a Generic provider on a loopback
fake gateway; a live action campaign assigns arms the same way; the CLI previews and test-sends
one variant (`--variant`), and a variant the campaign does not have is one line and exit 2."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select

from smsconsole import clock
from smsconsole.engine.dispatcher import DispatchSettings, Dispatcher
from smsconsole.models import Campaign, CampaignRun, Message, MessageAttempt, Profile
from smsconsole.runtime import Runtime
from smsconsole.services.campaigns.arms import CONTROL, arm_of
from smsconsole.services.campaigns.definition import parse_document
from smsconsole.services.campaigns.lifecycle import pause_campaign, resume_campaign, stop_campaign
from smsconsole.services.campaigns.materialize import materialize_run
from smsconsole.services.campaigns.records import reference_problems
from smsconsole.services.campaigns.runs import settle_runs, start_due_runs
from smsconsole.services.messages import message_view
from smsconsole.services.profiles import AudienceDefaults, prepare_event, record_events
from tests.fakes.generic import FakeGateway
from tests.fakes.server import serve
from tests.integration.cli_support import one_line_error
from tests.integration.dispatch_support import add_provider

PLANNED = datetime(2026, 12, 24, 10, 0, tzinfo=UTC)
EVERYONE: dict[str, Any] = {"conditions": []}
# A is UCS-2 (the emoji), B is plain GSM-7 and longer than one part: each row's encoding and parts
# follow its own variant's body.
BODY_A = "A: Hi {{ profile.name | default: \"there\" }} 🎉"
BODY_B = "B: Hello {{ profile.name | default: \"there\" }}, " + "x" * 160


def document(what: dict[str, Any], *, type_: str = "one_time", when: dict[str, Any] | None = None,
             name: str = "Spring sale") -> dict[str, Any]:
    return {"name": name, "type": type_, "when": {"timezone": "UTC", "at": "2026-12-24 10:00", **(when or {})},
            "who": {"definition": EVERYONE}, "what": {"route": {}, **what}}


def three_arms(control: float = 20) -> dict[str, Any]:
    return {"variants": [{"body": BODY_A, "split": 30}, {"body": BODY_B, "split": 25},
                         {"body": "C: Sale", "split": 25}], "control": control}


async def add_profiles(rt: Runtime, count: int, *, start: int = 0) -> None:
    now = clock.now()
    rows = [{"phone": f"+447700{start + n:06d}", "phone_raw": None, "phone_status": "valid", "sms_capable": True,
             "country": "GB", "subscription": "subscribed", "name": f"P{start + n}", "properties": {},
             "subscription_at": now, "created_at": now, "updated_at": now} for n in range(count)]
    async with rt.factory() as session, session.begin():
        await session.execute(insert(Profile), rows)


async def add_campaign(rt: Runtime, doc: dict[str, Any], *, next_run_at: datetime = PLANNED) -> int:
    now = clock.now()
    async with rt.factory() as session, session.begin():
        row = Campaign(name=doc["name"], type=doc["type"], state="scheduled", document=doc, next_run_at=next_run_at,
                       created_at=now, updated_at=now, scheduled_at=now)
        session.add(row)
        await session.flush()
        return row.id


async def run_once(rt: Runtime, at: datetime, *, chunk: int = 4000) -> int:
    clock.freeze(at)
    [run_id] = await start_due_runs(rt.factory, now=at)
    await materialize_run(rt.factory, run_id, chunk=chunk)
    return run_id


async def rows_of(rt: Runtime, run_id: int) -> list[Message]:
    async with rt.factory() as session:
        return list(await session.scalars(select(Message).where(Message.run_id == run_id)
                                          .order_by(Message.profile_id)))


def arms_of(doc: dict[str, Any]) -> Any:
    parsed, problems = parse_document(doc)
    assert problems == []
    return parsed.what.arms


async def test_each_arm_gets_its_split_within_one_and_a_half_points(runtime: Runtime) -> None:
    clock.freeze(PLANNED - timedelta(days=1))
    await add_profiles(runtime, 10_000)
    doc = document(three_arms(control=20))
    campaign_id = await add_campaign(runtime, doc)
    run_id = await run_once(runtime, PLANNED)

    rows = await rows_of(runtime, run_id)
    assert len(rows) == 10_000
    shares = Counter(m.variant for m in rows)
    for arm, split in (("A", 30), ("B", 25), ("C", 25), (CONTROL, 20)):
        assert abs(shares[arm] / 100 - split) <= 1.5, (arm, shares)
    arms = arms_of(doc)
    assert all(m.variant == arm_of(campaign_id, m.profile_id, arms) for m in rows)  # SQL == Python

    shapes = {(m.variant, m.state, m.render, m.encoding, m.segments, m.body) for m in rows}
    assert shapes == {("A", "queued", True, "UCS-2", 1, ""), ("B", "queued", True, "GSM-7", 2, ""),
                      ("C", "queued", True, "GSM-7", 1, ""), (CONTROL, CONTROL, False, "GSM-7", 0, "")}
    control = [m for m in rows if m.variant == CONTROL]
    assert all(m.next_attempt_at is None and m.finished_at == m.created_at == PLANNED for m in control)
    assert all(m.finished_at is None for m in rows if m.variant != CONTROL)
    run = await session_get(runtime, CampaignRun, run_id)
    assert run.materialized == 10_000  # control rows count like messages (the held-out share)


async def test_a_control_row_is_created_at_its_zones_would_be_send_time(runtime: Runtime) -> None:
    """In the recipient's time zone: a variant row waits for its zone's 10:00 (next_attempt_at); a
    control row is created and finished at that instant (the anchor of its conversion window)."""
    clock.freeze(PLANNED - timedelta(days=1))
    await add_profiles(runtime, 40)  # +44: London, 10:00 UTC
    now = clock.now()
    async with runtime.factory() as session, session.begin():
        await session.execute(insert(Profile), [
            {"phone": f"+1212555{n:04d}", "phone_raw": None, "phone_status": "valid", "sms_capable": True,
             "country": "US", "timezone": "America/New_York", "subscription": "subscribed", "properties": {},
             "subscription_at": now, "created_at": now, "updated_at": now} for n in range(40)])
    await add_campaign(runtime, document({"body": "Hi", "control": 50}, when={"user_timezone": True}))
    moment = datetime(2026, 12, 24, 5, 0, tzinfo=UTC)
    clock.freeze(moment)
    [run_id] = await start_due_runs(runtime.factory, now=moment, grace=86400)
    await materialize_run(runtime.factory, run_id, chunk=9)
    local_ten = {"+44": PLANNED, "+12": datetime(2026, 12, 24, 15, 0, tzinfo=UTC)}
    seen = set()
    for m in await rows_of(runtime, run_id):
        due = local_ten[m.to_number[:3]]
        seen.add((m.to_number[:3], m.variant))
        if m.variant == CONTROL:
            assert (m.state, m.created_at, m.finished_at, m.next_attempt_at) == (CONTROL, due, due, None)
        else:
            assert (m.state, m.created_at, m.finished_at, m.next_attempt_at) == ("queued", moment, None, due)
    assert seen == {("+44", "A"), ("+44", CONTROL), ("+12", "A"), ("+12", CONTROL)}


async def session_get(rt: Runtime, model: Any, key: int) -> Any:
    async with rt.factory() as session:
        row = await session.get(model, key)
        assert row is not None
        return row


async def test_a_recurring_campaign_keeps_each_person_in_the_same_arm(runtime: Runtime) -> None:
    clock.freeze(PLANNED - timedelta(days=1))
    await add_profiles(runtime, 600)
    doc = document({"variants": [{"body": "A"}, {"body": "B"}], "control": 10}, type_="recurring",
                   when={"at": None, "recurrence": {"every": "day", "time": "10:00", "start": "2026-12-24"}})
    campaign_id = await add_campaign(runtime, doc)
    first = await run_once(runtime, PLANNED, chunk=97)
    await settle_runs(runtime.factory, now=PLANNED)
    await add_profiles(runtime, 50, start=600)  # newcomers get an arm of their own; nobody else moves
    second = await run_once(runtime, PLANNED + timedelta(days=1), chunk=53)
    assert first != second

    one = {m.profile_id: m.variant for m in await rows_of(runtime, first)}
    two = {m.profile_id: m.variant for m in await rows_of(runtime, second)}
    assert len(one) == 600 and len(two) == 650
    assert all(two[profile_id] == variant for profile_id, variant in one.items())
    arms = arms_of(doc)
    assert all(variant == arm_of(campaign_id, profile_id, arms) for profile_id, variant in two.items())
    assert set(two.values()) == {"A", "B", CONTROL}


# --- sending ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gateway() -> Iterator[FakeGateway]:
    fake = FakeGateway()
    with serve(fake.app) as server:
        fake.url = server.url
        yield fake


@pytest.fixture(autouse=True)
def _fresh(gateway: FakeGateway) -> None:
    gateway.reset()


async def add_gateway(rt: Runtime, gateway: FakeGateway) -> None:
    await add_provider(rt, "gw", kind="generic", url=f"{gateway.url}/send",
                       params="to=$$To\ntext=$$Body\ntid=$$TemplateID\nvars=$$TemplateVariables\ndlt=$$dlt_template_id",
                       custom_keys="dlt_template_id")


async def drain(rt: Runtime) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        dispatcher = Dispatcher(rt.factory, rt.box, client, DispatchSettings(batch_size=25))
        while await dispatcher.run_once():
            pass


SENDING_ARMS: dict[str, Any] = {
    "route": {"provider": "gw"},
    "variants": [
        {"body": "A: Hi {{ profile.name }}", "split": 35, "dlt": {"dlt_template_id": "1107000000000000A"},
         "generic": {"template_id": "TPL-A", "template_variables": ["{{ profile.name }}"]}},
        {"body": "B: Hello {{ profile.name }}, 20% off", "split": 35, "dlt": {"dlt_template_id": "1107000000000000B"},
         "generic": {"template_id": "TPL-B", "template_variables": ["{{ profile.name }}", "20"]}},
    ],
    "control": 30,
}
EXPECTED = {"A": ("A: Hi {name}", "TPL-A", "{name}", "1107000000000000A"),
            "B": ("B: Hello {name}, 20% off", "TPL-B", "{name},20", "1107000000000000B")}


def sent_by_number(gateway: FakeGateway) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for request in gateway.requests:
        form = dict(request.form)
        assert form["to"] not in found, "a message was sent twice"
        found[form["to"]] = form
    return found


async def test_control_rows_are_never_claimed_nor_sent_and_each_variant_sends_its_own(
        runtime: Runtime, gateway: FakeGateway) -> None:
    clock.freeze(PLANNED - timedelta(days=1))
    await add_gateway(runtime, gateway)
    await add_profiles(runtime, 80)
    campaign_id = await add_campaign(runtime, document(SENDING_ARMS))
    run_id = await run_once(runtime, PLANNED, chunk=30)

    # Pause and resume move queued rows to held and back; control rows stay control.
    async with runtime.factory() as session, session.begin():
        await pause_campaign(session, campaign_id, actor="test")
    states = Counter(m.state for m in await rows_of(runtime, run_id))
    assert set(states) == {"held", CONTROL}
    async with runtime.factory() as session, session.begin():
        await resume_campaign(session, campaign_id, actor="test")
    rows = await rows_of(runtime, run_id)
    assert {m.state for m in rows} == {"queued", CONTROL}
    control = {m.id for m in rows if m.state == CONTROL}
    assert 10 <= len(control) <= 40

    await drain(runtime)
    rows = await rows_of(runtime, run_id)
    sent = sent_by_number(gateway)
    assert set(sent) == {m.to_number for m in rows if m.variant != CONTROL}
    for m in rows:
        if m.variant == CONTROL:
            assert (m.state, m.body, m.render, m.attempts, m.sent_at, m.provider_message_id, m.claim_token) == (
                CONTROL, "", False, 0, None, None, None)
            continue
        text, tid, variables, dlt = (value.format(name=f"P{m.to_number[-2:].lstrip('0') or '0'}")
                                     for value in EXPECTED[m.variant])
        form = sent[m.to_number]
        assert (form["text"], form["tid"], form["vars"], form["dlt"]) == (text, tid, variables, dlt)
        assert (m.state, m.body) == ("sent", text)
    async with runtime.factory() as session:
        attempts = await session.scalar(select(func.count()).select_from(MessageAttempt)
                                        .where(MessageAttempt.message_id.in_(control)))
        assert attempts == 0
        assert message_view(await session.get(Message, min(control))).shown_state == "held out (control)"

    # Nothing is left to send: the run completes, though its control rows never leave `control`.
    assert await settle_runs(runtime.factory, now=PLANNED + timedelta(minutes=1)) == [run_id]
    run = await session_get(runtime, CampaignRun, run_id)
    assert run.state == "completed"


async def test_stopping_suppresses_what_waits_and_leaves_control_rows_alone(runtime: Runtime) -> None:
    clock.freeze(PLANNED - timedelta(days=1))
    await add_profiles(runtime, 60)
    campaign_id = await add_campaign(runtime, document({"variants": [{"body": "A"}, {"body": "B"}], "control": 40}))
    run_id = await run_once(runtime, PLANNED)
    async with runtime.factory() as session, session.begin():
        await stop_campaign(session, campaign_id, actor="test")
    states = Counter((m.variant == CONTROL, m.state) for m in await rows_of(runtime, run_id))
    assert set(states) == {(True, CONTROL), (False, "suppressed")}


async def test_a_variant_that_does_not_render_suppresses_only_its_own_messages(
        runtime: Runtime, gateway: FakeGateway) -> None:
    """A run's snapshot written before the schedule-time check could catch it: B's template is
    broken, so B's messages are suppressed with the reason and A's go out."""
    clock.freeze(PLANNED - timedelta(days=1))
    await add_gateway(runtime, gateway)
    await add_profiles(runtime, 30)
    doc = document({"route": {"provider": "gw"}, "variants": [{"body": "A fine"}, {"body": "B {{ profile.name }"}]})
    async with runtime.factory() as session:
        assert [f for f, _ in await reference_problems(session, parse_document(doc)[0])] == ["what.variants.2.body"]
    await add_campaign(runtime, doc)
    run_id = await run_once(runtime, PLANNED)
    await drain(runtime)
    rows = await rows_of(runtime, run_id)
    assert {(m.variant, m.state) for m in rows} == {("A", "sent"), ("B", "suppressed")}
    reasons = {m.reason for m in rows if m.variant == "B"}
    assert len(reasons) == 1 and reasons.pop().startswith("personalization failed: variant B: the template has an error")
    assert {dict(r.form)["text"] for r in gateway.requests} == {"A fine"}


# --- live campaigns ---------------------------------------------------------------------------------


async def test_a_live_action_campaign_assigns_arms_and_sends_only_its_variants(
        runtime: Runtime, gateway: FakeGateway) -> None:
    live_since = PLANNED - timedelta(hours=1)
    clock.freeze(live_since)
    await add_gateway(runtime, gateway)
    people = 120
    now = clock.now()
    async with runtime.factory() as session, session.begin():
        await session.execute(insert(Profile), [
            {"user_id": f"u{n}", "phone": f"+447700{n:06d}", "phone_raw": None, "phone_status": "valid",
             "sms_capable": True, "country": "GB", "subscription": "subscribed", "name": f"P{n}", "properties": {},
             "subscription_at": now, "created_at": now, "updated_at": now} for n in range(people)])
        doc = {"name": "Order thanks", "type": "action", "when": {"timezone": "UTC"},
               "who": {"trigger": {"event": "order"}},
               "what": {"route": {"provider": "gw"}, "control": 25, "variants": [
                   {"body": "A: thanks for {{ event.amount }}", "dlt": {"dlt_template_id": "LA"}},
                   {"body": "B: {{ event.amount }} received, thank you", "dlt": {"dlt_template_id": "LB"}}]}}
        campaign = Campaign(name=doc["name"], type="action", state="running", document=doc, created_at=live_since,
                            updated_at=live_since, scheduled_at=live_since)
        session.add(campaign)
        await session.flush()
        session.add(CampaignRun(campaign_id=campaign.id, number=1, planned_at=live_since, state="live", document=doc,
                                started_at=live_since, materialized_at=live_since, suppressed={},
                                updated_at=live_since))
        campaign_id = campaign.id
    clock.freeze(PLANNED)
    defaults = AudienceDefaults(region=None, timezone="UTC")
    types: dict[str, str] = {}
    events = [prepare_event({"user_id": f"u{n}", "name": "order", "at": PLANNED.isoformat(),
                             "properties": {"amount": n}}, defaults, types) for n in range(people)]
    async with runtime.factory() as session, session.begin():
        await record_events(session, events, source="api", defaults=defaults)

    async with runtime.factory() as session:
        rows = list(await session.scalars(select(Message).where(Message.campaign_id == campaign_id)))
        ids = dict((await session.execute(select(Profile.id, Profile.user_id))).all())
    assert len(rows) == people
    arms = arms_of(doc)
    assert all(m.variant == arm_of(campaign_id, m.profile_id, arms) for m in rows)
    assert {(m.variant, m.state, m.render) for m in rows} == {
        ("A", "queued", True), ("B", "queued", True), (CONTROL, CONTROL, False)}
    assert all(m.finished_at == m.created_at == PLANNED and m.next_attempt_at is None
               for m in rows if m.variant == CONTROL)

    await drain(runtime)
    sent = sent_by_number(gateway)
    by_number = {m.to_number: m for m in rows}
    assert set(sent) == {m.to_number for m in rows if m.variant != CONTROL}
    for number, form in sent.items():
        m = by_number[number]
        amount = int(ids[m.profile_id][1:])
        expected = {"A": (f"A: thanks for {amount}", "LA"), "B": (f"B: {amount} received, thank you", "LB")}
        assert (form["text"], form["dlt"]) == expected[m.variant]
    async with runtime.factory() as session:
        states = Counter(await session.scalars(select(Message.state).where(Message.campaign_id == campaign_id)))
    assert set(states) == {"sent", CONTROL}


# --- the CLI ----------------------------------------------------------------------------------------


@pytest.fixture
def setup(cli, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """A segment "Londoners" (everyone), a Sandbox provider in the group "uk", one profile u1, and
    a campaign C1 with variants A and B and a control group."""
    clock.freeze(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    (tmp_path / "everyone.json").write_text('{"conditions": []}')
    (tmp_path / "people.csv").write_text("user_id,phone,name,optin_at\nu1,+447400123401,Asha,2026-01-05\n")
    campaign = {"name": "Spring sale", "type": "one_time",
                "when": {"timezone": "Europe/London", "at": "2026-12-24 10:00"},
                "who": {"segment": "Londoners"},
                "what": {"route": {"group": "uk"}, "control": 10, "variants": [
                    {"body": "Hi {{ profile.name }}, 20% off", "split": 45},
                    {"body": "{{ profile.name }}: your code SAVE20 🎉", "split": 45}]}}
    (tmp_path / "c.json").write_text(json.dumps(campaign))
    for argv in (("segments", "create", "Londoners", "--file", str(tmp_path / "everyone.json")),
                 ("providers", "add", "sandbox", "--name", "sbx"), ("groups", "create", "uk", "--providers", "sbx"),
                 ("import", "profiles", str(tmp_path / "people.csv")),
                 ("campaigns", "create", "--file", str(tmp_path / "c.json"))):
        code, out, err = cli(*argv)
        assert code == 0, out + err
    return tmp_path


def test_cli_previews_and_test_sends_one_variant(cli, setup: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("campaigns", "preview", "C1", "--profile", "u1")
    assert code == 0 and out.splitlines()[:2] == ["C1 'Spring sale' variant A as Asha (u1):", "  Hi Asha, 20% off"]
    code, out, _ = cli("campaigns", "preview", "C1", "--profile", "u1", "--variant", "b")
    assert code == 0
    assert out.splitlines() == ["C1 'Spring sale' variant B as Asha (u1):", "  Asha: your code SAVE20 🎉",
                                "24 characters, UCS-2, 1 part", "UCS-2 because of: 🎉"]
    code, out, _ = cli("campaigns", "preview", "C1", "--profile", "u1", "--variant", "B", "--json")
    assert code == 0 and (json.loads(out)["variant"], json.loads(out)["text"]) == ("B", "Asha: your code SAVE20 🎉")

    code, out, _ = cli("campaigns", "test", "C1", "--profile", "u1", "--to", "+447400123499", "--variant", "B")
    assert code == 0, out
    first, price, second = out.splitlines()
    assert first == "C1 test of variant B as Asha (u1) through group uk: 'Asha: your code SAVE20 🎉'"
    assert price.startswith("price: 1 segment (UCS-2); no price for GB on sbx")
    assert second.startswith("sent: message 1 to +447400123499 via sbx")


@pytest.mark.parametrize(("variant", "message"), [
    ("F", "--variant: the campaign has no variant 'F'; it has variants A, B"),
    ("control", "--variant: the control group is never sent, so it has no message; choose a variant (A, B)"),
])
def test_cli_a_variant_the_campaign_does_not_have_is_one_line(  # type: ignore[no-untyped-def]
        cli, setup: Path, variant: str, message: str) -> None:
    for command in (("preview", "C1"), ("test", "C1", "--to", "+447400123499")):
        code, out, err = cli("campaigns", *command, "--variant", variant)
        assert code == 2 and out == ""
        assert one_line_error(err) == f"smsconsole: error: {message}"
