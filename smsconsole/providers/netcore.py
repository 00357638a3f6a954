"""Netcore bulk SMS (bulkpush.mytoday.com): the documented Single Message API, a form POST to
`/BulkSms/SingleMsgApi` with feedid, username, password, To (up to 50 comma-separated numbers
sharing one Text), Text, templateid, entityid (India DLT), async and short, and an optional
`api-key` header. A request with several numbers is one request; each recipient's message id is
`{REQID}:{digits}`. Delivery reports are read through the Generic provider's field mapping
(smsconsole.providers.generic.receipts), checked by the secret token in the callback URL.

Unconfirmed (see the issue report), because Netcore's current pages document only the request:
the answer format (read as the legacy XML `<RESULT REQID='…'>` with `<REQUEST-ERROR>` /
`<ERROR><CODE>…<DESC>…` on failure, classified by the words of the description), a sender-id or
unicode parameter (none is sent: the header comes with the DLT template and the feed), any call
that checks credentials without sending (none: check_connection says so), the delivery report
push and pull format (hence the mapping, whose defaults `reqid` / `msisdn` / `status` with
DELIVRD-style values are guesses to adjust), and inbound SMS (not offered)."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Sequence

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
    TransientError,
)
from smsconsole.providers.common import digits, pattern, snippet
from smsconsole.providers.fields import dlt_entity_field, dlt_template_field
from smsconsole.providers.generic.receipts import (
    DEFAULT_STATUS_VALUES,
    MAPPING_FIELDS,
    FieldMapping,
)

logger = logging.getLogger(__name__)

MAX_NUMBERS = 50  # To holds at most 50 numbers

ERROR_RULES = ErrorRules(
    # Words of an error description: Netcore's error codes are not published; the legacy
    # descriptions name what is wrong, so they are read by their words.
    ErrorRule("password|user ?name|feed ?id|authenticat|unauthori[sz]ed|api.?key", ErrorKind.CONFIGURATION,
              "Netcore refused the credentials: check the feed id, username, password and API key", on="words"),
    ErrorRule(r"\bip\b|whitelist", ErrorKind.CONFIGURATION, "Netcore refused this server's IP address", on="words"),
    ErrorRule("credit|balance", ErrorKind.CONFIGURATION, "the Netcore account has no credits left", on="words"),
    ErrorRule("template|entity|dlt|sender|header", ErrorKind.CONFIGURATION,
              "Netcore refused the DLT template, entity or sender", on="words"),
    ErrorRule("dnd|ndnc|blacklist|block", ErrorKind.PERMANENT,
              "the recipient is on the DND registry or blocked", on="words"),
    ErrorRule("mobile|msisdn|number|destination", ErrorKind.PERMANENT, "the recipient number is not valid", on="words"),
    ErrorRule("throttl|too many|rate", ErrorKind.TRANSIENT, "Netcore is throttling requests", on="words"),
)

_REQID = re.compile(r"<RESULT\b[^>]*\bREQID\s*=\s*['\"]([^'\"]+)['\"]", re.IGNORECASE)
_ERROR = re.compile(r"<ERROR>\s*(?:<CODE>(.*?)</CODE>)?\s*(?:<DESC>(.*?)</DESC>)?", re.IGNORECASE | re.DOTALL)


# The Generic provider's receipt mapping, with defaults guessed from Netcore's legacy DLR fields.
_DEFAULTS = {
    "receipt_id_field": ("reqid", "The field holding the request id (REQID) of the send (case-sensitive)"),
    "receipt_number_field": ("msisdn", "The field holding the recipient's number; with the request id it names the "
                                       "message (the send's id is REQID:number); 'none' when the id field alone names one"),
    "receipt_status_values": (DEFAULT_STATUS_VALUES + ", DND=failed, BLOCKED=failed", None),
}
RECEIPT_FIELDS: tuple[ConfigField, ...] = tuple(
    dataclasses.replace(f, default=_DEFAULTS[f.name][0], help=_DEFAULTS[f.name][1] or f.help)
    if f.name in _DEFAULTS else f
    for f in MAPPING_FIELDS if f.name.startswith("receipt_")
)
_RECEIPT_FIELD_NAMES = frozenset(f.name for f in RECEIPT_FIELDS)


class NetcoreProvider(Provider):
    kind = "netcore"
    display_name = "Netcore"
    description = "Netcore bulk SMS (India): DLT template and entity ids, up to 50 numbers per request."
    default_base_url = "https://bulkpush.mytoday.com"
    config_fields = (
        ConfigField("feed_id", "Feed ID", required=True, validator=pattern(r"\d{1,20}", "digits (the account's feed id)"),
                    help="The account (feed) id Netcore's support gave you; sent as feedid"),
        ConfigField("username", "Username", required=True, validator=pattern(r"\S{1,64}", "a username without spaces"),
                    help="The API username (often the registered mobile number)"),
        ConfigField("password", "Password", required=True, secret=True, placeholder="env:NETCORE_PASSWORD",
                    help="The API password; sent in the form body, never in a URL"),
        ConfigField("api_key", "API key", secret=True,
                    help="Optional: sent as the api-key header when your Netcore account uses one"),
        dlt_entity_field("digits only (the DLT principal entity id)", "1101234567890123456",
                         "India: the DLT principal entity id, sent as entityid", required=True),
        dlt_template_field("digits only (the DLT template id)", "1107161234567890123",
                           "The default DLT template id (templateid) when a message names none; Netcore requires one"),
        ConfigField("async", "Asynchronous", kind="bool", default="false",
                    help="async=1: Netcore answers before it processes the request (faster, fewer errors reported)"),
        ConfigField("short_urls", "Shorten URLs", kind="bool", default="false", help="short=1: Netcore shortens links"),
        WEBHOOK_TOKEN_FIELD,
        *RECEIPT_FIELDS,
    )
    capabilities = Capabilities(max_batch=MAX_NUMBERS, status_webhook=True, dlt=True)

    # Sending ----------------------------------------------------------------------------------

    async def send(self, messages: Sequence[OutboundMessage]) -> list[SendOutcome]:
        outcomes: dict[str, SendOutcome] = {}
        for group in self._requests(messages):
            outcomes.update((o.ref, o) for o in await self._send_request(group))
        return [outcomes[message.ref] for message in messages]

    def _requests(self, messages: Sequence[OutboundMessage]) -> list[list[OutboundMessage]]:
        """One request shares Text, templateid and entityid, and names each number once."""
        groups: list[tuple[tuple[str, str, str], list[OutboundMessage]]] = []
        for message in messages:
            key = (message.body, self._template(message), self._entity(message))
            number = digits(message.to)
            for shared, group in groups:
                if shared == key and len(group) < MAX_NUMBERS and number not in {digits(m.to) for m in group}:
                    group.append(message)
                    break
            else:
                groups.append((key, [message]))
        return [group for _, group in groups]

    async def _send_request(self, group: list[OutboundMessage]) -> list[SendOutcome]:
        first = group[0]
        form = {
            "feedid": self.setting("feed_id").strip(), "username": self.setting("username").strip(),
            "password": self.setting("password"), "To": ",".join(digits(m.to) for m in group), "Text": first.body,
            "templateid": self._template(first), "entityid": self._entity(first),
            "async": "1" if self.flag("async") else "0", "short": "1" if self.flag("short_urls") else "0",
        }
        headers = {"api-key": self.setting("api_key")} if self.setting("api_key") else None
        try:
            response = await self.request("POST", f"{self.base_url}/BulkSms/SingleMsgApi", data=form, headers=headers)
        except ProviderError as transport_error:
            logger.debug("netcore: %d message(s) not sent: %s", len(group), transport_error)
            return [SendOutcome(ref=m.ref, error=transport_error) for m in group]
        status = response.status_code
        request_id = _request_id(response.text) if response.is_success else None
        if request_id:
            logger.debug("netcore: %d message(s) accepted as request %s", len(group), request_id)
            return [SendOutcome(ref=m.ref, provider_message_id=f"{request_id}:{digits(m.to)}",
                                provider_status="accepted", http_status=status) for m in group]
        error = error_from_response(response)
        logger.debug("netcore: %d message(s) not accepted: %s", len(group), error)
        return [SendOutcome(ref=m.ref, error=error, http_status=status) for m in group]

    def _template(self, message: OutboundMessage) -> str:
        return self.message_setting(message, "dlt_template_id")

    def _entity(self, message: OutboundMessage) -> str:
        return self.message_setting(message, "dlt_entity_id")

    # Connection check -------------------------------------------------------------------------

    async def check_connection(self) -> ConnectionCheck:
        return ConnectionCheck(
            ok=False,
            detail="Netcore documents no call that checks credentials without sending an SMS; "
                   "send a test message to one of your numbers to verify this provider",
        )

    # Delivery reports ----------------------------------------------------------------------------

    def parse_status_callback(self, request: CallbackRequest) -> list[StatusReport]:
        """Reports read by the Generic provider's field mapping. With a number field, each id
        becomes `{request id}:{digits}`, the id the send gave; a failed state is permanent, an
        undelivered one worth another try."""
        mapping = FieldMapping.from_settings(self._mapping_setting)
        reports = []
        for report in mapping.statuses(request):
            message_id = report.provider_message_id or ""
            if mapping.receipt_number:
                if not report.recipient or not digits(report.recipient):
                    raise CallbackRejected(400, f"a delivery report needs {mapping.receipt_number!r}, the number")
                message_id = f"{message_id}:{digits(report.recipient)}"
            kind = {"failed": PermanentError.kind, "undelivered": TransientError.kind}.get(report.state or "")
            reports.append(dataclasses.replace(report, provider_message_id=message_id, error_kind=kind))
        return reports

    def _mapping_setting(self, name: str) -> str:
        """The mapping's settings; its inbound ones are not offered (Netcore's replies are unknown)."""
        value = self.setting(name) if name in _RECEIPT_FIELD_NAMES else ""
        return "" if name == "receipt_number_field" and value.strip().lower() == "none" else value


def _request_id(text: str) -> str | None:
    match = _REQID.search(text)
    if match and match.group(1).strip():
        return match.group(1).strip()
    try:  # a JSON answer, should an account be switched to one
        payload = json.loads(text)
    except ValueError:
        return None
    value = payload.get("REQID") or payload.get("reqid") if isinstance(payload, dict) else None
    return str(value) if value not in (None, "") else None


def error_from_response(response: httpx.Response) -> ProviderError:
    """An error answer classified by its description's words, else by HTTP status; a success
    without a request id is an unknown outcome."""
    status = response.status_code
    match = _ERROR.search(response.text)
    code = (match.group(1) or "").strip() or None if match else None
    description = (match.group(2) or "").strip() if match else ""
    if match:
        if rule := ERROR_RULES.search(description):
            return rule.error(description, said="Netcore", code=code, http_status=status)
        if response.is_success or status == 400:
            return PermanentError(f"Netcore refused the request: {description or snippet(response.text)}",
                                  code=code, http_status=status)
    if response.is_success:
        return OutcomeUnknownError(f"Netcore answered HTTP {status} without a request id: "
                                   f"{snippet(response.text) or '(empty body)'}", http_status=status)
    body = snippet(response.text)
    return Provider.classify_http(response, f"HTTP {status} from Netcore: {body}" if body else "", code=code)
