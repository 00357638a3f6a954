"""Routing: which providers a message may go through, in the order to try them.

A message naming a provider goes to that provider; one naming a group goes through the group's
members in priority order; otherwise the group for the destination country, else the default
group, else (no groups at all) the only enabled provider. Disabled providers are left out; the
circuit breaker decides at send time which of the rest are in rotation.

The table is loaded once per claimed batch (three queries), so routing costs no round trip per
message."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole.models import Provider as ProviderRow, ProviderGroup, ProviderGroupMember
from smsconsole.secrets import SecretBox, SecretError
from smsconsole.services.providers import AdapterSpec, adapter_spec


@dataclass(frozen=True)
class ProviderEntry:
    id: int
    name: str
    kind: str
    enabled: bool
    spec: AdapterSpec | None  # None when its settings cannot be read
    spec_error: str | None
    rate_limit: float | None
    sender_rate_limit: float | None
    circuit_state: str
    circuit_failures: int
    circuit_until: datetime | None

    @property
    def default_sender(self) -> str | None:
        return (self.spec.values.get("sender") or None) if self.spec else None


@dataclass(frozen=True)
class GroupEntry:
    id: int
    name: str
    is_default: bool
    countries: tuple[str, ...]
    provider_ids: tuple[int, ...]  # priority order


@dataclass(frozen=True)
class Route:
    provider_ids: tuple[int, ...]  # to try in this order
    via: str  # how it was chosen, for reasons: "provider x", "group y (default)"


@dataclass(frozen=True)
class NoRoute:
    reason: str


@dataclass
class RoutingTable:
    providers: dict[int, ProviderEntry]
    groups: dict[int, GroupEntry]
    by_country: dict[str, int] = field(default_factory=dict)
    default_group: int | None = None

    def route(self, provider_id: int | None, provider_name: str | None, group_id: int | None,
              country: str | None) -> Route | NoRoute:
        if provider_id is not None or provider_name:
            entry = self.providers.get(provider_id) if provider_id is not None else None
            if entry is None:
                return NoRoute(f"provider {provider_name!r} was removed" if provider_name else "the provider was removed")
            if not entry.enabled:
                return NoRoute(f"provider {entry.name!r} is disabled")
            return Route((entry.id,), f"provider {entry.name}")
        if group_id is not None and group_id in self.groups:
            return self._through(self.groups[group_id], "")
        if country and (by_country := self.by_country.get(country.upper())) is not None:
            return self._through(self.groups[by_country], f" (for {country.upper()})")
        if self.default_group is not None:
            return self._through(self.groups[self.default_group], " (default)")
        if self.groups:
            where = f"for {country.upper()} " if country else ""
            return NoRoute(f"no provider group {where}and no default group: mark a group as the default")
        enabled = [p for p in self.providers.values() if p.enabled]
        if len(enabled) == 1:
            return Route((enabled[0].id,), f"provider {enabled[0].name} (the only one)")
        if not enabled:
            return NoRoute("no provider is enabled: add one (Providers) and send again")
        return NoRoute(f"{len(enabled)} providers and no provider group: create a group to say which to use")

    def _through(self, group: GroupEntry, why: str) -> Route | NoRoute:
        members = [pid for pid in group.provider_ids if pid in self.providers]
        if not members:
            return NoRoute(f"provider group {group.name!r} has no providers")
        enabled = tuple(pid for pid in members if self.providers[pid].enabled)
        if not enabled:
            return NoRoute(f"every provider of group {group.name!r} is disabled")
        return Route(enabled, f"group {group.name}{why}")


async def load_routing(session: AsyncSession, box: SecretBox) -> RoutingTable:
    """Every provider, group and membership, in three queries."""
    providers: dict[int, ProviderEntry] = {}
    for row in await session.scalars(select(ProviderRow).execution_options(populate_existing=True)):
        spec: AdapterSpec | None = None
        spec_error: str | None = None
        try:
            spec = adapter_spec(row, box)
        except SecretError as exc:
            spec_error = f"provider {row.name!r}: {exc}"
        providers[row.id] = ProviderEntry(
            row.id, row.name, row.kind, row.enabled, spec, spec_error, row.rate_limit, row.sender_rate_limit,
            row.circuit_state or "closed", row.circuit_failures or 0, row.circuit_until,
        )
    members: dict[int, list[int]] = {}
    for group_id, provider_id in await session.execute(
        select(ProviderGroupMember.group_id, ProviderGroupMember.provider_id)
        .order_by(ProviderGroupMember.group_id, ProviderGroupMember.position)
    ):
        members.setdefault(group_id, []).append(provider_id)
    table = RoutingTable(providers, {})
    for group in await session.scalars(select(ProviderGroup).order_by(ProviderGroup.id)):
        entry = GroupEntry(group.id, group.name, group.is_default, tuple(c.upper() for c in group.countries or ()),
                           tuple(members.get(group.id, ())))
        table.groups[group.id] = entry
        for country in entry.countries:
            table.by_country.setdefault(country, group.id)
        if group.is_default and table.default_group is None:
            table.default_group = group.id
    session.expunge_all()
    return table
