"""What uvicorn's h11 protocol leaves open, closed: a connection must finish sending its request
(headers and body) within `request_timeout` seconds, and the listener holds at most
`max_connections` connections. uvicorn's own settings cover the rest (`timeout_keep_alive` for
idle kept-alive connections, `h11_max_incomplete_event_size` for the header size); its
`limit_concurrency` only answers 503 once a request has arrived, so a connection that never sends
one would hold its file descriptor for ever.

At the limit, a new connection takes the place of the one that has waited longest without finishing
its request (a slow or idle client, or a kept-alive connection between requests); only when every
connection is busy with a request being answered is the new one refused with a 503. Either way the
listener never holds more descriptors than its limit (plus the few being accepted), so the
dispatcher's outbound connections and the database keep theirs."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

log = logging.getLogger("smsconsole.listener")



def _answer(status: str, body: dict[str, str], *headers: str) -> bytes:
    """A whole HTTP/1.1 answer written straight to the socket (no request cycle to answer through)."""
    content = json.dumps(body).encode()
    head = [f"HTTP/1.1 {status}", "content-type: application/json", "connection: close", *headers,
            f"content-length: {len(content)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + content


_TIMEOUT_ANSWER = _answer("408 Request Timeout",
                          {"error": "timeout", "message": "the request did not arrive in time; send it again"})
_BUSY_ANSWER = _answer("503 Service Unavailable",
                       {"error": "unavailable", "message": "too many connections; retry shortly"}, "retry-after: 1")


class ConnectionGuard:
    """The limits of one server, and its connections still waiting for (the rest of) a request,
    oldest first."""

    def __init__(self, max_connections: int, request_timeout: float) -> None:
        self.max_connections = max_connections
        self.request_timeout = request_timeout
        self.waiting: dict[GuardedH11Protocol, None] = {}  # insertion order: longest waiting first

    def protocol(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> GuardedH11Protocol:
        """uvicorn's protocol factory (`uvicorn.Config(http=guard.protocol)`)."""
        return GuardedH11Protocol(config, server_state, app_state, _loop, guard=self)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for reading each request and a connection limit."""

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None, *, guard: ConnectionGuard) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.guard = guard
        self._deadline: asyncio.TimerHandle | None = None
        self._partial = False  # bytes of an unfinished request have arrived
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.guard.max_connections:
            longest = next(iter(self.guard.waiting), None)
            if longest is None:
                self.transport = transport  # connection_lost closes it
                self._refused = True
                transport.write(_BUSY_ANSWER)
                transport.close()
                log.warning("listener: all %d connections are busy with requests; refused one (503)",
                            self.guard.max_connections)
                return
            log.info("listener: at its limit of %d connections; closed the one waiting longest for its request",
                     self.guard.max_connections)
            longest.close_unfinished()
        super().connection_made(transport)
        self._wait(deadline=True)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self in self.guard.waiting:
            self._partial = True
            if self._deadline is None:  # the first bytes of a new request on a kept-alive connection
                self._arm()
        super().data_received(data)
        if self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):  # the request is in (or the connection over)
            self._done_waiting()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._wait(deadline=False)  # kept alive: uvicorn's timeout_keep_alive runs until the next byte
            if self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):  # a pipelined request already read
                self._done_waiting()

    def connection_lost(self, exc: Exception | None) -> None:
        self._done_waiting()
        super().connection_lost(exc)

    def close_unfinished(self) -> None:
        """Close this connection, which has not finished sending its request: 408 if part of one
        arrived, silently if nothing did (as uvicorn closes an idle kept-alive connection)."""
        self._done_waiting()
        if self.transport is None or self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if cycle.response_started:  # an answer is on its way out: cut it off, nothing else to say
                self.transport.close()
                return
            cycle.disconnected = True  # the app, still reading the body, gets http.disconnect
        if self._partial:
            self.transport.write(_TIMEOUT_ANSWER)
        self.transport.close()

    def _wait(self, *, deadline: bool) -> None:
        self.guard.waiting.pop(self, None)
        self.guard.waiting[self] = None
        self._partial = False
        if deadline:
            self._arm()

    def _arm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(self.guard.request_timeout, self._timed_out)

    def _done_waiting(self) -> None:
        self.guard.waiting.pop(self, None)
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self) -> None:
        self._deadline = None
        log.info("listener: closed a connection that did not send its request within %g s",
                 self.guard.request_timeout)
        self.close_unfinished()
