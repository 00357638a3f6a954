"""Runs the engine when this process holds the lease, and stands by (ready to take over after
expiry) when another process does. The console and `smsconsole serve` both run this."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsconsole.config import Config
from smsconsole.engine import lease
from smsconsole.engine.campaigns import CampaignScheduler
from smsconsole.engine.dispatcher import DispatchSettings, Dispatcher
from smsconsole.engine.reconcile import RECONCILE_SECONDS, reconcile_unknown
from smsconsole.engine.pollers import POLL_TICK_SECONDS, Pollers, PollSettings
from smsconsole.listener.server import Listener, start_listener
from smsconsole.secrets import SecretBox
from smsconsole.services.providers import Adapters

log = logging.getLogger("smsconsole.engine")


class EngineState(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    STANDBY = "standby"
    STOPPED = "stopped"


@dataclass(frozen=True)
class EngineStatus:
    state: EngineState
    holder: lease.LeaseInfo | None  # who runs the engine when it is not us

    def describe(self) -> str:
        if self.state is EngineState.RUNNING:
            return "engine: running in this process"
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
    ) -> None:
        self.factory = factory
        self.box = box
        self.config = config
        self.holder = holder or lease.Holder.for_this_process()
        self._client = client
        self._wake = asyncio.Event()
        self._lost = asyncio.Event()
        self._token: str | None = None  # this tenure's lease token (outbox writes are fenced on it)
        self.state = EngineState.STARTING
        self.other_holder: lease.LeaseInfo | None = None

    @property
    def status(self) -> EngineStatus:
        return EngineStatus(self.state, self.other_holder)

    def poke(self) -> None:
        """Something was queued: dispatch now instead of at the next interval."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        client = self._client or httpx.AsyncClient(timeout=self.config.send_timeout_seconds)
        try:
            while not stop.is_set():
                try:
                    token = await lease.acquire(self.factory, self.holder, self.config.lease_ttl_seconds)
                except Exception as exc:  # the database is unreachable for now: keep trying
                    log.error("cannot reach the database for the engine lease: %s", exc)
                    token = None
                if token is not None:
                    log.info("engine lease acquired by %s", self.holder.id)
                    self.other_holder = None
                    self._token = token
                    await self._run_holding(stop, client)
                    continue
                self.state = EngineState.STANDBY
                with contextlib.suppress(Exception):
                    async with self.factory() as session:
                        self.other_holder = await lease.current(session)
                await _wait(stop, self.config.heartbeat_seconds)
        finally:
            self.state = EngineState.STOPPED
            if self._client is None:
                await client.aclose()

    async def _run_holding(self, stop: asyncio.Event, client: httpx.AsyncClient) -> None:
        self.state = EngineState.RUNNING
        self._lost.clear()
        adapters = Adapters(self.box, client)  # one adapter per provider for everything below
        dispatcher = Dispatcher(
            self.factory, self.box, client,
            DispatchSettings(batch_size=self.config.dispatch_batch_size,
                             max_attempts=self.config.max_send_attempts),
            token=self._token, adapters=adapters,
        )
        pollers = Pollers(self.factory, self.box, client, PollSettings(self.config.poll_interval_seconds,
                                                                       self.config.reconcile_after_seconds),
                          adapters=adapters)

        async def reconcile() -> None:
            await reconcile_unknown(self.factory, self.box, client, adapters=adapters)

        # The engine's chores: each waits its interval after the previous turn finished, so a slow
        # turn (a provider that is slow to answer) delays the next one instead of overlapping it,
        # and each is cancelled and awaited on the way out.
        chores = [asyncio.create_task(_every(seconds, chore), name=f"engine-{name}") for name, seconds, chore in (
            ("lease-heartbeat", self.config.heartbeat_seconds, self._heartbeat),
            ("receipt-pollers", POLL_TICK_SECONDS, pollers.tick),
            ("reconcile-unknown", RECONCILE_SECONDS, reconcile),
        )]
        listener: Listener | None = None
        campaigns = CampaignScheduler(self.factory, poke=self.poke, client=client)
        try:
            listener = await start_listener(self.factory, self.box, self.config, lambda: self.state.value,
                                            adapters=adapters)
            await dispatcher.recover()
            try:
                await campaigns.start()
            except Exception:  # campaigns wait for the next tenure; test sends and receipts go on
                log.exception("the campaign scheduler did not start")
            await dispatcher.run(stop, self._wake, self.config.dispatch_interval_seconds, self._lost)
        finally:
            await campaigns.stop()
            if listener is not None:
                await listener.stop()
            for chore in chores:
                chore.cancel()
            await asyncio.gather(*chores, return_exceptions=True)
            if self._lost.is_set():
                log.warning("engine lease lost; standing by")
            else:
                with contextlib.suppress(Exception):
                    await lease.release(self.factory, self.holder)
                log.info("engine stopped, lease released")
            self.state = EngineState.STANDBY if not stop.is_set() else EngineState.STOPPED

    async def _heartbeat(self) -> None:
        try:
            if not await lease.renew(self.factory, self.holder, self.config.lease_ttl_seconds, self._token):
                self._lost.set()
        except Exception as exc:
            log.error("lease heartbeat failed: %s", exc)


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
