"""Textlocal (UK api.txtlocal.com, India api.textlocal.in): a form POST to /send/ with the API key,
comma-separated numbers without '+', the message, an optional sender, the receipt URL (with our
token) and `custom`, which Textlocal echoes in every delivery receipt. Messages with the same text,
sender and receipt URL go in one request; each recipient's outcome is read from `messages[]` by
recipient. Receipts carry only the number and `custom` (no message id), so our provider message id
is `f"{custom}:{number digits}"`, built the same way from a send and from a receipt. Failures
(`{"status": "failure", "errors": [{code, message}]}`) map through ERROR_CODES; the balance call is
the connection check; receipts and inbox notifications are verified by a token in the URL; replies
are polled with get_inboxes / get_messages and a min_time cursor.

Confirmed from Textlocal's API doc pages: /send/ parameters (apikey, numbers, message, sender,
receipt_url, custom, test), receipt fields (number, status D/U/P/I/E/?, customID, datetime), inbox
notification fields (inNumber, sender, keyword, content), status_message / status_batch,
get_inboxes / get_messages parameters, error codes 4, 5, 6, 7, 32, 43, 44, 51 and warning 3.
Unconfirmed: the exact `unicode=true` flag on /send/ (bulk_json documents a "unicode" parameter),
the shape of the send answer's messages[] and warnings[], the /balance/ answer, the get_inboxes /
get_messages answers, error codes 1–3, 8–11, 33, 34, 80, 191, 192, the time zone of receipt
datetimes (read as the host's local time), and Textlocal's limit on numbers per request.

Prices: the send answer's `cost` is the credits the whole request used (Textlocal accounts hold
credits, not money); each queued number of a request carries an equal share, recorded with the
CREDITS currency. A test-mode send is charged nothing, so it records no price.

Not used: /bulk_json/ (different texts per recipient; its answer is undocumented), and
status_message / status_batch, because they need Textlocal's message or batch id, which a receipt
never carries, so receipts could not be matched to ids built from them."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from smsconsole.providers.base import (
    CREDITS,
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
from smsconsole.providers.common import digits, e164, json_object, load_cursor, parse_price, parse_timestamp, snippet

logger = logging.getLogger(__name__)

HOSTS: dict[str, str] = {"uk": "https://api.txtlocal.com", "india": "https://api.textlocal.in"}
ZONES: dict[str, str] = {"uk": "Europe/London", "india": "Asia/Kolkata"}  # receipt datetimes are local [U]
INBOX_PAGE = 1000

# Receipt status → our state (a failed one is classified by its "report" rule). P (pending) says
# the network holds the message; ? says nothing new.
STATUS_MAP: dict[str, str | None] = {"D": "delivered", "U": "undelivered", "P": "sent", "I": "failed",
                                     "E": "undelivered", "?": None}

ERROR_RULES = ErrorRules(
    # Textlocal error code. A failure answer fails every number of the request.
    ErrorRule("1", ErrorKind.CONFIGURATION, "no command specified (check the base URL)"),
    ErrorRule("2", ErrorKind.CONFIGURATION, "unrecognised command (check the base URL)"),
    ErrorRule("3", ErrorKind.CONFIGURATION,
              "Textlocal refused the login (check the API key and the UK / India region)"),
    ErrorRule("4", ErrorKind.PERMANENT, "no recipients specified"),
    ErrorRule("5", ErrorKind.PERMANENT, "the message is empty"),
    ErrorRule("6", ErrorKind.PERMANENT, "the message is too long"),
    ErrorRule("7", ErrorKind.CONFIGURATION, "the Textlocal account has insufficient credits"),
    ErrorRule("8", ErrorKind.PERMANENT, "invalid schedule date"),
    ErrorRule("9", ErrorKind.PERMANENT, "the schedule date is in the past"),
    ErrorRule("10", ErrorKind.CONFIGURATION, "invalid group ID"),
    ErrorRule("11", ErrorKind.PERMANENT, "the selected group is empty"),
    ErrorRule("32", ErrorKind.PERMANENT, "invalid number format"),
    ErrorRule("33", ErrorKind.PERMANENT, "too many numbers in one request"),
    ErrorRule("34", ErrorKind.PERMANENT, "both a group ID and numbers were given"),
    ErrorRule("43", ErrorKind.CONFIGURATION, "invalid sender name (it must be approved for the account)"),
    ErrorRule("44", ErrorKind.CONFIGURATION, "no sender name specified"),
    ErrorRule("51", ErrorKind.PERMANENT, "no valid numbers specified"),
    ErrorRule("80", ErrorKind.CONFIGURATION, "the message does not match an approved (DLT) template"),
    ErrorRule("191", ErrorKind.PERMANENT, "the schedule time is outside the allowed window"),
    ErrorRule("192", ErrorKind.TRANSIENT,
              "messages cannot be sent at this time of day (promotional hours); retry later"),
    # Warning code of a successful send, for the numbers it lists.
    ErrorRule("3", ErrorKind.PERMANENT, "the recipient number is invalid", on="warning"),
    # A failed receipt's status.
    ErrorRule("U", ErrorKind.TRANSIENT, "the network could not deliver the message", on="report"),
    ErrorRule("I", ErrorKind.PERMANENT, "the recipient number is invalid", on="report"),
    ErrorRule("E", ErrorKind.TRANSIENT, "the message expired before it could be delivered", on="report"),
    # Words of an error or warning that say the recipient opted out, whatever its code.
    ErrorRule(r"opt[\s_-]*(?:ed)?[\s_-]*out|unsubscribed|\bdnd\b|do not disturb|blacklist", ErrorKind.PERMANENT,
              "the recipient opted out or is on a do-not-disturb list", on="words"),
)

_API_KEY = re.compile(r"[A-Za-z0-9+/=_\-]{16,128}")
_UK_SENDER = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 ]{3,11}|\d{3,13}")
_INDIA_SENDER = re.compile(r"[A-Za-z]{6}|\d{6}")


def _api_key(value: str) -> str | None:
    return None if _API_KEY.fullmatch(value) else "must be a Textlocal API key (16–128 letters, digits, + / = - _)"


class TextlocalProvider(Provider):
    kind = "textlocal"
    display_name = "Textlocal"
    description = "Textlocal UK or India: same-text batches in one request, receipts and replies by URL token."
    default_base_url = HOSTS["uk"]
    config_fields = (
        ConfigField(
            "region", "Region", kind="choice", choices=tuple(HOSTS), default="uk",
            help="uk sends through api.txtlocal.com, india through api.textlocal.in (accounts are not shared)",
        ),
        ConfigField(
            "api_key", "API key", required=True, secret=True, validator=_api_key, placeholder="env:TEXTLOCAL_API_KEY",
            help="Created under Settings → API Keys in Messenger; env:NAME reads it from the environment",
        ),
        ConfigField(
            "sender", "Sender", placeholder="ACME",
            help="UK: 3–11 letters, digits or spaces (or a number up to 13 digits); India: the 6-character "
                 "approved DLT header (leave empty on a promotional account)",
        ),
        ConfigField(
            "test_mode", "Test mode", kind="bool", default="false",
            help="Send test=true: Textlocal checks the request but sends nothing and charges nothing",
        ),
        WEBHOOK_TOKEN_FIELD,
    )
    capabilities = Capabilities(
        max_batch=1000, max_body_chars=765, status_webhook=True, status_polling=False,
        inbound_webhook=True, inbound_polling=True, signature=False, dlt=False,
    )

    def __init__(self, config: Mapping[str, str], *, client: httpx.AsyncClient | None = None,
                 base_url: str | None = None) -> None:
        region = str(config.get("region") or "uk")
        super().__init__(config, client=client, base_url=base_url or HOSTS.get(region, HOSTS["uk"]))

    @classmethod
    def check_config(cls, values: Mapping[str, str]) -> list[tuple[str, str]]:
        sender = (values.get("sender") or "").strip()
        if not sender:
            return []
        if (values.get("region") or "uk") == "india":
            if not _INDIA_SENDER.fullmatch(sender):
                return [("sender", "in India must be the 6-character approved DLT header (6 letters, or 6 digits)")]
        elif not _UK_SENDER.fullmatch(sender):
            return [("sender", "must be 3–11 letters, digits or spaces with a letter, or a number of 3–13 digits")]
        return []

    # Sending ----------------------------------------------------------------------------------

    async def send(self, messages: Sequence[OutboundMessage]) -> list[SendOutcome]:
        outcomes: dict[int, SendOutcome] = {}
        for group in self._groups(messages):
            for index, outcome in zip(group, await self._send_group([messages[i] for i in group]), strict=True):
                outcomes[index] = outcome
        return [outcomes[i] for i in range(len(messages))]

    def _groups(self, messages: Sequence[OutboundMessage]) -> list[list[int]]:
        """Indexes of messages that can share one request: same text, sender, encoding and receipt
        URL, each number once, at most max_batch numbers."""
        groups: list[list[int]] = []
        open_groups: dict[tuple[Any, ...], list[int]] = {}
        for index, message in enumerate(messages):
            key = (message.body, self._sender(message), message.encoding, message.status_callback_url)
            group = open_groups.get(key)
            if group is None or len(group) >= self.max_batch or any(
                    digits(messages[i].to) == digits(message.to) for i in group):
                group = []
                groups.append(group)
                open_groups[key] = group
            group.append(index)
        return groups

    async def _send_group(self, group: list[OutboundMessage]) -> list[SendOutcome]:
        custom = group[0].ref
        try:
            response = await self.request("POST", f"{self.base_url}/send/", data=self._form(group, custom))
        except ProviderError as transport_error:
            logger.debug("textlocal: %d message(s) not sent: %s", len(group), transport_error)
            return [SendOutcome(ref=m.ref, error=transport_error) for m in group]
        status = response.status_code
        if not response.is_success:
            rejection = Provider.classify_http(response, _http_message(response))
            return [SendOutcome(ref=m.ref, error=rejection, http_status=status) for m in group]
        answer = json_object(response)
        if answer is not None and answer.get("status") == "failure":
            failure = error_from_answer(answer, response)
            logger.debug("textlocal: %d message(s) rejected: %s", len(group), failure)
            return [SendOutcome(ref=m.ref, error=failure, http_status=status) for m in group]
        queued = answer.get("messages") if answer is not None and answer.get("status") == "success" else None
        if not isinstance(queued, list):
            unknown = OutcomeUnknownError(
                f"Textlocal answered HTTP {status} without a list of queued messages: "
                f"{snippet(response.text) or '(empty body)'}", http_status=status,
            )
            return [SendOutcome(ref=m.ref, error=unknown, http_status=status) for m in group]
        accepted = {digits(str(m.get("recipient") or "")) for m in queued if isinstance(m, dict) and m.get("id")}
        warned = _warnings(answer)
        cost = None if answer.get("test_mode") else parse_price(answer.get("cost"))
        share = round(cost / len(accepted), 6) if cost is not None and accepted else None
        outcomes = []
        for message in group:
            number = digits(message.to)
            if number in accepted:
                outcomes.append(SendOutcome(ref=message.ref, provider_message_id=f"{custom}:{number}",
                                            provider_status="test" if answer.get("test_mode") else None,
                                            http_status=status, price=share,
                                            price_currency=CREDITS if share is not None else None))
                continue
            error = warned.get(number) or PermanentError(
                "Textlocal did not queue this number (dropped as invalid, duplicate or opted out)", http_status=status)
            outcomes.append(SendOutcome(ref=message.ref, error=error, http_status=status))
        logger.debug("textlocal: batch %s queued %d of %d", answer.get("batch_id"), len(accepted), len(group))
        return outcomes

    def _form(self, group: list[OutboundMessage], custom: str) -> dict[str, str]:
        first = group[0]
        form = {"apikey": self.setting("api_key"), "numbers": ",".join(digits(m.to) for m in group),
                "message": first.body}
        if sender := self._sender(first):
            form["sender"] = sender
        if first.status_callback_url:
            form["receipt_url"] = self.callback_url(first.status_callback_url)
        form["custom"] = custom
        if first.encoding == "UCS-2":
            form["unicode"] = "true"
        if self.flag("test_mode"):
            form["test"] = "true"
        return form

    def _sender(self, message: OutboundMessage) -> str:
        return (message.sender or self.setting("sender")).strip()

    # Connection check -------------------------------------------------------------------------

    async def check_connection(self) -> ConnectionCheck:
        try:
            response = await self.request("POST", f"{self.base_url}/balance/", data={"apikey": self.setting("api_key")})
        except ProviderError as error:
            return ConnectionCheck(ok=False, detail=f"Textlocal balance check failed: {error}")
        answer = json_object(response)
        if answer is not None and answer.get("status") == "failure":
            error = error_from_answer(answer, response)
            if error.code == "3":
                return ConnectionCheck(ok=False, detail="Textlocal refused the API key (error 3, invalid login): check "
                                                        "the API key and that the region (UK / India) is the account's")
            return ConnectionCheck(ok=False, detail=f"Textlocal balance check failed: {error}")
        if not response.is_success:
            return ConnectionCheck(ok=False, detail="Textlocal balance check failed: "
                                                    f"{Provider.classify_http(response, _http_message(response))}")
        balance = answer.get("balance") if answer is not None else None
        if not isinstance(balance, dict):
            return ConnectionCheck(ok=False, detail=f"Textlocal answered HTTP {response.status_code} with an "
                                                    f"unreadable body: {snippet(response.text) or '(empty body)'}")
        region = "India" if self.setting("region") == "india" else "UK"
        return ConnectionCheck(ok=True, detail=f"Textlocal {region}: {balance.get('sms', '?')} SMS credits")

    # Receipts and replies ------------------------------------------------------------------------

    def parse_status_callback(self, request: CallbackRequest) -> list[StatusReport]:
        params = request.params()
        number, status = params.get("number"), params.get("status")
        custom = params.get("customID") or params.get("customId") or params.get("custom")
        if not number or not status or not digits(number):
            raise CallbackRejected(400, "a Textlocal receipt needs number and status")
        if not custom:
            raise CallbackRejected(400, "a Textlocal receipt without customID cannot be matched to a message")
        return [self._report(f"{custom}:{digits(number)}", status, number, params.get("datetime"))]

    def _report(self, message_id: str, status: str, number: str, when: str | None) -> StatusReport:
        state = STATUS_MAP.get(status)
        if status not in STATUS_MAP:
            logger.info("textlocal: ignoring unknown status %r of %r", status, message_id)
        failure = ERROR_RULES.find(status, "report")
        return StatusReport(
            provider_message_id=message_id, provider_status=status, state=state, at=self._datetime(when),
            recipient=e164(digits(number)), error_code=status if failure else None,
            error_kind=failure.kind if failure else None, reason=failure.reason if failure else None,
        )

    def parse_inbound_callback(self, request: CallbackRequest) -> list[InboundReport]:
        params = request.params()
        sender, content = params.get("sender"), params.get("content")
        if not sender or content is None:
            raise CallbackRejected(400, "a Textlocal inbox notification needs sender and content")
        return [InboundReport(provider_message_id=None, sender=e164(digits(sender)) or sender,
                              recipient=e164(digits(params.get("inNumber") or "")),
                              text=content, keyword=params.get("keyword") or None)]

    async def poll_inbound(self, cursor: str | None) -> PollPage:
        """Messages in every inbox since each inbox's cursor time (min_time is inclusive, so the
        ids already seen at that second are skipped). Without a cursor, start from now."""
        state = _cursor(cursor)
        now = int(datetime.now(UTC).timestamp())
        reports: list[InboundReport] = []
        more = False
        for inbox in await self._inboxes():
            inbox_id = str(inbox.get("id"))
            mark = state.get(inbox_id) or {"since": now, "seen": []}
            listing = await self._call("get_messages", {"inbox_id": inbox_id, "min_time": str(mark["since"]),
                                                        "sort_order": "asc", "limit": str(INBOX_PAGE)})
            found = [m for m in listing.get("messages") or [] if isinstance(m, dict) and m.get("id")]
            new = [m for m in found if str(m["id"]) not in mark["seen"]]
            reports += [InboundReport(provider_message_id=str(m["id"]), sender=e164(digits(str(m.get("number") or "")))
                                      or str(m.get("number") or ""), recipient=e164(digits(str(inbox.get("number") or ""))),
                                      text=str(m.get("content") or ""), at=self._datetime(m.get("date")))
                        for m in new]
            if found:
                stamps = {str(m["id"]): self._stamp(m.get("date"), mark["since"]) for m in found}
                latest = max(stamps.values())
                at_latest = [i for i, stamp in stamps.items() if stamp == latest]
                seen = sorted({*mark["seen"], *at_latest}) if latest == mark["since"] else sorted(at_latest)
                mark = {"since": latest, "seen": seen}
            more = more or len(found) >= INBOX_PAGE
            state[inbox_id] = mark
        return PollPage(tuple(reports), json.dumps(state, sort_keys=True), more)

    async def _inboxes(self) -> list[dict[str, Any]]:
        listing = await self._call("get_inboxes", {})
        return [i for i in listing.get("inboxes") or [] if isinstance(i, dict) and i.get("id") is not None]

    async def _call(self, command: str, params: dict[str, str]) -> dict[str, Any]:
        response = await self.request("POST", f"{self.base_url}/{command}/",
                                      data={"apikey": self.setting("api_key"), **params})
        answer = json_object(response)
        if answer is not None and answer.get("status") == "failure":
            raise error_from_answer(answer, response)
        if not response.is_success:
            raise Provider.classify_http(response, _http_message(response))
        if answer is None:
            raise OutcomeUnknownError(f"Textlocal answered {command} unreadably: {snippet(response.text) or '(empty)'}")
        return answer

    def _stamp(self, value: Any, fallback: int) -> int:
        moment = self._datetime(value)
        return int(moment.timestamp()) if moment else fallback

    def _datetime(self, value: Any) -> datetime | None:
        """A Textlocal 'YYYY-MM-DD HH:MM:SS' in the host's local time, as UTC."""
        zone = ZoneInfo(ZONES.get(self.setting("region"), ZONES["uk"]))
        return parse_timestamp(value, "%Y-%m-%d %H:%M:%S", zone=zone)


def _warnings(answer: Mapping[str, Any]) -> dict[str, ProviderError]:
    """Numbers a successful send refused, from its warnings[] ({code, message, numbers})."""
    refused: dict[str, ProviderError] = {}
    for warning in answer.get("warnings") or []:
        if not isinstance(warning, dict):
            continue
        code = str(warning.get("code") or "")
        text = " ".join(str(warning.get("message") or "").split())
        known = ERROR_RULES.find(int(code), "warning") if code.isdigit() else None
        if opted_out := ERROR_RULES.search(text):
            error: ProviderError = opted_out.error(text, said="Textlocal", code=code or None)
        elif known:
            error = known.error(text, said="Textlocal", code=code)
        else:
            error = PermanentError(f"Textlocal refused this number: {text or 'warning ' + code}", code=code or None)
        numbers = warning.get("numbers")
        for number in numbers if isinstance(numbers, list) else str(numbers or "").split(","):
            if digits(str(number)):
                refused[digits(str(number))] = error
    return refused


def error_from_answer(answer: Mapping[str, Any], response: httpx.Response) -> ProviderError:
    """The first error of a failure answer, classified by ERROR_RULES (opt-outs are permanent)."""
    errors = [e for e in answer.get("errors") or [] if isinstance(e, dict)]
    first = errors[0] if errors else {}
    code = str(first.get("code")) if first.get("code") is not None else None
    text = " ".join(str(first.get("message") or "").split())
    if text and (opted_out := ERROR_RULES.search(text)):
        return opted_out.error(text, said="Textlocal", code=code, http_status=response.status_code)
    known = ERROR_RULES.find(int(code)) if code and code.isdigit() else None
    if known is None:
        return PermanentError(f"Textlocal refused the request: {text or snippet(response.text)}", code=code,
                              http_status=response.status_code)
    return known.error(text, said="Textlocal", code=code, http_status=response.status_code)


def _http_message(response: httpx.Response) -> str:
    body = snippet(response.text)
    return f"HTTP {response.status_code} from Textlocal: {body}" if body else ""


def _cursor(cursor: str | None) -> dict[str, dict[str, Any]]:
    return {str(k): v for k, v in load_cursor(cursor).items()
            if isinstance(v, dict) and isinstance(v.get("since"), int) and isinstance(v.get("seen"), list)}
