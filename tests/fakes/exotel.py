"""A loopback fake of Exotel's SMS API v1 as documented: `POST /v1/Accounts/{sid}/Sms/send.json`
(form, Basic api_key:api_token; `{"SMSMessage": {...}}`, or a `RestException` with the HTTP
status), `POST …/Sms/bulksend.json` (form `Messages[i][…]`; answered, as this adapter reads it, with
a list of `SMSMessage` items), `GET …/SMS/Messages/{Sid}.json` and `GET …/Balance.json`. It records
every request, stores sent messages for the status lookup, and can script the next replies."""

from __future__ import annotations

import itertools
import re
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.generic import GatewayStyleFake, RecordedRequest, Reply

ACCOUNT_SID = "acme1"
API_KEY = "ff2064142bc89ac5e6c52a6398063872f95f759249509009"
API_TOKEN = "783fa09c0ba1110309f606c7411889192335bab2e908a079"


def rest_exception(status: int, message: str, headers: dict[str, str] | None = None, code: str | None = None) -> Reply:
    body: dict[str, Any] = {"Status": status, "Message": message}
    if code:
        body["Code"] = code
    return Reply(status, {"RestException": body}, headers or {})


class FakeExotel(GatewayStyleFake):
    def __init__(self) -> None:
        super().__init__()
        self.messages: dict[str, dict[str, Any]] = {}
        self.issued_sids: list[str] = []
        self._sids = itertools.count(1)
        prefix = "/v1/Accounts/{sid}"
        self.app = Starlette(routes=[
            Route(prefix + "/Sms/send.json", self._send, methods=["POST"]),
            Route(prefix + "/Sms/bulksend.json", self._bulksend, methods=["POST"]),
            Route(prefix + "/SMS/Messages/{sms_sid}.json", self._fetch, methods=["GET"]),
            Route(prefix + "/Balance.json", self._balance, methods=["GET"]),
        ])

    def set_status(self, sid: str, status: str, code: str, detail: str) -> None:
        self.messages[sid].update(Status=status, DetailedStatusCode=code, DetailedStatus=detail,
                                  DateUpdated="2026-03-01 10:15:00")

    async def _receive(self, request: Request) -> tuple[RecordedRequest, Response | None]:
        recorded, scripted = await self._record(request)
        if scripted is not None:
            return recorded, scripted
        if recorded.basic_auth != (API_KEY, API_TOKEN):
            return recorded, rest_exception(401, "Authentication failed. Invalid API Key or Token.",
                                            code="UNAUTHORIZED").response()
        if request.path_params["sid"] != ACCOUNT_SID:
            return recorded, rest_exception(404, "Account not found").response()
        return recorded, None

    def _create(self, fields: dict[str, str]) -> dict[str, Any] | Reply:
        if not fields.get("From"):
            return rest_exception(400, "Invalid Parameters: From is mandatory")
        if not re.fullmatch(r"\+?\d{8,15}", fields.get("To", "")):
            return rest_exception(400, f"Invalid Recipient [{fields.get('To', '')}]")
        if not fields.get("Body") or len(fields["Body"]) > 2000:
            return rest_exception(400, "Invalid Parameters: Body")
        sid = f"{next(self._sids):032x}"
        self.issued_sids.append(sid)
        resource = {
            "Sid": sid, "AccountSid": ACCOUNT_SID, "From": f"0XXXXXX4890/{fields['From']}", "To": fields["To"],
            "DateCreated": "2026-03-01 10:00:00", "DateUpdated": "2026-03-01 10:00:00", "DateSent": None,
            "Body": fields["Body"], "Direction": "outbound-api", "Uri": f"/v1/Accounts/{ACCOUNT_SID}/SMS/Messages/{sid}.json",
            "ApiVersion": None, "Price": None, "Status": "queued", "DetailedStatusCode": 21010,
            "DetailedStatus": "PENDING_TO_OPERATOR", "SmsUnits": None,
        }
        self.messages[sid] = resource
        return resource

    async def _send(self, request: Request) -> Response:
        recorded, early = await self._receive(request)
        if early is not None:
            return early
        created = self._create(dict(recorded.form))
        return created.response() if isinstance(created, Reply) else JSONResponse({"SMSMessage": created})

    async def _bulksend(self, request: Request) -> Response:
        recorded, early = await self._receive(request)
        if early is not None:
            return early
        form = dict(recorded.form)
        items: dict[int, dict[str, str]] = {}
        for name, value in recorded.form:
            if match := re.fullmatch(r"Messages\[(\d+)\]\[(\w+)\]", name):
                items.setdefault(int(match[1]), {})[match[2]] = value
        if not items or len(items) > 100:
            return rest_exception(400, "Messages must hold 1 to 100 items").response()
        answer: list[dict[str, Any]] = []
        for index in sorted(items):
            created = self._create({"From": form.get("From", ""), **items[index]})
            if isinstance(created, Reply):
                answer.append(created.body)  # type: ignore[arg-type]
            else:
                answer.append({"SMSMessage": created})
        return JSONResponse(answer)

    async def _fetch(self, request: Request) -> Response:
        _, early = await self._receive(request)
        if early is not None:
            return early
        resource = self.messages.get(request.path_params["sms_sid"])
        if resource is None:
            return rest_exception(404, "SMS not found").response()
        return JSONResponse({"SMSMessage": resource})

    async def _balance(self, request: Request) -> Response:
        _, early = await self._receive(request)
        if early is not None:
            return early
        return JSONResponse({"Account": {"AccountSid": ACCOUNT_SID, "BalanceData": {
            "Balance": "1543.75", "Currency": "INR", "PricingPlan": "Pay As You Go",
            "DateUpdated": "2026-04-24 10:32:18"}}})
