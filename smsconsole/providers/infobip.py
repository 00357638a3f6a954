"""Infobip SMS API v3: one POST /sms/3/messages carries a whole batch (one `messages[]` entry per
recipient, different texts allowed), `Authorization: App <key>` against the account's own base
URL. Each destination gets a messageId derived from our ref, so the per-destination answer, the
delivery reports and the logs all name it. India DLT goes in `options.regional.indiaDlt`.

Receipts: the delivery-report webhook (`results[]`, status groups, `error.permanent`) and the
inbound forward (`results[]` with from, to, text, cleanText, keyword, receivedAt); Infobip signs
neither, so both carry the webhook token in the URL. Polling: GET /sms/3/reports (each report is
handed out once), GET /sms/3/logs for a lookup by message id, GET /sms/1/inbox/reports.

Unconfirmed: the REJECTED status ids below are from Infobip's status-code page as remembered (the
group ids 1–5 are confirmed); the exact v3 send-response shape when a destination is rejected
(answered per destination with a REJECTED status here); the `errorCode` values of the newer error
body; and whether a request has a message cap (100 per request is our choice, not Infobip's).

Prices: a delivery report's (and a log's) `price` is `{pricePerMessage, currency}`, "price per one
SMS" in Infobip's words, with `smsCount` (`messageCount` in v3) parts: the message cost their product."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from smsconsole.providers.base import (
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
    PermanentError,
    PollPage,
    Provider,
    ProviderError,
    SendOutcome,
    StatusReport,
)
from smsconsole.providers.common import (
    currency_code,
    digits,
    e164,
    json_object,
    parse_price,
    parse_timestamp,
    pattern,
    sender_validator,
    snippet,
)
from smsconsole.providers.fields import dlt_entity_field, dlt_template_field

logger = logging.getLogger(__name__)

MAX_MESSAGES = 100  # per request: our choice, to keep one failed request small
REPORTS_LIMIT = 1000  # the reports, logs and inbox endpoints' maximum

# Infobip status group → our message state.
STATUS_MAP: dict[str, str] = {
    "ACCEPTED": "sent",
    "PENDING": "sent",
    "DELIVERED": "delivered",
    "UNDELIVERABLE": "undelivered",
    "EXPIRED": "undelivered",
    "REJECTED": "failed",
}

ERROR_RULES = ErrorRules(
    # Status ids of the REJECTED group (5): why Infobip or the operator refused a message, in the
    # send answer or in a report.
    ErrorRule("6", ErrorKind.PERMANENT,
              "the destination network is not covered or not enabled for this account", on="status"),
    ErrorRule("8", ErrorKind.PERMANENT, "the number has no country prefix", on="status"),
    ErrorRule("10", ErrorKind.PERMANENT, "the recipient is on a do-not-disturb (DND) list", on="status"),
    ErrorRule("11", ErrorKind.CONFIGURATION, "the sender is not allowed", on="status"),
    ErrorRule("12", ErrorKind.CONFIGURATION, "the Infobip account has not enough credit", on="status"),
    ErrorRule("13", ErrorKind.CONFIGURATION, "the sender is blocked or not registered", on="status"),
    ErrorRule("14", ErrorKind.PERMANENT, "the recipient is blacklisted", on="status"),
    ErrorRule("17", ErrorKind.CONFIGURATION, "the prepaid package has expired", on="status"),
    ErrorRule("18", ErrorKind.PERMANENT, "a trial account can only send to registered numbers", on="status"),
    ErrorRule("19", ErrorKind.CONFIGURATION, "no route is available to this destination", on="status"),
    ErrorRule("20", ErrorKind.TRANSIENT, "the flooding filter held the message back", on="status"),
    ErrorRule("21", ErrorKind.TRANSIENT, "a system error at Infobip", on="status"),
    ErrorRule("23", ErrorKind.PERMANENT, "a message with this id was already submitted", on="status"),
    ErrorRule("24", ErrorKind.PERMANENT, "the message has an invalid UDH", on="status"),
    ErrorRule("25", ErrorKind.PERMANENT, "the message is too long", on="status"),
    ErrorRule("51", ErrorKind.PERMANENT, "the destination is missing", on="status"),
    ErrorRule("52", ErrorKind.PERMANENT, "the destination is not a valid number", on="status"),
    # `errorCode` (newer error body) or `serviceException.messageId` (older one): the error's own
    # description is the reason.
    ErrorRule("UNAUTHORIZED", ErrorKind.CONFIGURATION, ""),
    ErrorRule("FORBIDDEN", ErrorKind.CONFIGURATION, ""),
    ErrorRule("BAD_REQUEST", ErrorKind.PERMANENT, ""),
    ErrorRule("TOO_MANY_REQUESTS", ErrorKind.TRANSIENT, ""),
    ErrorRule("GENERAL_ERROR", ErrorKind.TRANSIENT, ""),
    ErrorRule("E400", ErrorKind.PERMANENT, ""),
    ErrorRule("E401", ErrorKind.CONFIGURATION, ""),
    ErrorRule("E403", ErrorKind.CONFIGURATION, ""),
    ErrorRule("E429", ErrorKind.TRANSIENT, ""),
    ErrorRule("E500", ErrorKind.TRANSIENT, ""),
)


_MESSAGE_ID = re.compile(r"[A-Za-z0-9._:\-]{1,200}")


_sender = sender_validator(
    "a number (3–16 digits) or an alphanumeric sender of up to 11 characters with a letter",
    r"\+?\d{3,16}", alphanumeric=r"[A-Za-z0-9 \-_.&]{1,11}", numeric=r"[^A-Za-z]*",
)


def message_id_for(ref: str) -> str:
    """The messageId we give Infobip for our message `ref`: the ref itself when Infobip accepts it
    as is, else a stable hash of it."""
    return ref if _MESSAGE_ID.fullmatch(ref) else "ref-" + hashlib.sha256(ref.encode("utf-8")).hexdigest()[:40]


class InfobipProvider(Provider):
    kind = "infobip"
    display_name = "Infobip"
    description = "Infobip SMS API v3: many messages per request, India DLT fields, delivery and inbound webhooks."
    config_fields = (
        ConfigField(
            "account_url", "Account base URL", required=True, kind="url", placeholder="https://xxxxx.api.infobip.com",
            help="Your account's own API host, shown on the Infobip portal homepage",
        ),
        ConfigField(
            "api_key", "API key", required=True, secret=True, placeholder="env:INFOBIP_API_KEY",
            validator=pattern(r"[A-Za-z0-9\-]{20,128}", "an API key: letters, digits and dashes, as the portal has it"),
            help="Sent as 'Authorization: App <key>'; needs the SMS scopes (and balance, for the connection check)",
        ),
        ConfigField(
            "sender", "Sender", validator=_sender, placeholder="InfoSMS",
            help="A registered alphanumeric sender (up to 11 characters) or a number; India needs the DLT header",
        ),
        dlt_entity_field(
            "digits (usually 19)", "1201159123456789012", "India only: your DLT principal entity ID",
            label="DLT principal entity ID",
        ),
        dlt_template_field(
            "digits (usually 19)", "1207161234567890123",
            "India only: the default DLT template ID; a message's own template ID wins", label="DLT content template ID",
        ),
        WEBHOOK_TOKEN_FIELD,
    )
    capabilities = Capabilities(
        max_batch=MAX_MESSAGES, max_body_chars=1600, status_webhook=True, status_polling=True,
        inbound_webhook=True, inbound_polling=True, signature=False, dlt=True,
        status_lookup=True,
    )

    def __init__(self, config: Mapping[str, str], *, client: httpx.AsyncClient | None = None,
                 base_url: str | None = None) -> None:
        super().__init__(config, client=client, base_url=base_url or str(config.get("account_url") or ""))

    @classmethod
    def check_config(cls, values: Mapping[str, str]) -> list[tuple[str, str]]:
        if (values.get("dlt_template_id") or "").strip() and not (values.get("dlt_entity_id") or "").strip():
            return [("dlt_entity_id", "is required with a DLT template ID (Infobip needs the principal entity ID)")]
        return []

    # Sending ----------------------------------------------------------------------------------

    async def send(self, messages: Sequence[OutboundMessage]) -> list[SendOutcome]:
        outcomes: list[SendOutcome] = []
        for start in range(0, len(messages), MAX_MESSAGES):
            outcomes += await self._send_request(list(messages[start:start + MAX_MESSAGES]))
        return outcomes

    async def _send_request(self, batch: list[OutboundMessage]) -> list[SendOutcome]:
        refs = ", ".join(m.ref for m in batch)
        try:
            response = await self.request("POST", f"{self.base_url}/sms/3/messages",
                                          json={"messages": [self._message(m) for m in batch]},
                                          headers=self._headers())
        except ProviderError as transport_error:
            logger.debug("infobip: %d message(s) (%s) not sent: %s", len(batch), refs, transport_error)
            return [SendOutcome(ref=m.ref, error=transport_error) for m in batch]
        status = response.status_code
        if not response.is_success:
            rejection = error_from_response(response)
            if len(batch) > 1 and status == 400 and isinstance(rejection, PermanentError):
                # Nothing was sent; one bad message must not sink the others.
                logger.debug("infobip: request of %d rejected (%s); sending one by one", len(batch), rejection)
                return [outcome for m in batch for outcome in await self._send_request([m])]
            logger.debug("infobip: %d message(s) (%s) rejected: %s", len(batch), refs, rejection)
            return [SendOutcome(ref=m.ref, error=rejection, http_status=status) for m in batch]
        answers: dict[str, dict[str, Any]] = {}
        for answer in (json_object(response) or {}).get("messages") or []:
            if isinstance(answer, dict) and isinstance(answer.get("messageId"), str):
                answers[answer["messageId"]] = answer
        return [self._outcome(m, answers.get(message_id_for(m.ref)), response) for m in batch]

    def _outcome(self, message: OutboundMessage, answer: dict[str, Any] | None,
                 response: httpx.Response) -> SendOutcome:
        status = response.status_code
        if answer is None:
            unknown = OutcomeUnknownError(
                f"Infobip answered HTTP {status} but not for message {message_id_for(message.ref)}: "
                f"{snippet(response.text) or '(empty body)'}", http_status=status)
            logger.debug("infobip: message %s outcome unknown: %s", message.ref, unknown)
            return SendOutcome(ref=message.ref, error=unknown, http_status=status)
        message_status = answer.get("status") if isinstance(answer.get("status"), dict) else {}
        group = str(message_status.get("groupName") or "")
        if group in ("REJECTED", "UNDELIVERABLE"):
            rejection = _rejection(message_status)
            logger.debug("infobip: message %s rejected: %s", message.ref, rejection)
            return SendOutcome(ref=message.ref, provider_message_id=answer["messageId"],
                               provider_status=message_status.get("name"), error=rejection, http_status=status)
        logger.debug("infobip: message %s accepted as %s (%s)", message.ref, answer["messageId"],
                     message_status.get("name"))
        return SendOutcome(ref=message.ref, provider_message_id=answer["messageId"],
                           provider_status=message_status.get("name") or group or None, http_status=status)

    def _message(self, message: OutboundMessage) -> dict[str, Any]:
        """One `messages[]` entry: one destination, our ref as callbackData, DLT when known."""
        entry: dict[str, Any] = {
            "destinations": [{"to": digits(message.to), "messageId": message_id_for(message.ref)}],
            "content": {"text": message.body},
        }
        if sender := (message.sender or self.setting("sender")).strip():
            entry["sender"] = sender
        webhooks: dict[str, Any] = {"callbackData": message.ref}
        if message.status_callback_url:
            webhooks["delivery"] = {"url": self.callback_url(message.status_callback_url)}
        entry["webhooks"] = webhooks
        entity = self.message_setting(message, "dlt_entity_id")
        template = self.message_setting(message, "dlt_template_id")
        if entity:
            india_dlt = {"principalEntityId": entity, **({"contentTemplateId": template} if template else {})}
            entry["options"] = {"regional": {"indiaDlt": india_dlt}}
        elif template:
            logger.info("infobip: message %s has a DLT template but no entity ID; sent without DLT", message.ref)
        return entry

    # Connection check -------------------------------------------------------------------------

    async def check_connection(self) -> ConnectionCheck:
        if not self.base_url:
            return ConnectionCheck(ok=False, detail="Set the account base URL (https://xxxxx.api.infobip.com)")
        try:
            response = await self.request("GET", f"{self.base_url}/account/1/balance", headers=self._headers())
        except ProviderError as error:
            return ConnectionCheck(ok=False, detail=f"Infobip check failed: {error}")
        if response.status_code == 401:
            return ConnectionCheck(ok=False, detail=(
                "Infobip refused the API key (HTTP 401): check the API key and the account base URL"))
        if response.status_code == 403:
            return ConnectionCheck(ok=True, detail=(
                "Infobip accepted the API key, but it may not read the balance (HTTP 403)"))
        if not response.is_success:
            return ConnectionCheck(ok=False, detail=f"Infobip check failed: {error_from_response(response)}")
        payload = json_object(response)
        if payload is None or payload.get("balance") is None:
            return ConnectionCheck(ok=False, detail=(
                f"Infobip answered HTTP {response.status_code} without a balance: "
                f"{snippet(response.text) or '(empty body)'} (is the base URL your account's API host?)"))
        return ConnectionCheck(ok=True, detail=(
            f"Infobip accepted the API key, balance {payload['balance']} {payload.get('currency') or ''}".rstrip()))

    # Receipts and replies ------------------------------------------------------------------------

    def parse_status_callback(self, request: CallbackRequest) -> list[StatusReport]:
        return [report_from_result(result) for result in _results(request)]

    def parse_inbound_callback(self, request: CallbackRequest) -> list[InboundReport]:
        return [_inbound(result) for result in _results(request)]

    async def fetch_statuses(self, provider_message_ids: Sequence[str]) -> list[StatusReport]:
        """The logs of these messages (logs are kept, unlike reports, which are handed out once)."""
        reports: list[StatusReport] = []
        for chunk in _chunks([i for i in provider_message_ids if i], limit=2048):
            response = await self.request("GET", f"{self.base_url}/sms/3/logs",
                                          params={"messageId": ",".join(chunk), "limit": str(REPORTS_LIMIT)},
                                          headers=self._headers())
            if not response.is_success:
                raise error_from_response(response)
            for log in (json_object(response) or {}).get("results") or []:
                if isinstance(log, dict) and log.get("messageId") and isinstance(log.get("status"), dict):
                    reports.append(report_from_result({**log, "to": log.get("destination")}))
        return reports

    async def poll_statuses(self, cursor: str | None) -> PollPage:
        """Delivery reports not yet handed out (Infobip hands each out once; no cursor needed)."""
        results = await self._pull("/sms/3/reports")
        reports = []
        for result in results:
            try:
                reports.append(report_from_result(result))
            except CallbackRejected:
                logger.info("infobip: skipping an unreadable delivery report %r", result)
        return PollPage(tuple(reports), cursor, len(results) >= REPORTS_LIMIT)

    async def poll_inbound(self, cursor: str | None) -> PollPage:
        """Inbound messages not yet handed out."""
        results = await self._pull("/sms/1/inbox/reports")
        return PollPage(tuple(_inbound(r) for r in results), cursor, len(results) >= REPORTS_LIMIT)

    async def _pull(self, path: str) -> list[dict[str, Any]]:
        response = await self.request("GET", f"{self.base_url}{path}", params={"limit": str(REPORTS_LIMIT)},
                                      headers=self._headers())
        if not response.is_success:
            raise error_from_response(response)
        return [r for r in (json_object(response) or {}).get("results") or [] if isinstance(r, dict)]

    # Helpers ----------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"App {self.setting('api_key')}", "Accept": "application/json"}


def _rejection(status: Mapping[str, Any]) -> ProviderError:
    status_id = status.get("id")
    known = ERROR_RULES.find(status_id, "status") if isinstance(status_id, int) else None
    name = str(status.get("name") or status.get("groupName") or "REJECTED")
    if known:
        return known.error(name, said="Infobip", code=name)
    return PermanentError(f"Infobip refused the message: {status.get('description') or name}", code=name)


def report_from_result(result: Mapping[str, Any]) -> StatusReport:
    """One delivery report (webhook, reports pull or log) read as a receipt."""
    message_id, status = result.get("messageId"), result.get("status")
    if not message_id or not isinstance(status, dict) or not status.get("groupName"):
        raise CallbackRejected(400, "a delivery report needs messageId and status.groupName")
    group = str(status["groupName"])
    state = STATUS_MAP.get(group)
    if state is None:
        logger.info("infobip: ignoring unknown status group %r of %r", group, message_id)
    error = result.get("error") if isinstance(result.get("error"), dict) else {}
    error_id = error.get("id")
    error_code = str(error.get("name") or error_id) if error_id not in (None, 0, "0") else None
    error_kind, reason = None, None
    if state in ("failed", "undelivered"):
        status_id = status.get("id")
        known = ERROR_RULES.find(status_id, "status") if group == "REJECTED" and isinstance(status_id, int) else None
        if known:
            error_kind, reason = known.kind, known.reason
            error_code = error_code or str(status.get("name") or "")
        elif "permanent" in error:
            error_kind = ErrorKind.PERMANENT if error["permanent"] else ErrorKind.TRANSIENT
            reason = str(error.get("description") or error.get("name") or status.get("description") or group)
        else:
            error_kind = ErrorKind.TRANSIENT if group == "EXPIRED" else ErrorKind.PERMANENT
            reason = str(status.get("description") or status.get("name") or group)
    return StatusReport(
        provider_message_id=str(message_id), provider_status=str(status.get("name") or group), state=state,
        at=parse_timestamp(result.get("doneAt")) or parse_timestamp(result.get("sentAt")), recipient=e164(result.get("to")),
        error_code=error_code, error_kind=error_kind, reason=reason, ref=result.get("callbackData") or None,
        **_price(result),
    )


def _price(result: Mapping[str, Any]) -> dict[str, Any]:
    """price.pricePerMessage × the parts (smsCount or messageCount, else 1) in price.currency."""
    price = result.get("price") if isinstance(result.get("price"), dict) else {}
    per_part = parse_price(price.get("pricePerMessage"))
    if per_part is None:
        return {}
    count = next((c for c in (result.get("smsCount"), result.get("messageCount")) if isinstance(c, int) and c > 0), 1)
    return {"price": round(per_part * count, 6), "price_currency": currency_code(price.get("currency"))}


def _inbound(result: Mapping[str, Any]) -> InboundReport:
    sender, text = result.get("from"), result.get("text")
    if not sender or not isinstance(text, str):
        raise CallbackRejected(400, "an inbound message needs from and text")
    return InboundReport(provider_message_id=result.get("messageId"), sender=e164(str(sender)) or str(sender),
                         recipient=result.get("to"), text=text, at=parse_timestamp(result.get("receivedAt")),
                         keyword=result.get("keyword") or None)


def _results(request: CallbackRequest) -> list[dict[str, Any]]:
    payload = request.json()
    results = payload.get("results") if isinstance(payload, dict) else None
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        raise CallbackRejected(400, "an Infobip callback is a JSON object with a results array")
    return results


def error_from_response(response: httpx.Response) -> ProviderError:
    """Classify an error answer (the newer {errorCode, description} or the older
    {requestError: {serviceException: {messageId, text}}} body): 401/403/429/5xx by HTTP status,
    other codes by the table."""
    payload = json_object(response) or {}
    request_error = payload.get("requestError") if isinstance(payload.get("requestError"), dict) else {}
    service = request_error.get("serviceException") if isinstance(request_error.get("serviceException"), dict) else {}
    code = payload.get("errorCode") or service.get("messageId")
    text = str(payload.get("description") or service.get("text") or "").strip()
    violations = payload.get("violations") or []
    details = "; ".join(f"{v.get('property')}: {v.get('violation')}" for v in violations if isinstance(v, dict))
    message = " — ".join(part for part in (text, details) if part)
    if not message and response.text.strip():
        message = f"HTTP {response.status_code} from Infobip: {snippet(response.text)}"
    status = response.status_code
    code = str(code) if code else None
    if status == 401:
        return ConfigurationError(f"Infobip refused the API key{f' ({message})' if message else ''}: "
                                  "check the API key and the account base URL", code=code, http_status=status)
    rule = ERROR_RULES.find(code)
    if status == 429 or status >= 500 or status == 403 or rule is None:
        return Provider.classify_http(response, message, code=code)
    return rule.error(message or code, code=code, http_status=status, response=response)


def _chunks(ids: list[str], limit: int) -> list[list[str]]:
    """Message ids grouped so that each comma-separated group stays within `limit` characters."""
    chunks: list[list[str]] = []
    length = 0
    for message_id in ids:
        if not chunks or length + len(message_id) + 1 > limit:
            chunks.append([])
            length = 0
        chunks[-1].append(message_id)
        length += len(message_id) + 1
    return chunks
