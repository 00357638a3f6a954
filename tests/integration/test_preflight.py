"""The preflight on both databases, case by case: senders of allowed types and their registrations,
DLT template matching of the rendered body, send windows (and DND delay fixing them), consent on
record, opt-out text, look-alikes, filtered links, cost against hand-computed figures and the
budget; scheduling refused by a blocking finding (and allowed in warn mode); the check again at run
start holding the run, or suppressing only the blocked country's recipients."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import insert, select

from smsconsole import clock
from smsconsole.models import Campaign, CampaignRun, Message, Profile, Setting
from smsconsole.runtime import Runtime
from smsconsole.services import groups, providers
from smsconsole.services.campaigns import crud
from smsconsole.services.campaigns.definition import parse_document
from smsconsole.services.campaigns.materialize import materialize_run
from smsconsole.services.campaigns.runs import start_due_runs
from smsconsole.services.compliance import prices, senders, templates
from smsconsole.services.compliance.preflight import Preflight, PreflightBlocked, preflight_campaign

NOW = datetime(2026, 12, 21, 9, 0, tzinfo=UTC)
NIGHT = datetime(2026, 12, 22, 10, 0, tzinfo=UTC)  # 02:00 in San Francisco, 15:30 in India, 10:00 in London
DAY = datetime(2026, 12, 22, 18, 0, tzinfo=UTC)  # 10:00 in San Francisco, 23:30 in India, 18:00 in London
ACTOR = "test"


async def add_people(rt: Runtime, country: str, prefix: str, count: int, *, zone: str | None = None,
                     opted_in: bool = True, start: int = 0, properties: dict[str, Any] | None = None) -> None:
    rows = [{"phone": f"{prefix}{start + n:06d}", "phone_status": "valid", "sms_capable": True, "country": country,
             "timezone": zone, "subscription": "subscribed", "subscription_at": NOW if opted_in else None,
             "name": f"P{n}", "properties": properties or {}, "created_at": NOW, "updated_at": NOW}
            for n in range(count)]
    async with rt.factory() as session, session.begin():
        await session.execute(insert(Profile), rows)


async def add_provider(rt: Runtime, name: str, sender: str, *, countries: str | None = None) -> None:
    async with rt.factory() as session, session.begin():
        await providers.create_provider(session, rt.box, kind="sandbox", name=name, values={"sender": sender},
                                        actor=ACTOR)
        await groups.create_group(session, name=f"{name}-group", providers=[name], countries=countries, actor=ACTOR)


def doc(body: str = "Hi {{ profile.name }}, 20% off today. Reply STOP to opt out", *, at: datetime = DAY,
        country: str | None = None, **extra: Any) -> dict[str, Any]:
    who: dict[str, Any] = {"definition": {"conditions": [{"reachable": True}]}}
    if country:
        who["definition"] = {"conditions": [{"field": "country", "op": "equals", "value": country}]}
    return {"name": "Sale", "type": "one_time", "when": {"timezone": "UTC", "at": at.strftime("%Y-%m-%d %H:%M"),
                                                           **extra.pop("when", {})},
            "who": who, "what": {"route": {}, "body": body, **extra.pop("what", {})}, **extra}


async def check(rt: Runtime, document: dict[str, Any]) -> Preflight:
    clock.freeze(NOW)
    parsed, problems = parse_document(document, default_timezone="UTC", strict=True)
    assert problems == []
    async with rt.factory() as session:
        return await preflight_campaign(session, parsed, now=NOW)


def codes(p: Preflight, severity: str | None = None) -> set[tuple[str, str | None, int]]:
    return {(f.code, f.country, f.recipients) for f in p.findings if severity is None or f.severity == severity}


async def register(rt: Runtime, **kwargs: Any) -> None:
    async with rt.factory() as session, session.begin():
        await senders.add_sender(session, actor=ACTOR, **kwargs)


async def test_us_needs_an_allowed_registered_sender_and_a_daytime_send(runtime: Runtime) -> None:
    await add_people(runtime, "US", "+1415555", 7, zone="America/Los_Angeles")
    await add_people(runtime, "US", "+1415556", 2, zone="America/Los_Angeles", opted_in=False)
    await add_provider(runtime, "sbx", "ACME")
    # nothing registered on the Sandbox: its sender is not checked; the night send and missing opt-ins are
    found = await check(runtime, doc(at=NIGHT))
    assert codes(found, "block") == {("send_window", "US", 9), ("consent", "US", 2)}
    window = next(f for f in found.findings if f.code == "send_window")
    assert "02:00" in window.message and "08:00–21:00" in window.message and "do-not-disturb" in window.fix

    # an alphanumeric sender registered for the Sandbox: not allowed in the US
    await register(runtime, provider="sbx", value="ACME", countries="GB")
    await register(runtime, provider="sbx", value="ACMEUS", type="alphanumeric", countries="US")
    found = await check(runtime, doc())
    no_sender = next(f for f in found.findings if f.code == "no_sender")
    assert (no_sender.country, no_sender.recipients, no_sender.severity) == ("US", 9, "block")
    assert "long code, short code or toll-free" in no_sender.message and "ACMEUS" in no_sender.message

    # a long code without a 10DLC campaign, then with an active one
    await register(runtime, provider="sbx", value="+14155550100", countries="US")
    found = await check(runtime, doc(what={"sender": "+14155550100"}))
    assert ("tendlc_unregistered", "US", 9) in codes(found, "block")
    async with runtime.factory() as session, session.begin():
        await templates.add_tendlc_campaign(session, campaign_id="CABC123", brand_id="BXYZ", use_case="MARKETING",
                                            samples=["Hi Ann, 20% off today. Reply STOP to opt out"], actor=ACTOR)
        [long_code] = [s for s in await senders.list_senders(session) if s.value == "+14155550100"]
        await senders.update_sender(session, long_code.id, tendlc_campaign="CABC123", actor=ACTOR)
    found = await check(runtime, doc(what={"sender": "+14155550100"}))
    assert codes(found, "block") == {("consent", "US", 2)}
    # transactional content: no consent or window rule applies to it in the US
    found = await check(runtime, doc(at=NIGHT, what={"sender": "+14155550100"},
                                     compliance={"category": "transactional"}))
    assert codes(found, "block") == set()


async def test_dnd_delay_moves_a_night_send_into_the_window(runtime: Runtime) -> None:
    await add_people(runtime, "US", "+1415555", 4, zone="America/Los_Angeles")
    await add_provider(runtime, "sbx", "ACME")
    found = await check(runtime, doc(at=NIGHT, when={"dnd": {"start": "21:00", "end": "09:00", "action": "delay"}}))
    assert codes(found, "block") == set()
    # a DND window that ends before 08:00 leaves the send at 07:00, still outside
    found = await check(runtime, doc(at=NIGHT, when={"dnd": {"start": "21:00", "end": "07:00", "action": "delay"}}))
    [window] = [f for f in found.findings if f.code == "send_window"]
    assert "07:00" in window.message


async def test_india_body_must_match_a_registered_dlt_template_of_its_header(runtime: Runtime) -> None:
    await add_people(runtime, "IN", "+9198100", 5, zone="Asia/Kolkata", properties={"order": "A-77"})
    await add_provider(runtime, "sbx", "ACMEIN")
    await register(runtime, provider="sbx", value="ACMEIN", countries="IN", dlt_entity_id="1101234567890123456")
    async with runtime.factory() as session, session.begin():
        await templates.add_dlt_template(session, template_id="1107160000000000001", header="ACMEIN",
                                         category="transactional",
                                         content="Dear {#var#}, your order {#var#} is shipped. -ACME", actor=ACTOR)
    good = "Dear {{ profile.name }}, your order {{ profile.properties.order }} is shipped. -ACME"
    found = await check(runtime, doc(good, compliance={"category": "transactional"}))
    assert not [f for f in found.findings if f.code.startswith("dlt")]
    found = await check(runtime, doc(good.replace("Dear", "Hi"), compliance={"category": "transactional"}))
    [dlt] = [f for f in found.findings if f.code == "dlt_template"]
    assert (dlt.severity, dlt.country, dlt.recipients) == ("block", "IN", 5)
    assert '"Dear"' in dlt.message and '"Hi"' in dlt.message
    # a template id the campaign names must exist
    found = await check(runtime, doc(good, compliance={"category": "transactional"},
                                     what={"dlt": {"dlt_template_id": "1107169999999999999"}}))
    assert any(f.code == "dlt_template" and "1107169999999999999 is not registered" in f.message
               for f in found.findings)
    # the header without its entity id is not a DLT registration
    async with runtime.factory() as session, session.begin():
        [header] = await senders.list_senders(session, implicit=False)
        await senders.update_sender(session, header.id, dlt_entity_id=None, actor=ACTOR)
    found = await check(runtime, doc(good, compliance={"category": "transactional"}))
    assert ("dlt_unregistered", "IN", 5) in codes(found, "block")


async def test_warnings_name_what_and_how_many(runtime: Runtime) -> None:
    await add_people(runtime, "GB", "+447700", 6)
    await add_provider(runtime, "sbx", "ACME")
    body = "Big sale “today” at https://bit.ly/x1"  # curly quotes force UCS-2; bit.ly is filtered; no STOP
    found = await check(runtime, doc(body))
    assert codes(found, "block") == set()
    warned = {f.code: f for f in found.findings if f.severity == "warn"}
    assert warned["opt_out_text"].country == "GB" and warned["opt_out_text"].recipients == 6
    assert "“" in warned["lookalike_ucs2"].message and "UCS-2" in warned["lookalike_ucs2"].message
    assert "bit.ly" in warned["filtered_link"].message
    assert "no_price" in warned
    long_body = "Sale " + "x" * 600 + " Reply STOP to opt out"
    found = await check(runtime, doc(long_body))
    assert any(f.code == "long_message" for f in found.findings)


async def test_cost_is_recipients_times_segments_times_price_and_the_budget_blocks(runtime: Runtime) -> None:
    await add_people(runtime, "GB", "+447700", 10)
    await add_people(runtime, "DE", "+4915100", 4)
    await add_provider(runtime, "sbx", "ACME")
    async with runtime.factory() as session, session.begin():
        await prices.set_price(session, provider="sbx", country="GB", amount="0.04", currency="GBP", actor=ACTOR)
        await prices.set_price(session, provider="sbx", country="DE", amount="0.09", currency="EUR",
                               unit="message", actor=ACTOR)
    body = "Winter sale, " + "a" * 150 + " Reply STOP to opt out"  # 185 GSM-7 characters: 2 segments
    found = await check(runtime, doc(body))
    lines = {line.country: line for line in found.cost.countries}
    assert lines["GB"].segments == 2 and lines["GB"].cost == pytest.approx(10 * 2 * 0.04)
    assert lines["DE"].cost == pytest.approx(4 * 0.09)  # per message: segments do not count
    assert found.cost.totals == pytest.approx({"GBP": 0.8, "EUR": 0.36})
    assert found.cost.margin == 0 and found.cost.sampled == 14  # every message rendered
    assert found.cost.saving_shorter["GBP"] == pytest.approx(10 * 0.04)
    # a control group of 50% halves who is sent to, and the cost
    half = await check(runtime, doc(body, what={"control": 50}))
    gb = next(line for line in half.cost.countries if line.country == "GB")
    assert gb.recipients == 5 and half.cost.totals["GBP"] == pytest.approx(5 * 2 * 0.04)
    over = await check(runtime, doc(body, budget={"amount": 0.5, "currency": "GBP"}))
    [budget] = [f for f in over.findings if f.code == "budget"]
    assert budget.severity == "block" and "0.80 GBP" in budget.message and "0.50 GBP" in budget.message
    assert any(f.code == "budget_currency" for f in over.findings)  # the EUR part cannot count


async def test_scheduling_is_refused_by_a_blocking_finding_unless_enforcement_is_warn(runtime: Runtime) -> None:
    await add_people(runtime, "US", "+1415555", 3, zone="America/Los_Angeles")
    await add_provider(runtime, "sbx", "ACME")
    clock.freeze(NOW)
    async with runtime.factory() as session, session.begin():
        view = await crud.create_campaign(session, doc(at=NIGHT), actor=ACTOR)
    with pytest.raises(PreflightBlocked) as refused:
        async with runtime.factory() as session, session.begin():
            await crud.schedule_campaign(session, view.id, actor=ACTOR)
    assert "US" in str(refused.value) and "quiet hours" in str(refused.value)
    async with runtime.factory() as session:
        assert (await session.get(Campaign, view.id)).state == "draft"
    async with runtime.factory() as session, session.begin():
        session.add(Setting(key="compliance_enforcement", value="warn", updated_at=NOW))
    async with runtime.factory() as session, session.begin():
        scheduled = await crud.schedule_campaign(session, view.id, actor=ACTOR)
    assert scheduled.state == "scheduled"


@pytest.mark.parametrize("on_block", ["hold", "suppress"])
async def test_run_start_holds_the_run_or_suppresses_the_blocked_country(runtime: Runtime, on_block: str) -> None:
    await add_people(runtime, "US", "+1415555", 3, zone="America/Los_Angeles")
    await add_people(runtime, "GB", "+447700", 4)
    await add_provider(runtime, "sbx", "ACME")
    clock.freeze(NOW)
    async with runtime.factory() as session, session.begin():
        view = await crud.create_campaign(session, doc(at=DAY, compliance={"on_block": on_block}), actor=ACTOR)
        await crud.schedule_campaign(session, view.id, actor=ACTOR)  # 10:00 in San Francisco: fine then
    # before the run starts the US people lose their opt-in record (a bad re-import)
    async with runtime.factory() as session, session.begin():
        for row in await session.scalars(select(Profile).where(Profile.country == "US")):
            row.subscription_at = None
    clock.freeze(DAY)
    started = await start_due_runs(runtime.factory, now=DAY)
    async with runtime.factory() as session:
        run = await session.scalar(select(CampaignRun).where(CampaignRun.campaign_id == view.id))
        campaign = await session.get(Campaign, view.id)
    assert run.preflight is not None and run.preflight["blocked_countries"] == ["US"]
    json.dumps(run.preflight)  # stored as JSON
    if on_block == "hold":
        assert started == [] and run.state == "blocked" and campaign.state == "blocked"
        assert "US" in run.reason and "opt-in" in run.reason
        return
    assert started == [run.id]
    await materialize_run(runtime.factory, run.id)
    async with runtime.factory() as session:
        rows = list(await session.scalars(select(Message).where(Message.run_id == run.id)))
    by_country = {(m.country, m.state) for m in rows}
    assert by_country == {("US", "suppressed"), ("GB", "queued")}
    assert len(rows) == 7
    us = [m for m in rows if m.country == "US"]
    assert all(m.reason and m.reason.startswith("compliance: ") and "opt-in" in m.reason for m in us)
    assert all(not m.render and m.next_attempt_at is None for m in us)


def test_cli_preflight_and_schedule(cli: Any, tmp_path: Any) -> None:
    """`campaigns preflight` prints the verdict, each finding and the cost, exit 1 when blocked;
    `campaigns schedule` prints the findings and one line, exit non-zero; --json is whole."""
    clock.freeze(NOW)
    (tmp_path / "everyone.json").write_text('{"conditions": []}')
    (tmp_path / "people.csv").write_text("user_id,phone,name,optin_at\n" + "".join(
        f"u{n},+1415555010{n},P{n},2026-01-05\n" for n in range(3)))
    campaign = doc(at=NIGHT)
    campaign["who"] = {"segment": "Everyone"}
    (tmp_path / "c.json").write_text(json.dumps(campaign))
    for argv in (("segments", "create", "Everyone", "--file", str(tmp_path / "everyone.json")),
                 ("providers", "add", "sandbox", "--name", "sbx"), ("groups", "create", "all", "--providers", "sbx"),
                 ("import", "profiles", str(tmp_path / "people.csv")), ("prices", "set", "sbx", "US", "0.0079"),
                 ("campaigns", "create", "--file", str(tmp_path / "c.json"))):
        code, out, err = cli(*argv)
        assert code == 0, out + err
    code, out, _ = cli("campaigns", "preflight", "C1")
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "C1 'Sale'"
    assert lines[1].startswith("preflight BLOCKS: 1 blocking finding (US)")
    assert any(line.startswith("BLOCKS US (3): ") and "quiet hours" in line and "— fix: " in line for line in lines)
    assert "estimated cost: 0.02 USD" in lines
    code, out, _ = cli("campaigns", "preflight", "C1", "--json")
    data = json.loads(out)
    assert code == 1 and data["blocked_countries"] == ["US"]
    assert data["cost"]["totals"] == {"USD": pytest.approx(3 * 0.0079)}
    code, out, err = cli("campaigns", "schedule", "C1")
    assert code != 0 and out == ""
    assert err.splitlines()[0].startswith("BLOCKS US (3): ")
    assert "not scheduled: preflight: US: " in err.splitlines()[-1]
    code, _, err = cli("campaigns", "preflight", "C9")
    assert code != 0 and "C9" in err and "Traceback" not in err
