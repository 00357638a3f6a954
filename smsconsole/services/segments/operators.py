"""The segment operators, declared once: the words each reads as, the kind of value it takes and
the property types it applies to. The parser, the compiler, the descriptions and the console's
condition editor all read this catalogue."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The kinds of value an operator takes.
NO_VALUE = "none"  # exists, not_exists
ONE = "one"  # a single value of the property's type
LIST = "list"  # a non-empty list of values
PAIR = "pair"  # [low, high], both included
DAYS = "days"  # a whole number of days


@dataclass(frozen=True)
class Operator:
    name: str
    label: str  # its words, in a description ("plan is one of …") and in the editor's menu
    takes: str  # NO_VALUE | ONE | LIST | PAIR | DAYS
    unit: str = ""  # words after the value: "days", "days ago"
    positive: str | None = None  # a negative operator's positive twin, whose exact complement it is
    words: str = ""  # in the editor's menu, where a sign or a bare "is more than" reads badly

    @property
    def menu(self) -> str:
        return self.words or self.label


OPERATOR_CATALOGUE: dict[str, Operator] = {op.name: op for op in (
    Operator("equals", "is", ONE),
    Operator("not_equals", "is not", ONE, positive="equals"),
    Operator("in", "is one of", LIST),
    Operator("not_in", "is none of", LIST, positive="in"),
    Operator("contains", "contains", ONE),
    Operator("not_contains", "does not contain", ONE, positive="contains"),
    Operator("contains_any", "contains any of", LIST),
    Operator("greater", ">", ONE, words="is greater than"),
    Operator("less", "<", ONE, words="is less than"),
    Operator("between", "is between", PAIR),
    Operator("exists", "is set", NO_VALUE),
    Operator("not_exists", "is not set", NO_VALUE, positive="exists"),
    Operator("before", "is before", ONE),
    Operator("after", "is after", ONE),
    Operator("within_last_days", "is within the last", DAYS, unit="days"),
    Operator("within_next_days", "is within the next", DAYS, unit="days"),
    Operator("more_than_days_ago", "is more than", DAYS, unit="days ago", words="is more than … ago"),
)}

# Which operators apply to each property type, in the order the editor offers them.
OPERATORS: dict[str, tuple[str, ...]] = {
    "string": ("equals", "not_equals", "in", "not_in", "contains", "not_contains", "exists", "not_exists"),
    "number": ("equals", "not_equals", "in", "not_in", "greater", "less", "between", "exists", "not_exists"),
    "boolean": ("equals", "not_equals", "exists", "not_exists"),
    "date": ("before", "after", "between", "within_last_days", "within_next_days", "more_than_days_ago",
             "exists", "not_exists"),
    "list": ("contains", "not_contains", "contains_any", "exists", "not_exists"),
}


NEGATIVE_OPS = frozenset(name for name, op in OPERATOR_CATALOGUE.items() if op.positive)


def value_kind(name: Any) -> str:
    """What an operator takes: NO_VALUE, ONE, LIST, PAIR or DAYS. An operator the catalogue does
    not know is read as taking one value; the parser refuses it by name."""
    op = OPERATOR_CATALOGUE.get(name)
    return op.takes if op else ONE


def operator_menu(name: Any) -> Any:
    """The operator as the editor's menu and a condition without its value show it ("is greater than")."""
    op = OPERATOR_CATALOGUE.get(name)
    return op.menu if op else name


def operator_label(name: Any) -> Any:
    """The operator's words; an operator the catalogue does not know as it was written."""
    op = OPERATOR_CATALOGUE.get(name)
    return op.label if op else name


@dataclass(frozen=True)
class CountOperator:
    """How often an event condition asks for the event."""

    name: str
    label: str  # in the editor's menu: "at least"
    sign: str  # in a description: "did order ≥ 2 times"


COUNT_CATALOGUE: dict[str, CountOperator] = {op.name: op for op in (
    CountOperator("at_least", "at least", "≥"),
    CountOperator("at_most", "at most", "≤"),
    CountOperator("exactly", "exactly", "="),
)}
COUNT_OPS = tuple(COUNT_CATALOGUE)
