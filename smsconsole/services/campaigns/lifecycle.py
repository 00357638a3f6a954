"""The lifecycle an operator drives: schedule, pause, resume and stop. Each is one transaction's
worth of set-based updates on the campaign, its runs and its outbox rows, with an audit entry;
the caller commits.

What each does to the outbox (the dispatcher also refuses, at claim, any row of a campaign that is
paused or stopped, so a row claimed a moment before still does not leave):
- pause: the campaign's `queued` rows become `held`; its materializing and running runs `paused`.
- resume: `held` rows become `queued` again; paused runs go back to `running` (or `materializing`
  when their materialization had not finished). A blocked campaign is checked strictly again
  (the operator has raised its safety limit), each `blocked` run goes back to `planned` and the
  campaign to `scheduled`: the engine (runs.start_due_runs) starts a planned run of a scheduled
  campaign whatever its age, running its safety check again. next_run_at is left as the engine
  advanced it (an edit while blocked plans it again).
- stop: `queued` and `held` rows become `suppressed` with reason "campaign stopped"; every open
  run is `stopped`; no further runs.

A live campaign (action, inaction, date) has one run, `live` while it takes triggers: pause makes
it `paused` (nothing triggers; its pending waits and due times stay pending), resume makes it
`live` again (what fell due more than the misfire grace ago meanwhile expires at the engine's next
tick instead of firing), stop ends its pending waits and due times ("campaign stopped").
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole import clock
from smsconsole.models import Campaign, CampaignRun, Message
from smsconsole.services.campaigns.definition import LIVE_TYPES
from smsconsole.services import audit
from smsconsole.services.campaigns.records import (
    OPEN_RUN_STATES,
    CampaignView,
    campaign_row,
    campaign_view,
    has_open_run,
    last_runs,
    strict_check,
)
from smsconsole.services.errors import Conflict, ValidationError

STOPPED_REASON = "campaign stopped"


async def _view(session: AsyncSession, row: Campaign) -> CampaignView:
    await session.flush()
    return campaign_view(row, (await last_runs(session, [row.id])).get(row.id))


async def _record(session: AsyncSession, actor: str, action: str, row: Campaign, **details: object) -> None:
    await audit.record(session, actor, f"campaign.{action}", row.name, code=f"C{row.id}", **details)


def _refuse(row: Campaign, action: str, hint: str) -> Conflict:
    return Conflict(f"campaign C{row.id} {row.name!r} is {row.state}: cannot {action} it; {hint}")


async def schedule_campaign(session: AsyncSession, ref: int | str, *, actor: str) -> CampaignView:
    """Check a draft strictly (naming every problem) and schedule its first run."""
    row = await campaign_row(session, ref, lock=True)
    if row.state != "draft":
        raise _refuse(row, "schedule", "only a draft can be scheduled (resume a paused one; duplicate a "
                      "stopped or completed one to send it again)")
    now = clock.now()
    parsed, upcoming, problems = await strict_check(session, row.document, campaign_id=row.id, now=now)
    if problems:
        raise ValidationError(problems)
    from smsconsole.services.compliance.preflight import PreflightBlocked, preflight_campaign  # compliance reads campaigns

    checked = await preflight_campaign(session, parsed, campaign_id=row.id, now=now, planned_at=upcoming)
    if checked.blocking:
        raise PreflightBlocked(checked)
    row.type, row.state, row.blocked_reason = parsed.type, "scheduled", None
    row.next_run_at, row.scheduled_at, row.updated_at = upcoming, now, now
    await _record(session, actor, "schedule", row, next_run_at=upcoming.isoformat() if upcoming else None)
    return await _view(session, row)


async def _move_messages(session: AsyncSession, campaign_id: int, states: tuple[str, ...], to: str, now: datetime,
                         **values: object) -> int:
    result = await session.execute(
        update(Message).where(Message.campaign_id == campaign_id, Message.state.in_(states))
        .values(state=to, updated_at=now, **values).execution_options(synchronize_session=False))
    return int(result.rowcount or 0)


async def _move_runs(session: AsyncSession, campaign_id: int, states: tuple[str, ...], now: datetime,
                     *conditions: object, **values: object) -> int:
    result = await session.execute(
        update(CampaignRun).where(CampaignRun.campaign_id == campaign_id, CampaignRun.state.in_(states), *conditions)
        .values(updated_at=now, **values).execution_options(synchronize_session=False))
    return int(result.rowcount or 0)


async def pause_campaign(session: AsyncSession, ref: int | str, *, actor: str) -> CampaignView:
    """Nothing of the campaign leaves until it resumes: queued rows held, runs paused, no new run."""
    row = await campaign_row(session, ref, lock=True)
    if row.state not in ("scheduled", "running"):
        raise _refuse(row, "pause", "only a scheduled or running campaign can be paused")
    now = clock.now()
    previous = row.state
    row.state, row.updated_at = "paused", now
    await session.flush()
    runs = await _move_runs(session, row.id, ("materializing", "running", "live"), now, state="paused")
    held = await _move_messages(session, row.id, ("queued",), "held", now)
    await _record(session, actor, "pause", row, previous=previous, runs_paused=runs, messages_held=held)
    return await _view(session, row)


async def resume_campaign(session: AsyncSession, ref: int | str, *, actor: str) -> CampaignView:
    """A paused campaign carries on where it was; a blocked one is checked again and its blocked
    run is planned again (the engine re-runs its safety check)."""
    row = await campaign_row(session, ref, lock=True)
    if row.state not in ("paused", "blocked"):
        raise _refuse(row, "resume", "only a paused or blocked campaign can be resumed")
    now = clock.now()
    previous = row.state
    details: dict[str, object] = {"previous": previous}
    if previous == "blocked":
        _, _, problems = await strict_check(session, row.document, campaign_id=row.id, now=now,
                                            need_next_run=False)
        if problems:
            raise ValidationError(problems)
        details["runs_replanned"] = await _move_runs(
            session, row.id, ("blocked",), now, state="planned", reason=None, started_at=None)
        row.state, row.blocked_reason = "scheduled", None
    else:
        resumed = 0
        if row.type in LIVE_TYPES:  # a live run that was taking triggers (an ended one, with its reason, drains)
            resumed = await _move_runs(session, row.id, ("paused",), now, CampaignRun.reason.is_(None), state="live")
        details["runs_resumed"] = resumed + (
            await _move_runs(session, row.id, ("paused",), now, CampaignRun.materialized_at.is_not(None),
                             state="running")
            + await _move_runs(session, row.id, ("paused",), now, state="materializing"))
        details["messages_queued"] = await _move_messages(session, row.id, ("held",), "queued", now)
        row.state = "running" if await has_open_run(session, row.id) else "scheduled"
    row.updated_at = now
    await _record(session, actor, "resume", row, **details)
    return await _view(session, row)


async def stop_campaign(session: AsyncSession, ref: int | str, *, actor: str) -> CampaignView:
    """No more runs and no more messages: what was waiting is suppressed ("campaign stopped")."""
    row = await campaign_row(session, ref, lock=True)
    if row.state not in ("scheduled", "running", "paused", "blocked"):
        raise _refuse(row, "stop", "only a scheduled, running, paused or blocked campaign can be stopped")
    await stop_row(session, row, actor=actor)
    return await _view(session, row)


async def stop_row(session: AsyncSession, row: Campaign, *, actor: str) -> None:
    now = clock.now()
    previous = row.state
    row.state, row.next_run_at, row.updated_at = "stopped", None, now
    await session.flush()
    runs = await _move_runs(session, row.id, OPEN_RUN_STATES, now, state="stopped", reason="stopped by an operator",
                            finished_at=now)
    suppressed = await _move_messages(session, row.id, ("queued", "held"), "suppressed", now,
                                      reason=STOPPED_REASON, finished_at=now)
    details: dict[str, object] = {}
    if row.type in LIVE_TYPES:
        from smsconsole.services.campaigns.live.lifecycle import end_pending  # lazy: the live package

        details["waits_ended"], details["due_ended"] = await end_pending(session, row.id, STOPPED_REASON, now=now)
    await _record(session, actor, "stop", row, previous=previous, runs_stopped=runs, messages_suppressed=suppressed,
                  **details)
