"""Which providers a campaign's messages to a country may go through, read the way the engine
routes them (engine/routing.py): the campaign's provider, else its group, else the group for the
country, else the default group, else the only enabled provider. A group's members are listed in
priority order: the first carries the traffic, the others take it on failover."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole.models import Provider, ProviderGroup, ProviderGroupMember


@dataclass(frozen=True)
class RouteProvider:
    id: int
    name: str
    kind: str
    config: dict[str, Any]


@dataclass
class RouteMap:
    providers: dict[int, RouteProvider] = field(default_factory=dict)  # enabled ones
    group_members: dict[int, list[int]] = field(default_factory=dict)  # group id -> enabled provider ids by priority
    group_names: dict[int, str] = field(default_factory=dict)
    by_country: dict[str, int] = field(default_factory=dict)
    default_group: int | None = None
    names: dict[str, int] = field(default_factory=dict)  # provider name -> id (enabled or not)
    group_ids: dict[str, int] = field(default_factory=dict)

    def for_country(self, country: str | None, *, provider: str | None = None,
                    group: str | None = None) -> tuple[list[RouteProvider], str]:
        """(the providers in priority order, how they were chosen); no providers: the words say why."""
        if provider:
            pid = self.names.get(provider)
            if pid is None or pid not in self.providers:
                return [], f"provider {provider!r} is missing or disabled"
            return [self.providers[pid]], f"provider {provider}"
        if group:
            gid = self.group_ids.get(group)
            if gid is None:
                return [], f"provider group {group!r} does not exist"
            return self._members(gid), f"group {group}"
        if country and (gid := self.by_country.get(country.upper())) is not None:
            return self._members(gid), f"group {self.group_names[gid]} (for {country.upper()})"
        if self.default_group is not None:
            return self._members(self.default_group), f"group {self.group_names[self.default_group]} (default)"
        if self.group_names:
            return [], "no provider group for it and no default group"
        if len(self.providers) == 1:
            only = next(iter(self.providers.values()))
            return [only], f"provider {only.name} (the only one)"
        return [], "no provider is enabled" if not self.providers else "several providers and no provider group"

    def _members(self, group_id: int) -> list[RouteProvider]:
        return [self.providers[pid] for pid in self.group_members.get(group_id, []) if pid in self.providers]


async def load_route_map(session: AsyncSession) -> RouteMap:
    routes = RouteMap()
    for row in await session.scalars(select(Provider).order_by(Provider.id)):
        routes.names[row.name] = row.id
        if row.enabled:
            routes.providers[row.id] = RouteProvider(row.id, row.name, row.kind, dict(row.config or {}))
    for group in await session.scalars(select(ProviderGroup).order_by(ProviderGroup.id)):
        routes.group_names[group.id] = group.name
        routes.group_ids[group.name] = group.id
        routes.group_members[group.id] = []
        for country in group.countries or []:
            routes.by_country.setdefault(str(country).upper(), group.id)
        if group.is_default and routes.default_group is None:
            routes.default_group = group.id
    members = await session.execute(select(ProviderGroupMember.group_id, ProviderGroupMember.provider_id)
                                    .order_by(ProviderGroupMember.group_id, ProviderGroupMember.position))
    for group_id, provider_id in members:
        routes.group_members.setdefault(group_id, []).append(provider_id)
    return routes
