"""Exotel SMS (API v1): a form-encoded POST per message to `/v1/Accounts/{sid}/Sms/send.json` with
HTTP Basic api_key:api_token on the account's cluster (Singapore api.exotel.com or Mumbai
api.in.exotel.com), India DLT fields, a per-message StatusCallback carrying our secret token, and
our reference in CustomField. Optionally (the `bulk` setting) up to 100 messages go in one
`/Sms/bulksend.json` request. Errors come as `RestException` with the HTTP status; delivery
reports are form POSTs whose `Status` (`sent` = delivered, `failed_dnd` = DND) and
`DetailedStatusCode` are classified; one message's status is fetched by its Sid.

Unconfirmed (see the issue report): the bulksend request and answer shapes (Exotel's two doc
generations disagree: form `Messages[i][To]` here, a JSON `sms` array in the newer pages; the
answer is read as a list of `SMSMessage` / `RestException` items matched by number, else by order),
so bulk is off by default; the time zone of DateSent (read as IST); the newer `Code` strings of
RestException; any SMS list endpoint to poll (none is used) and inbound SMS (support says it is not
available; not implemented)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

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
    OutboundMessage,
    OutcomeUnknownError,
    PermanentError,
    Provider,
    ProviderError,
    SendOutcome,
    StatusReport,
)
from smsconsole.providers.common import digits, json_body, parse_timestamp, pattern, snippet
from smsconsole.providers.fields import dlt_entity_field, dlt_template_field

logger = logging.getLogger(__name__)

HOSTS = {"singapore": "https://api.exotel.com", "mumbai": "https://api.in.exotel.com"}
MAX_BULK = 100  # Messages per bulksend request; more is answered with HTTP 400
IST = timezone(timedelta(hours=5, minutes=30))

# Exotel SMS status → our state. `sent` is Exotel's delivered; the early ones mean Exotel holds it.
STATUS_MAP: dict[str, str] = {
    "queued": "sent",
    "sending": "sent",
    "submitted": "sent",
    "sent": "delivered",
    "failed_dnd": "failed",
    "failed": "failed",
}

ERROR_RULES = ErrorRules(
    # DetailedStatusCode of a report: can a failed message work another time? Exotel's glossary.
    ErrorRule("20005", ErrorKind.PERMANENT, "delivered to the handset"),
    ErrorRule("20006", ErrorKind.PERMANENT, "delivered to the operator"),
    ErrorRule("21010", ErrorKind.TRANSIENT, "pending to the operator"),
    ErrorRule("21015", ErrorKind.TRANSIENT, "sending to the operator"),
    ErrorRule("21020", ErrorKind.TRANSIENT, "pending on the operator"),
    ErrorRule("23005", ErrorKind.PERMANENT, "the recipient is on the DND (NCPR) registry"),
    ErrorRule("23015", ErrorKind.PERMANENT, "the operator flagged the message as spam"),
    ErrorRule("23030", ErrorKind.TRANSIENT, "no route is available to this number now"),
    ErrorRule("23035", ErrorKind.TRANSIENT, "the subscriber is unavailable"),
    ErrorRule("23060", ErrorKind.PERMANENT, "the operator rejected the message"),
    ErrorRule("23080", ErrorKind.CONFIGURATION, "the sender ID (header) is blocked by DLT"),
    ErrorRule("23081", ErrorKind.CONFIGURATION, "the DLT entity is blocked"),
    ErrorRule("23082", ErrorKind.CONFIGURATION, "the DLT template is blocked"),
    ErrorRule("23083", ErrorKind.CONFIGURATION, "DLT scrubbing failed (sender, template or content do not match)"),
    ErrorRule("23084", ErrorKind.PERMANENT, "DLT consent of this recipient is missing"),
    ErrorRule("23181", ErrorKind.CONFIGURATION, "the DLT template id is not valid"),
    ErrorRule("23182", ErrorKind.CONFIGURATION, "the DLT template was not found"),
    ErrorRule("23183", ErrorKind.CONFIGURATION, "the DLT template is inactive"),
    ErrorRule("23184", ErrorKind.CONFIGURATION, "the DLT template is blacklisted"),
    ErrorRule("23185", ErrorKind.CONFIGURATION, "the text does not match the DLT template"),
    ErrorRule("23186", ErrorKind.CONFIGURATION, "the text is longer than the DLT template allows"),
    ErrorRule("23281", ErrorKind.CONFIGURATION, "the DLT entity was not found"),
    ErrorRule("24010", ErrorKind.TRANSIENT, "Exotel system error"),
    ErrorRule("24105", ErrorKind.TRANSIENT, "handset error"),
    ErrorRule("24110", ErrorKind.TRANSIENT, "operator error"),
    ErrorRule("24120", ErrorKind.PERMANENT, "subscriber error (the number cannot receive SMS)"),
    ErrorRule("24990", ErrorKind.TRANSIENT, "unknown error"),
    # HTTP status of a RestException. Exotel asks integrations to rely on the status, not on the
    # message text.
    ErrorRule("400", ErrorKind.PERMANENT, "Exotel refused the request (invalid parameters or recipient)", on="http"),
    ErrorRule("401", ErrorKind.CONFIGURATION,
              "Exotel refused the credentials: check the API key, API token and account SID", on="http"),
    ErrorRule("402", ErrorKind.CONFIGURATION,
              "the Exotel plan limit is exceeded or the balance is insufficient", on="http"),
    ErrorRule("403", ErrorKind.CONFIGURATION,
              "the Exotel account is not active, out of balance or not allowed to do this", on="http"),
    ErrorRule("404", ErrorKind.CONFIGURATION,
              "Exotel does not know this resource: check the account SID and the region", on="http"),
    ErrorRule("405", ErrorKind.CONFIGURATION, "Exotel does not allow this method here: check the base URL", on="http"),
    ErrorRule("409", ErrorKind.PERMANENT, "Exotel reports a duplicate request or a conflict", on="http"),
    ErrorRule("429", ErrorKind.TRANSIENT, "too many requests to Exotel (about 200 a minute are allowed)", on="http"),
)




class ExotelProvider(Provider):
    kind = "exotel"
    display_name = "Exotel"
    description = "Exotel SMS (India / South-East Asia): ExoPhones and DLT headers, delivery callbacks."
    default_base_url = HOSTS["singapore"]
    config_fields = (
        ConfigField(
            "account_sid", "Account SID", required=True,
            validator=pattern(r"[A-Za-z0-9_\-]{2,64}", "the account SID shown in API settings (letters, digits, - or _)"),
            help="Exotel Dashboard → Settings → API Settings; part of every API path",
        ),
        ConfigField(
            "api_key", "API key", required=True,
            validator=pattern(r"[A-Za-z0-9]{8,128}", "an Exotel API key: letters and digits"),
            help="The API key from API Settings (the Basic auth username)",
        ),
        ConfigField(
            "api_token", "API token", required=True, secret=True, placeholder="env:EXOTEL_API_TOKEN",
            help="The API token from API Settings (the Basic auth password); env:NAME reads it from the environment",
        ),
        ConfigField(
            "region", "Cluster", kind="choice", choices=tuple(HOSTS), default="singapore",
            help="Where the account lives: singapore (api.exotel.com) or mumbai (api.in.exotel.com)",
        ),
        ConfigField(
            "sender", "From", required=True,
            validator=pattern(r"\+?[A-Za-z0-9\-]{3,20}", "an ExoPhone or a DLT sender ID (header)"),
            placeholder="ACMEIN", help="An ExoPhone of the account, or an approved sender ID (DLT header) linked to one",
        ),
        dlt_entity_field(
            "digits only (the DLT principal entity id)", "1101234567890123456",
            "India: the DLT principal entity id (DltEntityId), sent with every message",
        ),
        dlt_template_field(
            "digits only (the DLT template id)", "1107161234567890123",
            "India: the default DLT template id when a message names none",
        ),
        ConfigField(
            "sms_type", "SMS type", kind="choice", choices=("transactional", "transactional_opt_in", "promotional"),
            help="India: the DLT category; unset, Exotel matches the text against the templates added in its dashboard",
        ),
        ConfigField(
            "priority", "Priority", kind="choice", choices=("normal", "high"),
            help="high is meant for OTPs; unset, Exotel uses normal",
        ),
        ConfigField(
            "bulk", "Bulk send", kind="bool", default="false",
            help="Send up to 100 messages per request with Sms/bulksend (its answer format is not confirmed by Exotel's docs)",
        ),
        WEBHOOK_TOKEN_FIELD,
    )
    capabilities = Capabilities(max_batch=MAX_BULK, max_body_chars=2000, status_webhook=True, dlt=True,
                                status_lookup=True)

    def __init__(self, config: Mapping[str, str], *, client: httpx.AsyncClient | None = None,
                 base_url: str | None = None) -> None:
        region = str(config.get("region") or "singapore")
        super().__init__(config, client=client, base_url=base_url or HOSTS.get(region, self.default_base_url))

    @property
    def max_batch(self) -> int:
        return MAX_BULK if self.flag("bulk") else 1

    # Sending ----------------------------------------------------------------------------------

    async def send(self, messages: Sequence[OutboundMessage]) -> list[SendOutcome]:
        if not self.flag("bulk") or len(messages) == 1:
            return [await self._send_one(message) for message in messages]
        outcomes: dict[str, SendOutcome] = {}
        for group in self._bulk_groups(messages):
            results = await (self._send_bulk(group) if len(group) > 1 else self._send_one_list(group[0]))
            outcomes.update((outcome.ref, outcome) for outcome in results)
        return [outcomes[message.ref] for message in messages]

    async def _send_one_list(self, message: OutboundMessage) -> list[SendOutcome]:
        return [await self._send_one(message)]

    async def _send_one(self, message: OutboundMessage) -> SendOutcome:
        form = {"From": self._sender(message), "To": message.to, "Body": message.body,
                "EncodingType": _encoding(message), **self._dlt(message)}
        if message.status_callback_url:
            form["StatusCallback"] = self.callback_url(message.status_callback_url)
        if priority := self.setting("priority"):
            form["Priority"] = priority
        form["CustomField"] = message.ref
        try:
            response = await self.request("POST", self._account_url("/Sms/send.json"), data=form, auth=self._auth())
        except ProviderError as transport_error:
            logger.debug("exotel: message %s not sent: %s", message.ref, transport_error)
            return SendOutcome(ref=message.ref, error=transport_error)
        if not response.is_success:
            rejection = error_from_response(response)
            logger.debug("exotel: message %s rejected: %s", message.ref, rejection)
            return SendOutcome(ref=message.ref, error=rejection, http_status=response.status_code)
        return _outcome(message.ref, _sms_message(json_body(response)), response)

    def _bulk_groups(self, messages: Sequence[OutboundMessage]) -> list[list[OutboundMessage]]:
        """bulksend shares EncodingType and StatusCallback across its messages; a number appears
        once per request so each answer item matches one message."""
        groups: dict[tuple[str, str], list[list[OutboundMessage]]] = {}
        for message in messages:
            chunks = groups.setdefault((_encoding(message), message.status_callback_url or ""), [[]])
            if len(chunks[-1]) == MAX_BULK or digits(message.to) in {digits(m.to) for m in chunks[-1]}:
                chunks.append([])
            chunks[-1].append(message)
        return [chunk for chunks in groups.values() for chunk in chunks]

    async def _send_bulk(self, group: list[OutboundMessage]) -> list[SendOutcome]:
        first = group[0]
        form: list[tuple[str, str]] = [("From", self.setting("sender").strip()), ("EncodingType", _encoding(first))]
        if first.status_callback_url:
            form.append(("StatusCallback", self.callback_url(first.status_callback_url)))
        for index, message in enumerate(group):
            item = {"To": message.to, "Body": message.body, "From": self._sender(message), **self._dlt(message),
                    "CustomField": message.ref}
            form.extend((f"Messages[{index}][{name}]", value) for name, value in item.items())
        try:
            response = await self.request(  # repeated-looking keys keep their order: encoded here, not by httpx
                "POST", self._account_url("/Sms/bulksend.json"), content=urlencode(form), auth=self._auth(),
                headers={"content-type": "application/x-www-form-urlencoded"})
        except ProviderError as transport_error:
            logger.debug("exotel: %d messages not sent: %s", len(group), transport_error)
            return [SendOutcome(ref=m.ref, error=transport_error) for m in group]
        if not response.is_success:
            rejection = error_from_response(response)
            logger.debug("exotel: bulk of %d rejected: %s", len(group), rejection)
            return [SendOutcome(ref=m.ref, error=rejection, http_status=response.status_code) for m in group]
        items = _bulk_items(json_body(response))
        by_number: dict[str, dict[str, Any]] = {}
        for item in items:
            number = digits(str((item.get("SMSMessage") or {}).get("To") or ""))
            if number and number not in by_number:
                by_number[number] = item
        positional = len(items) == len(group)
        outcomes = []
        for index, message in enumerate(group):
            item = by_number.get(digits(message.to)) or (items[index] if positional else None)
            if item is None:
                unknown = OutcomeUnknownError(f"Exotel accepted the bulk request (HTTP {response.status_code}) but its "
                                              f"answer names no message for {message.to}: {snippet(response.text)}",
                                              http_status=response.status_code)
                outcomes.append(SendOutcome(ref=message.ref, error=unknown, http_status=response.status_code))
            elif "RestException" in item:
                outcomes.append(SendOutcome(ref=message.ref, error=_rest_exception(item["RestException"], response),
                                            http_status=response.status_code))
            else:
                outcomes.append(_outcome(message.ref, item.get("SMSMessage"), response))
        return outcomes

    def _sender(self, message: OutboundMessage) -> str:
        return (message.sender or self.setting("sender")).strip()

    def _dlt(self, message: OutboundMessage) -> dict[str, str]:
        fields = {
            "DltEntityId": self.message_setting(message, "dlt_entity_id"),
            "DltTemplateId": self.message_setting(message, "dlt_template_id"),
            "SmsType": self.message_setting(message, "sms_type"),
        }
        return {name: value for name, value in fields.items() if value}

    # Connection check -------------------------------------------------------------------------

    async def check_connection(self) -> ConnectionCheck:
        try:
            response = await self.request("GET", self._account_url("/Balance.json"), auth=self._auth())
        except ProviderError as error:
            return ConnectionCheck(ok=False, detail=f"Exotel balance check failed: {error}")
        if response.status_code == 401:
            return ConnectionCheck(ok=False, detail="Exotel refused the credentials (HTTP 401): check the API key, "
                                                    "API token and account SID")
        if response.status_code == 404:
            return ConnectionCheck(ok=False, detail="Exotel does not know this account (HTTP 404): check the account "
                                                    "SID and the cluster (singapore or mumbai)")
        if not response.is_success:
            return ConnectionCheck(ok=False, detail=f"Exotel balance check failed: {error_from_response(response)}")
        account = (json_body(response) or {}).get("Account")
        balance = account.get("BalanceData") if isinstance(account, dict) else None
        if not isinstance(balance, dict) or balance.get("Balance") in (None, ""):
            return ConnectionCheck(ok=False, detail=f"Exotel answered HTTP {response.status_code} without a balance: "
                                                    f"{snippet(response.text) or '(empty body)'}")
        detail = f"Exotel account {account.get('AccountSid') or self.setting('account_sid')}: balance " \
                 f"{balance['Balance']} {balance.get('Currency') or ''}".rstrip()
        if balance.get("PricingPlan"):
            detail += f" ({balance['PricingPlan']})"
        return ConnectionCheck(ok=True, detail=detail)

    # Receipts ------------------------------------------------------------------------------------

    def parse_status_callback(self, request: CallbackRequest) -> list[StatusReport]:
        params = request.params()
        sid, status = params.get("SmsSid"), params.get("Status")
        if not sid or not status:
            raise CallbackRejected(400, "an Exotel status callback needs SmsSid and Status")
        return [status_report(sid, status, params.get("DetailedStatusCode"), params.get("DetailedStatus"),
                              recipient=params.get("To"), at=_ist(params.get("DateSent")),
                              ref=params.get("CustomField") or None)]

    async def fetch_statuses(self, provider_message_ids: Sequence[str]) -> list[StatusReport]:
        reports = []
        for sid in provider_message_ids:
            resource = _sms_message(await self.lookup(self._account_url(f"/SMS/Messages/{sid}.json"),
                                                      error_from_response, auth=self._auth()))
            if resource and resource.get("Sid") and resource.get("Status"):
                reports.append(status_report(
                    str(resource["Sid"]), str(resource["Status"]), _str(resource.get("DetailedStatusCode")),
                    _str(resource.get("DetailedStatus")), recipient=_str(resource.get("To")),
                    at=_ist(resource.get("DateUpdated") or resource.get("DateSent"))))
        return reports

    # Helpers ----------------------------------------------------------------------------------

    def _account_url(self, suffix: str) -> str:
        return f"{self.base_url}/v1/Accounts/{self.setting('account_sid').strip()}{suffix}"

    def _auth(self) -> httpx.BasicAuth:
        return httpx.BasicAuth(self.setting("api_key").strip(), self.setting("api_token"))


def status_report(sid: str, status: str, detailed_code: str | None, detailed_status: str | None, *,
                  recipient: str | None = None, at: datetime | None = None, ref: str | None = None) -> StatusReport:
    """An Exotel status read as a receipt: `sent` is delivered, `failed_dnd` a permanent DND failure,
    `failed` classified by its DetailedStatusCode; an unknown status maps to None."""
    state = STATUS_MAP.get(status)
    if state is None:
        logger.info("exotel: ignoring unknown status %r of %r", status, sid)
    code = detailed_code.strip() if detailed_code and detailed_code.strip() not in ("", "0") else None
    error_kind, reason = None, None
    if state == "failed":
        if status == "failed_dnd":
            error_kind, reason = PermanentError.kind, "the recipient is on the DND (NCPR) registry"
        elif rule := ERROR_RULES.find(code):
            error_kind, reason = rule.kind, rule.reason
        else:
            error_kind, reason = PermanentError.kind, detailed_status or f"Exotel status {status}"
    return StatusReport(provider_message_id=sid, provider_status=status, state=state, at=at, recipient=recipient,
                        error_code=code if state == "failed" else None, error_kind=error_kind, reason=reason, ref=ref)


def _outcome(ref: str, resource: Any, response: httpx.Response) -> SendOutcome:
    sid = resource.get("Sid") if isinstance(resource, dict) else None
    if not isinstance(sid, str) or not sid:
        unknown = OutcomeUnknownError(f"Exotel answered HTTP {response.status_code} without an SMS Sid: "
                                      f"{snippet(response.text) or '(empty body)'}", http_status=response.status_code)
        logger.debug("exotel: message %s outcome unknown: %s", ref, unknown)
        return SendOutcome(ref=ref, error=unknown, http_status=response.status_code)
    status = resource.get("Status")
    logger.debug("exotel: message %s accepted as %s (%s)", ref, sid, status)
    return SendOutcome(ref=ref, provider_message_id=sid, provider_status=status if isinstance(status, str) else None,
                       http_status=response.status_code)


def error_from_response(response: httpx.Response) -> ProviderError:
    """A RestException (or any error answer) classified by its HTTP status."""
    payload = json_body(response)
    exception = payload.get("RestException") if isinstance(payload, dict) else None
    if isinstance(exception, dict):
        return _rest_exception(exception, response)
    text = _xml_message(response.text) or snippet(response.text)
    return _classified(response.status_code, text, None, response)


def _rest_exception(exception: Mapping[str, Any], response: httpx.Response) -> ProviderError:
    status = exception.get("Status")
    http_status = int(status) if str(status).isdigit() else response.status_code
    code = _str(exception.get("Code"))
    return _classified(http_status, str(exception.get("Message") or "").strip(), code, response)


def _classified(status: int, text: str, code: str | None, response: httpx.Response) -> ProviderError:
    rule = ERROR_RULES.find(status, "http")
    if rule is None:
        return Provider.classify_http(response, f"Exotel: {text}" if text else "", code=code)
    return rule.error(text, said="Exotel", code=code or str(status), http_status=status, response=response)


def _xml_message(text: str) -> str:
    """The Message of an XML RestException (Exotel's default answer format)."""
    match = re.search(r"<Message>(.*?)</Message>", text, re.DOTALL)
    return match.group(1).strip() if match else ""


def _bulk_items(payload: Any) -> list[dict[str, Any]]:
    if isinstance(payload, dict):
        inner = payload.get("SMSMessage") if isinstance(payload.get("SMSMessage"), list) else [payload]
        payload = inner
    if not isinstance(payload, list):
        return []
    return [item for item in payload if isinstance(item, dict)]


def _sms_message(payload: Any) -> dict[str, Any] | None:
    resource = payload.get("SMSMessage") if isinstance(payload, dict) else None
    return resource if isinstance(resource, dict) else None


def _encoding(message: OutboundMessage) -> str:
    return "unicode" if message.encoding == "UCS-2" else "plain"


def _str(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _ist(value: Any) -> datetime | None:
    """DateSent / DateUpdated, YYYY-MM-DD HH:MM:SS, read as India time."""
    return parse_timestamp(value, "%Y-%m-%d %H:%M:%S", zone=IST)
