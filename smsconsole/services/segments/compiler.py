"""A validated segment definition compiled to one boolean SQL expression over `Profile`: EXISTS /
IN subqueries on events, typed JSON reads that answer alike on SQLite and PostgreSQL, so an
audience is `INSERT … SELECT` with no Python loop over people."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    String,
    and_,
    bindparam,
    case,
    cast,
    false,
    func,
    not_,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole import clock
from smsconsole.models import Event, Profile
from smsconsole.services.queries.reach import reachable_condition
from smsconsole.services.segments.definition import (
    Condition,
    EventCondition,
    Group,
    ReachableCondition,
    SegmentDefinition,
    SubscriptionCondition,
    ValueCondition,
    date_end,
    date_start,
)
from smsconsole.services.segments.operators import OPERATOR_CATALOGUE
from smsconsole.services.segments.parser import check_definition
from smsconsole.services.values import format_datetime


class _JsonReads:
    """Typed reads of one key of a JSON document column that answer alike on SQLite and
    PostgreSQL: a value held as another type than the condition's never matches."""

    def __init__(self, column: Any, dialect: str) -> None:
        self.pg = dialect == "postgresql"
        self.doc = type_coerce(column, JSONB) if self.pg else column

    def _path(self, key: str) -> str:
        return f'$."{key}"'

    def _typeof(self, key: str) -> ColumnElement[str]:
        if self.pg:
            return func.jsonb_typeof(self.doc[key])
        return func.json_type(self.doc, self._path(key), type_=String)

    def _extract(self, key: str, type_: Any = String) -> ColumnElement[Any]:
        return func.json_extract(self.doc, self._path(key), type_=type_)

    def present(self, key: str) -> ColumnElement[bool]:
        if self.pg:
            return self.doc[key].astext.is_not(None)
        return self._extract(key).is_not(None)

    def text_test(self, key: str, test: Callable[[ColumnElement[str]], ColumnElement[bool]], *,
                  exact_untyped: bool = False) -> ColumnElement[bool]:
        """`test` on the value as text, true only when the stored value is a JSON string. The test
        runs first and the type check only on rows that pass it (in a CASE, which both databases
        evaluate in order): the type check costs a second lookup in the document."""
        raw = self.doc[key].astext.collate("C") if self.pg else self._extract(key)
        if exact_untyped and not self.pg:
            return test(raw)
        return case((test(raw), self._typeof(key) == ("string" if self.pg else "text")), else_=false())

    def number(self, key: str) -> ColumnElement[float]:
        if self.pg:  # the type check first here: casting other text to a number would fail
            return case((self._typeof(key) == "number", cast(self.doc[key].astext, Float)))
        return case((self._typeof(key).in_(["integer", "real"]), self._extract(key, Float)))

    def equals(self, key: str, value: Any) -> ColumnElement[bool]:
        """Equality that respects the stored JSON type (5 is not "5", true is not 1)."""
        if self.pg:  # containment of {key: value} is typed equality (arrays do not contain it)
            return self.doc.contains(bindparam(None, {key: value}, type_=JSONB))
        if isinstance(value, bool):
            return self._typeof(key) == ("true" if value else "false")
        if isinstance(value, str):
            return self.text_test(key, lambda text: text == value, exact_untyped=_plain(value))
        return self.number(key) == value

    def one_of(self, key: str, values: Sequence[Any]) -> ColumnElement[bool]:
        if self.pg:
            return self.doc[key].in_([bindparam(None, v, type_=JSONB) for v in values])
        if isinstance(values[0], str):
            return self.text_test(key, lambda text: text.in_(list(values)), exact_untyped=all(map(_plain, values)))
        return self.number(key).in_(list(values))

    def list_has_any(self, key: str, items: Sequence[str]) -> ColumnElement[bool]:
        if self.pg:
            if len(items) == 1:
                return self.doc[key].contains(list(items))
            return and_(self._typeof(key) == "array", self.doc[key].has_any(postgresql.array(list(items))))
        elements = func.json_each(self.doc, self._path(key)).table_valued("value")
        member = select(elements.c.value).where(elements.c.value.in_(list(items))).exists()
        return and_(self._typeof(key) == "array", member)


def _plain(value: str) -> bool:
    """SQLite's json_extract gives numbers and booleans as numbers, which never equal text, and
    arrays/objects as JSON text starting with [ or {: only text like that needs the type check."""
    return value[:1] not in ("[", "{")


def _is_true(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """NULL (unknown) as false, so NOT of it is the exact complement."""
    return func.coalesce(condition, false())


def _cost(condition: Condition) -> int:
    if isinstance(condition, ValueCondition):
        return 0 if condition.source == "field" else 1
    if isinstance(condition, (SubscriptionCondition, ReachableCondition)):
        return 0
    return 2 if isinstance(condition, Group) else 3


class _Compiler:
    def __init__(self, now: datetime, dialect: str) -> None:
        if now.tzinfo is None:
            raise ValueError("compile_segment needs an aware `now`")
        self.now = now.astimezone(UTC)
        self.dialect = dialect
        self.pg = dialect == "postgresql"

    def group(self, group: Group) -> ColumnElement[bool]:
        # Cheapest first: SQLite evaluates AND/OR terms in the order written, and the order
        # changes no answer.
        parts = [self.condition(c) for c in sorted(group.conditions, key=_cost)]
        if not parts:
            return true()
        if len(parts) == 1:
            return parts[0]
        return and_(*parts) if group.match == "all" else or_(*parts)

    def condition(self, condition: Condition) -> ColumnElement[bool]:
        if isinstance(condition, Group):
            return self.group(condition)
        if isinstance(condition, ValueCondition):
            if condition.source == "field":
                return self.field(condition)
            return self.json_value(_JsonReads(Profile.properties, self.dialect), condition)
        if isinstance(condition, EventCondition):
            return self.event(condition)
        if isinstance(condition, SubscriptionCondition):
            if len(condition.states) == 1:
                return Profile.subscription == condition.states[0]
            return Profile.subscription.in_(condition.states)
        return reachable_condition() if condition.reachable else not_(reachable_condition())

    # A negative operator is NOT of its positive twin, NULL counted as false.
    def _negated(self, positive: ColumnElement[bool]) -> ColumnElement[bool]:
        return not_(_is_true(positive))

    def json_value(self, reads: _JsonReads, c: ValueCondition) -> ColumnElement[bool]:
        positive = OPERATOR_CATALOGUE[c.op].positive
        if positive is not None:
            return self._negated(self.json_value(reads, ValueCondition(c.source, c.name, c.type, positive, c.value)))
        if c.op == "exists":
            return reads.present(c.name)
        if c.type == "list":
            items = [c.value] if c.op == "contains" else c.value
            return reads.list_has_any(c.name, items)
        if c.op == "equals":
            return reads.equals(c.name, c.value)
        if c.op == "in":
            return reads.one_of(c.name, c.value)
        if c.op == "contains":
            return reads.text_test(c.name, lambda text: self._substring(text, c.value))
        if c.type == "number":
            number = reads.number(c.name)
            if c.op == "greater":
                return number > c.value
            if c.op == "less":
                return number < c.value
            return number.between(c.value[0], c.value[1])
        # In a two-sided range of ISO dates SQLite needs no type check: numbers sort below any
        # text, and JSON arrays/objects (returned as text starting with [ or {) above any date.
        ranged = c.op in ("within_last_days", "within_next_days", "between")
        return reads.text_test(c.name, lambda text: self._date(text, c.op, c.value, format_datetime),
                               exact_untyped=ranged)

    def field(self, c: ValueCondition) -> ColumnElement[bool]:
        column = getattr(Profile, c.name)
        if c.op == "exists":
            return column.is_not(None)
        if c.op == "not_exists":
            return column.is_(None)
        if c.op == "equals":
            return column == c.value
        if c.op == "not_equals":
            return column.is_distinct_from(c.value)
        if c.op == "in":
            return column.in_(c.value)
        if c.op == "not_in":
            return or_(column.is_(None), column.not_in(c.value))
        if c.op == "contains":
            return self._substring(column, c.value)
        if c.op == "not_contains":
            return self._negated(self._substring(column, c.value))
        return self._date(column, c.op, c.value, lambda moment: moment)

    def _substring(self, text: ColumnElement[str], needle: str) -> ColumnElement[bool]:
        position = func.strpos(text, needle) if self.pg else func.instr(text, needle)
        return position > 0

    def _date(self, value: ColumnElement[Any], op: str, operand: Any, form: Any) -> ColumnElement[bool]:
        """Date comparisons; `form` turns a moment into the stored form (ISO text or datetime)."""
        now = self.now
        if op == "within_last_days":
            return and_(value >= form(now - timedelta(days=operand)), value <= form(now))
        if op == "within_next_days":
            return and_(value >= form(now), value <= form(now + timedelta(days=operand)))
        if op == "more_than_days_ago":
            return value < form(now - timedelta(days=operand))
        if op == "before":
            return value < form(date_start(operand))
        if op == "after":
            end, inclusive = date_end(operand)
            return value > form(end) if inclusive else value >= form(end)
        start = value >= form(date_start(operand[0]))
        end, inclusive = date_end(operand[1])
        return and_(start, value <= form(end) if inclusive else value < form(end))

    def event(self, c: EventCondition) -> ColumnElement[bool]:
        filters: list[ColumnElement[bool]] = [Event.name == c.event]
        if c.window.kind == "last_days":
            filters += [Event.at >= self.now - timedelta(days=c.window.days), Event.at <= self.now]
        elif c.window.kind == "between" and c.window.between:
            filters.append(self._date(Event.at, "between", list(c.window.between), lambda moment: moment))
        reads = _JsonReads(Event.properties, self.dialect)
        filters += [self.json_value(reads, w) for w in c.where]

        def done_once() -> ColumnElement[bool]:
            # profile_id rather than *, so SQLite answers from ix_events_name_profile_at alone
            return select(Event.profile_id).where(Event.profile_id == Profile.id, *filters).exists()

        def counted(having: ColumnElement[bool]) -> Any:
            return select(Event.profile_id).where(*filters).group_by(Event.profile_id).having(having)

        op, n = c.count_op, c.count
        if op == "at_least":
            if n == 0:
                return true()
            return done_once() if n == 1 else Profile.id.in_(counted(func.count() >= n))
        if n == 0:  # at_most 0, exactly 0
            return not_(done_once())
        if op == "exactly":
            return Profile.id.in_(counted(func.count() == n))
        too_many = counted(func.count() > n)
        if self.pg:
            # NOT IN over a large set falls back to a per-row scan on PostgreSQL; an anti-join
            # against the grouped set does not.
            grouped = too_many.subquery()
            return not_(select(grouped.c.profile_id).where(grouped.c.profile_id == Profile.id).exists())
        return Profile.id.not_in(too_many)


def compile_segment(definition: SegmentDefinition, *, now: datetime, dialect: str) -> ColumnElement[bool]:
    """The definition as one boolean SQL expression over `Profile` ("sqlite" or "postgresql"):
    `select(Profile.id).where(compile_segment(...))` is the audience."""
    return _Compiler(now, dialect).group(definition.root)


def event_property_filter(where: Sequence[ValueCondition], *, now: datetime, dialect: str) -> ColumnElement[bool]:
    """Validated conditions on an event's properties (an event condition's `where`, a live
    trigger's `where`) as one boolean SQL expression over `Event` rows; true when there are none."""
    compiler = _Compiler(now, dialect)
    reads = _JsonReads(Event.properties, dialect)
    parts = [compiler.json_value(reads, condition) for condition in where]
    if not parts:
        return true()
    return parts[0] if len(parts) == 1 else and_(*parts)


def session_dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def segment_condition(session: AsyncSession, definition: Any, *, now: datetime | None = None) -> ColumnElement[bool]:
    """Validate (raw JSON or a SegmentDefinition) and compile for this session's database."""
    checked = await check_definition(session, definition)
    return compile_segment(checked, now=now or clock.now(), dialect=session_dialect(session))
