"""Sinch SMS REST API (xms v1): real batching (recipients of the same body, sender and callback URL
go in one POST /batches, up to 1,000 `to`), Bearer API-token auth against a regional host, the
batch-level error codes and the delivery-report codes 400–418 mapped onto the error family,
callbacks (recipient_delivery_report_sms, delivery_report_sms with recipients, mo_text) checked by
Sinch's optional HMAC signature or, without a webhook secret, a token in the URL, and polling of
the recipient delivery-report and inbound lists.

Sinch gives one id per batch, so a recipient's message id is `{batch_id}:{recipient digits}`; the
receipts rebuild the same id. India DLT is not a request parameter (registered with Sinch).

Unconfirmed: the full list of 403 codes (only blocked_account, illegal_number_type,
missing_callback_url, unknown_group, unknown_campaign are known); whether the recipient path of
GET …/delivery_report/{recipient} wants the number with or without '+' (digits are sent, as the
examples show); whether HMAC callbacks are re-signed on retry (no timestamp window is enforced)."""

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

import httpx

from smsconsole.providers.base import (
    WEBHOOK_TOKEN_FIELD,
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
)
from smsconsole.providers.common import (
    digits,
    e164,
    json_object,
    load_cursor,
    parse_timestamp,
    pattern,
    same_secret,
    sender_validator,
    snippet,
)

logger = logging.getLogger(__name__)

REGIONS = ("us", "eu", "au", "br", "ca")
MAX_RECIPIENTS = 1000  # `to` of one batch
PAGE_SIZE = 100  # the list endpoints' maximum
POLL_OVERLAP = timedelta(minutes=5)  # re-read the edge of the last window: late writes, clock skew

# Sinch delivery-report status → our message state. Queued and Dispatched are intermediate;
# Unknown is final but only says the SMSC took the message.
STATUS_MAP: dict[str, str] = {
    "Queued": "sent",
    "Dispatched": "sent",
    "Unknown": "sent",
    "Delivered": "delivered",
    "Failed": "undelivered",
    "Expired": "undelivered",
    "Deleted": "undelivered",
    "Rejected": "failed",
    "Aborted": "failed",
    "Cancelled": "failed",
}

ERROR_RULES = ErrorRules(
    # Delivery-report `code` (Sinch's own 4xx range). Other codes are SMPP or operator codes,
    # classified by the status they come with.
    ErrorRule("402", ErrorKind.PERMANENT, "the SMSC found the message unroutable", on="report"),
    ErrorRule("403", ErrorKind.TRANSIENT, "an internal error at Sinch made the message fail", on="report"),
    ErrorRule("404", ErrorKind.TRANSIENT, "a temporary delivery failure; the message can be retried", on="report"),
    ErrorRule("405", ErrorKind.PERMANENT, "a message parameter has no value for this recipient", on="report"),
    ErrorRule("406", ErrorKind.TRANSIENT, "the message expired before reaching the SMSC", on="report"),
    ErrorRule("407", ErrorKind.PERMANENT, "the message was cancelled before reaching the SMSC", on="report"),
    ErrorRule("408", ErrorKind.PERMANENT, "the SMSC rejected the message", on="report"),
    ErrorRule("410", ErrorKind.CONFIGURATION, "no default originator is configured for this recipient", on="report"),
    ErrorRule("411", ErrorKind.PERMANENT, "the message has more parts than the configured maximum", on="report"),
    ErrorRule("412", ErrorKind.CONFIGURATION,
              "the recipient's region is not provisioned for this service plan", on="report"),
    ErrorRule("413", ErrorKind.CONFIGURATION, "the Sinch account is blocked", on="report"),
    ErrorRule("414", ErrorKind.PERMANENT, "MMS only: the media URL is bad", on="report"),
    ErrorRule("415", ErrorKind.PERMANENT, "MMS only: rejected by the MMS gateway or the network", on="report"),
    ErrorRule("416", ErrorKind.PERMANENT, "MMS only: not supported by the MMSC", on="report"),
    ErrorRule("417", ErrorKind.TRANSIENT, "MMS only: the network or subscriber cannot be reached", on="report"),
    ErrorRule("418", ErrorKind.PERMANENT, "MMS only: the handset does not recognise the content", on="report"),
    # Error `code` of a 400 or 403 answer to a request.
    ErrorRule("syntax_invalid_json", ErrorKind.PERMANENT, "Sinch could not read the request as JSON"),
    ErrorRule("syntax_invalid_parameter_format", ErrorKind.PERMANENT,
              "a field has an invalid format (often a phone number)"),
    ErrorRule("syntax_constraint_violation", ErrorKind.PERMANENT, "the request breaks a constraint of the API"),
    ErrorRule("illegal_number_type", ErrorKind.PERMANENT, "this number type cannot be messaged in its region"),
    ErrorRule("unknown_group", ErrorKind.PERMANENT, "the recipient group does not exist"),
    ErrorRule("blocked_account", ErrorKind.CONFIGURATION, "the Sinch account is blocked; contact the account manager"),
    ErrorRule("missing_callback_url", ErrorKind.CONFIGURATION,
              "delivery reports were asked for but no callback URL is set"),
    ErrorRule("unknown_campaign", ErrorKind.CONFIGURATION, "the US short-code campaign is unknown"),
)


_E164 = re.compile(r"\+?[1-9]\d{6,14}")
_sender = sender_validator(
    "a number in E.164 (+447400123456), a short code (digits) or an alphanumeric sender of up to 11 "
    "characters, not only digits",
    r"\+[1-9]\d{6,14}", r"\d{3,15}", alphanumeric=r"[A-Za-z0-9 \-+_.&]{1,11}", numeric=r"[0-9 \-+]+",
)


class SinchProvider(Provider):
    kind = "sinch"
    display_name = "Sinch"
    description = "Sinch SMS REST API (xms): batches of up to 1,000 recipients, regional hosts, HMAC-signed callbacks."
    default_base_url = "https://us.sms.api.sinch.com"
    config_fields = (
        ConfigField(
            "service_plan_id", "Service plan ID", required=True,
            validator=pattern(r"[A-Za-z0-9]{16,64}", "a service plan ID: letters and digits from the SMS dashboard"),
            placeholder="jd63jf88477ll123ab4567cd89012ef3",
            help="From the Sinch dashboard, SMS → APIs; part of every URL",
        ),
        ConfigField(
            "api_token", "API token", required=True, secret=True, placeholder="env:SINCH_API_TOKEN",
            validator=pattern(r"[A-Za-z0-9\-_.]{16,128}", "an API token: 16–128 letters and digits"),
            help="The service plan's API token, sent as a Bearer token; env:NAME reads it from the environment",
        ),
        ConfigField(
            "region", "Region", kind="choice", choices=REGIONS, default="us",
            help="Where the service plan lives: us, eu, au, br or ca (https://{region}.sms.api.sinch.com)",
        ),
        ConfigField(
            "sender", "From", validator=_sender, placeholder="+447400123456",
            help="A Sinch number, short code or alphanumeric sender; empty uses the plan's default originator",
        ),
        ConfigField(
            "delivery_report", "Delivery reports", kind="choice",
            choices=("per_recipient", "per_recipient_final", "full", "none"), default="per_recipient",
            help="What Sinch calls back with: every status per recipient, only the final one, "
                 "one report per batch, or none",
        ),
        ConfigField(
            "webhook_secret", "Webhook signing secret", secret=True, placeholder="env:SINCH_WEBHOOK_SECRET",
            help="The HMAC secret Sinch signs callbacks with (enabled per service plan by Sinch); "
                 "when set, callbacks need no token",
        ),
        WEBHOOK_TOKEN_FIELD,
    )
    capabilities = Capabilities(
        max_batch=MAX_RECIPIENTS, max_body_chars=2000, status_webhook=True, status_polling=True,
        inbound_webhook=True, inbound_polling=True, signature=True, dlt=False,
        status_lookup=True,
    )

    def __init__(self, config: Mapping[str, str], *, client: httpx.AsyncClient | None = None,
                 base_url: str | None = None) -> None:
        super().__init__(config, client=client, base_url=base_url)
        if base_url is None:
            self.base_url = f"https://{self.region}.sms.api.sinch.com"

    @property
    def region(self) -> str:
        region = self.setting("region").strip().lower()
        return region if region in REGIONS else "us"

    # Sending ----------------------------------------------------------------------------------

    async def send(self, messages: Sequence[OutboundMessage]) -> list[SendOutcome]:
        outcomes: dict[int, SendOutcome] = {}
        batches: list[list[tuple[int, OutboundMessage]]] = []
        open_batches: dict[tuple[str, str, str], list[tuple[int, OutboundMessage]]] = {}
        for index, message in enumerate(messages):
            if not _E164.fullmatch(message.to.strip()):
                outcomes[index] = SendOutcome(ref=message.ref, error=PermanentError(
                    f"{message.to!r} is not a phone number in E.164", code="syntax_invalid_parameter_format"))
                continue
            key = (message.body, self._from(message), self._callback(message) or "")
            batch = open_batches.get(key)
            # A recipient appears once per batch (its id is batch:digits), and a batch holds 1,000.
            if batch is None or len(batch) >= MAX_RECIPIENTS or any(
                    digits(m.to) == digits(message.to) for _, m in batch):
                batch = []
                batches.append(batch)
                open_batches[key] = batch
            batch.append((index, message))
        for batch in batches:
            for index, outcome in zip([i for i, _ in batch], await self._send_batch([m for _, m in batch]),
                                      strict=True):
                outcomes[index] = outcome
        return [outcomes[index] for index in range(len(messages))]

    async def _send_batch(self, batch: list[OutboundMessage]) -> list[SendOutcome]:
        refs = ", ".join(m.ref for m in batch)
        try:
            response = await self.request("POST", self._url("/batches"), json=self._batch_body(batch),
                                          headers=self._headers())
        except ProviderError as transport_error:
            logger.debug("sinch: batch of %d (%s) not sent: %s", len(batch), refs, transport_error)
            return [SendOutcome(ref=m.ref, error=transport_error) for m in batch]
        status = response.status_code
        if not response.is_success:
            rejection = error_from_response(response)
            if len(batch) > 1 and status == 400 and isinstance(rejection, PermanentError):
                # Nothing was sent; one bad recipient or field must not sink the others.
                logger.debug("sinch: batch of %d rejected (%s); sending one by one", len(batch), rejection)
                return [outcome for message in batch for outcome in await self._send_batch([message])]
            logger.debug("sinch: batch of %d (%s) rejected: %s", len(batch), refs, rejection)
            return [SendOutcome(ref=m.ref, error=rejection, http_status=status) for m in batch]
        payload = json_object(response) or {}
        batch_id = payload.get("id")
        if not isinstance(batch_id, str) or not batch_id:
            unknown = OutcomeUnknownError(
                f"Sinch answered HTTP {status} but its answer has no batch id: "
                f"{snippet(response.text) or '(empty body)'}", http_status=status)
            logger.debug("sinch: batch of %d (%s) outcome unknown: %s", len(batch), refs, unknown)
            return [SendOutcome(ref=m.ref, error=unknown, http_status=status) for m in batch]
        logger.debug("sinch: batch %s accepted for %d recipient(s) (%s)", batch_id, len(batch), refs)
        return [SendOutcome(ref=m.ref, provider_message_id=recipient_message_id(batch_id, m.to),
                            provider_status="Queued", http_status=status) for m in batch]

    def _batch_body(self, batch: list[OutboundMessage]) -> dict[str, Any]:
        first = batch[0]
        body: dict[str, Any] = {"to": [_plus(m.to) for m in batch], "body": first.body}
        if sender := self._from(first):
            body["from"] = sender
        if callback := self._callback(first):
            body["callback_url"] = callback
            body["delivery_report"] = self.setting("delivery_report") or "per_recipient"
        if len(batch) == 1:
            body["client_reference"] = first.ref
        return body

    def _from(self, message: OutboundMessage) -> str:
        return (message.sender or self.setting("sender")).strip()

    def _callback(self, message: OutboundMessage) -> str | None:
        """The callback URL for a message: as it is when callbacks are signed, else with ?token=."""
        if not message.status_callback_url or self.setting("delivery_report") == "none":
            return None
        if self.setting("webhook_secret"):
            return message.status_callback_url
        return self.callback_url(message.status_callback_url)

    # Connection check -------------------------------------------------------------------------

    async def check_connection(self) -> ConnectionCheck:
        plan = self.setting("service_plan_id").strip()
        refused = {status: f"Sinch refused the credentials (HTTP {status}): check the service plan ID, the API token "
                           f"and the region ({self.region})" for status in (401, 403)}
        refused[404] = (f"Sinch does not know service plan {plan} in region {self.region} (HTTP 404): "
                        "check the service plan ID and the region")
        listing = await self.account_check("Sinch", "check", self._url("/batches"), error_from_response,
                                           refused=refused, params={"page_size": "1"}, headers=self._headers())
        if isinstance(listing, ConnectionCheck):
            return listing
        count = listing.get("count")
        detail = f"Service plan {plan} ({self.region}) accepted the API token"
        if isinstance(count, int):
            detail += f", {count} batch{'es' if count != 1 else ''} on record"
        return ConnectionCheck(ok=True, detail=detail)

    # Receipts and replies ------------------------------------------------------------------------

    def verify_callback(self, request: CallbackRequest) -> None:
        """Sinch's HMAC signature when a webhook secret is set; otherwise the token in the URL."""
        secret = self.setting("webhook_secret")
        if not secret:
            super().verify_callback(request)
            return
        signature = request.header("x-sinch-webhook-signature")
        nonce = request.header("x-sinch-webhook-signature-nonce")
        timestamp = request.header("x-sinch-webhook-signature-timestamp")
        if not (signature and nonce and timestamp):
            raise CallbackRejected(401, "the callback is not signed (x-sinch-webhook-signature, -nonce, -timestamp)")
        algorithm = request.header("x-sinch-webhook-signature-algorithm") or "HmacSHA256"
        if algorithm not in _ALGORITHMS:
            raise CallbackRejected(403, f"unsupported signature algorithm {algorithm!r}")
        expected = compute_signature(secret, request.body, nonce, timestamp, algorithm)
        if not same_secret(expected, signature):
            raise CallbackRejected(403, "the x-sinch-webhook-signature does not match this request")

    def parse_status_callback(self, request: CallbackRequest) -> list[StatusReport]:
        payload = _callback_object(request)
        kind = payload.get("type")
        if kind in ("recipient_delivery_report_sms", "recipient_delivery_report_mms"):
            return [_recipient_report(payload)]
        if kind in ("delivery_report_sms", "delivery_report_mms"):
            return _batch_reports(payload)
        raise CallbackRejected(400, f"not a Sinch delivery report (type {kind!r})")

    def parse_inbound_callback(self, request: CallbackRequest) -> list[InboundReport]:
        payload = _callback_object(request)
        kind = payload.get("type")
        if kind == "mo_text":
            return [_inbound(payload)]
        if kind in ("mo_binary", "mo_media"):
            logger.info("sinch: ignoring inbound %s %s", kind, payload.get("id"))
            return []
        raise CallbackRejected(400, f"not a Sinch inbound message (type {kind!r})")

    async def fetch_statuses(self, provider_message_ids: Sequence[str]) -> list[StatusReport]:
        reports = []
        for message_id in provider_message_ids:
            batch_id, _, number = message_id.partition(":")
            if not batch_id or not number:
                continue
            payload = await self.lookup(self._url(f"/batches/{batch_id}/delivery_report/{number}"),
                                        error_from_response, headers=self._headers())
            if isinstance(payload, dict) and payload.get("status"):
                reports.append(_recipient_report({"batch_id": batch_id, "recipient": number, **payload}))
        return reports

    async def poll_statuses(self, cursor: str | None) -> PollPage:
        """Recipient delivery reports created in the cursor's window, page by page."""
        page, items = await self._list_page("/delivery_reports", "delivery_reports", cursor)
        reports = []
        for item in items:
            try:
                reports.append(_recipient_report(item))
            except CallbackRejected:
                logger.info("sinch: skipping an unreadable delivery report %r", item)
        return PollPage(tuple(reports), page.cursor, page.more)

    async def poll_inbound(self, cursor: str | None) -> PollPage:
        """Inbound messages received in the cursor's window (Sinch keeps 14 days)."""
        page, items = await self._list_page("/inbounds", "inbounds", cursor)
        reports = tuple(_inbound(item) for item in items if item.get("type", "mo_text") == "mo_text")
        return PollPage(reports, page.cursor, page.more)

    async def _list_page(self, path: str, key: str, cursor: str | None) -> tuple[PollPage, list[dict[str, Any]]]:
        """One page of a date-windowed list. The window's end is fixed when a walk starts, so new
        entries cannot shift the pages under it; the next walk starts a little before it ended."""
        state = load_cursor(cursor)
        now = datetime.now(UTC)
        since = state.get("since") or _iso(now - timedelta(days=1))
        until = state.get("until") or _iso(now)
        page_number = int(state.get("page") or 0)
        params = {"start_date": since, "end_date": until, "page": str(page_number), "page_size": str(PAGE_SIZE)}
        response = await self.request("GET", self._url(path), params=params, headers=self._headers())
        if not response.is_success:
            raise error_from_response(response)
        listing = json_object(response) or {}
        items = [item for item in listing.get(key) or [] if isinstance(item, dict)]
        count = listing.get("count")
        more = (page_number + 1) * PAGE_SIZE < count if isinstance(count, int) else len(items) >= PAGE_SIZE
        if more:
            next_state = {"since": since, "until": until, "page": page_number + 1}
        else:
            ended = datetime.fromisoformat(until.replace("Z", "+00:00"))
            next_state = {"since": _iso(ended - POLL_OVERLAP)}
        return PollPage((), json.dumps(next_state), more), items

    # Helpers ----------------------------------------------------------------------------------

    def _url(self, suffix: str) -> str:
        return f"{self.base_url}/xms/v1/{self.setting('service_plan_id').strip()}{suffix}"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.setting('api_token')}"}


def recipient_message_id(batch_id: str, recipient: str) -> str:
    """Our id of one recipient's message in a batch: the batch id and the recipient's digits."""
    return f"{batch_id}:{digits(recipient)}"


def _plus(number: str) -> str:
    number = number.strip()
    return number if number.startswith("+") else "+" + number


def status_report(provider_message_id: str, status: str, code: Any, *, recipient: str | None = None,
                  at: datetime | None = None, ref: str | None = None) -> StatusReport:
    """A Sinch status and code read as a receipt; an unknown status maps to None."""
    state = STATUS_MAP.get(status)
    if state is None:
        logger.info("sinch: ignoring unknown status %r of %r", status, provider_message_id)
    code_text = str(code) if code not in (None, "") else None
    error_kind, reason = None, None
    if state in ("failed", "undelivered"):
        known = ERROR_RULES.find(int(code_text), "report") if code_text and code_text.isdigit() else None
        if known:
            error_kind, reason = known.kind, known.reason
        else:
            error_kind = ErrorKind.TRANSIENT if status == "Expired" else ErrorKind.PERMANENT
            reason = {"Deleted": "deleted by the operator: an invalid number or a recipient who opted out",
                      "Expired": "the message expired before delivery"}.get(status, f"Sinch status {status}")
            if code_text and code_text != "0":
                reason += f" (code {code_text})"
    return StatusReport(provider_message_id=provider_message_id, provider_status=status, state=state, at=at,
                        recipient=recipient, error_code=code_text if code_text != "0" else None,
                        error_kind=error_kind, reason=reason, ref=ref)


def _recipient_report(payload: Mapping[str, Any]) -> StatusReport:
    batch_id, recipient, status = payload.get("batch_id"), payload.get("recipient"), payload.get("status")
    if not isinstance(batch_id, str) or not batch_id or not recipient or not isinstance(status, str):
        raise CallbackRejected(400, "a recipient delivery report needs batch_id, recipient and status")
    return status_report(recipient_message_id(batch_id, str(recipient)), status, payload.get("code"),
                         recipient=e164(digits(str(recipient))),
                         at=parse_timestamp(payload.get("operator_status_at")) or parse_timestamp(payload.get("at")),
                         ref=payload.get("client_reference") or None)


def _batch_reports(payload: Mapping[str, Any]) -> list[StatusReport]:
    batch_id, statuses = payload.get("batch_id"), payload.get("statuses")
    if not isinstance(batch_id, str) or not batch_id or not isinstance(statuses, list):
        raise CallbackRejected(400, "a batch delivery report needs batch_id and statuses")
    reports = []
    for entry in statuses:
        if not isinstance(entry, dict) or not isinstance(entry.get("status"), str):
            raise CallbackRejected(400, "every status of a batch delivery report needs a status")
        recipients = entry.get("recipients")
        if not recipients:
            logger.info("sinch: a summary report of batch %s names no recipients; ask for 'full'", batch_id)
            continue
        for recipient in recipients:
            reports.append(status_report(recipient_message_id(batch_id, str(recipient)), entry["status"],
                                         entry.get("code"), recipient=e164(digits(str(recipient)))))
    return reports


def _inbound(payload: Mapping[str, Any]) -> InboundReport:
    sender, body = payload.get("from"), payload.get("body")
    if not sender or not isinstance(body, str):
        raise CallbackRejected(400, "an inbound message needs from and body")
    return InboundReport(provider_message_id=payload.get("id"), sender=e164(digits(str(sender))) or str(sender),
                         recipient=payload.get("to"), text=body, at=parse_timestamp(payload.get("received_at")))


def _callback_object(request: CallbackRequest) -> dict[str, Any]:
    payload = request.json()
    if not isinstance(payload, dict):
        raise CallbackRejected(400, "a Sinch callback is a JSON object")
    return payload


def error_from_response(response: httpx.Response) -> ProviderError:
    """Classify an error answer: by Sinch's `code` when the table knows it, else by HTTP status."""
    payload = json_object(response)
    code = str(payload["code"]) if payload and payload.get("code") not in (None, "") else None
    text = str(payload.get("text") or payload.get("message") or "").strip() if payload else ""
    rule = ERROR_RULES.find(code)
    if rule is None or response.status_code in (401, 429) or response.status_code >= 500:
        message = text or (f"HTTP {response.status_code} from Sinch: {snippet(response.text)}"
                           if response.text.strip() else "")
        if response.status_code == 401:
            message = f"Sinch refused the API token{f' ({text})' if text else ''}: check the API token and region"
        return Provider.classify_http(response, message, code=code)
    return rule.error(text, said="Sinch", code=code, http_status=response.status_code, response=response)


# --- webhook signatures -----------------------------------------------------------------------

_ALGORITHMS = {"HmacSHA256": hashlib.sha256, "HmacSHA384": hashlib.sha384, "HmacSHA512": hashlib.sha512}


def compute_signature(secret: str, body: bytes, nonce: str, timestamp: str, algorithm: str = "HmacSHA256") -> str:
    """x-sinch-webhook-signature: base64 HMAC over the raw body, '.', the nonce, '.', the timestamp."""
    signed = body + b"." + nonce.encode("utf-8") + b"." + timestamp.encode("utf-8")
    digest = hmac.new(secret.encode("utf-8"), signed, _ALGORITHMS[algorithm]).digest()
    return base64.b64encode(digest).decode("ascii")


# --- small helpers ----------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
