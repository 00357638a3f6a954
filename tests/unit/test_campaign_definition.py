"""The campaign document: parsing, every problem named by its dotted field, and a round trip."""

from __future__ import annotations

from datetime import date, time

import pytest

from smsconsole.services.campaigns.definition import campaign_code, parse_code, parse_document

COMPLETE = {
    "name": "Spring sale",
    "type": "recurring",
    "when": {"timezone": "Europe/London",
             "recurrence": {"every": "week", "weekdays": ["thu", "mon"], "time": "10:00", "start": "2026-12-01",
                            "end": "2027-03-31"},
             "user_timezone": True, "late": "skip",
             "dnd": {"start": "21:00", "end": "09:00", "action": "discard"}, "ignore_global_limits": True},
    "who": {"segment": "Londoners", "reach_percent": 50, "target_limit": 1000, "safety_limit": 5000},
    "what": {"route": {"group": "uk"}, "sender": "Shop", "body": "Hi {{ profile.name | default: 'there' }} 🎉",
             "generic": {"template_id": "T1", "template_variables": ["a", 2], "header_values": {"X-K": "v"}},
             "dlt": {"dlt_template_id": "1107"}, "linked_content": {"timeout": 2, "on_failure": "abort"}},
}


def test_a_complete_document_parses_and_round_trips() -> None:
    document, problems = parse_document(COMPLETE, strict=True)
    assert problems == []
    recurrence = document.when.recurrence
    assert recurrence is not None
    assert recurrence.weekdays == (0, 3)
    assert recurrence.time == time(10, 0)
    assert (recurrence.start, recurrence.end) == (date(2026, 12, 1), date(2027, 3, 31))
    assert document.when.dnd is not None and document.when.dnd.action == "discard"
    assert document.who.reach_percent == 50.0
    assert document.what.generic["template_variables"] == ["a", "2"]
    again, problems = parse_document(document.to_dict(), strict=True)
    assert problems == [] and again == document


def test_one_time_wall_time_keeps_its_zone() -> None:
    document, problems = parse_document(
        {"name": "x", "type": "one_time", "when": {"timezone": "America/New_York", "at": "2027-03-14 02:30"}})
    assert problems == []
    at = document.when.at
    assert not isinstance(at, str) and at is not None
    assert (at.hour, at.minute, str(at.tzinfo)) == (2, 30, "America/New_York")


def test_a_draft_needs_only_a_name_but_scheduling_asks_for_the_rest() -> None:
    draft = {"name": "Half done", "type": "one_time"}
    assert parse_document(draft)[1] == []
    fields = [name for name, _ in parse_document(draft, strict=True)[1]]
    assert fields == ["when.at", "who.segment", "what.body"]


@pytest.mark.parametrize(("document", "field", "words"), [
    ({"name": ""}, "name", "name"),
    ({"name": "x", "type": "weekly"}, "type", "one_time, multiple_dates, recurring"),
    ({"name": "x", "when": {"timezone": "Mars/Base"}}, "when.timezone", "time zone"),
    ({"name": "x", "when": {"at": "tomorrow"}}, "when.at", "YYYY-MM-DD HH:MM"),
    ({"name": "x", "type": "multiple_dates", "when": {"dates": ["2026-12-24 10:00", "2026-12-24T10:00"]}},
     "when.dates.2", "twice"),
    ({"name": "x", "type": "recurring", "when": {"recurrence": {"every": "month", "day_of_month": 32}}},
     "when.recurrence.day_of_month", "between 1 and 31"),
    ({"name": "x", "type": "recurring", "when": {"recurrence": {"every": "week", "weekdays": ["funday"]}}},
     "when.recurrence.weekdays", "not a day"),
    ({"name": "x", "type": "recurring", "when": {"recurrence": {"every": "day", "start": "2027-01-02",
                                                                "end": "2027-01-01"}}},
     "when.recurrence.end", "on or after"),
    ({"name": "x", "when": {"dnd": {"start": "21:00", "end": "21:00"}}}, "when.dnd.end", "differ"),
    ({"name": "x", "when": {"dnd": {"start": "25:00", "end": "09:00"}}}, "when.dnd.start", "HH:MM"),
    ({"name": "x", "who": {"reach_percent": 0}}, "who.reach_percent", "more than 0"),
    ({"name": "x", "who": {"run_limit": True}}, "who.run_limit", "whole number"),
    ({"name": "x", "who": {"segment": "a", "definition": {"all": []}}}, "who.segment", "not both"),
    ({"name": "x", "what": {"route": {"group": "a", "provider": "b"}}}, "what.route.group", "not both"),
    ({"name": "x", "what": {"body": "x" * 1601}}, "what.body", "1600"),
    ({"name": "x", "what": {"generic": {"template_variables": "a,b"}}}, "what.generic.template_variables", "list"),
    ({"name": "x", "what": {"linked_content": {"on_failure": "retry"}}}, "what.linked_content.on_failure", "skip"),
    ({"name": "x", "colour": "red"}, "colour", "unknown field"),
    ({"name": "x", "when": {"tz": "UTC"}}, "when.tz", "unknown field; when has at, dates"),
    ({"name": "x", "type": "recurring", "when": {"recurrence": {"every": "day", "hour": "09:00"}}},
     "when.recurrence.hour", "a recurrence has day_of_month"),
    ({"name": "x", "when": {"dnd": {"start": "21:00", "end": "09:00", "mode": "delay"}}}, "when.dnd.mode",
     "start, end and action"),
    ({"name": "x", "who": {"segmnet": "a"}}, "who.segmnet", "unknown field; who has daily_limit"),
    ({"name": "x", "what": {"bdy": "hi"}}, "what.bdy", "unknown field"),
    ({"name": "x", "what": {"body": "hi", "compliance": {"category": "service"}}}, "what.compliance",
     "compliance and budget are top-level tables"),
    ({"name": "x", "what": {"generic": {"template": "T1"}}}, "what.generic.template", "generic has body_values"),
    ({"name": "x", "what": {"linked_content": {"retries": 2}}}, "what.linked_content.retries", "timeout and on_failure"),
    ({"name": "x", "type": "action", "who": {"trigger": {"event": "order", "wait": "5m"}}}, "who.trigger.wait",
     "a trigger has at, cancel_event"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_each_bad_field_is_named_with_its_reason(document: dict, field: str, words: str) -> None:
    problems = dict(parse_document(document)[1])
    assert field in problems, problems
    assert words in problems[field]


def test_not_a_table_is_one_problem() -> None:
    assert parse_document(["a"])[1] == [("document", "must be a table of fields (name, type, when, who, what)")]


def test_campaign_codes() -> None:
    assert campaign_code(12) == "C12"
    assert [parse_code(t) for t in ("12", "C12", "c12", " C7 ", "Spring", "C", "12a")] == [12, 12, 12, 7, None, None, None]
