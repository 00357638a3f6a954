"""`smsconsole campaigns …` in-process on SQLite and PostgreSQL: a draft from a partial file, the
one line naming every problem when it is scheduled, TOML and JSON files (examples/campaign.toml and
README's JSON example are the same campaign), show and list in words and JSON, pause/resume/stop
and their effect on the outbox (rows written directly), runs with counts, preview, duplicate,
delete, and the exit codes (2 for bad input, 1 for a failed preview). The clock is frozen at
Tuesday 1 December 2026, 09:00 UTC."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from smsconsole import clock
from smsconsole.config import Config
from smsconsole.models import CampaignRun, Message
from smsconsole.runtime import Runtime
from tests.integration.cli_support import one_line_error

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
COMPLETE: dict[str, Any] = {
    "name": "Spring sale",
    "type": "one_time",
    "when": {"timezone": "Europe/London", "at": "2026-12-24 10:00"},
    "who": {"segment": "Londoners", "reach_percent": 50, "safety_limit": 1000},
    "what": {"route": {"group": "uk"}, "body": 'Hi {{ profile.name | default: "there" }} 🎉 20% off'},
}


@pytest.fixture
def setup(cli, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """A segment "Londoners" (everyone), a Sandbox provider in the group "uk", one profile u1."""
    clock.freeze(NOW)
    (tmp_path / "everyone.json").write_text('{"conditions": []}')
    (tmp_path / "people.csv").write_text("user_id,phone,name,optin_at\nu1,+447400123401,Asha,2026-01-05\n")
    for argv in (("segments", "create", "Londoners", "--file", str(tmp_path / "everyone.json")),
                 ("providers", "add", "sandbox", "--name", "sbx"), ("groups", "create", "uk", "--providers", "sbx"),
                 ("import", "profiles", str(tmp_path / "people.csv"))):
        code, out, err = cli(*argv)
        assert code == 0, out + err
    return tmp_path


def write(path: Path, document: Any) -> str:
    path.write_text(json.dumps(document) if path.suffix == ".json" else document)
    return str(path)


def test_a_draft_then_every_problem_named_then_scheduled(cli, setup: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("campaigns", "create", "--file", write(setup / "draft.json", {"name": "Spring sale"}))
    assert code == 0
    assert out.splitlines() == [
        "created draft C1 'Spring sale'",
        "before it can be scheduled: type: must be one of one_time, multiple_dates, recurring, action, inaction, date; "
        "when.at: choose when it is sent: now, or a date and time; who.segment: choose a saved segment or build an ad-hoc one; what.body: write the message"]

    broken = {**COMPLETE, "when": {"timezone": "Europe/London", "at": "24/12/2026"}, "who": {"segment": "Nobody"},
              "what": {"route": {"group": "nowhere"}, "body": "Hi {{ profile.name }"}}
    code, out, _ = cli("campaigns", "update", "C1", "--file", write(setup / "broken.json", broken))
    assert code == 0 and out.strip() == "updated C1 'Spring sale' (draft)"
    code, _, err = cli("campaigns", "schedule", "C1")
    line = one_line_error(err)
    assert code == 2
    assert "when.at: must be a date and time as YYYY-MM-DD HH:MM" in line
    assert "who.segment: no segment named 'Nobody'" in line
    assert "what.route.group: no provider group named 'nowhere'" in line
    assert re.search(r"what\.body: line 1, column \d+: ", line)

    past = {**COMPLETE, "when": {"timezone": "UTC", "at": "2026-11-30 10:00"}}
    cli("campaigns", "update", "C1", "--file", write(setup / "past.json", past))
    code, _, err = cli("campaigns", "schedule", "C1")
    assert code == 2 and one_line_error(err) == (
        'smsconsole: error: when.at: is in the past; choose a later time or "now"')

    cli("campaigns", "update", "Spring sale", "--file", write(setup / "good.json", COMPLETE))
    code, out, _ = cli("campaigns", "schedule", "1")
    assert code == 0 and out.strip() == "scheduled C1 'Spring sale'; next run 2026-12-24 10:00 UTC"
    code, out, _ = cli("campaigns", "show", "C1", "--json")
    shown = json.loads(out)
    assert (shown["code"], shown["state"], shown["next_run_at"]) == ("C1", "scheduled", "2026-12-24T10:00:00+00:00")
    assert shown["document"] == COMPLETE and shown["next_runs"] == ["2026-12-24T10:00:00+00:00"]
    assert shown["problems"] == [] and shown["runs"] == []


def test_show_and_list_in_words(cli, setup: Path) -> None:  # type: ignore[no-untyped-def]
    document = {**COMPLETE, "when": {**COMPLETE["when"], "user_timezone": True, "late": "skip",
                                     "dnd": {"start": "21:00", "end": "09:00", "action": "discard"}}}
    code, out, _ = cli("campaigns", "create", "--schedule", "--file", write(setup / "c.json", document))
    assert code == 0 and out.strip() == "created and scheduled C1 'Spring sale'; next run 2026-12-24 10:00 UTC"
    code, out, _ = cli("campaigns", "show", "Spring sale")
    assert code == 0
    assert out.splitlines()[:11] == [
        "C1  Spring sale — scheduled",
        "  When: once, at 2026-12-24 10:00 Europe/London",
        "        at that time in each user's own time zone (users whose time has passed: skipped)",
        "        do not disturb 21:00-09:00 in the user's zone: discarded",
        "        global limits apply",
        "  Who:  segment 'Londoners'",
        "        a random 50% of those who qualify",
        "        safety check: a run is blocked when more than 1,000 qualify",
        "  What: through group 'uk'",
        '        body: "Hi {{ profile.name | default: \\"there\\" }} 🎉 20% off"',
        "  next runs: 2026-12-24 10:00 UTC",
    ]
    cli("campaigns", "create", "--file", write(setup / "d.json", {"name": "Later"}))
    code, out, _ = cli("campaigns", "list")
    assert out.splitlines() == [
        "ID     STATE      TYPE            NEXT RUN              NAME",
        "C1     scheduled  One time        2026-12-24 10:00 UTC  Spring sale",
        "C2     draft      One time        -                     Later"]
    code, out, _ = cli("campaigns", "list", "--json")
    assert [(c["code"], c["state"], c["last_run"]) for c in json.loads(out)] == [
        ("C1", "scheduled", None), ("C2", "draft", None)]


def readme_json_example() -> Any:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("\n## Campaigns"):]
    return json.loads(section[section.index("```json\n") + 8:section.index("\n```", section.index("```json\n"))])


def test_the_example_file_parses_and_schedules(cli, setup: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, err = cli("campaigns", "create", "--file", str(ROOT / "examples" / "campaign.toml"), "--schedule")
    assert code == 0, err
    assert out.strip() == "created and scheduled C1 'Weekly offers'; next run 2027-01-04 10:00 UTC"
    code, out, _ = cli("campaigns", "show", "C1", "--json")
    shown = json.loads(out)
    assert shown["next_runs"][:3] == ["2027-01-04T10:00:00+00:00", "2027-01-07T10:00:00+00:00",
                                      "2027-01-11T10:00:00+00:00"]
    assert shown["document"] == readme_json_example()  # README's JSON is the same campaign


def in_database(config: Config, work: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run `work(session)` in a transaction on the test database (beside the CLI's own runs)."""
    async def go() -> Any:
        runtime = await Runtime.open(config)
        try:
            async with runtime.factory() as session, session.begin():
                return await work(session)
        finally:
            await runtime.close()

    return asyncio.run(go())


def add_run(config: Config, campaign_id: int, *states: str) -> None:
    async def work(session: Any) -> None:
        run = CampaignRun(campaign_id=campaign_id, number=1, planned_at=NOW, state="running", started_at=NOW,
                          materialized_at=NOW, qualified=len(states) + 2, materialized=len(states),
                          suppressed={"sampled_out": 2}, updated_at=NOW)
        session.add(run)
        await session.flush()
        session.add_all([Message(kind="campaign", to_number=f"+4474001234{i:02d}", body="", encoding="GSM-7",
                                 segments=1, state=state, campaign_id=campaign_id, run_id=run.id, variant="A",
                                 render=True, priority=0, attempts=0, created_at=NOW, updated_at=NOW,
                                 dedupe_key=f"run:{run.id}:profile:{i}") for i, state in enumerate(states)])

    in_database(config, work)


def message_states(config: Config) -> list[tuple[str, str | None]]:
    async def work(session: Any) -> list[tuple[str, str | None]]:
        rows = await session.execute(select(Message.state, Message.reason).where(Message.campaign_id.is_not(None))
                                     .order_by(Message.id))
        return [tuple(row) for row in rows]

    return in_database(config, work)


def test_pause_resume_stop_runs_and_delete(cli, setup: Path, config: Config) -> None:  # type: ignore[no-untyped-def]
    cli("campaigns", "create", "--schedule", "--file", write(setup / "c.json", COMPLETE))
    add_run(config, 1, "queued", "queued", "sent", "delivered")

    code, out, _ = cli("campaigns", "pause", "C1")
    assert code == 0 and out.strip() == "paused C1 'Spring sale': nothing of it is sent until it resumes"
    assert message_states(config) == [("held", None), ("held", None), ("sent", None), ("delivered", None)]
    code, _, err = cli("campaigns", "pause", "C1")
    assert code == 2 and "C1 'Spring sale' is paused: cannot pause it" in one_line_error(err)
    code, out, _ = cli("campaigns", "resume", "C1", "--json")
    assert code == 0 and json.loads(out)["state"] == "running"
    assert [state for state, _ in message_states(config)] == ["queued", "queued", "sent", "delivered"]

    code, out, _ = cli("campaigns", "runs", "C1", "--json")
    (run,) = json.loads(out)
    assert (run["number"], run["state"], run["suppressed"]) == (1, "running", {"sampled_out": 2})
    assert {k: run["counts"][k] for k in ("queued", "sent", "delivered", "failed")} == {
        "queued": 2, "sent": 1, "delivered": 1, "failed": 0}
    code, out, _ = cli("campaigns", "runs", "C1")
    assert "run 1   2026-12-01 09:00 UTC  running       queued 2, sent 1, delivered 1, failed 0" in out
    assert "held back: outside the reach sample 2" in out

    code, _, err = cli("campaigns", "stop", "C1")  # no terminal to ask
    assert code == 2 and one_line_error(err).endswith("stop campaign 'C1': add --yes to confirm")
    code, out, _ = cli("campaigns", "stop", "C1", "--yes")
    assert code == 0 and out.strip() == "stopped C1 'Spring sale'"
    assert message_states(config) == [("suppressed", "campaign stopped"), ("suppressed", "campaign stopped"),
                                      ("sent", None), ("delivered", None)]
    code, out, _ = cli("campaigns", "show", "C1")
    assert "run 1   2026-12-01 09:00 UTC  stopped" in out and "stopped by an operator" in out

    code, _, err = cli("campaigns", "delete", "C1")
    assert code == 2 and one_line_error(err).endswith("delete campaign 'C1': add --yes to confirm")
    code, out, _ = cli("campaigns", "delete", "C1", "--yes")
    assert code == 0 and out.strip() == "deleted C1 'Spring sale'"
    code, out, _ = cli("campaigns", "list", "--json")
    assert json.loads(out) == []
    code, _, err = cli("campaigns", "show", "C1")
    assert code == 2 and "no campaign 'C1'" in one_line_error(err)
    assert len(message_states(config)) == 4  # history kept: the messages still name their campaign


def test_duplicate(cli, setup: Path) -> None:  # type: ignore[no-untyped-def]
    cli("campaigns", "create", "--file", write(setup / "c.json", COMPLETE))
    code, out, _ = cli("campaigns", "duplicate", "C1")
    assert code == 0 and out.strip() == "duplicated 'C1' as draft C2 'Copy of Spring sale'"
    code, out, _ = cli("campaigns", "duplicate", "Spring sale", "--name", "Autumn sale", "--json")
    assert json.loads(out)["document"] == {**COMPLETE, "name": "Autumn sale"}
    code, _, err = cli("campaigns", "duplicate", "C1", "--name", "Autumn sale")
    assert code == 2 and one_line_error(err) == (
        "smsconsole: error: --name: a campaign named 'Autumn sale' already exists")


def test_preview(cli, setup: Path) -> None:  # type: ignore[no-untyped-def]
    cli("campaigns", "create", "--file", write(setup / "c.json", COMPLETE))
    code, out, _ = cli("campaigns", "preview", "C1", "--profile", "u1")
    assert code == 0
    assert out.splitlines() == ["C1 'Spring sale' as Asha (u1):", "  Hi Asha 🎉 20% off",
                                "17 characters, UCS-2, 1 part", "UCS-2 because of: 🎉"]
    code, out, _ = cli("campaigns", "preview", "C1", "--profile", "u1", "--json")
    assert json.loads(out)["text"] == "Hi Asha 🎉 20% off"
    code, _, err = cli("campaigns", "preview", "C1", "--profile", "nobody")
    assert code == 2 and "no profile with user id or phone 'nobody'" in one_line_error(err)

    cli("campaigns", "create", "--file", write(setup / "empty.json", {"name": "Empty"}))
    code, _, err = cli("campaigns", "preview", "Empty")
    assert code == 1 and one_line_error(err).startswith("smsconsole: error: preview of C2 for ")


def test_a_test_send_renders_as_the_profile_and_goes_through_the_campaigns_route(  # type: ignore[no-untyped-def]
        cli, setup: Path) -> None:
    cli("campaigns", "create", "--file", write(setup / "c.json", COMPLETE))
    code, out, _ = cli("campaigns", "test", "C1", "--profile", "u1", "--to", "+447400123499")
    assert code == 0, out
    first, price, second = out.splitlines()
    assert first == "C1 test as Asha (u1) through group uk: 'Hi Asha 🎉 20% off'"
    assert price == "price: 1 segment (UCS-2); no price for GB on sbx (first in group uk)"
    assert second.startswith("sent: message 1 to +447400123499 via sbx; provider id SBX")
    code, out, _ = cli("campaigns", "test", "C1", "--profile", "u1", "--to", "+447400123499", "--json")
    shown = json.loads(out)
    assert (shown["kind"], shown["state"], shown["campaign"], shown["body"]) == ("test", "sent", "C1",
                                                                                  "Hi Asha 🎉 20% off")
    code, _, err = cli("campaigns", "test", "C1", "--to", "+44740012abcd")
    assert code == 2 and one_line_error(err).startswith("smsconsole: error: --to: The number contains letters")
    code, _, err = cli("campaigns", "test", "C1", "--to", "+447400123499", "--profile", "nobody")
    assert code == 2 and "--profile: no profile with user id or phone 'nobody'" in one_line_error(err)


@pytest.mark.parametrize(("name", "content", "message"), [
    ("missing.json", None, "--file: {path}: no such file"),
    ("bad.json", '{"name": ', "--file: {path} is not JSON: Expecting value at line 1 column 10"),
    ("bad.toml", 'name = "x"\nname = "y"\n', "--file: {path} is not TOML: Cannot overwrite a value (at line 2, column 11)"),
    ("offset.toml", 'name = "x"\n[when]\nat = 2026-12-24T10:00:00+01:00\n',
     "when.at: write a local date and time without an offset (e.g. 2026-12-24 10:00); times are read in when.timezone"),
    ("list.json", "[1, 2]", "--file: must be a table of fields (name, type, when, who, what)"),
    ("noname.json", '{"type": "one_time"}', "name: give the campaign a name"),
    ("code.json", '{"name": "C7"}', "name: looks like a Campaign ID (C12); choose a name with words in it"),
], ids=["missing", "bad-json", "bad-toml", "toml-offset", "not-a-table", "no-name", "name-like-a-code"])
def test_bad_files_are_one_line_and_exit_2(cli, setup: Path, name: str, content: str | None,  # type: ignore[no-untyped-def]
                                           message: str) -> None:
    path = setup / name
    if content is not None:
        path.write_text(content)
    code, out, err = cli("campaigns", "create", "--file", str(path))
    assert code == 2 and out == ""
    assert one_line_error(err) == "smsconsole: error: " + message.format(path=path)
    code, out, _ = cli("campaigns", "list", "--json")
    assert json.loads(out) == []


def test_refusals_are_one_line(cli, setup: Path) -> None:  # type: ignore[no-untyped-def]
    cli("campaigns", "create", "--file", write(setup / "c.json", {"name": "Draft"}))
    for argv, message in [
        (("campaigns", "pause", "C1"), "campaign C1 'Draft' is draft: cannot pause it"),
        (("campaigns", "resume", "Draft"), "campaign C1 'Draft' is draft: cannot resume it"),
        (("campaigns", "runs", "C1", "--limit", "0"), "--limit: must be 1 or more"),
        (("campaigns", "show", "Nothing"), "no campaign 'Nothing' (give its Campaign ID such as C12, or its name)"),
        (("campaigns", "schedule"), "the following arguments are required: CAMPAIGN"),
    ]:
        code, out, err = cli(*argv)
        assert code == 2, argv
        assert message in one_line_error(err), (argv, err)


def test_a_scheduled_campaign_is_checked_again_when_updated(cli, setup: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(COMPLETE)))
    code, out, _ = cli("campaigns", "create", "--file", "-", "--schedule")
    assert code == 0 and "scheduled C1" in out
    broken = {**COMPLETE, "what": {"route": {"group": "uk"}, "body": "Hi {% if %}"}}
    code, _, err = cli("campaigns", "update", "C1", "--file", write(setup / "broken.json", broken))
    assert code == 2 and re.fullmatch(r"smsconsole: error: what\.body: line 1, column \d+: .+", one_line_error(err))
    later = {**COMPLETE, "when": {"timezone": "Europe/London", "at": "2026-12-31 18:00"}}
    code, out, _ = cli("campaigns", "update", "C1", "--file", write(setup / "later.json", later))
    assert code == 0 and out.strip() == "updated C1 'Spring sale' (scheduled); next run 2026-12-31 18:00 UTC"
