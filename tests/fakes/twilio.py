"""A loopback fake of the Twilio REST API (2010-04-01) and a validator of requests against
Twilio's own OpenAPI spec.

The fake serves Messages.json, the account and its balance the way Twilio does (Basic auth,
201 with a message resource, JSON error bodies), records every request it receives, and can be
told to answer the next requests with any status, body, headers or delay."""

from __future__ import annotations

import email.utils
import functools
import itertools
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import yaml
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.exceptions import OpenAPIError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from werkzeug.datastructures import Headers, ImmutableMultiDict

from tests.fakes.base import FakeProvider, RecordedRequest, Reply, reply_response

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "f00dfacef00dfacef00dfacef00dface"
API_KEY_SID = "SK" + "fedcba9876543210" * 2
API_KEY_SECRET = "keysecret-0123456789-abcdefghijkl"
SERVICE_SID = "MG" + "00112233445566778899aabbccddeeff"

SPEC_PATH = Path(__file__).resolve().parent.parent / "specs" / "twilio_api_v2010.yaml"  # vendored, see specs/SOURCES.md
SPEC_HOST = "https://api.twilio.com"


def twilio_error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    """An error answer in Twilio's shape."""
    more_info = f"https://www.twilio.com/docs/errors/{code}"
    return Reply(status, {"code": code, "message": message, "more_info": more_info, "status": status}, headers or {})


class FakeTwilio(FakeProvider):
    def __init__(
        self,
        account_sid: str = ACCOUNT_SID,
        credentials: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.account_sid = account_sid
        default_credentials = {ACCOUNT_SID: AUTH_TOKEN, API_KEY_SID: API_KEY_SECRET}
        self.credentials = credentials if credentials is not None else default_credentials
        self.issued_sids: list[str] = []
        self.account = {"friendly_name": "Acme Ltd", "status": "active", "type": "Full"}
        self.balance: Reply | None = None  # None: the usual 200 answer
        self.messages: dict[str, dict[str, Any]] = {}  # sid → message resource, sent and received
        self._sid_numbers = itertools.count(1)
        prefix = "/2010-04-01/Accounts/{account_sid}"
        self.app = Starlette(routes=[
            Route(prefix + "/Messages.json", self._create_message, methods=["POST"]),
            Route(prefix + "/Messages.json", self._list_messages, methods=["GET"]),
            Route(prefix + "/Messages/{sid}.json", self._fetch_message, methods=["GET"]),
            Route(prefix + "/Balance.json", self._fetch_balance, methods=["GET"]),
            Route(prefix + ".json", self._fetch_account, methods=["GET"]),
        ])

    # Routes -----------------------------------------------------------------------------------

    async def _create_message(self, request: Request) -> Response:
        recorded, early = await self._receive(request)
        if early is not None:
            return early
        form = recorded.form
        if not form.get("To"):
            return reply_response(twilio_error(400, 21604, "A 'To' phone number is required."))
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return reply_response(twilio_error(400, 21603, "A 'From' phone number is required."))
        if not form.get("Body"):
            return reply_response(twilio_error(400, 21602, "Message body is required."))
        if len(form["Body"]) > 1600:
            return reply_response(twilio_error(400, 21617, "The concatenated message body exceeds the 1600 character limit."))
        sid = f"SM{next(self._sid_numbers):032x}"
        self.issued_sids.append(sid)
        picked_by_service = "MessagingServiceSid" in form and "From" not in form
        resource = {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": form["To"],
            "from": None if picked_by_service else form["From"],
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": form["Body"],
            "status": "accepted" if picked_by_service else "queued",
            "num_segments": "0" if picked_by_service else "1",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "error_code": None,
            "error_message": None,
            "price": None,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }
        resource["date_created"] = resource["date_updated"] = resource["date_sent"] = _rfc2822_now()
        self.messages[sid] = resource
        return JSONResponse(resource, status_code=201)

    def set_status(self, sid: str, status: str, error_code: int | None = None, price: str | None = None,
                   price_unit: str | None = None) -> None:
        """A new status; `price` as Twilio rates a message later (a negative string, e.g. "-0.00750")."""
        self.messages[sid].update(status=status, error_code=error_code, date_updated=_rfc2822_now())
        if price is not None:
            self.messages[sid].update(price=price, price_unit=price_unit)

    def receive(self, sender: str, to: str, body: str, date_sent: str | None = None) -> str:
        """A message a person sends to one of the account's numbers; returns its sid."""
        sid = f"SM{next(self._sid_numbers):032x}"
        self.messages[sid] = {
            "sid": sid, "account_sid": self.account_sid, "from": sender, "to": to, "body": body,
            "status": "received", "direction": "inbound", "num_segments": "1",
            "date_sent": date_sent or _rfc2822_now(), "date_updated": date_sent or _rfc2822_now(),
            "error_code": None,
        }
        return sid

    async def _fetch_message(self, request: Request) -> Response:
        _, early = await self._receive(request)
        if early is not None:
            return early
        resource = self.messages.get(request.path_params["sid"])
        if resource is None:
            return reply_response(twilio_error(404, 20404, f"The requested resource {request.url.path} was not found"))
        return JSONResponse(resource)

    async def _list_messages(self, request: Request) -> Response:
        """Messages.json with To, DateSent> (a day, inclusive), PageSize and PageToken (an offset)."""
        _, early = await self._receive(request)
        if early is not None:
            return early
        query = request.query_params
        selected = [m for m in self.messages.values() if not query.get("To") or m["to"] == query["To"]]
        if since := query.get("DateSent>"):
            selected = [m for m in selected if _day(m["date_sent"]) >= since]
        selected.reverse()  # newest first, as Twilio lists them
        size = int(query.get("PageSize", "50"))
        offset = int(query.get("PageToken", "0"))
        page = selected[offset:offset + size]
        next_uri = None
        if offset + size < len(selected):
            base = request.url.path
            kept = [(k, v) for k, v in query.multi_items() if k != "PageToken"]
            next_uri = f"{base}?{urlencode([*kept, ('PageToken', str(offset + size))])}"
        return JSONResponse({"messages": page, "next_page_uri": next_uri, "page_size": size,
                             "page": offset // size if size else 0})

    async def _fetch_account(self, request: Request) -> Response:
        _, early = await self._receive(request)
        if early is not None:
            return early
        return JSONResponse({"sid": self.account_sid, **self.account})

    async def _fetch_balance(self, request: Request) -> Response:
        _, early = await self._receive(request)
        if early is not None:
            return early
        if self.balance is not None:
            return reply_response(self.balance)
        return JSONResponse({"account_sid": self.account_sid, "balance": "12.34", "currency": "USD"})

    async def _receive(self, request: Request) -> tuple[RecordedRequest, Response | None]:
        """Record the request, then answer early with a scripted reply or an auth/account error."""
        recorded, scripted = await self._record(request)
        if scripted is not None:
            return recorded, scripted
        auth = recorded.basic_auth
        if auth is None or self.credentials.get(auth[0]) != auth[1]:
            error = twilio_error(401, 20003, "Authenticate", {"WWW-Authenticate": 'Basic realm="Twilio API"'})
            return recorded, reply_response(error)
        if request.path_params["account_sid"] != self.account_sid:
            return recorded, reply_response(twilio_error(404, 20404, f"The requested resource {recorded.path} was not found"))
        return recorded, None

def _rfc2822_now() -> str:
    return email.utils.format_datetime(datetime.now(UTC), usegmt=True)


def _day(rfc2822: str) -> str:
    return email.utils.parsedate_to_datetime(rfc2822).astimezone(UTC).strftime("%Y-%m-%d")


# --- validation against the OpenAPI spec -------------------------------------------------------


class _SpecRequest:
    """openapi-core's Request protocol over a recorded request, placed on Twilio's real host."""

    def __init__(self, recorded: RecordedRequest) -> None:
        self.host_url = SPEC_HOST
        self.path = recorded.path
        self.method = recorded.method.lower()
        self.body = recorded.body or None
        self.content_type = recorded.headers.get("content-type", "application/octet-stream")
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qsl(recorded.query, keep_blank_values=True)),
            header=Headers(recorded.headers),
            cookie=ImmutableMultiDict(),
        )


@functools.cache
def _spec() -> dict[str, Any]:
    with SPEC_PATH.open(encoding="utf-8") as handle:
        spec: dict[str, Any] = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return spec


@functools.cache
def _openapi() -> OpenAPI:
    return OpenAPI.from_dict(_spec(), config=Config(spec_validator_cls=None))


def _operation(method: str, path: str) -> dict[str, Any]:
    for template, path_item in _spec()["paths"].items():
        regex = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(regex, path) and method.lower() in path_item:
            operation: dict[str, Any] = path_item[method.lower()]
            return operation
    return {}


def _pascal(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def spec_problems(recorded: RecordedRequest) -> list[str]:
    """Why `recorded` is not a valid request to Twilio's API: empty when it is.

    openapi-core checks the path, parameters, security and the form body against the schema.
    Two rules are checked here: openapi-core reads only the declared properties of a form body, so
    an undeclared parameter (which Twilio would silently ignore) would pass unseen; and the spec's
    `x-twilio.conditional` groups (one of From / MessagingServiceSid, one of Body / MediaUrl /
    ContentSid) are an extension no schema keyword encodes."""
    problems: list[str] = []
    try:
        _openapi().validate_request(_SpecRequest(recorded))
    except OpenAPIError as error:
        details = [
            getattr(schema_error, "message", str(schema_error))
            for schema_error in getattr(error.__cause__, "schema_errors", ()) or getattr(error, "schema_errors", ())
        ]
        problems.append(f"{type(error).__name__}: {error}" + (f" ({'; '.join(details)})" if details else ""))
    operation = _operation(recorded.method, recorded.path)
    form_schema = (
        operation.get("requestBody", {}).get("content", {}).get("application/x-www-form-urlencoded", {}).get("schema")
    )
    if form_schema:
        declared = form_schema.get("properties", {})
        problems += [f"undeclared parameter {name}" for name, _ in recorded.form_pairs if name not in declared]
        present = {name for name, value in recorded.form_pairs if value}
        for group in operation.get("x-twilio", {}).get("conditional", []):
            names = [_pascal(name) for name in group]
            if not present.intersection(names):
                problems.append(f"one of {', '.join(names)} is required")
    return problems
