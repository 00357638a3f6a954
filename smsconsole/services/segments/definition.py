"""A segment definition once validated: its conditions as typed values, the limits a definition
keeps within, and what a date written in one stands for."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Union

from smsconsole.services.values import parse_datetime

MAX_DEPTH = 5  # nesting levels of groups, the top one included
MAX_CONDITIONS = 200
MAX_LIST_VALUES = 1000
MAX_DAYS = 36_500
MAX_COUNT = 1_000_000
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class ValueCondition:
    """A test of one value: a profile property, a built-in field or an event property."""

    source: str  # property | field
    name: str
    type: str
    op: str
    value: Any = None


@dataclass(frozen=True)
class Window:
    kind: str = "ever"  # ever | last_days | between
    days: int = 0
    between: tuple[str, str] | None = None


@dataclass(frozen=True)
class EventCondition:
    event: str
    count_op: str  # at_least | at_most | exactly
    count: int
    window: Window
    where: tuple[ValueCondition, ...] = ()


@dataclass(frozen=True)
class SubscriptionCondition:
    states: tuple[str, ...]


@dataclass(frozen=True)
class ReachableCondition:
    reachable: bool


@dataclass(frozen=True)
class Group:
    match: str  # all | any
    conditions: tuple[Condition, ...]


Condition = Union[ValueCondition, EventCondition, SubscriptionCondition, ReachableCondition, Group]


@dataclass(frozen=True)
class SegmentDefinition:
    """A definition that passed validation, with its normalized JSON and any warnings."""

    root: Group
    document: dict[str, Any]
    warnings: tuple[str, ...] = ()


def date_start(text: str) -> datetime:
    return parse_datetime(text)


def date_end(text: str) -> tuple[datetime, bool]:
    """The end a date stands for: (moment, inclusive). A bare date runs to the next midnight."""
    moment = parse_datetime(text)
    if _DATE_ONLY.fullmatch(text.strip()):
        return moment + timedelta(days=1), False
    return moment, True
