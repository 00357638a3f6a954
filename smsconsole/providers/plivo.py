"""Plivo Message API (v1): a JSON POST to `/v1/Account/{auth_id}/Message/` with HTTP Basic auth,
from a sender (`src`) or a Powerpack (`powerpack_uuid`). Real batching: messages that share text,
sender, callback URL and DLT fields go out as one request with `dst` joined by '<' (up to 1,000
distinct numbers); Plivo answers 202 with one `message_uuid` per valid destination, in order, and
lists the rest in `invalid_number`. Delivery receipts (to the per-request `url`) and inbound
messages are verified by X-Plivo-Signature-V3 (HMAC-SHA256 keyed by the auth token, several
comma-separated signatures allowed); receipts' ErrorCode values are classified; statuses are
fetched per message and both directions polled through the Message list (20 per page).

Unconfirmed: the meanings of ErrorCode values beyond 10/20/30/40/450/900 (Plivo's error-code
page, read second-hand); how Plivo signs non-ASCII values (the Python SDK signs the UTF-8 bytes read
as Latin-1, so both readings are accepted); whether India DLT fields are still honoured (a
third-party note calls them deprecated); the exact shape of `PartInfo` in receipts; the UCS-2
length cap (Plivo splits and encodes by itself, so no unicode flag is sent).

Prices: a receipt's `TotalAmount` ("TotalRate * number of Units") and a message record's
`total_amount` are what the message cost. Neither names a currency; Plivo bills in US dollars (the
account's `cash_credits` is USD), so they are read as USD."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from smsconsole.providers.base import (
    CallbackRejected,
    CallbackRequest,
    Capabilities,
    ConfigField,
    ConnectionCheck,
    ErrorKind,
    ErrorRule,
    ErrorRules,
    InboundReport,
    OutboundMessage,
    OutcomeUnknownError,
    PermanentError,
    PollPage,
    Provider,
    ProviderError,
    SendOutcome,
    StatusReport,
    TransientError,
)
from smsconsole.providers.common import (
    digits,
    e164,
    json_object,
    load_cursor,
    parse_price,
    parse_timestamp,
    pattern,
    sender_validator,
    snippet,
)
from smsconsole.providers.fields import dlt_entity_field, dlt_template_field

logger = logging.getLogger(__name__)

MAX_DESTINATIONS = 1000
PAGE_LIMIT = 20  # the Message list's largest page
STATUS_LOOKBACK = timedelta(hours=24)
ACCOUNT_CURRENCY = "USD"  # Plivo's prices name no currency; Plivo bills in US dollars
DLT_CATEGORIES = ("transactional", "promotional", "service_implicit", "service_explicit")

# Plivo message_state / Status → our message state. "received" is an inbound message's state.
STATUS_MAP: dict[str, str | None] = {
    "queued": "sent",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
    "rejected": "failed",
    "received": None,
}

ERROR_RULES = ErrorRules(
    # ErrorCode of a receipt (error_code of a message record).
    ErrorRule("10", ErrorKind.PERMANENT, "a carrier rejected the message as invalid"),
    ErrorRule("20", ErrorKind.TRANSIENT, "the carrier had a network error"),
    ErrorRule("30", ErrorKind.PERMANENT, "a carrier spam filter blocked the message"),
    ErrorRule("40", ErrorKind.CONFIGURATION, "the source number is malformed, not SMS-enabled or not in this account"),
    ErrorRule("50", ErrorKind.PERMANENT, "the destination number is invalid"),
    ErrorRule("60", ErrorKind.PERMANENT, "a message loop was detected"),
    ErrorRule("70", ErrorKind.PERMANENT, "the destination is permanently unavailable"),
    ErrorRule("80", ErrorKind.TRANSIENT, "the destination is temporarily unavailable"),
    ErrorRule("90", ErrorKind.PERMANENT, "no route to the destination"),
    ErrorRule("100", ErrorKind.PERMANENT, "the carrier prohibits this message"),
    ErrorRule("110", ErrorKind.PERMANENT, "the message is too long"),
    ErrorRule("200", ErrorKind.PERMANENT, "the recipient opted out (replied STOP) of messages from this sender"),
    ErrorRule("300", ErrorKind.TRANSIENT, "Plivo failed to dispatch the message"),
    ErrorRule("420", ErrorKind.TRANSIENT, "the message expired before it could be delivered"),
    ErrorRule("450", ErrorKind.PERMANENT, "the destination country is barred by the account's geo permissions"),
    ErrorRule("900", ErrorKind.CONFIGURATION, "the Plivo account has insufficient credit"),
    ErrorRule("910", ErrorKind.CONFIGURATION, "the Plivo account is disabled"),
    ErrorRule("1000", ErrorKind.TRANSIENT, "unknown delivery error"),
    # Words of a synchronous `error` text that say more than the HTTP status does.
    ErrorRule("insufficient", ErrorKind.CONFIGURATION, "", on="words"),
    ErrorRule("credit", ErrorKind.CONFIGURATION, "", on="words"),
    ErrorRule("powerpack", ErrorKind.CONFIGURATION, "", on="words"),
    ErrorRule("src", ErrorKind.CONFIGURATION, "", on="words"),
    ErrorRule("too many requests", ErrorKind.TRANSIENT, "", on="words"),
)

_NUMBER = re.compile(r"\+?[1-9]\d{4,13}")
_sender = sender_validator(
    "a Plivo number with its country code (up to 14 digits, '+' optional), a short code or an alphanumeric "
    "sender ID (up to 11 letters or digits)",
    _NUMBER.pattern, alphanumeric=r"[A-Za-z0-9]{1,11}", numeric=r"[0-9]+",
)


class PlivoProvider(Provider):
    kind = "plivo"
    display_name = "Plivo"
    description = "Plivo Message API: numbers, short codes, alphanumeric senders or a Powerpack; bulk sends."
    default_base_url = "https://api.plivo.com"
    config_fields = (
        ConfigField(
            "auth_id", "Auth ID", required=True,
            validator=pattern(r"(MA|SA)[A-Z0-9]{18}", "an Auth ID: MA or SA followed by 18 capital letters or digits"),
            placeholder="MA…", help="From the Plivo console overview (SA… for a subaccount)",
        ),
        ConfigField(
            "auth_token", "Auth token", required=True, secret=True,
            validator=pattern(r"[A-Za-z0-9_\-]{16,64}", "an auth token: 16–64 letters or digits"),
            placeholder="env:PLIVO_AUTH_TOKEN",
            help="The auth token beside the Auth ID; it also verifies Plivo's webhook signatures",
        ),
        ConfigField(
            "sender", "Source (src)", validator=_sender, placeholder="14155550100",
            help="A Plivo number or short code, or an alphanumeric sender ID where allowed (or use a Powerpack)",
        ),
        ConfigField(
            "powerpack_uuid", "Powerpack UUID",
            validator=pattern(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
                              "a UUID such as 2dca8f70-1387-4cbd-b97f-796717a5784b"),
            placeholder="2dca8f70-…", help="Optional instead of a source: Plivo picks the sender from the Powerpack",
        ),
        dlt_entity_field(
            "digits (the DLT principal entity ID, usually 19)", "1201159146412345678",
            "India DLT: the principal entity ID (dlt_entity_id)", shortest=6,
        ),
        dlt_template_field(
            "digits (the DLT template ID, usually 19)", "1207160000000000000",
            "India DLT: the default template ID (dlt_template_id); a message's own wins", shortest=6,
        ),
        ConfigField(
            "dlt_template_category", "DLT template category", kind="choice", choices=DLT_CATEGORIES,
            help="India DLT: the template's category, when the template ID is sent",
        ),
    )
    capabilities = Capabilities(
        max_batch=MAX_DESTINATIONS, max_body_chars=1600, status_webhook=True, status_polling=True,
        inbound_webhook=True, inbound_polling=True, signature=True, dlt=True,
        status_lookup=True,
    )

    @classmethod
    def check_config(cls, values: Mapping[str, str]) -> list[tuple[str, str]]:
        has_sender = bool((values.get("sender") or "").strip())
        has_powerpack = bool((values.get("powerpack_uuid") or "").strip())
        if has_sender == has_powerpack:
            return [("sender", "set exactly one of Source (src) or Powerpack UUID")]
        return []

    # Sending ----------------------------------------------------------------------------------

    async def send(self, messages: Sequence[OutboundMessage]) -> list[SendOutcome]:
        """One request per group of messages that differ only in their recipient."""
        outcomes: dict[int, SendOutcome] = {}
        for batch in self._batches(messages):
            for index, outcome in zip(batch, await self._send_batch([messages[i] for i in batch]), strict=True):
                outcomes[index] = outcome
        return [outcomes[index] for index in range(len(messages))]

    def _batches(self, messages: Sequence[OutboundMessage]) -> list[list[int]]:
        groups: dict[str, list[list[int]]] = {}
        for index, message in enumerate(messages):
            key = json.dumps(self._payload(message, ""), sort_keys=True)
            batches = groups.setdefault(key, [[]])
            current = batches[-1]
            numbers = {digits(messages[i].to) for i in current}
            if len(current) >= MAX_DESTINATIONS or digits(message.to) in numbers:
                current = []
                batches.append(current)
            current.append(index)
        return sorted((batch for batches in groups.values() for batch in batches), key=lambda batch: batch[0])

    async def _send_batch(self, batch: Sequence[OutboundMessage]) -> list[SendOutcome]:
        destinations = [digits(message.to) for message in batch]
        payload = self._payload(batch[0], "<".join(destinations))
        refs = ", ".join(m.ref for m in batch)
        try:
            response = await self.request("POST", self._account_url("/Message/"), json=payload, auth=self._auth())
        except ProviderError as transport_error:
            logger.debug("plivo: messages %s not sent: %s", refs, transport_error)
            return [SendOutcome(ref=m.ref, error=transport_error) for m in batch]
        status = response.status_code
        if not response.is_success:
            rejection = error_from_response(response)
            logger.debug("plivo: messages %s rejected: %s", refs, rejection)
            return [SendOutcome(ref=m.ref, error=rejection, http_status=status) for m in batch]
        answer = json_object(response) or {}
        uuids = [str(u) for u in answer.get("message_uuid") or [] if u] if isinstance(answer.get("message_uuid"), list) else []
        invalid = {digits(str(n)) or str(n) for n in answer.get("invalid_number") or []} \
            if isinstance(answer.get("invalid_number"), list) else set()
        valid = [d for d in destinations if d not in invalid]
        if len(uuids) != len(valid):
            unknown = OutcomeUnknownError(
                f"Plivo answered HTTP {status} with {len(uuids)} message UUIDs for {len(valid)} valid destinations: "
                f"{snippet(response.text) or '(empty body)'}", http_status=status)
            logger.debug("plivo: messages %s outcome unknown: %s", refs, unknown)
            return [SendOutcome(ref=m.ref, error=unknown if d not in invalid else _invalid(d, status), http_status=status)
                    for m, d in zip(batch, destinations, strict=True)]
        issued = iter(uuids)
        outcomes = []
        for message, destination in zip(batch, destinations, strict=True):
            if destination in invalid:
                outcomes.append(SendOutcome(ref=message.ref, error=_invalid(destination, status), http_status=status))
            else:
                outcomes.append(SendOutcome(ref=message.ref, provider_message_id=next(issued), provider_status="queued",
                                            http_status=status))
        logger.debug("plivo: %d of %d messages accepted (%s)", len(uuids), len(batch), refs)
        return outcomes

    def _payload(self, message: OutboundMessage, dst: str) -> dict[str, str]:
        payload: dict[str, str] = {}
        if powerpack := self.setting("powerpack_uuid").strip():
            payload["powerpack_uuid"] = powerpack
        else:
            sender = (message.sender or self.setting("sender")).strip()
            payload["src"] = sender.lstrip("+") if _NUMBER.fullmatch(sender) else sender
        payload["dst"] = dst
        payload["text"] = message.body
        if message.status_callback_url:
            payload["url"] = self.callback_url(message.status_callback_url)
            payload["method"] = "POST"
        entity_id = self.message_setting(message, "dlt_entity_id")
        template_id = self.message_setting(message, "dlt_template_id")
        if entity_id:
            payload["dlt_entity_id"] = entity_id
        if template_id:
            payload["dlt_template_id"] = template_id
            category = self.message_setting(message, "dlt_template_category")
            if category:
                payload["dlt_template_category"] = category
        return payload

    # Connection check -------------------------------------------------------------------------

    async def check_connection(self) -> ConnectionCheck:
        refused = {401: "Plivo refused the credentials (HTTP 401): check the Auth ID and auth token"}
        account = await self.account_check("Plivo", "account check", self._account_url("/"), error_from_response,
                                           refused=refused, auth=self._auth())
        if isinstance(account, ConnectionCheck):
            return account
        name = account.get("name") or account.get("auth_id") or self.setting("auth_id")
        detail = f"Account '{name}' ({account.get('account_type') or 'unknown type'})"
        if account.get("cash_credits") not in (None, ""):
            detail += f", credit {account['cash_credits']} USD"
        return ConnectionCheck(ok=True, detail=detail)

    # Receipts and replies ------------------------------------------------------------------------

    def verify_callback(self, request: CallbackRequest) -> None:
        """X-Plivo-Signature-V3 over the URL, the POST parameters and the nonce."""
        signatures = request.header("x-plivo-signature-v3")
        nonce = request.header("x-plivo-signature-v3-nonce")
        if not signatures or not nonce:
            raise CallbackRejected(401, "no X-Plivo-Signature-V3 and nonce headers")
        token = self.setting("auth_token")
        params = _callback_params(request) if request.method.upper() == "POST" else {}
        if not verify_signature(request.method, request.url, params, nonce, signatures, token):
            raise CallbackRejected(403, "the X-Plivo-Signature-V3 does not match this request")

    def parse_status_callback(self, request: CallbackRequest) -> list[StatusReport]:
        params = _flat(_callback_params(request))
        uuid = params.get("ParentMessageUUID") or params.get("MessageUUID")
        status = params.get("Status")
        if not uuid or not status:
            raise CallbackRejected(400, "a delivery receipt needs MessageUUID and Status")
        part, parts = _part_info(params.get("PartInfo"))
        at = next((t for t in map(parse_timestamp, (params.get("DeliveryReportTime"), params.get("SentTime"),
                                               params.get("MessageTime"))) if t), None)
        return [status_report(uuid, status, error_code=params.get("ErrorCode"), recipient=e164(params.get("To")),
                              at=at, part=part, parts=parts, price=parse_price(params.get("TotalAmount")))]

    def parse_inbound_callback(self, request: CallbackRequest) -> list[InboundReport]:
        params = _flat(_callback_params(request))
        sender, uuid = params.get("From"), params.get("MessageUUID")
        text = params.get("Text") if params.get("Text") is not None else params.get("Body")
        if not sender or not uuid or text is None:
            raise CallbackRejected(400, "an inbound message needs From, MessageUUID and Text")
        return [InboundReport(provider_message_id=uuid, sender=e164(sender) or sender, recipient=e164(params.get("To")),
                              text=text, keyword=(params.get("MessageIntent") or "").strip() or None)]

    def callback_answer(self, kind: str) -> tuple[int, str, bytes]:
        if kind == "inbound":  # Plivo reads the answer as Plivo XML; an empty Response sends no reply
            return 200, "application/xml", b'<?xml version="1.0" encoding="utf-8"?><Response></Response>'
        return super().callback_answer(kind)

    async def fetch_statuses(self, provider_message_ids: Sequence[str]) -> list[StatusReport]:
        reports = []
        for uuid in dict.fromkeys(provider_message_ids):
            record = await self.lookup(self._account_url(f"/Message/{uuid}/"), error_from_response, auth=self._auth())
            if isinstance(record, dict) and record.get("message_uuid") and record.get("message_state"):
                reports.append(_report_from_record(record))
        return reports

    async def poll_statuses(self, cursor: str | None) -> PollPage:
        """Outbound messages sent in the last 24 hours, newest first, 20 a page; every walk reads
        the window again so late receipts are seen (known ones are ignored)."""
        state = load_cursor(cursor)
        since = state.get("since") or _plivo_time(datetime.now(UTC) - STATUS_LOOKBACK)
        offset = int(state.get("offset") or 0)
        records, more = await self._list("outbound", since, offset)
        reports = tuple(_report_from_record(r) for r in records if r.get("message_uuid") and r.get("message_state"))
        if more:
            return PollPage(reports, json.dumps({"since": since, "offset": offset + PAGE_LIMIT}), True)
        return PollPage(reports, json.dumps({}), False)

    async def poll_inbound(self, cursor: str | None) -> PollPage:
        """Messages received since the cursor (None: the last five minutes), newest first; the next
        walk starts after the newest one seen."""
        state = load_cursor(cursor)
        since = state.get("since") or _plivo_time(datetime.now(UTC) - timedelta(minutes=5))
        offset = int(state.get("offset") or 0)
        records, more = await self._list("inbound", since, offset)
        reports = tuple(
            InboundReport(provider_message_id=str(r["message_uuid"]), sender=e164(str(r.get("from_number") or "")) or "",
                          recipient=e164(str(r.get("to_number") or "")), text=str(r.get("message_body") or ""),
                          at=parse_timestamp(r.get("message_time")))
            for r in records if r.get("message_uuid") and r.get("from_number")
        )
        newest = max([state.get("newest") or since, *(_plivo_time(r.at) for r in reports if r.at)])
        if more:
            return PollPage(reports, json.dumps({"since": since, "offset": offset + PAGE_LIMIT, "newest": newest}), True)
        return PollPage(reports, json.dumps({"since": newest}), False)

    async def _list(self, direction: str, since: str, offset: int) -> tuple[list[dict[str, Any]], bool]:
        params = {"message_direction": direction, "message_time__gt": since, "limit": str(PAGE_LIMIT),
                  "offset": str(offset)}
        response = await self.request("GET", self._account_url("/Message/"), params=params, auth=self._auth())
        if not response.is_success:
            raise error_from_response(response)
        listing = json_object(response)
        if listing is None:
            raise TransientError(f"Plivo's message list was unreadable: {snippet(response.text)}")
        records = [r for r in listing.get("objects") or [] if isinstance(r, dict)]
        meta = listing.get("meta") if isinstance(listing.get("meta"), dict) else {}
        return records, bool(meta.get("next"))

    # Helpers ----------------------------------------------------------------------------------

    def _account_url(self, suffix: str) -> str:
        return f"{self.base_url}/v1/Account/{self.setting('auth_id').strip()}{suffix}"

    def _auth(self) -> httpx.BasicAuth:
        return httpx.BasicAuth(self.setting("auth_id").strip(), self.setting("auth_token"))


def _invalid(destination: str, status: int) -> PermanentError:
    return PermanentError(f"Plivo rejected the destination {destination} as invalid", code="invalid_number",
                          http_status=status)


def error_from_response(response: httpx.Response) -> ProviderError:
    """Classify an error answer by its HTTP status, sharpened by words of Plivo's `error` text."""
    payload = json_object(response)
    text = str(payload.get("error") or "").strip() if payload else ""
    if not text:
        body = snippet(response.text)
        return Provider.classify_http(response, f"HTTP {response.status_code} from Plivo: {body}" if body else "")
    if response.status_code in (400, 402, 403, 422) and (rule := ERROR_RULES.search(text)):
        return rule.error(text, said="Plivo", http_status=response.status_code, response=response)
    return Provider.classify_http(response, f"Plivo: {text}")


def status_report(uuid: str, status: str, *, error_code: str | None = None, recipient: str | None = None,
                  at: datetime | None = None, part: int | None = None, parts: int | None = None,
                  price: float | None = None) -> StatusReport:
    """A Plivo status and ErrorCode read as a receipt; an unknown status maps to None."""
    state = STATUS_MAP.get(status)
    if state is None:
        logger.info("plivo: ignoring status %r of %r", status, uuid)
    code = (error_code or "").strip().lstrip("0") or None
    error_kind, reason = None, None
    if code and state in ("failed", "undelivered"):
        rule = ERROR_RULES.find(code) or ErrorRule(code, ErrorKind.PERMANENT, f"Plivo error {code}")
        error_kind, reason = rule.kind, rule.reason
    return StatusReport(provider_message_id=uuid, provider_status=status, state=state, at=at, recipient=recipient,
                        error_code=code, error_kind=error_kind, reason=reason, part=part, parts=parts,
                        price=price, price_currency=ACCOUNT_CURRENCY if price is not None else None)


def _report_from_record(record: Mapping[str, Any]) -> StatusReport:
    return status_report(str(record["message_uuid"]), str(record["message_state"]),
                         error_code=str(record.get("error_code") or "") or None,
                         recipient=e164(str(record.get("to_number") or "")) or None,
                         at=parse_timestamp(record.get("message_time")), price=parse_price(record.get("total_amount")))


def _callback_params(request: CallbackRequest) -> dict[str, Any]:
    """Form or query parameters (lists kept, as Plivo signs them), or a JSON object body."""
    if request.method.upper() == "POST" and request.content_type == "application/json":
        payload = request.json()
        if not isinstance(payload, dict):
            raise CallbackRejected(400, "the JSON body is not an object")
        return payload
    if request.method.upper() == "POST":
        return request.form()
    return request.query()


def _flat(params: Mapping[str, Any]) -> dict[str, str]:
    flat = {}
    for name, value in params.items():
        if isinstance(value, list):
            value = value[-1] if value else ""
        flat[name] = "" if value is None else str(value)
    return flat


def _part_info(value: str | None) -> tuple[int | None, int | None]:
    """PartInfo such as '1 of 3' → (1, 3)."""
    found = re.fullmatch(r"\s*(\d+)\D+(\d+)\s*", value or "")
    return (int(found[1]), int(found[2])) if found else (None, None)


def _plivo_time(when: datetime) -> str:
    """A message_time filter value: UTC, YYYY-MM-DD HH:MM:SS.uuuuuu."""
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


# --- webhook signatures -----------------------------------------------------------------------


def _sorted_query(params: Mapping[str, Any]) -> str:
    pairs = []
    for name in sorted(params):
        values = params[name] if isinstance(params[name], list) else [params[name]]
        pairs.append("&".join(f"{name}={value}" for value in sorted(map(str, values))))
    return "&".join(pairs)


def _sorted_params(params: Mapping[str, Any]) -> str:
    pieces = []
    for name in sorted(params):
        value = params[name]
        if isinstance(value, list):
            pieces.append("".join(f"{name}{item}" for item in sorted(map(str, value))))
        elif isinstance(value, dict):
            pieces.append(f"{name}{_sorted_params(value)}")
        else:
            pieces.append(f"{name}{value}")
    return "".join(pieces)


def signature_base(method: str, url: str, params: Mapping[str, Any] | None = None) -> str:
    """What V3 signs before the nonce. GET: scheme://host/path, then '?' and the query sorted as
    k=v&…. POST: with POST params, '?' (always) and the sorted query, '.' only when that query is not
    empty, then the params sorted as kv with no separators; without them, as GET."""
    parts = urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    query = _sorted_query(parse_qs(parts.query, keep_blank_values=True))
    if method.upper() == "POST" and params:
        return base + "?" + query + ("." if query else "") + _sorted_params(params)
    return base + ("?" + query if query else "")


def compute_signature(method: str, url: str, params: Mapping[str, Any] | None, nonce: str, auth_token: str,
                      *, latin1: bool = False) -> str:
    """X-Plivo-Signature-V3: base64 HMAC-SHA256 of `signature_base + '.' + nonce`, keyed by the
    auth token. `latin1` signs the UTF-8 bytes read as Latin-1, as the Python SDK does."""
    data = f"{signature_base(method, url, params)}.{nonce}".encode()
    if latin1:
        data = data.decode("latin-1").encode("utf-8")
    return base64.b64encode(hmac.new(auth_token.encode("utf-8"), data, hashlib.sha256).digest()).decode("ascii")


def verify_signature(method: str, url: str, params: Mapping[str, Any] | None, nonce: str, signatures: str,
                     auth_token: str) -> bool:
    """Whether any of the comma-separated `signatures` is Plivo's for this request."""
    if not signatures or not nonce or not auth_token:
        return False
    presented = [s.strip() for s in signatures.split(",") if s.strip()]
    expected = {compute_signature(method, url, params, nonce, auth_token, latin1=flag) for flag in (False, True)}
    return any(hmac.compare_digest(candidate.encode(), known.encode()) for candidate in presented for known in expected)
