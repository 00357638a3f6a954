"""Provider credentials at rest: encrypted with a Fernet key (a 0600 key file in the config dir,
or `SMSCONSOLE_SECRET_KEY`), or stored as an `env:NAME` reference resolved at use. Also the
masking used by every screen and printout, the scrubbing of secrets out of provider answers,
and a logging filter that redacts known secrets."""

from __future__ import annotations

import base64
import json
import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote, quote_plus, urlsplit, urlunsplit

from cryptography.fernet import Fernet, InvalidToken

ENV_PREFIX = "env:"
ENC_PREFIX = "enc:"
MASK = "••••••"
SCRUBBED = "***"
ENV_KEY = "SMSCONSOLE_SECRET_KEY"
MIN_SECRET_CHARS = 4  # shorter values would mask ordinary words; no real credential is this short


class SecretError(Exception):
    """A secret cannot be read: missing key, wrong key, unset environment variable."""


def read_key(key_file: Path, env_key: str = "") -> bytes | None:
    """The Fernet key from SMSCONSOLE_SECRET_KEY if set, else from the key file; None when there
    is no key file. Raises SecretError when the key is malformed."""
    if env_key:
        key = env_key.encode()
        _check_key(key, ENV_KEY)
        return key
    try:
        key = key_file.read_bytes().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SecretError(f"cannot read the key file {key_file}: {exc.strerror}") from None
    _check_key(key, str(key_file))
    return key


def create_key(key_file: Path) -> bytes:
    """A new Fernet key written to `key_file`, readable by this user only (folder 0700)."""
    key_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
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
    """Encrypts and decrypts secret config values; `env:NAME` references pass through as is.

    A box may have no key yet (the key file is missing): it opens no stored secret, and makes the
    key file at the first seal, which only happens when an operator enters a secret."""

    def __init__(self, key: bytes | None, *, key_file: Path | None = None, from_env: bool = False) -> None:
        self._fernet = Fernet(key) if key is not None else None
        self.key_file = key_file
        self.from_env = from_env

    @property
    def has_key(self) -> bool:
        return self._fernet is not None

    @property
    def key_source(self) -> str:
        """Where the key is (or was expected), for messages."""
        if self.from_env:
            return f"the key in {ENV_KEY}"
        return f"the key file {self.key_file}" if self.key_file else "the secret key"

    def make_key(self) -> None:
        """Create the key file (the box has no key yet)."""
        if self._fernet is None:
            if self.key_file is None:
                raise SecretError("no secret key to encrypt with")
            self._fernet = Fernet(create_key(self.key_file))

    def seal(self, value: str) -> str:
        if value.startswith(ENV_PREFIX):
            return value
        self.make_key()
        assert self._fernet is not None
        return ENC_PREFIX + self._fernet.encrypt(value.encode()).decode()

    def can_open(self, stored: str) -> bool:
        try:
            self.open(stored)
        except SecretError:
            return False
        return True

    def open(self, stored: str) -> str:
        """The stored form back to the stored plaintext (an env reference stays a reference)."""
        if stored.startswith(ENV_PREFIX):
            return stored
        if not stored.startswith(ENC_PREFIX):
            raise SecretError("stored secret is not encrypted")
        if self._fernet is None:
            raise SecretError(f"cannot decrypt a stored secret: {self.key_source} is missing")
        try:
            return self._fernet.decrypt(stored[len(ENC_PREFIX):].encode()).decode()
        except InvalidToken:
            raise SecretError(f"cannot decrypt a stored secret: {self.key_source} is not the key it was "
                              "encrypted with") from None


def locked_message(box: SecretBox, unreadable: list[tuple[str, list[str]]]) -> str:
    """One line for an operator whose key cannot open the stored credentials of `unreadable`
    (provider name, secret field names): which key, what is wrong, how to restore it, and how
    to re-enter the secrets instead."""
    names = ", ".join(name for name, _ in unreadable[:5]) + (f" and {len(unreadable) - 5} more"
                                                             if len(unreadable) > 5 else "")
    stored = f"the credentials stored for provider{'s' if len(unreadable) > 1 else ''} {names}"
    if box.from_env:
        problem = f"the key in {ENV_KEY} does not match {stored} (it is not the key they were encrypted with)"
        restore = f"set {ENV_KEY} to the key they were encrypted with (or unset it to use the key file {box.key_file})"
    elif not box.has_key:
        problem = f"the key file {box.key_file} is missing, so {stored} cannot be decrypted"
        restore = f"put the key file back from a backup (or set {ENV_KEY} to the key)"
    else:
        problem = f"the key file {box.key_file} does not match {stored} (it is not the key they were encrypted with)"
        restore = f"put back the right key file from a backup (or set {ENV_KEY} to that key)"
    commands = "; ".join(
        f"smsconsole providers update {name} " + " ".join(f"--{field.replace('_', '-')} …" for field in fields)
        for name, fields in unreadable[:5]
    )
    return f"{problem}; {restore}, or re-enter the secrets to encrypt them with the current key: {commands}"


# --- secrets in text -----------------------------------------------------------------------------


def secret_forms(secrets: Iterable[str], companions: Iterable[str] = ()) -> set[str]:
    """Every way a secret can appear in a request that a gateway may echo back: as is,
    percent-encoded (path, query, form), JSON-escaped, and base64 of `user:secret` (HTTP Basic
    auth, with each of `companions` — the other settings — or nothing as the user)."""
    wanted = [s for s in secrets if s and len(s) >= MIN_SECRET_CHARS and not s.startswith(ENV_PREFIX)]
    partners = {""} | {c for c in companions if c and "\n" not in c and len(c) <= 256}
    forms: set[str] = set()
    for secret in wanted:
        forms |= {secret, quote(secret, safe=""), quote(secret), quote_plus(secret),
                  json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
        for other in partners | set(wanted):
            for pair in (f"{other}:{secret}", f"{secret}:{other}"):
                forms.add(base64.b64encode(pair.encode("utf-8")).decode("ascii"))
    return {form for form in forms if len(form) >= MIN_SECRET_CHARS}


class Scrubber:
    """Replaces known secret forms in text, including one cut short where an excerpt ends in '…'."""

    def __init__(self, forms: Iterable[str], replacement: str = SCRUBBED) -> None:
        self.forms = sorted(set(forms), key=len, reverse=True)
        self.replacement = replacement
        self._pattern = re.compile("|".join(re.escape(f) for f in self.forms)) if self.forms else None
        self._prefixes: set[str] | None = None  # every beginning of a form, built when first needed

    def __bool__(self) -> bool:
        return self._pattern is not None

    def __call__(self, text: str | None) -> str | None:
        if not text or self._pattern is None:
            return text
        text = self._pattern.sub(self.replacement, text)
        if "…" in text:
            *cut, rest = text.split("…")
            text = "…".join([*(self._cut_tail(piece) for piece in cut), rest])
        return text

    def _cut_tail(self, piece: str) -> str:
        """`piece` without a secret's beginning at its end (an excerpt stopped inside the secret)."""
        if self._prefixes is None:
            self._prefixes = {form[:n] for form in self.forms for n in range(MIN_SECRET_CHARS, len(form))}
        longest = len(self.forms[0]) if self.forms else 0
        for length in range(min(longest, len(piece)), MIN_SECRET_CHARS - 1, -1):
            if piece[-length:] in self._prefixes:
                return piece[:-length] + self.replacement
        return piece


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
    """Replaces every registered secret (in any of the forms `secret_forms` gives) in log records
    by the mask."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._scrubber = Scrubber((), MASK)

    def register(self, *values: str) -> None:
        added = {v for v in values if v and len(v) >= MIN_SECRET_CHARS and not v.startswith(ENV_PREFIX)}
        if added - self._secrets:
            self._secrets |= added
            self._scrubber = Scrubber(self._secrets, MASK)

    def redact(self, text: str) -> str:
        return self._scrubber(text) or text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._scrubber:
            return True
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message or record.exc_info:
            record.msg = redacted
            record.args = None
        if record.exc_info and not record.exc_text:  # a traceback's text is redacted too
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
        return True


REDACTOR = RedactingFilter()
