"""Campaigns as an operator keeps them: create a draft, change it, check it, duplicate, delete,
list and read them with their runs. The lifecycle (schedule, pause, resume, stop) is in
lifecycle.py and importable from here. A campaign is found by its id (12), Campaign ID (C12) or
name; every change is audited; the caller commits."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole import clock
from smsconsole.models import Campaign, CampaignRun
from smsconsole.services import audit
from smsconsole.services.campaigns.definition import CAMPAIGN_TYPES, LIVE_TYPES
from smsconsole.services.campaigns.lifecycle import (
    STOPPED_REASON,
    pause_campaign,
    resume_campaign,
    schedule_campaign,
    stop_campaign,
    stop_row,
)
from smsconsole.services.campaigns.records import (
    ACTIVE_STATES,
    NAME_LIMIT,
    CampaignView,
    RunView,
    campaign_row,
    campaign_view,
    has_open_run,
    last_runs,
    name_problems,
    parse,
    run_counts,
    run_view,
    storable,
    strict_check,
)
from smsconsole.services.errors import Conflict, ValidationError

__all__ = [
    "NAME_LIMIT", "STOPPED_REASON", "CampaignView", "RunView", "check_campaign", "create_campaign",
    "delete_campaign", "duplicate_campaign", "get_campaign", "list_campaigns", "list_runs", "pause_campaign",
    "resume_campaign", "schedule_campaign", "stop_campaign", "update_campaign", "upcoming_runs",
]

FINISHED_STATES = ("stopped", "completed")
LIVE_TYPES_SET = frozenset(LIVE_TYPES)


def _type_of(document: dict[str, Any]) -> str:
    kind = document.get("type")
    kind = kind.strip().lower() if isinstance(kind, str) else kind
    return kind if kind in CAMPAIGN_TYPES else "one_time"


async def _flush(session: AsyncSession, name: str) -> None:
    try:
        await session.flush()
    except IntegrityError:  # another session took the name between the check and the write
        raise ValidationError([("name", f"a campaign named {name!r} already exists")]) from None


async def _view(session: AsyncSession, row: Campaign) -> CampaignView:
    return campaign_view(row, (await last_runs(session, [row.id])).get(row.id))


async def _record(session: AsyncSession, actor: str, action: str, row: Campaign, **details: Any) -> None:
    await audit.record(session, actor, f"campaign.{action}", row.name, code=f"C{row.id}", **details)


async def create_campaign(session: AsyncSession, document: Any, *, actor: str) -> CampaignView:
    """A draft with whatever was filled in; only the name must be valid and free."""
    saved = storable(document)
    problems = await name_problems(session, saved.get("name"))
    if problems:
        raise ValidationError(problems)
    now = clock.now()
    row = Campaign(name=saved["name"], type=_type_of(saved), state="draft", document=saved, created_by=actor,
                   created_at=now, updated_at=now)
    session.add(row)
    await _flush(session, row.name)
    await _record(session, actor, "create", row)
    return campaign_view(row)


async def update_campaign(session: AsyncSession, ref: int | str, document: Any, *, actor: str) -> CampaignView:
    """Replace a campaign's document. A draft keeps whatever was filled in; a campaign that is
    scheduled (or running, paused, blocked) is checked strictly again and its next run planned
    again from now. Runs already started keep the document they started with."""
    row = await campaign_row(session, ref, lock=True)
    if row.state in FINISHED_STATES:
        raise Conflict(f"campaign C{row.id} {row.name!r} is {row.state}: it cannot be changed; duplicate it "
                       "to send it again")
    saved = storable(document)
    if row.state == "draft":
        problems = await name_problems(session, saved.get("name"), row.id)
        if problems:
            raise ValidationError(problems)
    else:
        need_next_run = not await has_open_run(session, row.id)
        _, upcoming, problems = await strict_check(session, saved, campaign_id=row.id, now=clock.now(),
                                                   need_next_run=need_next_run)
        if _type_of(saved) != row.type and LIVE_TYPES_SET & {row.type, _type_of(saved)}:
            problems.insert(0, ("type", (f"a {row.state} campaign cannot change between {row.type} and "
                                         f"{_type_of(saved)}; duplicate it and schedule the copy")))
        if problems:
            raise ValidationError(problems)
        row.next_run_at = upcoming
    changed = sorted(key for key in set(saved) | set(row.document or {}) if saved.get(key) != (row.document or {}).get(key))
    if changed:
        previous, before = row.name, row.document
        row.name, row.type, row.document, row.updated_at = saved["name"], _type_of(saved), saved, clock.now()
        await _flush(session, row.name)
        if row.type in LIVE_TYPES_SET:  # the live run takes the new trigger and body from now on
            await session.execute(
                update(CampaignRun).where(CampaignRun.campaign_id == row.id,
                                          CampaignRun.state.in_(("live", "paused", "running")))
                .values(document=saved, updated_at=row.updated_at).execution_options(synchronize_session=False))
            if row.type == "date" and row.state != "draft":  # due times follow a changed date rule
                from smsconsole.services.campaigns.live.due import on_document_changed

                await on_document_changed(session, row.id, before, saved, now=row.updated_at)
        await _record(session, actor, "update", row, fields=changed,
                      **({"previous_name": previous} if previous != row.name else {}))
    return await _view(session, row)


async def check_campaign(session: AsyncSession, ref: int | str) -> list[tuple[str, str]]:
    """What scheduling would refuse, without changing anything ([] when it is ready)."""
    row = await campaign_row(session, ref)
    _, _, problems = await strict_check(session, row.document, campaign_id=row.id, now=clock.now())
    return problems


async def duplicate_campaign(session: AsyncSession, ref: int | str, *, new_name: str | None = None,
                             actor: str) -> CampaignView:
    """A new draft with the same document, named `new_name` or "Copy of NAME" ("Copy of NAME (2)", …)."""
    row = await campaign_row(session, ref)
    if new_name is None:
        number = 1
        while True:
            suffix = "" if number == 1 else f" ({number})"
            new_name = f"Copy of {row.name}"[:NAME_LIMIT - len(suffix)] + suffix
            if not await name_problems(session, new_name):
                break
            number += 1
    saved = storable({**(row.document or {}), "name": new_name})
    problems = await name_problems(session, new_name)
    if problems:
        raise ValidationError(problems)
    now = clock.now()
    copy = Campaign(name=saved["name"], type=row.type, state="draft", document=saved, created_by=actor,
                    created_at=now, updated_at=now)
    session.add(copy)
    await _flush(session, copy.name)
    await _record(session, actor, "duplicate", copy, source=f"C{row.id}")
    return campaign_view(copy)


async def delete_campaign(session: AsyncSession, ref: int | str, *, actor: str) -> None:
    """Soft delete: the campaign leaves every list and its name is free again, while its runs and
    sent messages keep their history and Campaign ID. An active campaign is stopped first."""
    row = await campaign_row(session, ref, lock=True)
    if row.state in ACTIVE_STATES:
        await stop_row(session, row, actor=actor)
    row.deleted_at = row.updated_at = clock.now()
    await session.flush()
    await _record(session, actor, "delete", row, state=row.state)


async def list_campaigns(session: AsyncSession) -> list[CampaignView]:
    """Campaigns that are not deleted, oldest first, each with its latest run."""
    rows = list(await session.scalars(select(Campaign).where(Campaign.deleted_at.is_(None)).order_by(Campaign.id)))
    latest = await last_runs(session, [row.id for row in rows])
    return [campaign_view(row, latest.get(row.id)) for row in rows]


async def get_campaign(session: AsyncSession, ref: int | str) -> CampaignView:
    return await _view(session, await campaign_row(session, ref))


async def list_runs(session: AsyncSession, ref: int | str, *, limit: int | None = None) -> list[RunView]:
    """A campaign's runs, newest first, with their message counts."""
    row = await campaign_row(session, ref)
    query = select(CampaignRun).where(CampaignRun.campaign_id == row.id).order_by(CampaignRun.number.desc())
    runs = list(await session.scalars(query.limit(limit) if limit else query))
    counts = await run_counts(session, [run.id for run in runs])
    return [run_view(run, counts) for run in runs]


async def upcoming_runs(session: AsyncSession, ref: int | str, *, limit: int = 5) -> list[datetime]:
    """The next planned run times (UTC) of a campaign that will still run, or of a draft whose
    When is complete; [] otherwise."""
    from smsconsole.services.campaigns.schedule import occurrences

    row = await campaign_row(session, ref)
    if row.state in FINISHED_STATES:
        return []
    parsed, problems = await parse(session, row.document, strict=True)
    if any(field == "type" or field.startswith("when") for field, _ in problems):
        return []
    if row.state == "draft":
        return occurrences(parsed.when, parsed.type, after=clock.now(), limit=limit)
    if row.next_run_at is None:
        return []
    if parsed.type == "one_time":
        return [row.next_run_at]
    return occurrences(parsed.when, parsed.type, after=row.next_run_at - timedelta(microseconds=1), limit=limit)
