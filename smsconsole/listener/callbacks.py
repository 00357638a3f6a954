"""Provider callbacks: `GET|POST /callbacks/{provider}/status` (delivery receipts) and
`/callbacks/{provider}/inbound` (replies). Each call is verified by the provider's adapter (its
signature scheme, or the provider's secret ?token=) before it is parsed, against the public URL the
provider called (Settings → Public callback URL + path + query). A forged, malformed or oversized
call gets a 4xx and touches no row; a good one is committed before it is answered, so nothing
acknowledged is lost. Delivery receipts are committed in groups (group_commit.py): concurrent
callbacks share one transaction and each is answered once that transaction is committed."""

from __future__ import annotations

import logging
import time

from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from smsconsole.listener import ListenerContext
from smsconsole.listener.group_commit import GroupCommitter, Unavailable
from smsconsole.providers.base import MAX_CALLBACK_BYTES, CallbackRejected, CallbackRequest, Provider
from smsconsole.secrets import SecretError
from smsconsole.services.errors import ServiceError
from smsconsole.services.providers import NAME_RULE
from smsconsole.services.replies import record_inbound
from smsconsole.services.settings import get_settings

log = logging.getLogger("smsconsole.listener")

KINDS = ("status", "inbound")
ADAPTER_CACHE_SECONDS = 5.0  # how long a provider's adapter and the public URL are reused


class _Adapters:
    """Adapters by provider name, from the engine's shared cache (rebuilt there when the provider
    changes), looked up again after a few seconds so a renamed or removed provider is noticed;
    and the public base URL."""

    def __init__(self, context: ListenerContext) -> None:
        self.context = context
        self._by_name: dict[str, tuple[float, int, Provider]] = {}
        self._public: tuple[float, str] | None = None

    async def get(self, name: str, now: float) -> tuple[int, Provider] | None:
        cached = self._by_name.get(name)
        if cached and now - cached[0] < ADAPTER_CACHE_SECONDS:
            return cached[1], cached[2]
        async with self.context.factory() as session:
            found = await self.context.adapters.named(session, name)
        if found is None:
            self._by_name.pop(name, None)
            return None
        self._by_name[name] = (now, *found)
        return found

    async def public_base(self, now: float) -> str:
        if self._public and now - self._public[0] < ADAPTER_CACHE_SECONDS:
            return self._public[1]
        async with self.context.factory() as session:
            base = (await get_settings(session)).get("public_base_url", "") or ""
        self._public = (now, base.rstrip("/"))
        return self._public[1]


def routes(context: ListenerContext) -> list[Route]:
    adapters = _Adapters(context)
    committer = GroupCommitter(context.factory)

    async def callback(request: Request) -> Response:
        return await _callback(request, context, adapters, committer)

    return [Route("/{provider}/{kind}", callback, methods=["GET", "POST"])]


def _answer(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


async def _callback(request: Request, context: ListenerContext, adapters: _Adapters,
                    committer: GroupCommitter) -> Response:
    name, kind = request.path_params["provider"], request.path_params["kind"]
    if not NAME_RULE.fullmatch(name):  # no provider can have this name: answered without a query
        request.state.key_prefix = "-"
        return _answer(404, "unknown_provider", "no provider has that name (names are 1-64 letters, digits, "
                                                "'.', '_' or '-')")
    request.state.key_prefix = name  # the access log shows which provider called
    if kind not in KINDS:
        return _answer(404, "not_found", f"no endpoint {request.method} {request.url.path}; "
                                         f"use /callbacks/{name}/status or /callbacks/{name}/inbound")
    body = await _read_body(request)
    if body is None:
        return _answer(413, "too_large", f"the body is larger than {MAX_CALLBACK_BYTES // 1024} KiB")
    now = time.monotonic()
    try:
        found = await adapters.get(name, now)
        public = await adapters.public_base(now)
    except (OperationalError, InterfaceError, OSError) as exc:
        log.warning("callback from %s: database unavailable: %s", name, type(exc).__name__)
        return _unavailable()
    except SecretError as exc:
        log.error("callback from %s: provider settings unreadable: %s", name, exc)
        return _answer(503, "unavailable", "this provider's settings cannot be read; the engine log says why")
    if found is None:
        return _answer(404, "unknown_provider", f"no provider named {name!r}")
    provider_id, adapter = found
    callback_request = CallbackRequest(
        method=request.method, url=_public_url(request, public),
        headers={k.lower(): v for k, v in request.headers.items()}, body=body,
    )
    try:
        if kind == "status":
            reports: list = adapter.status_callback(callback_request)
        else:
            reports = adapter.inbound_callback(callback_request)
    except CallbackRejected as rejected:
        log.info("callback %s/%s rejected: %s %s", name, kind, rejected.status, rejected.reason)
        status = rejected.status if 400 <= rejected.status < 500 else 400
        return _answer(status, "rejected", rejected.reason)
    except Exception as exc:  # an adapter bug on hostile input must not become a 500 loop
        log.error("callback %s/%s: the %s adapter failed to parse it: %s", name, kind, type(adapter).kind,
                  type(exc).__name__)
        return _answer(400, "rejected", "the callback could not be read")
    try:
        if kind == "status":
            if reports:
                await committer.submit(provider_id, name, reports)  # returns once committed
        else:
            async with context.factory() as session, session.begin():
                for report in reports:
                    await record_inbound(session, provider_id=provider_id, provider_name=name, report=report,
                                         via="webhook")
    except Unavailable as exc:  # nothing of its batch was written
        log.warning("callback from %s: receipts not committed: %s", name, exc)
        return _unavailable()
    except (OperationalError, InterfaceError, OSError) as exc:
        log.warning("callback from %s: database unavailable: %s", name, type(exc).__name__)
        return _unavailable()
    except ServiceError as exc:  # rolled back: nothing was written
        log.info("callback %s/%s refused: %s", name, kind, exc)
        return _answer(400, "rejected", str(exc))
    request.state.items = len(reports)
    if kind == "inbound" and reports and context.poke is not None:
        context.poke()  # an auto-response or a live campaign's message may be queued: send it now
    status, content_type, answer = adapter.callback_answer(kind)
    return Response(answer, status_code=status, media_type=content_type)


def _unavailable() -> JSONResponse:
    return JSONResponse({"error": "unavailable", "message": "the database is busy or unreachable; retry shortly"},
                        status_code=503, headers={"Retry-After": "1"})


def _public_url(request: Request, public_base: str) -> str:
    """The URL the provider called: the public base URL (where a proxy or tunnel forwards from)
    with this request's path and query; the request's own URL when no public URL is set."""
    path = request.url.path
    query = request.url.query
    if not public_base:
        return str(request.url)
    return f"{public_base}{path}" + (f"?{query}" if query else "")


async def _read_body(request: Request) -> bytes | None:
    """The body, or None as soon as it is over the callback size limit (declared or streamed)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_CALLBACK_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_CALLBACK_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
