"""A loopback fake SMS gateway for the Generic HTTP provider: it accepts any method on any path,
records every request byte for byte (raw path, raw query, headers in order, body), and answers
from a script of replies (a fixed reply, or one computed from the request)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.base import FakeProvider


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # raw, still percent-encoded
    query: str  # raw, still percent-encoded
    headers: tuple[tuple[str, str], ...]  # names lower-cased, in the order sent
    body: bytes

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name.lower()), None)

    @property
    def header_names(self) -> set[str]:
        return {key for key, _ in self.headers}

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    @property
    def form(self) -> list[tuple[str, str]]:
        return parse_qsl(self.text, keep_blank_values=True)

    @property
    def query_pairs(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query, keep_blank_values=True)

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        scheme, _, encoded = (self.header("authorization") or "").partition(" ")
        if scheme.lower() != "basic":
            return None
        username, _, password = base64.b64decode(encoded).decode("utf-8").partition(":")
        return username, password


@dataclass(frozen=True)
class Reply:
    """A scripted answer; `body` is sent as it is (a dict or list as JSON)."""

    status: int = 200
    body: str | bytes | dict[str, Any] | list[Any] = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    def response(self) -> Response:
        if isinstance(self.body, dict | list):
            return Response(json.dumps(self.body), self.status, self.headers, media_type="application/json")
        return Response(self.body, self.status, self.headers, media_type="text/plain")


Responder = Reply | Callable[[RecordedRequest], Reply]


class GatewayStyleFake(FakeProvider):
    """A provider fake whose requests are recorded as RecordedRequest here (headers kept in order,
    `header()`, `form` pairs) and whose scripted replies are this module's Reply."""

    def _recorded(self, request: Request, body: bytes) -> RecordedRequest:
        return RecordedRequest(method=request.method, path=request.url.path, query=request.url.query,
                               headers=tuple((k.lower(), v) for k, v in request.headers.items()), body=body)

    def _response(self, reply: Reply) -> Response:
        return reply.response()


class FakeGateway:
    """Records requests and answers them: scripted replies first, then `default`."""

    def __init__(self) -> None:
        self.url = ""  # set by whoever serves the app
        self.requests: list[RecordedRequest] = []
        self.default: Responder = Reply(200, {"status": "ok"})
        self._script: deque[Responder] = deque()
        self.app = Starlette(routes=[
            Route("/{path:path}", self._handle, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        ])

    def answer(self, *replies: Responder) -> None:
        self._script.extend(replies)

    def reset(self) -> None:
        self.requests.clear()
        self._script.clear()
        self.default = Reply(200, {"status": "ok"})

    async def _handle(self, request: Request) -> Response:
        recorded = RecordedRequest(
            method=request.method,
            path=request.scope["raw_path"].decode("ascii"),
            query=request.scope["query_string"].decode("ascii"),
            headers=tuple((k.decode("latin-1"), v.decode("utf-8", "replace")) for k, v in request.headers.raw),
            body=await request.body(),
        )
        self.requests.append(recorded)
        responder = self._script.popleft() if self._script else self.default
        reply = responder(recorded) if callable(responder) else responder
        if reply.delay:
            await asyncio.sleep(reply.delay)
        return reply.response()
