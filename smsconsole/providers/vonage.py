"""Vonage (Nexmo) SMS API, the legacy `rest.nexmo.com/sms/json` API (spec 1.0.10): one form POST
per recipient with api_key/api_secret in the body, `type=unicode` for UCS-2, a per-message DLR
`callback`, our ref as `client-ref` and India DLT `entity-id`/`content-id`. A long text comes back
as one `messages[]` entry per part; every part id goes into SendOutcome.part_ids, because Vonage
sends a delivery receipt per part. Delivery receipts and inbound messages arrive by GET, form POST
or JSON POST and are verified by Vonage's `sig` scheme (md5hash or HMAC-MD5/SHA1/SHA256/SHA512 over
the sorted parameters) or, with no signature secret set, by a token in the callback URL. Statuses
and inbound messages are polled through the synchronous Reports API (`/v2/reports/records`).

Two hosts: the SMS and account APIs live on rest.nexmo.com (`base_url`), the Reports API on
api.nexmo.com. The second is the `api_base_url` setting; when that is empty and `base_url` was
overridden (a test fake, a proxy), both APIs go to `base_url`.

Unconfirmed: the DLR err-code meanings (secondary sources); whether Vonage signs parameters of the
callback URL's own query (the `token` we add is left out of the signed set); the maximum text
length (1,600 characters assumed); how many ids one Reports API lookup takes (20 per request).

Prices: the send answer's `message-price` is per part (the message costs their sum) and a DLR's
`price` is its part's. Neither names a currency: Vonage keeps an account in EUR (the account spec's
balance is "in EUR"), so both are read as EUR; a Reports record gives `total_price` and `currency`."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from smsconsole.providers.base import (
    ERROR_CLASSES,
    WEBHOOK_TOKEN_FIELD,
    CallbackRejected,
    CallbackRequest,
    Capabilities,
    ConfigField,
    ConfigurationError,
    ConnectionCheck,
    ErrorKind,
    ErrorRule,
    ErrorRules,
    InboundReport,
    OutboundMessage,
    OutcomeUnknownError,
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
    currency_code,
    parse_price,
    parse_smpp_time,
    parse_timestamp,
    pattern,
    same_secret,
    sender_validator,
    snippet,
)
from smsconsole.providers.fields import dlt_entity_field, dlt_template_field

logger = logging.getLogger(__name__)

DEFAULT_API_BASE_URL = "https://api.nexmo.com"
ACCOUNT_CURRENCY = "EUR"  # the SMS API's prices name no currency; a Vonage account is kept in EUR
SIGNATURE_METHODS = ("md5hash", "md5hmac", "sha1hmac", "sha256hmac", "sha512hmac")
REPORT_IDS_PER_REQUEST = 20
STATUS_LOOKBACK = timedelta(hours=24)  # the Reports API's widest window; late receipts are seen again

# Vonage DLR / Reports status → our message state. "unknown" means Vonage has heard nothing.
STATUS_MAP: dict[str, str | None] = {
    "accepted": "sent",
    "buffered": "sent",
    "submitted": "sent",
    "delivered": "delivered",
    "expired": "undelivered",
    "failed": "failed",
    "rejected": "failed",
    "deleted": "failed",
    "unknown": None,
}

ERROR_RULES = ErrorRules(
    # `messages[].status` of a send answer (the spec's x-errors).
    ErrorRule("1", ErrorKind.TRANSIENT, "throttled: sending faster than the account's limit"),
    ErrorRule("2", ErrorKind.PERMANENT, "a required parameter (from, to or text) is missing"),
    ErrorRule("3", ErrorKind.PERMANENT, "a parameter value is invalid (check the recipient number)"),
    ErrorRule("4", ErrorKind.CONFIGURATION, "Vonage refused the credentials: check the API key and API secret"),
    ErrorRule("5", ErrorKind.TRANSIENT, "Vonage had an internal error"),
    ErrorRule("6", ErrorKind.PERMANENT, "Vonage could not process the message (e.g. an unrecognised number prefix)"),
    ErrorRule("7", ErrorKind.PERMANENT, "the recipient number is barred (blacklisted, e.g. after replying STOP)"),
    ErrorRule("8", ErrorKind.CONFIGURATION, "the Vonage account is barred (suspended)"),
    ErrorRule("9", ErrorKind.CONFIGURATION, "the Vonage account has no credit left: top up"),
    ErrorRule("10", ErrorKind.TRANSIENT, "too many simultaneous connections to Vonage"),
    ErrorRule("11", ErrorKind.CONFIGURATION, "the account is not enabled for the SMS API over HTTP"),
    ErrorRule("12", ErrorKind.PERMANENT, "the message is too long"),
    ErrorRule("14", ErrorKind.CONFIGURATION, "Vonage could not verify the request signature"),
    ErrorRule("15", ErrorKind.CONFIGURATION,
              "the sender (from) is not allowed: use a Vonage number where alphanumeric senders are not supported "
              "(North America)"),
    ErrorRule("22", ErrorKind.PERMANENT, "the network code is unknown or does not match the destination"),
    ErrorRule("23", ErrorKind.CONFIGURATION, "the callback URL is too long or has illegal characters"),
    ErrorRule("29", ErrorKind.PERMANENT, "the account is in demo mode and the recipient is not whitelisted"),
    ErrorRule("32", ErrorKind.CONFIGURATION, "a signed request may not also carry the API secret"),
    ErrorRule("33", ErrorKind.PERMANENT, "the recipient number is de-activated"),
    # `err-code` of a delivery receipt (and `error_code` of a Reports record).
    ErrorRule("1", ErrorKind.TRANSIENT, "unknown delivery error", on="report"),
    ErrorRule("2", ErrorKind.TRANSIENT, "absent subscriber (temporary)", on="report"),
    ErrorRule("3", ErrorKind.PERMANENT, "absent subscriber (permanent)", on="report"),
    ErrorRule("4", ErrorKind.PERMANENT, "barred by the recipient (blocked or opted out)", on="report"),
    ErrorRule("5", ErrorKind.TRANSIENT, "portability error", on="report"),
    ErrorRule("6", ErrorKind.PERMANENT, "rejected by an anti-spam filter", on="report"),
    ErrorRule("7", ErrorKind.TRANSIENT, "handset busy", on="report"),
    ErrorRule("8", ErrorKind.TRANSIENT, "network error", on="report"),
    ErrorRule("9", ErrorKind.PERMANENT, "illegal number", on="report"),
    ErrorRule("10", ErrorKind.PERMANENT, "invalid message", on="report"),
    ErrorRule("11", ErrorKind.PERMANENT, "unroutable", on="report"),
    ErrorRule("12", ErrorKind.TRANSIENT, "destination unreachable", on="report"),
    ErrorRule("13", ErrorKind.PERMANENT, "subscriber age restriction", on="report"),
    ErrorRule("14", ErrorKind.PERMANENT, "blocked by the carrier", on="report"),
    ErrorRule("15", ErrorKind.TRANSIENT, "the recipient's prepaid balance is insufficient", on="report"),
    ErrorRule("99", ErrorKind.TRANSIENT, "general delivery error", on="report"),
)

_NUMBER = re.compile(r"\+?[1-9]\d{6,14}")
_sender = sender_validator(
    "a Vonage number (7–15 digits, '+' optional) or an alphanumeric sender ID (up to 11 letters, digits or "
    "spaces, not only digits)",
    _NUMBER.pattern, alphanumeric=r"[A-Za-z0-9 ]{1,11}", numeric=r"[0-9 ]*[0-9][0-9 ]*",
)


def _ttl(value: str) -> str | None:
    return None if 20000 <= int(value) <= 604800000 else "must be from 20000 to 604800000 milliseconds"


class VonageProvider(Provider):
    kind = "vonage"
    display_name = "Vonage (Nexmo)"
    description = "Vonage SMS API (Nexmo): numbers and alphanumeric senders, signed webhooks, Reports API polling."
    default_base_url = "https://rest.nexmo.com"
    config_fields = (
        ConfigField(
            "api_key", "API key", required=True,
            validator=pattern(r"[A-Za-z0-9]{8}", "an API key: 8 letters or digits"),
            placeholder="abcd1234", help="From the Vonage API dashboard (top of the Getting started page)",
        ),
        ConfigField(
            "api_secret", "API secret", required=True, secret=True,
            validator=pattern(r"[A-Za-z0-9]{6,32}", "an API secret: 6–32 letters or digits"),
            placeholder="env:VONAGE_API_SECRET",
            help="The API key's secret; env:NAME reads it from the environment",
        ),
        ConfigField(
            "sender", "From", required=True, validator=_sender, placeholder="AcmeInc",
            help="A Vonage number (sent without '+') or an alphanumeric sender ID where the country allows one",
        ),
        ConfigField(
            "signature_secret", "Signature secret", secret=True, placeholder="env:VONAGE_SIGNATURE_SECRET",
            help="From the dashboard's API settings; when set, webhooks must carry a valid 'sig'",
        ),
        ConfigField(
            "signature_method", "Signature method", kind="choice", choices=SIGNATURE_METHODS, default="md5hash",
            help="The signature method chosen in the dashboard: md5hash, or HMAC with MD5, SHA-1, SHA-256 or SHA-512",
        ),
        WEBHOOK_TOKEN_FIELD,
        ConfigField(
            "ttl", "Time to live (ms)", kind="int", validator=_ttl, placeholder="259200000",
            help="How long Vonage tries to deliver, 20000–604800000 ms (default 72 hours)",
        ),
        dlt_entity_field(
            "digits (the DLT principal entity ID, usually 19)", "1101456324675322134",
            "India DLT: the principal entity ID, sent as entity-id", shortest=6,
        ),
        dlt_template_field(
            "digits (the DLT content template ID, usually 19)", "1107457532145798767",
            "India DLT: the default content template ID, sent as content-id (a message's own wins)", shortest=6,
        ),
        ConfigField(
            "api_base_url", "Reports API base URL", kind="url", placeholder=DEFAULT_API_BASE_URL,
            help="Only to reach the Reports API elsewhere (a proxy); the default is https://api.nexmo.com",
        ),
    )
    capabilities = Capabilities(
        max_batch=1, max_body_chars=1600, status_webhook=True, status_polling=True,
        inbound_webhook=True, inbound_polling=True, signature=True, dlt=True,
        status_lookup=True,
    )

    @property
    def api_base_url(self) -> str:
        """The Reports API host: the setting, else `base_url` when it was overridden, else api.nexmo.com."""
        if configured := self.setting("api_base_url").strip():
            return configured.rstrip("/")
        if self.base_url != self.default_base_url:
            return self.base_url
        return DEFAULT_API_BASE_URL

    # Sending ----------------------------------------------------------------------------------

    async def send(self, messages: Sequence[OutboundMessage]) -> list[SendOutcome]:
        return [await self._send_one(message) for message in messages]

    async def _send_one(self, message: OutboundMessage) -> SendOutcome:
        try:
            response = await self.request("POST", f"{self.base_url}/sms/json", data=self._form(message),
                                          headers={"Accept": "application/json"})
        except ProviderError as transport_error:
            logger.debug("vonage: message %s not sent: %s", message.ref, transport_error)
            return SendOutcome(ref=message.ref, error=transport_error)
        status = response.status_code
        if not response.is_success:
            rejection = Provider.classify_http(response, f"HTTP {status} from Vonage: {snippet(response.text)}")
            logger.debug("vonage: message %s rejected: %s", message.ref, rejection)
            return SendOutcome(ref=message.ref, error=rejection, http_status=status)
        parts = _parts(response)
        if parts is None:
            unknown = OutcomeUnknownError(
                f"Vonage answered HTTP {status} without a readable messages list: "
                f"{snippet(response.text) or '(empty body)'}", http_status=status)
            logger.debug("vonage: message %s outcome unknown: %s", message.ref, unknown)
            return SendOutcome(ref=message.ref, error=unknown, http_status=status)
        failed = next((part for part in parts if str(part.get("status")) != "0"), None)
        if failed is not None:
            accepted = [str(p["message-id"]) for p in parts if str(p.get("status")) == "0" and p.get("message-id")]
            rejection = error_from_part(failed, http_status=status, accepted_parts=accepted)
            logger.debug("vonage: message %s rejected: %s", message.ref, rejection)
            return SendOutcome(ref=message.ref, error=rejection, http_status=status)
        part_ids = tuple(str(part.get("message-id") or "") for part in parts)
        if not all(part_ids):
            unknown = OutcomeUnknownError(
                f"Vonage accepted the message but a part has no message-id: {snippet(response.text)}",
                http_status=status)
            logger.debug("vonage: message %s outcome unknown: %s", message.ref, unknown)
            return SendOutcome(ref=message.ref, error=unknown, http_status=status)
        logger.debug("vonage: message %s accepted as %s", message.ref, ", ".join(part_ids))
        prices = [parse_price(part.get("message-price")) for part in parts]
        price = sum(p for p in prices if p is not None) if all(p is not None for p in prices) else None
        return SendOutcome(ref=message.ref, provider_message_id=part_ids[0], provider_status="0",
                           http_status=status, part_ids=part_ids, price=price,
                           price_currency=ACCOUNT_CURRENCY if price is not None else None)

    def _form(self, message: OutboundMessage) -> dict[str, str]:
        sender = (message.sender or self.setting("sender")).strip()
        form = {
            "api_key": self.setting("api_key").strip(),
            "api_secret": self.setting("api_secret"),
            "from": sender.lstrip("+") if _NUMBER.fullmatch(sender) else sender,
            "to": digits(message.to),
            "text": message.body,
        }
        if message.encoding == "UCS-2":
            form["type"] = "unicode"
        if message.status_callback_url:
            form["callback"] = self.callback_url(message.status_callback_url)
        if message.ref and len(message.ref) <= 40:
            form["client-ref"] = message.ref
        if ttl := self.setting("ttl").strip():
            form["ttl"] = ttl
        if entity_id := self.message_setting(message, "dlt_entity_id"):
            form["entity-id"] = entity_id
        if template_id := self.message_setting(message, "dlt_template_id"):
            form["content-id"] = template_id
        return form

    # Connection check -------------------------------------------------------------------------

    async def check_connection(self) -> ConnectionCheck:
        params = {"api_key": self.setting("api_key").strip(), "api_secret": self.setting("api_secret")}
        try:
            response = await self.request("GET", f"{self.base_url}/account/get-balance", params=params,
                                          headers={"Accept": "application/json"})
        except ProviderError as error:
            return ConnectionCheck(ok=False, detail=f"Vonage balance check failed: {error}")
        if response.status_code == 401:
            return ConnectionCheck(ok=False, detail="Vonage refused the credentials (HTTP 401): "
                                                    "check the API key and API secret")
        if not response.is_success:
            error = Provider.classify_http(response, f"HTTP {response.status_code}: {snippet(response.text)}")
            return ConnectionCheck(ok=False, detail=f"Vonage balance check failed: {error}")
        payload = json_object(response)
        if payload is None or "value" not in payload:
            return ConnectionCheck(ok=False, detail=f"Vonage answered HTTP {response.status_code} with an "
                                                    f"unreadable body: {snippet(response.text) or '(empty body)'}")
        reload = "on" if payload.get("autoReload") else "off"
        return ConnectionCheck(ok=True, detail=f"Vonage account {self.setting('api_key').strip()}: balance "
                                               f"{payload['value']}, auto-reload {reload}")

    # Receipts and replies ------------------------------------------------------------------------

    def verify_callback(self, request: CallbackRequest) -> None:
        """The `sig` parameter when a signature secret is set; else the token in the URL."""
        secret = self.setting("signature_secret")
        if not secret:
            super().verify_callback(request)
            return
        params = _callback_params(request)
        presented = params.get("sig")
        if not isinstance(presented, str) or not presented:
            raise CallbackRejected(401, "the webhook carries no 'sig' (are signed webhooks on in the dashboard?)")
        if not params.get("timestamp"):
            raise CallbackRejected(401, "a signed webhook must carry a timestamp")
        signed = {name: value for name, value in params.items() if name not in ("sig", "token")}
        expected = compute_signature(signed, secret, self.setting("signature_method"))
        if not same_secret(presented.lower(), expected):
            raise CallbackRejected(403, "the 'sig' does not match this webhook")

    def parse_status_callback(self, request: CallbackRequest) -> list[StatusReport]:
        params = _callback_params(request)
        message_id, status = _text(params.get("messageId")), _text(params.get("status"))
        if not message_id or not status:
            raise CallbackRejected(400, "a delivery receipt needs messageId and status")
        at = parse_smpp_time(_text(params.get("scts"))) or _message_timestamp(params)
        report = status_report(message_id, status, error_code=_text(params.get("err-code")),
                               recipient=e164(_text(params.get("msisdn"))), at=at,
                               ref=_text(params.get("client-ref")) or None)
        if (price := parse_price(params.get("price"))) is not None:
            report = dataclasses.replace(report, price=price, price_currency=ACCOUNT_CURRENCY)
        return [report]

    def parse_inbound_callback(self, request: CallbackRequest) -> list[InboundReport]:
        params = _callback_params(request)
        sender, message_id = _text(params.get("msisdn")), _text(params.get("messageId"))
        if not sender or not message_id or ("text" not in params and params.get("type") != "binary"):
            raise CallbackRejected(400, "an inbound message needs msisdn, messageId and text")
        concatenated = _text(params.get("concat")).lower() == "true"
        return [InboundReport(
            provider_message_id=message_id, sender=e164(sender) or sender, recipient=e164(_text(params.get("to"))),
            # a part's text as sent: a long reply split at a space keeps the space at the join
            text=str(params.get("text") or "") if concatenated else _text(params.get("text")),
            at=_message_timestamp(params),
            part=_int(params.get("concat-part")) if concatenated else None,
            parts=_int(params.get("concat-total")) if concatenated else None,
            concat_ref=_text(params.get("concat-ref")) or None if concatenated else None,
            keyword=_text(params.get("keyword")) or None,
        )]

    async def fetch_statuses(self, provider_message_ids: Sequence[str]) -> list[StatusReport]:
        reports: list[StatusReport] = []
        ids = [i for i in dict.fromkeys(provider_message_ids) if i]
        for start in range(0, len(ids), REPORT_IDS_PER_REQUEST):
            chunk = ids[start:start + REPORT_IDS_PER_REQUEST]
            listing = await self._records({"direction": "outbound", "id": ",".join(chunk)})
            reports += [_report_from_record(r) for r in listing.records if r.get("message_id") and r.get("status")]
        return reports

    async def poll_statuses(self, cursor: str | None) -> PollPage:
        """Outbound records of the last 24 hours (the window the Reports API allows), page by page;
        every walk reads the whole window again so late receipts are seen (known ones are ignored)."""
        state = load_cursor(cursor)
        if state.get("next"):
            listing = await self._follow(state["next"])
        else:
            now = datetime.now(UTC)
            listing = await self._records({"direction": "outbound", "date_start": _iso(now - STATUS_LOOKBACK),
                                           "date_end": _iso(now)})
        reports = tuple(_report_from_record(r) for r in listing.records if r.get("message_id") and r.get("status"))
        if listing.next:
            return PollPage(reports, json.dumps({"next": listing.next}), True)
        return PollPage(reports, json.dumps({}), False)

    async def poll_inbound(self, cursor: str | None) -> PollPage:
        """Inbound records received since the cursor (None: the last five minutes), at most 24 hours
        at a time, with their text; the next window starts where this one ended."""
        state = load_cursor(cursor)
        now = datetime.now(UTC)
        if state.get("next"):
            listing = await self._follow(state["next"])
            until = parse_timestamp(state.get("until")) or now
        else:
            since = parse_timestamp(state.get("since")) or now - timedelta(minutes=5)
            until = min(now, since + STATUS_LOOKBACK)
            listing = await self._records({"direction": "inbound", "include_message": "true",
                                           "date_start": _iso(since), "date_end": _iso(until)})
        reports = tuple(
            InboundReport(provider_message_id=str(r["message_id"]), sender=e164(str(r.get("from") or "")) or "",
                          recipient=e164(str(r.get("to") or "")), text=str(r.get("message_body") or ""),
                          at=parse_timestamp(r.get("date_received")))
            for r in listing.records if r.get("message_id") and r.get("from")
        )
        if listing.next:
            return PollPage(reports, json.dumps({"next": listing.next, "until": _iso(until)}), True)
        return PollPage(reports, json.dumps({"since": _iso(until)}), until < now - timedelta(seconds=1))

    async def _records(self, filters: dict[str, str]) -> _Records:
        params = {"account_id": self.setting("api_key").strip(), "product": "SMS", **filters}
        return await self._get_records(f"{self.api_base_url}/v2/reports/records", params)

    async def _follow(self, next_href: str) -> _Records:
        """A `_links.next` URL, sent to our Reports host (its path and query are kept)."""
        parts = urlsplit(next_href)
        return await self._get_records(f"{self.api_base_url}{parts.path}?{parts.query}", None)

    async def _get_records(self, url: str, params: dict[str, str] | None) -> _Records:
        auth = httpx.BasicAuth(self.setting("api_key").strip(), self.setting("api_secret"))
        response = await self.request("GET", url, params=params, auth=auth, headers={"Accept": "application/json"})
        if response.status_code in (401, 403):
            raise ConfigurationError("the Reports API refused the credentials: check the API key and API secret "
                                     "(and that Reports is enabled for the account)", http_status=response.status_code)
        if not response.is_success:
            raise Provider.classify_http(response, f"Reports API answered HTTP {response.status_code}: "
                                                   f"{snippet(response.text)}")
        payload = json_object(response)
        if payload is None:
            raise TransientError(f"the Reports API answered with an unreadable body: {snippet(response.text)}")
        records = [r for r in payload.get("records") or [] if isinstance(r, dict)]
        links = payload.get("_links") if isinstance(payload.get("_links"), dict) else {}
        next_link = links.get("next") if isinstance(links.get("next"), dict) else {}
        truncated = payload.get("request_status") == "TRUNCATED"
        return _Records(records, str(next_link.get("href") or "") if truncated else "")


class _Records:
    def __init__(self, records: list[dict[str, Any]], next_href: str) -> None:
        self.records, self.next = records, next_href


# --- reading answers and receipts --------------------------------------------------------------


def error_from_part(part: Mapping[str, Any], *, http_status: int | None = None,
                    accepted_parts: Sequence[str] = ()) -> ProviderError:
    """The error of one `messages[]` entry whose status is not "0", classified by ERROR_RULES."""
    code = str(part.get("status") or "")
    vonage_text = str(part.get("error-text") or "").strip()
    rule = ERROR_RULES.find(code) or ErrorRule(code, ErrorKind.PERMANENT, f"Vonage status {code}")
    text = f"{rule.reason} (Vonage: {vonage_text})" if vonage_text else rule.reason
    if accepted_parts:
        text += f"; parts {', '.join(accepted_parts)} were accepted"
    return ERROR_CLASSES[rule.kind](text, code=code or None, http_status=http_status)


def status_report(message_id: str, status: str, *, error_code: str | None = None, recipient: str | None = None,
                  at: datetime | None = None, ref: str | None = None) -> StatusReport:
    """A Vonage status and err-code read as a receipt; an unknown status maps to None."""
    state = STATUS_MAP.get(status)
    if state is None:
        logger.info("vonage: ignoring status %r of %r", status, message_id)
    code = error_code if error_code not in (None, "", "0") else None
    error_kind, reason = None, None
    if code and state in ("failed", "undelivered"):
        default_kind = ErrorKind.TRANSIENT if state == "undelivered" else ErrorKind.PERMANENT
        rule = ERROR_RULES.find(code, "report") or ErrorRule(code, default_kind, f"Vonage delivery error {code}")
        error_kind, reason = rule.kind, rule.reason
    return StatusReport(provider_message_id=message_id, provider_status=status, state=state, at=at,
                        recipient=recipient, error_code=code, error_kind=error_kind, reason=reason, ref=ref)


def _report_from_record(record: Mapping[str, Any]) -> StatusReport:
    report = status_report(str(record["message_id"]), str(record["status"]),
                           error_code=str(record.get("error_code") or "") or None,
                           recipient=e164(str(record.get("to") or "")) or None,
                           at=parse_timestamp(record.get("date_finalized"))
                           or parse_timestamp(record.get("date_received")),
                           ref=str(record.get("client_ref") or "") or None)
    description = str(record.get("error_code_description") or "").strip()
    if report.reason and description:
        report = dataclasses.replace(report, reason=f"{report.reason} ({description})")
    price = parse_price(record.get("total_price"))
    if price is not None:
        report = dataclasses.replace(report, price=price,
                                     price_currency=currency_code(record.get("currency")) or ACCOUNT_CURRENCY)
    return report


def _parts(response: httpx.Response) -> list[dict[str, Any]] | None:
    payload = json_object(response)
    if payload is None or not isinstance(payload.get("messages"), list) or not payload["messages"]:
        return None
    parts = [part for part in payload["messages"] if isinstance(part, dict)]
    return parts or None


def _callback_params(request: CallbackRequest) -> dict[str, Any]:
    """A webhook's parameters: the JSON body of a JSON POST, else the query and form parameters."""
    if request.method.upper() == "POST" and (
        request.content_type == "application/json" or (not request.content_type and request.body.lstrip()[:1] == b"{")
    ):
        payload = request.json()
        if not isinstance(payload, dict):
            raise CallbackRejected(400, "the JSON body is not an object")
        return payload
    return request.params()


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _int(value: Any) -> int | None:
    text = _text(value)
    return int(text) if text.isdigit() else None


def _message_timestamp(params: Mapping[str, Any]) -> datetime | None:
    """`message-timestamp` of a receipt or an inbound message, YYYY-MM-DD HH:MM:SS (UTC)."""
    return parse_timestamp(_text(params.get("message-timestamp")), "%Y-%m-%d %H:%M:%S")


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- webhook signatures -----------------------------------------------------------------------


def signature_base(params: Mapping[str, Any]) -> str:
    """The signed string: every parameter but `sig`, sorted by name, as `&name=value`, with '&' and
    '=' in string values replaced by '_'."""
    pieces = []
    for name in sorted(params):
        if name == "sig":
            continue
        value = params[name]
        if isinstance(value, str):
            value = value.replace("&", "_").replace("=", "_")
        pieces.append(f"&{name}={value}")
    return "".join(pieces)


def compute_signature(params: Mapping[str, Any], secret: str, method: str = "md5hash") -> str:
    """The lower-case hex `sig` Vonage puts on `params` (which must include its `timestamp`)."""
    data = signature_base(params).encode("utf-8")
    if method == "md5hash":
        return hashlib.md5(data + secret.encode("utf-8")).hexdigest()  # noqa: S324 - Vonage's scheme
    digests = {"md5hmac": hashlib.md5, "sha1hmac": hashlib.sha1, "sha256hmac": hashlib.sha256,
               "sha512hmac": hashlib.sha512}
    if method not in digests:
        raise ValueError(f"unknown Vonage signature method {method!r}")
    return hmac.new(secret.encode("utf-8"), data, digests[method]).hexdigest()
