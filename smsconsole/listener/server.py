"""uvicorn inside the engine: the listener is a task on the engine's event loop, started when the
engine takes the lease (and `listen_port` is set) and stopped when it stops or loses the lease.
A port that cannot be bound is logged and the engine carries on without the listener.

The listener shares the engine's file descriptors with the dispatcher's outbound connections and
the database, so it is bounded (guard.py): a request must arrive within
`listen_request_timeout_seconds`, at most `listen_max_connections` are held (never more than the
process's descriptor limit leaves after FD_RESERVE), and connections are accepted LISTEN_BACKLOG
at a time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import uvicorn
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp

from smsconsole.config import Config
from smsconsole.listener.app import create_app
from smsconsole.listener.guard import ConnectionGuard
from smsconsole.secrets import SecretBox
from smsconsole.services.providers import Adapters

log = logging.getLogger("smsconsole.listener")

GRACEFUL_SHUTDOWN_SECONDS = 5.0
FD_RESERVE = 256  # descriptors the listener leaves to the dispatcher, the pollers and the database
LISTEN_BACKLOG = 128  # connections accepted per loop turn (and the kernel's queue): a burst stays bounded
MAX_HEADER_BYTES = 16 * 1024  # request line and headers; more is a 400 (h11's default, set explicitly)
MIN_CONNECTIONS = 16


@dataclass(frozen=True)
class ListenLimits:
    max_connections: int = 256
    request_timeout_seconds: float = 15.0
    keep_alive_seconds: float = 5.0

    @classmethod
    def from_config(cls, config: Config) -> ListenLimits:
        return cls(config.listen_max_connections, config.listen_request_timeout_seconds,
                   config.listen_keep_alive_seconds)


def connection_limit(configured: int) -> int:
    """`configured`, lowered (and logged) when the descriptor limit would leave less than FD_RESERVE."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return configured
    room = max(MIN_CONNECTIONS, soft - FD_RESERVE - LISTEN_BACKLOG)
    if configured > room:
        log.warning("listener: listen_max_connections %d would leave too few of the %d file descriptors "
                    "(ulimit -n) for sending and the database; holding at most %d", configured, soft, room)
        return room
    return configured


class Listener:
    """One uvicorn server on a socket bound here, so a bind error is ours to report (uvicorn
    itself would call sys.exit) and signals stay with the process that runs the engine."""

    def __init__(self, app: ASGIApp, host: str, port: int, limits: ListenLimits | None = None, *,
                 reuse_port: bool = False) -> None:
        self.app, self.host, self.port = app, host, port
        self.reuse_port = reuse_port  # the workers of `serve --workers N` share the port (SO_REUSEPORT)
        self.limits = limits or ListenLimits()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Bind and serve. Raises OSError when the address cannot be bound."""
        sock = await _bind(self.host, self.port, reuse_port=self.reuse_port)
        self.port = sock.getsockname()[1]
        guard = ConnectionGuard(connection_limit(self.limits.max_connections), self.limits.request_timeout_seconds)
        config = uvicorn.Config(
            self.app, http=guard.protocol, log_config=None, log_level="warning", access_log=False, lifespan="off",
            ws="none", server_header=False, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            timeout_keep_alive=self.limits.keep_alive_seconds,  # type: ignore[arg-type]  # a float works
            h11_max_incomplete_event_size=MAX_HEADER_BYTES, backlog=LISTEN_BACKLOG,
        )
        self._server = _EmbeddedServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="smsconsole-listener")
        while not self._server.started and not self._task.done():
            await asyncio.sleep(0.01)
        if self._task.done():  # startup failed: surface its error
            sock.close()
            self._task.result()
            raise OSError("the listener stopped during startup")
        self._task.add_done_callback(_report_crash)

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=GRACEFUL_SHUTDOWN_SECONDS + 2)
        except TimeoutError:
            self._server.force_exit = True
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        except Exception as exc:
            log.error("listener stopped with an error: %s", type(exc).__name__)
        self._server = self._task = None
        log.info("listener on %s stopped", self.address)


async def start_listener(
    factory: async_sessionmaker[AsyncSession], box: SecretBox, config: Config,
    engine_state: Callable[[], str] | None = None, adapters: Adapters | None = None,
    poke: Callable[[], None] | None = None, reuse_port: bool = False,
) -> Listener | None:
    """The running listener, or None when it is off (listen_port 0) or cannot start (logged)."""
    if not config.listen_port:
        return None
    listener = Listener(create_app(factory, box=box, engine_state=engine_state, adapters=adapters, poke=poke),
                        config.listen_host, config.listen_port, ListenLimits.from_config(config),
                        reuse_port=reuse_port)
    try:
        await listener.start()
    except OSError as exc:
        log.error("listener: cannot listen on %s:%s: %s; the engine runs without the webhook/ingestion "
                  "listener (free the port or change listen_port)", config.listen_host, config.listen_port,
                  os.strerror(exc.errno) if exc.errno else exc)
        return None
    except Exception as exc:  # never take the engine down with it
        log.error("listener: failed to start (%s); the engine runs without it", type(exc).__name__)
        return None
    log.info("listener: serving the ingestion API and provider callbacks on %s", listener.address)
    return listener


async def _bind(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    if not infos:
        raise OSError(f"cannot resolve {host!r}")
    family, _, _, _, address = infos[0]
    sock = socket.create_server(address, family=family, backlog=LISTEN_BACKLOG, reuse_port=reuse_port)
    sock.setblocking(False)
    return sock


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # Ctrl+C and SIGTERM belong to the console / `serve`, which stop the engine


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("listener crashed: %s; the engine runs without it until it restarts",
                  type(task.exception()).__name__)
