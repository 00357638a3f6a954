"""Provider groups: providers in priority order (at most ten) that the dispatcher fails over
through, optionally for some destination countries, one of them the default."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole import clock
from smsconsole.models import Provider as ProviderRow
from smsconsole.models import ProviderGroup, ProviderGroupMember
from smsconsole.phone import normalize_region
from smsconsole.services import audit
from smsconsole.services.errors import Conflict, NotFound, ValidationError

MAX_MEMBERS = 10
NAME_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
NAME_HELP = "must be 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit"


@dataclass(frozen=True)
class MemberView:
    """One provider of a group at its priority (1 = tried first), with its live health."""

    position: int
    provider_id: int
    provider_name: str
    kind: str
    enabled: bool
    health: str
    health_detail: str | None
    circuit_state: str
    circuit_until: datetime | None
    rate_limit: float | None
    sender_rate_limit: float | None

    def status(self, now: datetime | None = None) -> str:
        """disabled | out of rotation | probing | healthy | unhealthy | unknown."""
        now = now or clock.now()
        if not self.enabled:
            return "disabled"
        if self.circuit_state == "open":
            return "out of rotation" if self.circuit_until is None or self.circuit_until > now else "probing"
        if self.circuit_state == "half_open":
            return "probing"
        return self.health if self.health in ("healthy", "unhealthy") else "unknown"


@dataclass(frozen=True)
class GroupView:
    id: int
    name: str
    is_default: bool
    countries: tuple[str, ...]
    members: tuple[MemberView, ...]
    created_at: datetime
    updated_at: datetime

    @property
    def provider_names(self) -> list[str]:
        return [m.provider_name for m in self.members]


def parse_countries(value: str | Iterable[str] | None) -> list[str]:
    """Country codes as typed: a list, or one string separated by commas or spaces."""
    if value is None:
        return []
    items = re.split(r"[\s,;]+", value) if isinstance(value, str) else list(value)
    seen: list[str] = []
    for item in items:
        code = str(item).strip().upper()
        if code and code not in seen:
            seen.append(code)
    return seen


def parse_provider_names(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [item.strip() for item in items if item.strip()]


async def _rows(session: AsyncSession, group_ids: Sequence[int] | None = None) -> list[GroupView]:
    query = select(ProviderGroup).order_by(ProviderGroup.name)
    if group_ids is not None:
        query = query.where(ProviderGroup.id.in_(group_ids))
    groups = list(await session.scalars(query.execution_options(populate_existing=True)))
    if not groups:
        return []
    members = await session.execute(
        select(ProviderGroupMember.group_id, ProviderGroupMember.position, ProviderRow)
        .join(ProviderRow, ProviderRow.id == ProviderGroupMember.provider_id)
        .where(ProviderGroupMember.group_id.in_([g.id for g in groups]))
        .order_by(ProviderGroupMember.group_id, ProviderGroupMember.position)
        .execution_options(populate_existing=True)
    )
    by_group: dict[int, list[MemberView]] = {}
    for group_id, position, p in members.all():
        by_group.setdefault(group_id, []).append(MemberView(
            position, p.id, p.name, p.kind, p.enabled, p.health, p.health_detail, p.circuit_state,
            p.circuit_until, p.rate_limit, p.sender_rate_limit,
        ))
    return [
        GroupView(g.id, g.name, g.is_default, tuple(g.countries or ()), tuple(by_group.get(g.id, ())),
                  g.created_at, g.updated_at)
        for g in groups
    ]


async def list_groups(session: AsyncSession) -> list[GroupView]:
    """Every group by name, each with its members in priority order and their health now."""
    return await _rows(session)


async def _group_row(session: AsyncSession, name: str) -> ProviderGroup:
    row = await session.scalar(select(ProviderGroup).where(ProviderGroup.name == name))
    if row is None:
        raise NotFound(f"no group named {name!r}")
    return row


async def get_group(session: AsyncSession, name: str) -> GroupView:
    row = await _group_row(session, name)
    return (await _rows(session, [row.id]))[0]


async def groups_using_provider(session: AsyncSession, provider_id: int) -> list[str]:
    rows = await session.scalars(
        select(ProviderGroup.name).join(ProviderGroupMember, ProviderGroupMember.group_id == ProviderGroup.id)
        .where(ProviderGroupMember.provider_id == provider_id).order_by(ProviderGroup.name)
    )
    return list(rows)


async def _check(
    session: AsyncSession, *, group_id: int | None, name: str | None, providers: list[str] | None,
    countries: list[str] | None,
) -> dict[str, int]:
    """Every problem with the given fields at once; returns provider name → id."""
    problems: list[tuple[str, str]] = []
    if name is not None:
        if not name:
            problems.append(("name", "is required"))
        elif not NAME_RULE.fullmatch(name):
            problems.append(("name", NAME_HELP))
        else:
            other = await session.scalar(select(ProviderGroup.id).where(ProviderGroup.name == name))
            if other is not None and other != group_id:
                problems.append(("name", f"a group named {name!r} already exists"))
    ids: dict[str, int] = {}
    if providers is not None:
        duplicates = sorted({p for p in providers if providers.count(p) > 1})
        if not providers:
            problems.append(("providers", "add at least one provider"))
        elif len(providers) > MAX_MEMBERS:
            problems.append(("providers", f"a group holds at most {MAX_MEMBERS} providers; {len(providers)} given"))
        elif duplicates:
            problems.append(("providers", f"{', '.join(duplicates)} listed more than once"))
        else:
            found = await session.execute(select(ProviderRow.name, ProviderRow.id)
                                          .where(ProviderRow.name.in_(providers)))
            ids = {key: value for key, value in found.all()}
            if missing := [p for p in providers if p not in ids]:
                problems.append(("providers", f"no provider named {', '.join(map(repr, missing))}"))
    if countries is not None:
        bad = [c for c in countries if normalize_region(c) is None or len(c) != 2]
        if bad:
            problems.append(("countries", f"{', '.join(bad)}: not an ISO 3166 country code (e.g. IN, GB, US)"))
        else:
            taken: list[str] = []
            for other_name, other_countries in (await session.execute(
                select(ProviderGroup.name, ProviderGroup.countries).where(ProviderGroup.id != (group_id or -1))
                .order_by(ProviderGroup.name)
            )).all():
                shared = [c for c in countries if c in (other_countries or [])]
                if shared:
                    taken.append(f"{', '.join(shared)} already routed by group {other_name!r}")
            if taken:
                problems.append(("countries", "; ".join(taken) + " (a country belongs to one group)"))
    if problems:
        raise ValidationError(problems)
    return ids


async def _replace_members(session: AsyncSession, group_id: int, provider_ids: list[int]) -> None:
    # Core statements, in order: the unit of work would insert before it deletes and trip the
    # unique (group, position) key.
    await session.execute(delete(ProviderGroupMember).where(ProviderGroupMember.group_id == group_id))
    for position, provider_id in enumerate(provider_ids, start=1):
        session.add(ProviderGroupMember(group_id=group_id, provider_id=provider_id, position=position))
    await session.flush()


async def create_group(
    session: AsyncSession, *, name: str, providers: str | Iterable[str], countries: str | Iterable[str] | None = None,
    is_default: bool = False, actor: str,
) -> GroupView:
    """Create a group. The first group becomes the default; `is_default` moves the mark to it."""
    name = name.strip()
    provider_names = parse_provider_names(providers)
    codes = parse_countries(countries)
    ids = await _check(session, group_id=None, name=name, providers=provider_names, countries=codes)
    now = clock.now()
    first = await session.scalar(select(ProviderGroup.id).limit(1)) is None
    row = ProviderGroup(name=name, is_default=False, countries=codes, created_at=now, updated_at=now)
    session.add(row)
    try:
        await session.flush()
    except IntegrityError:
        raise ValidationError([("name", f"a group named {name!r} already exists")]) from None
    await _replace_members(session, row.id, [ids[p] for p in provider_names])
    if is_default or first:
        await _mark_default(session, row.id)
    await audit.record(session, actor, "group.create", name, providers=provider_names, countries=codes,
                       default=is_default or first)
    return (await _rows(session, [row.id]))[0]


async def update_group(
    session: AsyncSession, name: str, *, new_name: str | None = None, providers: str | Iterable[str] | None = None,
    countries: str | Iterable[str] | None = None, actor: str,
) -> GroupView:
    """Change what is given (None keeps it): the name, the members in priority order, the countries."""
    row = await _group_row(session, name)
    target = new_name.strip() if new_name is not None else None
    provider_names = parse_provider_names(providers) if providers is not None else None
    codes = parse_countries(countries) if countries is not None else None
    ids = await _check(session, group_id=row.id, name=target if target != row.name else None,
                       providers=provider_names, countries=codes)
    changed: dict[str, object] = {}
    if target is not None and target != row.name:
        changed["name"] = target
        row.name = target
    if codes is not None and codes != list(row.countries or []):
        changed["countries"] = codes
        row.countries = codes
    if provider_names is not None:
        current = (await _rows(session, [row.id]))[0].provider_names
        if provider_names != current:
            changed["providers"] = provider_names
            await _replace_members(session, row.id, [ids[p] for p in provider_names])
    if changed:
        row.updated_at = clock.now()
        await session.flush()
        await audit.record(session, actor, "group.update", name, **changed)
    return (await _rows(session, [row.id]))[0]


async def move_member(
    session: AsyncSession, name: str, provider: str, *, by: int | None = None, to: int | None = None, actor: str,
) -> GroupView:
    """Move one member up (by=-1), down (by=+1) or to a priority (to=1 is first), clamped to the list."""
    view = await get_group(session, name)
    order = view.provider_names
    if provider not in order:
        listed = ", ".join(order)
        raise ValidationError([("provider", f"{provider!r} is not in group {name!r}; its providers: {listed}")])
    if (by is None) == (to is None):
        raise ValidationError([("position", "give either a step (up/down) or a position")])
    index = order.index(provider)
    if to is not None:
        if not 1 <= to <= len(order):
            raise ValidationError([("position", f"must be between 1 and {len(order)}")])
        target = to - 1
    else:
        target = max(0, min(len(order) - 1, index + (by or 0)))
    if target == index:
        return view
    order.insert(target, order.pop(index))
    return await update_group(session, name, providers=order, actor=actor)


async def _mark_default(session: AsyncSession, group_id: int) -> None:
    # One statement: no moment with two defaults, whatever else runs.
    await session.execute(
        update(ProviderGroup).values(is_default=ProviderGroup.id == group_id)
        .execution_options(synchronize_session=False)
    )


async def set_default_group(session: AsyncSession, name: str, *, actor: str) -> GroupView:
    """Make this the default group (messages with no group and no country group use it)."""
    row = await _group_row(session, name)
    if not row.is_default:
        await _mark_default(session, row.id)
        await audit.record(session, actor, "group.default", name)
    return (await _rows(session, [row.id]))[0]


async def delete_group(session: AsyncSession, name: str, *, actor: str) -> None:
    """Delete a group. The default one goes only when it is the last group, so there is always one
    default while groups exist; its queued messages are routed as if they named no group."""
    row = await _group_row(session, name)
    if row.is_default:
        others = list(await session.scalars(
            select(ProviderGroup.name).where(ProviderGroup.id != row.id).order_by(ProviderGroup.name)
        ))
        if others:
            raise Conflict(f"group {name!r} is the default; make another group the default first "
                           f"({', '.join(others)})")
    await session.execute(delete(ProviderGroupMember).where(ProviderGroupMember.group_id == row.id))
    await session.delete(row)
    await session.flush()
    await audit.record(session, actor, "group.delete", name)
