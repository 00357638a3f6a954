"""Materialization: a run's audience turned into outbox rows, set-based.

One INSERT … SELECT per chunk of profile ids (keyset on `profiles.id`, the cursor saved in
`campaign_runs.cursor` in the chunk's own transaction), so a run of a million recipients costs a
few dozen statements and a killed engine resumes where it stopped: the unique dedupe key
`run:{run_id}:profile:{profile_id}` (INSERT … ON CONFLICT DO NOTHING) makes a chunk written twice
insert nothing the second time.

Who gets a row: the segment's members SMS can reach now, sampled by `reach_percent`, within the
target, run and daily limits, and — per recipient zone — not late (`when.late = skip`) and not in
a discarding DND window. Sampling and limits order people by a pseudo-random key computed in SQL on
both databases, `(id · PICK_MULTIPLIER + seed(campaign)) mod PICK_MODULUS` (a multiplicative hash
with the golden-ratio multiplier: evenly spread over ids, the same pick for a campaign on every
run and after a resume). Not-before times are computed once per distinct recipient zone in Python
and applied in SQL by one CASE over the zones, never per user. On PostgreSQL two chunks are written
at once (see `_ChunkWriter`).

Arms (A/B variants and a control group, services/campaigns/arms.py): each row's `variant` is the
person's stable arm computed in the same INSERT (`arm_sql`, a CASE over a hash of campaign and
profile id), with that variant's encoding and parts. A person in the control group gets a
control row: state `control`, never rendered, claimed or sent, created and finished at the
would-be send time; it counts toward the run, target and daily limits like a message."""

from __future__ import annotations

import asyncio
import logging
import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
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
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsconsole import clock
from smsconsole.models import Campaign, CampaignRun, Message, Profile, ProviderGroup, Segment, UTCDateTime
from smsconsole.models import Provider as ProviderRow
from smsconsole.services.campaigns import schedule
from smsconsole.services.campaigns.arms import CONTROL, arm_bucket_sql, arm_sql, thresholds
from smsconsole.services.campaigns.definition import CampaignDocument, What, parse_document
from smsconsole.services.queries.reach import UNREACHABLE_REASONS, reachable_condition
from smsconsole.services.segments.compiler import segment_condition
from smsconsole.services.segments.reach import CountryReach, ReachEstimate, UnreachableCounts, reach_query
from smsconsole.services.settings import campaign_limits, get_settings
from smsconsole.services.smart_encoding import route_smart_encodes
from smsconsole.sms import analyze, has_lookalikes

log = logging.getLogger("smsconsole.campaigns")

PICK_MODULUS = 2_147_483_647  # 2^31 - 1, prime: the key is a bijection of ids below it
PICK_MULTIPLIER = 1_327_217_884  # ≈ modulus / golden ratio; id · multiplier stays below 2^63
DEFAULT_CHUNK = 50_000
PHONE_PREFIX = 6  # "+1415…": a phone's zone is told from its first characters (country + area)
OPEN_RUN_STATES = ("planned", "materializing", "running", "live", "paused")  # live: a live campaign's run


class MaterializeError(Exception):
    """The run cannot be materialized (its segment or route is gone); the run fails with this reason."""


def seed_of(campaign_id: int) -> int:
    return (campaign_id * 2_654_435_761) % PICK_MODULUS


def pick_key(campaign_id: int) -> ColumnElement[int]:
    """The pseudo-random order of profiles for one campaign, in SQL (SQLite and PostgreSQL)."""
    return (Profile.id * PICK_MULTIPLIER + seed_of(campaign_id)) % PICK_MODULUS


def sampled_condition(campaign_id: int, reach_percent: float) -> ColumnElement[bool] | None:
    """Who the reach percentage keeps; None when it keeps everyone."""
    if reach_percent >= 100:
        return None
    return pick_key(campaign_id) < int(PICK_MODULUS * reach_percent / 100)


async def misfire_grace(session: AsyncSession) -> float:
    """Setting campaign_misfire_grace, in seconds."""
    return (await campaign_limits(session)).grace


async def default_timezone(session: AsyncSession) -> str:
    return (await get_settings(session)).get("default_timezone") or "UTC"


async def read_document(session: AsyncSession, data: dict[str, Any]) -> CampaignDocument:
    document, _ = parse_document(data or {}, default_timezone=await default_timezone(session), strict=False)
    return document


async def audience_condition(session: AsyncSession, document: CampaignDocument, *, now: datetime) -> ColumnElement[bool]:
    """The campaign's segment (saved by name or ad hoc) as a condition over profiles."""
    definition: Any = document.who.definition
    if document.who.segment:
        definition = await session.scalar(select(Segment.definition).where(Segment.name == document.who.segment))
        if definition is None:
            raise MaterializeError(f"segment {document.who.segment!r} does not exist")
    if definition is None:
        return true()
    return await segment_condition(session, definition, now=now)


async def reach_of(session: AsyncSession, condition: ColumnElement[bool]) -> ReachEstimate:
    """Qualified, reachable and the unreachable reasons of an already compiled audience."""
    rows = (await session.execute(reach_query(condition))).all()
    codes = [code for code, _ in UNREACHABLE_REASONS]
    return ReachEstimate(
        qualified=sum(r.qualified for r in rows), reachable=sum(r.reachable for r in rows),
        unreachable=UnreachableCounts(**{code: sum(getattr(r, code) for r in rows) for code in codes}),
        by_country=tuple(CountryReach(r.country, r.qualified, r.reachable) for r in rows),
        warnings=(), computed_at=clock.now())


# --- the plan: who, when, how many ------------------------------------------------------------------


@dataclass
class ZoneGroup:
    timezone: str  # the profile's own zone when it is a valid one, else ''
    prefix: str  # else the phone's first characters, which tell the zone
    count: int
    not_before: datetime | None = None
    status: str = "ok"  # ok | local_time_passed | dnd_discard


@dataclass
class Plan:
    """What a run (or an estimate) will write: counts held back by reason, the zone groups that
    give each recipient's not-before, and the pick-key threshold that enforces the limits."""

    eligible: int = 0  # reachable, sampled in, not late, not discarded (before limits)
    will_send: int = 0
    held_back: dict[str, int] = field(default_factory=dict)
    groups: list[ZoneGroup] | None = None  # None: no not-before (no user time zone, no DND)
    threshold: int | None = None  # pick key <= threshold; None: no limit binds
    valid_zones: tuple[str, ...] = ()


def _zone_valid(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _zone_keys(valid_zones: Iterable[str]) -> tuple[ColumnElement[str], ColumnElement[str]]:
    """A profile's zone group as two SQL columns: (its own zone, '') when that zone is valid, else
    ('', its phone's first characters) — the phone tells the zone."""
    zones = list(valid_zones)
    phone_prefix = func.coalesce(func.substr(Profile.phone, 1, PHONE_PREFIX), "")
    if not zones:
        return literal("", String), phone_prefix
    own = Profile.timezone.in_(zones)
    return (case((own, Profile.timezone), else_=literal("", String)),
            case((own, literal("", String)), else_=phone_prefix))


def _next_day(planned_at: datetime, campaign_tz: str) -> datetime:
    """The same wall time the next day in the campaign's zone (DST-proof: aware local arithmetic)."""
    local = planned_at.astimezone(zoneinfo.ZoneInfo(campaign_tz))
    return (local + timedelta(days=1)).astimezone(UTC)


def group_instant(document: CampaignDocument, planned_at: datetime, zone: str, *, moment: datetime,
                   grace: float) -> tuple[datetime | None, str]:
    when = document.when
    instant = planned_at
    if when.user_timezone:
        instant = schedule.local_instant(planned_at, when.timezone, zone)
        if instant + timedelta(seconds=grace) < moment:
            if when.late == "skip":
                return None, "local_time_passed"
            instant = schedule.local_instant(_next_day(planned_at, when.timezone), when.timezone, zone)
    if when.dnd is not None:
        shifted = schedule.dnd_shift(instant, zone, when.dnd)
        if shifted is None:
            return None, "dnd_discard"
        instant = shifted
    return instant, "ok"


def _not_before_case(groups: list[ZoneGroup], valid_zones: tuple[str, ...]) -> ColumnElement[datetime]:
    """Each recipient's not-before as one CASE over the zone groups (computed once per group in
    Python); NULL for a group held back (late, DND discard) or one not seen when planning."""
    by_zone = {g.timezone: literal(g.not_before, UTCDateTime()) for g in groups if g.status == "ok" and g.timezone}
    by_prefix = {g.prefix: literal(g.not_before, UTCDateTime()) for g in groups if g.status == "ok" and not g.timezone}
    nothing = null().cast(UTCDateTime())
    from_phone = (case(by_prefix, value=func.coalesce(func.substr(Profile.phone, 1, PHONE_PREFIX), ""), else_=nothing)
                  if by_prefix else nothing)
    if not valid_zones:
        return from_phone
    from_zone = case(by_zone, value=Profile.timezone, else_=nothing) if by_zone else nothing
    return case((Profile.timezone.in_(list(valid_zones)), from_zone), else_=from_phone)


@dataclass
class Audience:
    """The pieces of the SELECT every statement of a run shares."""

    condition: ColumnElement[bool]  # segment AND reachable AND sampled (AND a not-before when per zone)
    key: ColumnElement[int]
    not_before: ColumnElement[datetime] | None = None  # per recipient zone; None: the plan's constant

    def select_from(self, *columns: Any) -> Any:
        return select(*columns).select_from(Profile).where(self.condition)


async def limit_budget(session: AsyncSession, campaign_id: int, run_id: int | None, document: CampaignDocument,
                       planned_at: datetime) -> list[tuple[str, int]]:
    """(limit reason, how many more this run may take) for each limit the campaign sets."""
    who = document.who
    budgets: list[tuple[str, int]] = []
    others = Message.campaign_id == campaign_id
    if run_id is not None:
        others = and_(others, Message.run_id != run_id)
    if who.target_limit is not None:
        used = await session.scalar(select(func.count()).select_from(Message).where(others)) or 0
        budgets.append(("target_limit", max(0, who.target_limit - used)))
    if who.run_limit is not None:
        budgets.append(("run_limit", who.run_limit))
    if who.daily_limit is not None:
        zone = zoneinfo.ZoneInfo(document.when.timezone)
        day = planned_at.astimezone(zone).date()
        start = datetime.combine(day, datetime.min.time(), zone).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=1), datetime.min.time(), zone).astimezone(UTC)
        used = await session.scalar(
            select(func.count()).select_from(Message).join(CampaignRun, CampaignRun.id == Message.run_id)
            .where(others, CampaignRun.planned_at >= start, CampaignRun.planned_at < end)) or 0
        budgets.append(("daily_limit", max(0, who.daily_limit - used)))
    return budgets


async def plan_audience(session: AsyncSession, *, campaign_id: int, run_id: int | None, document: CampaignDocument,
                        planned_at: datetime, moment: datetime, grace: float, after_id: int = 0,
                        already: int = 0) -> tuple[Plan, Audience, ReachEstimate | None]:
    """Count and plan a run over profiles with id > after_id; `already` rows of it exist. The
    reach (qualified, unreachable reasons) is computed only for a whole run (after_id 0)."""
    segment = await audience_condition(session, document, now=moment)
    reach = await reach_of(session, segment) if after_id == 0 else None
    base = and_(segment, reachable_condition(), Profile.id > after_id)
    sampled = sampled_condition(campaign_id, document.who.reach_percent)
    sampled_column = (sampled if sampled is not None else literal(True, Boolean)).label("sampled")
    grouping = [sampled] if sampled is not None else []
    kept = and_(base, sampled) if sampled is not None else base
    plan = Plan()
    when = document.when
    if reach is not None:
        plan.held_back = _reason_codes(reach)
    if when.user_timezone or when.dnd is not None:
        default = await default_timezone(session)
        stored = await session.scalars(select(Profile.timezone).where(base, Profile.timezone.is_not(None)).distinct())
        plan.valid_zones = tuple(sorted(z for z in stored if _zone_valid(z)))
        tz_key, prefix = _zone_keys(plan.valid_zones)
        rows = (await session.execute(
            select(tz_key.label("tz"), prefix.label("prefix"), sampled_column,
                   func.min(Profile.phone).label("phone"), func.count().label("n"))
            .where(base).group_by(*(literal_column(name) for name in ("tz", "prefix", "sampled")[:2 + len(grouping)])))
        ).all()
        groups: dict[tuple[str, str], ZoneGroup] = {}
        for row in rows:
            if not row.sampled:
                plan.held_back["sampled_out"] = plan.held_back.get("sampled_out", 0) + row.n
                continue
            zone = schedule.recipient_zone(row.tz or None, row.phone, default)
            instant, status = group_instant(document, planned_at, zone, moment=moment, grace=grace)
            groups[(row.tz, row.prefix)] = ZoneGroup(row.tz, row.prefix, row.n, instant, status)
        plan.groups = list(groups.values())
        for group in plan.groups:
            if group.status == "ok":
                plan.eligible += group.count
            else:
                plan.held_back[group.status] = plan.held_back.get(group.status, 0) + group.count
        not_before = _not_before_case(plan.groups, plan.valid_zones)
        audience = Audience(and_(kept, not_before.is_not(None)), pick_key(campaign_id), not_before)
    else:
        rows = (await session.execute(select(sampled_column, func.count().label("n"))
                                      .where(base).group_by(*(literal_column("sampled") for _ in grouping)))).all()
        for row in rows:
            if row.sampled:
                plan.eligible += row.n
            else:
                plan.held_back["sampled_out"] = plan.held_back.get("sampled_out", 0) + row.n
        audience = Audience(kept, pick_key(campaign_id))
    budgets = await limit_budget(session, campaign_id, run_id, document, planned_at)
    plan.will_send = plan.eligible
    if budgets:
        reason, budget = min(budgets, key=lambda b: b[1])
        budget = max(0, budget - already)
        if budget < plan.eligible:
            plan.held_back[reason] = plan.held_back.get(reason, 0) + plan.eligible - budget
            plan.will_send = budget
            plan.threshold = -1 if budget == 0 else await session.scalar(
                audience.select_from(audience.key).order_by(audience.key).limit(1).offset(budget - 1))
    plan.held_back = {code: n for code, n in plan.held_back.items() if n}
    return plan, audience, reach


def _reason_codes(reach: ReachEstimate) -> dict[str, int]:
    return {code: getattr(reach.unreachable, code) for code, _ in UNREACHABLE_REASONS}


# --- writing the rows -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    group_id: int | None = None
    provider_id: int | None = None
    provider_name: str | None = None
    sender: str | None = None
    smart_encoding: bool = False  # its provider bills the body with look-alikes replaced (services/smart_encoding.py)


async def resolve_route(session: AsyncSession, document: CampaignDocument) -> Route:
    """The ids the rows carry, looked up once per run."""
    what = document.what
    route = Route(sender=what.sender or None)
    if what.route_provider:
        provider_id = await session.scalar(select(ProviderRow.id).where(ProviderRow.name == what.route_provider))
        if provider_id is None:
            raise MaterializeError(f"provider {what.route_provider!r} does not exist")
        route = Route(provider_id=provider_id, provider_name=what.route_provider, sender=route.sender)
    elif what.route_group:
        group_id = await session.scalar(select(ProviderGroup.id).where(ProviderGroup.name == what.route_group))
        if group_id is None:
            raise MaterializeError(f"provider group {what.route_group!r} does not exist")
        route = Route(group_id=group_id, sender=route.sender)
    if any(has_lookalikes(v.body) for v in what.arms):
        route = replace(route, smart_encoding=await route_smart_encodes(
            session, provider_id=route.provider_id, group_id=route.group_id))
    return route


def _arm_columns(campaign_id: int, what: What, *, state: str, stamp: Any,
                 not_before: ColumnElement[datetime] | None, smart_encoding: bool = False) -> dict[str, Any]:
    """The columns that depend on a person's arm: the variant (arms.arm_sql), the encoding and
    parts of that variant's body, and for a control row (held out: recorded, never sent) state
    `control`, no rendering, no next attempt, created and finished at the would-be send time
    (the recipient's not-before when later than now). Literals when everyone gets variant A."""
    arms = what.arms
    variant = arm_sql(campaign_id, Profile.id, arms)
    infos = {v.name: analyze(v.body, smart_encoding=smart_encoding) for v in arms}  # as the route bills it
    shapes = {(i.encoding.value, max(1, i.segments)) for i in infos.values()}
    if len(shapes) == 1:
        encoding_value, segments_value = next(iter(shapes))
        encoding: Any = literal(encoding_value, String)
        segments: Any = literal(segments_value, Integer)
    else:
        encoding = case({n: literal(i.encoding.value, String) for n, i in infos.items()}, value=variant,
                        else_=literal("GSM-7", String))
        segments = case({n: literal(max(1, i.segments), Integer) for n, i in infos.items()}, value=variant,
                        else_=literal(0, Integer))
    columns: dict[str, Any] = {"variant": variant, "encoding": encoding, "segments": segments,
                               "state": literal(state, String), "render": literal(True, Boolean),
                               "next_attempt_at": not_before if not_before is not None else null(),
                               "created_at": stamp, "finished_at": null()}
    if what.control <= 0:
        return columns
    control = arm_bucket_sql(campaign_id, Profile.id) >= thresholds(arms)[-1][1]
    would_send = stamp if not_before is None else case((not_before > stamp, not_before), else_=stamp)
    columns.update({
        "encoding": case((control, literal("GSM-7", String)), else_=columns["encoding"]),
        "segments": case((control, literal(0, Integer)), else_=columns["segments"]),
        "state": case((control, literal(CONTROL, String)), else_=literal(state, String)),
        "render": case((control, literal(False, Boolean)), else_=literal(True, Boolean)),
        "next_attempt_at": case((control, null().cast(UTCDateTime())), else_=columns["next_attempt_at"]),
        "created_at": case((control, would_send), else_=stamp),
        "finished_at": case((control, would_send), else_=null().cast(UTCDateTime())),
    })
    return columns


def _suppress_countries(arm: dict[str, Any], suppress: dict[str, str], stamp: Any) -> Any:
    """Rows to the countries the run-start preflight blocked (compliance.on_block = suppress) are
    written suppressed with the finding as reason: recorded, never rendered or sent. Returns the
    reason column."""
    blocked = Profile.country.in_(sorted(suppress))
    arm.update({
        "state": case((blocked, literal("suppressed", String)), else_=arm["state"]),
        "render": case((blocked, literal(False, Boolean)), else_=arm["render"]),
        "next_attempt_at": case((blocked, null().cast(UTCDateTime())), else_=arm["next_attempt_at"]),
        "finished_at": case((blocked, stamp), else_=arm["finished_at"]),
    })
    return case({country: literal(reason[:2000], String) for country, reason in suppress.items()},
                value=Profile.country, else_=null().cast(String))


def _insert(session: AsyncSession, audience: Audience, plan: Plan, *, run_id: int, campaign_id: int, route: Route,
            state: str, now: datetime, what: What, lower: int, upper: int,
            suppress: dict[str, str] | None = None) -> Any:
    stamp = literal(now, UTCDateTime())
    arm = _arm_columns(campaign_id, what, state=state, stamp=stamp, not_before=audience.not_before,
                       smart_encoding=route.smart_encoding)
    reason = _suppress_countries(arm, suppress, stamp) if suppress else None
    columns: dict[str, Any] = {
        "kind": literal("campaign", String), "priority": literal(0, Integer),
        "provider_id": literal(route.provider_id, Integer) if route.provider_id is not None else null(),
        "provider_name": literal(route.provider_name, String) if route.provider_name is not None else null(),
        "group_id": literal(route.group_id, Integer) if route.group_id is not None else null(),
        "profile_id": Profile.id, "country": Profile.country, "to_number": Profile.phone,
        "sender": literal(route.sender, String) if route.sender is not None else null(),
        "body": literal("", String), "encoding": arm["encoding"],
        "segments": arm["segments"], "state": arm["state"],
        "attempts": literal(0, Integer), "next_attempt_at": arm["next_attempt_at"],
        "dedupe_key": literal(f"run:{run_id}:profile:", String) + cast(Profile.id, String),
        "campaign_id": literal(campaign_id, Integer), "run_id": literal(run_id, Integer),
        "variant": arm["variant"], "render": arm["render"],
        "created_at": arm["created_at"], "finished_at": arm["finished_at"], "updated_at": stamp,
    }
    if reason is not None:
        columns["reason"] = reason
    query = audience.select_from(*columns.values()).where(Profile.id > lower, Profile.id <= upper)
    if plan.threshold is not None:
        query = query.where(audience.key <= plan.threshold)
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return module.insert(Message).from_select(list(columns), query).on_conflict_do_nothing()


async def _fail(factory: async_sessionmaker[AsyncSession], run_id: int, reason: str) -> None:
    log.warning("campaign run %s failed: %s", run_id, reason)
    async with factory() as session, session.begin():
        now = clock.now()
        await session.execute(update(CampaignRun).where(CampaignRun.id == run_id)
                              .values(state="failed", reason=reason, finished_at=now, updated_at=now))


async def materialize_run(factory: async_sessionmaker[AsyncSession], run_id: int, *, chunk: int = DEFAULT_CHUNK,
                          on_chunk: Callable[[int], None] | None = None, parallel: int | None = None) -> int:
    """Write the run's outbox rows, one transaction per chunk of profile ids; resumable (a run left
    `materializing` continues from its cursor). Returns the rows inserted by this call; `on_chunk`
    hears each committed chunk's count (the engine pokes its dispatcher). `parallel` chunks are
    written at once (default: 2 on PostgreSQL, where the server spends half of each insert in
    foreign-key triggers and a second connection uses the second core; 1 on SQLite, one writer).
    The run becomes `running` when done (or stays `paused`); it fails with the reason when its
    segment or route is gone."""
    from smsconsole.services.errors import ValidationError

    async with factory() as session, session.begin():
        run = await session.get(CampaignRun, run_id)
        if run is None or run.materialized_at is not None or run.state not in ("materializing", "paused"):
            return 0
        campaign = await session.get(Campaign, run.campaign_id)
        if campaign is None:
            return 0
        document = await read_document(session, run.document or campaign.document)
        moment = run.started_at or clock.now()
        already = await session.scalar(select(func.count()).select_from(Message).where(Message.run_id == run_id)) or 0
        try:
            route = await resolve_route(session, document)
            plan, audience, reach = await plan_audience(
                session, campaign_id=campaign.id, run_id=run_id, document=document, planned_at=run.planned_at,
                moment=moment, grace=await misfire_grace(session), after_id=run.cursor or 0, already=already)
        except (MaterializeError, ValidationError) as exc:
            reason = str(exc)
            failed = True
        else:
            failed = False
            if run.cursor is None and reach is not None:
                run.qualified, run.suppressed, run.cursor, run.materialized = reach.qualified, plan.held_back, 0, 0
                run.updated_at = clock.now()
            cursor = run.cursor or 0
            last_id = await session.scalar(select(func.max(Profile.id))) or 0
            campaign_id = campaign.id
            suppress = {str(k): str(v) for k, v in ((run.preflight or {}).get("suppress") or {}).items()}
            postgres = session.get_bind().dialect.name == "postgresql"
            parallel = (parallel or 2) if postgres else 1  # SQLite: one writer (a second would fail its snapshot)
    if failed:
        await _fail(factory, run_id, reason)
        return 0
    writer = _ChunkWriter(factory, run_id=run_id, campaign_id=campaign_id, audience=audience, plan=plan,
                          route=route, what=document.what, on_chunk=on_chunk, suppress=suppress or None)
    if plan.threshold != -1 and not await writer.write_all(cursor, last_id, chunk, parallel):
        return writer.inserted
    inserted = writer.inserted
    async with factory() as session, session.begin():
        run = await session.get(CampaignRun, run_id)
        if run is None or run.state not in ("materializing", "paused"):
            return inserted
        now = clock.now()
        run.materialized = await session.scalar(
            select(func.count()).select_from(Message).where(Message.run_id == run_id)) or 0
        run.materialized_at, run.updated_at, run.cursor = now, now, max(run.cursor or 0, last_id)
        if run.state == "materializing":
            run.state = "running"
    log.info("campaign run %s materialized: %d rows", run_id, inserted)
    return inserted


class _ChunkWriter:
    """Writes a run's chunks, up to `parallel` at once, each in its own transaction. The saved
    cursor only ever covers chunks that have all committed (a chunk that commits ahead of a lower
    one leaves the cursor below that one), so a resume re-runs at most the chunks in flight, and
    their rows already written are skipped by the dedupe key."""

    def __init__(self, factory: async_sessionmaker[AsyncSession], *, run_id: int, campaign_id: int,
                 audience: Audience, plan: Plan, route: Route, what: What,
                 on_chunk: Callable[[int], None] | None, suppress: dict[str, str] | None = None) -> None:
        self.factory, self.run_id, self.campaign_id = factory, run_id, campaign_id
        self.suppress = suppress
        self.audience, self.plan, self.route, self.what, self.on_chunk = audience, plan, route, what, on_chunk
        self.inserted = 0
        self.stopped = False
        self._bounds: list[int] = []  # every chunk's upper id, in order
        self._done: set[int] = set()

    async def write_all(self, cursor: int, last_id: int, chunk: int, parallel: int) -> bool:
        """False when the run was stopped (or removed) on the way."""
        in_flight: set[asyncio.Task[None]] = set()
        lower = cursor
        try:
            while lower < last_id and not self.stopped:
                async with self.factory() as session:
                    upper = await session.scalar(select(Profile.id).where(Profile.id > lower).order_by(Profile.id)
                                                 .offset(chunk - 1).limit(1)) or last_id
                while len(in_flight) >= max(1, parallel):
                    finished, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                    for task in finished:
                        task.result()  # a failed chunk ends the materialization (it resumes later)
                self._bounds.append(upper)
                in_flight.add(asyncio.create_task(self._write(lower, upper)))
                lower = upper
            for task in asyncio.as_completed(in_flight):
                await task
            in_flight = set()
        finally:
            for task in in_flight:
                task.cancel()
            if in_flight:
                await asyncio.gather(*in_flight, return_exceptions=True)
        return not self.stopped

    def _frontier(self, upper: int) -> int:
        """The highest bound below which every chunk (counting this one) has committed."""
        frontier = 0
        for bound in self._bounds:
            if bound != upper and bound not in self._done:
                break
            frontier = bound
        return frontier

    async def _write(self, lower: int, upper: int) -> None:
        async with self.factory() as session, session.begin():
            # FOR SHARE (PostgreSQL): a stop or pause committing meanwhile waits for this chunk, so
            # its UPDATE of the campaign's rows sees them.
            campaign = await session.scalar(select(Campaign).where(Campaign.id == self.campaign_id)
                                            .with_for_update(read=True))
            run = await session.get(CampaignRun, self.run_id)
            if run is None or campaign is None:
                self.stopped = True
                return
            if campaign.state == "stopped" or campaign.deleted_at is not None or run.state not in (
                    "materializing", "paused"):
                if run.state in ("materializing", "paused"):
                    now = clock.now()
                    run.state, run.reason, run.finished_at, run.updated_at = "stopped", "campaign stopped", now, now
                self.stopped = True
                return
            held = campaign.state == "paused" or run.state == "paused"
            result = await session.execute(_insert(
                session, self.audience, self.plan, run_id=self.run_id, campaign_id=self.campaign_id, route=self.route,
                state="held" if held else "queued", now=clock.now(), what=self.what, lower=lower, upper=upper,
                suppress=self.suppress))
            count = result.rowcount
            if count is None or count < 0:  # sqlite3 gives no rowcount for some statements
                count = await session.scalar(select(func.changes())) or 0
            frontier = self._frontier(upper)
            await session.execute(
                update(CampaignRun).where(CampaignRun.id == self.run_id)
                .values(cursor=case((func.coalesce(CampaignRun.cursor, 0) < frontier, frontier),
                                    else_=CampaignRun.cursor),
                        materialized=func.coalesce(CampaignRun.materialized, 0) + count, updated_at=clock.now())
                .execution_options(synchronize_session=False))
        self._done.add(upper)
        self.inserted += count
        if self.on_chunk is not None and count:
            self.on_chunk(count)
