"""Live triggers: what newly recorded events do to the live campaigns (single action, inaction
within time, and on a date when the date is an event's property). Every door that records events
(the ingestion API, event imports that allow it, replies logged as events) calls `on_events` with
the ids of the events it has just inserted, in its own transaction; the caller commits.

Rules, each tested in tests/integration/test_live_triggers.py:

- Only campaigns whose run is `live` (campaign `running`) act, and only on events at or after the
  moment the run went live. An event older than STALE_AFTER when it is recorded triggers nothing
  and is counted `late` (a backfill never texts anyone).
- Only newly inserted events come here (a repeated event is no new row), and a message's dedupe
  key is `live:{campaign}:ev:{event_id}`: the same event delivered twice sends once.
- Single action: each matching event (name and `where` in SQL over the batch's rows) becomes a
  candidate of `queue_candidates` (Who filter, reachable, re-eligibility, limits), sent at once or
  `delay_minutes` after the event.
- Inaction: the trigger event A starts a wait due at A.at + within (one pending wait per campaign
  and person: a partial unique index, inserted ON CONFLICT DO NOTHING; a person the
  re-eligibility rule leaves out gets none). The follow-up B (with `cancel_where`) cancels a
  pending wait when started_at <= B.at <= due_at, however late B is recorded (cancelling only ever
  sends less). Within one batch the events are taken in time order, so A, B, A again ends with a
  cancelled wait and a new pending one.
- On a date, when the campaign's date is a property of an event: the matching events go to
  `due.on_date_events`, which computes their due times.
- With no live campaign the whole call is one query (the live campaigns)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, and_, case, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole.models import CampaignWait, Event, Profile, PropertyDef
from smsconsole.services.campaigns.definition import LIVE_TYPES, CampaignDocument
from smsconsole.services.campaigns.live.common import (
    STALE_AFTER,
    Candidate,
    LiveCampaign,
    bump,
    campaign_day,
    eligible_condition,
    live_campaigns,
    queue_candidates,
)
from smsconsole.services.campaigns.materialize import MaterializeError
from smsconsole.services.errors import ServiceError, ValidationError
from smsconsole.services.segments.catalog import catalog_from
from smsconsole.services.segments.compiler import event_property_filter, session_dialect
from smsconsole.services.segments.definition import ValueCondition
from smsconsole.services.segments.parser import validate_definition

log = logging.getLogger("smsconsole.campaigns.live")

CHUNK = 1000  # event ids per statement
CANCELLED_REASON = "follow-up event {event} arrived in time"
_WHERE_PATH = re.compile(r"^conditions\[0\]\.where\[(\d+)\](.*)$")


@dataclass(frozen=True)
class TriggerResult:
    """What a batch of events did: `queued` messages (the caller pokes the dispatcher when > 0)."""

    matched: int = 0  # (campaign, event) pairs that matched a trigger or follow-up event
    queued: int = 0
    waits_started: int = 0
    waits_cancelled: int = 0
    late: int = 0


@dataclass(frozen=True)
class _Row:
    id: int
    profile_id: int
    at: datetime


@dataclass
class _Roles:
    """A campaign's part in the batch: its trigger events (A) and follow-up events (B)."""

    live: LiveCampaign
    a: list[_Row] = field(default_factory=list)
    b: list[_Row] = field(default_factory=list)


# --- checking a trigger's conditions -----------------------------------------------------------


def check_where(where: Sequence[Mapping[str, Any]], event: str, types: Mapping[str, str],
                path: str) -> tuple[tuple[ValueCondition, ...], list[tuple[str, str]]]:
    """The conditions on `event`'s properties as the segment language reads them (`types`: the
    catalog's types of that event's properties), or the problems under `path` ("who.trigger.where"
    -> "who.trigger.where.1.op", numbered from 1 as the document's own paths are)."""
    if not where:
        return (), []
    definition = {"conditions": [{"event": event, "where": [dict(w) for w in where]}]}
    try:
        checked = validate_definition(definition, catalog_from({}, {event: dict(types)}))
    except ValidationError as exc:
        problems = []
        for inner, reason in exc.problems:
            match = _WHERE_PATH.match(inner)
            problems.append((f"{path}.{int(match.group(1)) + 1}{match.group(2)}" if match else path, reason))
        return (), problems
    condition = checked.root.conditions[0]
    return tuple(getattr(condition, "where", ())), []


async def _scope_types(session: AsyncSession, scopes: Iterable[str]) -> dict[str, dict[str, str]]:
    """scope ("profile", "event:NAME") -> {property: type}, in one query."""
    wanted = sorted(set(scopes))
    if not wanted:
        return {}
    rows = await session.execute(select(PropertyDef.scope, PropertyDef.name, PropertyDef.type)
                                 .where(PropertyDef.scope.in_(wanted)))
    types: dict[str, dict[str, str]] = {scope: {} for scope in wanted}
    for scope, name, type_ in rows:
        types[scope][name] = type_
    return types


async def trigger_problems(session: AsyncSession, document: CampaignDocument) -> list[tuple[str, str]]:
    """What a live campaign's trigger names must hold, against the catalog: `where` and
    `cancel_where` are conditions on properties their event is known to have (with operators and
    values for those types), and a date campaign's property is a date property (of the profile,
    or of the event it names)."""
    trigger = document.who.trigger
    if document.type not in LIVE_TYPES or trigger is None:
        return []
    checks: list[tuple[str, str | None, tuple[dict[str, Any], ...]]] = [("who.trigger.where", trigger.event,
                                                                          trigger.where)]
    if document.type == "inaction":
        checks.append(("who.trigger.cancel_where", trigger.cancel_event, trigger.cancel_where))
    scopes = {f"event:{event}" for _, event, where in checks if event and where}
    date_scope = None
    if document.type == "date" and trigger.property:
        date_scope = f"event:{trigger.event}" if trigger.event else "profile"
        scopes.add(date_scope)
    types = await _scope_types(session, scopes)
    problems: list[tuple[str, str]] = []
    for path, event, where in checks:
        if not where:
            continue
        if not event:
            noun = "follow-up event" if path.endswith("cancel_where") else "trigger event"
            problems.append((path, f"filters the {noun}'s properties; choose the event first"))
            continue
        problems += check_where(where, event, types.get(f"event:{event}", {}), path)[1]
    if date_scope is not None and trigger.property:
        type_ = types.get(date_scope, {}).get(trigger.property)
        owner = f"event {trigger.event!r}" if trigger.event else "profiles"
        if type_ is None:
            problems.append(("who.trigger.property",
                             f"no date property {trigger.property!r} is known for {owner}; record one first"))
        elif type_ != "date":
            reason = f"{trigger.property!r} of {owner} holds {type_} values; an on-a-date campaign needs a date property"
            problems.append(("who.trigger.property", reason))
    return problems


# --- acting on events --------------------------------------------------------------------------


def _acting(live: LiveCampaign, now: datetime) -> bool:
    trigger = live.trigger
    if not live.running or (live.document.when.end is not None and now >= live.document.when.end):
        return False
    if live.type in ("action", "inaction"):
        return bool(trigger.event)
    return live.type == "date" and bool(trigger.event)


async def on_events(session: AsyncSession, event_ids: Sequence[int], *, now: datetime) -> TriggerResult:
    """Act on newly inserted events for every live campaign (see the module docstring). Costs one
    query when no campaign is live; otherwise one read of the batch's matching events, then a few
    statements per campaign that matched. A campaign whose segment or route is gone (or whose
    saved segment no longer validates) is skipped and logged: the events are recorded all the same."""
    if not event_ids:
        return TriggerResult()
    campaigns = [live for live in await live_campaigns(session) if _acting(live, now)]
    if not campaigns:
        return TriggerResult()
    roles = await _match(session, campaigns, sorted(set(event_ids)), now)
    totals: dict[str, int] = {"matched": 0, "queued": 0, "waits_started": 0, "waits_cancelled": 0, "late": 0}
    for entry in roles:  # in campaign id order, as live_campaigns gives them: counters lock in one order
        totals["matched"] += len(entry.a) + len(entry.b)
        try:
            if entry.live.type == "action":
                counts = await _act(session, entry, now)
            elif entry.live.type == "inaction":
                counts = await _wait(session, entry, now)
            else:
                counts = await _date(session, entry, now)
        except (MaterializeError, ServiceError) as exc:  # its segment or route is gone or no longer valid
            log.warning("live campaign C%s: its trigger was skipped: %s", entry.live.campaign_id, exc)
            continue
        for name, value in counts.items():
            totals[name] += value
    return TriggerResult(**totals)


# Checked `where` conditions by (database, run, role), with the document they were read from: a
# property's type never changes once the catalog has it, so only a new document is checked again.
_checked: dict[tuple[str, int, str], tuple[CampaignDocument, tuple[ValueCondition, ...]]] = {}


async def _conditions(session: AsyncSession, campaigns: list[LiveCampaign],
                      wanted: list[tuple[str, str | None, tuple[dict[str, Any], ...]]]) -> list[
                          tuple[ValueCondition, ...] | None]:
    """Each wanted (role, event, where) as checked conditions, or None when the catalog refuses
    them now (logged; that role matches nothing). The catalog is read only for what is not cached."""
    database = str(session.get_bind().url)
    keys = [(database, campaigns[index // 2].run_id, role) for index, (role, _, _) in enumerate(wanted)]
    missing = [index for index, (key, (_, event, where)) in enumerate(zip(keys, wanted, strict=True))
               if event and where and (_checked.get(key) or (None,))[0] is not campaigns[index // 2].document]
    types = await _scope_types(session, {f"event:{wanted[i][1]}" for i in missing}) if missing else {}
    found: list[tuple[ValueCondition, ...] | None] = []
    for index, (key, (role, event, where)) in enumerate(zip(keys, wanted, strict=True)):
        live = campaigns[index // 2]
        if not event or not where:
            found.append(())
            continue
        if index not in missing:
            found.append(_checked[key][1])
            continue
        conditions, problems = check_where(where, event, types.get(f"event:{event}", {}), "where")
        if problems:  # the catalog no longer allows it (checked when scheduled): it matches nothing
            log.warning("live campaign C%s: its %s conditions do not apply (%s); no event matches them",
                        live.campaign_id, "trigger" if role == "a" else "follow-up", problems[0][1])
            found.append(None)
            continue
        if len(_checked) > 512:
            _checked.clear()
        _checked[key] = (live.document, conditions)
        found.append(conditions)
    return found


async def _match(session: AsyncSession, campaigns: list[LiveCampaign], event_ids: list[int],
                 now: datetime) -> list[_Roles]:
    """Which events of the batch each campaign takes as its trigger (A) or follow-up (B): one
    SELECT per chunk of ids, one 0/1 column per (campaign, role)."""
    dialect = session_dialect(session)
    wanted: list[tuple[str, str | None, tuple[dict[str, Any], ...]]] = []
    for live in campaigns:
        trigger = live.trigger
        wanted.append(("a", trigger.event, trigger.where))
        wanted.append(("b", trigger.cancel_event if live.type == "inaction" else None, trigger.cancel_where))
    checked = await _conditions(session, campaigns, wanted)
    columns: list[ColumnElement[Any]] = []
    slots: list[tuple[int, str]] = []  # (index into campaigns, role)
    names: set[str] = set()
    for index, ((role, event, _), conditions) in enumerate(zip(wanted, checked, strict=True)):
        if not event or conditions is None:
            continue
        condition = and_(Event.name == event, event_property_filter(conditions, now=now, dialect=dialect))
        columns.append(case((condition, 1), else_=0).label(f"m{len(columns)}"))
        slots.append((index // 2, role))
        names.add(event)
    if not columns:
        return []
    found = [_Roles(live) for live in campaigns]
    for start in range(0, len(event_ids), CHUNK):
        rows = await session.execute(
            select(Event.id, Event.profile_id, Event.at, *columns)
            .where(Event.id.in_(event_ids[start:start + CHUNK]), Event.name.in_(sorted(names)))
            .order_by(Event.at, Event.id))
        for row in rows:
            event = _Row(row[0], row[1], row[2])
            for (index, role), flag in zip(slots, row[3:], strict=True):
                if flag:
                    getattr(found[index], role).append(event)
    return [entry for entry in found if entry.a or entry.b]


def _fresh(live: LiveCampaign, rows: Sequence[_Row], now: datetime) -> tuple[list[_Row], int]:
    """The trigger events a campaign acts on, and how many came too late (recorded more than
    STALE_AFTER after they happened). Events from before the campaign went live are neither."""
    cutoff = now - STALE_AFTER
    after = [row for row in rows if row.at >= live.live_since]
    fresh = [row for row in after if row.at >= cutoff]
    return fresh, len(after) - len(fresh)


async def _act(session: AsyncSession, entry: _Roles, now: datetime) -> dict[str, int]:
    live = entry.live
    fresh, late = _fresh(live, entry.a, now)
    delay = timedelta(minutes=live.trigger.delay_minutes)
    queued = 0
    if fresh:
        outcomes = await queue_candidates(session, live, [
            Candidate(row.profile_id, f"ev:{row.id}", event_id=row.id, not_before=row.at + delay if delay else None)
            for row in fresh], now=now)
        queued = sum(1 for outcome in outcomes.values() if outcome == "queued")
    if late:
        await bump(session, live.campaign_id, campaign_day(live, now), triggered=late, late=late)
    return {"queued": queued, "late": late}


async def _date(session: AsyncSession, entry: _Roles, now: datetime) -> dict[str, int]:
    live = entry.live
    fresh, late = _fresh(live, entry.a, now)
    if late:
        await bump(session, live.campaign_id, campaign_day(live, now), triggered=late, late=late)
    if fresh:
        try:
            from smsconsole.services.campaigns.live import due
        except ImportError:  # on-a-date campaigns anchored on events are not built yet
            return {"late": late}
        on_date_events = getattr(due, "on_date_events", None)
        if on_date_events is not None:
            await on_date_events(session, live, [row.id for row in fresh], now=now)
    return {"late": late}


@dataclass
class _Pending:
    profile_id: int
    id: int | None  # None: armed by this batch
    started_at: datetime
    due_at: datetime
    event_id: int | None
    cancelled_by: _Row | None = None


async def _wait(session: AsyncSession, entry: _Roles, now: datetime) -> dict[str, int]:
    """Arm and cancel one inaction campaign's waits for the batch, its events taken in time order
    per person against the waits already pending."""
    live = entry.live
    within = timedelta(minutes=live.trigger.within_minutes or 0)
    day = campaign_day(live, now)
    fresh, late = _fresh(live, entry.a, now)
    if not within:
        fresh = []  # a document without a window (only a draft can be one) arms nothing
    if fresh or late or entry.b:
        # The first write: from here this transaction holds the campaign's counters (PostgreSQL row
        # lock), so concurrent batches arm one person's waits one after the other; taken before any
        # wait row too (also for a batch of follow-up events only), in the order the engine's tick
        # takes them (counters, then waits), so the two never wait on each other crosswise.
        await bump(session, live.campaign_id, day, **({"triggered": len(fresh) + late, "late": late}
                                                      if fresh or late else {}))
    people = sorted({row.profile_id for row in fresh} | {row.profile_id for row in entry.b})
    pending: dict[int, _Pending] = {}
    for start in range(0, len(people), CHUNK):
        rows = await session.execute(
            select(CampaignWait.id, CampaignWait.profile_id, CampaignWait.started_at, CampaignWait.due_at,
                   CampaignWait.event_id)
            .where(CampaignWait.campaign_id == live.campaign_id, CampaignWait.state == "pending",
                   CampaignWait.profile_id.in_(people[start:start + CHUNK])))
        for wait_id, profile_id, started_at, due_at, event_id in rows:
            pending[profile_id] = _Pending(profile_id, wait_id, started_at, due_at, event_id)
    ineligible = await _ineligible(session, live, sorted({row.profile_id for row in fresh}), now)

    # Each person's events in time order; one event that is both B and A (the same event name)
    # first ends the wait before it, then starts its own.
    timeline: dict[int, list[tuple[datetime, int, int, _Row]]] = {}
    for order, rows in ((1, fresh), (0, entry.b)):
        for row in rows:
            timeline.setdefault(row.profile_id, []).append((row.at, row.id, order, row))
    cancel_existing: list[_Pending] = []
    arm: list[_Pending] = []
    refused = 0
    for profile_id, events in timeline.items():
        current = pending.get(profile_id)
        for _, _, order, row in sorted(events, key=lambda item: item[:3]):
            if order == 0:
                if current is not None and current.started_at <= row.at <= current.due_at:
                    current.cancelled_by = row
                    if current.id is not None:
                        cancel_existing.append(current)
                    current = None
                continue
            # Already waiting: this A belongs to the same wait. (A wait past its due time that the
            # engine has not fired yet also keeps its place: one pending wait per person.)
            if current is not None:
                continue
            if profile_id in ineligible:
                refused += 1
                continue
            current = _Pending(profile_id, None, row.at, row.at + within, row.id)
            arm.append(current)

    cancelled = await _cancel(session, live, cancel_existing)  # first: a new wait may take the person's place
    started = await _arm(session, live, arm, now)
    cancelled += sum(1 for wait in arm if wait.cancelled_by is not None and wait.event_id in started)
    counts = {"waits_started": len(started), "waits_cancelled": cancelled, "not_eligible": refused}
    if any(counts.values()):
        await bump(session, live.campaign_id, day, **counts)
    return {"waits_started": len(started), "waits_cancelled": cancelled, "late": late}


async def _ineligible(session: AsyncSession, live: LiveCampaign, profile_ids: list[int],
                      now: datetime) -> set[int]:
    """The people the campaign's re-eligibility rule leaves out now (none when every time)."""
    eligible = eligible_condition(live, now=now)
    if eligible is None or not profile_ids:
        return set()
    found: set[int] = set()
    for start in range(0, len(profile_ids), CHUNK):
        found.update(await session.scalars(
            select(Profile.id).where(Profile.id.in_(profile_ids[start:start + CHUNK]), ~eligible)))
    return found


def _insert(session: AsyncSession) -> Any:
    return (postgresql if session_dialect(session) == "postgresql" else sqlite).insert(CampaignWait)


async def _arm(session: AsyncSession, live: LiveCampaign, waits: list[_Pending], now: datetime) -> set[int | None]:
    """Insert the waits this batch armed (those it also cancelled go in as history, state
    cancelled); a pending wait a concurrent batch armed first wins. The trigger event ids of the
    waits inserted."""
    if not waits:
        return set()
    reason = CANCELLED_REASON.format(event=live.trigger.cancel_event)
    rows = [{
        "campaign_id": live.campaign_id, "run_id": live.run_id, "profile_id": wait.profile_id,
        "event_id": wait.event_id, "started_at": wait.started_at, "due_at": wait.due_at,
        "state": "cancelled" if wait.cancelled_by else "pending",
        "reason": reason if wait.cancelled_by else None,
        "ended_event_id": wait.cancelled_by.id if wait.cancelled_by else None,
        "ended_at": wait.cancelled_by.at if wait.cancelled_by else None, "created_at": now,
    } for wait in waits]
    table = CampaignWait.__table__
    result = await session.execute(_insert(session).on_conflict_do_nothing().returning(table.c.event_id), rows)
    return set(result.scalars().all())


async def _cancel(session: AsyncSession, live: LiveCampaign, waits: list[_Pending]) -> int:
    """Cancel the pending waits whose follow-up event came in time, in one UPDATE; a wait the
    engine fired meanwhile stays fired."""
    if not waits:
        return 0
    table = CampaignWait.__table__
    by_id = {wait.id: wait.cancelled_by for wait in waits if wait.cancelled_by is not None}
    ended_at_type = table.c.ended_at.type
    result = await session.execute(
        update(table).where(table.c.id.in_(sorted(by_id)), table.c.state == "pending")
        .values(state="cancelled", reason=CANCELLED_REASON.format(event=live.trigger.cancel_event),
                ended_event_id=case(*[(table.c.id == wait_id, literal(row.id, BigInteger))
                                      for wait_id, row in by_id.items()]),
                ended_at=case(*[(table.c.id == wait_id, literal(row.at, ended_at_type))
                                for wait_id, row in by_id.items()]))
        .returning(table.c.id))
    return len(result.all())
