"""Inaction waits that ran out: the person did A and B did not come within the window, so the
message goes now. The engine's live tick calls `fire_due_waits` every second.

Set-based and idempotent. Due waits are taken CHUNK at a time (the partial index on due_at of
pending waits); each campaign's share of a chunk is one transaction: its counter row is locked
first (the order every trigger follows), the waits still pending are claimed by one UPDATE …
RETURNING (a wait the follow-up event cancelled a moment before is no longer pending and sends
nothing), `common.queue_candidates` queues them with the dedupe key `live:{campaign}:wait:{id}`,
and each wait is marked with its outcome — fired, skipped (with the reason) or limited — in the
same transaction as its message. A killed engine therefore loses no wait and sends none twice:
either both the message and the wait's new state committed, or neither did.

Waits due more than the misfire grace ago (no engine was running, or the campaign was paused)
do not fire: they become `expired` with the reason, counted `late`. Waits of a paused campaign
stay pending meanwhile; a wait due at or after the campaign's end never fires (the campaign ends,
services/campaigns/live/lifecycle.py)."""

from __future__ import annotations

import logging
import time as _time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsconsole.models import CampaignWait, Event, PropertyDef
from smsconsole.services.campaigns.definition import Trigger, campaign_code
from smsconsole.services.campaigns.live.common import (
    Candidate,
    LiveCampaign,
    bump,
    campaign_day,
    live_campaigns,
    queue_candidates,
)
from smsconsole.services.campaigns.materialize import MaterializeError, misfire_grace
from smsconsole.services.errors import ValidationError
from smsconsole.services.segments.catalog import catalog_from
from smsconsole.services.segments.compiler import session_dialect
from smsconsole.services.segments.parser import validate_definition

log = logging.getLogger("smsconsole.campaigns")

CHUNK = 1000  # waits per statement
MAX_CHUNKS = 200  # per call: a backlog larger than this fires over the following ticks
LOCK_TIMEOUT = "500ms"  # PostgreSQL: below the deadlock timeout, so a crossing trigger wins, the tick retries
WARN_EVERY = 60.0  # seconds between log lines about one campaign that cannot queue

# What a wait becomes for each outcome of queue_candidates: (state, reason).
WAIT_OUTCOMES: dict[str, tuple[str, str | None]] = {
    "queued": ("fired", None),
    "duplicate": ("fired", None),  # its message was queued before (a retried chunk)
    "not_in_filter": ("skipped", "not in the campaign's filter (segment or reach sample)"),
    "unreachable": ("skipped", "SMS cannot reach them now (opted out, no valid phone)"),
    "not_eligible": ("skipped", "not eligible again yet (the campaign's re-eligibility rule)"),
    "limited": ("limited", "the campaign's daily or target limit was reached"),
}
FOLLOW_UP_TTL = 60.0  # seconds a follow-up event's checked conditions are reused by the claim guard
_warned: dict[int, float] = {}
_follow_ups: dict[tuple[str, str, str], tuple[float, Any]] = {}


@dataclass
class FireResult:
    """What one call did, in waits (queued: messages new in the outbox)."""

    queued: int = 0
    fired: int = 0
    skipped: int = 0
    limited: int = 0
    expired: int = 0

    def add(self, other: FireResult) -> None:
        for item in fields(self):
            setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))


def expired_reason(grace: float) -> str:
    return (f"its time passed more than the misfire grace ({_duration(grace)}) ago, while no engine ran or "
            "the campaign was paused")


async def fire_due_waits(target: AsyncSession | async_sessionmaker[AsyncSession], *, now: datetime) -> FireResult:
    """Expire the waits due too long ago, then fire the due ones of live inaction campaigns.
    Given a session, everything happens in it (the caller commits); given a session factory,
    each campaign's share of each chunk commits on its own."""
    now = now.astimezone(UTC)
    if isinstance(target, AsyncSession):
        return await _fire_all(_Shared(target), now)
    return await _fire_all(_Own(target), now)


class _Shared:
    """Everything in the caller's session (no savepoints: pysqlite would commit at the first one's
    release when nothing was written before it)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def reader(self) -> Any:
        return _Nothing(self.session)

    def writer(self) -> Any:
        return _Nothing(self.session)


class _Own:
    """A transaction per campaign and chunk, committed here."""

    def __init__(self, factory: async_sessionmaker[AsyncSession]) -> None:
        self.factory = factory

    def reader(self) -> Any:
        return _Transaction(self.factory, write=False)

    def writer(self) -> Any:
        return _Transaction(self.factory, write=True)


class _Nothing:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def __aenter__(self) -> AsyncSession:
        return self.session

    async def __aexit__(self, *exc: object) -> None:
        return None


class _Transaction:
    def __init__(self, factory: async_sessionmaker[AsyncSession], *, write: bool) -> None:
        self.factory, self.write = factory, write
        self.session: AsyncSession | None = None

    async def __aenter__(self) -> AsyncSession:
        self.session = self.factory()
        await self.session.begin()
        if self.write and session_dialect(self.session) == "postgresql":
            await self.session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        return self.session

    async def __aexit__(self, kind: object, *exc: object) -> None:
        assert self.session is not None
        try:
            if kind is None:
                await self.session.commit()
            else:
                await self.session.rollback()
        finally:
            await self.session.close()


async def _fire_all(place: _Shared | _Own, now: datetime) -> FireResult:
    result = FireResult()
    async with place.reader() as session:
        lives = {live.campaign_id: live for live in await live_campaigns(session, types=("inaction",))}
        if not lives:
            return result
        grace = await misfire_grace(session)
        cutoff = now - timedelta(seconds=grace)
        overdue = dict((await session.execute(
            select(CampaignWait.campaign_id, func.count())
            .where(CampaignWait.state == "pending", CampaignWait.due_at < cutoff,
                   CampaignWait.campaign_id.in_(list(lives)))
            .group_by(CampaignWait.campaign_id))).all())
    for campaign_id in sorted(overdue):
        async with place.writer() as session:
            result.expired += await _expire(session, lives[campaign_id], cutoff, grace, now)
    broken: set[int] = set()
    for _ in range(MAX_CHUNKS):
        candidates = {cid: live for cid, live in lives.items() if cid not in broken}
        if not candidates:
            break
        async with place.reader() as session:
            due = (await session.execute(
                select(CampaignWait.id, CampaignWait.campaign_id, CampaignWait.profile_id, CampaignWait.event_id)
                .where(CampaignWait.state == "pending", _due(candidates.values(), now))
                .order_by(CampaignWait.due_at, CampaignWait.id).limit(CHUNK))).all()
        by_campaign: dict[int, list[Any]] = defaultdict(list)
        for row in due:
            by_campaign[row.campaign_id].append(row)
        for campaign_id in sorted(by_campaign):
            try:
                async with place.writer() as session:
                    result.add(await _fire(session, lives[campaign_id], by_campaign[campaign_id], now))
            except MaterializeError as exc:
                broken.add(campaign_id)
                _warn(campaign_id, f"its waits cannot fire: {exc}; they stay pending")
        if len(due) < CHUNK:
            break
    return result


def _due(lives: Any, now: datetime) -> ColumnElement[bool]:
    """Due now, and before the campaign's end where that has passed (what is due from the end on
    never fires: the campaign ends)."""
    open_ended: list[int] = []
    ending: list[ColumnElement[bool]] = []
    for live in lives:
        end = live.document.when.end
        if end is not None and end.astimezone(UTC) <= now:
            ending.append(and_(CampaignWait.campaign_id == live.campaign_id, CampaignWait.due_at < end.astimezone(UTC)))
        else:
            open_ended.append(live.campaign_id)
    conditions = [and_(CampaignWait.campaign_id.in_(open_ended), CampaignWait.due_at <= now)] if open_ended else []
    return or_(*conditions, *ending)


async def _expire(session: AsyncSession, live: LiveCampaign, cutoff: datetime, grace: float, now: datetime) -> int:
    day = campaign_day(live, now)
    await bump(session, live.campaign_id, day)  # the campaign's counter lock first, as every trigger takes it
    expired = await session.execute(
        update(CampaignWait).where(CampaignWait.campaign_id == live.campaign_id, CampaignWait.state == "pending",
                                   CampaignWait.due_at < cutoff)
        .values(state="expired", reason=expired_reason(grace), ended_at=now)
        .execution_options(synchronize_session=False))
    count = int(expired.rowcount or 0)
    if count:
        await bump(session, live.campaign_id, day, late=count)
        log.warning("campaign %s: %d inaction waits expired (due more than the misfire grace ago)",
                    campaign_code(live.campaign_id), count)
    return count


async def _fire(session: AsyncSession, live: LiveCampaign, rows: Sequence[Any], now: datetime) -> FireResult:
    result = FireResult()
    await bump(session, live.campaign_id, campaign_day(live, now))  # the counter lock first
    claimed = set((await session.execute(
        update(CampaignWait).where(CampaignWait.id.in_([row.id for row in rows]), CampaignWait.state == "pending")
        .values(state="firing").returning(CampaignWait.id).execution_options(synchronize_session=False)))
        .scalars().all())
    candidates = [Candidate(row.profile_id, f"wait:{row.id}", event_id=row.event_id, wait_id=row.id)
                  for row in rows if row.id in claimed]
    if not candidates:
        return result
    # The trigger (A) was counted when the wait started; the tick counts only what became of it.
    try:
        outcomes = await queue_candidates(session, live, candidates, now=now, count_triggered=False)
    except MaterializeError:  # its segment or route is gone: the waits stay pending
        await session.execute(update(CampaignWait).where(CampaignWait.id.in_(sorted(claimed)))
                              .values(state="pending").execution_options(synchronize_session=False))
        raise
    by_outcome: dict[tuple[str, str | None], list[int]] = defaultdict(list)
    for candidate in candidates:
        outcome = outcomes.get(candidate.key, "not_in_filter")
        by_outcome[WAIT_OUTCOMES[outcome]].append(candidate.wait_id or 0)
        if outcome == "queued":
            result.queued += 1
    for (state, reason), ids in by_outcome.items():
        await session.execute(
            update(CampaignWait).where(CampaignWait.id.in_(ids))
            .values(state=state, reason=reason, ended_at=now).execution_options(synchronize_session=False))
        setattr(result, state, getattr(result, state) + len(ids))
    return result


async def follow_up_condition(session: AsyncSession, trigger: Trigger, *, now: datetime,
                              ) -> ColumnElement[bool] | None:
    """An inaction trigger's follow-up event (B: its name and `cancel_where`) as a condition over
    `Event` rows; None when it has no follow-up event or its conditions no longer fit the catalog
    (checked when it was scheduled). The checked conditions are kept for FOLLOW_UP_TTL seconds."""
    event = trigger.cancel_event
    if not event:
        return None
    key = (str(session.get_bind().url), event, repr(trigger.cancel_where))
    cached = _follow_ups.get(key)
    moment = _time.monotonic()
    if cached is None or cached[0] < moment:
        conditions: Any = ()
        if trigger.cancel_where:
            types = dict((await session.execute(select(PropertyDef.name, PropertyDef.type)
                                                .where(PropertyDef.scope == f"event:{event}"))).all())
            definition = {"conditions": [{"event": event, "where": [dict(w) for w in trigger.cancel_where]}]}
            try:
                checked = validate_definition(definition, catalog_from({}, {event: types}))
                conditions = tuple(getattr(checked.root.conditions[0], "where", ()))
            except ValidationError as exc:
                log.warning("the follow-up conditions on %s no longer fit the catalog (%s); not checked at send",
                            event, exc.problems[0][1] if exc.problems else exc)
                conditions = None
        if len(_follow_ups) > 256:
            _follow_ups.clear()
        cached = (moment + FOLLOW_UP_TTL, conditions)
        _follow_ups[key] = cached
    if cached[1] is None:
        return None
    from smsconsole.services.segments.compiler import (
        event_property_filter,  # lazy: added with the triggers
    )

    return and_(Event.name == event,
                event_property_filter(cached[1], now=now, dialect=session_dialect(session)))


def _warn(campaign_id: int, what: str) -> None:
    moment = _time.monotonic()
    if moment - _warned.get(campaign_id, -WARN_EVERY) >= WARN_EVERY:
        _warned[campaign_id] = moment
        log.warning("campaign %s: %s", campaign_code(campaign_id), what)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"
