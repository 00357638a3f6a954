"""What a segment can refer to: built-in fields, profile properties and events with their types,
read from the database (PropertyDef rows and the events recorded)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole.models import Event, PropertyDef
from smsconsole.services.profiles import SUBSCRIPTION_STATES
from smsconsole.services.segments.definition import MAX_CONDITIONS
from smsconsole.services.segments.operators import COUNT_OPS, OPERATORS

FIELDS: dict[str, str] = {
    "user_id": "string", "name": "string", "country": "string", "timezone": "string", "created_at": "date",
}


@dataclass(frozen=True)
class PropertyInfo:
    name: str
    type: str
    operators: tuple[str, ...]


@dataclass(frozen=True)
class EventInfo:
    name: str
    properties: tuple[PropertyInfo, ...]


@dataclass(frozen=True)
class SegmentCatalog:
    """What a segment can refer to: the builder's choices and the validator's reference."""

    fields: tuple[PropertyInfo, ...]
    properties: tuple[PropertyInfo, ...]
    events: tuple[EventInfo, ...]
    count_operators: tuple[str, ...] = COUNT_OPS
    subscription_states: tuple[str, ...] = SUBSCRIPTION_STATES

    def property_types(self) -> dict[str, str]:
        return {p.name: p.type for p in self.properties}

    def event_property_types(self, event: str) -> dict[str, str]:
        return next(({p.name: p.type for p in e.properties} for e in self.events if e.name == event), {})

    def event_names(self) -> set[str]:
        return {e.name for e in self.events}


def _info(name: str, type_: str) -> PropertyInfo:
    return PropertyInfo(name, type_, OPERATORS.get(type_, ()))


def catalog_from(profile_types: Mapping[str, str], events: Mapping[str, Mapping[str, str]]) -> SegmentCatalog:
    """A catalog from plain mappings (property → type; event → its property types)."""
    return SegmentCatalog(
        fields=tuple(_info(n, t) for n, t in FIELDS.items()),
        properties=tuple(_info(n, t) for n, t in sorted(profile_types.items())),
        events=tuple(EventInfo(name, tuple(_info(n, t) for n, t in sorted(types.items())))
                     for name, types in sorted(events.items())),
    )


async def event_names(session: AsyncSession) -> list[str]:
    """Distinct event names, by a skip scan of ix_events_name_profile_at: one index seek per
    name, so it stays cheap with millions of events."""
    names = select(func.min(Event.name).label("name")).cte("event_names", recursive=True)
    following = select(func.min(Event.name)).where(Event.name > names.c.name).scalar_subquery()
    names = names.union_all(select(following).where(names.c.name.is_not(None)))
    rows = await session.scalars(select(names.c.name).where(names.c.name.is_not(None)))
    return list(rows)


async def _declared_types(session: AsyncSession) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """Profile property types, and each event's property types, as the PropertyDef rows declare them."""
    rows = (await session.execute(select(PropertyDef.scope, PropertyDef.name, PropertyDef.type))).all()
    profile_types = {name: type_ for scope, name, type_ in rows if scope == "profile"}
    events: dict[str, dict[str, str]] = {}
    for scope, name, type_ in rows:
        if scope.startswith("event:"):
            events.setdefault(scope[len("event:"):], {})[name] = type_
    return profile_types, events


async def segment_catalog(session: AsyncSession) -> SegmentCatalog:
    """Built-in fields, profile properties with types, event names and their property types."""
    profile_types, declared = await _declared_types(session)
    events: dict[str, dict[str, str]] = {name: {} for name in await event_names(session)}
    events.update(declared)
    return catalog_from(profile_types, events)


def _event_names_in(node: Any, found: set[str]) -> set[str]:
    """Event names a raw (unvalidated) definition mentions."""
    if isinstance(node, Mapping):
        if isinstance(node.get("event"), str):
            found.add(node["event"])
        _event_names_in(node.get("conditions"), found)
    elif isinstance(node, list):
        for item in node:
            _event_names_in(item, found)
    return found


async def catalog_for(session: AsyncSession, definition: Any) -> SegmentCatalog:
    """The part of the catalog a definition needs: property types, and which of the event
    names it mentions have been recorded (one index seek each, in one round trip)."""
    profile_types, events = await _declared_types(session)
    mentioned = sorted(_event_names_in(definition, set()) - set(events))[:MAX_CONDITIONS]
    if mentioned:
        recorded = (await session.execute(select(*[
            exists().where(Event.name == name).label(f"e{index}") for index, name in enumerate(mentioned)
        ]))).one()
        events.update({name: {} for name, seen in zip(mentioned, recorded, strict=True) if seen})
    return catalog_from(profile_types, events)

