"""A loopback fake of the Infobip SMS API v3 (send, reports, logs), the inbox pull and the account
balance, with `App <key>` auth, Infobip's error bodies, request recording and scripted replies.

It checks what the documentation states: `messages[]` entries need `destinations[]` (each with
`to`, digits only here) and `content.text`; `messageId` is at most 200 characters; reports and
inbound messages are handed out once."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.base import FakeProvider, RecordedRequest, Reply, reply_response

API_KEY = "003026bbc133714df1834b8638bb496e-8f4b3d9a-e931-478d-a994-28a725159ab9"

PENDING_ACCEPTED = {"groupId": 1, "groupName": "PENDING", "id": 26, "name": "PENDING_ACCEPTED",
                    "description": "Message sent to next instance"}
DELIVERED_TO_HANDSET = {"groupId": 3, "groupName": "DELIVERED", "id": 5, "name": "DELIVERED_TO_HANDSET",
                        "description": "Message delivered to handset"}
NO_ERROR = {"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR", "description": "No Error",
            "permanent": False}


def rejected(status_id: int, name: str) -> dict[str, Any]:
    return {"groupId": 5, "groupName": "REJECTED", "id": status_id, "name": name, "description": name}


def api_error(status: int, code: str, description: str, violations: list[dict[str, str]] | None = None,
              headers: dict[str, str] | None = None) -> Reply:
    """An error in the newer shape {errorCode, description, action, violations, resources}."""
    return Reply(status, {"errorCode": code, "description": description, "action": "", "violations": violations or [],
                          "resources": []}, headers or {})


def service_exception(status: int, message_id: str, text: str) -> Reply:
    """An error in the older shape {requestError: {serviceException: {messageId, text}}}."""
    return Reply(status, {"requestError": {"serviceException": {"messageId": message_id, "text": text}}})


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


class FakeInfobip(FakeProvider):
    def __init__(self, api_key: str = API_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self.reject: dict[str, dict[str, Any]] = {}  # destination digits → REJECTED status
        self.logs: dict[str, dict[str, Any]] = {}  # messageId → log entry
        self.pending_reports: list[dict[str, Any]] = []
        self.inbox: list[dict[str, Any]] = []
        self.balance: dict[str, Any] = {"balance": 47.79, "currency": "EUR"}
        self._numbers = itertools.count(1)
        self.app = Starlette(routes=[
            Route("/sms/3/messages", self._send, methods=["POST"]),
            Route("/sms/3/reports", self._reports, methods=["GET"]),
            Route("/sms/3/logs", self._logs, methods=["GET"]),
            Route("/sms/1/inbox/reports", self._inbox, methods=["GET"]),
            Route("/account/1/balance", self._balance, methods=["GET"]),
        ])

    def deliver(self, message_id: str, status: dict[str, Any] | None = None,
                error: dict[str, Any] | None = None, price: dict[str, Any] | None = None,
                message_count: int = 1) -> None:
        """A final status for a sent message: its log changes and a report waits to be pulled;
        `price` ({pricePerMessage, currency}, per SMS part) and the parts as Infobip reports them."""
        log = self.logs[message_id]
        log.update(status=status or DELIVERED_TO_HANDSET, error=error or NO_ERROR, doneAt=stamp())
        if price is not None:
            log.update(price=price, messageCount=message_count)
        report = {"bulkId": log["bulkId"], "messageId": message_id, "to": log["destination"],
                  "sender": log.get("sender"), "sentAt": log["sentAt"], "doneAt": log["doneAt"],
                  "messageCount": message_count, "status": log["status"], "error": log["error"],
                  "callbackData": log.get("callbackData")}
        if price is not None:
            report["price"] = price
        self.pending_reports.append(report)

    def receive(self, sender: str, to: str, text: str, keyword: str | None = None) -> str:
        message_id = f"inbound-{next(self._numbers)}"
        clean = text[len(keyword):].strip() if keyword and text.upper().startswith(keyword) else text
        self.inbox.append({"messageId": message_id, "from": sender, "to": to, "text": text, "cleanText": clean,
                           "keyword": keyword or "", "receivedAt": stamp(), "smsCount": 1,
                           "price": {"pricePerMessage": 0, "currency": "EUR"}, "callbackData": None})
        return message_id

    # Routes -----------------------------------------------------------------------------------

    async def _send(self, request: Request) -> Response:
        recorded, early = await self._receive(request)
        if early is not None:
            return early
        try:
            payload = json.loads(recorded.body)
        except ValueError:
            return reply_response(api_error(400, "E400", "Request body is not valid JSON"))
        entries = payload.get("messages") if isinstance(payload, dict) else None
        if not isinstance(entries, list) or not entries:
            return reply_response(api_error(400, "E400", "Invalid request", [{"property": "messages", "violation": "empty"}]))
        bulk_id = f"bulk-{next(self._numbers)}"
        answers = []
        for index, entry in enumerate(entries):
            text = (entry.get("content") or {}).get("text")
            destinations = entry.get("destinations")
            if not isinstance(text, str) or not text:
                return reply_response(api_error(400, "E400", "Invalid request", [
                    {"property": f"messages[{index}].content.text", "violation": "must not be blank"}]))
            if not isinstance(destinations, list) or not destinations:
                return reply_response(api_error(400, "E400", "Invalid request", [
                    {"property": f"messages[{index}].destinations", "violation": "must not be empty"}]))
            for destination in destinations:
                to, message_id = str(destination.get("to") or ""), destination.get("messageId")
                if message_id is not None and (not isinstance(message_id, str) or len(message_id) > 200):
                    return reply_response(api_error(400, "E400", "Invalid request", [
                        {"property": "messageId", "violation": "size must be between 0 and 200"}]))
                message_id = message_id or f"gen-{next(self._numbers)}"
                status = self.reject.get(to) or (rejected(52, "REJECTED_INVALID_DESTINATION")
                                                 if not to.isdigit() else PENDING_ACCEPTED)
                answers.append({"messageId": message_id, "status": status, "destination": to,
                                "details": {"messageCount": 1}})
                self.logs[message_id] = {"sender": entry.get("sender"), "destination": to, "bulkId": bulk_id,
                                         "messageId": message_id, "sentAt": stamp(), "doneAt": None,
                                         "messageCount": 1, "status": status, "error": NO_ERROR,
                                         "content": entry["content"],
                                         "callbackData": (entry.get("webhooks") or {}).get("callbackData")}
        return JSONResponse({"bulkId": bulk_id, "messages": answers})

    async def _reports(self, request: Request) -> Response:
        _, early = await self._receive(request)
        if early is not None:
            return early
        limit = int(request.query_params.get("limit", "50"))
        handed, self.pending_reports = self.pending_reports[:limit], self.pending_reports[limit:]
        return JSONResponse({"results": handed})

    async def _logs(self, request: Request) -> Response:
        _, early = await self._receive(request)
        if early is not None:
            return early
        wanted = [i for i in request.query_params.get("messageId", "").split(",") if i]
        if len(request.query_params.get("messageId", "")) > 2048:
            return reply_response(api_error(400, "E400", "messageId is longer than 2048 characters"))
        results = [{k: v for k, v in self.logs[i].items() if k != "callbackData"} for i in wanted if i in self.logs]
        return JSONResponse({"results": results})

    async def _inbox(self, request: Request) -> Response:
        _, early = await self._receive(request)
        if early is not None:
            return early
        limit = int(request.query_params.get("limit", "50"))
        handed, self.inbox = self.inbox[:limit], self.inbox[limit:]
        return JSONResponse({"results": handed, "messageCount": len(handed), "pendingMessageCount": len(self.inbox)})

    async def _balance(self, request: Request) -> Response:
        _, early = await self._receive(request)
        if early is not None:
            return early
        return JSONResponse(self.balance)

    async def _receive(self, request: Request) -> tuple[RecordedRequest, Response | None]:
        recorded, scripted = await self._record(request)
        if scripted is not None:
            return recorded, scripted
        if recorded.headers.get("authorization") != f"App {self.api_key}":
            return recorded, reply_response(service_exception(401, "UNAUTHORIZED", "Invalid login details"))
        return recorded, None
