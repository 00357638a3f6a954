"""A long-lived SMPP bind on asyncio streams: connect (TLS when asked), bind as a transceiver or
as a transmitter plus a receiver, keep it alive with enquire_link, re-bind with backoff when it
drops, submit through a window of at most N outstanding submit_sm (each matched to its
submit_sm_resp by sequence number) at no more than the throughput limit, and hand deliver_sm
PDUs to a handler in batches, answering each only after the handler returned (a handler that
raises, or no handler, is answered ESME_RX_T_APPN so the SMSC delivers it again).

The state for screens is `SmppSession.status` (a frozen `BindStatus`: bound / binding / down /
closed, window in use, last error, when bound, re-binds)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from smsconsole.providers.smpp import pdu as codec
from smsconsole.providers.smpp.pdu import Pdu, PduError

log = logging.getLogger("smsconsole.providers.smpp")

DELIVER_BATCH = 200  # deliver_sm PDUs handed to the handler at once (one transaction)
MAX_SEQUENCE = 0x7FFFFFFF


class BindState(StrEnum):
    DOWN = "down"  # not bound; re-binding after the backoff (or never started)
    BINDING = "binding"  # connecting and binding now
    BOUND = "bound"
    CLOSED = "closed"  # closed on purpose (unbound)
    STANDBY = "standby"  # this process does not bind: the provider's bind limit is held by others


@dataclass(frozen=True)
class BindStatus:
    """What Home and Providers show of a bind."""

    state: BindState
    window_size: int
    in_flight: int  # submit_sm sent and not answered yet
    last_error: str | None
    bound_since: datetime | None
    rebinds: int  # binds made after the first (connection losses)
    configuration_error: bool = False  # the last bind was refused for its credentials or account

    def describe(self) -> str:
        text = f"{self.state.value}, window {self.in_flight}/{self.window_size}"
        return f"{text}, last error: {self.last_error}" if self.last_error else text


@dataclass(frozen=True)
class SessionSettings:
    host: str
    port: int
    system_id: str
    password: str
    system_type: str = ""
    tls: bool = False
    tls_verify: bool = True
    transceiver: bool = True  # False: a transmitter and a receiver bind
    window: int = 10
    throughput: float = 0.0  # submit_sm per second, 0: no limit
    enquire_link_interval: float = 30.0
    reconnect_backoff: float = 1.0  # seconds before the first re-bind, doubling up to RECONNECT_CAP
    connect_timeout: float = 10.0  # connect and bind
    response_timeout: float = 30.0  # a submit_sm unanswered this long has an unknown outcome
    address_range: str = ""

    @property
    def reconnect_cap(self) -> float:
        return max(self.reconnect_backoff, 60.0)


class BindRefused(Exception):
    """The SMSC answered the bind with an error status."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.rule = codec.status_rule(status)
        super().__init__(f"bind refused [{codec.status_text(status)}]: {self.rule.reason}")


class NotSent(Exception):
    """The submit_sm never left (not bound, or the link dropped before it was written)."""


class OutcomeLost(Exception):
    """The submit_sm was written and no answer will come (the link dropped, or it timed out)."""


DeliverHandler = Callable[[Sequence[Pdu]], Awaitable[None]]


class _Link:
    """One TCP connection bound one way: requests out with their responses matched by sequence
    number, requests in (deliver_sm, enquire_link, unbind) answered."""

    def __init__(self, session: SmppSession, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 name: str) -> None:
        self.session = session
        self.reader, self.writer, self.name = reader, writer, name
        self.pending: dict[int, asyncio.Future[Pdu]] = {}
        self._sequence = 0
        self.closed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.bound = False
        self._tasks: list[asyncio.Task[Any]] = []
        self._deliveries: asyncio.Queue[Pdu] = asyncio.Queue()
        self._last_read = asyncio.get_running_loop().time()
        self._out: list[bytes] = []  # PDUs written this loop turn, sent together (one syscall for a window)

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._read(), name=f"smpp-{self.name}-read"))

    def start_bound(self) -> None:
        self.bound = True
        self._tasks.append(asyncio.create_task(self._keepalive(), name=f"smpp-{self.name}-enquire"))
        self._tasks.append(asyncio.create_task(self._deliver(), name=f"smpp-{self.name}-deliver"))

    def next_sequence(self) -> int:
        self._sequence = self._sequence % MAX_SEQUENCE + 1
        return self._sequence

    async def request(self, command: str, timeout: float, **fields: Any) -> Pdu:
        """Send a request and wait for its response. NotSent when the link is down before it is
        written; OutcomeLost when it dropped (or `timeout` passed) after."""
        if self.closed.done():
            raise NotSent(f"the {self.name} link is down: {self.closed.result()}")
        sequence = self.next_sequence()
        if command == "submit_sm":  # the hot path: our encoder, byte for byte smpplib's
            raw = codec.encode_submit_sm(sequence, **fields)
        else:
            raw = codec.encode(command, sequence, **fields)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Pdu] = loop.create_future()
        self.pending[sequence] = future
        timer = loop.call_later(timeout, self._expire, sequence, f"no {command}_resp within {timeout:g}s")
        self.send(raw)
        try:
            return await future
        finally:
            timer.cancel()
            self.pending.pop(sequence, None)

    def _expire(self, sequence: int, reason: str) -> None:
        future = self.pending.pop(sequence, None)
        if future is not None and not future.done():
            future.set_exception(OutcomeLost(reason))

    def send(self, raw: bytes) -> None:
        """Queue a PDU; the PDUs queued in one turn of the loop leave in one write."""
        if self.closed.done():
            return
        if not self._out:
            asyncio.get_running_loop().call_soon(self._flush)
        self._out.append(raw)

    def _flush(self) -> None:
        data, self._out = b"".join(self._out), []
        if data and not self.closed.done():
            try:
                self.writer.write(data)
            except (OSError, RuntimeError) as exc:  # what was queued may or may not have left
                self.close(f"write failed: {exc}")

    def close(self, reason: str) -> None:
        """Drop the connection (after what is queued); every request still waiting learns its
        outcome is lost."""
        if not self.closed.done():
            self._flush()
            self.closed.set_result(reason)
        for future in self.pending.values():
            if not future.done():
                future.set_exception(OutcomeLost(f"the connection dropped ({reason})"))
        self.pending.clear()
        with contextlib.suppress(Exception):
            self.writer.close()
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()

    async def wait_closed(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()

    async def _read(self) -> None:
        reason = "the SMSC closed the connection"
        try:
            while True:
                raw = await codec.read_pdu(self.reader)
                self._last_read = asyncio.get_running_loop().time()
                self._received(raw)
        except asyncio.IncompleteReadError:
            pass
        except PduError as exc:
            reason = f"unreadable data from the SMSC: {exc}"
        except OSError as exc:
            reason = f"connection error: {exc}"
        except asyncio.CancelledError:
            reason = "closed"
        self.close(reason)

    def _received(self, raw: bytes) -> None:
        _, command_id, status, sequence = codec.header(raw)
        if command_id & 0x80000000:  # a response
            future = self.pending.get(sequence)
            try:
                answer = codec.decode(raw)
            except PduError as exc:
                if future is not None and not future.done():
                    future.set_exception(OutcomeLost(f"unreadable response: {exc}"))
                return
            if future is not None and not future.done():
                future.set_result(answer)
            elif command_id != 0x80000015:
                log.info("smpp %s: a response to no request (sequence %d) ignored", self.name, sequence)
            return
        try:
            request = codec.decode(raw)
        except PduError:
            self.send(codec.encode("generic_nack", sequence, status=0x00000003))
            return
        if request.command == "deliver_sm":
            if self.bound and self.session.can_receive(self):
                self._deliveries.put_nowait(request)
            else:
                self.send(codec.encode("deliver_sm_resp", sequence, status=codec.RX_T_APPN))
        elif request.command == "enquire_link":
            self.send(codec.encode("enquire_link_resp", sequence))
        elif request.command == "unbind":
            self.send(codec.encode("unbind_resp", sequence))
            self.close("the SMSC unbound")
        else:
            self.send(codec.encode("generic_nack", sequence, status=0x00000003))

    async def _keepalive(self) -> None:
        """enquire_link when the link has been quiet for the interval; no answer drops it."""
        interval = self.session.settings.enquire_link_interval
        loop = asyncio.get_running_loop()
        while not self.closed.done():
            await asyncio.sleep(max(0.05, self._last_read + interval - loop.time()))
            if loop.time() - self._last_read < interval:
                continue
            try:
                await self.request("enquire_link", timeout=interval)
            except (NotSent, OutcomeLost) as exc:
                self.close(f"enquire_link unanswered: {exc}")
                return

    async def _deliver(self) -> None:
        """Hand queued deliver_sm to the handler, a batch at a time, then answer each."""
        while not self.closed.done():
            batch = [await self._deliveries.get()]
            while len(batch) < DELIVER_BATCH and not self._deliveries.empty():
                batch.append(self._deliveries.get_nowait())
            status = codec.ROK
            handler = self.session.on_deliver
            if handler is None:
                status = codec.RX_T_APPN
                log.warning("smpp %s: %d deliver_sm refused for now: nothing stores them", self.name, len(batch))
            else:
                try:
                    await handler(batch)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    status = codec.RX_T_APPN
                    self.session.last_error = f"storing deliver_sm failed: {exc}"
                    log.error("smpp %s: storing %d deliver_sm failed (%s); answered ESME_RX_T_APPN", self.name,
                              len(batch), exc)
            for request in batch:
                self.send(codec.encode("deliver_sm_resp", request.sequence, status=status))


class SmppSession:
    """One provider's bind. `start()` keeps it bound until `close()`; `submit()` sends one
    submit_sm through the window; `check()` binds once and unbinds (the connection test)."""

    def __init__(self, settings: SessionSettings, on_deliver: DeliverHandler | None = None) -> None:
        self.settings = settings
        self.on_deliver = on_deliver
        self.state = BindState.DOWN
        self.last_error: str | None = None
        self.configuration_error = False
        self.bound_since: datetime | None = None
        self.rebinds = 0
        self.in_flight = 0
        self._binds = 0
        self._links: tuple[_Link, ...] = ()
        self._bound = asyncio.Event()
        self._window = asyncio.Semaphore(max(1, settings.window))
        self._pace_lock = asyncio.Lock()
        self._next_slot = 0.0
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def status(self) -> BindStatus:
        return BindStatus(self.state, self.settings.window, self.in_flight, self.last_error, self.bound_since,
                          self.rebinds, self.configuration_error)

    @property
    def running(self) -> bool:
        return self._supervisor is not None and not self._supervisor.done()

    def can_receive(self, link: _Link) -> bool:
        return self.settings.transceiver or link.name == "receiver"

    # --- the bind's life -------------------------------------------------------------------

    def start(self) -> None:
        """Bind in the background, and bind again (with backoff) whenever the bind is lost."""
        if not self.running:
            self._stopping = False
            self._supervisor = asyncio.create_task(self._supervise(), name="smpp-session")

    async def close(self) -> None:
        """Unbind and stop (in-flight submits end as OutcomeLost if no answer comes first)."""
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
            self._supervisor = None
        await self._drop("closed", unbind=True)
        self.state, self.bound_since = BindState.CLOSED, None

    async def wait_bound(self, timeout: float) -> None:
        """Return once bound; NotSent when not bound within `timeout` (BindRefused at once when the
        last bind was refused for its credentials or account)."""
        self.start()
        if self._bound.is_set():
            return
        if self.configuration_error and self.last_error:
            raise NotSent(self.last_error)
        try:
            await asyncio.wait_for(self._bound.wait(), timeout)
        except TimeoutError:
            raise NotSent(f"not bound to {self.settings.host}:{self.settings.port} within {timeout:g}s"
                          + (f" ({self.last_error})" if self.last_error else "")) from None

    async def _supervise(self) -> None:
        delay = self.settings.reconnect_backoff
        while not self._stopping:
            self.state = BindState.BINDING
            try:
                self._links = await self._bind_all()
            except asyncio.CancelledError:
                raise
            except BindRefused as exc:
                self._down(str(exc), configuration=exc.rule.kind.value == "configuration")
                if self.configuration_error:  # bad credentials do not mend by retrying; SMSCs lock accounts
                    delay = max(delay, self.settings.reconnect_cap)
            except (OSError, TimeoutError, PduError, NotSent, OutcomeLost) as exc:
                self._down(f"cannot bind to {self.settings.host}:{self.settings.port}: {_reason(exc)}")
            else:
                if self._binds:
                    self.rebinds += 1
                self._binds += 1
                self.state, self.bound_since = BindState.BOUND, datetime.now(UTC)
                self.last_error, self.configuration_error = None, False
                delay = self.settings.reconnect_backoff
                self._bound.set()
                log.info("smpp: bound to %s:%s as %s", self.settings.host, self.settings.port,
                         "transceiver" if self.settings.transceiver else "transmitter + receiver")
                done, _ = await asyncio.wait([link.closed for link in self._links],
                                             return_when=asyncio.FIRST_COMPLETED)
                reason = next(iter(done)).result()
                await self._drop(reason, unbind=False)
                self._down(f"bind lost: {reason}")
                log.warning("smpp: bind to %s:%s lost: %s", self.settings.host, self.settings.port, reason)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.settings.reconnect_cap)

    def _down(self, error: str, *, configuration: bool = False) -> None:
        self._bound.clear()
        self.state, self.bound_since = BindState.DOWN, None
        self.last_error, self.configuration_error = error, configuration

    async def _drop(self, reason: str, *, unbind: bool) -> None:
        links, self._links = self._links, ()
        self._bound.clear()
        for link in links:
            if unbind and not link.closed.done():
                with contextlib.suppress(NotSent, OutcomeLost):
                    await link.request("unbind", timeout=2.0)
            link.close(reason)
        for link in links:
            await link.wait_closed()

    async def _bind_all(self) -> tuple[_Link, ...]:
        if self.settings.transceiver:
            return (await self._bind("bind_transceiver", "transceiver"),)
        transmitter = await self._bind("bind_transmitter", "transmitter")
        try:
            receiver = await self._bind("bind_receiver", "receiver")
        except BaseException:
            transmitter.close("the receiver bind failed")
            await transmitter.wait_closed()
            raise
        return transmitter, receiver

    async def _bind(self, command: str, name: str) -> _Link:
        settings = self.settings
        context = None
        if settings.tls:
            context = ssl.create_default_context()
            if not settings.tls_verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(settings.host, settings.port, ssl=context), settings.connect_timeout)
        link = _Link(self, reader, writer, name)
        link.start()
        try:
            answer = await link.request(
                command, settings.connect_timeout, system_id=settings.system_id, password=settings.password,
                system_type=settings.system_type, addr_ton=0, addr_npi=0, address_range=settings.address_range)
            if answer.status != codec.ROK:
                raise BindRefused(answer.status)
        except BaseException:
            link.close("bind failed")
            await link.wait_closed()
            raise
        link.start_bound()
        return link

    # --- sending ---------------------------------------------------------------------------

    async def submit(self, **fields: Any) -> Pdu:
        """One submit_sm through the window: its submit_sm_resp (any status). NotSent when it
        never left; OutcomeLost when it left and no answer came."""
        await self.wait_bound(self.settings.connect_timeout)
        async with self._window:
            await self._pace()
            link = self._links[0] if self._links else None
            if link is None or not self._bound.is_set():
                raise NotSent(self.last_error or "not bound")
            self.in_flight += 1
            try:
                return await link.request("submit_sm", self.settings.response_timeout, **fields)
            finally:
                self.in_flight -= 1

    async def _pace(self) -> None:
        """Space submit_sm PDUs to the throughput limit (the bind's own cap, per PDU)."""
        if self.settings.throughput <= 0:
            return
        loop = asyncio.get_running_loop()
        async with self._pace_lock:
            now = loop.time()
            wait = self._next_slot - now
            if wait > 0:
                await asyncio.sleep(wait)
            self._next_slot = max(now, self._next_slot) + 1.0 / self.settings.throughput

    # --- the connection test ---------------------------------------------------------------

    async def check(self) -> str:
        """Bind once (as the settings say), unbind, and say what answered. Raises BindRefused,
        OSError or TimeoutError."""
        links = await self._bind_all()
        try:
            return ", ".join(link.name for link in links)
        finally:
            for link in links:
                with contextlib.suppress(NotSent, OutcomeLost):
                    await link.request("unbind", timeout=2.0)
                link.close("unbound")
                await link.wait_closed()


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
