"""The arms and goal of a campaign document (services/campaigns/arms.py): reading variants,
splits, the control group and the goal with every problem named by its field, writing them back
to an equal document, and the stable assignment that reads the same in Python and SQL."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, select

from smsconsole.services.campaigns.arms import CONTROL, arm_of, arm_sql, thresholds
from smsconsole.services.campaigns.definition import parse_document


def _doc(what: dict, **extra: object) -> tuple:
    return parse_document({"name": "x", "type": "one_time", "what": what, **extra})


def test_the_single_body_is_variant_a_and_takes_what_the_control_leaves() -> None:
    doc, problems = _doc({"body": "hi", "control": 10})
    assert problems == []
    assert [(v.name, v.body, v.split) for v in doc.what.arms] == [("A", "hi", 90.0)]
    assert doc.what.control == 10
    assert parse_document(doc.to_dict())[0] == doc


def test_variants_without_a_split_share_what_is_left() -> None:
    doc, problems = _doc({"variants": [{"body": "a", "split": 50}, {"body": "b"}, {"body": "c"}], "control": 10})
    assert problems == []
    assert [(v.name, v.split) for v in doc.what.arms] == [("A", 50), ("B", 20), ("C", 20)]
    assert doc.what.body == "a"  # variant A's fields stay where single-variant code reads them
    again, _ = parse_document(doc.to_dict())
    assert again == doc


@pytest.mark.parametrize(("what", "field", "words"), [
    ({"variants": [{"body": "a", "split": 60}, {"body": "b", "split": 60}]}, "what.variants", "add up to 100%"),
    ({"variants": [{"body": "a"}] * 6}, "what.variants", "at most 5"),
    ({"variants": [{"body": "a", "split": -5}, {"body": "b"}]}, "what.variants.1.split", "above 0"),
    ({"variants": [{"body": "a", "name": "B"}]}, "what.variants.1.name", "this one is A"),
    ({"variants": [{"body": "a", "colour": "red"}]}, "what.variants.1.colour", "unknown variant field"),
    ({"variants": [{"body": 5}]}, "what.variants.1.body", "must be text"),
    ({"body": "x", "variants": [{"body": "a"}]}, "what.body", "not both"),
    ({"body": "x", "control": 70}, "what.control", "0 to 50"),
    ({"variants": "ab"}, "what.variants", "must be a list"),
])
def test_bad_arms_are_named_by_their_field(what: dict, field: str, words: str) -> None:
    _, problems = _doc(what)
    assert any(name == field and words in reason for name, reason in problems), problems


@pytest.mark.parametrize(("goal", "field", "words"), [
    ({"where": []}, "goal.event", "name the conversion event"),
    ({"event": "order", "window": "45d"}, "goal.window", "1 minute to 30 days"),
    ({"event": "order", "window": "soon"}, "goal.window", "duration"),
    ({"event": "order", "colour": 1}, "goal.colour", "unknown goal field"),
    ({"event": "order", "where": "amount > 0"}, "goal.where", "list of conditions"),
])
def test_bad_goals_are_named_by_their_field(goal: dict, field: str, words: str) -> None:
    _, problems = _doc({"body": "x"}, goal=goal)
    assert any(name == field and words in reason for name, reason in problems), problems


def test_a_goal_reads_and_writes_back() -> None:
    doc, problems = _doc({"body": "x"}, goal={"event": "order", "window": "90m", "value": "amount",
                                              "where": [{"property": "amount", "op": "greater", "value": 0}]})
    assert problems == []
    assert doc.goal is not None and doc.goal.window_minutes == 90 and doc.goal.value == "amount"
    assert doc.to_dict()["goal"]["window"] == "90m"
    assert parse_document(doc.to_dict())[0] == doc


def test_assignment_follows_the_splits_and_is_the_same_in_sql() -> None:
    doc, _ = _doc({"variants": [{"body": "a", "split": 30}, {"body": "b", "split": 45}], "control": 25})
    arms = doc.what.arms
    assert thresholds(arms) == [("A", 3000), ("B", 7500)]
    counts = Counter(arm_of(7, person, arms) for person in range(1, 10_001))
    for name, share in (("A", 30), ("B", 45), (CONTROL, 25)):
        assert abs(counts[name] / 100 - share) <= 1.5, counts
    engine = create_engine("sqlite://")
    with engine.connect() as conn:
        ids = list(range(1, 2001, 7))
        people = Table("people", MetaData(), Column("id", Integer, primary_key=True))
        people.create(conn)
        conn.execute(people.insert(), [{"id": i} for i in ids])
        got = conn.execute(select(people.c.id, arm_sql(7, people.c.id, arms))).all()
    assert {pid: arm for pid, arm in got} == {pid: arm_of(7, pid, arms) for pid in ids}
    assert arm_of(8, 1, arms) == arm_of(8, 1, arms)  # stable for a (campaign, person)


def test_the_reach_estimate_says_how_many_the_control_group_holds_out() -> None:
    from types import SimpleNamespace

    from smsconsole.screens.campaigns.steps_who import estimate_text

    estimate = SimpleNamespace(qualified=1000, reachable=800, unreachable={}, held_back={}, will_send=800,
                               local_time_passed=0, blocked_by_safety=False, problem=None)
    assert "will be sent per run: 800" in str(estimate_text(estimate))
    estimate.held_out = 160  # estimate_campaign: round(will_send · control / 100)
    text = str(estimate_text(estimate, control=20))
    assert "will be sent per run: ≈ 640 · ≈ 160 held out as the control group (20%)" in text

