"""A loopback fake of the Sinch SMS REST API (xms v1): batches, the batch list, recipient delivery
reports, the delivery-report and inbound lists, with Bearer auth, Sinch's {code, text} errors,
request recording and scripted replies.

It checks what the documentation states: `to` holds 1–1,000 E.164 numbers, `body` is required and
at most 2,000 characters, `delivery_report` is one of the documented values."""

from __future__ import annotations

import itertools
import json
import re
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.base import FakeProvider, RecordedRequest, Reply, reply_response

SERVICE_PLAN_ID = "jd63jf88477ll123ab4567cd89012ef3"
API_TOKEN = "4f3c2b1a00998877665544332211aabb"
WEBHOOK_SECRET = "sinch-hmac-secret-0123456789"

DELIVERY_REPORTS = ("none", "summary", "full", "per_recipient", "per_recipient_final")


def sinch_error(status: int, code: str, text: str, headers: dict[str, str] | None = None) -> Reply:
    """An error answer in Sinch's shape."""
    return Reply(status, {"code": code, "text": text}, headers or {})


def now_iso() -> str:
    moment = datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class FakeSinch(FakeProvider):
    def __init__(self, service_plan_id: str = SERVICE_PLAN_ID, api_token: str = API_TOKEN) -> None:
        super().__init__()
        self.service_plan_id = service_plan_id
        self.api_token = api_token
        self.batches: dict[str, dict[str, Any]] = {}
        self.issued_batch_ids: list[str] = []
        self.reports: dict[tuple[str, str], dict[str, Any]] = {}  # (batch id, digits) → recipient report
        self.inbounds: list[dict[str, Any]] = []
        self._numbers = itertools.count(1)
        prefix = "/xms/v1/{plan}"
        self.app = Starlette(routes=[
            Route(prefix + "/batches", self._create_batch, methods=["POST"]),
            Route(prefix + "/batches", self._list_batches, methods=["GET"]),
            Route(prefix + "/batches/{batch_id}/delivery_report/{recipient}", self._recipient_report, methods=["GET"]),
            Route(prefix + "/delivery_reports", self._list_reports, methods=["GET"]),
            Route(prefix + "/inbounds", self._list_inbounds, methods=["GET"]),
        ])

    # State the tests drive --------------------------------------------------------------------

    def set_status(self, batch_id: str, recipient: str, status: str, code: int) -> None:
        digits = re.sub(r"\D", "", recipient)
        self.reports[(batch_id, digits)].update(status=status, code=code, at=now_iso())

    def receive(self, sender: str, to: str, body: str, received_at: str | None = None) -> str:
        inbound_id = f"01INBOUND{next(self._numbers):017d}"
        self.inbounds.append({"type": "mo_text", "id": inbound_id, "from": sender, "to": to, "body": body,
                              "received_at": received_at or now_iso()})
        return inbound_id

    # Routes -----------------------------------------------------------------------------------

    async def _create_batch(self, request: Request) -> Response:
        recorded, early = await self._receive(request)
        if early is not None:
            return early
        try:
            batch = json.loads(recorded.body)
        except ValueError:
            return reply_response(sinch_error(400, "syntax_invalid_json", "The JSON in the request is invalid"))
        to = batch.get("to") if isinstance(batch, dict) else None
        if not isinstance(to, list) or not 1 <= len(to) <= 1000:
            return reply_response(sinch_error(400, "syntax_constraint_violation", "to must hold 1 to 1000 recipients"))
        for number in to:
            if not isinstance(number, str) or not re.fullmatch(r"\+?[1-9]\d{6,14}", number):
                return reply_response(sinch_error(400, "syntax_invalid_parameter_format", f"Invalid MSISDN: {number}"))
        body = batch.get("body")
        if not isinstance(body, str) or not body or len(body) > 2000:
            return reply_response(sinch_error(400, "syntax_constraint_violation", "body must be 1 to 2000 characters"))
        if batch.get("delivery_report", "none") not in DELIVERY_REPORTS:
            return reply_response(sinch_error(400, "syntax_invalid_parameter_format", "Invalid delivery_report"))
        batch_id = f"01FC66621{next(self._numbers):017d}"
        self.issued_batch_ids.append(batch_id)
        stamp = now_iso()
        resource = {"id": batch_id, "to": [re.sub(r"\D", "", n) for n in to], "from": batch.get("from"),
                    "body": body, "type": "mt_text", "canceled": False, "created_at": stamp, "modified_at": stamp,
                    "delivery_report": batch.get("delivery_report", "none"), "flash_message": False}
        if "callback_url" in batch:
            resource["callback_url"] = batch["callback_url"]
        if "client_reference" in batch:
            resource["client_reference"] = batch["client_reference"]
        self.batches[batch_id] = resource
        for number in resource["to"]:
            self.reports[(batch_id, number)] = {
                "type": "recipient_delivery_report_sms", "batch_id": batch_id, "recipient": number,
                "status": "Queued", "code": 400, "at": stamp, **(
                    {"client_reference": batch["client_reference"]} if "client_reference" in batch else {}),
            }
        return JSONResponse(resource, status_code=201)

    async def _list_batches(self, request: Request) -> Response:
        _, early = await self._receive(request)
        if early is not None:
            return early
        page, size = int(request.query_params.get("page", "0")), int(request.query_params.get("page_size", "30"))
        batches = list(reversed(self.batches.values()))
        return JSONResponse({"count": len(batches), "page": page, "page_size": size,
                             "batches": batches[page * size:(page + 1) * size]})

    async def _recipient_report(self, request: Request) -> Response:
        _, early = await self._receive(request)
        if early is not None:
            return early
        key = (request.path_params["batch_id"], request.path_params["recipient"])
        report = self.reports.get(key)
        if report is None:
            return JSONResponse({"code": "not_found", "text": "Not found"}, status_code=404)
        return JSONResponse(report)

    async def _list_reports(self, request: Request) -> Response:
        _, early = await self._receive(request)
        if early is not None:
            return early
        return self._window(request, list(self.reports.values()), "at", "delivery_reports")

    async def _list_inbounds(self, request: Request) -> Response:
        _, early = await self._receive(request)
        if early is not None:
            return early
        return self._window(request, self.inbounds, "received_at", "inbounds")

    def _window(self, request: Request, items: list[dict[str, Any]], stamp: str, key: str) -> Response:
        """start_date (inclusive) / end_date (exclusive), newest first, page from 0, page_size ≤ 100."""
        query = request.query_params
        size = int(query.get("page_size", "30"))
        if size > 100:
            return reply_response(sinch_error(400, "syntax_constraint_violation", "page_size must be at most 100"))
        selected = [item for item in items
                    if (not query.get("start_date") or _at(item[stamp]) >= _at(query["start_date"]))
                    and (not query.get("end_date") or _at(item[stamp]) < _at(query["end_date"]))]
        selected.sort(key=lambda item: item[stamp], reverse=True)
        page = int(query.get("page", "0"))
        return JSONResponse({"count": len(selected), "page": page, "page_size": size,
                             key: selected[page * size:(page + 1) * size]})

    async def _receive(self, request: Request) -> tuple[RecordedRequest, Response | None]:
        recorded, scripted = await self._record(request)
        if scripted is not None:
            return recorded, scripted
        if recorded.headers.get("authorization") != f"Bearer {self.api_token}":
            return recorded, JSONResponse({"code": "unauthorized", "text": "Unauthorized"}, status_code=401)
        if request.path_params["plan"] != self.service_plan_id:
            return recorded, JSONResponse({"code": "unauthorized", "text": "Unauthorized"}, status_code=401)
        return recorded, None

def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))

