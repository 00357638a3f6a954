"""`web`: the console in a browser (textual-serve), on loopback unless a web token is set."""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import signal
import socket
from typing import Any

from smsconsole.cli.output import Commands, OperationFailed, UsageError
from smsconsole.cli.runtime import with_runtime
from smsconsole.config import Config

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def register(commands: Commands) -> None:
    web = commands.add_parser(
        "web", help="serve the console to a browser (loopback only unless web_token is set)",
        description="Serve the console to a browser: each browser tab runs its own console on this machine, "
                    "with this command's configuration. It listens on loopback by default; any other address "
                    "needs web_token set in the config, and every request must then carry it. Put TLS in "
                    "front (a reverse proxy) when it leaves this machine.")
    web.add_argument("--host", type=_host, default=DEFAULT_HOST,
                     help=f"address to listen on (default {DEFAULT_HOST}; any but loopback needs web_token)")
    web.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT})")
    web.set_defaults(func=cmd_web)


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number from 1 to 65535, got {value!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 1 to 65535, got {port}")
    return port


def _host(value: str) -> str:
    host = value.strip()
    if not host:
        raise argparse.ArgumentTypeError("expected an address or a host name, got nothing")
    return host


def _is_loopback(host: str) -> bool:
    """True when every address `host` stands for is this machine's loopback."""
    from smsconsole.web import is_loopback_name  # lazy: start-up (aiohttp)

    if is_loopback_name(host):
        return True
    try:
        infos = socket.getaddrinfo(host.strip("[]"), None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise UsageError(f"--host: cannot find the address of {host!r}") from None
    return all(is_loopback_name(str(info[4][0])) for info in infos)


def _url(host: str, port: int) -> str:
    if host in ("0.0.0.0", "::", "[::]"):  # every interface: the machine's name is what others type
        host = socket.gethostname()
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}/"


async def cmd_web(config: Config, args: argparse.Namespace) -> int:
    from smsconsole.logs import setup_logging  # lazy: start-up
    from smsconsole.secrets import REDACTOR

    host, port = args.host, args.port
    if not config.web_token and not _is_loopback(host):
        raise OperationFailed(f"--host {host} is not loopback: set web_token in {config.config_file} (or "
                              f"SMSCONSOLE_WEB_TOKEN) first; every request must then carry it")

    async def check(runtime: Any) -> int:  # fail in one line now, not in each browser tab
        return 0

    await with_runtime(config, check, need_secrets=True)
    setup_logging(config.effective_log_file, config.log_level)
    REDACTOR.register(config.web_token)
    # Each browser session runs `smsconsole` with this environment: the same config dir, data dir,
    # database and log level as this command, whatever flags chose them.
    os.environ["SMSCONSOLE_CONFIG_DIR"] = str(config.config_dir)
    os.environ["SMSCONSOLE_DATA_DIR"] = str(config.data_dir)
    os.environ["SMSCONSOLE_LOG_LEVEL"] = config.log_level
    if config.database_url:
        os.environ["SMSCONSOLE_DATABASE_URL"] = config.database_url

    from smsconsole.web import ConsoleServer  # lazy: start-up (aiohttp, textual-serve)

    server = ConsoleServer(config.web_token, host, port)
    try:
        runner = await server.start()
    except OSError as exc:
        raise OperationFailed(_bind_error(host, port, exc)) from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    how = " (sign in with web_token as the password, or add ?token=<web_token>)" if config.web_token else ""
    print(f"smsconsole web: open {_url(host, port)}{how}; ctrl+c stops", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
    return 0


def _bind_error(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"--port {port}: the port is in use on {host} (stop what holds it or choose another port)"
    if exc.errno == errno.EACCES:
        return f"--port {port}: not allowed to listen on it (ports below 1024 need privileges; choose another)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"--host {host}: not an address of this machine"
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
