"""What every live trigger shares: the campaigns that are live now, their daily counts, and the one
way a trigger becomes an outbox row (`queue_candidates`).

A live campaign has one run in state `live` (services/campaigns/runs.py starts it); its messages
carry that run (the document snapshot the body is rendered from at claim), the triggering event
and, for inaction campaigns, the wait they fired from. `queue_candidates` is the pipeline every
trigger (an event, a wait that ran out, a due date) goes through, in one transaction the caller
commits:

1. When the campaign has a daily or target limit, or re-eligibility other than "every time",
   `triggered` is counted first: that upsert of the campaign's row of `campaign_live_days` is the
   transaction's first write, so concurrent triggers of one campaign queue one after the other
   (PostgreSQL row lock; SQLite's single writer) and the limits cannot be overrun. Without them
   nothing needs serializing: the counters are written last, and the row lock is held only from
   there to the commit.
2. The candidates' profiles are classified in SQL, a chunk of ids per statement: the Who filter
   (saved or ad-hoc segment) and the reach sample, reachable now (phone, SMS-capable, subscribed),
   and re-eligibility against this campaign's earlier messages that were not suppressed.
3. When re-eligibility is not "every time", one candidate per person is kept; then the daily and
   target budgets (from the counters) keep the first ones in the order given.
4. The outbox rows are inserted with the dedupe key `live:{campaign}:{key}` (ON CONFLICT DO
   NOTHING): a trigger seen twice queues once ("duplicate"), and the counters count what was new.
   Each row carries the person's arm (`arms.arm_of`: the same stable assignment as a scheduled
   run's SQL): a variant's row is queued; a control-group person gets a control row (recorded,
   never sent), which counts as "queued" toward the limits like a message."""

from __future__ import annotations

import time as _time
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Integer, and_, bindparam, case, exists, func, literal, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole.models import Campaign, CampaignLiveDay, CampaignRun, Message, Profile, Segment
from smsconsole.services.campaigns.arms import CONTROL, arm_of, has_arms
from smsconsole.services.campaigns.definition import LIVE_TYPES, CampaignDocument, Trigger
from smsconsole.services.campaigns.materialize import (
    MaterializeError,
    Route,
    read_document,
    resolve_route,
    sampled_condition,
)
from smsconsole.services.queries.reach import reachable_condition
from smsconsole.services.segments.compiler import compile_segment, session_dialect
from smsconsole.services.segments.parser import check_definition
from smsconsole.sms import analyze

STALE_AFTER = timedelta(hours=1)  # an event older than this (when it is recorded) triggers nothing
CHUNK = 1000  # profile ids per classifying statement
FILTER_TTL = 60.0  # seconds a checked Who filter (a saved segment's definition) and a route are reused
COUNTERS = ("triggered", "queued", "waits_started", "waits_cancelled", "not_in_filter", "unreachable",
            "not_eligible", "limited", "late")
OUTCOMES = ("queued", "duplicate", "not_in_filter", "unreachable", "not_eligible", "limited")


@dataclass(frozen=True)
class LiveCampaign:
    """A campaign whose run is live (or paused, when asked for)."""

    campaign_id: int
    run_id: int
    type: str
    state: str  # the campaign's state
    run_state: str
    document: CampaignDocument
    live_since: datetime  # when its run went live (run.started_at)

    @property
    def trigger(self) -> Trigger:
        return self.document.who.trigger or Trigger()

    @property
    def running(self) -> bool:
        return self.state == "running" and self.run_state == "live"


# parsed documents by run id, with the stored mapping they were parsed from (an edit changes it)
_documents: dict[int, tuple[dict[str, Any], CampaignDocument]] = {}
# checked Who filters by run id: (the document, expires at, checked definition or None)
_filters: dict[tuple[str, int], tuple[CampaignDocument, float, Any]] = {}
_routes: dict[tuple[str, int], tuple[CampaignDocument, float, tuple[Route, dict[str, tuple[str, int]]]]] = {}


async def live_campaigns(session: AsyncSession, *, types: Iterable[str] | None = None,
                         include_paused: bool = False) -> list[LiveCampaign]:
    """The campaigns taking triggers now (run `live`, campaign `running`), ordered by id (the
    order every trigger visits them in, so two transactions never lock their counters crosswise)."""
    wanted = tuple(types) if types is not None else LIVE_TYPES
    run_states = ("live", "paused") if include_paused else ("live",)
    campaign_states = ("running", "paused") if include_paused else ("running",)
    rows = (await session.execute(
        select(Campaign.id, Campaign.type, Campaign.state, CampaignRun.id, CampaignRun.state, CampaignRun.document,
               CampaignRun.started_at, CampaignRun.updated_at)
        .join(CampaignRun, CampaignRun.campaign_id == Campaign.id)
        .where(CampaignRun.state.in_(run_states), Campaign.type.in_(wanted), Campaign.state.in_(campaign_states),
               Campaign.deleted_at.is_(None))
        .order_by(Campaign.id, CampaignRun.id))).all()
    found = []
    for campaign_id, type_, state, run_id, run_state, document, started_at, updated_at in rows:
        cached = _documents.get(run_id)
        if cached is not None and cached[0] == (document or {}):
            parsed = cached[1]
        else:
            parsed = await read_document(session, document or {})
            if len(_documents) > 256:
                _documents.clear()
            _documents[run_id] = (document or {}, parsed)
        found.append(LiveCampaign(campaign_id, run_id, type_, state, run_state, parsed,
                                  started_at or updated_at))
    return found


def campaign_day(live: LiveCampaign | CampaignDocument, moment: datetime) -> date:
    """The calendar day of `moment` in the campaign's time zone (the day its counters and daily
    limit belong to)."""
    document = live.document if isinstance(live, LiveCampaign) else live
    try:
        zone = zoneinfo.ZoneInfo(document.when.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    return moment.astimezone(zone).date()


def _insert(session: AsyncSession, model: Any) -> Any:
    return (postgresql if session_dialect(session) == "postgresql" else sqlite).insert(model)


async def bump(session: AsyncSession, campaign_id: int, day: date, **counts: int) -> None:
    """Add to the campaign's counters of `day` (created at zero on first use). With no counts it
    still writes the row: the caller holds the campaign's counter lock from then on."""
    unknown = set(counts) - set(COUNTERS)
    if unknown:
        raise ValueError(f"unknown counters: {sorted(unknown)}")
    values = {name: counts.get(name, 0) for name in COUNTERS}
    await session.execute(_bump_statement(session_dialect(session)),
                          {"b_campaign_id": campaign_id, "b_day": day, **{f"b_{k}": v for k, v in values.items()}})


_bump_statements: dict[str, Any] = {}


def _bump_statement(dialect: str) -> Any:
    """INSERT … ON CONFLICT (campaign, day) DO UPDATE adding every counter (zeros add nothing):
    one statement, built once per dialect (building it per call cost more than running it)."""
    statement = _bump_statements.get(dialect)
    if statement is None:
        table = CampaignLiveDay.__table__
        insert = (postgresql if dialect == "postgresql" else sqlite).insert(table).values(
            campaign_id=bindparam("b_campaign_id"), day=bindparam("b_day"),
            **{name: bindparam(f"b_{name}") for name in COUNTERS})
        statement = insert.on_conflict_do_update(
            index_elements=["campaign_id", "day"],
            set_={name: table.c[name] + insert.excluded[name] for name in COUNTERS})
        _bump_statements[dialect] = statement
    return statement


async def queued_so_far(session: AsyncSession, campaign_id: int, day: date) -> tuple[int, int]:
    """(messages queued on `day`, queued in all) by the campaign's triggers."""
    row = (await session.execute(
        select(func.coalesce(func.sum(CampaignLiveDay.queued), 0),
               func.coalesce(func.sum(case((CampaignLiveDay.day == day, CampaignLiveDay.queued), else_=0)), 0))
        .where(CampaignLiveDay.campaign_id == campaign_id))).one()
    return int(row[1]), int(row[0])


def target_reached(live: LiveCampaign, total_queued: int) -> bool:
    limit = live.document.who.target_limit
    return limit is not None and total_queued >= limit


@dataclass(frozen=True)
class Candidate:
    """One would-be message of a live campaign."""

    profile_id: int
    key: str  # unique per campaign and trigger: "ev:{event_id}", "wait:{wait_id}", "due:{due_id}"
    event_id: int | None = None
    wait_id: int | None = None
    not_before: datetime | None = None


async def filter_condition(session: AsyncSession, live: LiveCampaign, *, now: datetime) -> ColumnElement[bool]:
    """The Who filter (saved or ad-hoc segment) and the reach sample, over profiles. A saved
    segment's definition is re-read at most every FILTER_TTL seconds."""
    who = live.document.who
    key = (_database(session), live.run_id)
    cached = _filters.get(key)
    clock_now = _time.monotonic()
    if cached is None or cached[0] is not live.document or cached[1] < clock_now:
        definition: Any = who.definition
        if who.segment:
            definition = await session.scalar(select(Segment.definition).where(Segment.name == who.segment))
            if definition is None:
                raise MaterializeError(f"segment {who.segment!r} does not exist")
        checked = await check_definition(session, definition) if definition else None
        cached = (live.document, clock_now + FILTER_TTL, checked)
        if len(_filters) > 256:
            _filters.clear()
        _filters[key] = cached
    checked = cached[2]
    condition: ColumnElement[bool] = (compile_segment(checked, now=now, dialect=session_dialect(session))
                                      if checked is not None else true())
    sampled = sampled_condition(live.campaign_id, who.reach_percent)
    return and_(condition, sampled) if sampled is not None else condition


def eligible_condition(live: LiveCampaign, *, now: datetime) -> ColumnElement[bool] | None:
    """Re-eligibility over profiles: None when everyone may get it again (every time)."""
    trigger = live.trigger
    if trigger.reeligible == "every_time":
        return None
    earlier = [Message.campaign_id == live.campaign_id, Message.profile_id == Profile.id,
               Message.state != "suppressed"]
    if trigger.reeligible == "after_days":
        earlier.append(Message.created_at > now - timedelta(days=trigger.reeligible_days or 1))
    return ~exists().where(*earlier)


def _flag(condition: ColumnElement[bool] | None) -> ColumnElement[int]:
    if condition is None:
        return literal(1, Integer)
    return case((condition, 1), else_=0)


async def _route(session: AsyncSession, live: LiveCampaign) -> tuple[Route, dict[str, tuple[str, int]]]:
    """The campaign's route and each variant's (encoding, parts), reused for FILTER_TTL seconds."""
    key = (_database(session), live.run_id)
    cached = _routes.get(key)
    clock_now = _time.monotonic()
    if cached is None or cached[0] is not live.document or cached[1] < clock_now:
        route = await resolve_route(session, live.document)
        shapes = {v.name: (info.encoding.value, max(1, info.segments))
                  for v in live.document.what.arms
                  for info in (analyze(v.body, smart_encoding=route.smart_encoding),)}  # as the route bills it
        cached = (live.document, clock_now + FILTER_TTL, (route, shapes))
        if len(_routes) > 256:
            _routes.clear()
        _routes[key] = cached
    return cached[2]


def _database(session: AsyncSession) -> str:
    return str(session.get_bind().url)


def _arm_values(live: LiveCampaign, candidate: Candidate, shapes: Mapping[str, tuple[str, int]],
                now: datetime) -> dict[str, Any]:
    """The columns of one candidate's row that depend on the person's arm (arms.arm_of, the twin
    of the SQL a scheduled run uses): its variant with that body's encoding and parts, or a
    control row (state `control`, never rendered nor sent, created and finished at the would-be
    send time)."""
    what = live.document.what
    arm = arm_of(live.campaign_id, candidate.profile_id, what.arms) if has_arms(what.arms, what.control) else "A"
    if arm == CONTROL:
        at = max(now, candidate.not_before) if candidate.not_before is not None else now
        return {"variant": CONTROL, "state": CONTROL, "render": False, "encoding": "GSM-7", "segments": 0,
                "next_attempt_at": None, "created_at": at, "finished_at": at}
    encoding, segments = shapes.get(arm, ("GSM-7", 1))
    return {"variant": arm, "state": "queued", "render": True, "encoding": encoding, "segments": segments,
            "next_attempt_at": candidate.not_before, "created_at": now, "finished_at": None}


async def queue_candidates(session: AsyncSession, live: LiveCampaign, candidates: Sequence[Candidate], *,
                           now: datetime, count_triggered: bool = True) -> dict[str, str]:
    """Queue the candidates that pass; key -> outcome (one of OUTCOMES). See the module's
    docstring for the order of the checks. Raises MaterializeError when the campaign's segment,
    group or provider is gone (the caller leaves its rows pending and logs)."""
    if not candidates:
        return {}
    day = campaign_day(live, now)
    who = live.document.who
    # Limits and "once" rules read what earlier triggers queued: then the counter lock comes first
    # and concurrent triggers of the campaign queue one after the other. Otherwise the counters are
    # written last, just before the caller commits, so the row lock is held for the least time.
    serialize = who.daily_limit is not None or who.target_limit is not None or live.trigger.reeligible != "every_time"
    if serialize:
        await bump(session, live.campaign_id, day, **({"triggered": len(candidates)} if count_triggered else {}))
    route, shapes = await _route(session, live)
    in_filter = await filter_condition(session, live, now=now)
    eligible = eligible_condition(live, now=now)
    facts: dict[int, Any] = {}
    ids = sorted({c.profile_id for c in candidates})
    for start in range(0, len(ids), CHUNK):
        rows = await session.execute(
            select(Profile.id, Profile.phone, Profile.country, _flag(in_filter).label("in_filter"),
                   _flag(reachable_condition()).label("reachable"), _flag(eligible).label("eligible"))
            .where(Profile.id.in_(ids[start:start + CHUNK])))
        facts.update({row.id: row for row in rows})

    outcome: dict[str, str] = {}
    passing: list[Candidate] = []
    seen: set[int] = set()
    once = live.trigger.reeligible != "every_time"
    for candidate in candidates:
        row = facts.get(candidate.profile_id)
        if candidate.key in outcome:
            continue
        if row is None or not row.in_filter:
            outcome[candidate.key] = "not_in_filter" if row is not None else "unreachable"
        elif not row.reachable:
            outcome[candidate.key] = "unreachable"
        elif not row.eligible or (once and candidate.profile_id in seen):
            outcome[candidate.key] = "not_eligible"
        else:
            seen.add(candidate.profile_id)
            passing.append(candidate)

    if who.daily_limit is not None or who.target_limit is not None:
        today, total = await queued_so_far(session, live.campaign_id, day)
        budget = len(passing)
        if who.daily_limit is not None:
            budget = min(budget, max(0, who.daily_limit - today))
        if who.target_limit is not None:
            budget = min(budget, max(0, who.target_limit - total))
        for candidate in passing[budget:]:
            outcome[candidate.key] = "limited"
        passing = passing[:budget]

    inserted: set[str] = set()
    if passing:
        prefix = f"live:{live.campaign_id}:"
        rows_out = [{
            "kind": "campaign", "priority": 0, "provider_id": route.provider_id, "provider_name": route.provider_name,
            "group_id": route.group_id, "profile_id": c.profile_id, "country": facts[c.profile_id].country,
            "to_number": facts[c.profile_id].phone, "sender": route.sender, "body": "", "attempts": 0,
            "dedupe_key": prefix + c.key, "campaign_id": live.campaign_id, "run_id": live.run_id,
            "event_id": c.event_id, "wait_id": c.wait_id, "updated_at": now,
            **_arm_values(live, c, shapes, now),
        } for c in passing]
        result = await session.execute(
            _insert(session, Message).on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(Message.__table__.c.dedupe_key), rows_out)
        inserted = {key[len(prefix):] for key in result.scalars().all()}
        for candidate in passing:
            outcome[candidate.key] = "queued" if candidate.key in inserted else "duplicate"

    counts = {name: 0 for name in ("queued", "not_in_filter", "unreachable", "not_eligible", "limited")}
    for value in outcome.values():
        if value in counts:
            counts[value] += 1
    if not serialize and count_triggered:
        counts["triggered"] = len(candidates)
    await bump(session, live.campaign_id, day, **counts)
    return outcome


def outcome_counts(outcomes: Mapping[str, str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in outcomes.values():
        counts[value] = counts.get(value, 0) + 1
    return counts


def as_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)
