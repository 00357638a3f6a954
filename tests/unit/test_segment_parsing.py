"""Segment definitions read without a database: every problem named by its path, at once; each
operator in words; and what the console's condition editor makes of typed text is a value the
parser takes. The catalog here is the one tests/integration/test_segments.py builds in its
database (its catalog test checks they agree); reading the catalog from the database is tested
there."""

from __future__ import annotations

from typing import Any

import pytest

from smsconsole.screens.segments.conditions import parse_value, value_texts
from smsconsole.services.errors import ValidationError
from smsconsole.services.segments import (
    NEGATIVE_OPS,
    OPERATOR_CATALOGUE,
    OPERATORS,
    catalog_from,
    describe_definition,
    validate_definition,
)

TYPES = {"plan": "string", "score": "number", "vip": "boolean", "renewal": "date", "tags": "list",
         "nickname": "string"}
ORDER_TYPES = {"amount": "number", "sku": "string", "gift": "boolean"}
CATALOG = catalog_from(TYPES, {"login": {}, "order": ORDER_TYPES})
LAST_30 = {"last_days": 30}


def prop(name: str, op: str, value: Any = None) -> dict[str, Any]:
    return {"property": name, "op": op} | ({} if value is None else {"value": value})


def fld(name: str, op: str, value: Any = None) -> dict[str, Any]:
    return {"field": name, "op": op} | ({} if value is None else {"value": value})


def did(event: str, **extra: Any) -> dict[str, Any]:
    return {"event": event, **extra}


def count(op: str, value: int) -> dict[str, Any]:
    return {"op": op, "value": value}


# --- problems, by path ----------------------------------------------------------------------------

BAD_DEFINITIONS: list[tuple[Any, list[str]]] = [
    ("{not json", ["definition"]),
    ([], ["definition"]),
    ({"match": "some"}, ["match"]),
    ({"conditions": {}}, ["conditions"]),
    ({"conditions": [], "extra": 1}, ["extra"]),
    ({"conditions": [prop("plann", "equals", "x")]}, ["conditions[0].property"]),
    ({"conditions": [prop("score", "contains", "x")]}, ["conditions[0].op"]),
    ({"conditions": [prop("score", "greater", "ten")]}, ["conditions[0].value"]),
    ({"conditions": [prop("score", "greater", True)]}, ["conditions[0].value"]),
    ({"conditions": [prop("score", "between", [5, 1])]}, ["conditions[0].value"]),
    ({"conditions": [prop("plan", "in", [])]}, ["conditions[0].value"]),
    ({"conditions": [prop("plan", "in", ["gold", 3])]}, ["conditions[0].value"]),
    ({"conditions": [prop("plan", "equals")]}, ["conditions[0].value"]),
    ({"conditions": [prop("plan", "exists", "gold")]}, ["conditions[0].value"]),
    ({"conditions": [prop("vip", "equals", "yes")]}, ["conditions[0].value"]),
    ({"conditions": [prop("renewal", "within_last_days", 0)]}, ["conditions[0].value"]),
    ({"conditions": [prop("renewal", "within_last_days", 1.5)]}, ["conditions[0].value"]),
    ({"conditions": [prop("renewal", "before", "yesterday")]}, ["conditions[0].value"]),
    ({"conditions": [prop("renewal", "between", ["2026-02-01", "2026-01-01"])]}, ["conditions[0].value"]),
    ({"conditions": [prop("renewal", "between", ["2026-02-01", "soon"])]}, ["conditions[0].value[1]"]),
    ({"conditions": [prop("tags", "contains", "")]}, ["conditions[0].value"]),
    ({"conditions": [fld("phone_raw", "equals", "x")]}, ["conditions[0].field"]),
    ({"conditions": [did("order", count=count("at_least", -1))]}, ["conditions[0].count.value"]),
    ({"conditions": [did("order", count=count("more_than", 1))]}, ["conditions[0].count.op"]),
    ({"conditions": [did("order", count=3)]}, ["conditions[0].count"]),
    ({"conditions": [did("order", did=False, count=count("at_least", 1))]}, ["conditions[0].count"]),
    ({"conditions": [did("order", did="no")]}, ["conditions[0].did"]),
    ({"conditions": [did("order", window={"last_days": 0})]}, ["conditions[0].window.last_days"]),
    ({"conditions": [did("order", window="sometimes")]}, ["conditions[0].window"]),
    ({"conditions": [did("order", window={"between": ["2026-02-02", "2026-02-01"]})]},
     ["conditions[0].window.between"]),
    ({"conditions": [did("order", where=[prop("colour", "equals", "red")])]}, ["conditions[0].where[0].property"]),
    ({"conditions": [did("order", where=[prop("amount", "contains", "1")])]}, ["conditions[0].where[0].op"]),
    ({"conditions": [did("order", where=[{"op": "equals"}])]}, ["conditions[0].where[0]"]),
    ({"conditions": [did("")]}, ["conditions[0].event"]),
    ({"conditions": [{"property": "plan", "op": "equals", "value": "x", "colour": 1}]}, ["conditions[0].colour"]),
    ({"conditions": [{"op": "equals"}]}, ["conditions[0]"]),
    ({"conditions": [{"property": "plan", "event": "order"}]}, ["conditions[0]"]),
    ({"conditions": ["plan = gold"]}, ["conditions[0]"]),
    ({"conditions": [{"subscription": "maybe"}]}, ["conditions[0].subscription"]),
    ({"conditions": [{"reachable": "yes"}]}, ["conditions[0].reachable"]),
    ({"conditions": [{"match": "any", "conditions": []}]}, ["conditions[0].conditions"]),
    ({"conditions": [{"match": "any", "conditions": [{"match": "any", "conditions": [{"match": "any", "conditions": [
        {"match": "any", "conditions": [{"match": "any", "conditions": [prop("plan", "exists")]}]}]}]}]}]},
     ["conditions[0].conditions[0].conditions[0].conditions[0].conditions[0]"]),
    # every problem at once, in order
    ({"match": "both", "conditions": [prop("plan", "equals", 1), {"match": "any", "conditions": [
        prop("score", "less", "x"), did("order", count=count("exactly", -2), window={"last_days": -1})]}]},
     ["match", "conditions[0].value", "conditions[1].conditions[0].value",
      "conditions[1].conditions[1].count.value", "conditions[1].conditions[1].window.last_days"]),
]


@pytest.mark.parametrize(("definition", "paths"), BAD_DEFINITIONS)
def test_bad_definitions_report_every_problem_with_its_path(definition: Any, paths: list[str]) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_definition(definition, CATALOG)
    assert [path for path, _ in caught.value.problems] == paths


def test_unknown_property_error_names_it_and_suggests() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_definition({"conditions": [prop("plann", "equals", "x")]}, CATALOG)
    assert caught.value.problems == [("conditions[0].property", "unknown profile property 'plann' (did you mean 'plan'?)")]


# --- the operator catalogue ------------------------------------------------------------------------


def test_every_operator_a_type_offers_is_in_the_catalogue() -> None:
    offered = {op for ops in OPERATORS.values() for op in ops}
    assert offered == set(OPERATOR_CATALOGUE)
    assert all(OPERATOR_CATALOGUE[op].positive in offered for op in NEGATIVE_OPS)
    assert NEGATIVE_OPS == {"not_equals", "not_in", "not_contains", "not_exists"}


@pytest.mark.parametrize(
    ("condition", "words"),
    [
        (prop("plan", "equals", "gold"), 'plan is "gold"'),
        (prop("plan", "not_equals", "gold"), 'plan is not "gold"'),
        (prop("plan", "in", ["gold", "silver"]), 'plan is one of ["gold", "silver"]'),
        (prop("plan", "not_in", ["gold", "silver"]), 'plan is none of ["gold", "silver"]'),
        (prop("plan", "contains", "ol"), 'plan contains "ol"'),
        (prop("plan", "not_contains", "ol"), 'plan does not contain "ol"'),
        (prop("tags", "contains_any", ["sports", "news"]), 'tags contains any of ["sports", "news"]'),
        (prop("score", "greater", 7), "score > 7"),
        (prop("score", "less", 7.5), "score < 7.5"),
        (prop("score", "between", [1, 5]), "score is between 1 and 5"),
        (prop("plan", "exists"), "plan is set"),
        (prop("plan", "not_exists"), "plan is not set"),
        (prop("renewal", "before", "2026-01-31"), 'renewal is before "2026-01-31"'),
        (prop("renewal", "after", "2026-01-31"), 'renewal is after "2026-01-31"'),
        (prop("renewal", "within_last_days", 30), "renewal is within the last 30 days"),
        (prop("renewal", "within_next_days", 7), "renewal is within the next 7 days"),
        (prop("renewal", "more_than_days_ago", 90), "renewal is more than 90 days ago"),
        (did("order", count=count("at_least", 2)), "did order ≥ 2 times"),
        (did("order", count=count("at_most", 2)), "did order ≤ 2 times"),
        (did("order", count=count("exactly", 2)), "did order = 2 times"),
    ],
    ids=[*OPERATOR_CATALOGUE, "count-at_least", "count-at_most", "count-exactly"],
)
def test_each_operator_in_words(condition: dict[str, Any], words: str) -> None:
    assert describe_definition({"conditions": [condition]}) == words


def test_the_editor_menu_reads_as_words_where_a_description_uses_a_sign() -> None:
    from smsconsole.services.segments import operator_menu

    assert [operator_menu(op) for op in ("greater", "less", "more_than_days_ago", "equals", "within_last_days")] == [
        "is greater than", "is less than", "is more than … ago", "is", "is within the last"]
    assert operator_menu("no_such_op") == "no_such_op"


NAMES = {"string": "plan", "number": "score", "boolean": "vip", "date": "renewal", "list": "tags"}
TYPED = {"string": ("gold", "silver"), "number": ("5", "9.5"), "boolean": ("true", "false"),
         "date": ("2026-01-01", "2026-01-31"), "list": ("sports", "news")}


def _typed(type_: str, op: str) -> tuple[str, str]:
    """What an operator types into the editor's value inputs for `op` on a `type_`."""
    first, second = TYPED[type_]
    takes = OPERATOR_CATALOGUE[op].takes
    if takes == "none":
        return "", ""
    if takes == "days":
        return "30", ""
    if takes == "list":
        return f"{first}, {second}", ""
    if takes == "pair":
        return first, second
    return first, ""


@pytest.mark.parametrize(("type_", "op"), [(type_, op) for type_, ops in OPERATORS.items() for op in ops],
                         ids=lambda value: value)
def test_the_editors_typed_value_is_one_the_parser_takes(type_: str, op: str) -> None:
    """The editor turns typed text into a value by the operator's value kind; the parser accepts
    it, and the editor shows it back as typed."""
    first, second = _typed(type_, op)
    given, value = parse_value(type_, op, first, second)
    assert given == (OPERATOR_CATALOGUE[op].takes != "none")
    condition = prop(NAMES[type_], op, value) if given else prop(NAMES[type_], op)
    checked = validate_definition({"conditions": [condition]}, CATALOG)
    assert checked.document["conditions"] == [condition]
    assert value_texts(op, value if given else None) == (first, second)
