"""BulkSMS.com JSON REST API v1: one JSON POST to /v1/messages carries up to 100 SubmissionEntry
objects (each recipient its own entry, so bodies may differ) with HTTP Basic auth by username and
password or API token id and secret; the 201 answer is an array of Message objects, matched back
to our messages by `to` and `userSuppliedId` (our ref). A `deduplication-id` derived from the refs
makes a resend of the same submission safe for ~12 h. Problem-JSON errors map onto the error
family; status and inbound webhooks (JSON arrays of Message, `[]` as the registration ping) are
verified by a secret token in the URL, as BulkSMS advises; statuses and replies can also be polled.

Confirmed from the vendor OpenAPI (developer.bulksms.com/json/v1/swagger.yaml): endpoints, body
and Message shapes, status types and subtypes, 400/403/404 problem types, webhook behaviour.
Unconfirmed: the 401 problem type for bad credentials (handled by HTTP status), the `id>` filter
operator (the docs mention it beside `id<`), rate limits (429 is read as the usual Retry-After).

Prices: a Message's `creditCost` (empty in the submit answer, filled in webhooks and lookups) is
what it cost in BulkSMS credits, recorded with the CREDITS currency."""

from __future__ import annotations

import json
import logging
import re
import zlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

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
    PollPage,
    Provider,
    ProviderError,
    SendOutcome,
    StatusReport,
)
from smsconsole.providers.common import (
    digits,
    e164,
    json_body,
    load_cursor,
    parse_price,
    parse_timestamp,
    sender_validator,
    snippet,
)

logger = logging.getLogger(__name__)

API_VERSION = "v1"
MAX_USER_SUPPLIED_ID = 20
LIST_LIMIT = 1000

# status.type → our state. ACCEPTED and SCHEDULED are BulkSMS holding the message; FAILED is read
# with its subtype (the "report" rules of ERROR_RULES); UNKNOWN says nothing new.
STATUS_MAP: dict[str, str | None] = {
    "ACCEPTED": "sent",
    "SCHEDULED": "sent",
    "SENT": "sent",
    "DELIVERED": "delivered",
    "UNKNOWN": None,
    "FAILED": "failed",
}

ERROR_RULES = ErrorRules(
    # Problem-JSON `type` (the part after '#').
    ErrorRule("bad-request", ErrorKind.PERMANENT, "BulkSMS rejected the submission as invalid"),
    ErrorRule("insufficient-credits", ErrorKind.CONFIGURATION, "the BulkSMS account has too few credits"),
    ErrorRule("not-found", ErrorKind.CONFIGURATION, "BulkSMS does not know this resource (check the base URL)"),
    ErrorRule("authentication-failed", ErrorKind.CONFIGURATION, "BulkSMS refused the credentials"),
    ErrorRule("unauthorized", ErrorKind.CONFIGURATION, "BulkSMS refused the credentials"),
    ErrorRule("forbidden", ErrorKind.CONFIGURATION, "BulkSMS does not allow this for the account"),
    ErrorRule("too-many-requests", ErrorKind.TRANSIENT, "too many requests to BulkSMS; not processed, safe to retry"),
    ErrorRule("internal-server-error", ErrorKind.TRANSIENT, "BulkSMS had an internal error"),
    ErrorRule("service-unavailable", ErrorKind.TRANSIENT, "BulkSMS is temporarily unavailable"),
    # FAILED.<subtype> of a message: a transient one reads as undelivered, a permanent one as failed.
    # BLOCKED is the recipient having replied STOP (or an administrator blocking the number).
    ErrorRule("EXPIRED", ErrorKind.TRANSIENT, "the message expired before the handset could be reached", on="report"),
    ErrorRule("HANDSET_ERROR", ErrorKind.TRANSIENT,
              "the handset could not take the message (e.g. storage full)", on="report"),
    ErrorRule("BLOCKED", ErrorKind.PERMANENT,
              "the recipient is blocked for this account (replied STOP or was blocked by BulkSMS)", on="report"),
    ErrorRule("NOT_SENT", ErrorKind.PERMANENT,
              "BulkSMS did not attempt delivery (e.g. no route to this number)", on="report"),
)

_SHORTCODE = re.compile(r"\d{1,6}")
_sender = sender_validator(
    "REPLIABLE, a number in international format (7–15 digits, '+' optional), a short code (up to 6 digits) or "
    "an alphanumeric sender ID (up to 11 characters, not only digits)",
    r"(?i:REPLIABLE)", r"\+?[1-9]\d{6,14}", _SHORTCODE.pattern,
    alphanumeric=r"[A-Za-z0-9 \-+_&.]{1,11}", numeric=r"\+.*|[0-9]+",
)


def _credential(value: str) -> str | None:
    return None if value.strip() == value and ":" not in value else "must not contain ':' or surrounding spaces"


class BulkSmsProvider(Provider):
    kind = "bulksms"
    display_name = "BulkSMS.com"
    description = "BulkSMS.com JSON API v1: batched submissions, webhooks with a URL token, polling."
    default_base_url = "https://api.bulksms.com"
    config_fields = (
        ConfigField(
            "username", "Username or token ID", required=True, validator=_credential,
            placeholder="A1B2C3D4E5F6…",
            help="An API token ID (preferred; create one under Settings → API Tokens) or the account username",
        ),
        ConfigField(
            "password", "Password or token secret", required=True, secret=True, validator=_credential,
            placeholder="env:BULKSMS_TOKEN_SECRET",
            help="The API token's secret (or the account password); env:NAME reads it from the environment",
        ),
        ConfigField(
            "sender", "From", validator=_sender, placeholder="REPLIABLE",
            help="Empty uses the account default; REPLIABLE lets BulkSMS collect replies; else a number, "
                 "short code or alphanumeric sender ID (up to 11 characters)",
        ),
        ConfigField(
            "routing_group", "Routing group", kind="choice", choices=("ECONOMY", "STANDARD", "PREMIUM"),
            help="BulkSMS routing quality; empty uses STANDARD",
        ),
        ConfigField(
            "auto_unicode", "Auto Unicode", kind="bool", default="true",
            help="Send ?auto-unicode=true so a character outside GSM 03.38 makes BulkSMS send UCS-2 "
                 "instead of replacing it with '?'",
        ),
        WEBHOOK_TOKEN_FIELD,
    )
    capabilities = Capabilities(
        max_batch=100, max_body_chars=1600, status_webhook=True, status_polling=True,
        inbound_webhook=True, inbound_polling=True, signature=False, dlt=False,
        status_lookup=True,
    )

    # Sending ----------------------------------------------------------------------------------

    async def send(self, messages: Sequence[OutboundMessage]) -> list[SendOutcome]:
        outcomes: list[SendOutcome] = []
        for start in range(0, len(messages), self.max_batch):
            outcomes += await self._submit(list(messages[start:start + self.max_batch]))
        return outcomes

    async def _submit(self, batch: list[OutboundMessage]) -> list[SendOutcome]:
        """One POST for the batch. A 400 names no entry, so a rejected batch is split and each
        message resent alone: nothing of a 400 submission was accepted, so this is safe."""
        try:
            response = await self.request(
                "POST", self._url("/messages"), params=self._query(batch), json=[self._entry(m) for m in batch],
                auth=self._auth(),
            )
        except ProviderError as transport_error:
            logger.debug("bulksms: %d message(s) not sent: %s", len(batch), transport_error)
            return [SendOutcome(ref=m.ref, error=transport_error) for m in batch]
        status = response.status_code
        if not response.is_success:
            rejection = error_from_response(response)
            if status == 400 and len(batch) > 1:
                logger.debug("bulksms: batch of %d rejected (%s); resending one by one", len(batch), rejection)
                return [outcome for message in batch for outcome in await self._submit([message])]
            logger.debug("bulksms: %d message(s) rejected: %s", len(batch), rejection)
            return [SendOutcome(ref=m.ref, error=rejection, http_status=status) for m in batch]
        created = json_body(response)
        if not isinstance(created, list):
            unknown = OutcomeUnknownError(
                f"BulkSMS answered HTTP {status} without an array of messages: {snippet(response.text) or '(empty body)'}",
                http_status=status,
            )
            return [SendOutcome(ref=m.ref, error=unknown, http_status=status) for m in batch]
        return self._match(batch, [m for m in created if isinstance(m, dict)], status)

    def _match(self, batch: list[OutboundMessage], created: list[dict[str, Any]], status: int) -> list[SendOutcome]:
        """Each of our messages gets the created Message with its recipient and userSuppliedId."""
        unused = list(created)
        outcomes = []
        for message in batch:
            wanted = (digits(message.to), _user_supplied_id(message.ref))
            found = next((m for m in unused if (digits(str(m.get("to") or "")), m.get("userSuppliedId")) == wanted
                          and m.get("id")), None)
            if found is None:
                unknown = OutcomeUnknownError(
                    f"BulkSMS answered HTTP {status} but listed no message for {message.to} with this reference",
                    http_status=status,
                )
                logger.debug("bulksms: message %s outcome unknown", message.ref)
                outcomes.append(SendOutcome(ref=message.ref, error=unknown, http_status=status))
                continue
            unused.remove(found)
            provider_status = (found.get("status") or {}).get("id") if isinstance(found.get("status"), dict) else None
            logger.debug("bulksms: message %s accepted as %s (%s)", message.ref, found["id"], provider_status)
            outcomes.append(SendOutcome(ref=message.ref, provider_message_id=str(found["id"]),
                                        provider_status=provider_status, http_status=status))
        return outcomes

    def _entry(self, message: OutboundMessage) -> dict[str, Any]:
        """One SubmissionEntry: one recipient, so every message keeps its own body and reference."""
        entry: dict[str, Any] = {"to": message.to, "body": message.body}
        if sender := _from((message.sender or self.setting("sender")).strip()):
            entry["from"] = sender
        if message.encoding == "UCS-2":
            entry["encoding"] = "UNICODE"
        if message.segments > 3:  # BulkSMS caps a message at longMessageMaxParts, 3 by default
            entry["longMessageMaxParts"] = message.segments
        if routing_group := self.setting("routing_group").strip():
            entry["routingGroup"] = routing_group
        entry["userSuppliedId"] = _user_supplied_id(message.ref)
        return entry

    def _query(self, batch: Sequence[OutboundMessage]) -> dict[str, str]:
        query = {"deduplication-id": str(deduplication_id([m.ref for m in batch]))}
        if self.flag("auto_unicode"):
            query["auto-unicode"] = "true"
        return query

    # Connection check -------------------------------------------------------------------------

    async def check_connection(self) -> ConnectionCheck:
        refused = {status: f"BulkSMS refused the credentials (HTTP {status}): check the username or token ID and "
                           "the password or token secret" for status in (401, 403)}
        profile = await self.account_check("BulkSMS", "profile check", self._url("/profile"), error_from_response,
                                           refused=refused, auth=self._auth())
        if isinstance(profile, ConnectionCheck):
            return profile
        credits = profile.get("credits") if isinstance(profile.get("credits"), dict) else {}
        quota = profile.get("quota") if isinstance(profile.get("quota"), dict) else {}
        detail = f"Profile '{profile.get('username') or self.setting('username')}'"
        if credits.get("balance") is not None:
            detail += f", {credits['balance']} credits"
        if quota.get("remaining") is not None and quota.get("size") is not None:
            detail += f", {quota['remaining']} of {quota['size']} messages left today"
        return ConnectionCheck(ok=True, detail=detail)

    # Receipts and replies ------------------------------------------------------------------------

    def parse_status_callback(self, request: CallbackRequest) -> list[StatusReport]:
        """A SENT webhook call: an array of Message objects ([] is the registration ping)."""
        return [report_from_message(m) for m in _webhook_messages(request) if _kind(m) == "SENT"]

    def parse_inbound_callback(self, request: CallbackRequest) -> list[InboundReport]:
        """A RECEIVED webhook call: an array of Message objects ([] is the registration ping)."""
        return [inbound_from_message(m) for m in _webhook_messages(request) if _kind(m) == "RECEIVED"]

    async def fetch_statuses(self, provider_message_ids: Sequence[str]) -> list[StatusReport]:
        reports = []
        for message_id in provider_message_ids:
            message = await self.lookup(self._url(f"/messages/{message_id}"), error_from_response, auth=self._auth())
            if isinstance(message, dict) and message.get("id") and isinstance(message.get("status"), dict):
                reports.append(report_from_message(message))
        return reports

    async def poll_statuses(self, cursor: str | None) -> PollPage:
        """Sent messages submitted since the cursor's time, newest first, walked with `id<`; every
        status is reported again until the window moves on (the receipts service ignores what it
        already knows), since BulkSMS cannot filter by the time a status changed."""
        state = _cursor(cursor)
        since = state.get("since") or _iso(datetime.now(UTC) - timedelta(days=1))
        clauses = ["type=SENT", f"submission.date>={since}"]
        if state.get("before"):
            clauses.append(f"id<{state['before']}")
        page = await self._list(clauses)
        reports = tuple(report_from_message(m) for m in page if m.get("id") and isinstance(m.get("status"), dict))
        if page:
            oldest = min(page, key=_numeric_id)
            return PollPage(reports, json.dumps({"since": since, "before": str(oldest["id"])}), True)
        # Walk done: the next one starts a day back, so late receipts are still seen.
        return PollPage(reports, json.dumps({"since": max(since, _iso(datetime.now(UTC) - timedelta(days=1)))}), False)

    async def poll_inbound(self, cursor: str | None) -> PollPage:
        """Received messages with an id above the cursor, oldest first. Without a cursor, start
        from the newest received message (nothing older is reported)."""
        state = _cursor(cursor)
        after = state.get("after")
        if not after:
            newest = await self._list(["type=RECEIVED"], limit=1)
            after = str(newest[0]["id"]) if newest else "0"
            return PollPage((), json.dumps({"after": after}), False)
        page = await self._list(["type=RECEIVED", f"id>{after}"], ascending=True)
        received = [m for m in page if m.get("id") and _kind(m) == "RECEIVED"]
        reports = tuple(inbound_from_message(m) for m in received)
        if received:
            after = str(max(received, key=_numeric_id)["id"])
        return PollPage(reports, json.dumps({"after": after}), bool(received))

    async def _list(self, clauses: Sequence[str], *, limit: int = LIST_LIMIT, ascending: bool = False) -> list[dict[str, Any]]:
        params = {"filter": "&".join(clauses), "limit": str(limit)}
        if ascending:
            params["sortOrder"] = "ASCENDING"
        response = await self.request("GET", self._url("/messages"), params=params, auth=self._auth())
        if not response.is_success:
            raise error_from_response(response)
        listing = json_body(response)
        if not isinstance(listing, list):
            raise OutcomeUnknownError(f"BulkSMS listed messages unreadably: {snippet(response.text) or '(empty body)'}")
        return [m for m in listing if isinstance(m, dict)]

    # Helpers ----------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{API_VERSION}{path}"

    def _auth(self) -> httpx.BasicAuth:
        return httpx.BasicAuth(self.setting("username").strip(), self.setting("password"))


def deduplication_id(refs: Sequence[str]) -> int:
    """A stable 31-bit id for a submission of these refs: the same submission resent gets the same
    id, so BulkSMS does not send it twice."""
    return zlib.crc32("\x1f".join(refs).encode("utf-8")) & 0x7FFFFFFF


def _user_supplied_id(ref: str) -> str:
    return ref[:MAX_USER_SUPPLIED_ID]


def _from(sender: str) -> str | dict[str, str] | None:
    """The `from` of a SubmissionEntry: a string BulkSMS reads as INTERNATIONAL or ALPHANUMERIC, or
    an object for REPLIABLE and short codes, which a bare string cannot express."""
    if not sender:
        return None
    if sender.upper() == "REPLIABLE":
        return {"type": "REPLIABLE"}
    if _SHORTCODE.fullmatch(sender):
        return {"type": "SHORTCODE", "address": sender}
    return sender


def _kind(message: Mapping[str, Any]) -> str:
    return str(message.get("type") or "")


def _numeric_id(message: Mapping[str, Any]) -> int:
    text = str(message.get("id") or "")
    return int(text) if text.isdigit() else 0


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cursor(cursor: str | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in load_cursor(cursor).items()}


def _webhook_messages(request: CallbackRequest) -> list[dict[str, Any]]:
    payload = request.json()
    if not isinstance(payload, list):
        raise CallbackRejected(400, "a BulkSMS webhook posts a JSON array of messages")
    for message in payload:
        if not isinstance(message, dict) or not message.get("id") or not _kind(message):
            raise CallbackRejected(400, "every message of a BulkSMS webhook needs an id and a type")
        if _kind(message) == "SENT" and not isinstance(message.get("status"), dict):
            raise CallbackRejected(400, "a SENT message needs a status object")
    return payload


def report_from_message(message: Mapping[str, Any]) -> StatusReport:
    """A BulkSMS Message read as a receipt; an unknown status type maps to None."""
    status = message.get("status") if isinstance(message.get("status"), dict) else {}
    kind = str(status.get("type") or "")
    subtype = str(status.get("subtype") or "") or None
    provider_status = str(status.get("id") or f"{kind}.{subtype}")
    message_id = str(message.get("id"))
    state = STATUS_MAP.get(kind)
    if kind not in STATUS_MAP:
        logger.info("bulksms: ignoring unknown status %r of %r", provider_status, message_id)
    error_kind, reason, error_code = None, None, None
    if kind == "FAILED":
        rule = ERROR_RULES.find(subtype, "report") or ErrorRule(
            provider_status, ErrorKind.PERMANENT, f"BulkSMS reports {provider_status}")
        state = "undelivered" if rule.kind is ErrorKind.TRANSIENT else "failed"
        error_kind, reason = rule.kind, rule.reason
        error_code = provider_status
    return StatusReport(
        provider_message_id=message_id, provider_status=provider_status, state=state,
        at=parse_timestamp((message.get("submission") or {}).get("date") if isinstance(message.get("submission"), dict) else None),
        recipient=e164(digits(str(message.get("to") or ""))) if message.get("to") else None,
        error_code=error_code, error_kind=error_kind, reason=reason,
        ref=str(message["userSuppliedId"]) if message.get("userSuppliedId") else None,
        price=(price := parse_price(message.get("creditCost"))), price_currency=CREDITS if price is not None else None,
    )


def inbound_from_message(message: Mapping[str, Any]) -> InboundReport:
    submission = message.get("submission") if isinstance(message.get("submission"), dict) else {}
    sender = str(message.get("from") or "")
    return InboundReport(
        provider_message_id=str(message.get("id")),
        sender=e164(digits(sender)) or sender if sender else "",
        recipient=str(message["to"]) if message.get("to") else None,
        text=str(message.get("body") or ""),
        at=parse_timestamp(submission.get("date")),
    )


def error_from_response(response: httpx.Response) -> ProviderError:
    """Classify an error answer by its problem `type` when the table knows it, else by HTTP status."""
    payload = json_body(response)
    if not isinstance(payload, dict) or not (payload.get("type") or payload.get("title")):
        body = snippet(response.text)
        return Provider.classify_http(response, f"HTTP {response.status_code} from BulkSMS: {body}" if body else "")
    problem = str(payload.get("type") or "").rstrip("/").rsplit("#", 1)[-1].rsplit("/", 1)[-1] or None
    detail = " ".join(str(payload.get("detail") or payload.get("title") or "").split())
    rule = ERROR_RULES.find(problem)
    if rule is None or response.status_code in (429,) or response.status_code >= 500:
        return Provider.classify_http(response, f"BulkSMS: {detail}" if detail else "", code=problem)
    return rule.error(detail, said="BulkSMS", code=problem, http_status=response.status_code, response=response)
