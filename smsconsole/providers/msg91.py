"""MSG91 (India): free-text SMS by the v2 JSON send API (`POST /api/v2/sendsms`, `authkey` header)
or, as a config choice, by the v5 Flow API (an approved MSG91 template with variables). Both batch:
many recipients go in one request, and MSG91 answers with one request id for the whole request,
so each recipient's message id is `{request_id}:{digits}`, the same composite the delivery
reports are read into. Delivery reports come from the webhook set in the MSG91 panel (v2 form
`data`, v3 flat JSON, "Webhook (New)" JSON), checked by the secret token in its URL.

Unconfirmed (see the issue report): the v2 endpoint's exact error bodies (the table below is from
MSG91's legacy and white-label docs), whether balance.php answers plain text or JSON on error, the
Flow body key (`template_id` in current docs, `flow_id` in older ones), the time zone of report
dates (read as IST), the values "Webhook (New)" puts in `status` (numeric codes and words are both
read), and any API to poll reports or receive replies (none is used)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
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
    OutboundMessage,
    OutcomeUnknownError,
    PermanentError,
    Provider,
    ProviderError,
    SendOutcome,
    StatusReport,
)
from smsconsole.providers.common import digits, e164, json_object, parse_timestamp, pattern, snippet
from smsconsole.providers.fields import dlt_template_field

logger = logging.getLogger(__name__)

MAX_BATCH = 100  # recipients per request: MSG91 documents no limit; kept modest so one failure costs little
IST = timezone(timedelta(hours=5, minutes=30))
ROUTES = {"4": "transactional", "1": "promotional"}

# Delivery report status → our state. Codes are MSG91's; words cover `desc` and Webhook (New).
STATUS_MAP: dict[str, str] = {
    "1": "delivered",
    "2": "undelivered",
    "9": "failed",
    "16": "failed",
    "25": "failed",
    "17": "failed",
    "delivered": "delivered",
    "failed": "undelivered",
    "ndnc": "failed",
    "rejected": "failed",
    "blocked": "failed",
}

ERROR_RULES = ErrorRules(
    # MSG91 error code, from MSG91's legacy API and white-label docs.
    ErrorRule("101", ErrorKind.PERMANENT, "the recipient number is missing"),
    ErrorRule("102", ErrorKind.PERMANENT, "the message text is missing"),
    ErrorRule("103", ErrorKind.CONFIGURATION, "the sender ID is missing"),
    ErrorRule("105", ErrorKind.CONFIGURATION, "the password is missing"),
    ErrorRule("106", ErrorKind.CONFIGURATION, "the auth key is missing: check the MSG91 auth key setting"),
    ErrorRule("107", ErrorKind.CONFIGURATION, "the route is missing"),
    ErrorRule("202", ErrorKind.PERMANENT, "the recipient number is not valid"),
    ErrorRule("203", ErrorKind.CONFIGURATION,
              "the sender ID is not valid (not approved, or not a DLT header of this account)"),
    ErrorRule("207", ErrorKind.CONFIGURATION, "MSG91 refused the auth key: check the MSG91 auth key setting"),
    ErrorRule("208", ErrorKind.CONFIGURATION, "this server's IP address is blacklisted by MSG91"),
    ErrorRule("301", ErrorKind.CONFIGURATION, "the MSG91 account has insufficient balance"),
    ErrorRule("302", ErrorKind.CONFIGURATION, "the MSG91 account has expired"),
    ErrorRule("303", ErrorKind.CONFIGURATION, "the MSG91 account is banned"),
    ErrorRule("306", ErrorKind.TRANSIENT, "this route is not available at this time (promotional time window)"),
    ErrorRule("307", ErrorKind.PERMANENT, "the schedule time is not valid"),
    ErrorRule("308", ErrorKind.CONFIGURATION, "the campaign name is longer than 32 characters"),
    ErrorRule("309", ErrorKind.CONFIGURATION, "the selected group does not belong to this account"),
    ErrorRule("310", ErrorKind.PERMANENT, "the message is too long"),
    # The same request within 10 s was discarded: the earlier one (a retry's original) may have sent it.
    ErrorRule("311", ErrorKind.UNKNOWN,
              "MSG91 discarded a duplicate of a request made within 10 seconds; the earlier request may have sent this "
              "message"),
    ErrorRule("418", ErrorKind.CONFIGURATION,
              "this server's IP address is not whitelisted for the auth key (API security is on)"),
    # Failed delivery report statuses: can the message work another time?
    ErrorRule("2", ErrorKind.TRANSIENT, "the operator could not deliver the message", on="report"),
    ErrorRule("9", ErrorKind.PERMANENT,
              "the recipient is on the NDNC (DND) registry; promotional SMS cannot reach them", on="report"),
    ErrorRule("16", ErrorKind.PERMANENT, "MSG91 or the operator rejected the message", on="report"),
    ErrorRule("25", ErrorKind.PERMANENT, "MSG91 or the operator rejected the message", on="report"),
    ErrorRule("17", ErrorKind.PERMANENT, "the recipient number is blocked", on="report"),
    ErrorRule("failed", ErrorKind.TRANSIENT, "the operator could not deliver the message", on="report"),
    ErrorRule("ndnc", ErrorKind.PERMANENT,
              "the recipient is on the NDNC (DND) registry; promotional SMS cannot reach them", on="report"),
    ErrorRule("rejected", ErrorKind.PERMANENT, "MSG91 or the operator rejected the message", on="report"),
    ErrorRule("blocked", ErrorKind.PERMANENT, "the recipient number is blocked", on="report"),
)



def message_id(request_id: str, number: str) -> str:
    return f"{request_id}:{digits(number)}"


class Msg91Provider(Provider):
    kind = "msg91"
    display_name = "MSG91"
    description = "MSG91 (India): DLT-registered SMS by the v2 send API or Flow templates, batched."
    default_base_url = "https://api.msg91.com"
    flow_base_url = "https://control.msg91.com"
    config_fields = (
        ConfigField(
            "auth_key", "Auth key", required=True, secret=True, placeholder="env:MSG91_AUTH_KEY",
            validator=pattern(r"[A-Za-z0-9]{16,64}", "an MSG91 auth key: 16–64 letters and digits"),
            help="MSG91 panel → Authkey; sent as the authkey header (and as a parameter to balance.php)",
        ),
        ConfigField(
            "sender", "Sender ID", required=True,
            validator=pattern(r"[A-Za-z0-9]{3,11}", "3–11 letters or digits (a DLT header in India: 6 characters)"),
            placeholder="ACMEIN", help="The approved sender ID (DLT header: 6 letters for transactional, 6 digits for promotional)",
        ),
        ConfigField(
            "route", "Route", kind="choice", choices=tuple(ROUTES), default="4",
            help="4 transactional, 1 promotional; also the route whose balance the connection test reads",
        ),
        ConfigField(
            "country", "Country code", kind="choice", choices=("91", "0", "1"), default="91",
            help="MSG91's country parameter: 91 India, 1 USA, 0 international; numbers are always sent with their country code",
        ),
        ConfigField(
            "send_api", "Send API", kind="choice", choices=("v2", "flow"), default="v2",
            help="v2: the message text as written (with a DLT template id); flow: an MSG91 Flow template filled with variables",
        ),
        dlt_template_field(
            "digits only (the DLT content template id)", "1107161234567890123",
            "Default DLT_TE_ID for the v2 API when a message names none (the entity id is set on the MSG91 account)",
        ),
        ConfigField(
            "flow_template_id", "Flow template ID", validator=pattern(r"[A-Za-z0-9]{8,40}", "an MSG91 template id: 8–40 letters and digits"),
            help="Flow API only: the MSG91 template (flow) id used when a message names none (option template_id)",
        ),
        ConfigField(
            "flow_body_variable", "Flow variable for the text",
            validator=pattern(r"[A-Za-z_][A-Za-z0-9_]{0,39}", "a variable name such as VAR1 or content"),
            placeholder="VAR1", help="Flow API only: the template variable that receives the message text (case-sensitive)",
        ),
        WEBHOOK_TOKEN_FIELD,
    )
    capabilities = Capabilities(max_batch=MAX_BATCH, max_body_chars=2000, status_webhook=True, dlt=True)

    @classmethod
    def check_config(cls, values: Mapping[str, str]) -> list[tuple[str, str]]:
        if (values.get("send_api") or "").strip() == "flow" and not (values.get("flow_template_id") or "").strip():
            return [("flow_template_id", "the Flow API needs a template id (messages may also carry option template_id)")]
        return []

    # Sending ----------------------------------------------------------------------------------

    async def send(self, messages: Sequence[OutboundMessage]) -> list[SendOutcome]:
        outcomes: dict[str, SendOutcome] = {}
        for group in self._requests(messages):
            for outcome in await self._send_request(group):
                outcomes[outcome.ref] = outcome
        return [outcomes[message.ref] for message in messages]

    def _requests(self, messages: Sequence[OutboundMessage]) -> list[list[OutboundMessage]]:
        """Messages split into requests: one request shares its sender, unicode flag and template,
        and names each number once (its report must point at one message)."""
        requests: list[tuple[tuple[str, ...], set[str], list[OutboundMessage]]] = []
        for message in messages:
            key = self._shared_key(message)
            number = digits(message.to)
            for shared, numbers, group in requests:
                if shared == key and number not in numbers and len(group) < MAX_BATCH:
                    numbers.add(number)
                    group.append(message)
                    break
            else:
                requests.append((key, {number}, [message]))
        return [group for _, _, group in requests]

    def _shared_key(self, message: OutboundMessage) -> tuple[str, ...]:
        if self._flow:
            return (self._sender(message), self._flow_template(message))
        return (self._sender(message), message.encoding, self._dlt_template(message))

    async def _send_request(self, group: list[OutboundMessage]) -> list[SendOutcome]:
        url, body = (self._flow_request(group) if self._flow else self._v2_request(group))
        try:
            response = await self.request("POST", url, json=body, headers=self._headers())
        except ProviderError as transport_error:
            logger.debug("msg91: %d message(s) not sent: %s", len(group), transport_error)
            return [SendOutcome(ref=m.ref, error=transport_error) for m in group]
        status = response.status_code
        payload = json_object(response)
        request_id = payload.get("message") if payload and payload.get("type") == "success" else None
        if response.is_success and isinstance(request_id, str) and request_id.strip():
            logger.debug("msg91: %d message(s) accepted as request %s", len(group), request_id)
            return [SendOutcome(ref=m.ref, provider_message_id=message_id(request_id.strip(), m.to),
                                provider_status="accepted", http_status=status) for m in group]
        error = error_from_response(response)
        logger.debug("msg91: %d message(s) not accepted: %s", len(group), error)
        return [SendOutcome(ref=m.ref, error=error, http_status=status) for m in group]

    def _v2_request(self, group: list[OutboundMessage]) -> tuple[str, dict[str, Any]]:
        first = group[0]
        texts: dict[str, list[str]] = {}
        for message in group:
            texts.setdefault(message.body, []).append(digits(message.to))
        body: dict[str, Any] = {
            "sender": self._sender(first),
            "route": self.setting("route"),
            "country": self.setting("country"),
            "unicode": 1 if first.encoding == "UCS-2" else 0,
            "sms": [{"message": text, "to": numbers} for text, numbers in texts.items()],
        }
        if template := self._dlt_template(first):
            body["DLT_TE_ID"] = template
        return f"{self.base_url}/api/v2/sendsms", body

    def _flow_request(self, group: list[OutboundMessage]) -> tuple[str, dict[str, Any]]:
        first = group[0]
        variable = self.setting("flow_body_variable").strip()
        recipients = []
        for message in group:
            recipient: dict[str, str] = {"mobiles": digits(message.to)}
            recipient.update(_variables(message))
            if variable:
                recipient[variable] = message.body
            recipients.append(recipient)
        body = {"template_id": self._flow_template(first), "sender": self._sender(first), "short_url": "0",
                "recipients": recipients}
        return f"{self._flow_base}/api/v5/flow/", body

    @property
    def _flow(self) -> bool:
        return self.setting("send_api") == "flow"

    @property
    def _flow_base(self) -> str:
        # An overridden base URL (a test fake, a proxy) serves both APIs.
        return self.base_url if self.base_url != self.default_base_url else self.flow_base_url

    def _sender(self, message: OutboundMessage) -> str:
        return (message.sender or self.setting("sender")).strip()

    def _dlt_template(self, message: OutboundMessage) -> str:
        return self.message_setting(message, "dlt_template_id")

    def _flow_template(self, message: OutboundMessage) -> str:
        return self.message_setting(message, "template_id", "flow_template_id")

    def _headers(self) -> dict[str, str]:
        return {"authkey": self.setting("auth_key"), "accept": "application/json"}

    # Connection check -------------------------------------------------------------------------

    async def check_connection(self) -> ConnectionCheck:
        """balance.php for the configured route: MSG91's only documented call that sends nothing.
        It takes the auth key as a query parameter."""
        route = self.setting("route")
        try:
            response = await self.request("GET", f"{self.base_url}/api/balance.php",
                                          params={"authkey": self.setting("auth_key"), "type": route})
        except ProviderError as error:
            return ConnectionCheck(ok=False, detail=f"MSG91 balance check failed: {error}")
        text = response.text.strip()
        if response.is_success and re.fullmatch(r"-?\d+(\.\d+)?", text):
            return ConnectionCheck(ok=True, detail=f"MSG91 auth key accepted; {ROUTES.get(route, route)} "
                                                   f"route balance: {text} SMS credits")
        payload = json_object(response)
        if payload is not None and (payload.get("code") or payload.get("message") or payload.get("msg")):
            reason = str(error_from_response(response))
        else:
            reason = f"HTTP {response.status_code}: {snippet(text) or '(empty body)'}"
        hint = ""
        if response.status_code in (401, 403) or re.search(r"auth|20[67]|106|418", reason, re.IGNORECASE):
            hint = " (check the auth key, and the IP whitelist if API security is on)"
        return ConnectionCheck(ok=False, detail=f"MSG91 balance check failed: {reason}{hint}")

    # Delivery reports ----------------------------------------------------------------------------

    def parse_status_callback(self, request: CallbackRequest) -> list[StatusReport]:
        """Every report in a v2 (`data` form field), v3 (flat JSON) or Webhook (New) callback."""
        items = _callback_items(request)
        reports: list[StatusReport] = []
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("report"), list):  # v2: a request with its reports
                request_id = item.get("requestId")
                for entry in item["report"]:
                    if not isinstance(entry, dict):
                        raise CallbackRejected(400, "a v2 report entry is not an object")
                    reports.append(_report(request_id, entry.get("number"), entry.get("status"), entry.get("desc"),
                                           entry.get("failedReason"), entry.get("date")))
            elif isinstance(item, dict) and "telNum" in item:  # Webhook (New)
                reports.append(_report(item.get("requestId"), item.get("telNum"), item.get("status"), None,
                                       item.get("failureReason"), item.get("deliveryTime") or item.get("requestedAt")))
            elif isinstance(item, dict) and "number" in item:  # v3
                reports.append(_report(item.get("requestId"), item.get("number"), item.get("status"), item.get("desc"),
                                       item.get("failedReason"), item.get("date")))
            else:
                raise CallbackRejected(400, "not an MSG91 delivery report: choose webhook version v2, v3 or "
                                            "Webhook (New) with requestId and telNum")
        if not reports:
            raise CallbackRejected(400, "the callback carries no delivery report")
        return reports


def _callback_items(request: CallbackRequest) -> list[Any]:
    form = request.form()
    if "data" in form:
        raw: Any = form["data"][-1]
    else:
        raw = request.json()
        if isinstance(raw, dict) and isinstance(raw.get("data"), str):  # a v2 payload posted as JSON
            raw = raw["data"]
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise CallbackRejected(400, "the data field is not JSON") from None
    return raw if isinstance(raw, list) else [raw]


def _report(request_id: Any, number: Any, status: Any, desc: Any, failed_reason: Any, date: Any) -> StatusReport:
    if not isinstance(request_id, str) or not request_id.strip() or not isinstance(number, str | int) \
            or not digits(str(number)) or status in (None, ""):
        raise CallbackRejected(400, "a delivery report needs requestId, the number and status")
    code = str(status).strip()
    key = code.lower()
    state = STATUS_MAP.get(key)
    if state is None and isinstance(desc, str):
        key = desc.strip().lower()
        state = STATUS_MAP.get(key)
    if state is None:
        logger.info("msg91: ignoring unknown status %r (%r) of request %r", code, desc, request_id)
    error_kind, reason = None, None
    if state in ("failed", "undelivered"):
        rule = ERROR_RULES.find(key, "report") or ErrorRule(key, ErrorKind.PERMANENT, f"MSG91 status {code}")
        error_kind, reason = rule.kind, rule.reason
        if isinstance(failed_reason, str) and failed_reason.strip():
            reason = f"{reason} ({failed_reason})"
    return StatusReport(
        provider_message_id=message_id(request_id.strip(), str(number)), provider_status=code, state=state,
        at=_ist(date), recipient=e164(digits(str(number))),
        error_code=code if state in ("failed", "undelivered") else None, error_kind=error_kind, reason=reason,
    )


def _variables(message: OutboundMessage) -> dict[str, str]:
    """Flow variables from option template_variables, a JSON object of name → value."""
    raw = message.options.get("template_variables")
    if not raw:
        return {}
    try:
        values = json.loads(raw)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in values.items()} if isinstance(values, dict) else {}


def _ist(value: Any) -> datetime | None:
    """A report's date, YYYY-MM-DD HH:MM:SS, read as India time."""
    return parse_timestamp(value, "%Y-%m-%d %H:%M:%S", zone=IST)


def error_from_response(response: httpx.Response) -> ProviderError:
    """Classify a refusal: by MSG91's code when it gives a known one, else by HTTP status."""
    payload = json_object(response)
    status = response.status_code
    if payload is None:
        body = snippet(response.text)
        if response.is_success:
            return OutcomeUnknownError(f"MSG91 answered HTTP {status} without a request id: {body or '(empty body)'}",
                                       http_status=status)
        return Provider.classify_http(response, f"HTTP {status} from MSG91: {body}" if body else "")
    raw_code = payload.get("code")
    code = str(raw_code).strip() if raw_code not in (None, "") else None
    text = str(payload.get("message") or payload.get("msg") or "").strip()
    if rule := ERROR_RULES.find(code):
        return rule.error(text, said="MSG91", code=code, http_status=status, response=response)
    if response.is_success and payload.get("type") != "error":
        return OutcomeUnknownError(f"MSG91 answered HTTP {status} without a request id: "
                                   f"{snippet(response.text) or '(empty body)'}", http_status=status)
    if re.search(r"auth", text, re.IGNORECASE):
        return ConfigurationError(f"MSG91 refused the auth key: {text}", code=code, http_status=status)
    if response.is_success:
        return PermanentError(f"MSG91 refused the request: {text or snippet(response.text)}", code=code,
                              http_status=status)
    return Provider.classify_http(response, f"MSG91: {text}" if text else "", code=code)
