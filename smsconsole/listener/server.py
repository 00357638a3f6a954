"""uvicorn inside the engine: the listener is a task on the engine's event loop, started when the
engine takes the lease (and `listen_port` is set) and stopped when it stops or loses the lease.
A port that cannot be bound is logged and the engine carries on without the listener."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Iterator

import uvicorn
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp

from smsconsole.config import Config
from smsconsole.listener.app import create_app
from smsconsole.secrets import SecretBox

log = logging.getLogger("smsconsole.listener")

GRACEFUL_SHUTDOWN_SECONDS = 5.0


class Listener:
    """One uvicorn server on a socket bound here, so a bind error is ours to report (uvicorn
    itself would call sys.exit) and signals stay with the process that runs the engine."""

    def __init__(self, app: ASGIApp, host: str, port: int) -> None:
        self.app, self.host, self.port = app, host, port
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Bind and serve. Raises OSError when the address cannot be bound."""
        sock = await _bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_config=None, log_level="warning", access_log=False, lifespan="off", ws="none",
            server_header=False, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
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
    engine_state: Callable[[], str] | None = None,
) -> Listener | None:
    """The running listener, or None when it is off (listen_port 0) or cannot start (logged)."""
    if not config.listen_port:
        return None
    listener = Listener(create_app(factory, box=box, engine_state=engine_state), config.listen_host,
                        config.listen_port)
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


async def _bind(host: str, port: int) -> socket.socket:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    if not infos:
        raise OSError(f"cannot resolve {host!r}")
    family, _, _, _, address = infos[0]
    sock = socket.create_server(address, family=family, backlog=2048)
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
