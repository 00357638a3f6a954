"""On-a-date campaigns: due times from a date property (of the profile, or of the event the trigger
names) ± `offset_days`, at the local time `at`, kept in `campaign_due`, one row per (campaign,
person, anchor, due day); the scheduler reads that table by its indexes, never every profile.

How a due time comes and goes (each rule tested in tests/integration/test_live_due.py):

- The due day is the property's calendar date as stored (date properties are kept as UTC ISO
  text, "2026-12-24T00:00:00Z": the day is its first ten characters) plus the offset, computed in
  SQL on SQLite and PostgreSQL. Only due days from yesterday on (in the campaign's zone) are
  kept: yesterday, because a recipient's zone may still be in it.
- `backfill_due` writes the due rows of everyone when a date campaign goes live: one INSERT …
  SELECT per chunk of profile (or event) ids, each chunk in its own transaction, the progress in
  the live run's `cursor` and its end in the run's `qualified` (the number of due rows written),
  so a killed engine resumes where it stopped and a finished backfill is not run again.
- `on_profiles_changed` (from `upsert_profiles`, for the people whose properties a batch set):
  a person's pending due whose day no longer follows from the property is cancelled ("the date
  changed") and the new one computed. A day that was cancelled and comes back is pending again;
  one already fired (or late, skipped, limited) stays so: one message per due day.
- `on_date_events` (from the triggers, for an event-anchored campaign's new events): a due row
  per event (anchor "event:<id>"), the message carrying that event.
- `resolve_due` (engine tick) fills `due_at` for the pending rows whose day is within two days:
  the day at `at` in the campaign's zone, or — `when.user_timezone` — in each recipient's zone
  (the profile's zone, else the one its phone tells, else the default zone), computed once per
  zone group and applied by one CASE per day, never per person. DST: a time in the spring-forward
  gap falls at the first instant after it, a repeated time at its first occurrence
  (schedule.wall_to_utc).
- `fire_due` (engine tick) queues the due rows through `queue_candidates` (dedupe key
  `live:{campaign}:due:{due_id}`) and marks each fired, skipped (with the reason) or limited. A
  due time past by more than the misfire grace (an engine outage, a paused campaign) becomes
  `late` and is counted, never sent.
- `on_document_changed` (an edit of a live date campaign): a new date rule (property, offset,
  event, its conditions) cancels the pending rows and starts the backfill again; a new time of
  day or zone rule computes the pending due times again.
Paused campaigns keep their due rows pending (and still follow property changes); only running
ones fire, and not after their end time. The caller commits, except `backfill_due`, which
commits its chunks."""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Integer,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    null,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsconsole import clock
from smsconsole.models import (
    CampaignDue,
    CampaignRun,
    Event,
    Profile,
    PropertyDef,
    UTCDateTime,
)
from smsconsole.services.campaigns import schedule
from smsconsole.services.campaigns.live.common import (
    Candidate,
    LiveCampaign,
    bump,
    campaign_day,
    live_campaigns,
    queue_candidates,
)
from smsconsole.services.campaigns.materialize import (
    MaterializeError,
    ZoneGroup,
    _not_before_case,
    _zone_keys,
    _zone_valid,
    default_timezone,
    misfire_grace,
)
from smsconsole.services.segments.compiler import event_property_filter, session_dialect

log = logging.getLogger("smsconsole.campaigns.live")

BACKFILL_CHUNK = 20_000  # profile (or event) ids per backfill statement
CHUNK = 1000  # ids per statement elsewhere
FIRE_BATCH = 1000  # due rows queued per statement
FIRE_MAX = 10_000  # due rows one campaign fires per call (the next tick takes the rest)
RESOLVE_DAYS = 2  # due_at is filled for days up to this many days ahead (UTC date)
PROFILE_ANCHOR = "profile"
OPEN_RUN = ("live", "paused")

REASON_CHANGED = "the date changed"
REASON_RULE = "the campaign's date rule changed"
REASON_LATE = "its time had passed by more than the misfire grace"
REASON_GONE = "the person no longer exists"
SKIP_REASONS = {
    "not_in_filter": "not in the campaign's filter",
    "unreachable": "not reachable by SMS",
    "not_eligible": "not eligible again yet (re-eligibility)",
    "limited": "the daily or target limit was reached",
}


# --- the due day, in SQL ---------------------------------------------------------------------------


def due_day_expression(column: Any, key: str, offset_days: int, dialect: str) -> ColumnElement[date]:
    """The date held by JSON document `column`'s `key` (ISO text; the first ten characters), plus
    `offset_days`, as a SQL date; NULL when the value is not a date."""
    if dialect == "postgresql":
        doc = type_coerce(column, JSONB)
        raw = doc[key].astext
        day = cast(func.substr(raw, 1, 10), Date)
        if offset_days:
            day = day + literal(offset_days, Integer)
        valid = and_(func.jsonb_typeof(doc[key]) == "string", raw.regexp_match(r"^\d{4}-\d{2}-\d{2}"))
        return case((valid, day), else_=None)
    path = f'$."{key}"'
    raw = func.json_extract(column, path, type_=String)
    day = func.date(func.substr(raw, 1, 10), f"{offset_days:+d} days", type_=Date)
    return case((func.json_type(column, path, type_=String) == "text", day), else_=None)


def _floor(live: LiveCampaign, now: datetime) -> date:
    """The earliest due day kept: yesterday in the campaign's zone."""
    return campaign_day(live, now) - timedelta(days=1)


def _insert(session: AsyncSession) -> Any:
    return (postgresql if session_dialect(session) == "postgresql" else sqlite).insert(CampaignDue)


def _columns(live: LiveCampaign, now: datetime, *, profile_id: Any, anchor: Any, event_id: Any,
             day: Any) -> dict[str, Any]:
    stamp = literal(now, UTCDateTime())
    return {"campaign_id": literal(live.campaign_id, Integer), "run_id": literal(live.run_id, Integer),
            "profile_id": profile_id, "anchor": anchor, "event_id": event_id, "due_day": day,
            "due_at": null(), "state": literal("pending", String), "reason": null(),
            "created_at": stamp, "updated_at": stamp}


def _profile_select(live: LiveCampaign, now: datetime, dialect: str, *conditions: Any) -> tuple[list[str], Any]:
    trigger = live.trigger
    day = due_day_expression(Profile.properties, trigger.property or "", trigger.offset_days, dialect)
    columns = _columns(live, now, profile_id=Profile.id, anchor=literal(PROFILE_ANCHOR, String),
                       event_id=null(), day=day)
    return list(columns), select(*columns.values()).where(*conditions, day >= _floor(live, now))


def _event_select(live: LiveCampaign, now: datetime, dialect: str, *conditions: Any) -> tuple[list[str], Any]:
    trigger = live.trigger
    day = due_day_expression(Event.properties, trigger.property or "", trigger.offset_days, dialect)
    anchor = literal("event:", String) + cast(Event.id, String)
    columns = _columns(live, now, profile_id=Event.profile_id, anchor=anchor, event_id=Event.id, day=day)
    return list(columns), select(*columns.values()).where(Event.name == trigger.event, *conditions,
                                                          day >= _floor(live, now))


def _event_anchored(live: LiveCampaign) -> bool:
    return bool(live.trigger.event)


async def _where(session: AsyncSession, live: LiveCampaign, now: datetime) -> ColumnElement[bool] | None:
    """The trigger's `where` over Event rows (None when there is none); a `where` the catalog no
    longer allows matches nothing (as for the triggers)."""
    trigger = live.trigger
    if not trigger.where or not trigger.event:
        return None
    from smsconsole.services.campaigns.live.triggers import (
        check_where,  # lazy: triggers imports this module
    )

    scope = f"event:{trigger.event}"
    types = dict((await session.execute(select(PropertyDef.name, PropertyDef.type)
                                        .where(PropertyDef.scope == scope))).all())
    conditions, problems = check_where(trigger.where, trigger.event, types, "where")
    if problems:
        log.warning("date campaign C%s: its trigger conditions no longer apply (%s)", live.campaign_id,
                    problems[0][1])
        return literal(False)
    return event_property_filter(conditions, now=now, dialect=session_dialect(session))


# --- backfill ---------------------------------------------------------------------------------------


async def backfill_due(factory: async_sessionmaker[AsyncSession], live: LiveCampaign, *,
                       chunk: int = BACKFILL_CHUNK) -> int:
    """Write the due rows of everyone the campaign's date applies to (profiles holding the
    property, or the trigger's events holding it), one transaction per chunk of ids; resumable
    (the run's cursor) and done once (the run's `qualified` then holds the due rows written).
    Returns the rows this call inserted. Stops when the run is no longer live or paused."""
    if live.type != "date" or not live.trigger.property:
        return 0
    event_anchored = _event_anchored(live)
    async with factory() as session:
        run = await session.get(CampaignRun, live.run_id)
        if run is None or run.state not in OPEN_RUN or run.qualified is not None:
            return 0
        lower = run.cursor or 0
        if event_anchored:
            last_id = await session.scalar(select(func.max(Event.id)).where(Event.name == live.trigger.event)) or 0
        else:
            last_id = await session.scalar(select(func.max(Profile.id))) or 0
    inserted = 0
    id_column = Event.id if event_anchored else Profile.id
    while True:
        async with factory() as session, session.begin():
            run = await session.get(CampaignRun, live.run_id, with_for_update=True)
            if run is None or run.state not in OPEN_RUN or run.qualified is not None:
                return inserted
            now = clock.now()
            if lower >= last_id:
                run.qualified = await session.scalar(select(func.count()).select_from(CampaignDue)
                                                     .where(CampaignDue.campaign_id == live.campaign_id)) or 0
                run.cursor, run.updated_at = max(run.cursor or 0, last_id), now
                log.info("date campaign C%s: due times of %d people written", live.campaign_id, run.qualified)
                return inserted
            bounds = select(id_column).where(id_column > lower)
            if event_anchored:
                bounds = bounds.where(Event.name == live.trigger.event)
            upper = await session.scalar(bounds.order_by(id_column).offset(chunk - 1).limit(1)) or last_id
            upper = min(upper, last_id)
            dialect = session_dialect(session)
            window = (id_column > lower, id_column <= upper)
            if event_anchored:
                where = await _where(session, live, now)
                names, query = _event_select(live, now, dialect, *window, *([where] if where is not None else []))
            else:
                names, query = _profile_select(live, now, dialect, *window)
            result = await session.execute(_revive(_insert(session).from_select(names, query), now))
            inserted += _rowcount(result)
            run.cursor, run.updated_at = upper, now
            lower = upper


def _revive(statement: Any, now: datetime) -> Any:
    """INSERT … ON CONFLICT: a due day that was cancelled is pending again; any other stays."""
    return statement.on_conflict_do_update(
        index_elements=["campaign_id", "profile_id", "anchor", "due_day"],
        set_={"state": "pending", "reason": None, "due_at": None, "updated_at": now},
        where=CampaignDue.__table__.c.state == "cancelled")


def _rowcount(result: Any) -> int:
    count = result.rowcount
    return count if count is not None and count >= 0 else 0


# --- changes ----------------------------------------------------------------------------------------


async def on_profiles_changed(session: AsyncSession, profile_ids: Iterable[int], properties: Collection[str], *,
                              now: datetime, moved: Iterable[int] = ()) -> int:
    """The people in `profile_ids` had `properties` set (some may be unchanged): for each live or
    paused date campaign anchored on one of those profile properties, their pending due rows
    whose day no longer follows are cancelled ("the date changed") and the due day the property
    gives now is added (or made pending again). `moved`: people whose time zone or phone changed,
    whose resolved due times (user time zone campaigns) are computed again. One query when no
    date campaign applies; the caller commits. Returns the due rows added or made pending."""
    ids = sorted(set(profile_ids))
    moved_ids = sorted(set(moved))
    if not ids and not moved_ids:
        return 0
    campaigns = await live_campaigns(session, types=("date",), include_paused=True)
    if not campaigns:
        return 0
    dialect = session_dialect(session)
    wanted = set(properties)
    added = 0
    for live in campaigns:
        trigger = live.trigger
        if moved_ids and live.document.when.user_timezone:
            for start in range(0, len(moved_ids), CHUNK):
                await session.execute(
                    update(CampaignDue)
                    .where(CampaignDue.campaign_id == live.campaign_id, CampaignDue.state == "pending",
                           CampaignDue.due_at.is_not(None), CampaignDue.profile_id.in_(moved_ids[start:start + CHUNK]))
                    .values(due_at=None, updated_at=now).execution_options(synchronize_session=False))
        if _event_anchored(live) or not trigger.property or trigger.property not in wanted or not ids:
            continue
        day = due_day_expression(Profile.properties, trigger.property, trigger.offset_days, dialect)
        follows = select(day).where(Profile.id == CampaignDue.profile_id).scalar_subquery()
        for start in range(0, len(ids), CHUNK):
            part = ids[start:start + CHUNK]
            await session.execute(
                update(CampaignDue)
                .where(CampaignDue.campaign_id == live.campaign_id, CampaignDue.anchor == PROFILE_ANCHOR,
                       CampaignDue.state == "pending", CampaignDue.profile_id.in_(part),
                       CampaignDue.due_day.is_distinct_from(follows))
                .values(state="cancelled", reason=REASON_CHANGED, updated_at=now)
                .execution_options(synchronize_session=False))
            names, query = _profile_select(live, now, dialect, Profile.id.in_(part))
            added += _rowcount(await session.execute(_revive(_insert(session).from_select(names, query), now)))
    return added


async def on_document_changed(session: AsyncSession, campaign_id: int, before: Mapping[str, Any] | None,
                              after: Mapping[str, Any] | None, *, now: datetime) -> None:
    """A live date campaign's document was edited (`before` and `after`, as stored): when its date
    rule changed (property, offset, event or its conditions) the pending due rows are cancelled
    and the live run's backfill starts again (the engine runs it); when only the time of day or
    the zone rule changed, the pending due times are computed again. The caller commits."""
    from smsconsole.services.campaigns.definition import Trigger, parse_document

    def rule(document: Mapping[str, Any] | None) -> tuple[Any, ...]:
        parsed, _ = parse_document(dict(document or {}))
        t = parsed.who.trigger or Trigger()
        when = parsed.when
        return ((t.property, t.offset_days, t.event, repr(t.where)),
                (t.at, when.timezone, when.user_timezone))

    (date_before, time_before), (date_after, time_after) = rule(before), rule(after)
    pending = (CampaignDue.campaign_id == campaign_id, CampaignDue.state == "pending")
    if date_before != date_after:
        await session.execute(update(CampaignDue).where(*pending)
                              .values(state="cancelled", reason=REASON_RULE, updated_at=now)
                              .execution_options(synchronize_session=False))
        await session.execute(update(CampaignRun)
                              .where(CampaignRun.campaign_id == campaign_id, CampaignRun.state.in_(OPEN_RUN))
                              .values(cursor=None, qualified=None, updated_at=now)
                              .execution_options(synchronize_session=False))
    elif time_before != time_after:
        await session.execute(update(CampaignDue).where(*pending, CampaignDue.due_at.is_not(None))
                              .values(due_at=None, updated_at=now).execution_options(synchronize_session=False))


async def on_date_events(session: AsyncSession, live: LiveCampaign, event_ids: Sequence[int], *,
                         now: datetime) -> int:
    """Due rows for an event-anchored date campaign's newly recorded trigger events (already
    matched by name and `where`): one per event whose date property gives a due day from
    yesterday on. Returns the rows added; the caller commits."""
    if live.type != "date" or not _event_anchored(live) or not live.trigger.property or not event_ids:
        return 0
    dialect = session_dialect(session)
    ids = sorted(set(event_ids))
    added = 0
    for start in range(0, len(ids), CHUNK):
        names, query = _event_select(live, now, dialect, Event.id.in_(ids[start:start + CHUNK]))
        added += _rowcount(await session.execute(
            _insert(session).from_select(names, query).on_conflict_do_nothing()))
    return added


# --- resolving and firing ---------------------------------------------------------------------------


async def resolve_due(session: AsyncSession, *, now: datetime) -> int:
    """Fill `due_at` of the pending due rows whose day is near (see the module's docstring), per
    zone group; rows whose person is gone are skipped. Due times already past by more than the
    misfire grace become `late` (running campaigns). Returns the rows resolved; the caller commits."""
    campaigns = await live_campaigns(session, types=("date",), include_paused=True)
    if not campaigns:
        return 0
    horizon = now.astimezone(UTC).date() + timedelta(days=RESOLVE_DAYS)
    default: str | None = None
    grace: float | None = None
    resolved = 0
    for live in campaigns:
        open_rows = (CampaignDue.campaign_id == live.campaign_id, CampaignDue.state == "pending",
                     CampaignDue.due_at.is_(None), CampaignDue.due_day <= horizon)
        days = sorted(await session.scalars(select(CampaignDue.due_day).where(*open_rows).distinct()))
        if not days:
            continue
        when, at = live.document.when, live.trigger.at
        if not when.user_timezone:
            instants = {day: schedule.wall_to_utc(day, at, when.timezone) for day in days}
            result = await session.execute(
                update(CampaignDue).where(*open_rows)
                .values(due_at=case({day: literal(instant, UTCDateTime()) for day, instant in instants.items()},
                                    value=CampaignDue.due_day), updated_at=now)
                .execution_options(synchronize_session=False))
            resolved += _rowcount(result)
        else:
            if default is None:
                default = await default_timezone(session)
            resolved += await _resolve_per_zone(session, live, open_rows, days, default, now)
        await session.execute(
            update(CampaignDue)
            .where(*open_rows, ~select(Profile.id).where(Profile.id == CampaignDue.profile_id).exists())
            .values(state="skipped", reason=REASON_GONE, updated_at=now)
            .execution_options(synchronize_session=False))
        if live.running:
            if grace is None:
                grace = await misfire_grace(session)
            await _mark_late(session, live, now=now, grace=grace)
    return resolved


async def _resolve_per_zone(session: AsyncSession, live: LiveCampaign, open_rows: tuple[Any, ...],
                            days: list[date], default: str, now: datetime) -> int:
    """user_timezone: each recipient's due time, one zone group at a time (materialize's groups:
    the profile's own valid zone, else its phone's first characters)."""
    joined = (select().select_from(CampaignDue).join(Profile, Profile.id == CampaignDue.profile_id)
              .where(*open_rows))
    stored = await session.scalars(joined.add_columns(Profile.timezone)
                                   .where(Profile.timezone.is_not(None)).distinct())
    valid_zones = tuple(sorted(zone for zone in stored if _zone_valid(zone)))
    tz_key, prefix = _zone_keys(valid_zones)
    rows = (await session.execute(
        joined.add_columns(tz_key.label("tz"), prefix.label("prefix"), func.min(Profile.phone).label("phone"))
        .group_by(literal_column("tz"), literal_column("prefix")))).all()
    zones = [(row.tz, row.prefix, schedule.recipient_zone(row.tz or None, row.phone, default)) for row in rows]
    at = live.trigger.at
    resolved = 0
    for day in days:
        groups = [ZoneGroup(tz, prefix_, 0, schedule.wall_to_utc(day, at, zone)) for tz, prefix_, zone in zones]
        instant = _not_before_case(groups, valid_zones)
        result = await session.execute(
            update(CampaignDue).where(*open_rows, CampaignDue.due_day == day)
            .values(due_at=select(instant).where(Profile.id == CampaignDue.profile_id).scalar_subquery(),
                    updated_at=now)
            .execution_options(synchronize_session=False))
        resolved += _rowcount(result)
    return resolved


async def _mark_late(session: AsyncSession, live: LiveCampaign, *, now: datetime, grace: float) -> int:
    result = await session.execute(
        update(CampaignDue)
        .where(CampaignDue.campaign_id == live.campaign_id, CampaignDue.state == "pending",
               CampaignDue.due_at < now - timedelta(seconds=grace))
        .values(state="late", reason=REASON_LATE, updated_at=now)
        .execution_options(synchronize_session=False))
    late = _rowcount(result)
    if late:
        await bump(session, live.campaign_id, campaign_day(live, now), triggered=late, late=late)
    return late


async def fire_due(session: AsyncSession, *, now: datetime) -> int:
    """Queue the due rows whose time has come, for the running date campaigns (up to FIRE_MAX
    each per call): each through `queue_candidates` (dedupe key live:{campaign}:due:{id}), then
    marked fired, skipped (reason) or limited; those past by more than the misfire grace become
    late. A campaign whose segment or route is gone keeps its rows pending (logged). Returns the
    messages queued; the caller commits."""
    campaigns = [live for live in await live_campaigns(session, types=("date",))
                 if live.running and (live.document.when.end is None or now < live.document.when.end)]
    if not campaigns:
        return 0
    grace = await misfire_grace(session)
    queued = 0
    for live in campaigns:
        await _mark_late(session, live, now=now, grace=grace)
        done = 0
        while done < FIRE_MAX:
            rows = (await session.execute(
                select(CampaignDue.id, CampaignDue.profile_id, CampaignDue.event_id)
                .where(CampaignDue.campaign_id == live.campaign_id, CampaignDue.state == "pending",
                       CampaignDue.due_at <= now)
                .order_by(CampaignDue.due_at, CampaignDue.id).limit(FIRE_BATCH))).all()
            if not rows:
                break
            try:
                outcomes = await queue_candidates(session, live, [
                    Candidate(row.profile_id, f"due:{row.id}", event_id=row.event_id) for row in rows], now=now)
            except MaterializeError as exc:
                log.warning("date campaign C%s: its due times wait: %s", live.campaign_id, exc)
                break
            by_state: dict[tuple[str, str | None], list[int]] = {}
            for row in rows:
                outcome = outcomes.get(f"due:{row.id}", "unreachable")
                if outcome in ("queued", "duplicate"):
                    key: tuple[str, str | None] = ("fired", None)
                elif outcome == "limited":
                    key = ("limited", SKIP_REASONS["limited"])
                else:
                    key = ("skipped", SKIP_REASONS.get(outcome, outcome))
                by_state.setdefault(key, []).append(row.id)
            for (state, reason), due_ids in by_state.items():
                await session.execute(
                    update(CampaignDue).where(CampaignDue.id.in_(due_ids))
                    .values(state=state, reason=reason, updated_at=now).execution_options(synchronize_session=False))
            queued += sum(1 for outcome in outcomes.values() if outcome == "queued")
            done += len(rows)
            if len(rows) < FIRE_BATCH:
                break
    return queued
