"""The dispatcher: claims queued messages in batches, sends them through their provider, and
records every outcome. Invariants (DESIGN.md): a message whose send may have reached the provider
is never sent again blindly (it becomes `unknown`); status only moves forward."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsconsole import clock
from smsconsole.models import Message, MessageAttempt, Provider as ProviderRow
from smsconsole.providers.base import (
    ConfigurationError,
    ErrorKind,
    OutboundMessage,
    OutcomeUnknownError,
    Provider,
    ProviderError,
    SendOutcome,
)
from smsconsole.secrets import SecretBox, SecretError
from smsconsole.services.providers import AdapterSpec, adapter_spec, build_adapter
from smsconsole.services.settings import get_settings

log = logging.getLogger("smsconsole.dispatch")

PER_PROVIDER_CONCURRENCY = 8


@dataclass(frozen=True)
class DispatchSettings:
    batch_size: int = 50
    max_attempts: int = 5
    backoff_base: float = 2.0
    backoff_cap: float = 300.0


@dataclass
class _Result:
    """What the dispatcher decided for one claimed message."""

    message_id: int
    provider_id: int | None
    provider_name: str | None
    started_at: datetime
    outcome: SendOutcome | None
    error: ProviderError | None


class Dispatcher:
    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        box: SecretBox,
        client: httpx.AsyncClient,
        settings: DispatchSettings | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.factory = factory
        self.box = box
        self.client = client
        self.settings = settings or DispatchSettings()
        self.rng = rng or random.Random()
        self._adapters: dict[int, tuple[datetime, Provider]] = {}

    async def recover(self) -> int:
        """After taking the lease: messages left `sending` by a dead engine may have been sent,
        so they become `unknown` (never resent blindly). Returns how many."""
        now = clock.now()
        async with self.factory() as session, session.begin():
            result = await session.execute(
                update(Message)
                .where(Message.state == "sending")
                .values(state="unknown", reason="the engine stopped while this message was being sent; "
                        "it may or may not have reached the provider, so it was not resent",
                        finished_at=now, updated_at=now)
            )
        if result.rowcount:
            log.warning("marked %d message(s) left sending by a stopped engine as unknown", result.rowcount)
        return result.rowcount

    async def run_once(self) -> int:
        """Claim one batch, send it, record outcomes. Returns the number of messages handled."""
        claimed, providers, callback_base = await self._claim()
        if not claimed:
            return 0
        results = await self._send_all(claimed, providers, callback_base)
        await self._record(results)
        return len(claimed)

    # --- claim -------------------------------------------------------------------------------

    async def _claim(self) -> tuple[list[Message], dict[int, AdapterSpec], str]:
        now = clock.now()
        async with self.factory() as session, session.begin():
            query = (
                select(Message.id)
                .where(Message.state == "queued")
                .where(or_(Message.next_attempt_at.is_(None), Message.next_attempt_at <= now))
                .order_by(Message.priority.desc(), Message.id)
                .limit(self.settings.batch_size)
            )
            if session.bind.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            ids = list(await session.scalars(query))
            if not ids:
                return [], {}, ""
            await session.execute(
                update(Message)
                .where(Message.id.in_(ids), Message.state == "queued")
                .values(state="sending", sending_at=now, updated_at=now, attempts=Message.attempts + 1)
                .execution_options(synchronize_session=False)
            )
            rows = list(await session.scalars(
                select(Message).where(Message.id.in_(ids), Message.state == "sending")
                .execution_options(populate_existing=True)
            ))
            provider_ids = {row.provider_id for row in rows if row.provider_id is not None}
            providers: dict[int, AdapterSpec] = {}
            if provider_ids:
                for provider in await session.scalars(select(ProviderRow).where(ProviderRow.id.in_(provider_ids))):
                    try:
                        providers[provider.id] = adapter_spec(provider, self.box)
                    except SecretError as exc:
                        log.error("provider %s: %s", provider.name, exc)
            settings = await get_settings(session)
            session.expunge_all()
        return rows, providers, settings.get("public_base_url", "")

    # --- send --------------------------------------------------------------------------------

    def _adapter(self, spec: AdapterSpec) -> Provider:
        cached = self._adapters.get(spec.id)
        if cached and cached[0] == spec.updated_at:
            return cached[1]
        adapter = build_adapter(spec, self.client)
        self._adapters[spec.id] = (spec.updated_at, adapter)
        return adapter

    async def _send_all(self, claimed: list[Message], providers: dict[int, AdapterSpec],
                        callback_base: str) -> list[_Result]:
        results: list[_Result] = []
        by_provider: dict[int | None, list[Message]] = defaultdict(list)
        for message in claimed:
            by_provider[message.provider_id].append(message)
        jobs = []
        for provider_id, messages in by_provider.items():
            spec = providers.get(provider_id) if provider_id is not None else None
            now = clock.now()
            if spec is None or not spec.enabled:
                if provider_id is None:
                    reason = "the provider was removed"
                elif spec is None:
                    reason = "the provider's settings cannot be read (was the secret key changed?)"
                else:
                    reason = f"provider {spec.name!r} is disabled"
                error = ConfigurationError(reason)
                results.extend(_Result(m.id, provider_id, m.provider_name, now, None, error) for m in messages)
                continue
            try:
                adapter = self._adapter(spec)
            except SecretError as exc:
                error = ConfigurationError(f"provider {spec.name!r}: {exc}")
                results.extend(_Result(m.id, spec.id, spec.name, now, None, error) for m in messages)
                continue
            jobs.append(self._send_provider(adapter, spec, messages, callback_base))
        for provider_results in await asyncio.gather(*jobs):
            results.extend(provider_results)
        return results

    async def _send_provider(self, adapter: Provider, spec: AdapterSpec, messages: list[Message],
                             callback_base: str) -> list[_Result]:
        max_batch = max(1, adapter.max_batch)
        chunks = [messages[i:i + max_batch] for i in range(0, len(messages), max_batch)]
        semaphore = asyncio.Semaphore(PER_PROVIDER_CONCURRENCY)

        async def send_chunk(chunk: list[Message]) -> list[_Result]:
            async with semaphore:
                started = clock.now()
                outbound = [self._outbound(m, spec, callback_base) for m in chunk]
                try:
                    outcomes = await adapter.send(outbound)
                except ProviderError as exc:
                    return [_Result(m.id, spec.id, spec.name, started, None, exc) for m in chunk]
                except Exception as exc:  # a bug in an adapter: the request may have left
                    log.exception("provider %s raised unexpectedly", spec.name)
                    error = OutcomeUnknownError(f"internal error in the {spec.kind} adapter: {type(exc).__name__}")
                    return [_Result(m.id, spec.id, spec.name, started, None, error) for m in chunk]
                by_ref = {o.ref: o for o in outcomes}
                results = []
                for m in chunk:
                    outcome = by_ref.get(str(m.id))
                    if outcome is None:
                        error = OutcomeUnknownError(f"the {spec.kind} adapter returned no outcome for this message")
                        results.append(_Result(m.id, spec.id, spec.name, started, None, error))
                    else:
                        results.append(_Result(m.id, spec.id, spec.name, started, outcome, outcome.error))
                return results

        gathered = await asyncio.gather(*(send_chunk(chunk) for chunk in chunks))
        return [result for chunk_results in gathered for result in chunk_results]

    @staticmethod
    def _outbound(message: Message, spec: AdapterSpec, callback_base: str) -> OutboundMessage:
        callback = f"{callback_base}/callbacks/{spec.name}/status" if callback_base else None
        return OutboundMessage(
            ref=str(message.id), to=message.to_number, body=message.body, sender=message.sender,
            encoding=message.encoding, segments=message.segments, status_callback_url=callback,
        )

    # --- record ------------------------------------------------------------------------------

    def _backoff(self, attempts: int, retry_after: float | None) -> float:
        delay = min(self.settings.backoff_cap, self.settings.backoff_base * (2 ** max(0, attempts - 1)))
        delay *= 0.8 + 0.4 * self.rng.random()
        return max(delay, retry_after or 0.0)

    async def _record(self, results: Sequence[_Result]) -> None:
        now = clock.now()
        attempts_by_id: dict[int, int] = {}
        async with self.factory() as session, session.begin():
            ids = [r.message_id for r in results]
            for message_id, attempts in await session.execute(
                select(Message.id, Message.attempts).where(Message.id.in_(ids))
            ):
                attempts_by_id[message_id] = attempts
            attempt_rows: list[dict[str, Any]] = []
            updates: list[dict[str, Any]] = []
            healthy: set[int] = set()
            unhealthy: dict[int, str] = {}
            for r in results:
                error = r.error
                attempt = {
                    "message_id": r.message_id, "provider_id": r.provider_id, "provider_name": r.provider_name,
                    "started_at": r.started_at, "finished_at": now,
                    "http_status": (r.outcome.http_status if r.outcome else None) or (error.http_status if error else None),
                    "error_code": error.code if error else None,
                    "error_message": str(error.message) if error else None,
                    "retry_after": error.retry_after if error else None,
                }
                change: dict[str, Any] = {"id": r.message_id, "updated_at": now}
                if error is None and r.outcome is not None:
                    attempt["outcome"] = "sent"
                    change.update(state="sent", provider_message_id=r.outcome.provider_message_id,
                                  sent_at=now, reason=None, error_code=None, next_attempt_at=None)
                    if r.provider_id is not None:
                        healthy.add(r.provider_id)
                else:
                    assert error is not None
                    attempt["outcome"] = error.kind.value
                    change.update(_on_error(error, attempts_by_id.get(r.message_id, 1), now,
                                            self.settings.max_attempts, self._backoff))
                    if error.kind is ErrorKind.CONFIGURATION and r.provider_id is not None:
                        unhealthy[r.provider_id] = str(error)
                updates.append(change)
                attempt_rows.append(attempt)
            await session.execute(insert(MessageAttempt), attempt_rows)
            for group in _group_by_keys(updates).values():  # one executemany per key set
                await session.execute(
                    update(Message).where(Message.state == "sending"), group,
                    execution_options={"synchronize_session": False},
                )
            for provider_id, detail in unhealthy.items():
                await session.execute(update(ProviderRow).where(ProviderRow.id == provider_id)
                                      .values(health="unhealthy", health_detail=detail, health_checked_at=now))
            healthy -= unhealthy.keys()
            if healthy:
                await session.execute(
                    update(ProviderRow).where(ProviderRow.id.in_(healthy), ProviderRow.health != "healthy")
                    .values(health="healthy", health_detail="sending", health_checked_at=now)
                )
        for r in results:
            if r.error is not None:
                log.info("message %s via %s: %s %s", r.message_id, r.provider_name, r.error.kind.value, r.error)


def _on_error(error: ProviderError, attempts: int, now: datetime, max_attempts: int,
              backoff: Any) -> dict[str, Any]:
    code = error.code
    if error.kind is ErrorKind.TRANSIENT and attempts < max_attempts:
        delay = backoff(attempts, error.retry_after)
        return {"state": "queued", "next_attempt_at": now + timedelta(seconds=delay), "error_code": code,
                "reason": f"attempt {attempts} of {max_attempts} failed ({error}); retrying in {delay:.0f}s"}
    if error.kind is ErrorKind.UNKNOWN:
        return {"state": "unknown", "error_code": code, "finished_at": now, "next_attempt_at": None,
                "reason": f"{error}; not resent, because the provider may have accepted it"}
    if error.kind is ErrorKind.TRANSIENT:
        reason = f"gave up after {attempts} attempts: {error}"
    elif error.kind is ErrorKind.CONFIGURATION:
        reason = f"provider configuration: {error}"
    else:
        reason = str(error.message)
    return {"state": "failed", "error_code": code, "finished_at": now, "next_attempt_at": None,
            "reason": reason}


def _group_by_keys(changes: list[dict[str, Any]]) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for change in changes:
        groups[tuple(sorted(change))].append(change)
    return groups
