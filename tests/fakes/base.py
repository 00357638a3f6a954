"""What every provider fake shares: the request it recorded, a scripted reply, and a base class
that records each request and answers scripted replies before anything else. A fake follows its
provider's documented API; this is only the plumbing."""

from __future__ import annotations

import asyncio
import base64
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # names lower-cased
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        return dict(self.form_pairs)

    @property
    def form_pairs(self) -> list[tuple[str, str]]:
        return parse_qsl(self.body.decode("utf-8"), keep_blank_values=True)

    @property
    def params(self) -> dict[str, str]:
        return dict(parse_qsl(self.query, keep_blank_values=True))

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        scheme, _, encoded = self.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            username, _, password = base64.b64decode(encoded).decode("utf-8").partition(":")
        except ValueError:
            return None
        return username, password


@dataclass(frozen=True)
class Reply:
    """A scripted answer: a dict or list body is sent as JSON, text and bytes as they are."""

    status: int = 200
    body: dict[str, Any] | list[Any] | str | bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def reply_response(reply: Reply) -> Response:
    if isinstance(reply.body, dict | list):
        return JSONResponse(reply.body, status_code=reply.status, headers=reply.headers)
    return Response(reply.body, status_code=reply.status, headers=reply.headers)


class FakeProvider:
    """Base of the provider fakes: `base_url` is set by whoever serves `app`; every request is kept
    in `requests`; replies given to `answer_next` answer the next requests, whatever they are."""

    def __init__(self) -> None:
        self.base_url = ""
        self.requests: list[Any] = []
        self._replies: deque[Any] = deque()
        self._closing = False

    def answer_next(self, *replies: Reply) -> None:
        """Answer the next requests, whatever they are, with `replies` in order."""
        self._replies.extend(replies)

    def close(self) -> None:
        """Cut short any delayed answer so the server can stop."""
        self._closing = True

    async def _record(self, request: Request) -> tuple[Any, Response | None]:
        """Record the request; the next scripted reply, when there is one, is its answer."""
        recorded = self._recorded(request, await request.body())
        self.requests.append(recorded)
        if self._replies:
            reply = self._replies.popleft()
            await self._wait(reply.delay)
            return recorded, self._response(reply)
        return recorded, None

    def _recorded(self, request: Request, body: bytes) -> Any:
        return RecordedRequest(method=request.method, path=request.url.path, query=request.url.query,
                               headers={name.lower(): value for name, value in request.headers.items()}, body=body)

    def _response(self, reply: Any) -> Response:
        return reply_response(reply)

    async def _wait(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not self._closing and loop.time() < deadline:
            await asyncio.sleep(0.01)
