"""The polling door: the engine asks each provider that can list statuses or inbound messages for
what changed, on an interval per provider, resuming from its `poll_cursors` row after a restart;
it also asks providers with a status lookup about `sent` messages that have waited too long for a
final receipt (the Sandbox's receipts come this way, after its receipt delay), and applies
receipts that arrived before their message was recorded. A page's reports and its cursor are
committed in one transaction, so nothing polled is lost and nothing is skipped on a crash.

A poll that fails (a provider down, a secret that cannot be read) backs off exponentially and is
logged once when it starts failing, at most hourly while it goes on, and once when it works again."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsconsole import clock
from smsconsole.models import Message, PollCursor
from smsconsole.providers.base import InboundReport, PollPage, Provider, ProviderError, StatusReport
from smsconsole.secrets import SecretBox, SecretError
from smsconsole.services.providers import Adapters, AdapterSpec, LoadedSpec, enabled_specs
from smsconsole.services.receipts import apply_pending_receipts, apply_status_reports
from smsconsole.services.replies import record_inbound

log = logging.getLogger("smsconsole.pollers")

POLL_TICK_SECONDS = 1.0  # how often the engine looks for due polls (each provider has its own interval)
MAX_PAGES_PER_TURN = 20  # a backlog is worked off over several ticks, never in one long turn
MAX_BACKOFF_SECONDS = 600.0
REMINDER_SECONDS = 3600.0  # a failure that goes on is logged again this often, no more
RECONCILE_BATCH = 100  # messages asked about per provider per tick
RECONCILE_HORIZON = timedelta(days=3)  # older `sent` messages are no longer asked about


@dataclass(frozen=True)
class PollSettings:
    interval_seconds: float = 30.0
    reconcile_after_seconds: float = 900.0


@dataclass
class _Due:
    """When a provider's poller (or reconcile) runs next, how long it backs off after errors, and
    the failure last logged (None while it works)."""

    at: float = 0.0
    failures: int = 0
    problem: str | None = None
    logged_at: float = 0.0


def _backoff(interval: float, failures: int) -> float:
    return min(MAX_BACKOFF_SECONDS, interval * 2 ** min(failures, 6))


@dataclass
class Pollers:
    factory: async_sessionmaker[AsyncSession]
    box: SecretBox
    client: httpx.AsyncClient
    settings: PollSettings = field(default_factory=PollSettings)
    monotonic: Callable[[], float] = time.monotonic
    adapters: Adapters | None = None  # the engine's shared adapter cache; one of its own when None
    _due: dict[tuple[int, str], _Due] = field(default_factory=dict)
    _checked: dict[int, float] = field(default_factory=dict)  # message id → when to ask again
    _cache: Adapters = field(init=False)

    def __post_init__(self) -> None:
        self._cache = self.adapters or Adapters(self.box, self.client)

    async def tick(self) -> None:
        """One turn: every provider whose poll is due is polled (providers side by side, so a slow
        one holds up no other), stale `sent` messages are looked up, pending receipts are applied.
        Errors are logged per provider on change, never raised."""
        reading = self._due.setdefault((0, "providers"), _Due())
        try:
            specs = await self._specs()
        except Exception as exc:
            self._failed(reading, "reading the providers", type(exc).__name__, 0.0, logging.ERROR)
            return
        self._succeeded(reading, "reading the providers")
        await asyncio.gather(*(self._provider_turn(provider_id, name, spec) for provider_id, name, spec in specs))
        pending = self._due.setdefault((0, "pending"), _Due())
        try:
            async with self.factory() as session, session.begin():
                applied = await apply_pending_receipts(session)
            if applied:
                log.info("applied %d receipt(s) that arrived before their message was recorded", applied)
        except Exception as exc:
            self._failed(pending, "applying pending receipts", type(exc).__name__, 0.0, logging.ERROR)
            return
        self._succeeded(pending, "applying pending receipts")

    def next_attempt(self, provider_id: int) -> float | None:
        """When (on the monotonic clock) a provider whose adapter cannot be built (a secret that
        cannot be read) is tried again; None when nothing is holding it back."""
        due = self._due.get((provider_id, "adapter"))
        return due.at if due is not None and due.problem is not None else None

    async def _provider_turn(self, provider_id: int, name: str, spec: AdapterSpec | SecretError) -> None:
        due = self._due.setdefault((provider_id, "adapter"), _Due())
        if self.monotonic() < due.at:
            return
        try:
            if isinstance(spec, SecretError):
                raise spec
            adapter = self._cache.get(spec)
        except Exception as exc:  # an unreadable secret, or settings the adapter refuses
            reason = str(exc) if isinstance(exc, SecretError) else f"cannot build its adapter ({type(exc).__name__})"
            self._failed(due, f"provider {name}", reason, _backoff(self.settings.interval_seconds, due.failures + 1),
                         logging.ERROR)
            return
        self._succeeded(due, f"provider {name}")
        caps = adapter.capabilities
        if caps.status_polling:
            await self._run(spec, adapter, "status")
        if caps.inbound_polling:
            await self._run(spec, adapter, "inbound")
        if caps.status_lookup:
            await self._run(spec, adapter, "reconcile")

    def _failed(self, due: _Due, what: str, reason: str, delay: float, level: int) -> None:
        """Back off, and log the failure when it starts (and as a rare reminder while it lasts)."""
        now = self.monotonic()
        due.failures += 1
        due.at = now + delay
        if due.problem is None:
            log.log(level, "pollers: %s failed: %s; retrying with backoff%s", what, reason,
                    f" (next try in {delay:.0f}s)" if delay else "")
            due.logged_at = now
        elif now - due.logged_at >= REMINDER_SECONDS:
            log.log(level, "pollers: %s still failing after %d attempts: %s", what, due.failures, reason)
            due.logged_at = now
        due.problem = reason

    def _succeeded(self, due: _Due, what: str) -> None:
        if due.problem is not None:
            log.info("pollers: %s works again after %d failed attempt(s)", what, due.failures)
        due.problem, due.failures = None, 0

    async def _specs(self) -> list[LoadedSpec]:
        """The enabled providers; one whose key cannot open it comes with its SecretError, backed
        off and logged like any failure."""
        async with self.factory() as session:
            return await enabled_specs(session, self.box)

    def _interval(self, adapter: Provider, job: str) -> float:
        if job == "reconcile" and (delay := _own_receipt_delay(adapter)) is not None:
            return max(0.5, min(5.0, delay / 2 or 0.5))
        return self.settings.interval_seconds

    async def _run(self, spec: AdapterSpec, adapter: Provider, job: str) -> None:
        due = self._due.setdefault((spec.id, job), _Due())
        now = self.monotonic()
        if now < due.at:
            return
        try:
            if job == "reconcile":
                await self._reconcile(spec, adapter)
            else:
                await self._poll(spec, adapter, job)
        except ProviderError as exc:
            delay = max(_backoff(self._interval(adapter, job), due.failures + 1), exc.retry_after or 0.0)
            self._failed(due, f"{spec.name} {job}", f"{exc.kind.value}: {exc}", delay, logging.WARNING)
            if job != "reconcile":
                await self._record_error(spec.id, job, f"{exc.kind.value}: {exc}")
            return
        except NotImplementedError:
            due.at = float("inf")  # the adapter cannot do it after all
            return
        except Exception as exc:
            self._failed(due, f"{spec.name} {job}", f"unexpected {type(exc).__name__}",
                         _backoff(self._interval(adapter, job), due.failures + 1), logging.ERROR)
            log.debug("traceback", exc_info=True)
            return
        self._succeeded(due, f"{spec.name} {job}")
        due.at = self.monotonic() + self._interval(adapter, job)

    async def _poll(self, spec: AdapterSpec, adapter: Provider, kind: str) -> None:
        async with self.factory() as session:
            row = await session.get(PollCursor, (spec.id, kind))
            cursor = row.cursor if row is not None else None
        for _ in range(MAX_PAGES_PER_TURN):
            page: PollPage = await (adapter.poll_statuses(cursor) if kind == "status" else adapter.poll_inbound(cursor))
            await self.commit_page(spec.id, spec.name, kind, page)
            cursor = page.cursor
            if not page.more:
                break

    async def commit_page(self, provider_id: int, provider_name: str, kind: str, page: PollPage) -> None:
        """The page's reports and its cursor, in one transaction."""
        async with self.factory() as session, session.begin():
            if kind == "status":
                reports = [r for r in page.reports if isinstance(r, StatusReport)]
                if reports:
                    await apply_status_reports(session, provider_id, provider_name, reports, "poll")
            else:
                for report in page.reports:
                    if isinstance(report, InboundReport):
                        await record_inbound(session, provider_id=provider_id, provider_name=provider_name,
                                             report=report, via="poll")
            await _save_cursor(session, provider_id, kind, page.cursor, None)

    async def _record_error(self, provider_id: int, kind: str, error: str) -> None:
        try:
            async with self.factory() as session, session.begin():
                row = await session.get(PollCursor, (provider_id, kind))
                if row is None:
                    session.add(PollCursor(provider_id=provider_id, kind=kind, cursor=None, polled_at=clock.now(),
                                           error=error[:1000]))
                else:
                    row.error, row.polled_at = error[:1000], clock.now()
        except Exception as exc:
            log.error("pollers: cannot record the poll error: %s", type(exc).__name__)

    async def _reconcile(self, spec: AdapterSpec, adapter: Provider) -> None:
        """Ask the provider about `sent` messages that have waited longer than the threshold (the
        Sandbox: its own receipt delay) for a final receipt. The dispatcher reconciles `unknown` ones."""
        now = clock.now()
        own_delay = _own_receipt_delay(adapter)
        wait = own_delay if own_delay is not None else self.settings.reconcile_after_seconds
        mono = self.monotonic()
        async with self.factory() as session:
            rows = (await session.execute(
                select(Message.id, Message.provider_message_id)
                .where(Message.provider_id == spec.id, Message.state == "sent",
                       Message.provider_message_id.is_not(None),
                       Message.sent_at <= now - timedelta(seconds=wait),
                       Message.sent_at >= now - RECONCILE_HORIZON)
                .order_by(Message.sent_at).limit(RECONCILE_BATCH * 4)
            )).all()
        asked = [(mid, pmid) for mid, pmid in rows if self._checked.get(mid, 0.0) <= mono][:RECONCILE_BATCH]
        if not asked:
            return
        reports = await adapter.fetch_statuses([pmid for _, pmid in asked])
        async with self.factory() as session, session.begin():
            await apply_status_reports(session, spec.id, spec.name, reports, "poll")
        # Ask again later about those still without a final receipt, less often each time.
        retry = max(self.settings.reconcile_after_seconds if own_delay is None else 1.0, 1.0)
        for mid, _ in asked:
            self._checked[mid] = mono + retry
        if len(self._checked) > 100_000:
            self._checked = {k: v for k, v in self._checked.items() if v > mono}


def _own_receipt_delay(adapter: Provider) -> float | None:
    """Seconds after sending when an adapter that makes its own receipts (the Sandbox) has them;
    None for a real provider, whose `sent` messages wait `reconcile_after_seconds`."""
    setting = adapter.capabilities.receipt_delay_field
    return float(adapter.setting(setting) or 0) if setting else None


async def _save_cursor(session: AsyncSession, provider_id: int, kind: str, cursor: str | None,
                       error: str | None) -> None:
    row = await session.get(PollCursor, (provider_id, kind))
    if row is None:
        session.add(PollCursor(provider_id=provider_id, kind=kind, cursor=cursor, polled_at=clock.now(), error=error))
    else:
        row.cursor, row.polled_at, row.error = cursor, clock.now(), error
