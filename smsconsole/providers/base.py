"""The provider contract: config fields declared once, capabilities, data types in and out, one
error family and the ErrorRule type every adapter's ERROR_RULES table is written in. Adapters are
pure: they get resolved config and an httpx client, and never touch the database or services.
The small readers they share (numbers, times, JSON answers) are in providers/common.py."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from smsconsole.providers.common import (
    Validator,
    add_query,
    http_url,
    json_body,
    parse_retry_after,
    pattern,
    positive_int,
    same_secret,
    snippet,
)

if TYPE_CHECKING:
    import httpx

# --- errors ------------------------------------------------------------------------------------


class ErrorKind(StrEnum):
    TRANSIENT = "transient"  # retry later or fail over: timeout, 5xx, 429
    PERMANENT = "permanent"  # this message to this recipient will never work
    CONFIGURATION = "configuration"  # the provider is misconfigured: bad credentials, bad sender
    UNKNOWN = "unknown"  # the request may have been accepted: never resend blindly


class ProviderError(Exception):
    """An error from a provider, classified. `code` is the provider's own code when it gave one."""

    kind: ClassVar[ErrorKind] = ErrorKind.TRANSIENT

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status
        self.retry_after = retry_after

    def __str__(self) -> str:
        prefix = f"[{self.code}] " if self.code else ""
        return f"{prefix}{self.message}"


class TransientError(ProviderError):
    kind = ErrorKind.TRANSIENT


class PermanentError(ProviderError):
    kind = ErrorKind.PERMANENT


class ConfigurationError(ProviderError):
    kind = ErrorKind.CONFIGURATION


class OutcomeUnknownError(ProviderError):
    """The request left and no usable answer came back: it may or may not have been accepted."""

    kind = ErrorKind.UNKNOWN


ERROR_CLASSES: dict[ErrorKind, type[ProviderError]] = {
    error.kind: error for error in (TransientError, PermanentError, ConfigurationError, OutcomeUnknownError)
}


@dataclass(frozen=True)
class ErrorRule:
    """What one of a provider's error codes means: can the message work another time (`kind`),
    and why not (`reason`). `on` names the code space when a provider has several: "code" (its
    error codes), "report" (codes only its delivery reports use), "status", "http" (HTTP statuses),
    "warning", or "words" (then `code` is a regular expression searched in the error's text)."""

    code: str
    kind: ErrorKind
    reason: str
    on: str = "code"

    def error(self, detail: str = "", *, said: str = "", code: str | None = None, http_status: int | None = None,
              response: httpx.Response | None = None) -> ProviderError:
        """This rule as an error: the reason, then the provider's own words as "(said: detail)"
        (only those when the rule gives no reason); a transient one reads Retry-After from `response`."""
        if not self.reason:
            message = f"{said}: {detail}" if said else detail
        else:
            message = f"{self.reason} ({said}: {detail})" if detail else self.reason
        retry_after = None
        if response is not None and self.kind is ErrorKind.TRANSIENT:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return ERROR_CLASSES[self.kind](message, code=code, http_status=http_status, retry_after=retry_after)


class ErrorRules:
    """An adapter's ERROR_RULES: its ErrorRule table, looked up by code (and code space)."""

    def __init__(self, *rules: ErrorRule) -> None:
        self.rules = rules
        self._by_code = {(rule.on, rule.code): rule for rule in rules}

    def __iter__(self) -> Iterator[ErrorRule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def find(self, code: object, on: str = "code") -> ErrorRule | None:
        """The rule for `code` (a string or a number), None when there is none."""
        return None if code in (None, "") else self._by_code.get((on, str(code)))

    def search(self, text: str, on: str = "words") -> ErrorRule | None:
        """The first rule whose regular expression is found in `text` (case-insensitive)."""
        return next((rule for rule in self.rules if rule.on == on and re.search(rule.code, text, re.IGNORECASE)), None)

    def codes(self, on: str = "code") -> set[str]:
        return {rule.code for rule in self.rules if rule.on == on}


# --- config fields -----------------------------------------------------------------------------

@dataclass(frozen=True)
class ConfigField:
    """One setting of a provider: rendered as a form field, a CLI flag and a validation rule."""

    name: str
    label: str
    required: bool = False
    secret: bool = False
    help: str = ""
    kind: str = "text"  # text | choice | bool | int | url | multiline
    choices: tuple[str, ...] = ()
    default: str = ""
    validator: Validator | None = None
    placeholder: str = ""

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class Capabilities:
    max_batch: int = 1
    max_body_chars: int = 1600
    status_webhook: bool = False
    status_polling: bool = False
    inbound_webhook: bool = False
    inbound_polling: bool = False
    signature: bool = False
    dlt: bool = False
    status_lookup: bool = False  # fetch_statuses answers by message id (unknown and long-`sent` messages)
    receipt_delay_field: str = ""  # the setting with the seconds after sending when receipts are ready
    pricing_api: bool = False  # fetch_prices reads the provider's own price list (Twilio Pricing API)


# --- data in and out ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboundMessage:
    """One message to one recipient as the adapter sees it. `ref` is ours (the outbox id)."""

    ref: str
    to: str  # E.164 with '+'
    body: str
    sender: str | None = None
    encoding: str = "GSM-7"  # GSM-7 | UCS-2
    segments: int = 1
    status_callback_url: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)  # e.g. DLT template id, custom keys


@dataclass(frozen=True)
class ProviderPrice:
    """One outbound SMS price from a provider's pricing API: to `country`, from a sender of
    `sender_type` (long_code | short_code | toll_free | alphanumeric), `amount` per `unit`
    (segment | message) in `currency` (ISO 4217)."""

    country: str
    sender_type: str
    amount: float
    currency: str
    unit: str = "segment"


@dataclass(frozen=True)
class SendOutcome:
    """What happened to one message of a send call: accepted with an id, or an error."""

    ref: str
    provider_message_id: str | None = None
    provider_status: str | None = None
    error: ProviderError | None = None
    http_status: int | None = None
    part_ids: tuple[str, ...] = ()  # every part's id when the provider gives one per part (receipts come per part)
    # What the provider says this message cost, all parts together, when its answer says (else None).
    price: float | None = None
    price_currency: str | None = None  # ISO 4217 ("EUR"), or CREDITS for a provider's own credits

    @property
    def accepted(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class ConnectionCheck:
    ok: bool
    detail: str
    checked: bool = True  # False: nothing was contacted, so the result says nothing of the provider's health


# --- receipts and replies --------------------------------------------------------------------

RECEIPT_STATES = ("sent", "delivered", "undelivered", "failed")  # what a receipt can say of a message
# The price_currency of a price counted in a provider's own prepaid credits (Textlocal, BulkSMS), not money.
CREDITS = "CRD"
MAX_CALLBACK_BYTES = 256 * 1024


class CallbackRejected(Exception):
    """A webhook call that must be answered with a 4xx and change nothing: forged, unsigned,
    malformed or not meant for this provider."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class CallbackRequest:
    """A webhook call as the listener received it. `url` is the public URL the provider called
    (scheme, host, path and query), which signature schemes sign; `headers` have lower-case names."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    @property
    def content_type(self) -> str:
        return self.header("content-type").split(";", 1)[0].strip().lower()

    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.url).query, keep_blank_values=True)

    def form(self) -> dict[str, list[str]]:
        """The form-encoded body (empty for other bodies); 400 when it is not valid UTF-8."""
        if self.method.upper() != "POST" or self.content_type not in ("application/x-www-form-urlencoded", ""):
            return {}
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError:
            raise CallbackRejected(400, "the body is not UTF-8") from None
        if self.content_type == "" and text.lstrip().startswith(("{", "[")):
            return {}
        return parse_qs(text, keep_blank_values=True)

    def params(self) -> dict[str, str]:
        """Query and form parameters, one value each (the form's wins): how most providers' GET and
        form-POST callbacks are read."""
        merged = {name: values[-1] for name, values in self.query().items()}
        merged.update({name: values[-1] for name, values in self.form().items()})
        return merged

    def json(self) -> Any:
        """The JSON body; 400 when there is none or it does not parse."""
        if not self.body.strip():
            raise CallbackRejected(400, "the body is empty; a JSON document was expected")
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CallbackRejected(400, f"the body is not JSON: {exc}") from None


@dataclass(frozen=True)
class StatusReport:
    """A delivery receipt (or a polled status): what the provider now says of one message.
    `state` is one of RECEIPT_STATES; None when the provider status means nothing new (it is
    logged and ignored). `ref` is our reference when the provider echoes it back."""

    provider_message_id: str | None
    provider_status: str
    state: str | None
    at: datetime | None = None
    recipient: str | None = None  # E.164 with '+', when the receipt says
    error_code: str | None = None
    error_kind: ErrorKind | None = None  # for failed / undelivered: can it work another time?
    reason: str | None = None
    ref: str | None = None
    part: int | None = None  # 1-based, when the provider reports each part of a long message
    parts: int | None = None
    # What the provider charged, when the receipt says: for the message it names, which is one
    # part when the provider gives each part its own id (Vonage).
    price: float | None = None
    price_currency: str | None = None


@dataclass(frozen=True)
class InboundReport:
    """A message a person sent to one of our numbers (a reply, a STOP)."""

    provider_message_id: str | None
    sender: str  # the person, E.164 with '+' when it parses
    recipient: str | None  # our number or sender id
    text: str
    at: datetime | None = None
    part: int | None = None  # a part of a long message the provider forwards piecemeal
    parts: int | None = None
    concat_ref: str | None = None
    keyword: str | None = None  # the provider's own keyword reading, when it gives one


@dataclass(frozen=True)
class PollPage:
    """What one poll found and where the next one resumes (opaque to the engine, kept per
    provider so a restart resumes where it left off). `more` asks to poll again at once."""

    reports: tuple[Any, ...]
    cursor: str | None
    more: bool = False


def _check_size(request: CallbackRequest) -> None:
    if len(request.body) > MAX_CALLBACK_BYTES:
        raise CallbackRejected(413, f"the body is larger than {MAX_CALLBACK_BYTES // 1024} KiB")


WEBHOOK_TOKEN_FIELD = ConfigField(
    "webhook_token", "Webhook token", secret=True,
    validator=pattern(r"(env:[A-Za-z_][A-Za-z0-9_]*|[A-Za-z0-9_\-]{16,128})",
                      "16–128 letters, digits, - or _ (or env:NAME)"),
    placeholder="a long random string",
    help="This provider signs nothing: its callbacks must carry this secret as ?token= in the URL",
)


# --- the adapter ------------------------------------------------------------------------------


class Provider:
    """Base of every adapter. Subclasses set the class attributes and implement send/check."""

    kind: ClassVar[str]
    display_name: ClassVar[str]
    description: ClassVar[str] = ""
    default_base_url: ClassVar[str] = ""
    config_fields: ClassVar[tuple[ConfigField, ...]] = ()
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(
        self,
        config: Mapping[str, str],
        *,
        client: httpx.AsyncClient | None = None,
        base_url: str | None = None,
    ) -> None:
        self.config = dict(config)
        self.client = client
        self.base_url = (base_url or self.default_base_url).rstrip("/")

    # Config ---------------------------------------------------------------------------------

    @classmethod
    def field(cls, name: str) -> ConfigField:
        for config_field in cls.config_fields:
            if config_field.name == name:
                return config_field
        raise KeyError(name)

    @classmethod
    def validate_config(cls, values: Mapping[str, str]) -> list[tuple[str, str]]:
        """Every problem with `values` as (field, reason); empty when the config is usable."""
        problems: list[tuple[str, str]] = []
        known = {f.name for f in cls.config_fields}
        for name in values:
            if name not in known:
                problems.append((name, f"is not a setting of {cls.display_name}"))
        for config_field in cls.config_fields:
            value = (values.get(config_field.name) or "").strip()
            if not value:
                if config_field.required:
                    problems.append((config_field.name, "is required"))
                continue
            if config_field.secret and value.startswith("env:"):
                if not re.fullmatch(r"env:[A-Za-z_][A-Za-z0-9_]*", value):
                    problems.append((config_field.name, "env: reference must name a variable, e.g. env:TWILIO_AUTH_TOKEN"))
                continue
            if config_field.choices and value not in config_field.choices:
                problems.append((config_field.name, f"must be one of {', '.join(config_field.choices)}"))
            elif config_field.kind == "bool" and value.lower() not in ("true", "false", "yes", "no", "1", "0"):
                problems.append((config_field.name, "must be true or false"))
            elif config_field.kind == "int" and (reason := positive_int(value)):
                problems.append((config_field.name, reason))
            elif config_field.kind == "url" and (reason := http_url(value)):
                problems.append((config_field.name, reason))
            elif config_field.validator and (reason := config_field.validator(value)):
                problems.append((config_field.name, reason))
        reported = {name for name, _ in problems}
        problems.extend(p for p in cls.check_config(values) if p[0] not in reported)
        return problems

    @classmethod
    def check_config(cls, values: Mapping[str, str]) -> list[tuple[str, str]]:
        """Cross-field rules (e.g. From or Messaging Service SID). Override when needed; runs even
        when single fields are bad, so it must tolerate bad values (their problems are dropped)."""
        return []

    @property
    def max_batch(self) -> int:
        """Recipients per send() call; adapters whose batching is configurable override this."""
        return self.capabilities.max_batch

    def setting(self, name: str) -> str:
        value = self.config.get(name)
        if value in (None, ""):
            return self.field(name).default
        return str(value)

    def flag(self, name: str) -> bool:
        return self.setting(name).lower() in ("true", "yes", "1")

    def message_setting(self, message: OutboundMessage, option: str, setting: str = "") -> str:
        """A message's own `option`, else the setting of that name (or `setting`), stripped."""
        return (message.options.get(option) or self.setting(setting or option)).strip()

    # Behaviour --------------------------------------------------------------------------------

    async def send(self, messages: Sequence[OutboundMessage]) -> list[SendOutcome]:
        raise NotImplementedError

    async def check_connection(self) -> ConnectionCheck:
        raise NotImplementedError

    # Receipts and replies ------------------------------------------------------------------------
    # The listener hands each callback to `status_callback` / `inbound_callback`, which verify it
    # before parsing it; the engine's pollers call `poll_*` and `fetch_statuses`. Adapters without
    # a capability keep the default, which says so.

    def callback_url(self, url: str) -> str:
        """The status callback URL to give the provider for one message: with ?token= when this
        provider is verified by a token in the URL."""
        token = self.config.get("webhook_token") and self.setting("webhook_token")
        return add_query(url, token=token) if token else url

    def verify_callback(self, request: CallbackRequest) -> None:
        """Raise CallbackRejected (401/403) unless the request is authentic. The default is the
        secret-token scheme for providers that sign nothing; signing adapters override it."""
        expected = self.setting("webhook_token") if any(f.name == "webhook_token" for f in self.config_fields) else ""
        if not expected:
            raise CallbackRejected(403, f"{self.display_name} signs nothing and no webhook token is configured; "
                                        "callbacks are refused until one is set")
        presented = (request.query().get("token") or [""])[-1]
        if not presented:
            raise CallbackRejected(401, "the callback URL carries no ?token=")
        if not same_secret(presented, expected):
            raise CallbackRejected(403, "the callback token does not match")

    def parse_status_callback(self, request: CallbackRequest) -> list[StatusReport]:
        raise CallbackRejected(404, f"{self.display_name} sends no status callbacks")

    def parse_inbound_callback(self, request: CallbackRequest) -> list[InboundReport]:
        raise CallbackRejected(404, f"{self.display_name} sends no inbound callbacks")

    def status_callback(self, request: CallbackRequest) -> list[StatusReport]:
        """Verify, then parse, a delivery receipt callback."""
        _check_size(request)
        self.verify_callback(request)
        return self.parse_status_callback(request)

    def inbound_callback(self, request: CallbackRequest) -> list[InboundReport]:
        """Verify, then parse, an inbound message callback."""
        _check_size(request)
        self.verify_callback(request)
        return self.parse_inbound_callback(request)

    def callback_answer(self, kind: str) -> tuple[int, str, bytes]:
        """(HTTP status, content type, body) to answer an accepted callback of `kind` with."""
        return 200, "text/plain", b""

    async def fetch_statuses(self, provider_message_ids: Sequence[str]) -> list[StatusReport]:
        """The current status of these messages (reconciling `unknown` ones, polling receipts)."""
        raise NotImplementedError(f"{self.display_name} has no status lookup")

    async def poll_statuses(self, cursor: str | None) -> PollPage:
        """Statuses that changed since `cursor` (None: start from now)."""
        raise NotImplementedError(f"{self.display_name} has no status list to poll")

    async def poll_inbound(self, cursor: str | None) -> PollPage:
        """Inbound messages received since `cursor` (None: start from now)."""
        raise NotImplementedError(f"{self.display_name} has no inbound list to poll")

    # HTTP -------------------------------------------------------------------------------------

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send one HTTP request, turning transport failures into the error family.

        A failure before the request left (connect error) is transient; a timeout or broken
        connection after it left is `OutcomeUnknownError`, because the provider may have acted."""
        import httpx  # lazy: start-up (importing the contract must not cost httpx)

        if self.client is None:
            raise ConfigurationError("no HTTP client was given to the provider")
        try:
            return await self.client.request(method, url, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise TransientError(f"cannot connect to {_host(url)}: {_reason(exc)}") from None
        except httpx.UnsupportedProtocol:
            raise ConfigurationError(f"unsupported URL {url!r}") from None
        except (httpx.ReadTimeout, httpx.WriteTimeout):
            raise OutcomeUnknownError(f"no answer from {_host(url)} in time") from None
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            raise OutcomeUnknownError(f"connection to {_host(url)} broke: {_reason(exc)}") from None
        except httpx.InvalidURL as exc:
            raise ConfigurationError(f"invalid URL: {exc}") from None

    async def lookup(self, url: str, error_from: Callable[[httpx.Response], ProviderError], **kwargs: Any) -> Any:
        """GET one resource (a message's status): its JSON body (None when it is not JSON, or when
        the provider has no such resource, 404); a refusal raises `error_from(response)`."""
        response = await self.request("GET", url, **kwargs)
        if response.status_code == 404:
            return None
        if not response.is_success:
            raise error_from(response)
        return json_body(response)

    async def account_check(self, said: str, what: str, url: str, error_from: Callable[[httpx.Response], ProviderError],
                            *, refused: Mapping[int, str], **kwargs: Any) -> dict[str, Any] | ConnectionCheck:
        """The GET a connection check makes (`what`, e.g. "account check"), read: the answer's JSON
        object, or the failed ConnectionCheck that says why not (unreachable, a status in `refused`
        with its text, any other refusal, an unreadable body)."""
        try:
            response = await self.request("GET", url, **kwargs)
        except ProviderError as error:
            return ConnectionCheck(ok=False, detail=f"{said} {what} failed: {error}")
        if response.status_code in refused:
            return ConnectionCheck(ok=False, detail=refused[response.status_code])
        if not response.is_success:
            return ConnectionCheck(ok=False, detail=f"{said} {what} failed: {error_from(response)}")
        payload = json_body(response)
        if not isinstance(payload, dict):
            return ConnectionCheck(ok=False, detail=f"{said} answered HTTP {response.status_code} with an unreadable "
                                                    f"body: {snippet(response.text) or '(empty body)'}")
        return payload

    @staticmethod
    def classify_http(response: httpx.Response, message: str, code: str | None = None) -> ProviderError:
        """The usual reading of an HTTP error status when the provider gives nothing finer."""
        status = response.status_code
        if status == 429:
            return TransientError(
                message or "rate limited", code=code, http_status=status,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        if status in (401, 403):
            return ConfigurationError(message or "credentials refused", code=code, http_status=status)
        if status >= 500:
            return TransientError(message or f"server error {status}", code=code, http_status=status,
                                  retry_after=parse_retry_after(response.headers.get("Retry-After")))
        if status == 404:
            return ConfigurationError(message or "endpoint not found (check the base URL and account)", code=code, http_status=status)
        return PermanentError(message or f"rejected with HTTP {status}", code=code, http_status=status)


def _host(url: str) -> str:
    try:
        return urlsplit(url).netloc or url
    except ValueError:
        return url


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
