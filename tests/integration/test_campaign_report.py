"""A campaign's report (services/campaigns/report.py) on SQLite and PostgreSQL: every figure equals
what was counted by hand from rows inserted directly (two runs of an A/B campaign with a control
group: messages in every state, prices in two currencies, error codes, suppression reasons,
control rows, conversions with revenue, replies and STOPs linked to the campaign, a test send),
read from the rollups only; run counts from the rollups; JSON and CSV; the CLI in words, JSON,
CSV and to a file, and its one-line errors for a bad campaign, run or output path."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from smsconsole import clock
from smsconsole.config import Config
from smsconsole.models import Campaign, CampaignConversion, CampaignRun, InboundMessage, Message
from smsconsole.runtime import Runtime
from smsconsole.services.campaigns.report import (
    build_report,
    choose_bucket,
    report_csv,
    report_dict,
    suppression_group,
    write_report,
)
from smsconsole.services.campaigns.runs import run_counts
from smsconsole.services.errors import NotFound, ValidationError
from tests.integration.cli_support import one_line_error

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
LATER = NOW + timedelta(days=1)
DOCUMENT = {
    "name": "Winter sale", "type": "recurring",
    "what": {"variants": [{"body": "Sale today", "split": 40}, {"body": "20% off today", "split": 40}], "control": 20},
    "goal": {"event": "order", "where": [{"property": "amount", "op": "greater", "value": 0}], "window": "24h",
             "value": "amount"},
}


def message(run_id: int, variant: str, state: str, n: int = 1, **values: Any) -> list[dict[str, Any]]:
    at = values.pop("at", NOW)
    base = {"kind": "campaign", "to_number": "+14155550100", "body": "", "encoding": "GSM-7", "segments": 1,
            "state": state, "campaign_id": 1, "run_id": run_id, "variant": variant, "render": True,
            "created_at": at, "updated_at": at}
    if state in ("sent", "delivered", "undelivered"):
        base["sent_at"] = at
    if state in ("delivered", "undelivered", "failed", "suppressed", "control"):
        base["finished_at"] = at
    return [{**base, **values} for _ in range(n)]


async def seed(runtime: Runtime) -> dict[str, int]:
    """Run 1 (20 qualified, 5 held back) and run 2 (5 qualified) of campaign 1; see the figures below."""
    async with runtime.factory() as session, session.begin():
        session.add(Campaign(id=1, name="Winter sale", type="recurring", state="running", document=DOCUMENT,
                             created_at=NOW, updated_at=NOW))
        await session.flush()
        session.add_all([
            CampaignRun(id=11, campaign_id=1, number=1, planned_at=NOW, state="completed", started_at=NOW,
                        qualified=20, suppressed={"unsubscribed": 3, "sampled_out": 2}, updated_at=NOW),
            CampaignRun(id=12, campaign_id=1, number=2, planned_at=LATER, state="running", started_at=LATER,
                        qualified=5, suppressed={}, updated_at=LATER)])
        await session.flush()
        usd, eur = {"provider_name": "alpha", "country": "US"}, {"provider_name": "beta", "country": "GB"}
        four_s, forty_s = NOW + timedelta(seconds=4), NOW + timedelta(seconds=40)
        rows = [
            # run 1, A: 3 delivered (alpha, 0.01 USD each, 4 s), failed 21211, undelivered 30003 (beta), capped
            *message(11, "A", "delivered", 3, **usd, finished_at=four_s, price=0.01, price_currency="USD"),
            *message(11, "A", "failed", 1, **usd, error_code="21211", reason="invalid number"),
            *message(11, "A", "undelivered", 1, **eur, error_code="30003"),
            *message(11, "A", "suppressed", 1, reason="frequency cap: 1 campaign SMS per day"),
            # run 1, B: 2 delivered (beta, 0.02 EUR each, 40 s, 2 segments), sent, unknown, unsubscribed,
            # queued and claimed (both waiting)
            *message(11, "B", "delivered", 2, **eur, finished_at=forty_s, price=0.02, price_currency="EUR", segments=2),
            *message(11, "B", "sent", 1, **eur),
            *message(11, "B", "unknown", 1, **eur, reason="timed out"),
            *message(11, "B", "suppressed", 1, reason="the recipient unsubscribed from SMS"),
            *message(11, "B", "queued", 1), *message(11, "B", "claimed", 1),
            *message(11, "control", "control", 3, render=False, segments=0),
            # run 2, a day later: A delivered (alpha), 1 control row
            *message(12, "A", "delivered", 1, **usd, at=LATER, finished_at=LATER + timedelta(seconds=4), price=0.01,
                     price_currency="USD"),
            *message(12, "control", "control", 1, render=False, segments=0, at=LATER),
            # a test send of the campaign (no run): counted apart
            {**message(11, "A", "delivered", 1, **usd)[0], "kind": "test", "run_id": None},
        ]
        await session.execute(insert(Message), rows)
        conversions = [(11, "A", 10.0), (11, "A", None), (11, "B", 25.5), (11, "control", 5.0), (12, "A", None)]
        await session.execute(insert(CampaignConversion), [
            {"campaign_id": 1, "run_id": run_id, "variant": variant, "profile_id": index, "event_id": index,
             "converted_at": (LATER if run_id == 12 else NOW) + timedelta(hours=1), "revenue": revenue,
             "created_at": NOW, "updated_at": NOW}
            for index, (run_id, variant, revenue) in enumerate(conversions, 1)])
        inbound = [(11, "A", "reply"), (11, "A", "opt_out"), (11, "B", "opt_out"), (None, None, "reply")]
        await session.execute(insert(InboundMessage), [
            {"provider_name": "alpha", "sender": "+14155550100", "recipient": "SANDBOX", "text": "hi",
             "action": action, "campaign_id": 1, "run_id": run_id, "variant": variant, "via": "sandbox",
             "received_at": NOW, "processed_at": NOW, "dedupe_key": f"r{index}"}
            for index, (run_id, variant, action) in enumerate(inbound)])
    return {"campaign": 1}


def arms_of(figures: Any) -> dict[str, Any]:
    return {arm.arm: arm for arm in figures}


async def test_the_report_equals_the_hand_count(runtime: Runtime) -> None:
    clock.freeze(LATER + timedelta(hours=2))
    await seed(runtime)
    async with runtime.factory() as session:
        report = await build_report(session, 1)
    assert (report.code, report.name, report.state, report.run_number) == ("C1", "Winter sale", "running", None)
    assert report.goal == "order (amount > 0) within 1 day of the message, value amount"
    assert report.qualified == 25 and report.held_back == {"unsubscribed": 3, "sampled_out": 2}
    assert report.test_sends == 1

    run1 = report.runs[0]
    assert [r.number for r in report.runs] == [1, 2] and run1.qualified == 20
    arms = arms_of(run1.arms)
    assert list(arms) == ["A", "B", "control"]
    a, b, control = arms["A"], arms["B"], arms["control"]
    assert (a.assigned, a.delivered, a.failed, a.undelivered, a.suppressed, a.reached) == (6, 3, 1, 1, 1, 4)
    assert (a.conversions, a.conversion_rate, a.revenue, a.replies, a.opt_outs) == (2, 0.5, 10.0, 2, 1)
    assert a.cost == pytest.approx(0.03)
    assert a.suppressed_by == {"cap": 1}
    assert [(f.state, f.detail, f.n) for f in a.failures] == [("failed", "21211", 1), ("undelivered", "30003", 1)]
    assert a.latency == {"p50": "≤ 5 s", "p90": "≤ 5 s", "p99": "≤ 5 s"}
    assert (b.assigned, b.queued, b.sent, b.delivered, b.unknown, b.reached, b.segments) == (7, 2, 1, 2, 1, 4, 9)
    assert (b.conversions, b.conversion_rate, b.revenue, b.replies, b.opt_outs) == (1, 0.25, 25.5, 1, 1)
    assert b.suppressed_by == {"unsubscribed": 1}
    assert b.suppressed_reasons == {"the recipient unsubscribed from SMS": 1}
    assert (control.assigned, control.control, control.reached, control.conversions) == (3, 3, 3, 1)
    assert control.conversion_rate == pytest.approx(1 / 3)
    assert (run1.total.reached, run1.total.conversions, run1.total.assigned) == (11, 4, 16)
    assert [lift.variant for lift in run1.lift] == ["A", "B"]

    # every run together
    arms = arms_of(report.arms)
    assert (arms["A"].assigned, arms["A"].reached, arms["A"].conversions) == (7, 5, 3)
    assert arms["A"].conversion_rate == pytest.approx(0.6)
    assert (arms["control"].reached, arms["control"].conversions, arms["control"].revenue) == (4, 1, 5.0)
    assert (report.total.reached, report.total.conversions, report.total.revenue) == (13, 5, 40.5)
    assert (report.total.replies, report.total.opt_outs) == (3, 2)
    assert report.total.cost == pytest.approx(0.08)
    assert report.currencies == ("EUR", "USD") and report.currency is None
    assert report.cost_words() == "0.08 (mixed currencies: EUR, USD)"
    assert report.funnel() == [("qualified", 25), ("reached", 9), ("delivered", 6), ("converted", 4)]
    (lift_a, lift_b) = report.lift
    assert (lift_a.variant, lift_a.people, lift_a.conversions, lift_a.control_people, lift_a.control_conversions) == (
        "A", 5, 3, 4, 1)
    assert "too few people" in lift_a.verdict and not lift_a.significant

    providers = {p.name: p for p in report.providers}
    assert set(providers) == {"alpha", "beta", ""}
    alpha, beta = providers["alpha"], providers["beta"]
    assert (alpha.messages, alpha.sent, alpha.delivered, alpha.failed, alpha.currency) == (5, 4, 4, 1, "USD")
    assert alpha.cost == pytest.approx(0.04) and alpha.delivery_rate == 1.0
    assert (beta.messages, beta.sent, beta.delivered, beta.failed, beta.unknown, beta.currency) == (5, 5, 2, 1, 1, "EUR")
    assert (providers[""].messages, providers[""].queued, providers[""].suppressed) == (4, 2, 2)
    countries = {c.name: (c.messages, c.delivered) for c in report.countries}
    assert countries == {"US": (5, 4), "GB": (5, 2), "": (4, 0)}
    assert report.latency == {"p50": "≤ 5 s", "p90": "≤ 1 min", "p99": "≤ 1 min"}

    # the series: a day and an hour of minutes in at most 60 buckets, every count there
    assert len(report.series) <= 60 and report.bucket_minutes == 30
    assert sum(p.sent for p in report.series) == 9  # the test send included: the series has no run
    assert sum(p.delivered for p in report.series) == 7
    assert sum(p.failed for p in report.series) == 2
    assert sum(p.converted for p in report.series) == 5
    assert report.series[0].at <= NOW and all(p.at.minute in (0, 30) for p in report.series)

    # a refresh that knows the providers' currencies (the page's) reads no message for them
    async with runtime.factory() as session:
        again = await build_report(session, 1, known_currencies={"alpha": "USD", "beta": "EUR"})
    assert (again.currencies, again.total, again.providers) == (report.currencies, report.total, report.providers)
    async with runtime.factory() as session:  # the page's refresh between two series reads
        without = await build_report(session, 1, with_series=False)
    assert (without.series, without.total, without.lift) == ((), report.total, report.lift)


async def test_one_run_and_its_errors(runtime: Runtime) -> None:
    clock.freeze(LATER + timedelta(hours=2))
    await seed(runtime)
    async with runtime.factory() as session:
        report = await build_report(session, 1, run_number=2)
        assert [r.number for r in report.runs] == [2] and report.qualified == 5 and report.held_back == {}
        arms = arms_of(report.arms)
        assert (arms["A"].delivered, arms["A"].conversions, arms["B"].assigned, arms["control"].reached) == (1, 1, 0, 1)
        assert report.currencies == ("USD",) and report.cost_words() == "0.01 USD"
        assert sum(p.sent for p in report.series) == 1  # the run's span: from its start on
        assert sum(p.converted for p in report.series) == 1
        with pytest.raises(NotFound, match="C1 'Winter sale' has no run 3: its runs are 1 to 2"):
            await build_report(session, 1, run_number=3)
        with pytest.raises(NotFound, match="no campaign C9"):
            await build_report(session, 9)


async def test_run_counts_come_from_the_rollups(runtime: Runtime) -> None:
    await seed(runtime)
    async with runtime.factory() as session:
        counts = await run_counts(session, [11, 12])
    one = counts[11]
    assert (one.queued, one.sending, one.sent, one.delivered, one.failed, one.undelivered, one.unknown) == (
        2, 0, 1, 5, 1, 1, 1)
    assert (one.control, one.suppressed, one.open, one.total) == (3, 2, 2, 16)
    assert one.suppressed_by_reason == {"frequency cap: 1 campaign SMS per day": 1,
                                        "the recipient unsubscribed from SMS": 1}
    assert one.held_back == {"unsubscribed": 3, "sampled_out": 2}
    assert (counts[12].delivered, counts[12].control, counts[12].open) == (1, 1, 0)


async def test_json_and_csv(runtime: Runtime, tmp_path: Path) -> None:
    clock.freeze(LATER + timedelta(hours=2))
    await seed(runtime)
    async with runtime.factory() as session:
        report = await build_report(session, 1)
    data = json.loads(json.dumps(report_dict(report)))
    assert data["total"]["conversions"] == 5 and data["funnel"]["reached"] == 9
    assert data["runs"][0]["arms"][0]["failures"][0] == {"state": "failed", "detail": "21211", "n": 1}
    assert data["lift"][0]["variant"] == "A" and data["generated_at"].startswith("2026-11-24T11:30")

    rows = list(csv.DictReader(io.StringIO(report_csv(report))))
    arm = {(r["run"], r["arm"]): r for r in rows if r["section"] == "arm"}
    assert set(arm) == {(run, name) for run in ("1", "2", "all") for name in ("A", "B", "control", "all")}
    assert (arm[("1", "A")]["reached"], arm[("1", "A")]["conversions"], arm[("1", "A")]["conversion_rate"]) == (
        "4", "2", "0.5")
    assert (arm[("all", "all")]["qualified"], arm[("all", "all")]["currency"], arm[("1", "A")]["qualified"]) == (
        "25", "mixed", "")
    sections = {r["section"] for r in rows}
    assert sections == {"arm", "held_back", "suppressed", "failure", "lift", "provider", "country", "latency",
                        "series"}
    held = [(r["run"], r["name"], r["value"]) for r in rows if r["section"] == "held_back"]
    assert held == [("1", "unsubscribed", "3"), ("1", "outside the reach sample", "2")]
    capped = next(r for r in rows if r["section"] == "suppressed" and r["arm"] == "A")
    assert (capped["note"], capped["value"]) == ("cap", "1")
    series = [r for r in rows if r["section"] == "series"]
    assert sum(int(r["sent"]) for r in series) == 9 and {r["value"] for r in series} == {"30"}

    written = write_report(report, str(tmp_path / "r.JSON"))
    assert json.loads(written.read_text())["code"] == "C1"
    for bad, reason in (("", "give a file path"), (str(tmp_path / "r.txt"), "must end in .csv or .json"),
                        (str(tmp_path / "nowhere" / "r.csv"), "no folder"), (str(tmp_path), "must end in")):
        with pytest.raises(ValidationError, match=reason):
            write_report(report, bad)


def test_suppression_groups_and_buckets() -> None:
    assert [suppression_group(reason) for reason in (
        "frequency cap: 3 campaign SMS per week", "do not disturb hours", "safety check: too many",
        "personalization failed: no name", "run aborted: linked content timed out", "recipient replied STOP: opted out",
        "the recipient never opted in to SMS", "campaign stopped")] == [
        "cap", "DND", "safety", "personalization", "personalization", "unsubscribed", "unsubscribed", "other"]
    for span in (1, 59, 60, 61, 600, 1441, 10 * 1440, 400 * 1440):
        bucket = choose_bucket(1000, 1000 + span - 1)
        start = 1000 - 1000 % bucket
        assert (1000 + span - 1 - start) // bucket + 1 <= 60


# --- the command line ----------------------------------------------------------------------------


def seeded(config: Config) -> None:
    async def go() -> None:
        runtime = await Runtime.open(config)
        try:
            await seed(runtime)
        finally:
            await runtime.close()

    asyncio.run(go())


def test_cli_report(cli, config: Config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    clock.freeze(LATER + timedelta(hours=2))
    cli("campaigns", "list")  # migrates the database
    seeded(config)
    code, out, err = cli("campaigns", "report", "C1")
    assert code == 0, err
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert lines[:4] == ["C1  Winter sale — running · all 2 runs",
                         "Goal: order (amount > 0) within 1 day of the message, value amount",
                         "Qualified 25",
                         "Held back before queueing: unsubscribed 3, outside the reach sample 2"]
    assert lines[5].split() == ["ARM", "ASSIGNED", "QUEUED", "REACHED", "DELIV", "FAILED", "SUPPR", "CONV", "RATE",
                                "REVENUE"]
    assert lines[6].split() == ["A", "7", "0", "5", "4", "2", "1", "3", "60.0%", "10.00"]
    assert lines[8].split() == ["control", "4", "-", "4", "-", "-", "-", "1", "25.0%", "5.00"]
    assert "Cost 0.08 (mixed currencies: EUR, USD) · 16 segments · test sends not counted: 1" in out
    assert "Suppressed at claim: A cap 1; B unsubscribed 1" in out
    assert "  A: no clear difference yet: too few people (A 5, control 4; at least 100 each)" in out
    assert "Delivery time (sent → delivered): p50 ≤ 5 s · p90 ≤ 1 min · p99 ≤ 1 min" in out

    code, out, _ = cli("campaigns", "report", "Winter sale", "--run", "1", "--json")
    assert code == 0 and json.loads(out)["run_number"] == 1 and json.loads(out)["qualified"] == 20
    code, out, _ = cli("campaigns", "report", "1", "--csv")
    assert code == 0 and out.startswith("section,run,arm,name,qualified,")
    code, out, _ = cli("campaigns", "report", "C1", "--output", str(tmp_path / "report.csv"))
    assert code == 0 and out.strip() == f"wrote the report of C1 to {tmp_path / 'report.csv'}"
    assert (tmp_path / "report.csv").read_text().startswith("section,run,arm")
    code, _, _ = cli("campaigns", "report", "C1", "--json", "--output", str(tmp_path / "r.out"))
    assert code == 0 and json.loads((tmp_path / "r.out").read_text())["code"] == "C1"

    for argv, expected in (
            (("C9",), "no campaign 'C9'"),
            (("C1", "--run", "7"), "C1 'Winter sale' has no run 7: its runs are 1 to 2"),
            (("C1", "--run", "0"), "--run: must be a run number, 1 or more"),
            (("C1", "--output", str(tmp_path / "r.txt")), "must end in .csv or .json"),
            (("C1", "--output", str(tmp_path / "no" / "r.csv")), "--output: no folder"),
            (("C1", "--csv", "--output", str(tmp_path / "no" / "r.csv")), "--output: no folder"),
            (("C1", "--json", "--csv"), "not allowed with argument")):
        code, out, err = cli("campaigns", "report", *argv)
        assert code == 2 and expected in one_line_error(err), (argv, err)
