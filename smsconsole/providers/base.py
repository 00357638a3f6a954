"""The provider contract: config fields declared once, capabilities, data types in and out, and
one error family. Adapters are pure: they get resolved config and an httpx client, and never
touch the database or services."""

from __future__ import annotations

import email.utils
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar
from urllib.parse import urlsplit

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


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


# --- config fields -----------------------------------------------------------------------------

Validator = Callable[[str], str | None]  # returns a reason when the value is bad


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


def pattern(regex: str, description: str) -> Validator:
    compiled = re.compile(regex)

    def check(value: str) -> str | None:
        return None if compiled.fullmatch(value) else f"must be {description}"

    return check


def http_url(value: str) -> str | None:
    try:
        parts = urlsplit(value)
    except ValueError:
        return "must be an http(s) URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http(s) URL such as https://api.example.com"
    return None


def positive_int(value: str) -> str | None:
    return None if value.isdigit() and int(value) > 0 else "must be a whole number greater than 0"


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
class SendOutcome:
    """What happened to one message of a send call: accepted with an id, or an error."""

    ref: str
    provider_message_id: str | None = None
    provider_status: str | None = None
    error: ProviderError | None = None
    http_status: int | None = None

    @property
    def accepted(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class ConnectionCheck:
    ok: bool
    detail: str


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

    # Behaviour --------------------------------------------------------------------------------

    async def send(self, messages: Sequence[OutboundMessage]) -> list[SendOutcome]:
        raise NotImplementedError

    async def check_connection(self) -> ConnectionCheck:
        raise NotImplementedError

    # HTTP -------------------------------------------------------------------------------------

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send one HTTP request, turning transport failures into the error family.

        A failure before the request left (connect error) is transient; a timeout or broken
        connection after it left is `OutcomeUnknownError`, because the provider may have acted."""
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


def snippet(text: str, limit: int = 200) -> str:
    """A short, single-line excerpt of a response body for an error message."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
