"""`smsconsole segments …` on an audience imported through the CLI, every count worked out by hand.

The audience (profiles.csv): u1 GB subscribed (reachable), u2 GB never opted in, u3 IN subscribed
(reachable), u4 without a phone, u5 with an invalid phone, u6 DE subscribed; plans gold for
u1, u2, u4, u5. Orders: u1 twice in the last week, u2 three times 100 days ago, u3 once yesterday.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.integration.cli_support import one_line_error

GOLD = {"conditions": [{"property": "plan", "op": "equals", "value": "gold"}]}
REPEAT_BUYERS = {"match": "all", "conditions": [
    {"event": "order", "count": {"op": "at_least", "value": 2}, "window": {"last_days": 30}},
]}


@pytest.fixture
def audience(cli, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    people = tmp_path / "profiles.csv"
    people.write_text(
        "user_id,phone,plan,optin_at\n"
        "u1,+447400123401,gold,2026-01-05\n"
        "u2,+447400123402,gold,\n"
        "u3,+919812345678,silver,2026-01-05\n"
        "u4,,gold,2026-01-05\n"
        "u5,12,gold,2026-01-05\n"
        "u6,+4915123456789,bronze,2026-01-05\n"
    )
    now = datetime.now(UTC)
    events = tmp_path / "events.jsonl"
    lines = [("u1", now - timedelta(days=2)), ("u1", now - timedelta(days=6)), ("u3", now - timedelta(days=1)),
             *[("u2", now - timedelta(days=100, hours=h)) for h in range(3)]]
    events.write_text("".join(json.dumps({"user_id": u, "event": "order", "at": at.isoformat()}) + "\n"
                              for u, at in lines))
    code, out, err = cli("import", "profiles", str(people))
    assert code == 0, out + err
    code, out, err = cli("import", "events", str(events))
    assert code == 0, out + err
    return tmp_path


def write(path: Path, definition: object) -> str:
    path.write_text(json.dumps(definition))
    return str(path)


def test_estimate_a_definition_file_counts_reasons_and_countries(cli, audience: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("segments", "estimate", "--file", write(audience / "gold.json", GOLD), "--json")
    assert code == 0
    reach = json.loads(out)
    assert (reach["qualified"], reach["reachable"]) == (4, 1)
    assert reach["unreachable"] == {"no_phone": 1, "invalid_phone": 1, "not_mobile_capable": 0,
                                    "unsubscribed": 0, "never_opted_in": 1}
    assert [(c["country"], c["qualified"], c["reachable"]) for c in reach["by_country"]] == [
        ("GB", 2, 1), (None, 2, 0)]

    code, out, _ = cli("segments", "estimate", "--file", write(audience / "buyers.json", REPEAT_BUYERS))
    assert code == 0
    assert "qualify:   1\n" in out and "reachable: 1 (100%) by SMS now" in out and "GB" in out


def test_saved_segment_lifecycle(cli, audience: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("segments", "list")
    assert code == 0 and "no segments" in out
    code, out, _ = cli("segments", "create", "Gold", "--file", write(audience / "gold.json", GOLD),
                       "--description", "gold plan")
    assert code == 0 and out.strip() == "created segment 'Gold': plan is \"gold\""

    code, out, _ = cli("segments", "list", "--reach")
    assert code == 0 and "Gold  [4 qualify, 1 reachable]" in out
    code, out, _ = cli("segments", "show", "Gold", "--json")
    shown = json.loads(out)
    assert shown["definition"]["conditions"] == GOLD["conditions"] and shown["reach"]["qualified"] == 4
    assert shown["description"] == "gold plan"

    code, out, _ = cli("segments", "update", "Gold", "--file", write(audience / "buyers.json", REPEAT_BUYERS),
                       "--rename", "Repeat buyers")
    assert code == 0 and "updated segment 'Repeat buyers'" in out
    code, _, err = cli("segments", "show", "Gold")
    assert code == 2 and one_line_error(err).endswith("no segment named 'Gold'")
    code, out, _ = cli("segments", "estimate", "Repeat buyers", "--json")
    assert json.loads(out)["qualified"] == 1

    code, out, _ = cli("segments", "duplicate", "Repeat buyers")
    assert code == 0 and "as segment 'Repeat buyers (copy)'" in out
    code, out, _ = cli("segments", "duplicate", "Repeat buyers", "--as", "Buyers B")
    assert code == 0
    code, _, err = cli("segments", "duplicate", "Repeat buyers", "--as", "Buyers B")
    assert code == 2 and "--as: a segment named 'Buyers B' already exists" in one_line_error(err)

    code, out, _ = cli("segments", "delete", "Buyers B", "--yes")
    assert code == 0 and out.strip() == "deleted segment 'Buyers B'"
    code, out, _ = cli("segments", "list", "--json")
    assert [s["name"] for s in json.loads(out)] == ["Repeat buyers", "Repeat buyers (copy)"]


def test_delete_refused_while_a_scheduled_campaign_uses_it(cli, audience: Path,  # type: ignore[no-untyped-def]
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    cli("segments", "create", "Gold", "--file", write(audience / "gold.json", GOLD))

    async def used_by(session: object, segment_id: int) -> list[str]:
        return ["Black Friday"]

    with monkeypatch.context() as patch:
        patch.setattr("smsconsole.services.segments.crud.campaigns_using_segment", used_by)
        code, _, err = cli("segments", "delete", "Gold", "--yes")
    assert code == 2 and "used by scheduled campaign(s) Black Friday" in one_line_error(err)
    code, out, _ = cli("segments", "list")
    assert "Gold" in out


def test_delete_without_a_terminal_needs_yes(cli, audience: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    cli("segments", "create", "Gold", "--file", write(audience / "gold.json", GOLD))
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    code, _, err = cli("segments", "delete", "Gold")
    assert code == 2 and "add --yes" in one_line_error(err)
    assert "Gold" in cli("segments", "list")[1]


@pytest.mark.parametrize(("content", "expected"), [
    (None, "--file: {path}: no such file"),
    ("", "--file: {path} is empty"),
    ('{"conditions": [', "--file: {path} is not JSON: Expecting value at line 1 column 17"),
    ('{"conditions": [{"property": "plan", "op": "greater", "value": 3}, {"property": "nope", "op": "exists"}]}',
     "definition conditions[0].op: 'greater' does not apply to string 'plan'"),
    ('{"conditions": [{"event": "order", "count": {"op": "at_least", "value": -1}}]}',
     "definition conditions[0].count.value: must be a whole number"),
    ('["plan"]', "definition"),
])
def test_bad_definitions_are_one_line_and_save_nothing(cli, audience: Path, content: str | None,  # type: ignore[no-untyped-def]
                                                      expected: str) -> None:
    path = audience / "def.json"
    if content is not None:
        path.write_text(content)
    code, _, err = cli("segments", "create", "Bad", "--file", str(path))
    assert code == 2 and expected.format(path=path) in one_line_error(err)
    if "nope" in (content or ""):
        assert "definition conditions[1].property: unknown profile property 'nope'" in err
    code, out, _ = cli("segments", "list", "--json")
    assert json.loads(out) == []


def test_catalog_lists_properties_with_types_and_events(cli, audience: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("segments", "catalog", "--json")
    catalog = json.loads(out)
    assert {p["name"]: p["type"] for p in catalog["properties"]} == {"plan": "string"}
    assert [e["name"] for e in catalog["events"]] == ["order"]
    code, out, _ = cli("segments", "catalog")
    assert code == 0 and "plan" in out and "order" in out and "within_last_days" in out


def test_update_with_nothing_to_change(cli, audience: Path) -> None:  # type: ignore[no-untyped-def]
    cli("segments", "create", "Gold", "--file", write(audience / "gold.json", GOLD))
    code, _, err = cli("segments", "update", "Gold")
    assert code == 2 and "nothing to change" in one_line_error(err)
