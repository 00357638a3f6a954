"""Saved segments: create, change, copy, delete and read them by name. Names are unique; every
change is audited; the caller commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole import clock
from smsconsole.models import Campaign, Segment
from smsconsole.services import audit
from smsconsole.services.errors import Conflict, NotFound, ValidationError
from smsconsole.services.segments.definition import SegmentDefinition
from smsconsole.services.segments.descriptions import describe_definition
from smsconsole.services.segments.parser import check_definition

NAME_LIMIT = 120


@dataclass(frozen=True)
class SegmentView:
    id: int
    name: str
    description: str | None
    definition: dict[str, Any]
    summary: str
    created_at: datetime
    updated_at: datetime


def _view(row: Segment) -> SegmentView:
    definition = dict(row.definition or {})
    return SegmentView(row.id, row.name, row.description, definition, describe_definition(definition),
                       row.created_at, row.updated_at)


async def campaigns_using_segment(session: AsyncSession, segment_id: int) -> list[str]:
    """Names of the campaigns that are not deleted, in a state that still sends (scheduled,
    running, paused, blocked) and whose audience (`who.segment`) names this segment; a segment
    they use cannot be deleted."""
    name = await session.scalar(select(Segment.name).where(Segment.id == segment_id))
    if name is None:
        return []
    rows = await session.scalars(
        select(Campaign.name).where(Campaign.deleted_at.is_(None),
                                    Campaign.state.in_(("scheduled", "running", "paused", "blocked")),
                                    Campaign.document["who"]["segment"].as_string() == name)
        .order_by(Campaign.name))
    return list(rows)


def _check_name(name: str, problems: list[tuple[str, str]]) -> str:
    name = (name or "").strip()
    if not name:
        problems.append(("name", "is required"))
    elif len(name) > NAME_LIMIT:
        problems.append(("name", f"is longer than {NAME_LIMIT} characters"))
    return name


async def _name_taken(session: AsyncSession, name: str, except_id: int | None = None) -> bool:
    query = select(Segment.id).where(Segment.name == name)
    if except_id is not None:
        query = query.where(Segment.id != except_id)
    return await session.scalar(query) is not None


async def _validated(session: AsyncSession, name: str, definition: Any, except_id: int | None = None,
                     ) -> tuple[str, SegmentDefinition | None]:
    """The name and definition checked together, so one ValidationError carries both."""
    problems: list[tuple[str, str]] = []
    name = _check_name(name, problems)
    if name and not problems and await _name_taken(session, name, except_id):
        problems.append(("name", f"a segment named {name!r} already exists"))
    checked = None
    if definition is not None:
        try:
            checked = await check_definition(session, definition)
        except ValidationError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ValidationError(problems)
    return name, checked


async def _row(session: AsyncSession, name: str) -> Segment:
    row = await session.scalar(select(Segment).where(Segment.name == name.strip()))
    if row is None:
        raise NotFound(f"no segment named {name!r}")
    return row


async def _flush(session: AsyncSession, name: str) -> None:
    try:
        await session.flush()
    except IntegrityError:
        raise ValidationError([("name", f"a segment named {name!r} already exists")]) from None


async def create_segment(session: AsyncSession, *, name: str, definition: Any, description: str | None = None,
                         actor: str) -> SegmentView:
    name, checked = await _validated(session, name, definition)
    assert checked is not None
    now = clock.now()
    row = Segment(name=name, description=(description or "").strip() or None, definition=checked.document,
                  created_at=now, updated_at=now)
    session.add(row)
    await _flush(session, name)
    await audit.record(session, actor, "segment.create", name)
    return _view(row)


async def update_segment(session: AsyncSession, name: str, *, definition: Any = None, new_name: str | None = None,
                         description: str | None = None, actor: str) -> SegmentView:
    """Change a segment's definition, name or description (None leaves each as it is; an empty
    description clears it)."""
    row = await _row(session, name)
    target, checked = await _validated(session, new_name if new_name is not None else row.name, definition, row.id)
    changed = []
    if checked is not None and checked.document != row.definition:
        row.definition, changed = checked.document, [*changed, "definition"]
    if target != row.name:
        row.name, changed = target, [*changed, "name"]
    if description is not None and (description.strip() or None) != row.description:
        row.description, changed = description.strip() or None, [*changed, "description"]
    if changed:
        row.updated_at = clock.now()
        await _flush(session, target)
        await audit.record(session, actor, "segment.update", target, fields=changed, previous_name=name.strip())
    return _view(row)


async def duplicate_segment(session: AsyncSession, name: str, *, new_name: str | None = None,
                            actor: str) -> SegmentView:
    """A copy under `new_name`, or "NAME (copy)", "NAME (copy 2)", … when none is given."""
    row = await _row(session, name)
    if new_name is None:
        number = 1
        while True:
            suffix = " (copy)" if number == 1 else f" (copy {number})"
            new_name = row.name[:NAME_LIMIT - len(suffix)] + suffix
            if not await _name_taken(session, new_name):
                break
            number += 1
    target, _ = await _validated(session, new_name, None)
    now = clock.now()
    copy = Segment(name=target, description=row.description, definition=dict(row.definition), created_at=now,
                   updated_at=now)
    session.add(copy)
    await _flush(session, target)
    await audit.record(session, actor, "segment.duplicate", target, source=row.name)
    return _view(copy)


async def delete_segment(session: AsyncSession, name: str, *, actor: str) -> None:
    row = await _row(session, name)
    users = await campaigns_using_segment(session, row.id)
    if users:
        raise Conflict(f"segment {row.name!r} is used by scheduled campaign(s) {', '.join(users)}; "
                       "change or stop them first")
    await session.delete(row)
    await audit.record(session, actor, "segment.delete", row.name)


async def list_segments(session: AsyncSession) -> list[SegmentView]:
    rows = await session.scalars(select(Segment).order_by(Segment.name))
    return [_view(row) for row in rows]


async def get_segment(session: AsyncSession, name: str) -> SegmentView:
    return _view(await _row(session, name))
