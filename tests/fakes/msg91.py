"""A loopback fake of MSG91's send APIs as documented: `POST /api/v2/sendsms` and
`POST /api/v5/flow/` (JSON, `authkey` header; `{"message": <request id>, "type": "success"}` or
`{"type": "error", "message", "code"}`), and `GET /api/balance.php?authkey=&type=` (the balance as
plain text). It records every request and can be told to answer the next ones with any reply."""

from __future__ import annotations

import itertools
import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes.generic import GatewayStyleFake, Reply

AUTH_KEY = "123456AbCdEf7890GhIjKl12"


def msg91_error(code: str, message: str, status: int = 200) -> Reply:
    """An error answer in MSG91's shape (MSG91 answers most refusals with HTTP 200)."""
    return Reply(status, {"type": "error", "message": message, "code": code})


class FakeMsg91(GatewayStyleFake):
    def __init__(self, auth_key: str = AUTH_KEY) -> None:
        super().__init__()
        self.auth_key = auth_key
        self.request_ids: list[str] = []
        self.balances = {"4": "1500", "1": "20"}
        self._numbers = itertools.count(1)
        self.app = Starlette(routes=[
            Route("/api/v2/sendsms", self._send, methods=["POST"]),
            Route("/api/v5/flow/", self._send, methods=["POST"]),
            Route("/api/balance.php", self._balance, methods=["GET"]),
        ])

    async def _send(self, request: Request) -> Response:
        recorded, scripted = await self._record(request)
        if scripted is not None:
            return scripted
        key = recorded.header("authkey")
        if not key:
            return _json(msg91_error("106", "Missing Authentication Key"))
        if key != self.auth_key:
            return _json(msg91_error("207", "Authentication failure"))
        try:
            body: Any = json.loads(recorded.body)
        except ValueError:
            return _json(msg91_error("102", "Invalid JSON"))
        if not body.get("sender"):
            return _json(msg91_error("103", "Sender ID missing"))
        if recorded.path.endswith("/sendsms"):
            if not body.get("sms") or any(not item.get("to") for item in body["sms"]):
                return _json(msg91_error("101", "Mobile number missing"))
            if any(not item.get("message") for item in body["sms"]):
                return _json(msg91_error("102", "Message missing"))
        elif not body.get("recipients") or not (body.get("template_id") or body.get("flow_id")):
            return _json(msg91_error("101", "Template or recipients missing"))
        request_id = f"3{next(self._numbers):023x}"
        self.request_ids.append(request_id)
        return JSONResponse({"message": request_id, "type": "success"})

    async def _balance(self, request: Request) -> Response:
        recorded, scripted = await self._record(request)
        if scripted is not None:
            return scripted
        query = dict(recorded.query_pairs)
        if query.get("authkey") != self.auth_key:
            return PlainTextResponse("Authentication failure")
        return PlainTextResponse(self.balances.get(query.get("type", ""), "0"))


def _json(reply: Reply) -> Response:
    return reply.response()
