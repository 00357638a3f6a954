"""A loopback fake of Plivo's Message and Account APIs (v1), and `api_problems`, a checker of
requests against what Plivo documents (Plivo publishes no OpenAPI spec).

The fake takes a JSON send with `dst` joined by '<', drops duplicates, lists malformed numbers in
`invalid_number` and answers 202 with one `message_uuid` per valid destination in order; it keeps
every message (sent and received) for the fetch and list endpoints (newest first, `limit` ≤ 20,
`offset`), records every request, and can be told to answer the next ones with any reply."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.base import FakeProvider, RecordedRequest, Reply, reply_response


AUTH_ID = "MAODYWNDI3ZDE4MTQ2ZJ"
AUTH_TOKEN = "ZDFjYTJjMjY5MWQ1NTIxNmFmMmUzYTM2MTY2Y2Nk"

SEND_PARAMS = {"src", "dst", "text", "type", "url", "method", "log", "trackable", "message_expiry",
               "powerpack_uuid", "media_urls", "media_ids", "dlt_entity_id", "dlt_template_id",
               "dlt_template_category"}
LIST_PARAMS = {"subaccount", "message_direction", "message_state", "message_type", "error_code", "limit", "offset",
               "message_time", "message_time__gt", "message_time__gte", "message_time__lt", "message_time__lte",
               "powerpack_id"}
DLT_CATEGORIES = {"transactional", "promotional", "service_implicit", "service_explicit"}
_TIME = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?"


def plivo_error(status: int, error: str) -> Reply:
    return Reply(status, {"api_id": str(uuid.uuid4()), "error": error})


def api_problems(recorded: RecordedRequest, auth_id: str = AUTH_ID) -> list[str]:
    """Why `recorded` is not a request Plivo's docs describe: empty when it is."""
    problems: list[str] = []
    prefix = f"/v1/Account/{auth_id}/"
    if not recorded.path.startswith(prefix):
        return [f"not under {prefix}: {recorded.path}"]
    if not recorded.path.endswith("/"):
        problems.append("Plivo paths end with '/'")
    if recorded.basic_auth is None:
        problems.append("no HTTP Basic auth")
    resource = recorded.path[len(prefix):]
    if recorded.method == "POST" and resource == "Message/":
        if recorded.headers.get("content-type") != "application/json":
            problems.append("the send body must be application/json")
        try:
            body = json.loads(recorded.body)
        except ValueError:
            return [*problems, "the send body is not JSON"]
        problems += [f"undeclared parameter {name}" for name in body if name not in SEND_PARAMS]
        if ("src" in body) == ("powerpack_uuid" in body):
            problems.append("exactly one of src and powerpack_uuid is required")
        for name in ("dst", "text"):
            if not isinstance(body.get(name), str) or not body[name]:
                problems.append(f"{name} is required")
        if isinstance(body.get("dst"), str):
            numbers = body["dst"].split("<")
            problems += [f"dst {n!r} is not digits with the country code" for n in numbers if not re.fullmatch(r"\d{1,15}", n)]
            if len(set(numbers)) > 1000:
                problems.append("at most 1000 destinations")
        if "url" in body and not re.match(r"https?://", body["url"]):
            problems.append("url must be http(s)")
        if body.get("method", "POST") not in ("GET", "POST"):
            problems.append("method must be GET or POST")
        if "dlt_template_category" in body and body["dlt_template_category"] not in DLT_CATEGORIES:
            problems.append("unknown dlt_template_category")
    elif recorded.method == "GET" and resource == "Message/":
        query = dict(parse_qsl(recorded.query))
        problems += [f"undeclared list filter {name}" for name in query if name not in LIST_PARAMS]
        if not 1 <= int(query.get("limit", "20")) <= 20:
            problems.append("limit must be 1–20")
        problems += [f"{name} must be YYYY-MM-DD HH:MM[:ss[.uuuuuu]]" for name, value in query.items()
                     if name.startswith("message_time") and not re.fullmatch(_TIME, value)]
    elif recorded.method == "GET" and (resource == "" or re.fullmatch(r"Message/[0-9a-f-]+/", resource)):
        if recorded.query:
            problems.append(f"unexpected query {recorded.query}")
    else:
        problems.append(f"no such endpoint: {recorded.method} {recorded.path}")
    return problems


class FakePlivo(FakeProvider):
    def __init__(self, auth_id: str = AUTH_ID, auth_token: str = AUTH_TOKEN) -> None:
        super().__init__()
        self.auth_id, self.auth_token = auth_id, auth_token
        self.issued_uuids: list[str] = []
        self.account = {"account_type": "standard", "auth_id": auth_id, "auto_recharge": False,
                        "billing_mode": "prepaid", "cash_credits": "24.51250", "name": "Acme Ltd"}
        self.messages: dict[str, dict[str, Any]] = {}  # uuid → message record, in creation order
        prefix = "/v1/Account/{auth_id}"
        self.app = Starlette(routes=[
            Route(prefix + "/Message/", self._send, methods=["POST"]),
            Route(prefix + "/Message/", self._list, methods=["GET"]),
            Route(prefix + "/Message/{uuid}/", self._fetch, methods=["GET"]),
            Route(prefix + "/", self._account, methods=["GET"]),
        ])

    def set_state(self, message_uuid: str, state: str, error_code: str = "000") -> None:
        self.messages[message_uuid].update(message_state=state, error_code=error_code)

    def receive(self, sender: str, to: str, text: str, message_time: str | None = None) -> str:
        message_uuid = str(uuid.uuid4())
        self.messages[message_uuid] = {
            "message_uuid": message_uuid, "message_direction": "inbound", "message_state": "received",
            "message_type": "sms", "from_number": sender, "to_number": to, "message_body": text,
            "message_time": message_time or _now(), "error_code": "000", "units": 1,
        }
        return message_uuid

    # Routes -----------------------------------------------------------------------------------

    async def _send(self, request: Request) -> Response:
        recorded, early = await self._receive(request)
        if early is not None:
            return early
        try:
            body = json.loads(recorded.body)
        except ValueError:
            return reply_response(plivo_error(400, "invalid JSON"))
        if ("src" in body) == ("powerpack_uuid" in body):
            return reply_response(plivo_error(400, "Either src or powerpack_uuid should be given"))
        if not body.get("dst"):
            return reply_response(plivo_error(400, "dst parameter not present"))
        if not body.get("text"):
            return reply_response(plivo_error(400, "text parameter not present"))
        numbers = list(dict.fromkeys(body["dst"].split("<")))
        invalid = [n for n in numbers if not re.fullmatch(r"\+?\d{7,15}", n)]
        issued = []
        for number in numbers:
            if number in invalid:
                continue
            message_uuid = str(uuid.uuid4())
            issued.append(message_uuid)
            self.messages[message_uuid] = {
                "message_uuid": message_uuid, "message_direction": "outbound", "message_state": "queued",
                "message_type": "sms", "from_number": body.get("src", ""), "to_number": number.lstrip("+"),
                "message_time": _now(), "error_code": "000", "units": 1, "total_amount": "0.00500",
            }
        self.issued_uuids += issued
        answer: dict[str, Any] = {"api_id": str(uuid.uuid4()), "message": "message(s) queued", "message_uuid": issued}
        if invalid:
            answer["invalid_number"] = invalid
        return JSONResponse(answer, status_code=202)

    async def _list(self, request: Request) -> Response:
        recorded, early = await self._receive(request)
        if early is not None:
            return early
        query = dict(parse_qsl(recorded.query))
        selected = [m for m in self.messages.values()
                    if not query.get("message_direction") or m["message_direction"] == query["message_direction"]]
        if since := query.get("message_time__gt"):
            selected = [m for m in selected if _utc(m["message_time"]) > _utc(since)]
        selected.reverse()  # newest first
        limit, offset = int(query.get("limit", "20")), int(query.get("offset", "0"))
        page = selected[offset:offset + limit]
        more = offset + limit < len(selected)
        base = f"/v1/Account/{self.auth_id}/Message/"
        meta = {"limit": limit, "offset": offset, "total_count": len(selected), "previous": None,
                "next": f"{base}?limit={limit}&offset={offset + limit}" if more else None}
        return JSONResponse({"api_id": str(uuid.uuid4()), "meta": meta, "objects": page})

    async def _fetch(self, request: Request) -> Response:
        _, early = await self._receive(request)
        if early is not None:
            return early
        record = self.messages.get(request.path_params["uuid"])
        if record is None:
            return reply_response(plivo_error(404, "not found"))
        return JSONResponse({"api_id": str(uuid.uuid4()), **record})

    async def _account(self, request: Request) -> Response:
        _, early = await self._receive(request)
        if early is not None:
            return early
        return JSONResponse({"api_id": str(uuid.uuid4()), **self.account,
                             "resource_uri": f"/v1/Account/{self.auth_id}/"})

    async def _receive(self, request: Request) -> tuple[RecordedRequest, Response | None]:
        recorded, scripted = await self._record(request)
        if scripted is not None:
            return recorded, scripted
        if recorded.basic_auth != (self.auth_id, self.auth_token):
            return recorded, Response("Could not verify your access level for that URL.\n"
                                      "You have to login with proper credentials", status_code=401,
                                      headers={"WWW-Authenticate": 'Basic realm="Login Required"'})
        if request.path_params.get("auth_id") != self.auth_id:
            return recorded, reply_response(plivo_error(404, "not found"))
        return recorded, None

def _now() -> str:
    """How Plivo writes message_time: local offset included (UTC here)."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00:00")


def _utc(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

