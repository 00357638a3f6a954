"""A loopback fake of the Textlocal API (UK api.txtlocal.com and India api.textlocal.in share it),
following Textlocal's doc pages: /send/, /balance/, /get_inboxes/ and /get_messages/ take the API
key and their parameters as a form POST (or a GET query) and answer JSON with "status": "success"
or "failure" and an errors[] list, always with HTTP 200.

It records every request, refuses parameters /send/ does not document, drops an invalid number
with warning 3 (or fails with error 51 when none is valid), and can be told to answer the next
requests with any status, body, headers or delay."""

from __future__ import annotations

import itertools
import re
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.base import FakeProvider, Reply, reply_response

API_KEY = "NTA2YjMwNDE2YTU5NzE3NzY0Njg2NTUxNGQ3YTM1NWE="
SEND_PARAMS = {"apikey", "username", "hash", "numbers", "group_id", "message", "sender", "schedule_time",
               "receipt_url", "custom", "optouts", "validity", "unicode", "test"}


def failure(code: int, message: str) -> Reply:
    """An error answer in Textlocal's shape (HTTP 200)."""
    return Reply(200, {"errors": [{"code": code, "message": message}], "status": "failure"})


class FakeTextlocal(FakeProvider):
    def __init__(self, api_key: str = API_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self.balance = {"sms": 1234, "mms": 0}
        self.inboxes: dict[str, dict[str, Any]] = {}  # id → {"number", "keyword", "messages": [...]}
        self._ids = itertools.count(1151895224)
        self._batches = itertools.count(136546495)
        self.app = Starlette(routes=[
            Route("/send/", self._send, methods=["GET", "POST"]),
            Route("/balance/", self._balance, methods=["GET", "POST"]),
            Route("/get_inboxes/", self._get_inboxes, methods=["GET", "POST"]),
            Route("/get_messages/", self._get_messages, methods=["GET", "POST"]),
        ])

    def add_inbox(self, inbox_id: str, number: str, keyword: str = "") -> None:
        self.inboxes[inbox_id] = {"number": number, "keyword": keyword, "messages": []}

    def receive(self, inbox_id: str, sender: str, content: str, date: str) -> str:
        """A message a person sends to an inbox, dated 'YYYY-MM-DD HH:MM:SS'; returns its id."""
        message_id = str(next(self._ids))
        self.inboxes[inbox_id]["messages"].append(
            {"id": message_id, "number": int(sender), "content": content, "date": date, "isNew": True, "status": "?"})
        return message_id

    # Routes -----------------------------------------------------------------------------------

    async def _send(self, request: Request) -> Response:
        params, early = await self._receive(request)
        if early is not None:
            return early
        if unknown := set(params) - SEND_PARAMS:
            return reply_response(failure(2, f"Unrecognised parameter {sorted(unknown)}"))
        if not params.get("numbers"):
            return reply_response(failure(4, "No recipients specified"))
        if not params.get("message"):
            return reply_response(failure(5, "No message content"))
        if len(params["message"]) > 765:
            return reply_response(failure(6, "Message too long"))
        if "sender" in params and not re.fullmatch(r"[A-Za-z0-9 ]{3,11}|\d{3,13}", params["sender"]):
            return reply_response(failure(43, "Invalid sender name"))
        numbers = params["numbers"].split(",")
        valid = [n for n in numbers if re.fullmatch(r"[1-9]\d{6,14}", n)]
        invalid = [n for n in numbers if n not in valid]
        if not valid:
            return reply_response(failure(51, "No valid numbers specified"))
        batch_id = next(self._batches)
        answer: dict[str, Any] = {
            "test_mode": params.get("test") == "true", "balance": self.balance["sms"] - len(valid),
            "batch_id": batch_id, "cost": len(valid), "num_messages": len(valid),
            "message": {"num_parts": 1, "sender": params.get("sender", "TXTLCL"), "content": params["message"]},
            "receipt_url": params.get("receipt_url", ""), "custom": params.get("custom", ""),
            "messages": [{"id": str(next(self._ids)), "recipient": int(n)} for n in valid],
            "status": "success",
        }
        if invalid:
            answer["warnings"] = [{"code": 3, "message": "Invalid number", "numbers": ",".join(invalid)}]
        return JSONResponse(answer)

    async def _balance(self, request: Request) -> Response:
        _, early = await self._receive(request)
        if early is not None:
            return early
        return JSONResponse({"balance": self.balance, "status": "success"})

    async def _get_inboxes(self, request: Request) -> Response:
        _, early = await self._receive(request)
        if early is not None:
            return early
        inboxes = [{"id": inbox_id, "number": inbox["number"], "keyword": inbox["keyword"],
                    "num_messages": len(inbox["messages"]), "newMsgs": len(inbox["messages"])}
                   for inbox_id, inbox in self.inboxes.items()]
        return JSONResponse({"num_inboxes": len(inboxes), "inboxes": inboxes, "status": "success"})

    async def _get_messages(self, request: Request) -> Response:
        params, early = await self._receive(request)
        if early is not None:
            return early
        inbox = self.inboxes.get(params.get("inbox_id", ""))
        if inbox is None:
            return reply_response(failure(101, "Invalid inbox ID"))
        min_time = int(params.get("min_time", "0"))
        selected = [m for m in inbox["messages"] if _unix(m["date"]) >= min_time]
        selected.sort(key=lambda m: (m["date"], int(m["id"])), reverse=params.get("sort_order") == "desc")
        start, limit = int(params.get("start", "0")), int(params.get("limit", "1000"))
        page = selected[start:start + limit]
        return JSONResponse({"inbox_id": params["inbox_id"], "num_messages": len(page), "min_time": min_time,
                             "sort_order": params.get("sort_order", "asc"), "messages": page, "status": "success"})

    async def _receive(self, request: Request) -> tuple[dict[str, str], Response | None]:
        """Record the request, then answer early with a scripted reply or a login failure."""
        recorded, scripted = await self._record(request)
        params = dict(parse_qsl(recorded.query, keep_blank_values=True))
        if request.method == "POST":
            params.update(recorded.form)
        if scripted is not None:
            return params, scripted
        if params.get("apikey") != self.api_key:
            return params, reply_response(failure(3, "Invalid login details"))
        return params, None

def _unix(local: str) -> int:
    """A date as the UK host keeps it (UK local time) in Unix seconds."""
    return int(datetime.strptime(local, "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZoneInfo("Europe/London")).timestamp())

