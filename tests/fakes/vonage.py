"""A loopback fake of Vonage's SMS API (rest.nexmo.com/sms/json), account balance and synchronous
Reports API (api.nexmo.com/v2/reports/records), and a validator of requests against Vonage's own
OpenAPI specs (vendored in tests/specs).

The fake answers a send the way Vonage does: HTTP 200 whatever happens, one `messages[]` entry per
part of a long text, a non-zero `status` with `error-text` on failure. It keeps every part it sent
(and every message it was sent) as Reports API records, pages them with `TRUNCATED` and a
`_links.next` cursor, records every request, and can be told to answer the next ones with any
status, body, headers or delay."""

from __future__ import annotations

import base64
import copy
import functools
import itertools
import math
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


API_KEY = "abcd1234"
API_SECRET = "Abcdef0123456789"
SIGNATURE_SECRET = "sigSecret0123456789abcdefABCDEF"

SPECS = Path(__file__).resolve().parent.parent / "specs"  # vendored, see specs/SOURCES.md
REST_HOST = "https://rest.nexmo.com"
API_HOST = "https://api.nexmo.com"
GSM_LIMITS = (160, 153)
UNICODE_LIMITS = (70, 67)


def vonage_error(status: str, error_text: str) -> Reply:
    """A failed send as Vonage answers it: HTTP 200, one entry with a non-zero status."""
    return Reply(200, {"message-count": "1", "messages": [{"status": status, "error-text": error_text}]})


class FakeVonage(FakeProvider):
    def __init__(self, api_key: str = API_KEY, api_secret: str = API_SECRET) -> None:
        super().__init__()
        self.api_key, self.api_secret = api_key, api_secret
        self.issued_ids: list[str] = []
        self.balance = {"value": 10.17127500, "autoReload": False}
        self.records: dict[str, dict[str, Any]] = {}  # message id → Reports API record, both directions
        self.page_size = 1000
        self._ids = itertools.count(0x0B000000)
        self.app = Starlette(routes=[
            Route("/sms/json", self._send, methods=["POST"]),
            Route("/account/get-balance", self._get_balance, methods=["GET"]),
            Route("/v2/reports/records", self._get_records, methods=["GET"]),
        ])

    def set_status(self, message_id: str, status: str, error_code: str = "0") -> None:
        self.records[message_id].update(status=status, error_code=error_code, date_finalized=_now())

    def receive(self, sender: str, to: str, text: str, date_received: str | None = None) -> str:
        """A message a person sends to one of the account's numbers; returns its id."""
        message_id = self._new_id()
        self.records[message_id] = {
            "account_id": self.api_key, "message_id": message_id, "direction": "inbound", "from": sender,
            "to": to, "message_body": text, "date_received": date_received or _now(), "network": "23410",
        }
        return message_id

    # Routes -----------------------------------------------------------------------------------

    async def _send(self, request: Request) -> Response:
        recorded, early = await self._receive(request)
        if early is not None:
            return early
        form = recorded.form
        if form.get("api_key") != self.api_key or form.get("api_secret") != self.api_secret:
            return reply_response(vonage_error("4", "Bad Credentials"))
        for name in ("from", "to", "text"):
            if not form.get(name):
                return reply_response(vonage_error("2", f"Missing {name} param"))
        if not re.fullmatch(r"\d{7,15}", form["to"]):
            return reply_response(vonage_error("3", "Invalid to address"))
        unicode = form.get("type") == "unicode"
        parts = _part_count(form["text"], UNICODE_LIMITS if unicode else GSM_LIMITS, unicode)
        entries = []
        for _ in range(parts):
            message_id = self._new_id()
            self.issued_ids.append(message_id)
            entry = {"to": form["to"], "message-id": message_id, "status": "0",
                     "remaining-balance": "10.12345678", "message-price": "0.03330000", "network": "23410"}
            if "client-ref" in form:
                entry["client-ref"] = form["client-ref"]
            entries.append(entry)
            self.records[message_id] = {
                "account_id": self.api_key, "message_id": message_id, "client_ref": form.get("client-ref", ""),
                "direction": "outbound", "from": form["from"], "to": form["to"], "status": "accepted",
                "error_code": "0", "concatenated": parts > 1, "date_received": _now(),
                "message_body": form["text"], "total_price": 0.0333, "currency": "EUR",
            }
        return JSONResponse({"message-count": str(parts), "messages": entries})

    async def _get_balance(self, request: Request) -> Response:
        recorded, early = await self._receive(request)
        if early is not None:
            return early
        query = dict(parse_qsl(recorded.query))
        if query.get("api_key") != self.api_key or query.get("api_secret") != self.api_secret:
            return JSONResponse({"error-code": "401", "error-code-label": "authentication failed"}, status_code=401)
        return JSONResponse(self.balance)

    async def _get_records(self, request: Request) -> Response:
        """Records by id (comma-separated) or by date_received window, `page_size` at a time."""
        recorded, early = await self._receive(request)
        if early is not None:
            return early
        auth = recorded.basic_auth
        if auth != (self.api_key, self.api_secret):
            return JSONResponse({"type": "https://developer.nexmo.com/api-errors#unauthorized",
                                 "title": "Unauthorized", "detail": "Bad credentials"}, status_code=401)
        query = dict(parse_qsl(recorded.query))
        if query.get("account_id") != self.api_key:
            return JSONResponse({"title": "Forbidden", "detail": "User not authorized to query the requested data"},
                                status_code=403)
        direction = query.get("direction")
        selected = [r for r in self.records.values() if r["direction"] == direction]
        not_found: list[str] = []
        if "id" in query:
            wanted = query["id"].split(",")
            selected = [r for r in selected if r["message_id"] in wanted]
            not_found = [i for i in wanted if i not in {r["message_id"] for r in selected}]
        else:
            start, end = _parse(query["date_start"]), _parse(query["date_end"])
            selected = [r for r in selected if start <= _parse(r["date_received"]) < end]
        if query.get("include_message") != "true":
            selected = [{k: v for k, v in r.items() if k != "message_body"} for r in selected]
        offset = int(query.get("cursor", "0"))
        page = selected[offset:offset + self.page_size]
        kept = [(k, v) for k, v in parse_qsl(recorded.query) if k not in ("cursor", "iv")]
        body: dict[str, Any] = {
            "_links": {"self": {"href": f"{API_HOST}{recorded.path}?{urlencode(kept)}"}},
            "request_id": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab", "request_status": "SUCCESS",
            "received_at": _now(), "account_id": self.api_key, "product": "SMS", "direction": direction,
            "items_count": len(page), "records": page,
        }
        if not_found:
            body["ids_not_found"] = ",".join(not_found)
        if offset + self.page_size < len(selected):
            cursor = str(offset + self.page_size)
            body["request_status"] = "TRUNCATED"
            body["cursor"], body["iv"] = cursor, "iv-" + cursor
            next_query = urlencode([*kept, ("cursor", cursor), ("iv", "iv-" + cursor)])
            body["_links"]["next"] = {"href": f"{API_HOST}{recorded.path}?{next_query}"}
        return JSONResponse(body)

    async def _receive(self, request: Request) -> tuple[RecordedRequest, Response | None]:
        recorded, scripted = await self._record(request)
        if scripted is not None:
            return recorded, scripted
        return recorded, None

    def _new_id(self) -> str:
        return f"{next(self._ids):016X}"


def _part_count(text: str, limits: tuple[int, int], unicode: bool) -> int:
    units = len(text.encode("utf-16-be")) // 2 if unicode else len(text)
    single, per_part = limits
    return 1 if units <= single else math.ceil(units / per_part)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def _parse(value: str) -> datetime:
    text = value.replace("Z", "+00:00")
    text = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", text)
    return datetime.fromisoformat(text)


# --- validation against the OpenAPI specs -------------------------------------------------------

# (spec file, host the path is served on, path prefix)
_SPECS = (
    ("vonage_sms.yml", REST_HOST, "/sms/"),
    ("vonage_account.yml", REST_HOST, "/account/"),
    ("vonage_reports.yml", API_HOST, "/v2/reports"),
)
# Query parameters the Reports pagination guide documents but the vendored spec predates.
_UNDECLARED_BUT_DOCUMENTED = {"cursor", "iv"}


class _SpecRequest:
    """openapi-core's Request protocol over a recorded request, placed on Vonage's real host."""

    def __init__(self, recorded: RecordedRequest, host: str) -> None:
        self.host_url = host
        self.path = recorded.path
        self.method = recorded.method.lower()
        self.body = recorded.body or None
        self.content_type = recorded.headers.get("content-type", "application/octet-stream")
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qsl(recorded.query, keep_blank_values=True)),
            header=Headers(recorded.headers), cookie=ImmutableMultiDict(),
        )


@functools.cache
def _spec(name: str) -> dict[str, Any]:
    with (SPECS / name).open(encoding="utf-8") as handle:
        spec: dict[str, Any] = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return _corrected(spec) if name == "vonage_reports.yml" else spec


def _corrected(spec: dict[str, Any]) -> dict[str, Any]:
    """Two defects of the reports spec, fixed in memory so valid requests pass: `date_start` and
    `date_end` say `format: date` though their text and examples are date-times; `type` and
    `status` declare `default: none`, which is not in their own enums (openapi-core applies it)."""
    fixed = copy.deepcopy(spec)
    for parameter in fixed["paths"]["/v2/reports/records"]["get"]["parameters"]:
        schema = parameter.get("schema", {})
        if parameter["name"] in ("date_start", "date_end"):
            schema["format"] = "date-time"
        if "enum" in schema and schema.get("default") not in schema["enum"]:
            schema.pop("default", None)
    return fixed


@functools.cache
def _openapi(name: str) -> OpenAPI:
    return OpenAPI.from_dict(_spec(name), config=Config(spec_validator_cls=None))


def _operation(spec: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    prefix = urlsplit_path(spec.get("servers", [{}])[0].get("url", ""))
    for template, path_item in spec["paths"].items():
        regex = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        for candidate in (path, path.removeprefix(prefix)):
            if re.fullmatch(regex, candidate) and method.lower() in path_item:
                operation: dict[str, Any] = path_item[method.lower()]
                return operation
    return {}


def urlsplit_path(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def spec_problems(recorded: RecordedRequest) -> list[str]:
    """Why `recorded` is not a valid request to Vonage's APIs: empty when it is.

    openapi-core checks the path, parameters, security and the form body against the spec that
    serves the path. Checked here as well: an undeclared form or query parameter (which Vonage would
    ignore) and `to`, whose spec pattern `\\d{7,15}` is unanchored in JSON Schema (so '+4477…'
    would pass) but means digits only."""
    chosen = next(((name, host) for name, host, prefix in _SPECS if recorded.path.startswith(prefix)), None)
    if chosen is None:
        return [f"no Vonage spec serves {recorded.path}"]
    name, host = chosen
    problems: list[str] = []
    try:
        _openapi(name).validate_request(_SpecRequest(recorded, host))
    except OpenAPIError as error:
        details = [
            getattr(schema_error, "message", str(schema_error))
            for schema_error in getattr(error.__cause__, "schema_errors", ()) or getattr(error, "schema_errors", ())
        ]
        problems.append(f"{type(error).__name__}: {error}" + (f" ({'; '.join(details)})" if details else ""))
    spec = _spec(name)
    operation = _operation(spec, recorded.method, recorded.path)
    declared_query = {p["name"] for p in _parameters(spec, operation) if p.get("in") == "query"}
    for query_name, _ in parse_qsl(recorded.query, keep_blank_values=True):
        if query_name not in declared_query | _UNDECLARED_BUT_DOCUMENTED:
            problems.append(f"undeclared query parameter {query_name}")
    form_schema = (
        operation.get("requestBody", {}).get("content", {}).get("application/x-www-form-urlencoded", {}).get("schema")
    )
    if form_schema:
        declared = _resolve(spec, form_schema).get("properties", {})
        pairs = parse_qsl(recorded.body.decode("utf-8"), keep_blank_values=True)
        problems += [f"undeclared parameter {field}" for field, _ in pairs if field not in declared]
        to = dict(pairs).get("to")
        if to is not None and not re.fullmatch(r"\d{7,15}", to):
            problems.append(f"'to' must be 7–15 digits without '+', not {to!r}")
    return problems


def _resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def _parameters(spec: dict[str, Any], operation: dict[str, Any]) -> list[dict[str, Any]]:
    return [_resolve(spec, p) for p in operation.get("parameters", [])]


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
