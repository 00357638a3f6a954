"""The listener's ASGI app: `/healthz`, then one mount per area. Every answer is JSON, errors
included; every request is logged as one INFO line without keys or payload data."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smsconsole.listener import ApiError, Limits, ListenerContext, callbacks, ingest, links, messages_api, openapi
from smsconsole.secrets import SecretBox
from smsconsole.services.providers import Adapters

log = logging.getLogger("smsconsole.listener")

HEALTH_TIMEOUT_SECONDS = 3.0


def create_app(
    factory: async_sessionmaker[AsyncSession],
    *,
    box: SecretBox | None = None,
    engine_state: Callable[[], str] | None = None,
    limits: Limits | None = None,
    adapters: Adapters | None = None,
    poke: Callable[[], None] | None = None,
) -> Starlette:
    """The app for one engine. A new area adds its `Mount` here, built from the same context.
    `adapters` is the engine's shared adapter cache; without it the app keeps its own, opening
    provider secrets with `box`. `poke` wakes the engine's dispatcher when a request queued messages."""
    context = ListenerContext(factory=factory, adapters=adapters or Adapters(box, None),
                              engine_state=engine_state, limits=limits or Limits(), poke=poke)
    routes = [
        Route("/healthz", _health_endpoint(context), methods=["GET"]),
        Route("/openapi.json", _openapi_endpoint, methods=["GET"]),
        Mount("/v1", routes=[*ingest.routes(context), *messages_api.routes(context)]),
        Mount("/callbacks", routes=callbacks.routes(context)),
        *links.routes(context),  # GET /{code}: last, so every named path above wins
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(RequestLog)],
        exception_handlers={ApiError: _api_error, HTTPException: _http_error},
    )


async def _openapi_endpoint(request: Request) -> Response:
    """No authentication: the description of every route (ingestion, messages, callbacks, links)."""
    return JSONResponse(openapi.spec())


def _health_endpoint(context: ListenerContext) -> Callable[[Request], object]:
    async def health(request: Request) -> Response:
        """No authentication: says whether the engine runs and the database answers."""
        engine = context.engine_state() if context.engine_state else "unknown"
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS), context.factory() as session:
                await session.execute(select(1))
            database = "ok"
        except Exception as exc:  # whatever the reason, the answer is "not healthy"; the log says why
            log.warning("health check: database unavailable: %s", type(exc).__name__)
            database = "unavailable"
        healthy = database == "ok" and engine in ("running", "unknown")
        return JSONResponse({"status": "ok" if healthy else "unavailable", "engine": engine, "database": database},
                            status_code=200 if healthy else 503)

    return health


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    if exc.status_code == 404:
        message = f"no endpoint {request.method} {request.url.path}"
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        message = f"{request.method} is not allowed on {request.url.path}; use {allowed}"
    else:
        message = str(exc.detail)
    return JSONResponse({"error": code, "message": message}, status_code=exc.status_code, headers=exc.headers)


class RequestLog:
    """One INFO line per request (method, path, status, item count, key prefix, time); an
    unexpected error becomes a JSON 500 and is logged by type only, since database errors can
    carry payload values. A client that hangs up before its request is complete is no error of
    ours: logged at INFO with status 499 (nginx's "client closed request"), nothing answered."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        method, path = scope["method"], scope["path"]
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_status(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        except ClientDisconnect:
            status = 499
            log.info("%s %s: the client disconnected before its request was complete", method, path)
        except Exception as exc:
            log.error("%s %s failed: %s", method, path, type(exc).__name__)
            log.debug("traceback of the failed request", exc_info=True)
            if response_started:
                raise
            await JSONResponse({"error": "internal", "message": "internal error; the engine log has the details"},
                               status_code=500)(scope, receive, send_status)
        finally:
            log.info("%s %s %s items=%s key=%s %.0fms", method, path, status,
                     state.get("items", "-"), state.get("key_prefix", "-"),
                     (time.perf_counter() - started) * 1000)
