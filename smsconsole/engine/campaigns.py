"""The campaign scheduler the lease holder runs: an APScheduler (3.x) AsyncIOScheduler with one
date job per scheduled campaign at its next start instant. The database is the truth: the jobs are
rebuilt from it when the engine takes the lease, every REBUILD_SECONDS, and within SETTLE_SECONDS
of any change to the campaigns table (the CLI or a console scheduled, paused or edited one). A job
starts the due runs (services.campaigns.runs.start_due_runs), materializes each new run in a task
and pokes the dispatcher as rows arrive. Runs a killed engine left `materializing` resume on start;
finished runs are settled every SETTLE_SECONDS.

Live campaigns: a job starts a live campaign's one run (state `live`) at its start; the live tick,
every LIVE_TICK_SECONDS, fires the inaction waits that ran out, resolves and fires the date
campaigns' due times, and ends the live campaigns whose end time passed or whose target limit was
reached (services/campaigns/live/); it pokes the dispatcher when it queued anything. A date
campaign's due times are backfilled in a task when its run goes live, and again (idempotently,
resuming) whenever the engine takes the lease.

Rollups: every COMPACT_SECONDS the lease holder folds the rollups' per-transaction slots
(PostgreSQL) into one row per key and drops rows that sum to nothing (services/rollups.compact), so
the Home, Stats and report reads stay a few hundred rows however busy the day was.

Conversions: every conversions.SWEEP_SECONDS the lease holder attributes again the events recorded
in the last two intervals (conversions.RecentSweep): an event that arrived while its message's
send was not yet committed converts all the same."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import httpx
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsconsole import clock
from smsconsole.models import Campaign, CampaignRun
from smsconsole.services.campaigns.conversions import SWEEP_SECONDS, RecentSweep
from smsconsole.services.campaigns.live.common import LiveCampaign, live_campaigns
from smsconsole.services.campaigns.live.lifecycle import settle_live
from smsconsole.services.campaigns.live.waits import fire_due_waits
from smsconsole.services.campaigns.materialize import DEFAULT_CHUNK, materialize_run, read_document
from smsconsole.services.campaigns.runs import run_start_instant, runs_to_resume, settle_runs, start_due_runs
from smsconsole.services.rollups import compact

log = logging.getLogger("smsconsole.engine.campaigns")
# APScheduler logs every job it runs at INFO: the settle job alone would add a line every few seconds.
logging.getLogger("apscheduler").setLevel(logging.WARNING)


class _SkippedLiveTick(logging.Filter):
    """A live tick still running when the next is due is simply skipped (the next one catches up):
    not worth APScheduler's warning every second."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("live_tick" in message and "maximum number of running instances" in message)


logging.getLogger("apscheduler.scheduler").addFilter(_SkippedLiveTick())

REBUILD_SECONDS = 30.0
SETTLE_SECONDS = 3.0
LIVE_TICK_SECONDS = 1.0
COMPACT_SECONDS = 5.0
LIVE_ERROR_EVERY = 60.0  # seconds between log lines of a live tick that keeps failing
PLANNED_RETRY = 10.0  # seconds between ticks asked for by runs still planned
JOB_PREFIX = "campaign-"


class CampaignScheduler:
    def __init__(self, factory: async_sessionmaker[AsyncSession], *, poke: Callable[[], None] | None = None,
                 client: httpx.AsyncClient | None = None, chunk: int = DEFAULT_CHUNK,
                 rebuild_seconds: float = REBUILD_SECONDS, settle_seconds: float = SETTLE_SECONDS,
                 live_tick_seconds: float = LIVE_TICK_SECONDS, compact_seconds: float = COMPACT_SECONDS) -> None:
        self.factory = factory
        self.poke = poke or (lambda: None)
        self.client = client
        self.chunk = chunk
        self.rebuild_seconds = rebuild_seconds
        self.settle_seconds = settle_seconds
        self.live_tick_seconds = live_tick_seconds
        self.compact_seconds = compact_seconds
        self._backfilling: set[int] = set()  # live date runs whose due times a task is writing
        self._live_error_at: dict[str, float] = {}
        self._scheduler: AsyncIOScheduler | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._materializing: set[int] = set()
        self._tick_lock = asyncio.Lock()
        self._stopped = False
        self._last_change: tuple[object, ...] | None = None  # campaigns' latest updated_at and count
        self._planned_tick_at: datetime | None = None  # when planned runs last asked for a tick
        self._conversion_sweep = RecentSweep()

    @property
    def running(self) -> bool:
        return self._scheduler is not None and self._scheduler.running

    def job_times(self) -> dict[int, datetime]:
        """Campaign id -> when its job fires (for tests and the status line)."""
        if self._scheduler is None:
            return {}
        return {int(job.id.removeprefix(JOB_PREFIX)): job.next_run_time for job in self._scheduler.get_jobs()
                if job.id.startswith(JOB_PREFIX) and job.next_run_time is not None}

    async def start(self) -> None:
        """Resume half-materialized runs, start what fell due while no engine ran, build the jobs."""
        scheduler = AsyncIOScheduler(timezone=UTC, event_loop=asyncio.get_running_loop(),
                                     job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None})
        scheduler.add_job(self.rebuild, "interval", seconds=self.rebuild_seconds, id="campaigns-rebuild")
        scheduler.add_job(self.settle, "interval", seconds=self.settle_seconds, id="campaigns-settle")
        scheduler.add_job(self.live_tick, "interval", seconds=self.live_tick_seconds, id="campaigns-live")
        scheduler.add_job(self.compact_rollups, "interval", seconds=self.compact_seconds, id="rollups-compact")
        scheduler.add_job(self.sweep_conversions, "interval", seconds=SWEEP_SECONDS, id="conversions-sweep")
        scheduler.start()
        self._scheduler = scheduler
        async with self.factory() as session:
            for run_id in await runs_to_resume(session):
                log.info("resuming the materialization of campaign run %s", run_id)
                self._spawn(run_id)
        await self.tick()

    async def stop(self) -> None:
        """Stop firing jobs and end the materializations in flight (they resume from their cursor)."""
        self._stopped = True
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=False)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def tick(self) -> list[int]:
        """Start the runs that are due, materialize them in tasks, and rebuild the jobs."""
        async with self._tick_lock:
            if self._stopped:  # a job already in flight when the lease was lost
                return []
            try:
                started = await start_due_runs(self.factory, now=clock.now(), client=self.client)
            except Exception:
                log.exception("starting due campaign runs failed; retrying at the next rebuild")
                started = []
            for run_id in started:
                self._spawn(run_id)
            await self.rebuild()
            return started

    async def rebuild(self) -> None:
        """One date job per scheduled or running campaign with a next run, at its start instant;
        and any run left half-materialized that no task is writing is taken up again."""
        scheduler = self._scheduler
        if scheduler is None:
            return
        try:
            async with self.factory() as session:
                rows = (await session.execute(
                    select(Campaign.id, Campaign.document, Campaign.next_run_at)
                    .where(Campaign.state.in_(("scheduled", "running")), Campaign.deleted_at.is_(None),
                           Campaign.next_run_at.is_not(None)))).all()
                wanted: dict[str, datetime] = {}
                for campaign_id, document, next_run_at in rows:
                    parsed = await read_document(session, document)
                    wanted[f"{JOB_PREFIX}{campaign_id}"] = run_start_instant(parsed, next_run_at)
                stalled = [run_id for run_id in await runs_to_resume(session) if run_id not in self._materializing]
                # a run put back to `planned` (a blocked campaign resumed after its limit was raised,
                # a run paused before its rows were written) has no date job: start it now
                planned = await session.scalar(
                    select(func.count()).select_from(CampaignRun).join(Campaign, Campaign.id == CampaignRun.campaign_id)
                    .where(CampaignRun.state == "planned", Campaign.state.in_(("scheduled", "running")),
                           Campaign.deleted_at.is_(None)))
        except Exception:
            log.exception("rebuilding the campaign jobs failed; keeping the current ones")
            return
        for run_id in stalled:  # a materialization that failed (a database error) tries again
            log.info("resuming the materialization of campaign run %s", run_id)
            self._spawn(run_id)
        await self._spawn_backfills()
        now = datetime.now(UTC)
        if planned and (self._planned_tick_at is None or (now - self._planned_tick_at).total_seconds() >= PLANNED_RETRY):
            self._planned_tick_at = now  # at most one such tick per PLANNED_RETRY, should a run stay planned
            scheduler.add_job(self.tick, "date", run_date=now, id="campaigns-planned", replace_existing=True)
        for job in scheduler.get_jobs():
            if job.id.startswith(JOB_PREFIX) and job.id not in wanted:
                job.remove()
        for job_id, start in wanted.items():
            run_date = max(start, now)
            existing = scheduler.get_job(job_id)
            if existing is not None and existing.next_run_time == run_date:
                continue
            scheduler.add_job(self.tick, "date", run_date=run_date, id=job_id, replace_existing=True)

    async def settle(self) -> None:
        """Settle finished runs; and rebuild at once when a campaign changed (the CLI or a console
        scheduled one to run now), rather than at the next 30-second rebuild."""
        try:
            await settle_runs(self.factory, now=clock.now())
            async with self.factory() as session:
                change = tuple((await session.execute(select(func.max(Campaign.updated_at), func.count())
                                                      .select_from(Campaign))).one())
        except Exception:
            log.exception("settling campaign runs failed")
            return
        if change != self._last_change:
            self._last_change = change
            await self.rebuild()

    async def compact_rollups(self) -> int:
        """Fold the rollups' slots and drop their zero rows (one transaction); the delta rows folded."""
        if self._stopped:
            return 0
        try:
            async with self.factory() as session, session.begin():
                return await compact(session)
        except Exception:
            self._live_error("compacting the rollups")
            return 0

    async def sweep_conversions(self) -> int:
        """Attribute the recently recorded events again (the send race); the conversions written."""
        if self._stopped:
            return 0
        try:
            return await self._conversion_sweep(self.factory, now=clock.now())
        except Exception:
            self._live_error("re-attributing recent conversion events")
            return 0

    def _spawn(self, run_id: int) -> None:
        if run_id in self._materializing or self._stopped:
            return
        self._materializing.add(run_id)
        task = asyncio.create_task(self._materialize(run_id), name=f"campaign-run-{run_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _materialize(self, run_id: int) -> None:
        try:
            await materialize_run(self.factory, run_id, chunk=self.chunk, on_chunk=lambda _: self.poke())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("materializing campaign run %s failed; it resumes when the engine restarts", run_id)
        finally:
            self._materializing.discard(run_id)
            with contextlib.suppress(Exception):
                self.poke()

    # --- live campaigns ---------------------------------------------------------------------------

    async def live_tick(self) -> int:
        """Fire the due inaction waits, resolve and fire the date campaigns' due times, end the
        live campaigns that are over; poke the dispatcher when anything was queued. Returns the
        messages queued."""
        if self._stopped:
            return 0
        now = clock.now()
        queued = 0
        try:
            queued += (await fire_due_waits(self.factory, now=now)).queued
        except Exception:
            self._live_error("firing due inaction waits")
        try:
            queued += await self._fire_due_dates(now)
        except Exception:
            self._live_error("firing the date campaigns' due times")
        try:
            await settle_live(self.factory, now)
        except Exception:
            self._live_error("ending live campaigns")
        if queued:
            self.poke()
        return queued

    async def _fire_due_dates(self, now: datetime) -> int:
        due = _due_module()
        resolve, fire = getattr(due, "resolve_due", None), getattr(due, "fire_due", None)
        if resolve is None or fire is None:
            return 0
        async with self.factory() as session, session.begin():
            await resolve(session, now=now)
        async with self.factory() as session, session.begin():
            outcome = await fire(session, now=now)
        return _queued(outcome)

    def _live_error(self, what: str) -> None:
        moment = asyncio.get_running_loop().time()
        if moment - self._live_error_at.get(what, -LIVE_ERROR_EVERY) >= LIVE_ERROR_EVERY:
            self._live_error_at[what] = moment
            log.exception("%s failed; the live tick tries again every %s s", what, self.live_tick_seconds)

    async def _spawn_backfills(self) -> None:
        """A backfill task for each live date campaign whose due times this tenure has not written."""
        backfill = getattr(_due_module(), "backfill_due", None)
        if backfill is None or self._stopped:
            return
        try:
            async with self.factory() as session:
                found = await live_campaigns(session, types=("date",), include_paused=True)
        except Exception:
            log.exception("finding the date campaigns to backfill failed; retrying at the next rebuild")
            return
        for live in found:
            if live.run_id in self._backfilling:  # a finished backfill returns at once (an edit can restart it)
                continue
            self._backfilling.add(live.run_id)
            task = asyncio.create_task(self._backfill(backfill, live), name=f"campaign-backfill-{live.run_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _backfill(self, backfill: Callable[..., Awaitable[object]], live: LiveCampaign) -> None:
        try:
            await backfill(self.factory, live)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("backfilling the due times of campaign %s failed; retrying at the next rebuild",
                          live.campaign_id)
        finally:
            self._backfilling.discard(live.run_id)


def _due_module() -> object:
    """services/campaigns/live/due.py (the date campaigns), when it is there."""
    try:
        from smsconsole.services.campaigns.live import due
    except ImportError:
        return None
    return due


def _queued(outcome: object) -> int:
    """How many messages a due-time firing queued, whatever it answers (a count, or a result)."""
    if isinstance(outcome, bool):
        return int(outcome)
    if isinstance(outcome, int):
        return outcome
    value = getattr(outcome, "queued", None)
    if value is None and isinstance(outcome, dict):
        value = outcome.get("queued")
    return int(value) if isinstance(value, int) else (1 if outcome else 0)
