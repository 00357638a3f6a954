"""A loopback fake of the BulkSMS.com JSON REST API v1, following the vendor OpenAPI
(developer.bulksms.com/json/v1/swagger.yaml).

It serves POST/GET /v1/messages, GET /v1/messages/{id} and GET /v1/profile with Basic auth,
answers errors as problem JSON, honours deduplication-id, filters the message list the way the
docs describe (`filter=` clauses joined by '&', `limit`, `sortOrder`), records every request,
refuses a request the spec would not accept, and can be told to answer the next requests with
any status, body, headers or delay."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.base import FakeProvider, RecordedRequest, Reply, reply_response

TOKEN_ID = "5A1B2C3D4E5F6A7B8C9D0E1F2A3B4C5D-02-1"
TOKEN_SECRET = "tokSecret_0123456789abcdefghijklmnopqrstuv"
ERRORS_URL = "https://developer.bulksms.com/json/v1/errors"

SUBMISSION_ENTRY_FIELDS = {"to", "body", "from", "encoding", "longMessageMaxParts", "deliveryReports",
                           "routingGroup", "userSuppliedId", "messageClass", "protocolId"}
SEND_QUERY_FIELDS = {"deduplication-id", "auto-unicode", "schedule-date", "schedule-description"}
FILTER_FIELDS = {"id", "type", "submission.id", "status.type", "status.id", "submission.date", "userSuppliedId"}


def problem(status: int, kind: str, title: str, detail: str | None = None,
            headers: dict[str, str] | None = None) -> Reply:
    """An error answer in BulkSMS's problem-JSON shape."""
    body: dict[str, Any] = {"type": f"{ERRORS_URL}#{kind}", "title": title, "status": status}
    if detail is not None:
        body["detail"] = detail
    return Reply(status, body, headers or {})


class FakeBulkSms(FakeProvider):
    def __init__(self, credentials: dict[str, str] | None = None) -> None:
        super().__init__()
        self.credentials = credentials if credentials is not None else {TOKEN_ID: TOKEN_SECRET}
        self.messages: dict[str, dict[str, Any]] = {}  # id → Message, sent and received
        self.profile = {"id": "1234", "username": "acme", "created": "2020-01-01T00:00:00Z",
                        "credits": {"balance": 123.5, "limit": 0, "isTransferAllowed": False},
                        "quota": {"size": 1000, "remaining": 900}}
        self.credits = 1000.0
        self._deduplicated: dict[str, list[dict[str, Any]]] = {}
        self._ids = itertools.count(1001)
        self._submissions = itertools.count(1)
        self.app = Starlette(routes=[
            Route("/v1/messages", self._send, methods=["POST"]),
            Route("/v1/messages", self._list, methods=["GET"]),
            Route("/v1/messages/{id}", self._fetch, methods=["GET"]),
            Route("/v1/profile", self._profile, methods=["GET"]),
        ])

    @property
    def sent(self) -> list[dict[str, Any]]:
        return [m for m in self.messages.values() if m["type"] == "SENT"]

    def set_status(self, message_id: str, kind: str, subtype: str | None = None,
                   credit_cost: float | None = None) -> None:
        """A new status; `credit_cost` fills creditCost, which the submit answer leaves empty."""
        self.messages[message_id]["status"] = {"id": f"{kind}.{subtype or 'null'}", "type": kind, "subtype": subtype}
        if credit_cost is not None:
            self.messages[message_id]["creditCost"] = credit_cost

    def receive(self, sender: str, to: str, body: str) -> str:
        """A reply a person sends to one of the account's numbers; returns its id."""
        message_id = str(next(self._ids))
        self.messages[message_id] = {
            "id": message_id, "type": "RECEIVED", "from": sender, "to": to, "body": body, "encoding": "TEXT",
            "submission": {"id": "", "date": _now()}, "status": {"id": "RECEIVED.null", "type": "RECEIVED",
                                                                  "subtype": None},
            "relatedSentMessageId": None,
        }
        return message_id

    # Routes -----------------------------------------------------------------------------------

    async def _send(self, request: Request) -> Response:
        recorded, early = await self._receive(request)
        if early is not None:
            return early
        if recorded.headers.get("content-type", "").split(";")[0] != "application/json":
            return reply_response(problem(415, "unsupported-media-type", "Unsupported Media Type"))
        unknown_query = set(recorded.params) - SEND_QUERY_FIELDS
        if unknown_query:
            return reply_response(problem(400, "bad-request", "Bad Request", f"unknown parameter {sorted(unknown_query)}"))
        dedup = recorded.params.get("deduplication-id")
        if dedup is not None and not re.fullmatch(r"-?\d{1,10}", dedup):
            return reply_response(problem(400, "bad-request", "Bad Request", "deduplication-id must be an integer"))
        if dedup is not None and dedup in self._deduplicated:
            return JSONResponse(self._deduplicated[dedup], status_code=201)
        try:
            entries = recorded.json
        except ValueError:
            return reply_response(problem(400, "bad-request", "Bad Request", "the body is not JSON"))
        entries = entries if isinstance(entries, list) else [entries]
        for entry in entries:
            if reason := _entry_problem(entry):
                return reply_response(problem(400, "bad-request", "Bad Request", reason))
        if self.credits < len(entries):
            return reply_response(problem(403, "insufficient-credits", "Insufficient Credits"))
        auto_unicode = recorded.params.get("auto-unicode") == "true"
        submission = {"id": f"1-{next(self._submissions):020d}", "date": _now()}
        created = []
        for entry in entries:
            for to in entry["to"] if isinstance(entry["to"], list) else [entry["to"]]:
                message_id = str(next(self._ids))
                encoding = entry.get("encoding") or ("UNICODE" if auto_unicode and not entry["body"].isascii() else "TEXT")
                sender = entry.get("from")
                message = {
                    "id": message_id, "type": "SENT",
                    "from": sender.get("address", "") if isinstance(sender, dict) else (sender or ""),
                    "to": to, "body": entry["body"], "encoding": encoding, "protocolId": 0, "messageClass": 2,
                    "numberOfParts": None, "creditCost": None, "submission": submission,
                    "status": {"id": "ACCEPTED.null", "type": "ACCEPTED", "subtype": None},
                }
                if "userSuppliedId" in entry:
                    message["userSuppliedId"] = entry["userSuppliedId"]
                self.messages[message_id] = message
                created.append(dict(message))
        self.credits -= len(created)
        if dedup is not None:
            self._deduplicated[dedup] = created
        return JSONResponse(created, status_code=201)

    async def _list(self, request: Request) -> Response:
        _, early = await self._receive(request)
        if early is not None:
            return early
        try:
            clauses = _parse_filter(request.query_params.get("filter", ""))
        except ValueError as error:
            return reply_response(problem(400, "bad-request", "Bad Request", str(error)))
        selected = [m for m in self.messages.values() if all(_matches(m, clause) for clause in clauses)]
        selected.sort(key=lambda m: int(m["id"]), reverse=request.query_params.get("sortOrder") != "ASCENDING")
        limit = int(float(request.query_params.get("limit", "1000")))
        return JSONResponse(selected[:limit])

    async def _fetch(self, request: Request) -> Response:
        _, early = await self._receive(request)
        if early is not None:
            return early
        message = self.messages.get(request.path_params["id"])
        if message is None:
            return reply_response(problem(404, "not-found", "Not Found", f"Message with id '{request.path_params['id']}' "
                                                                  "does not exist"))
        return JSONResponse(message)

    async def _profile(self, request: Request) -> Response:
        _, early = await self._receive(request)
        if early is not None:
            return early
        return JSONResponse(self.profile)

    async def _receive(self, request: Request) -> tuple[RecordedRequest, Response | None]:
        """Record the request, then answer early with a scripted reply or an auth error."""
        recorded, scripted = await self._record(request)
        if scripted is not None:
            return recorded, scripted
        auth = recorded.basic_auth
        if auth is None or self.credentials.get(auth[0]) != auth[1]:
            return recorded, reply_response(problem(401, "authentication-failed", "Authentication Failed",
                                            "Your credentials are invalid", {"WWW-Authenticate": 'Basic realm="BulkSMS"'}))
        return recorded, None

def _entry_problem(entry: Any) -> str | None:
    """Why BulkSMS would refuse this SubmissionEntry (None when it is fine)."""
    if not isinstance(entry, dict):
        return "a submission entry must be an object"
    if unknown := set(entry) - SUBMISSION_ENTRY_FIELDS:
        return f"unknown property {sorted(unknown)}"
    if not entry.get("body") or not isinstance(entry["body"], str):
        return "body is required"
    recipients = entry.get("to")
    for to in recipients if isinstance(recipients, list) else [recipients]:
        if not isinstance(to, str) or not re.fullmatch(r"\+?[1-9]\d{6,14}", to):
            return f"'{to}' is not a valid phone number"
    if entry.get("encoding") not in (None, "TEXT", "UNICODE", "BINARY"):
        return "encoding must be TEXT, UNICODE or BINARY"
    if len(str(entry.get("userSuppliedId", ""))) > 20:
        return "userSuppliedId can contain no more than 20 characters"
    sender = entry.get("from")
    if isinstance(sender, dict):
        if sender.get("type") not in ("INTERNATIONAL", "ALPHANUMERIC", "SHORTCODE", "REPLIABLE"):
            return "from.type is invalid"
        if sender["type"] == "SHORTCODE" and not re.fullmatch(r"\d{1,6}", str(sender.get("address", ""))):
            return "a SHORTCODE has at most 6 digits"
    elif sender is not None and (not isinstance(sender, str) or len(sender) > 15):
        return "from is invalid"
    if entry.get("routingGroup") not in (None, "ECONOMY", "STANDARD", "PREMIUM"):
        return "routingGroup is invalid"
    if "longMessageMaxParts" in entry and not isinstance(entry["longMessageMaxParts"], int):
        return "longMessageMaxParts must be an integer"
    return None


_CLAUSE = re.compile(r"(?P<name>[A-Za-z.]+)(?P<op>>=|<=|=|<|>)(?P<value>.*)")


def _parse_filter(text: str) -> list[tuple[str, str, str]]:
    clauses = []
    for part in [p for p in text.split("&") if p]:
        match = _CLAUSE.fullmatch(part)
        if not match or match["name"] not in FILTER_FIELDS:
            raise ValueError(f"invalid filter clause '{part}'")
        clauses.append((match["name"], match["op"], match["value"]))
    return clauses


def _field(message: dict[str, Any], name: str) -> Any:
    value: Any = message
    for step in name.split("."):
        value = value.get(step) if isinstance(value, dict) else None
    return value


def _matches(message: dict[str, Any], clause: tuple[str, str, str]) -> bool:
    name, op, wanted = clause
    value = _field(message, name)
    if name == "id":
        left, right = int(value), int(wanted)
    elif name == "submission.date":
        left, right = _date(str(value)), _date(wanted)  # type: ignore[assignment]
    else:
        return op == "=" and str(value) == wanted
    return {"=": left == right, "<": left < right, ">": left > right,
            "<=": left <= right, ">=": left >= right}[op]


def _date(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")

