"""The console in a browser: textual-serve's server (aiohttp and xterm.js), each browser session
running `smsconsole` as a child process, behind a guard on every path it serves.

The guard: with no token, only requests naming this machine (a loopback Host header) are served,
so a web page cannot reach the console through a name that resolves to 127.0.0.1 (DNS rebinding).
With a token, every request carries it: `?token=` (answered with a session cookie and a redirect
to the same address without the token), the cookie, `Authorization: Bearer`, or HTTP basic auth
with the token as the password (the browser asks for it). The websocket that drives the console
must also come from the page's own origin, so another site cannot open it from a visitor's browser."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import ipaddress
import logging
import shlex
import sys
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import web
from textual_serve.server import Server

log = logging.getLogger("smsconsole.web")

COOKIE = "smsconsole_web"
REALM = "smsconsole"
WEBSOCKET_PATH = "/ws"
_COOKIE_CONTEXT = b"smsconsole web session"


def console_command() -> str:
    """The shell command each browser session runs: this interpreter's `smsconsole` (the
    configuration reaches it through the environment, see cli/web.py)."""
    return shlex.join([sys.executable, "-m", "smsconsole"])


def is_loopback_name(host: str) -> bool:
    """True when `host` (a name or an address, IPv6 with or without brackets) is this machine
    without a lookup: 127.0.0.0/8, ::1, localhost and *.localhost."""
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _host_name(host_header: str) -> str:
    """The host of a Host header, without the port (IPv6 literals keep no brackets)."""
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def _https(request: web.Request) -> bool:
    # a TLS proxy in front says so; trusting it costs nothing: it only picks wss:// and Secure
    return request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"


class Guard:
    """Who may use the server: see the module's docstring."""

    def __init__(self, token: str) -> None:
        self._token = token.encode() if token else b""
        self._cookie = hmac.new(self._token, _COOKIE_CONTEXT, hashlib.sha256).hexdigest() if token else ""

    def _matches(self, offered: str) -> bool:
        return hmac.compare_digest(offered.encode(), self._token)

    def _credential(self, request: web.Request) -> str | None:
        """How the request proved it holds the token: "cookie", "query", "header", or None."""
        cookie = request.cookies.get(COOKIE)
        if cookie is not None and hmac.compare_digest(cookie.encode(), self._cookie.encode()):
            return "cookie"
        query = request.query.get("token")
        if query is not None and self._matches(query):
            return "query"
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and self._matches(value.strip()):
            return "header"
        if scheme.lower() == "basic":
            try:
                password = base64.b64decode(value.strip(), validate=True).decode().partition(":")[2]
            except (binascii.Error, UnicodeDecodeError):
                return None
            if self._matches(password):
                return "header"
        return None

    def _set_cookie(self, request: web.Request, response: web.StreamResponse) -> None:
        response.set_cookie(COOKIE, self._cookie, path="/", httponly=True, samesite="Strict",
                            secure=_https(request))

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        credential: str | None = None
        if not self._token:
            if not is_loopback_name(_host_name(request.host)):
                log.warning("web: refused %s %s from %s: Host %r is not this machine and no web_token is set",
                            request.method, request.path, request.remote, request.host)
                raise web.HTTPForbidden(text="This console is served to this machine only. To open it from other "
                                             "hosts, set web_token in the config and restart `smsconsole web`.\n")
        else:
            credential = self._credential(request)
            if credential is None:
                log.warning("web: refused %s %s from %s: no valid token", request.method, request.path,
                            request.remote)
                raise web.HTTPUnauthorized(
                    text="Sign in with the console's web token (as the password), or open the address with "
                         "?token=<web_token>.\n",
                    headers={"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'})
            if credential == "query" and request.path != WEBSOCKET_PATH:
                # the token leaves the address bar (and the history's next entry) at once
                query = request.query.copy()
                query.popall("token")
                redirect = web.HTTPSeeOther(request.rel_url.with_query(query))
                self._set_cookie(request, redirect)
                raise redirect
        if request.path == WEBSOCKET_PATH and not self._same_origin(request):
            log.warning("web: refused the console's websocket from %s: Origin %r is not %r", request.remote,
                        request.headers.get("Origin"), request.host)
            raise web.HTTPForbidden(text="This websocket is for the console's own page.\n")
        response = await handler(request)
        if credential == "header" and not response.prepared:
            self._set_cookie(request, response)  # so the page's websocket carries it too
        return response

    @staticmethod
    def _same_origin(request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        if origin is None:  # not a browser: it had to pass the checks above like any request
            return True
        return urlsplit(origin).netloc.lower() == request.host.lower()


class ConsoleServer(Server):
    """textual-serve's Server with the guard on every route, the page's addresses taken from the
    request (so they work through a proxy and on any interface), and our own logging."""

    def __init__(self, token: str, host: str, port: int) -> None:
        super().__init__(console_command(), host=host, port=port, title="smsconsole")
        self.guard = Guard(token)
        self._sessions: set[asyncio.Task[Any]] = set()

    def initialize_logging(self) -> None:
        """Our logging is set up by the command (the log file, secrets redacted)."""

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.insert(0, self.guard.middleware)
        return app

    async def on_startup(self, app: web.Application) -> None:
        """The command prints the address to open (textual-serve's banner would say the bind address)."""

    async def on_shutdown(self, app: web.Application) -> None:
        # each open session's handler then tells its console to quit and waits for it to exit
        for task in list(self._sessions):
            task.cancel()

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        log.info("web: console session opened for %s", request.remote)
        try:
            return await super().handle_websocket(request)
        finally:
            self._sessions.discard(task)
            log.info("web: console session closed for %s", request.remote)

    @aiohttp_jinja2.template("app_index.html")
    async def handle_index(self, request: web.Request) -> dict[str, Any]:
        font_size = request.query.get("fontsize", "16")
        scheme = "wss" if _https(request) else "ws"
        return {
            "font_size": int(font_size) if font_size.isdigit() and 6 <= int(font_size) <= 48 else 16,
            "app_websocket_url": f"{scheme}://{request.host}{WEBSOCKET_PATH}",
            "config": {"static": {"url": "/static/"}},
            "application": {"name": self.title},
        }

    async def start(self) -> web.AppRunner:
        """Bind and serve; OSError when the address cannot be bound."""
        runner = web.AppRunner(await self._make_app(), access_log=None, shutdown_timeout=10)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except BaseException:
            await runner.cleanup()
            raise
        return runner
