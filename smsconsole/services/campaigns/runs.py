"""Campaign runs: counting them, estimating a campaign's reach, starting the runs that are due
(idempotently, with the misfire grace and the safety check) and settling finished ones.

A run is one occurrence of a campaign (`campaign_runs`, unique per campaign and planned time).
`start_due_runs` inserts it, snapshots the campaign's document into it, and advances the
campaign's `next_run_at`; `materialize.materialize_run` writes its outbox rows; `settle_runs`
completes a run once nothing of it is left to send, and a campaign once no run is left.

A live campaign (action, inaction, date) has one run, inserted by `start_due_runs` at its start
in state `live`: nothing is materialized, its messages come from triggers
(services/campaigns/live/), and `settle_runs` leaves it alone until the campaign ends
(live/lifecycle.settle_live turns it `running` with the reason; it completes once drained)."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsconsole import clock
from smsconsole.models import Campaign, CampaignRun, Message, Profile
from smsconsole.services import audit, rollups
from smsconsole.services.campaigns import schedule
from smsconsole.services.campaigns.definition import LIVE_TYPES, CampaignDocument, campaign_code
from smsconsole.services.campaigns.materialize import (
    OPEN_RUN_STATES,
    MaterializeError,
    audience_condition,
    misfire_grace,
    plan_audience,
    read_document,
)
from smsconsole.services.errors import ValidationError
from smsconsole.services.settings import campaign_limits
from smsconsole.services.queries.reach import UNREACHABLE_REASONS, reachable_condition

log = logging.getLogger("smsconsole.campaigns")

ACTOR = "engine"
OPEN_MESSAGE_STATES = ("queued", "held", "claimed", "sending")
ALERT_TIMEOUT = 5.0
# The latest a user-time-zone run can start before its planned instant (UTC+14 vs UTC-12).
MAX_LEAD = timedelta(hours=26)


# --- counts ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunCounts:
    """A run's outbox rows by state (claimed and sending count as queued: the rollups keep them
    so, nothing has left yet), its held-out control rows (never sent, never open), the reasons of
    its suppressed rows, and the people held back before any row was written."""

    queued: int = 0
    held: int = 0
    sending: int = 0
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    undelivered: int = 0
    suppressed: int = 0
    unknown: int = 0
    control: int = 0
    suppressed_by_reason: dict[str, int] = field(default_factory=dict)
    held_back: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return (self.queued + self.held + self.sending + self.sent + self.delivered + self.failed
                + self.undelivered + self.suppressed + self.unknown + self.control)

    @property
    def open(self) -> int:
        return self.queued + self.held + self.sending


_STATE_FIELD = {"queued": "queued", "claimed": "queued", "held": "held", "sending": "queued", "sent": "sent",
                "delivered": "delivered", "failed": "failed", "undelivered": "undelivered",
                "suppressed": "suppressed", "unknown": "unknown", "control": "control"}


async def run_counts(session: AsyncSession, run_ids: list[int]) -> dict[int, RunCounts]:
    """Counts for each run, from the rollup stat_campaign (services/rollups.run_state_counts: a
    few rows per run, never the outbox); a suppressed row's reason is its rollup detail."""
    if not run_ids:
        return {}
    by_run: dict[int, dict[str, Any]] = {run_id: defaultdict(int) for run_id in run_ids}
    reasons: dict[int, dict[str, int]] = {run_id: defaultdict(int) for run_id in run_ids}
    for run_id, state, detail, count in await rollups.run_state_counts(session, run_ids):
        if run_id not in by_run:
            continue
        by_run[run_id][_STATE_FIELD.get(state, "queued")] += count
        if state == "suppressed":
            reasons[run_id][detail or "suppressed"] += count
    held_back = dict((await session.execute(
        select(CampaignRun.id, CampaignRun.suppressed).where(CampaignRun.id.in_(run_ids)))).all())
    return {run_id: RunCounts(**by_run[run_id], suppressed_by_reason=dict(reasons[run_id]),
                              held_back=dict(held_back.get(run_id) or {}))
            for run_id in run_ids}


# --- estimate ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignEstimate:
    qualified: int
    reachable: int
    unreachable: dict[str, int]  # reason code -> people
    will_send: int  # after sampling, time-zone skips, DND discards and the limits
    held_back: dict[str, int]  # reason code -> people (sampled_out, target_limit, local_time_passed, ...)
    local_time_passed: int
    next_runs: list[datetime]
    blocked_by_safety: bool
    problem: str | None = None  # why nothing could be estimated (a missing segment)
    held_out: int = 0  # of will_send, about how many the control group holds out (by its percentage)


async def estimate_campaign(session: AsyncSession, document: CampaignDocument, *, now: datetime,
                            campaign_id: int = 0) -> CampaignEstimate:
    """The Who step's and the Summary's numbers for the next run (or now, when none is due)."""
    next_runs = _next_runs(document, now)
    planned_at = next_runs[0] if next_runs else now
    try:
        plan, _, reach = await plan_audience(
            session, campaign_id=campaign_id, run_id=None, document=document, planned_at=planned_at,
            moment=max(now, schedule.start_instant(document.when, planned_at)) if next_runs else now,
            grace=await misfire_grace(session))
    except (MaterializeError, ValidationError) as exc:
        return CampaignEstimate(0, 0, {}, 0, {}, 0, next_runs, False, problem=str(exc))
    assert reach is not None
    codes = {code for code, _ in UNREACHABLE_REASONS}
    unreachable = {code: n for code, n in plan.held_back.items() if code in codes}
    safety = document.who.safety_limit
    return CampaignEstimate(
        qualified=reach.qualified, reachable=reach.reachable, unreachable=unreachable, will_send=plan.will_send,
        held_back={code: n for code, n in plan.held_back.items() if code not in unreachable},
        local_time_passed=plan.held_back.get("local_time_passed", 0), next_runs=next_runs,
        blocked_by_safety=safety is not None and reach.reachable > safety,
        held_out=round(plan.will_send * document.what.control / 100))


def _next_runs(document: CampaignDocument, now: datetime, limit: int = 5) -> list[datetime]:
    try:
        return schedule.occurrences(document.when, document.type, after=now - timedelta(seconds=1), limit=limit,
                                    not_before=now)
    except Exception:  # an incomplete draft has no schedule yet
        return []


# --- starting runs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SafetyAlert:
    campaign_id: int
    campaign: str
    run_id: int
    planned_at: datetime
    qualified: int
    safety_limit: int | None  # None: blocked by its preflight
    reason: str


async def _insert_run(session: AsyncSession, campaign: Campaign, planned_at: datetime, *, state: str,
                      reason: str | None, now: datetime) -> CampaignRun | None:
    """The run row, or None when this occurrence already has one (the unique constraint)."""
    number = (await session.scalar(select(func.max(CampaignRun.number))
                                   .where(CampaignRun.campaign_id == campaign.id)) or 0) + 1
    run = CampaignRun(campaign_id=campaign.id, number=number, planned_at=planned_at, state=state, reason=reason,
                      document=dict(campaign.document or {}), suppressed={}, updated_at=now,
                      started_at=now if state in ("materializing", "planned", "live") else None,
                      materialized_at=now if state == "live" else None,
                      finished_at=now if state == "missed" else None)
    try:
        async with session.begin_nested():
            session.add(run)
            await session.flush()
    except IntegrityError:
        return None
    return run


async def _safety_check(session: AsyncSession, campaign: Campaign, run: CampaignRun, document: CampaignDocument,
                        now: datetime) -> SafetyAlert | None:
    """Block the run and the campaign when more people qualify (and are reachable) than the safety
    limit allows; nothing is written to the outbox. Returns the alert to send, else None."""
    limit = document.who.safety_limit
    if limit is None:
        return None
    segment = await audience_condition(session, document, now=now)
    reachable = await session.scalar(select(func.count()).select_from(Profile)
                                    .where(segment, reachable_condition())) or 0
    if reachable <= limit:
        return None
    code = campaign_code(campaign.id)
    reason = (f"safety check: {reachable:,} people qualify, more than the safety limit of {limit:,}; "
              f"raise who.safety_limit and resume, or stop {code}")
    run.state, run.reason, run.qualified, run.updated_at = "blocked", reason, reachable, now
    campaign.state, campaign.blocked_reason, campaign.updated_at = "blocked", reason, now
    await audit.record(session, ACTOR, "campaign.blocked", code, run=run.number, qualified=reachable,
                       safety_limit=limit, planned_at=run.planned_at.isoformat())
    log.warning("campaign %s (%s) run %d blocked: %s", code, campaign.name, run.number, reason)
    return SafetyAlert(campaign.id, campaign.name, run.id, run.planned_at, reachable, limit, reason)


async def _preflight_check(session: AsyncSession, campaign: Campaign, run: CampaignRun, document: CampaignDocument,
                           now: datetime) -> SafetyAlert | None:
    """The preflight again at run start (senders, registrations, templates, windows, consent and
    budget may have changed since scheduling). Kept on the run. A blocking finding holds the run
    (blocked, like the safety check; resume re-checks it), or, when the campaign says
    compliance.on_block = suppress, only the blocked countries' recipients are suppressed
    (materialize writes them suppressed with the reason) and the rest go. A finding about the
    whole run (the budget) always holds it."""
    from smsconsole.services.compliance.preflight import preflight_campaign, preflight_dict

    try:
        checked = await preflight_campaign(session, document, campaign_id=campaign.id, now=now,
                                           planned_at=run.planned_at)
    except MaterializeError:
        return None  # its segment or route is gone: materializing fails the run with the reason
    run.preflight = preflight_dict(checked)
    if not checked.blocking:
        return None
    code = campaign_code(campaign.id)
    if document.compliance.on_block == "suppress" and not checked.blocks_whole_run:
        reasons = {f.country: f"compliance: {f.message}" for f in reversed(checked.blocking) if f.country}
        run.preflight = {**run.preflight, "suppress": reasons}
        await audit.record(session, ACTOR, "campaign.preflight_suppress", code, run=run.number,
                           countries=sorted(reasons))
        log.warning("campaign %s run %d: preflight suppresses %s", code, run.number, ", ".join(sorted(reasons)))
        return None
    first = checked.blocking[0]
    more = len(checked.blocking) - 1
    reason = (f"preflight: {first.country + ': ' if first.country else ''}{first.message}"
              + (f" (and {more} more blocking)" if more else "")
              + f"; fix it and resume, or stop {code} (smsconsole campaigns preflight {code})")
    run.state, run.reason, run.qualified, run.updated_at = "blocked", reason, checked.recipients, now
    campaign.state, campaign.blocked_reason, campaign.updated_at = "blocked", reason, now
    await audit.record(session, ACTOR, "campaign.blocked", code, run=run.number, preflight=len(checked.blocking),
                       planned_at=run.planned_at.isoformat())
    log.warning("campaign %s (%s) run %d blocked: %s", code, campaign.name, run.number, reason)
    return SafetyAlert(campaign.id, campaign.name, run.id, run.planned_at, checked.recipients, None, reason)


async def post_alert(url: str, alert: SafetyAlert, *, client: httpx.AsyncClient | None = None) -> bool:
    """POST the alert as JSON to the operator's webhook; a failure is logged, never raised."""
    payload = {"event": "campaign.blocked", "campaign_id": campaign_code(alert.campaign_id),
               "campaign": alert.campaign, "run_id": alert.run_id, "planned_at": alert.planned_at.isoformat(),
               "qualified": alert.qualified, "safety_limit": alert.safety_limit, "reason": alert.reason}
    try:
        if client is not None:
            response = await client.post(url, json=payload, timeout=ALERT_TIMEOUT)
        else:
            async with httpx.AsyncClient(timeout=ALERT_TIMEOUT) as own:
                response = await own.post(url, json=payload)
        response.raise_for_status()
    except Exception as exc:  # the alert is a courtesy: the block itself is already recorded
        log.error("campaign alert webhook failed (%s): %s", _host(url), exc)
        return False
    return True


def _host(url: str) -> str:
    return httpx.URL(url).host or "?"


async def _start_run(session: AsyncSession, campaign: Campaign, run: CampaignRun, now: datetime,
                     alerts: list[SafetyAlert]) -> bool:
    """Safety-check a run about to start (with the campaign's document as it is now, which the run
    keeps as its snapshot); True when it goes on to materialize."""
    run.document = dict(campaign.document or {})
    document = await read_document(session, run.document)
    try:
        alert = await _safety_check(session, campaign, run, document, now)
    except (MaterializeError, ValidationError) as exc:
        run.state, run.reason, run.finished_at, run.updated_at = "failed", str(exc), now, now
        log.warning("campaign %s run %d failed: %s", campaign_code(campaign.id), run.number, exc)
        return False
    if alert is not None:
        alerts.append(alert)
        return False
    if (alert := await _preflight_check(session, campaign, run, document, now)) is not None:
        alerts.append(alert)
        return False
    run.state, run.started_at, run.updated_at = "materializing", now, now
    campaign.state, campaign.updated_at = "running", now
    return True


async def start_due_runs(factory: async_sessionmaker[AsyncSession], *, now: datetime | None = None,
                         grace: float | None = None, client: httpx.AsyncClient | None = None) -> list[int]:
    """Create the runs whose start time has come (idempotent: one run per campaign and planned
    time), mark those older than the misfire grace `missed`, safety-check the rest, advance each
    campaign's next run, and re-check runs an operator resumed (state `planned`). Commits itself.
    Returns the ids of runs that are now `materializing`."""
    now = now or clock.now()
    started: list[int] = []
    alerts: list[SafetyAlert] = []
    async with factory() as session, session.begin():
        limits = await campaign_limits(session)
        grace = limits.grace if grace is None else grace
        webhook = limits.alert_webhook
        campaigns = list(await session.scalars(
            select(Campaign).where(Campaign.state.in_(("scheduled", "running")), Campaign.deleted_at.is_(None),
                                   Campaign.next_run_at.is_not(None), Campaign.next_run_at <= now + MAX_LEAD)
            .order_by(Campaign.next_run_at, Campaign.id).with_for_update()))
        for campaign in campaigns:
            try:
                async with session.begin_nested():  # one campaign's bad document spoils no other's start
                    started += await _start_campaign(session, campaign, now, grace, alerts)
            except Exception:
                log.exception("starting the due runs of campaign %s failed", campaign_code(campaign.id))
        resumed = (await session.execute(
            select(CampaignRun, Campaign).join(Campaign, Campaign.id == CampaignRun.campaign_id)
            .where(CampaignRun.state == "planned", Campaign.state.in_(("scheduled", "running")),
                   Campaign.deleted_at.is_(None)))).all()
        for run, campaign in resumed:
            if await _start_run(session, campaign, run, now, alerts):
                started.append(run.id)
    for alert in alerts:
        if webhook:
            await post_alert(webhook, alert, client=client)
    return started


def run_start_instant(document: CampaignDocument, planned: datetime) -> datetime:
    """When the run planned at `planned` starts: a live campaign's at its start; a scheduled
    one's per schedule.start_instant (earlier when delivering in each user's zone)."""
    if document.type in LIVE_TYPES:
        return planned
    return schedule.start_instant(document.when, planned)


async def _start_live(session: AsyncSession, campaign: Campaign, now: datetime) -> None:
    """A live campaign's one run, `live` from its start (however late the engine comes: events
    from before it went live trigger nothing): nothing to materialize; it takes triggers until it
    is stopped or ends (services/campaigns/live/lifecycle.py). A date campaign's due times are
    backfilled by the engine."""
    planned = campaign.next_run_at
    if planned is None or planned > now:
        return
    run = await _insert_run(session, campaign, planned, state="live", reason=None, now=now)
    if run is not None:
        log.info("campaign %s (%s) is live", campaign_code(campaign.id), campaign.name)
    campaign.state, campaign.next_run_at, campaign.updated_at = "running", None, now


async def _start_campaign(session: AsyncSession, campaign: Campaign, now: datetime, grace: float,
                          alerts: list[SafetyAlert]) -> list[int]:
    document = await read_document(session, campaign.document)
    if document.type in LIVE_TYPES:
        await _start_live(session, campaign, now)
        return []
    started: list[int] = []
    planned = campaign.next_run_at
    while planned is not None and campaign.state in ("scheduled", "running"):
        start = schedule.start_instant(document.when, planned)
        if start > now:
            break
        # A run is late from its start instant, or from when the campaign was scheduled if that
        # came after (a user-time-zone run starts up to 26 h before its planned time: scheduled
        # inside that window it starts at once, and the zones already past count as late users).
        could_start = max(start, campaign.scheduled_at) if campaign.scheduled_at else start
        late = (now - could_start).total_seconds()
        if late > grace:
            reason = (f"missed: no engine ran at {start:%Y-%m-%d %H:%M} UTC; it started {_duration(late)} late, "
                      f"beyond the misfire grace of {_duration(grace)}")
            run = await _insert_run(session, campaign, planned, state="missed", reason=reason, now=now)
            if run is not None:
                log.warning("campaign %s run %d %s", campaign_code(campaign.id), run.number, reason)
        else:
            run = await _insert_run(session, campaign, planned, state="planned", reason=None, now=now)
            if run is not None and await _start_run(session, campaign, run, now, alerts):
                started.append(run.id)
        # A one-time campaign runs once (its "now" is the moment it was scheduled, which the
        # schedule would give again); any other next time must be later, or the loop would spin.
        following = (None if document.type == "one_time"
                     else schedule.next_occurrence(document.when, document.type, after=planned))
        planned = following if following is not None and following > planned else None
        campaign.next_run_at, campaign.updated_at = planned, now
    return started


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"


# --- settling ----------------------------------------------------------------------------------------


async def settle_runs(factory: async_sessionmaker[AsyncSession], *, now: datetime | None = None) -> list[int]:
    """Complete the running runs that are materialized and have nothing left to send; then a
    running campaign with no run left open goes back to `scheduled` when it has a next run, else
    `completed`. Returns the runs completed."""
    now = now or clock.now()
    async with factory() as session, session.begin():
        open_rows = exists().where(Message.run_id == CampaignRun.id, Message.state.in_(OPEN_MESSAGE_STATES))
        done = list(await session.scalars(
            select(CampaignRun.id).where(CampaignRun.state == "running", CampaignRun.materialized_at.is_not(None),
                                         ~open_rows)))
        if done:
            await session.execute(update(CampaignRun).where(CampaignRun.id.in_(done))
                                  .values(state="completed", finished_at=now, updated_at=now))
        open_runs = exists().where(CampaignRun.campaign_id == Campaign.id, CampaignRun.state.in_(OPEN_RUN_STATES))
        await session.execute(update(Campaign).where(Campaign.state == "running", Campaign.next_run_at.is_(None),
                                                     ~open_runs)
                              .values(state="completed", updated_at=now).execution_options(synchronize_session=False))
        await session.execute(update(Campaign).where(Campaign.state == "running", Campaign.next_run_at.is_not(None),
                                                     ~open_runs)
                              .values(state="scheduled", updated_at=now).execution_options(synchronize_session=False))
        await session.execute(update(Campaign).where(Campaign.state == "scheduled", Campaign.next_run_at.is_(None),
                                                     Campaign.deleted_at.is_(None), ~open_runs,
                                                     exists().where(CampaignRun.campaign_id == Campaign.id))
                              .values(state="completed", updated_at=now).execution_options(synchronize_session=False))
    return done


async def runs_to_resume(session: AsyncSession) -> list[int]:
    """Runs a killed engine left half-materialized."""
    return list(await session.scalars(
        select(CampaignRun.id).where(CampaignRun.state.in_(("materializing", "paused")),
                                     CampaignRun.materialized_at.is_(None)).order_by(CampaignRun.id)))
