"""Which routes bill a message after the provider's Smart Encoding.

With a Twilio provider's `smart_encoding` setting on, Twilio replaces look-alike characters (curly
quotes, dashes, odd spaces: sms_tables.py) before it counts and bills the segments; the body we
send stays the operator's text. A message through such a route is recorded with the encoding and
segments of the replaced text (`analyze(body, smart_encoding=True)`), so rate limits, statistics
and cost count what the provider bills.

A route is (provider id, group id) as a message row carries it. A provider route smart-encodes
when that provider does; a group route when every enabled member does (whichever member sends,
the count holds); a message with neither (the engine picks the default group or the only
provider) when every enabled provider does. Otherwise the typed text is counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole.models import Provider as ProviderRow
from smsconsole.models import ProviderGroupMember
from smsconsole.providers import REGISTRY

SETTING = "smart_encoding"

RouteKey = tuple[int | None, int | None]  # (provider id, group id)


def provider_smart_encodes(kind: str, config: Mapping[str, Any] | None) -> bool:
    """Whether a provider of `kind` with `config` replaces look-alikes before billing: its kind has
    the setting and it is on (the field's default when unset)."""
    cls = REGISTRY.get(kind)
    field = next((f for f in cls.config_fields if f.name == SETTING), None) if cls is not None else None
    if field is None:
        return False
    value = (config or {}).get(SETTING)
    text = field.default if value in (None, "") else str(value)
    return text.strip().lower() in ("true", "yes", "1")


async def smart_routes(session: AsyncSession, routes: Iterable[RouteKey]) -> dict[RouteKey, bool]:
    """Each route -> whether its messages are billed smart-encoded (a query per kind of route)."""
    wanted = set(routes)
    provider_ids = {p for p, _ in wanted if p is not None}
    group_ids = {g for p, g in wanted if p is None and g is not None}
    providers: dict[int, bool] = {}
    if provider_ids:
        rows = await session.execute(
            select(ProviderRow.id, ProviderRow.kind, ProviderRow.config).where(ProviderRow.id.in_(provider_ids)))
        providers = {pid: provider_smart_encodes(kind, config) for pid, kind, config in rows}
    members: dict[int, list[bool]] = {}
    if group_ids:
        rows = await session.execute(
            select(ProviderGroupMember.group_id, ProviderRow.kind, ProviderRow.config)
            .join(ProviderRow, ProviderRow.id == ProviderGroupMember.provider_id)
            .where(ProviderGroupMember.group_id.in_(group_ids), ProviderRow.enabled.is_(True)))
        for gid, kind, config in rows:
            members.setdefault(gid, []).append(provider_smart_encodes(kind, config))
    every: list[bool] = []
    if any(p is None and g is None for p, g in wanted):
        rows = await session.execute(
            select(ProviderRow.kind, ProviderRow.config).where(ProviderRow.enabled.is_(True)))
        every = [provider_smart_encodes(kind, config) for kind, config in rows]
    found: dict[RouteKey, bool] = {}
    for provider_id, group_id in wanted:
        if provider_id is not None:
            found[(provider_id, group_id)] = providers.get(provider_id, False)
        else:
            flags = members.get(group_id, []) if group_id is not None else every
            found[(provider_id, group_id)] = bool(flags) and all(flags)
    return found


async def route_smart_encodes(session: AsyncSession, *, provider_id: int | None, group_id: int | None) -> bool:
    return (await smart_routes(session, [(provider_id, group_id)]))[(provider_id, group_id)]
