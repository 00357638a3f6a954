"""Conversions: who did a campaign's goal event after its message, attributed in SQL as events
arrive and recomputed on demand. The rules (tested in tests/integration/test_conversions.py):

- A campaign's goal (top-level `goal` in its document: event, `where` on the event's properties,
  window, value) counts for every run of the campaign, whatever its state, until it is deleted.
- A person of a run is **reached** by a row of that run in REACHED_STATES: a message that left
  (sent, delivered, undelivered, unknown) or a control row (held out, never sent). Its anchor is
  coalesce(sent_at, created_at): the send, or the would-be send time of a control row.
- A goal event converts when anchor <= event.at < anchor + window. One conversion per (run,
  person): the earliest qualifying event wins (ties: the lower event id), credited to the latest
  reached row before it. A late event that happened earlier replaces a later one (revenue follows);
  the same event again changes nothing. So attributing is idempotent and order independent.
- Revenue is the goal's `value` property of that event when it holds a number, else NULL.

Every door that records events (record_events: the API and imports, with or without live
triggers; replies logged as events) calls `on_events` in its own transaction: attributing is not
sending. An event recorded while its message was still being sent (sent_at <= event.at, but the
`sent` state not yet committed) found no reached row: `RecentSweep`, run by the engine every
SWEEP_SECONDS, attributes again the events recorded in the last two intervals (a range of the
events' primary key). `recompute` rebuilds a campaign's conversions from all its goal events (a goal
added or changed after sending, a message whose state changed after its person converted).

The rollups (stat_campaign "converted", stat_series "converted") follow campaign_conversions by
database triggers (migration 0010)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    and_,
    case,
    cast,
    delete,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsconsole.models import Campaign, CampaignConversion, Event, Message, PropertyDef, UTCDateTime
from smsconsole.services.campaigns.arms import Goal, parse_goal
from smsconsole.services.errors import NotFound, ValidationError
from smsconsole.services.segments.compiler import _JsonReads, event_property_filter, session_dialect
from smsconsole.services.segments.definition import ValueCondition

log = logging.getLogger("smsconsole.campaigns.conversions")

REACHED_STATES = ("sent", "delivered", "undelivered", "unknown", "control")
CHUNK = 1000  # event ids per statement
SWEEP_SECONDS = 60.0
FIRST_SWEEP_EVENTS = 10_000  # the first sweep of an engine tenure looks this many events back
REFUSED_RETRY = 60.0  # seconds before a goal whose conditions the catalog refused is checked again


@dataclass(frozen=True)
class CampaignGoal:
    """A campaign's goal with its `where` checked against the catalog (segment conditions)."""

    campaign_id: int
    goal: Goal
    conditions: tuple[ValueCondition, ...]


# (database, campaign id) -> (campaign updated_at, its goal or None, or the monotonic time a refused
# goal may be checked again). A document changes only with updated_at; a property's type never
# changes once the catalog has it.
_cache: dict[tuple[str, int], tuple[datetime, CampaignGoal | None, float]] = {}


async def _event_types(session: AsyncSession, events: set[str]) -> dict[str, dict[str, str]]:
    if not events:
        return {}
    rows = await session.execute(select(PropertyDef.scope, PropertyDef.name, PropertyDef.type)
                                 .where(PropertyDef.scope.in_(sorted(f"event:{e}" for e in events))))
    types: dict[str, dict[str, str]] = {}
    for scope, name, type_ in rows:
        types.setdefault(scope.removeprefix("event:"), {})[name] = type_
    return types


def _read_goal(document: Any) -> Goal | None:
    data = document.get("goal") if isinstance(document, dict) else None
    problems: list[tuple[str, str]] = []
    goal = parse_goal(data, problems)
    return goal if goal is not None and not problems else None


def _check(goal: Goal, types: dict[str, dict[str, str]]) -> tuple[tuple[ValueCondition, ...], list[tuple[str, str]]]:
    from smsconsole.services.campaigns.live.triggers import check_where  # lazy: live loads the materializer

    return check_where(goal.where, goal.event, types.get(goal.event, {}), "goal.where")


async def campaign_goals(session: AsyncSession) -> list[CampaignGoal]:
    """The goals of the campaigns that are not deleted (drafts have sent nothing): one query of
    (id, updated_at), and the documents only of campaigns changed since they were last read."""
    rows = (await session.execute(select(Campaign.id, Campaign.updated_at)
                                  .where(Campaign.deleted_at.is_(None), Campaign.state != "draft")
                                  .order_by(Campaign.id))).all()
    database = str(session.get_bind().url)
    moment = time.monotonic()

    def fresh(campaign_id: int, updated: datetime) -> bool:
        entry = _cache.get((database, campaign_id))
        return entry is not None and entry[0] == updated and (entry[1] is not None or entry[2] > moment)

    stale = [campaign_id for campaign_id, updated in rows if not fresh(campaign_id, updated)]
    if stale:
        if len(_cache) > 4096:
            _cache.clear()
        documents: dict[int, tuple[datetime, Any]] = {}
        for start in range(0, len(stale), CHUNK):
            for campaign_id, updated, document in await session.execute(
                    select(Campaign.id, Campaign.updated_at, Campaign.document)
                    .where(Campaign.id.in_(stale[start:start + CHUNK]))):
                documents[campaign_id] = (updated, document)
        goals = {campaign_id: _read_goal(document) for campaign_id, (_, document) in documents.items()}
        types = await _event_types(session, {g.event for g in goals.values() if g is not None and g.where})
        for campaign_id, goal in goals.items():
            updated = documents[campaign_id][0]
            if goal is None:
                _cache[(database, campaign_id)] = (updated, None, float("inf"))
                continue
            conditions, problems = _check(goal, types)
            if problems:  # the catalog refuses them now (checked when scheduled): the goal matches nothing
                log.warning("campaign C%s: its goal's conditions do not apply (%s: %s); no event converts",
                            campaign_id, *problems[0])
                _cache[(database, campaign_id)] = (updated, None, moment + REFUSED_RETRY)
                continue
            _cache[(database, campaign_id)] = (updated, CampaignGoal(campaign_id, goal, conditions), 0.0)
    found = [(_cache.get((database, campaign_id)) or (None, None, 0.0))[1] for campaign_id, _ in rows]
    return [goal for goal in found if goal is not None]


# --- the attribution statement -------------------------------------------------------------------


def _plus_minutes(moment: ColumnElement[Any], minutes: int, dialect: str) -> ColumnElement[Any]:
    """`moment` + whole minutes, exact on both databases. SQLite keeps "YYYY-MM-DD HH:MM:SS.ffffff":
    the seconds are shifted without their fraction (SQLite would round it to milliseconds) and the
    fraction appended again, so the text compares exactly with stored times."""
    if dialect == "postgresql":
        return moment + literal_column(f"INTERVAL '{int(minutes)} minutes'")
    return func.strftime("%Y-%m-%d %H:%M:%S", func.substr(moment, 1, 19), f"+{int(minutes)} minutes") \
        .concat(func.substr(moment, 20))


def _insert(session: AsyncSession) -> Any:
    return (postgresql.insert if session_dialect(session) == "postgresql" else sqlite.insert)(CampaignConversion)


async def _attribute(session: AsyncSession, goals: Sequence[CampaignGoal], events: ColumnElement[bool], *,
                     now: datetime, by_events: bool) -> int:
    """One INSERT … SELECT: the goal events among `events` joined with the reached rows of the
    goals' campaigns, the earliest per (run, person), upserted only over a later one. Returns the
    conversions written (new, or moved earlier). `by_events`: `events` is a small set (a batch) to
    start from; without statistics SQLite would otherwise start from the campaigns' rows (it
    takes `campaign_id = ?` for about ten rows) and read all of them for every batch."""
    if not goals:
        return 0
    dialect = session_dialect(session)
    reads = _JsonReads(Event.properties, dialect)
    anchor = func.coalesce(Message.sent_at, Message.created_at)
    matches: list[ColumnElement[bool]] = []
    revenues: list[tuple[ColumnElement[bool], ColumnElement[Any]]] = []
    for g in goals:
        mine = Message.campaign_id == g.campaign_id
        matches.append(and_(mine, Event.name == g.goal.event, Event.at < _plus_minutes(anchor, g.goal.window_minutes,
                                                                                       dialect),
                            event_property_filter(g.conditions, now=now, dialect=dialect)))
        if g.goal.value:
            revenues.append((mine, reads.number(g.goal.value)))
    if len(goals) == 1:
        revenue: ColumnElement[Any] = revenues[0][1] if revenues else null()
    else:
        revenue = case(*revenues, else_=null()) if revenues else null()
    order = func.row_number().over(partition_by=(Message.run_id, Message.profile_id),
                                   order_by=(Event.at, Event.id, anchor.desc(), Message.id.desc()))
    campaign_ids = [g.campaign_id for g in goals]
    pairs = (
        select(Message.campaign_id, Message.run_id, Message.variant, Message.profile_id,
               Message.id.label("message_id"), Event.id.label("event_id"), Event.at.label("converted_at"),
               cast(revenue, Float).label("revenue"), order.label("pick"))
        .select_from(Event))
    reached = and_(Message.profile_id == Event.profile_id,
                   Message.campaign_id == campaign_ids[0] if len(campaign_ids) == 1
                   else Message.campaign_id.in_(campaign_ids),
                   Message.state.in_(REACHED_STATES), Message.run_id.is_not(None), anchor <= Event.at)
    matching = matches[0] if len(matches) == 1 else or_(*matches)
    names = Event.name.in_(sorted({g.goal.event for g in goals}))
    if by_events:  # a LEFT JOIN keeps the batch outside (by its ids: the name is tested in the join, else
        # SQLite would walk every event of that name), then each person's rows of the campaigns
        pairs = pairs.outerjoin(Message, and_(reached, names, matching)).where(events).subquery()
    else:  # the planner's choice: a campaign's rows, then each person's goal events in the window
        pairs = pairs.join(Message, reached).where(events, names, matching).subquery()
    stamp = literal(now, UTCDateTime())
    source = select(pairs.c.campaign_id, pairs.c.run_id, pairs.c.variant, pairs.c.profile_id, pairs.c.message_id,
                    pairs.c.event_id, pairs.c.converted_at, pairs.c.revenue, stamp, stamp) \
        .where(pairs.c.pick == 1, pairs.c.message_id.is_not(None)) \
        .order_by(pairs.c.run_id, pairs.c.profile_id)  # one lock order for concurrent writers (PostgreSQL)
    statement = _insert(session).from_select(
        ["campaign_id", "run_id", "variant", "profile_id", "message_id", "event_id", "converted_at", "revenue",
         "created_at", "updated_at"], source)
    new, old = statement.excluded, CampaignConversion.__table__.c
    statement = statement.on_conflict_do_update(
        index_elements=["run_id", "profile_id"],
        set_={"variant": new.variant, "message_id": new.message_id, "event_id": new.event_id,
              "converted_at": new.converted_at, "revenue": new.revenue, "updated_at": new.updated_at},
        where=or_(new.converted_at < old.converted_at,
                  and_(new.converted_at == old.converted_at, new.event_id < old.event_id)))
    result = await session.execute(statement)
    return max(int(result.rowcount or 0), 0)


# --- the doors ------------------------------------------------------------------------------------


async def on_events(session: AsyncSession, event_ids: Sequence[int], *, now: datetime) -> int:
    """Attribute newly recorded events (any event; only goal events of some campaign convert).
    One light query when no campaign has a goal; otherwise one statement per CHUNK events. Returns
    the conversions written. The caller commits."""
    if not event_ids:
        return 0
    goals = await campaign_goals(session)
    if not goals:
        return 0
    ids = sorted(set(event_ids))
    written = 0
    for start in range(0, len(ids), CHUNK):
        written += await _attribute(session, goals, Event.id.in_(ids[start:start + CHUNK]), now=now, by_events=True)
    return written


async def attribute_range(session: AsyncSession, after_id: int, upto_id: int, *, now: datetime) -> int:
    """Attribute the events with after_id < id <= upto_id again (the engine's sweep)."""
    if upto_id <= after_id:
        return 0
    goals = await campaign_goals(session)
    if not goals:
        return 0
    return await _attribute(session, goals, and_(Event.id > after_id, Event.id <= upto_id), now=now,
                            by_events=True)


async def goal_of(session: AsyncSession, campaign_id: int) -> CampaignGoal | None:
    """The campaign's goal checked against the catalog now; ValidationError names what it refuses."""
    document = await session.scalar(select(Campaign.document).where(Campaign.id == campaign_id))
    if document is None:
        raise NotFound(f"no campaign C{campaign_id}")
    goal = _read_goal(document)
    if goal is None:
        return None
    conditions, problems = _check(goal, await _event_types(session, {goal.event} if goal.where else set()))
    if problems:
        raise ValidationError(problems)
    return CampaignGoal(campaign_id, goal, conditions)


async def recompute(session: AsyncSession, campaign_id: int, *, now: datetime | None = None) -> int:
    """Rebuild the campaign's conversions from every goal event of its runs' windows (after a goal
    was added or changed, late sends, states that changed): delete, then one INSERT … SELECT, in
    the caller's transaction. Returns the conversions. Raises NotFound, or ValidationError when the
    catalog refuses the goal's conditions."""
    from smsconsole import clock  # lazy: tests freeze it

    goal = await goal_of(session, campaign_id)
    await session.execute(delete(CampaignConversion).where(CampaignConversion.campaign_id == campaign_id))
    if goal is None:
        return 0
    return await _attribute(session, [goal], true(), now=now or clock.now(), by_events=False)


class RecentSweep:
    """The engine's safety net for the send race: each call attributes again the events recorded
    since the call before the previous one (so every event is seen twice, about SWEEP_SECONDS
    apart, after its message's send had time to commit). The first call of a tenure looks
    FIRST_SWEEP_EVENTS events back. Costs a max(id) and the goals query when nothing converts."""

    def __init__(self) -> None:
        self.marks: list[int] = []

    async def __call__(self, factory: async_sessionmaker[AsyncSession], *, now: datetime) -> int:
        async with factory() as session, session.begin():
            high = int(await session.scalar(select(func.max(Event.id))) or 0)
            if not self.marks:
                self.marks = [max(high - FIRST_SWEEP_EVENTS, 0)]
            low = self.marks[0]
            written = await attribute_range(session, low, high, now=now)
        self.marks = [self.marks[-1], high]
        return written
