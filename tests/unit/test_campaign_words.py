"""The arms and the conversion goal in words, pinned: the console's lines (from the mapping, maybe a
draft with blank splits) and the CLI's (from the parsed document). A single-variant campaign
without a control group or a goal reads as it always did."""

from __future__ import annotations

import copy
from typing import Any

from smsconsole.services.campaigns.definition import parse_document
from smsconsole.services.campaigns.words import (
    arms_words,
    goal_lines,
    goal_words,
    what_lines,
    what_words,
)

SINGLE: dict[str, Any] = {"name": "Sale", "type": "one_time", "when": {"at": "now"},
                          "what": {"route": {"group": "uk"}, "body": "Sale today"}}
AB: dict[str, Any] = {
    "name": "Sale", "type": "one_time", "when": {"at": "now"},
    "what": {"route": {"provider": "india"}, "control": 10, "variants": [
        {"name": "A", "body": "Sale today", "dlt": {"dlt_template_id": "1107001"}},
        {"name": "B", "body": "20% off today", "dlt": {"dlt_template_id": "1107002"}}]},
    "goal": {"event": "order", "where": [{"property": "amount", "op": "greater", "value": 0}], "window": "24h",
             "value": "amount"},
}


def test_a_single_variant_reads_as_before() -> None:
    assert what_lines(SINGLE) == ["Through provider group uk", "Message: Sale today"]
    assert what_words(parse_document(SINGLE)[0]) == ["through group 'uk'", 'body: "Sale today"']
    assert goal_words(parse_document(SINGLE)[0]) == []
    assert goal_lines(SINGLE) == ["No conversion goal: conversions are not counted"]


def test_blank_splits_share_what_the_control_leaves() -> None:
    assert what_lines(AB) == [
        "Through provider india",
        "Arms: A 45% · B 45% · control 10%",
        "Message A: Sale today",
        "  DLT: template id 1107001",
        "Message B: 20% off today",
        "  DLT: template id 1107002",
        "Control group: 10% held out: qualified and recorded, never sent",
    ]
    assert what_words(parse_document(AB)[0]) == [
        "through provider 'india'",
        "arms: A 45% · B 45% · control 10%",
        'A: "Sale today"',
        "  DLT: dlt_template_id 1107001",
        'B: "20% off today"',
        "  DLT: dlt_template_id 1107002",
        "control group: 10% held out: qualified and recorded, never sent",
    ]


def test_a_control_group_on_a_single_variant() -> None:
    document = copy.deepcopy(SINGLE)
    document["what"]["control"] = 20
    assert what_lines(document) == ["Through provider group uk", "Arms: A 80% · control 20%", "Message: Sale today",
                                    "Control group: 20% held out: qualified and recorded, never sent"]
    parsed = parse_document(document)[0]
    assert arms_words(parsed.what.arms, parsed.what.control) == "A 80% · control 20%"


def test_the_goal() -> None:
    assert goal_lines(AB) == [
        "Converts: order (amount > 0) within 1 day of the message (for control: of the would-be send time)",
        "Revenue: the sum of each conversion's amount",
    ]
    assert goal_words(parse_document(AB)[0]) == [
        "a conversion is order (amount > 0) within 1 day of the message (control: of the would-be send time)",
        "revenue: the sum of its 'amount'",
    ]
    no_value = {**AB, "goal": {"event": "signup", "window": "90m"}}
    assert goal_lines(no_value) == [
        "Converts: signup within 90 minutes of the message (for control: of the would-be send time)",
        "Revenue: not counted (no value property)",
    ]
