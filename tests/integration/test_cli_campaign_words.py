"""`smsconsole campaigns show` of an A/B campaign with a control group and a conversion goal, on
SQLite and PostgreSQL: the What lines list the arms and each variant's body, and a Goal line says
what counts as a conversion (a campaign without a goal prints no Goal line: see
test_cli_campaigns.py)."""

from __future__ import annotations

from pathlib import Path

from tests.integration.test_cli_campaigns import COMPLETE, setup, write

__all__ = ["setup"]  # the fixture, shared with test_cli_campaigns.py


def test_show_lists_the_arms_and_the_goal(cli, setup: Path) -> None:  # type: ignore[no-untyped-def]
    document = {**COMPLETE, "what": {"route": {"group": "uk"}, "control": 10, "variants": [
        {"body": "Sale today", "split": 60}, {"body": "20% off today"}]},
        "goal": {"event": "order", "where": [{"property": "amount", "op": "greater", "value": 0}],
                 "window": "2d", "value": "amount"}}
    code, out, err = cli("campaigns", "create", "--file", write(setup / "ab.json", document))
    assert code == 0, out + err
    code, out, _ = cli("campaigns", "show", "Spring sale")
    assert code == 0
    lines = out.splitlines()
    start = lines.index("  What: through group 'uk'")
    assert lines[start:start + 7] == [
        "  What: through group 'uk'",
        "        arms: A 60% · B 30% · control 10%",
        '        A: "Sale today"',
        '        B: "20% off today"',
        "        control group: 10% held out: qualified and recorded, never sent",
        "  Goal: a conversion is order (amount > 0) within 2 days of the message (control: of the would-be send time)",
        "        revenue: the sum of its 'amount'",
    ]
