"""Runs the engine when this process holds the lease, and stands by (ready to take over after
expiry) when another process does. The console and `smsconsole serve` both run this."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsconsole import clock
from smsconsole.config import Config
from smsconsole.engine import binds, lease
from smsconsole.engine.campaigns import CampaignScheduler
from smsconsole.engine.dispatcher import Dispatcher, DispatchSettings
from smsconsole.engine.pollers import POLL_TICK_SECONDS, Pollers, PollSettings
from smsconsole.engine.ratelimit import RateLimiter
from smsconsole.engine.reconcile import RECONCILE_SECONDS, reconcile_unknown
from smsconsole.engine.shared_ratelimit import SharedRateLimiter
from smsconsole.engine.workers import WorkerRegistry, bind_report, forget_dead
from smsconsole.listener.server import Listener, start_listener
from smsconsole.secrets import SecretBox
from smsconsole.services.escalations import ESCALATION_SECONDS, run_escalations
from smsconsole.services.inbound_parts import FLUSH_SECONDS, flush_held_parts
from smsconsole.services.providers import Adapters

log = logging.getLogger("smsconsole.engine")

DEREGISTER_WAIT = 2.0  # seconds a stopping engine gives its worker row's delete (SQLite may be busy)


class EngineState(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    WORKER = "worker"  # dispatching beside the lease holder (PostgreSQL workers)
    STANDBY = "standby"
    STOPPED = "stopped"


@dataclass(frozen=True)
class EngineStatus:
    state: EngineState
    holder: lease.LeaseInfo | None  # who runs the engine when it is not us

    def describe(self) -> str:
        if self.state is EngineState.RUNNING:
            return "engine: running in this process"
        if self.state is EngineState.WORKER and self.holder is not None:
            return f"engine: worker here, scheduler on {self.holder.host} pid {self.holder.pid}"
        if self.state is EngineState.STANDBY and self.holder is not None:
            return f"engine: on {self.holder.host} pid {self.holder.pid}"
        return f"engine: {self.state.value}"


class Engine:
    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        box: SecretBox,
        config: Config,
        client: httpx.AsyncClient | None = None,
        holder: lease.Holder | None = None,
        *,
        workers: bool = False,
        reuse_port: bool = False,
    ) -> None:
        """`workers`: dispatch (and serve the listener) while another process holds the lease,
        with rate limits shared in the database — PostgreSQL only (`smsconsole serve` there).
        `reuse_port`: the listener shares its port with the other workers of `serve --workers N`."""
        self.factory = factory
        self.box = box
        self.config = config
        self.holder = holder or lease.Holder.for_this_process()
        self._client = client
        self._wake = asyncio.Event()
        self._lost = asyncio.Event()
        self._token: str | None = None  # this tenure's lease token (outbox writes are fenced on it)
        self._expires: datetime | None = None  # when the lease ends unless renewed (as this process set it)
        self._lapsed = False  # the lease expired for a moment before a renewal committed: this tenure is over
        self.state = EngineState.STARTING
        self.other_holder: lease.LeaseInfo | None = None
        self.workers = workers
        self.reuse_port = reuse_port
        self.limiter: RateLimiter | None = SharedRateLimiter(factory) if workers else None
        self._dispatcher: Dispatcher | None = None
        self._done_totals = (0, 0)  # claimed and sent by this process's dispatchers that have ended
        self.registry = WorkerRegistry(factory, self.holder, config.lease_ttl_seconds, self._totals)
        self._worker_lost = asyncio.Event()  # our engine_workers row lapsed: the worker tenure is over
        self._adapters: Adapters | None = None  # this tenure's adapters (and the SMPP binds they hold)
        self.registry.binds = lambda: bind_report(self.bind_statuses())  # on its row, for Home and Providers

    @property
    def status(self) -> EngineStatus:
        return EngineStatus(self.state, self.other_holder)

    def poke(self) -> None:
        """Something was queued: dispatch now instead of at the next interval."""
        self._wake.set()

    def bind_statuses(self) -> dict[int, Any]:
        """provider id → the state of this process's bind to it (SMPP `BindStatus`: bound /
        binding / down, window in use, last error); empty while no tenure runs."""
        return self._adapters.bind_statuses() if self._adapters is not None else {}

    async def _bind(self, adapters: Adapters) -> None:
        """Bind the enabled providers that hold a bind (SMPP), so receipts and replies arrive."""
        try:
            async with self.factory() as session:
                await adapters.bind_enabled(session)
        except Exception as exc:  # the database is unreachable for now: the next heartbeat tries again
            log.error("cannot load the providers to bind: %s", exc)

    def _tenure_adapters(self, client: httpx.AsyncClient, token: str) -> Adapters:
        """This tenure's adapters, binding only the providers of which `token` holds a slot of the
        bind limit (engine/binds.py)."""
        async def slots(limits: dict[int, int]) -> set[int]:
            return await binds.take_slots(self.factory, token, limits)

        self._adapters = Adapters(self.box, client, self.factory, slots=slots)
        return self._adapters

    async def _unbind(self, adapters: Adapters, token: str | None) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(adapters.aclose(), timeout=DEREGISTER_WAIT * 2)
        if token is not None:
            with contextlib.suppress(Exception):  # else the slots are free once the token lapses
                await asyncio.wait_for(binds.give_back(self.factory, token), timeout=DEREGISTER_WAIT)
        if self._adapters is adapters:
            self._adapters = None

    def _totals(self) -> tuple[int, int]:
        claimed, sent = self._done_totals
        if self._dispatcher is not None:
            claimed, sent = claimed + self._dispatcher.claimed, sent + self._dispatcher.sent
        return claimed, sent

    def _new_dispatcher(self, client: httpx.AsyncClient, adapters: Adapters, token: str | None, *,
                        worker: bool) -> Dispatcher:
        """This tenure's dispatcher (the lease holder's, or a worker's fenced on its row), counted
        in the process's figures."""
        self._dispatcher = Dispatcher(
            self.factory, self.box, client,
            DispatchSettings(batch_size=self.config.dispatch_batch_size, max_attempts=self.config.max_send_attempts),
            token=token, adapters=adapters, limiter=self.limiter, worker=worker,
            sharing=lambda: self.registry.dispatching if self.workers else 1,
        )
        return self._dispatcher

    def _dispatcher_ended(self, dispatcher: Dispatcher) -> None:
        claimed, sent = self._done_totals
        self._done_totals = (claimed + dispatcher.claimed, sent + dispatcher.sent)
        if self._dispatcher is dispatcher:
            self._dispatcher = None

    async def run(self, stop: asyncio.Event) -> None:
        client = self._client or httpx.AsyncClient(timeout=self.config.send_timeout_seconds)
        with contextlib.suppress(Exception):  # else the heartbeat registers it
            await self.registry.register()
        registered = asyncio.create_task(self._keep_registered(stop), name="engine-worker-row")
        try:
            while not stop.is_set():
                started = clock.now()
                try:
                    token = await lease.acquire(self.factory, self.holder, self.config.lease_ttl_seconds)
                except Exception as exc:  # the database is unreachable for now: keep trying
                    log.error("cannot reach the database for the engine lease: %s", exc)
                    token = None
                if token is not None:
                    log.info("engine lease acquired by %s", self.holder.id)
                    self.other_holder = None
                    self._token = token
                    self._expires = started + timedelta(seconds=self.config.lease_ttl_seconds)
                    self.registry.role = "scheduler"
                    await self._run_holding(stop, client)
                    continue
                with contextlib.suppress(Exception):
                    async with self.factory() as session:
                        self.other_holder = await lease.current(session)
                if self.workers and self.registry.registered and not stop.is_set():
                    self.registry.role = "worker"
                    await self._run_worker(stop, client)
                    continue
                self.state = EngineState.STANDBY
                self.registry.role = "standby"
                await _wait(stop, self.config.heartbeat_seconds)
        finally:
            self.state = EngineState.STOPPED
            registered.cancel()
            await asyncio.gather(registered, return_exceptions=True)
            with contextlib.suppress(Exception):  # at most a moment: the row expires by itself anyway
                await asyncio.wait_for(self.registry.deregister(), timeout=DEREGISTER_WAIT)
            if self._client is None:
                await client.aclose()

    async def _keep_registered(self, stop: asyncio.Event) -> None:
        """This process's engine_workers row, from start to stop: registered, renewed every
        heartbeat with its role and figures, and registered anew (a new worker tenure) when a
        renewal finds it lapsed."""
        while not stop.is_set():
            await _wait(stop, self.config.heartbeat_seconds)
            try:
                if not self.registry.registered:
                    await self.registry.register()
                elif not await self.registry.heartbeat():
                    log.warning("this worker's row lapsed (a late heartbeat); its claims are the scheduler's "
                                "to recover, and it dispatches on under a new token")
                    await self.registry.register()
                    self._worker_lost.set()  # after the new token exists: the next worker tenure takes it
            except Exception as exc:
                log.error("worker heartbeat failed: %s", exc)

    async def _run_worker(self, stop: asyncio.Event, client: httpx.AsyncClient) -> None:
        """Dispatch beside the lease holder, fenced on this process's worker row, until the lease
        is free to take (then the caller takes it), the row lapses, or `stop`."""
        self.state = EngineState.WORKER
        self._worker_lost.clear()
        leave = asyncio.Event()
        token = self.registry.token
        adapters = self._tenure_adapters(client, token)
        dispatcher = self._new_dispatcher(client, adapters, token, worker=True)

        async def watch() -> None:
            info = None
            with contextlib.suppress(Exception):
                async with self.factory() as session:
                    info = self.other_holder = await lease.current(session)
            if self._worker_lost.is_set() or info is None or not info.alive:
                leave.set()  # the lease is free (the scheduler died or stopped), or our tenure lapsed

        watcher = asyncio.create_task(_every(self.config.heartbeat_seconds, watch), name="engine-worker-watch")
        binds = asyncio.create_task(_every(self.config.heartbeat_seconds, lambda: self._bind(adapters)),
                                    name="engine-worker-binds")
        lost = asyncio.create_task(self._worker_lost.wait())
        lost.add_done_callback(lambda _: leave.set())
        listener: Listener | None = None
        log.info("dispatching as a worker (scheduler on %s)",
                 self.other_holder.host if self.other_holder else "another process")
        try:
            listener = await start_listener(self.factory, self.box, self.config, lambda: self.state.value,
                                            adapters=adapters, poke=self.poke, reuse_port=self.reuse_port)
            self.registry.listening = listener.address if listener is not None else None
            await self._bind(adapters)
            await dispatcher.run(stop, self._wake, self.config.dispatch_interval_seconds, leave)
        finally:
            for task in (watcher, binds, lost):
                task.cancel()
            await asyncio.gather(watcher, binds, lost, return_exceptions=True)
            if listener is not None:
                await listener.stop()
            self.registry.listening = None
            self._dispatcher_ended(dispatcher)
            await self._unbind(adapters, token)

    async def _run_holding(self, stop: asyncio.Event, client: httpx.AsyncClient) -> None:
        self.state = EngineState.RUNNING
        self._lost.clear()
        token = self._token
        assert token is not None
        adapters = self._tenure_adapters(client, token)  # one adapter per provider below
        dispatcher = self._new_dispatcher(client, adapters, token, worker=False)
        pollers = Pollers(self.factory, self.box, client, PollSettings(self.config.poll_interval_seconds,
                                                                       self.config.reconcile_after_seconds),
                          adapters=adapters)

        async def reconcile() -> None:
            await reconcile_unknown(self.factory, self.box, client, adapters=adapters)

        async def recover_workers() -> None:
            # a worker whose row expired is dead (or paused past it): what it claimed goes back to the queue
            await dispatcher.recover()
            async with self.factory() as session, session.begin():
                await forget_dead(session)

        async def escalate() -> None:
            if await run_escalations(self.factory, client):
                self.poke()  # resends were queued

        async def flush_parts() -> None:
            if await flush_held_parts(self.factory):
                self.poke()  # an auto-response may be queued

        # The engine's chores: each waits its interval after the previous turn finished, so a slow
        # turn (a provider that is slow to answer) delays the next one instead of overlapping it,
        # and each is cancelled and awaited on the way out.
        chores = [asyncio.create_task(_every(seconds, chore), name=f"engine-{name}") for name, seconds, chore in (
            ("lease-heartbeat", self.config.heartbeat_seconds, self._heartbeat),
            ("recover-workers", self.config.heartbeat_seconds, recover_workers),
            ("receipt-pollers", POLL_TICK_SECONDS, pollers.tick),
            ("reconcile-unknown", RECONCILE_SECONDS, reconcile),
            ("escalations", ESCALATION_SECONDS, escalate),
            ("held-reply-parts", FLUSH_SECONDS, flush_parts),
            ("binds", self.config.heartbeat_seconds, lambda: self._bind(adapters)),
        )]
        listener: Listener | None = None
        campaigns = CampaignScheduler(self.factory, poke=self.poke, client=client)
        try:
            listener = await start_listener(self.factory, self.box, self.config, lambda: self.state.value,
                                            adapters=adapters, poke=self.poke, reuse_port=self.reuse_port)
            self.registry.listening = listener.address if listener is not None else None
            await self._bind(adapters)
            await dispatcher.recover()
            try:
                await campaigns.start()
            except Exception:  # campaigns wait for the next tenure; test sends and receipts go on
                log.exception("the campaign scheduler did not start")
            await dispatcher.run(stop, self._wake, self.config.dispatch_interval_seconds, self._lost)
        finally:
            self._dispatcher_ended(dispatcher)
            await campaigns.stop()
            if listener is not None:
                await listener.stop()
            self.registry.listening = None
            for chore in chores:
                chore.cancel()
            await asyncio.gather(*chores, return_exceptions=True)
            await self._unbind(adapters, token)
            if self._lapsed:
                # Its writes in the gap were refused by the fence, and a renewed lease would hand this
                # process the same token again: give it up, so the next tenure (ours or another's) gets
                # a new token and its recovery settles what this one left claimed or sending.
                self._lapsed = False
                with contextlib.suppress(Exception):
                    await lease.release(self.factory, self.holder)
                log.warning("engine lease lapsed for a moment (a late heartbeat); starting a new tenure")
            elif self._lost.is_set():
                log.warning("engine lease lost; standing by")
            else:
                with contextlib.suppress(Exception):
                    await lease.release(self.factory, self.holder)
                log.info("engine stopped, lease released")
            self.state = EngineState.STANDBY if not stop.is_set() else EngineState.STOPPED

    async def _heartbeat(self) -> None:
        """Renew the lease. A renewal that commits after the lease's end (the statement waited for
        the database, or the loop was busy) still succeeds — its time was read before the wait —
        but the outbox writes fenced on the lease in that gap were refused: the tenure ends then too."""
        started = clock.now()
        try:
            renewed = await lease.renew(self.factory, self.holder, self.config.lease_ttl_seconds, self._token)
        except Exception as exc:
            log.error("lease heartbeat failed: %s", exc)
            return
        if not renewed:
            self._lost.set()
            return
        if self._expires is not None and clock.now() > self._expires:
            self._lapsed = True
            self._lost.set()
        self._expires = started + timedelta(seconds=self.config.lease_ttl_seconds)


async def _every(seconds: float, chore: Callable[[], Awaitable[None]]) -> None:
    """Run `chore` every `seconds` after the previous run finished, until cancelled."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await chore()
        except Exception:  # a chore logs its own errors; one that escapes must not end the loop
            log.exception("engine chore %s failed", getattr(chore, "__qualname__", chore))


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
