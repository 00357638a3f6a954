"""Provider credentials at rest: encrypted with a Fernet key (a 0600 key file in the config dir,
or `SMSCONSOLE_SECRET_KEY`), or stored as an `env:NAME` reference resolved at use. Also the
masking used by every screen and printout, and a logging filter that redacts known secrets."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from cryptography.fernet import Fernet, InvalidToken

ENV_PREFIX = "env:"
MASK = "••••••"


class SecretError(Exception):
    """A secret cannot be read: missing key, wrong key, unset environment variable."""


def load_or_create_key(key_file: Path, env_key: str = "") -> bytes:
    """The Fernet key: from SMSCONSOLE_SECRET_KEY if set, else the key file, created 0600."""
    if env_key:
        key = env_key.encode()
        _check_key(key, "SMSCONSOLE_SECRET_KEY")
        return key
    if key_file.exists():
        key = key_file.read_bytes().strip()
        _check_key(key, str(key_file))
        return key
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key + b"\n")
    return key


def _check_key(key: bytes, where: str) -> None:
    try:
        Fernet(key)
    except (ValueError, TypeError):
        raise SecretError(f"{where} is not a valid key (expected 32 url-safe base64-encoded bytes)") from None


class SecretBox:
    """Encrypts and decrypts secret config values; `env:NAME` references pass through as is."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def seal(self, value: str) -> str:
        if value.startswith(ENV_PREFIX):
            return value
        return "enc:" + self._fernet.encrypt(value.encode()).decode()

    def open(self, stored: str) -> str:
        """The stored form back to the stored plaintext (an env reference stays a reference)."""
        if stored.startswith(ENV_PREFIX):
            return stored
        if not stored.startswith("enc:"):
            raise SecretError("stored secret is not encrypted")
        try:
            return self._fernet.decrypt(stored[4:].encode()).decode()
        except InvalidToken:
            raise SecretError("cannot decrypt a stored secret: the secret key changed") from None


def resolve(value: str, environ: dict[str, str] | os._Environ[str] | None = None) -> str:
    """The usable secret: an `env:NAME` reference is read from the environment."""
    if not value.startswith(ENV_PREFIX):
        return value
    name = value[len(ENV_PREFIX):]
    env = os.environ if environ is None else environ
    if name not in env or not env[name]:
        raise SecretError(f"environment variable {name} is not set")
    return env[name]


def mask(value: str | None) -> str:
    """How a secret is shown: references by name, everything else hidden."""
    if not value:
        return ""
    if value.startswith(ENV_PREFIX):
        return value
    return MASK


def mask_url(url: str) -> str:
    """A URL with any password replaced by the mask."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password:
        netloc = f"{parts.username}:{MASK}@{parts.hostname}"
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit(parts._replace(netloc=netloc))
    return url


class RedactingFilter(logging.Filter):
    """Replaces every registered secret in log records by the mask."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def register(self, *values: str) -> None:
        added = {v for v in values if v and len(v) >= 4 and not v.startswith(ENV_PREFIX)}
        if added - self._secrets:
            self._secrets |= added
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(s) for s in ordered))

    def redact(self, text: str) -> str:
        return self._pattern.sub(MASK, text) if self._pattern else text

    def filter(self, record: logging.LogRecord) -> bool:
        if self._pattern is None:
            return True
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message or record.exc_info:
            record.msg = redacted
            record.args = None
        return True


REDACTOR = RedactingFilter()
