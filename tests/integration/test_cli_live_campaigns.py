"""`smsconsole campaigns …` with live campaigns, in-process on SQLite and PostgreSQL: README's
abandoned-cart file (TOML) created and shown in words, a bad trigger named field by field in one
line (exit 2), list and show of a live campaign with its pending waits, today's counts, held back
by reason, the target and the latest messages (rows written as the engine leaves them), and
`--json`. The clock is frozen at Thursday 3 December 2026, 10:00 UTC."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from smsconsole import clock
from smsconsole.config import Config
from smsconsole.models import (
    Campaign,
    CampaignLiveDay,
    CampaignRun,
    CampaignWait,
    Event,
    Message,
    Profile,
    PropertyDef,
)
from tests.integration.cli_support import one_line_error
from tests.integration.test_cli_campaigns import in_database, write

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
SENTENCE = "When someone does add_to_cart (amount > 100) and does not do checkout within 5 minutes"


def readme_toml_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("\n## Live campaigns"):]
    start = section.index("```toml\n") + 8
    return section[start:section.index("\n```", start)] + "\n"


@pytest.fixture
def setup(cli, tmp_path: Path, config: Config) -> Path:  # type: ignore[no-untyped-def]
    """A segment "Londoners" (everyone), a Sandbox provider in the group "uk", the catalog's
    add_to_cart amount and checkout total."""
    clock.freeze(NOW)
    (tmp_path / "everyone.json").write_text('{"conditions": []}')
    for argv in (("segments", "create", "Londoners", "--file", str(tmp_path / "everyone.json")),
                 ("providers", "add", "sandbox", "--name", "sbx"), ("groups", "create", "uk", "--providers", "sbx")):
        code, out, err = cli(*argv)
        assert code == 0, out + err

    async def catalog(session: Any) -> None:
        session.add_all([PropertyDef(scope="event:add_to_cart", name="amount", type="number"),
                         PropertyDef(scope="event:checkout", name="total", type="number")])

    in_database(config, catalog)
    return tmp_path


def go_live(config: Config, campaign_id: int) -> None:
    """What the engine leaves after an hour live: a `live` run, three people who added to cart (one
    wait pending, one cancelled by checkout, one fired and delivered), today's counters."""
    since = NOW - timedelta(hours=1)

    async def work(session: Any) -> None:
        campaign = await session.get(Campaign, campaign_id)
        campaign.state, campaign.next_run_at = "running", None
        run = CampaignRun(campaign_id=campaign_id, number=1, planned_at=since, state="live", started_at=since,
                          materialized_at=since, suppressed={}, updated_at=since)
        people = [Profile(user_id=f"u{i}", phone=f"+44740012340{i}", phone_raw=f"+44740012340{i}",
                          phone_status="valid", sms_capable=True, subscription="subscribed", subscription_at=since, created_at=since,
                          updated_at=since) for i in range(3)]
        session.add_all([run, *people])
        await session.flush()
        for index, (person, state) in enumerate(zip(people, ("fired", "cancelled", "pending"), strict=True)):
            at = since + timedelta(minutes=10 * (index + 1))
            event = Event(profile_id=person.id, name="add_to_cart", at=at, properties={"amount": 150},
                          dedupe=f"cart-{index}")
            session.add(event)
            await session.flush()
            wait = CampaignWait(campaign_id=campaign_id, run_id=run.id, profile_id=person.id, event_id=event.id,
                                started_at=at, due_at=at + timedelta(minutes=5), state=state, created_at=at)
            session.add(wait)
            await session.flush()
            if state == "fired":
                session.add(Message(kind="campaign", priority=0, to_number=person.phone, body="Hi", encoding="GSM-7",
                                    segments=1, state="delivered", attempts=1, campaign_id=campaign_id,
                                    run_id=run.id, profile_id=person.id, event_id=event.id, wait_id=wait.id,
                                    dedupe_key=f"live:{campaign_id}:wait:{wait.id}", created_at=wait.due_at,
                                    updated_at=wait.due_at, sent_at=wait.due_at))
        session.add(CampaignLiveDay(campaign_id=campaign_id, day=NOW.date(), triggered=4, queued=1, waits_started=3,
                                    waits_cancelled=1, not_in_filter=0, unreachable=1, not_eligible=0, limited=0,
                                    late=0))

    in_database(config, work)


def test_the_readme_file_is_shown_in_words_and_schedules(cli, setup: Path) -> None:  # type: ignore[no-untyped-def]
    path = setup / "cart.toml"
    path.write_text(readme_toml_example())
    code, out, err = cli("campaigns", "create", "--file", str(path))
    assert code == 0, err
    assert out.splitlines() == ["created draft C1 'Abandoned cart'", "ready: smsconsole campaigns schedule C1"]
    code, out, _ = cli("campaigns", "show", "C1")
    assert code == 0
    assert out.splitlines()[:10] == [
        "C1  Abandoned cart — draft",
        "  When: Live from 2026-12-03 09:00 until 2026-12-31 00:00 (Europe/London)",
        "        do not disturb 21:00-09:00 in the user's zone: delayed until it ends",
        "        global limits apply",
        f"  Who:  {SENTENCE}",
        "        A person gets it again after 7 days",
        "        Only people in segment Londoners",
        "        At most 500 messages a day",
        "        Ends after 5,000 messages in all (the target limit)",
        "  What: through group 'uk'"]
    assert "  live: not yet (it goes live when scheduled and its start comes)" in out
    code, out, _ = cli("campaigns", "list")
    assert out.splitlines() == [
        "ID     STATE      TYPE                  NEXT RUN              NAME",
        "C1     draft      Inaction within time  -                     Abandoned cart",
        f"       {SENTENCE}"]
    code, out, err = cli("campaigns", "schedule", "C1")
    assert code == 0, err
    assert out.startswith("scheduled C1 'Abandoned cart'")


def test_a_bad_trigger_is_named_field_by_field_in_one_line(cli, setup: Path) -> None:  # type: ignore[no-untyped-def]
    document = {"name": "Cart", "type": "inaction",
                "who": {"run_limit": 5, "trigger": {"event": "add_to_cart", "within_minutes": "5 weeks",
                                                    "where": [{"property": "colour", "op": "equals", "value": "red"}],
                                                    "reeligible": "sometimes", "property": "travel_date"}},
                "what": {"body": "Hi"}}
    code, _, err = cli("campaigns", "create", "--schedule", "--file", write(setup / "bad.json", document))
    line = one_line_error(err)
    assert code == 2 and "\n" not in line.strip()
    for expected in ("who.run_limit: applies to scheduled campaigns",
                     "who.trigger.within_minutes: must be a number of minutes, or a duration such as 30m, 2h or 1d",
                     "who.trigger.reeligible: must be one of every_time, once, after_days",
                     "who.trigger.property: applies only to On a date campaigns",
                     "who.trigger.cancel_event: choose the event that must follow in time"):
        assert expected in line, line


def test_list_and_show_a_live_campaign_with_its_figures(cli, setup: Path, config: Config) -> None:  # type: ignore[no-untyped-def]
    path = setup / "cart.toml"
    path.write_text(readme_toml_example())
    assert cli("campaigns", "create", "--file", str(path))[0] == 0
    go_live(config, 1)
    code, out, _ = cli("campaigns", "list")
    assert code == 0
    assert out.splitlines()[1:] == [
        "C1     running    Inaction within time  -                     Abandoned cart",
        f"       {SENTENCE}",
        "       1 waits pending; today (2026-12-03, Europe/London): 4 triggered, 1 queued, 1 cancelled by checkout"]
    code, out, _ = cli("campaigns", "show", "C1")
    assert code == 0
    lines = out.splitlines()
    start = lines.index("  live: since 2026-12-03 09:00 UTC")
    assert lines[start:start + 6] == [
        "  live: since 2026-12-03 09:00 UTC",
        "        1 waits pending; today (2026-12-03, Europe/London): 4 triggered, 1 queued, 1 cancelled by checkout",
        "        held back today: not reachable 1",
        "        target: 1 of 5,000 queued",
        "  latest messages:",
        "    2026-12-03 09:15:00 UTC  +447400123400    wait: add_to_cart        delivered"]
    code, out, _ = cli("campaigns", "show", "C1", "--json")
    live = json.loads(out)["live"]
    assert (live["day"], live["waits_pending"], live["queued_total"], live["today"]["waits_cancelled"]) == (
        "2026-12-03", 1, 1, 1)
    assert [(fire["state"], fire["event_name"], fire["from_wait"]) for fire in live["latest"]] == [
        ("delivered", "add_to_cart", True)]
