"""Reconciliation of `unknown` messages (DESIGN.md invariant 2): a send whose outcome was unknown
but that carries the provider's message id is settled by asking the provider's status API. The
receipts service applies what it says, so status only moves forward; a message the provider does
not know stays `unknown` (it is never resent)."""

from __future__ import annotations

import logging
from collections import defaultdict

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsconsole.models import Message
from smsconsole.providers.base import ProviderError
from smsconsole.secrets import SecretBox, SecretError
from smsconsole.services.providers import Adapters, AdapterSpec, specs_for
from smsconsole.services.receipts import apply_status_reports

log = logging.getLogger("smsconsole.reconcile")

LOOKUP_CHUNK = 50
RECONCILE_SECONDS = 60.0  # how often the engine looks for unknown messages to settle


async def reconcile_unknown(factory: async_sessionmaker[AsyncSession], box: SecretBox, client: httpx.AsyncClient,
                            *, limit: int = 500, adapters: Adapters | None = None) -> int:
    """Ask each provider about up to `limit` unknown messages that have its message id; returns how
    many messages changed state. `adapters` is the engine's shared adapter cache (one of its own
    when not given)."""
    adapters = adapters or Adapters(box, client)
    async with factory() as session:
        rows = (await session.execute(
            select(Message.provider_id, Message.provider_message_id)
            .where(Message.state == "unknown", Message.provider_message_id.is_not(None),
                   Message.provider_id.is_not(None))
            .order_by(Message.id).limit(limit)
        )).all()
        by_provider: dict[int, list[str]] = defaultdict(list)
        for provider_id, provider_message_id in rows:
            by_provider[provider_id].append(provider_message_id)
        specs: dict[int, AdapterSpec] = {}
        for provider_id, name, spec in await specs_for(session, box, by_provider):
            if isinstance(spec, SecretError):
                log.warning("reconcile: provider %s cannot be read: %s", name, spec)
            else:
                specs[provider_id] = spec
    changed = 0
    for provider_id, ids in by_provider.items():
        spec = specs.get(provider_id)
        if spec is None:
            continue
        try:
            adapter = adapters.get(spec)
        except SecretError as exc:
            log.warning("reconcile: provider %s: %s", spec.name, exc)
            continue
        for start in range(0, len(ids), LOOKUP_CHUNK):
            chunk = ids[start:start + LOOKUP_CHUNK]
            try:
                reports = await adapter.fetch_statuses(chunk)
            except NotImplementedError:
                log.debug("reconcile: %s has no status lookup; its unknown messages stay unknown", spec.name)
                break
            except ProviderError as exc:
                log.warning("reconcile: status lookup at %s failed: %s", spec.name, exc)
                break
            if not reports:
                continue
            async with factory() as session, session.begin():
                result = await apply_status_reports(session, spec.id, spec.name, reports, via="poll")
            changed += result.changed
    if changed:
        log.info("reconciled %d unknown message(s) through the providers' status APIs", changed)
    return changed
