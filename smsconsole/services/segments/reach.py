"""Reach: how many people a definition selects, how many an SMS can reach now, why the rest
cannot, and by country, in one query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole import clock
from smsconsole.models import Profile
from smsconsole.services.queries.reach import UNREACHABLE_REASONS, reachable_condition, unreachable_conditions
from smsconsole.services.segments.compiler import compile_segment, session_dialect
from smsconsole.services.segments.parser import check_definition


@dataclass(frozen=True)
class UnreachableCounts:
    """People who qualify but cannot be sent an SMS now; each counted once, under the first
    reason `services.profiles.unreachable_reason` gives."""

    no_phone: int = 0
    invalid_phone: int = 0
    not_mobile_capable: int = 0
    unsubscribed: int = 0
    never_opted_in: int = 0

    def items(self) -> list[tuple[str, int]]:
        """(reason in words, count) in the order reasons are checked."""
        return [(label, getattr(self, code)) for code, label in UNREACHABLE_REASONS]

    @property
    def total(self) -> int:
        return sum(getattr(self, code) for code, _ in UNREACHABLE_REASONS)


@dataclass(frozen=True)
class CountryReach:
    country: str | None
    qualified: int
    reachable: int


@dataclass(frozen=True)
class ReachEstimate:
    qualified: int
    reachable: int
    unreachable: UnreachableCounts
    by_country: tuple[CountryReach, ...]  # most qualified first
    warnings: tuple[str, ...]
    computed_at: datetime


def reach_query(condition: ColumnElement[bool]) -> Any:
    """Per country: people matching `condition`, how many SMS can reach, and how many fall under
    each unreachable reason. One scan; conditional counts rather than a (country, reason) group,
    which would add a sort the database can otherwise skip."""
    return (
        select(Profile.country, func.count().label("qualified"),
               func.count(case((reachable_condition(), 1))).label("reachable"),
               *[func.count(case((predicate, 1))).label(code) for code, predicate in unreachable_conditions().items()])
        .where(condition)
        .group_by(Profile.country)
    )


async def estimate_reach(session: AsyncSession, definition: Any, *, now: datetime | None = None) -> ReachEstimate:
    """How many qualify, how many SMS can reach now, why the rest cannot, and by country; one query."""
    moment = now or clock.now()
    checked = await check_definition(session, definition)
    condition = compile_segment(checked, now=moment, dialect=session_dialect(session))
    rows = (await session.execute(reach_query(condition))).all()
    codes = [code for code, _ in UNREACHABLE_REASONS]
    by_country = sorted(
        (CountryReach(row.country, row.qualified, row.reachable) for row in rows),
        key=lambda c: (-c.qualified, c.country is None, c.country or ""),
    )
    reasons = {code: sum(getattr(row, code) for row in rows) for code in codes}
    return ReachEstimate(
        qualified=sum(c.qualified for c in by_country),
        reachable=sum(c.reachable for c in by_country),
        unreachable=UnreachableCounts(**reasons),
        by_country=tuple(by_country),
        warnings=checked.warnings,
        computed_at=moment,
    )
