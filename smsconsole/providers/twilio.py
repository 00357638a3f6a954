"""Twilio Programmable Messaging (API 2010-04-01): one form-encoded POST per message with HTTP
Basic auth by Account SID or API key, Twilio's JSON error codes mapped onto the error family, and
the X-Twilio-Signature scheme that status and inbound webhooks are checked with.

Prices: the create answer's `price` is null and status callbacks carry none; the message resource
(a status lookup or the list the poller reads) gives `price` (negative: a charge, kept positive)
and `price_unit` once Twilio has rated the message, and only then is a price recorded."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import SplitResult, parse_qs, urlsplit

import httpx

from smsconsole.providers.base import (
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
    ProviderPrice,
    SendOutcome,
    StatusReport,
)
from smsconsole.providers.common import (
    RFC2822,
    currency_code,
    json_object,
    load_cursor,
    parse_price,
    parse_smpp_time,
    parse_timestamp,
    pattern,
    same_secret,
    sender_validator,
    snippet,
)

logger = logging.getLogger(__name__)

API_VERSION = "2010-04-01"

# Twilio message status → our message state. Receipts never move a message backwards, so the
# early statuses all read as "sent" (Twilio holds the message).
STATUS_MAP: dict[str, str] = {
    "queued": "sent",
    "accepted": "sent",
    "scheduled": "sent",
    "sending": "sent",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "undelivered",
    "partially_delivered": "undelivered",
    "failed": "failed",
    "canceled": "failed",
}

ERROR_RULES = ErrorRules(
    # Twilio's error codes: 2xxxx come back synchronously in the error body of a send; 30xxx arrive
    # later as `ErrorCode` of a status callback.
    ErrorRule("20003", ErrorKind.CONFIGURATION, "Twilio refused the credentials (Account SID, API key or auth token)"),
    ErrorRule("20005", ErrorKind.CONFIGURATION, "the Twilio account is not active"),
    ErrorRule("20404", ErrorKind.CONFIGURATION, "Twilio does not know this resource (check the Account SID)"),
    ErrorRule("20429", ErrorKind.TRANSIENT, "too many concurrent requests to Twilio; not processed, safe to retry"),
    ErrorRule("21211", ErrorKind.PERMANENT, "the recipient number is not valid"),
    # Geo permissions are an account setting, but they block only recipients in that region.
    ErrorRule("21408", ErrorKind.PERMANENT, "sending to this region is not enabled in the account's geo permissions"),
    ErrorRule("21602", ErrorKind.PERMANENT, "the message body is empty"),
    ErrorRule("21604", ErrorKind.PERMANENT, "the recipient number is missing"),
    ErrorRule("21608", ErrorKind.PERMANENT, "a trial account can only send to verified numbers"),
    ErrorRule("21610", ErrorKind.PERMANENT,
              "the recipient unsubscribed (replied STOP); nothing is sent until they text START"),
    ErrorRule("21612", ErrorKind.PERMANENT, "Twilio cannot route to this recipient from this sender"),
    ErrorRule("21614", ErrorKind.PERMANENT, "the recipient number cannot receive SMS"),
    ErrorRule("21617", ErrorKind.PERMANENT, "the message body exceeds 1,600 characters"),
    ErrorRule("21635", ErrorKind.PERMANENT, "the recipient is a landline"),
    ErrorRule("21212", ErrorKind.CONFIGURATION, "the sender (From) is not a valid number"),
    ErrorRule("21603", ErrorKind.CONFIGURATION, "no sender: set From or a Messaging Service SID"),
    ErrorRule("21606", ErrorKind.CONFIGURATION, "the sender (From) is not an SMS-capable number of this account"),
    ErrorRule("21659", ErrorKind.CONFIGURATION, "the sender (From) is not a Twilio number or short code"),
    ErrorRule("21660", ErrorKind.CONFIGURATION, "the sender (From) does not belong to this account"),
    ErrorRule("30001", ErrorKind.TRANSIENT, "Twilio's queue for the sender overflowed"),
    ErrorRule("30003", ErrorKind.TRANSIENT, "the handset was unreachable"),
    ErrorRule("30004", ErrorKind.PERMANENT, "the message was blocked by the recipient or the carrier"),
    ErrorRule("30005", ErrorKind.PERMANENT, "the recipient number is unknown or no longer exists"),
    ErrorRule("30006", ErrorKind.PERMANENT, "the recipient is a landline or its carrier is unreachable"),
    ErrorRule("30007", ErrorKind.PERMANENT, "the carrier filtered the message"),
    ErrorRule("30008", ErrorKind.TRANSIENT, "delivery failed for an unknown reason"),
    ErrorRule("30032", ErrorKind.CONFIGURATION, "the toll-free sender is not verified"),
    ErrorRule("30034", ErrorKind.CONFIGURATION, "the sender is not registered for US A2P 10DLC"),
    ErrorRule("30036", ErrorKind.TRANSIENT, "the validity period expired before the message could be sent"),
)

_sender = sender_validator(
    "a Twilio number in E.164 (+14155552671), a short code (5–6 digits) or an alphanumeric sender ID "
    "(up to 11 of A–Z a–z 0–9 space - + _ &, not only digits)",
    r"\+[1-9]\d{4,14}", r"\d{5,6}", alphanumeric=r"[A-Za-z0-9 \-+_&]{1,11}", numeric=r"[0-9 \-+]+",
)


def _validity_period(value: str) -> str | None:
    return None if 1 <= int(value) <= 36000 else "must be from 1 to 36000 seconds"


class TwilioProvider(Provider):
    kind = "twilio"
    display_name = "Twilio"
    description = "Twilio Programmable Messaging: numbers, alphanumeric senders, short codes, Messaging Services."
    default_base_url = "https://api.twilio.com"
    config_fields = (
        ConfigField(
            "account_sid", "Account SID", required=True,
            validator=pattern(r"AC[0-9a-fA-F]{32}", "an Account SID: AC followed by 32 hex digits"),
            placeholder="AC…", help="From the Twilio Console; every request goes to this account",
        ),
        ConfigField(
            "api_key_sid", "API key SID",
            validator=pattern(r"SK[0-9a-fA-F]{32}", "an API key SID: SK followed by 32 hex digits"),
            placeholder="SK…", help="Optional; when set, the auth token field holds this key's secret",
        ),
        ConfigField(
            "auth_token", "Auth token", required=True, secret=True, placeholder="env:TWILIO_AUTH_TOKEN",
            help="The account's auth token, or the API key secret; env:NAME reads it from the environment",
        ),
        ConfigField(
            "sender", "From", validator=_sender, placeholder="+14155552671",
            help="A Twilio number in E.164, an alphanumeric sender ID or a short code",
        ),
        ConfigField(
            "messaging_service_sid", "Messaging Service SID",
            validator=pattern(r"MG[0-9a-fA-F]{32}", "a Messaging Service SID: MG followed by 32 hex digits"),
            placeholder="MG…", help="Optional; Twilio picks the sender from the service's pool (replaces From)",
        ),
        ConfigField(
            "validity_period", "Validity period (s)", kind="int", validator=_validity_period,
            placeholder="36000", help="Seconds a message may wait in Twilio's queue, 1–36000",
        ),
        ConfigField(
            "smart_encoding", "Smart encoding", kind="bool", default="false",
            help="Let Twilio replace Unicode look-alikes (curly quotes, dashes) with GSM-7 characters",
        ),
        ConfigField(
            "signing_auth_token", "Auth token for webhooks", secret=True, placeholder="env:TWILIO_ACCOUNT_TOKEN",
            help="Only with an API key: the account's auth token, which Twilio signs webhooks with",
        ),
    )
    capabilities = Capabilities(
        max_batch=1, max_body_chars=1600, status_webhook=True, status_polling=True,
        inbound_webhook=True, inbound_polling=True, signature=True,
        status_lookup=True, pricing_api=True,
    )

    @classmethod
    def check_config(cls, values: Mapping[str, str]) -> list[tuple[str, str]]:
        if not (values.get("sender") or "").strip() and not (values.get("messaging_service_sid") or "").strip():
            return [("sender", "set either From (a sender) or a Messaging Service SID")]
        return []

    # Sending ----------------------------------------------------------------------------------

    async def send(self, messages: Sequence[OutboundMessage]) -> list[SendOutcome]:
        return [await self._send_one(message) for message in messages]

    async def _send_one(self, message: OutboundMessage) -> SendOutcome:
        try:
            response = await self.request(
                "POST", self._account_url("/Messages.json"), data=self._form(message), auth=self._auth(),
            )
        except ProviderError as transport_error:
            logger.debug("twilio: message %s not sent: %s", message.ref, transport_error)
            return SendOutcome(ref=message.ref, error=transport_error)
        status = response.status_code
        if not response.is_success:
            rejection = error_from_response(response)
            logger.debug("twilio: message %s rejected: %s", message.ref, rejection)
            return SendOutcome(ref=message.ref, error=rejection, http_status=status)
        resource = json_object(response) or {}
        sid = resource.get("sid")
        if not isinstance(sid, str) or not sid:
            unknown = OutcomeUnknownError(
                f"Twilio answered HTTP {status} but its answer has no message SID: "
                f"{snippet(response.text) or '(empty body)'}",
                http_status=status,
            )
            logger.debug("twilio: message %s outcome unknown: %s", message.ref, unknown)
            return SendOutcome(ref=message.ref, error=unknown, http_status=status)
        provider_status = resource.get("status")
        logger.debug("twilio: message %s accepted as %s (%s)", message.ref, sid, provider_status)
        return SendOutcome(
            ref=message.ref, provider_message_id=sid,
            provider_status=provider_status if isinstance(provider_status, str) else None,
            http_status=status,
        )

    def _form(self, message: OutboundMessage) -> dict[str, str]:
        """The CreateMessage parameters. A Messaging Service wins over From, which is then left out."""
        form = {"To": message.to}
        service_sid = self.setting("messaging_service_sid").strip()
        if service_sid:
            form["MessagingServiceSid"] = service_sid
        else:
            form["From"] = (message.sender or self.setting("sender")).strip()
        form["Body"] = message.body
        if message.status_callback_url:
            form["StatusCallback"] = message.status_callback_url
        if validity_period := self.setting("validity_period").strip():
            form["ValidityPeriod"] = validity_period
        if self.flag("smart_encoding"):
            form["SmartEncoded"] = "true"
        return form

    # Connection check -------------------------------------------------------------------------

    async def check_connection(self) -> ConnectionCheck:
        refused = {401: "Twilio refused the credentials (HTTP 401): check the Account SID, API key SID and auth token"}
        account = await self.account_check("Twilio", "account check", self._account_url(".json"), error_from_response,
                                           refused=refused, auth=self._auth())
        if isinstance(account, ConnectionCheck):
            return account
        name = account.get("friendly_name") or self.setting("account_sid")
        state = account.get("status") or "unknown"
        if state != "active":
            return ConnectionCheck(ok=False, detail=f"Account '{name}' is {state}, not active")
        detail = f"Account '{name}' ({account.get('type') or 'unknown type'}), active"
        if balance := await self._balance():
            detail += f", balance {balance}"
        return ConnectionCheck(ok=True, detail=detail)

    async def _balance(self) -> str | None:
        """'12.34 USD', or None when Twilio gives no balance (subaccounts) or the call fails."""
        try:
            response = await self.request("GET", self._account_url("/Balance.json"), auth=self._auth())
        except ProviderError:
            return None
        payload = json_object(response) if response.is_success else None
        if not payload or payload.get("balance") in (None, ""):
            return None
        return f"{payload['balance']} {payload.get('currency') or ''}".strip()

    # Receipts and replies ------------------------------------------------------------------------

    def verify_callback(self, request: CallbackRequest) -> None:
        """X-Twilio-Signature over the public URL and the form parameters (or bodySHA256 for JSON)."""
        signature = request.header("x-twilio-signature")
        if not signature:
            raise CallbackRejected(401, "no X-Twilio-Signature header")
        token = self.setting("signing_auth_token") or (
            "" if self.setting("api_key_sid") else self.setting("auth_token"))
        if not token:
            raise CallbackRejected(403, "an API key is used: set 'Auth token for webhooks' to verify Twilio's signatures")
        params = request.form() if request.method.upper() == "POST" else {}
        if not verify_signature(request.url, params, signature, token, body=request.body):
            raise CallbackRejected(403, "the X-Twilio-Signature does not match this request")

    def parse_status_callback(self, request: CallbackRequest) -> list[StatusReport]:
        params = request.params()
        sid = params.get("MessageSid") or params.get("SmsSid")
        status = params.get("MessageStatus") or params.get("SmsStatus")
        if not sid or not status:
            raise CallbackRejected(400, "a status callback needs MessageSid and MessageStatus")
        return [status_report(sid, status, error_code=params.get("ErrorCode"), recipient=params.get("To"),
                              at=parse_smpp_time(params.get("RawDlrDoneDate")))]

    def parse_inbound_callback(self, request: CallbackRequest) -> list[InboundReport]:
        params = request.params()
        sender, body = params.get("From"), params.get("Body")
        if not sender or body is None:
            raise CallbackRejected(400, "an inbound message needs From and Body")
        return [InboundReport(
            provider_message_id=params.get("MessageSid") or params.get("SmsSid"), sender=sender,
            recipient=params.get("To"), text=body, keyword=params.get("OptOutType") or None,
        )]

    def callback_answer(self, kind: str) -> tuple[int, str, bytes]:
        if kind == "inbound":  # Twilio expects TwiML; an empty Response sends no reply
            return 200, "text/xml", b'<?xml version="1.0" encoding="UTF-8"?><Response/>'
        return super().callback_answer(kind)

    async def fetch_statuses(self, provider_message_ids: Sequence[str]) -> list[StatusReport]:
        reports = []
        for sid in provider_message_ids:
            resource = await self.lookup(self._account_url(f"/Messages/{sid}.json"), error_from_response,
                                         auth=self._auth())
            if isinstance(resource, dict) and resource.get("sid") and resource.get("status"):
                reports.append(_report_from_resource(resource))
        return reports

    async def poll_statuses(self, cursor: str | None) -> PollPage:
        """Outbound messages sent since the cursor's day (Twilio filters by day), newest pages
        first; every status is reported again until the day rolls over (the receipts service
        ignores what it already knows)."""
        page = await self._list_page(cursor, {})
        reports = tuple(_report_from_resource(m) for m in page.messages if m.get("direction", "").startswith("outbound"))
        return PollPage(reports, page.cursor, page.more)

    async def poll_inbound(self, cursor: str | None) -> PollPage:
        """Messages received by the sender number since the cursor's day."""
        sender = self.setting("sender").strip()
        if not sender.startswith("+"):
            raise ConfigurationError("polling replies needs From set to a Twilio number in E.164")
        page = await self._list_page(cursor, {"To": sender})
        reports = tuple(
            InboundReport(provider_message_id=m.get("sid"), sender=str(m.get("from") or ""), recipient=m.get("to"),
                          text=str(m.get("body") or ""), at=parse_timestamp(m.get("date_sent"), RFC2822))
            for m in page.messages if m.get("direction") == "inbound"
        )
        return PollPage(reports, page.cursor, page.more)

    async def _list_page(self, cursor: str | None, filters: dict[str, str]) -> _ListPage:
        state = load_cursor(cursor)
        since = state.get("since") or (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")
        if state.get("next"):
            url = f"{self.base_url}{state['next']}"
            params: dict[str, str] | None = None
        else:
            url, params = self._account_url("/Messages.json"), {**filters, "DateSent>": since, "PageSize": "1000"}
        response = await self.request("GET", url, params=params, auth=self._auth())
        if not response.is_success:
            raise error_from_response(response)
        listing = json_object(response) or {}
        messages = [m for m in listing.get("messages") or [] if isinstance(m, dict)]
        next_uri = listing.get("next_page_uri")
        if next_uri:
            return _ListPage(messages, json.dumps({"since": since, "next": next_uri}), True)
        # Done with this walk: the next one starts a day back, so late statuses are still seen.
        today = datetime.now(UTC) - timedelta(days=1)
        return _ListPage(messages, json.dumps({"since": max(since, today.strftime("%Y-%m-%d"))}), False)

    # Prices ------------------------------------------------------------------------------------

    @property
    def pricing_base_url(self) -> str:
        """Twilio's Pricing API host for this account's API host: https://api.twilio.com (or a
        regional api.<edge>.twilio.com) -> https://pricing.twilio.com (pricing.<edge>.twilio.com);
        any other base URL (a proxy, a test double) serves the Pricing API paths itself."""
        parts = urlsplit(self.base_url)
        host = parts.hostname or ""
        if host.startswith("api.") and (host == "api.twilio.com" or host.endswith(".twilio.com")):
            return f"{parts.scheme}://pricing.{host[4:]}" + (f":{parts.port}" if parts.port else "")
        return self.base_url

    async def fetch_prices(self, country: str) -> list[ProviderPrice]:
        """Outbound SMS prices to one country (Pricing API v1, GET /v1/Messaging/Countries/{ISO}),
        one per sender type: each carrier's `prices[]` entry (`number_type`, `current_price`) is
        read as local/mobile/national -> long_code, toll free -> toll_free, shortcode -> short_code,
        and the highest carrier's current price is taken per type (what a message may cost at
        most). Raises ConfigurationError when Twilio refuses the credentials, PermanentError when it
        has no prices for the country."""
        iso = country.strip().upper()
        url = f"{self.pricing_base_url}/v1/Messaging/Countries/{iso}"
        response = await self.request("GET", url, auth=self._auth())
        if response.status_code == 401:
            raise ConfigurationError("Twilio refused the credentials (HTTP 401): check the Account SID, "
                                     "API key SID and auth token", http_status=401)
        if response.status_code == 404:
            if json_object(response) is None:
                raise ConfigurationError(f"no Twilio Pricing API at {url} (HTTP 404): check the base URL", http_status=404)
            raise PermanentError(f"Twilio has no messaging prices for {iso}", http_status=404)
        if not response.is_success:
            raise error_from_response(response)
        payload = json_object(response)
        if payload is None:
            raise PermanentError(f"Twilio's price list for {iso} is not JSON: {snippet(response.text)}")
        currency = str(payload.get("price_unit") or "USD").strip().upper()
        highest: dict[str, float] = {}
        for carrier in payload.get("outbound_sms_prices") or ():
            for entry in (carrier.get("prices") or ()) if isinstance(carrier, Mapping) else ():
                if not isinstance(entry, Mapping):
                    continue
                sender_type = PRICING_NUMBER_TYPES.get(_number_type(entry.get("number_type")))
                amount = _price_number(entry.get("current_price"), entry.get("base_price"))
                if sender_type is None or amount is None:
                    continue
                highest[sender_type] = max(amount, highest.get(sender_type, amount))
        return [ProviderPrice(iso, sender_type, amount, currency, "segment") for sender_type, amount in sorted(highest.items())]

    # Helpers ----------------------------------------------------------------------------------

    def _account_url(self, suffix: str) -> str:
        return f"{self.base_url}/{API_VERSION}/Accounts/{self.setting('account_sid').strip()}{suffix}"

    def _auth(self) -> httpx.BasicAuth:
        username = self.setting("api_key_sid").strip() or self.setting("account_sid").strip()
        return httpx.BasicAuth(username, self.setting("auth_token"))


class _ListPage:
    def __init__(self, messages: list[dict[str, Any]], cursor: str, more: bool) -> None:
        self.messages, self.cursor, self.more = messages, cursor, more


# The Pricing API's number types -> our sender types.
PRICING_NUMBER_TYPES = {
    "local": "long_code", "mobile": "long_code", "national": "long_code",
    "toll free": "toll_free", "tollfree": "toll_free",
    "shortcode": "short_code", "short code": "short_code",
}


def _number_type(value: Any) -> str:
    return " ".join(str(value or "").lower().replace("-", " ").replace("_", " ").split())


def _price_number(*values: Any) -> float | None:
    """The first of the values that reads as a finite, non-negative price."""
    for value in values:
        try:
            amount = abs(float(str(value).strip()))
        except (TypeError, ValueError):
            continue
        if math.isfinite(amount):
            return amount
    return None


def status_report(sid: str, status: str, *, error_code: str | None = None, recipient: str | None = None,
                  at: datetime | None = None) -> StatusReport:
    """A Twilio status (and its ErrorCode) read as a receipt; an unknown status maps to None."""
    state = STATUS_MAP.get(status)
    if state is None:
        logger.info("twilio: ignoring unknown status %r of %r", status, sid)
    error_kind, reason = None, None
    code = str(error_code) if error_code not in (None, "", "0") else None
    if code and state in ("failed", "undelivered"):
        rule = ERROR_RULES.find(int(code) if code.isdigit() else code) or ErrorRule(
            code, ErrorKind.PERMANENT, f"Twilio error {code}")
        error_kind, reason = rule.kind, rule.reason
    return StatusReport(provider_message_id=sid, provider_status=status, state=state, at=at, recipient=recipient,
                        error_code=code, error_kind=error_kind, reason=reason)


def _report_from_resource(resource: Mapping[str, Any]) -> StatusReport:
    report = status_report(str(resource["sid"]), str(resource.get("status") or ""),
                           error_code=str(resource["error_code"]) if resource.get("error_code") else None,
                           recipient=resource.get("to"), at=parse_timestamp(resource.get("date_updated"), RFC2822))
    price = parse_price(resource.get("price"))
    if price is None:
        return report
    return dataclasses.replace(report, price=price, price_currency=currency_code(resource.get("price_unit")))


def error_from_response(response: httpx.Response) -> ProviderError:
    """Classify an error answer: by Twilio's code when the table knows it, else by HTTP status."""
    payload = json_object(response)
    if payload is None or ("code" not in payload and "message" not in payload):
        body = snippet(response.text)
        message = f"HTTP {response.status_code} from Twilio: {body}" if body else ""
        return Provider.classify_http(response, message)
    raw_code = payload.get("code")
    code = str(raw_code) if raw_code not in (None, "") else None
    twilio_message = str(payload.get("message") or "").strip()
    rule = ERROR_RULES.find(int(code) if code and code.isdigit() else code)
    if rule is None:
        return Provider.classify_http(response, twilio_message, code=code)
    return rule.error(twilio_message, said="Twilio", code=code, http_status=response.status_code, response=response)


# --- webhook signatures -----------------------------------------------------------------------

Params = Mapping[str, str] | Mapping[str, Sequence[str]]


def compute_signature(url: str, params: Params | None, auth_token: str) -> str:
    """X-Twilio-Signature for `url` and form `params`: the URL, then each name in sorted order
    followed by each of its distinct values in sorted order, HMAC-SHA1 with the auth token, base64.
    Multi-valued params may be given as sequences or as a multi-dict with `getlist`."""
    data = url
    for name in sorted(set(params or {})):
        for value in sorted(set(_values(params or {}, name))):
            data += name + value
    digest = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_signature(
    url: str, params: Params | None, signature: str, auth_token: str, *, body: str | bytes | None = None,
) -> bool:
    """Whether `signature` is Twilio's for this request. `url` is the public URL Twilio called,
    query string included; it is tried with and without an explicit port because Twilio signs
    either form. For JSON webhooks pass the raw `body`: the URL's bodySHA256 must match it and the
    signature then covers the URL alone."""
    if not signature or not auth_token:
        return False
    parts = urlsplit(url)
    body_hash = parse_qs(parts.query).get("bodySHA256")
    if body_hash and body is not None:
        raw = body.encode("utf-8") if isinstance(body, str) else body
        if not same_secret(hashlib.sha256(raw).hexdigest(), body_hash[0]):
            return False
        params = {}
    candidates = dict.fromkeys((url, _without_port(parts), _with_port(parts)))
    return any(same_secret(compute_signature(candidate, params, auth_token), signature) for candidate in candidates)


def _values(params: Params, name: str) -> Iterable[str]:
    getlist = getattr(params, "getlist", None)
    if callable(getlist):
        return [str(value) for value in getlist(name)]
    value = params[name]
    return [value] if isinstance(value, str) else list(value)


def _port(parts: SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:
        return None


def _without_port(parts: SplitResult) -> str:
    if _port(parts) is None:
        return parts.geturl()
    return parts._replace(netloc=parts.netloc.rsplit(":", 1)[0]).geturl()


def _with_port(parts: SplitResult) -> str:
    if _port(parts) is not None:
        return parts.geturl()
    default = 443 if parts.scheme == "https" else 80
    return parts._replace(netloc=f"{parts.netloc}:{default}").geturl()
