"""The dispatcher: claims queued messages in batches, guards them, routes them through their
provider or provider group (failing over on transient and configuration errors), obeys each
provider's rate limit and concurrency, and writes every outcome in bulk.

A message moves queued → claimed → sending → outcome. *Claimed* means this engine tenure took it
from the queue (never more than a batch, and no more than the providers can take in the next
moment); nothing has left yet, so a crash returns claimed messages to the queue. *Sending* is
written by the send gate immediately before each request leaves, in the same transaction that
re-checks the recipients' consent (by profile and by number), so a STOP committed while a message
waited for its rate limit stops it, and only a message whose request may really have left becomes
`unknown` after a crash.

Every outbox write carries the lease fence (engine/lease.py): an engine paused past its lease and
replaced sends nothing more and writes nothing. Outcome writes that fail on a database error are
retried with backoff, outcomes kept in memory until they are written.

Invariants (DESIGN.md): a message whose send may have reached the provider is never sent again
blindly (it becomes `unknown`); status only moves forward; a batch costs a handful of queries
whatever its size.

Campaign messages carry `dedupe_key = "run:{run_id}:profile:{profile_id}"` (see `dedupe_key`):
the unique index on it makes a second row for the same (run, user) impossible."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import ColumnElement, and_, or_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsconsole import clock
from smsconsole.engine import claims
from smsconsole.engine.claims import Claimed
from smsconsole.engine import guards as guard_mod
from smsconsole.engine.binds import hand_off
from smsconsole.engine.circuit import CircuitBreaker
from smsconsole.engine.gate import SendGate
from smsconsole.engine.jobs import Attempt, Final, Job
from smsconsole.engine.lease import Tenure, live_tokens
from smsconsole.engine.outcomes import OutcomeWriter, write_turn
from smsconsole.engine.personalize import Personalizer
from smsconsole.engine.ratelimit import Lanes, RateLimiter
from smsconsole.engine.routing import NoRoute, ProviderEntry, Route, RoutingTable, load_routing
from smsconsole.models import Message
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
from smsconsole.services.providers import Adapters
from smsconsole.services.receipts import part_rows, stored_id
from smsconsole.services.settings import get_settings

log = logging.getLogger("smsconsole.dispatch")

PRIORITY_KINDS = frozenset({"test", "auto", "transactional"})
SHORT_RETRY_AFTER = 2.0  # a 429 asking to wait at most this long is waited out on the same provider
CLAIM_HORIZON = 2.0  # seconds of sending a claim may hold when every provider has a rate limit
MAX_CLAIM = 2000  # messages a claim may take when a batching provider raises the batch size


def dedupe_key(run_id: int, profile_id: int) -> str:
    """The outbox key that makes a campaign run reach each user at most once."""
    return f"run:{run_id}:profile:{profile_id}"


@dataclass(frozen=True)
class DispatchSettings:
    batch_size: int = 50
    max_attempts: int = 5
    backoff_base: float = 2.0
    backoff_cap: float = 300.0
    provider_concurrency: int = 8  # requests in flight per provider
    priority_reserve: float = 0.25  # share of that concurrency bulk traffic leaves to priority traffic
    pipeline_depth: int = 2  # batches in flight at once (claiming the next while one is sending)
    circuit_threshold: int = 5
    circuit_cooldown: float = 30.0


class Dispatcher:
    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        box: SecretBox,
        client: httpx.AsyncClient,
        settings: DispatchSettings | None = None,
        rng: random.Random | None = None,
        guards: Sequence[guard_mod.Guard] | None = None,
        limiter: RateLimiter | None = None,
        token: str | None = None,
        adapters: Adapters | None = None,
        worker: bool = False,
        sharing: Callable[[], int] = lambda: 1,
    ) -> None:
        """`token` is the engine's lease tenure (engine/lease.py): with it, every outbox write is
        fenced on the lease (on the process's engine_workers row when `worker`: a PostgreSQL
        worker dispatching beside the lease holder); without it (tests, tools) the dispatcher
        still claims under a token of its own, unfenced. `adapters` is the engine's shared
        adapter cache (one of its own when not given). `sharing` tells how many processes dispatch
        from this outbox now (this one included): the rate limits are shared between them."""
        self.factory = factory
        self.box = box
        self.client = client
        self.settings = settings or DispatchSettings()
        self.rng = rng or random.Random()
        self.guards = list(guards) if guards is not None else guard_mod.GUARDS
        self.sharing = sharing
        self.limiter = limiter or RateLimiter()
        self.breaker = CircuitBreaker(self.settings.circuit_threshold, self.settings.circuit_cooldown)
        self.adapters = adapters or Adapters(box, client)
        self._lanes: dict[int, Lanes] = {}
        self._claim_lock = asyncio.Lock()
        self.tenure = Tenure(token or uuid.uuid4().hex, fenced=token is not None, worker=worker)
        self.claimed = self.sent = 0  # messages claimed and sent by this dispatcher (the workers list's figures)
        self.stopping = asyncio.Event()
        self._gate = SendGate(factory, self.tenure, self.guards)
        self._outcomes = OutcomeWriter(factory, self.tenure, self.breaker, self.stopping)
        self.personalizer = Personalizer(factory, self.tenure, client)

    @property
    def token(self) -> str:
        return self.tenure.token

    def _fence(self) -> ColumnElement[bool]:
        return self.tenure.fence()

    async def recover(self) -> int:
        """After taking the lease, and then every heartbeat: messages a tenure that is gone (a
        stopped engine, a dead or lapsed worker: a token neither the lease nor a live worker row
        carries) claimed but never sent go back to the queue; messages it left `sending` may have
        been sent, so they become `unknown` (never resent blindly). Live workers' claims are
        theirs. Returns how many became unknown. (Claimed first: a stale holder's sending-write
        racing this one is then caught by the second statement.)"""
        now = clock.now()
        gone = and_(Message.claim_token.is_distinct_from(self.token),
                    or_(Message.claim_token.is_(None), Message.claim_token.not_in(live_tokens())))
        async with self.factory() as session, session.begin():
            requeued = await session.execute(
                update(Message)
                .where(Message.state == "claimed", gone, self._fence())
                .values(state="queued", claim_token=None, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            result = await session.execute(
                update(Message)
                .where(Message.state == "sending", gone, self._fence())
                .values(state="unknown", reason="the engine stopped while this message was being sent; "
                        "it may or may not have reached the provider, so it was not resent",
                        finished_at=now, updated_at=now)
                .execution_options(synchronize_session=False)
            )
        if requeued.rowcount:
            log.info("returned %d message(s) claimed but never sent by a stopped engine to the queue",
                     requeued.rowcount)
        if result.rowcount:
            log.warning("marked %d message(s) left sending by a stopped engine as unknown", result.rowcount)
        return result.rowcount

    async def run_once(self) -> int:
        """Claim one batch, send it, record outcomes. Returns the number of messages handled."""
        batch = await self._claim()
        if batch is None:
            return 0
        await self._process(*batch)
        return len(batch[0])

    async def run(self, stop: asyncio.Event, wake: asyncio.Event, interval: float,
                  lost: asyncio.Event | None = None) -> None:
        """Dispatch until `stop` (or `lost`): up to `pipeline_depth` batches in flight, so the next
        batch is claimed while the previous one is still sending. In-flight batches finish first."""
        in_flight: set[asyncio.Task[None]] = set()

        def done() -> bool:
            return stop.is_set() or (lost is not None and lost.is_set())

        try:
            while not done():
                while len(in_flight) >= self.settings.pipeline_depth:
                    await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                    in_flight = {t for t in in_flight if not t.done()}
                try:
                    batch = await self._claim()
                except Exception:
                    log.exception("claiming messages failed; retrying shortly")
                    await _sleep_unless(stop, 1.0)
                    continue
                if batch is not None:
                    task = asyncio.create_task(self._process_logged(*batch))
                    in_flight.add(task)
                    continue
                wake.clear()
                waiters = [asyncio.ensure_future(e.wait()) for e in (stop, wake, lost) if e is not None]
                waiters.extend(in_flight)  # a finished batch may have requeued something due now
                try:
                    await asyncio.wait(waiters, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiter in waiters[:3]:
                        if waiter not in in_flight:
                            waiter.cancel()
                in_flight = {t for t in in_flight if not t.done()}
        finally:
            self.stopping.set()
            if in_flight:
                await asyncio.gather(*in_flight, return_exceptions=True)

    async def _process_logged(self, rows: list[Claimed], table: RoutingTable,
                              context: guard_mod.GuardContext, callback_base: str) -> None:
        try:
            await self._process(rows, table, context, callback_base)
        except Exception:
            log.exception("dispatching a batch of %d failed; its unsent messages go back to the queue, "
                          "any left `sending` become unknown when the engine restarts", len(rows))
            with contextlib.suppress(Exception):
                await self._release([row.id for row in rows])

    # --- claim -------------------------------------------------------------------------------

    async def _claim(self) -> tuple[list[Claimed], RoutingTable, guard_mod.GuardContext, str] | None:
        """Claim a batch: select the due ids first (a claim can never exceed its limit, whatever
        plan the database picks), then mark exactly those `claimed` by this tenure in one fenced
        UPDATE … RETURNING; load everything the batch needs: providers, groups, recipients'
        profiles, settings."""
        now = clock.now()
        async with self._claim_lock, write_turn(self.factory), self.factory() as session, session.begin():
            table = await load_routing(session, self.box)
            ids = await claims.due_ids(session, now, self._claim_limit(table), self.adapters.blocked)
            if not ids:
                return None
            rows = await claims.take(session, ids, self.token, self._fence(), now)
            if not rows:
                return None
            self.claimed += len(rows)
            context = await guard_mod.load_context(session, rows)
            settings = await get_settings(session)
        for entry in table.providers.values():
            self.breaker.seed(entry.id, entry.circuit_state, entry.circuit_failures, entry.circuit_until)
        return rows, table, context, settings.get("public_base_url", "")

    def _claim_limit(self, table: RoutingTable) -> int:
        """The batch size, raised for a batching provider to fill its concurrency with full
        requests (max_batch × provider_concurrency, at most MAX_CLAIM): a claim, its gate write
        and its outcome write then carry hundreds of messages, not 50. Less when every enabled
        provider has a rate limit: no more than this process's share of what they can take in the
        next CLAIM_HORIZON seconds (claimed messages wait for tokens; N workers share the rate, so
        together they hold no more than one horizon's worth)."""
        enabled = [entry for entry in table.providers.values() if entry.enabled]
        limit = self.settings.batch_size
        for entry in enabled:
            if entry.spec is not None:
                with contextlib.suppress(Exception):  # an adapter that cannot be built fails at send
                    batch = self._adapter(entry).max_batch
                    if batch > 1:
                        limit = max(limit, min(MAX_CLAIM, batch * self.settings.provider_concurrency))
        rates = [entry.rate_limit for entry in enabled]
        if not rates or any(not rate for rate in rates):
            return limit
        share = sum(rates) * CLAIM_HORIZON / max(1, self.sharing())  # type: ignore[arg-type]
        return max(1, min(limit, int(share)))

    async def _release(self, message_ids: list[int]) -> None:
        """Claimed messages this tenure will not send after all go back to the queue."""
        if not message_ids:
            return
        now = clock.now()
        async with self.factory() as session, session.begin():
            await session.execute(
                update(Message)
                .where(Message.id.in_(message_ids), Message.state == "claimed",
                       Message.claim_token == self.token, self._fence())
                .values(state="queued", claim_token=None, updated_at=now)
                .execution_options(synchronize_session=False)
            )

    # --- decide and send ---------------------------------------------------------------------

    async def _process(self, rows: list[Claimed], table: RoutingTable, context: guard_mod.GuardContext,
                       callback_base: str) -> None:
        now = clock.now()
        jobs: list[Job] = []
        finals: list[Final] = []
        passed: list[Claimed] = []
        for row in rows:
            reason = guard_mod.check(row, context, self.guards)
            if reason:
                finals.append((None, row.id, {"state": "suppressed", "reason": reason, "finished_at": now,
                                              "error_code": None, "next_attempt_at": None}))
                continue
            passed.append(row)
        # Campaign messages: rendered for their recipient (engine/personalize.py), or suppressed.
        prepared = await self.personalizer.prepare(passed)
        finals.extend(prepared.finals)
        routes: dict[tuple[Any, ...], Route | NoRoute] = {}  # a batch's messages share a few routes
        for row in prepared.rows:
            key = (row.provider_id, row.provider_name, row.group_id, row.country)
            route = routes.get(key) or routes.setdefault(key, table.route(*key))
            if isinstance(route, NoRoute):
                finals.append((None, row.id, {"state": "failed", "reason": route.reason, "finished_at": now,
                                              "error_code": None, "next_attempt_at": None}))
                continue
            options = prepared.options.get(row.id) or getattr(row, "options", None) or {}
            # handed back for a bind this process lacked: on from that provider of its route
            start = route.provider_ids.index(row.needs_bind_id) if row.needs_bind_id in route.provider_ids else 0
            jobs.append(Job(row, route.provider_ids, route.via, options=options, position=start,
                            priority=row.kind in PRIORITY_KINDS or row.priority > 0))
        attempts: list[Attempt] = []
        unbound = await self._unbound(table)
        pending = jobs
        while pending:
            by_provider: dict[int, list[Job]] = defaultdict(list)
            for job in pending:
                while job.position < len(job.route) and not self.breaker.available(job.route[job.position]):
                    job.skipped_open = True
                    job.position += 1
                if job.position < len(job.route):
                    provider_id = job.route[job.position]
                    if provider_id in unbound:
                        job.handed_to = provider_id  # its bind is held by other processes
                        job.abandoned = True
                    else:
                        by_provider[provider_id].append(job)
                else:
                    self._give_up(job, table)
            if not by_provider:
                break
            sent = await asyncio.gather(*(
                self._send_provider(table.providers[pid], provider_jobs, callback_base)
                for pid, provider_jobs in by_provider.items()
            ))
            for provider_attempts in sent:
                attempts.extend(provider_attempts)
            pending = [job for job in jobs
                       if job.final is None and not job.abandoned and job.position < len(job.route)]
            for job in jobs:
                if job.final is None and not job.abandoned and job.position >= len(job.route):
                    self._give_up(job, table)
        finals.extend((job, job.row.id, job.final) for job in jobs if job.final is not None and not job.abandoned)
        await self._outcomes.record(finals, attempts)
        self.sent += sum(1 for _, _, change in finals if change.get("state") == "sent")
        await self._hand_off([job for job in jobs if job.handed_to is not None])
        # Refused by the gate because its write failed: still claimed by us, never sent.
        await self._release([job.row.id for job in jobs if job.abandoned and not job.admitted and job.handed_to is None])

    async def _unbound(self, table: RoutingTable) -> set[int]:
        """The enabled providers this process holds no bind to (others hold their bind limit), once
        a batch; one enabled since the last heartbeat takes a free slot now, not a heartbeat later."""
        if self.adapters.slots is None:
            return set()

        def unbound() -> set[int]:
            return {entry.id for entry in table.providers.values()
                    if entry.enabled and entry.spec is not None and not self.adapters.sendable(entry.spec)}

        found = unbound()
        if found - self.adapters.blocked:
            async with self.factory() as session:
                await self.adapters.bind_enabled(session)
            found = unbound()
        return found

    async def _hand_off(self, jobs: list[Job]) -> None:
        """Back to the queue for the processes holding their provider's bind (engine/binds.py)."""
        by_provider: dict[int, list[int]] = defaultdict(list)
        for job in jobs:
            by_provider[job.handed_to].append(job.row.id)  # type: ignore[index]
        for provider_id, ids in by_provider.items():
            self.adapters.blocked.add(provider_id)
            await hand_off(self.factory, self.tenure, provider_id, ids)

    async def _send_provider(self, entry: ProviderEntry, jobs: list[Job], callback_base: str) -> list[Attempt]:
        """Send `jobs` through one provider: chunked to its batch size, within its concurrency and
        rate limit, priority traffic first. Each job is settled or moved to its next provider."""
        now = clock.now()
        adapter: Provider | None = None
        error: ProviderError | None = None
        if entry.spec is None:
            error = ConfigurationError(entry.spec_error or f"provider {entry.name!r} cannot be read")
        else:
            try:
                adapter = self._adapter(entry)
            except SecretError as exc:
                error = ConfigurationError(f"provider {entry.name!r}: {exc}")
        if adapter is None:
            assert error is not None
            self.breaker.failed(entry.id, str(error), configuration=True)
            attempts = [Attempt(job.row.id, entry, now, now, None, error) for job in jobs]
            for job in jobs:
                self._after_error(job, entry, error)
            return attempts
        lanes = self._lanes.get(entry.id)
        if lanes is None:
            lanes = self._lanes[entry.id] = Lanes(self.settings.provider_concurrency, self.settings.priority_reserve)
        max_batch = max(1, adapter.max_batch)
        jobs = sorted(jobs, key=lambda j: not j.priority)
        chunks = [jobs[i:i + max_batch] for i in range(0, len(jobs), max_batch)]
        callback = f"{callback_base}/callbacks/{entry.name}/status" if callback_base else None
        results = await asyncio.gather(*(self._send_chunk(adapter, entry, lanes, chunk, callback) for chunk in chunks))
        return [attempt for chunk_attempts in results for attempt in chunk_attempts]

    async def _send_chunk(self, adapter: Provider, entry: ProviderEntry, lanes: Lanes, chunk: list[Job],
                          callback: str | None) -> list[Attempt]:
        priority = chunk[0].priority
        # Tokens first, then a concurrency slot: a chunk waiting for its sender's bucket must not
        # hold a slot that another sender's chunk could use.
        for sender, segments in _segments_by_sender(chunk, entry.default_sender).items():
            buckets = self.limiter.buckets(entry.id, sender, entry.rate_limit, entry.sender_rate_limit)
            await self.limiter.acquire(entry.id, buckets, segments, priority=priority)
        async with lanes.slot(priority):
            if not self.breaker.try_acquire(entry.id):  # opened (or probing) while this chunk waited
                for job in chunk:
                    job.skipped_open = True
                    job.position += 1
                return []
            chunk = await self._through_gate(entry, chunk)
            if not chunk:
                self.breaker.neutral(entry.id)
                return []
            started = clock.now()
            outbound = [
                OutboundMessage(ref=str(job.row.id), to=job.row.to_number, body=job.row.body, sender=job.row.sender,
                                encoding=job.row.encoding, segments=job.row.segments, status_callback_url=callback,
                                options=job.options)
                for job in chunk
            ]
            try:
                outcomes = await adapter.send(outbound)
            except ProviderError as exc:
                outcomes = [SendOutcome(ref=o.ref, error=exc) for o in outbound]
            except Exception as exc:  # a bug in an adapter: the request may have left
                log.exception("provider %s raised unexpectedly", entry.name)
                unknown = OutcomeUnknownError(f"internal error in the {entry.kind} adapter: {type(exc).__name__}")
                outcomes = [SendOutcome(ref=o.ref, error=unknown) for o in outbound]
        finished = clock.now()
        by_ref = {o.ref: o for o in outcomes}
        attempts: list[Attempt] = []
        healthy = False
        failure: ProviderError | None = None
        for job in chunk:
            outcome = by_ref.get(str(job.row.id))
            if outcome is None:
                outcome = SendOutcome(ref=str(job.row.id), error=OutcomeUnknownError(
                    f"the {entry.kind} adapter returned no outcome for this message"))
            attempts.append(Attempt(job.row.id, entry, started, finished, outcome, outcome.error))
            if outcome.error is None:
                healthy = True
                job.final = {
                    "state": "sent", "provider_message_id": stored_id(outcome.provider_message_id), "sent_at": finished,
                    "reason": None, "error_code": None, "next_attempt_at": None,
                    "provider_id": entry.id, "provider_name": entry.name,
                }
                if outcome.price is not None:  # what the answer said it cost; no price leaves the column alone
                    job.final.update(price=outcome.price, price_currency=outcome.price_currency)
                if len(outcome.part_ids) > 1:
                    job.parts = part_rows(job.row.id, entry.id, outcome, finished)
                continue
            error = outcome.error
            if error.kind is ErrorKind.PERMANENT:
                healthy = True  # the provider answered; this recipient is the problem
            elif error.kind in (ErrorKind.TRANSIENT, ErrorKind.CONFIGURATION) and not _short_wait(error):
                failure = error
            self._after_error(job, entry, error)
        if failure is not None:
            self.breaker.failed(entry.id, str(failure), configuration=failure.kind is ErrorKind.CONFIGURATION)
        elif healthy:
            self.breaker.succeeded(entry.id)
        else:
            self.breaker.neutral(entry.id)
        return attempts

    async def _through_gate(self, entry: ProviderEntry, chunk: list[Job]) -> list[Job]:
        """The jobs of `chunk` that may leave now (marked `sending`, guards passed). The rest are
        settled by the gate (suppressed) or no longer ours (abandoned)."""
        try:
            decided = await self._gate.admit(chunk)
        except Exception as exc:
            log.error("could not mark %d message(s) for %s as sending (%s); they go back to the queue",
                      len(chunk), entry.name, exc)
            for job in chunk:
                job.abandoned = True
            return []
        going: list[Job] = []
        for job in chunk:
            if job.row.id not in decided:
                job.abandoned = True  # suppressed meanwhile (STOP), or this tenure lost its lease
            elif decided[job.row.id]:
                job.abandoned = True  # suppressed by the gate's own write
            else:
                job.admitted = True
                going.append(job)
        return going

    def _after_error(self, job: Job, entry: ProviderEntry, error: ProviderError) -> None:
        """A failed try: settle the message (permanent, unknown) or move it along its route."""
        now = clock.now()
        where = {"provider_id": entry.id, "provider_name": entry.name}
        if error.kind is ErrorKind.UNKNOWN:
            job.final = {"state": "unknown", "error_code": error.code, "finished_at": now, "next_attempt_at": None,
                         "reason": f"{error}; not resent, because the provider may have accepted it", **where}
            return
        if error.kind is ErrorKind.PERMANENT:
            job.final = {"state": "failed", "error_code": error.code, "finished_at": now, "next_attempt_at": None,
                         "reason": str(error.message), **where}
            return
        job.errors.append(error)
        if _short_wait(error) and not job.retried_429:
            job.retried_429 = True  # wait it out on the same provider, once
            self.limiter.pause(entry.id, error.retry_after or 0.0)
            return
        job.position += 1  # fail over to the next provider of the route

    def _give_up(self, job: Job, table: RoutingTable) -> None:
        """Every provider of the route failed or is out of rotation for this message."""
        if job.final is not None:
            return
        now = clock.now()
        attempts = job.attempt
        last = job.errors[-1] if job.errors else None
        if last is None:  # nothing was tried: every provider is out of rotation; not an attempt
            reopen = [t for t in (self.breaker.reopens_at(pid) for pid in job.route) if t is not None]
            due = min(reopen) if reopen else now + timedelta(seconds=self.settings.circuit_cooldown)
            job.final = {"state": "queued", "next_attempt_at": due, "error_code": None,
                         "reason": f"waiting: every provider of {job.via} is out of rotation until "
                                   f"{due.strftime('%H:%M:%S')} UTC"}
            return
        retryable = job.skipped_open or any(e.kind is ErrorKind.TRANSIENT for e in job.errors)
        code = last.code
        if retryable and attempts < self.settings.max_attempts:
            retry_after = max((e.retry_after or 0.0) for e in job.errors)
            delay = self._backoff(attempts, retry_after)
            tried = "every provider of " + job.via if len(job.route) > 1 else job.via
            job.final = {"state": "queued", "next_attempt_at": now + timedelta(seconds=delay), "error_code": code,
                         "reason": f"attempt {attempts} of {self.settings.max_attempts} failed on {tried} "
                                   f"({last}); retrying in {delay:.0f}s"}
            return
        if retryable:
            reason = f"gave up after {attempts} attempts: {last}"
        else:
            reason = f"provider configuration: {last}"
        job.final = {"state": "failed", "error_code": code, "finished_at": now, "next_attempt_at": None,
                     "reason": reason}

    def _adapter(self, entry: ProviderEntry) -> Provider:
        assert entry.spec is not None
        return self.adapters.get(entry.spec)

    def _backoff(self, attempts: int, retry_after: float | None) -> float:
        delay = min(self.settings.backoff_cap, self.settings.backoff_base * (2 ** max(0, attempts - 1)))
        delay *= 0.8 + 0.4 * self.rng.random()
        return max(delay, retry_after or 0.0)

def _segments_by_sender(chunk: list[Job], default_sender: str | None) -> dict[str | None, int]:
    totals: dict[str | None, int] = defaultdict(int)
    for job in chunk:
        totals[job.row.sender or default_sender] += max(1, job.row.segments or 1)
    return totals


def _short_wait(error: ProviderError) -> bool:
    return (error.kind is ErrorKind.TRANSIENT and error.http_status == 429
            and error.retry_after is not None and error.retry_after <= SHORT_RETRY_AFTER)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
