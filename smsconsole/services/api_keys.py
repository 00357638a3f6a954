"""API keys for the ingestion API. A key reads `smsc_<prefix>_<secret>`: the prefix names the key
(shown in lists and logs), the whole key is shown once at creation and only its SHA-256 is kept."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole import clock
from smsconsole.models import ApiKey
from smsconsole.services import audit
from smsconsole.services.errors import NotFound, ValidationError

KEY_PREFIX = "smsc_"
PREFIX_LENGTH = 8
SECRET_LENGTH = 40
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits
_KEY_SHAPE = re.compile(rf"smsc_([a-z0-9]{{{PREFIX_LENGTH}}})_[A-Za-z0-9]{{32,128}}")
LAST_USED_RESOLUTION = timedelta(minutes=1)  # last_used_at is written at most this often


@dataclass(frozen=True)
class ApiKeyView:
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def hint(self) -> str:
        """How the key is shown after creation: its public part only."""
        return f"{KEY_PREFIX}{self.prefix}_…"


def _view(row: ApiKey) -> ApiKeyView:
    return ApiKeyView(row.id, row.name, row.prefix, row.created_at, row.last_used_at, row.revoked_at)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


async def create_api_key(session: AsyncSession, name: str, actor: str) -> tuple[ApiKeyView, str]:
    """A new key and its plaintext, which is never stored: show it once. The caller commits."""
    name = (name or "").strip()
    if not name:
        raise ValidationError([("name", "is required (what will use this key, e.g. 'signup-service')")])
    if len(name) > 64:
        raise ValidationError([("name", "is longer than 64 characters")])
    taken = await session.scalar(select(ApiKey.id).where(ApiKey.name == name, ApiKey.revoked_at.is_(None)))
    if taken is not None:
        raise ValidationError([("name", f"an active key is already named {name!r}")])
    while True:  # 36^8 prefixes: a collision is rare, so a retry is enough
        prefix = _random(_PREFIX_ALPHABET, PREFIX_LENGTH)
        if await session.scalar(select(ApiKey.id).where(ApiKey.prefix == prefix)) is None:
            break
    key = f"{KEY_PREFIX}{prefix}_{_random(_SECRET_ALPHABET, SECRET_LENGTH)}"
    row = ApiKey(name=name, prefix=prefix, key_hash=hash_key(key), created_at=clock.now())
    session.add(row)
    await session.flush()
    await audit.record(session, actor, "api_key.create", prefix, name=name)
    return _view(row), key


async def list_api_keys(session: AsyncSession, *, include_revoked: bool = True) -> list[ApiKeyView]:
    query = select(ApiKey).order_by(ApiKey.revoked_at.is_not(None), ApiKey.created_at.desc(), ApiKey.id.desc())
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return [_view(row) for row in await session.scalars(query)]


async def _find(session: AsyncSession, prefix_or_id: str | int) -> ApiKey:
    row = None
    if isinstance(prefix_or_id, int):
        row = await session.get(ApiKey, prefix_or_id)
    else:
        wanted = prefix_or_id.strip()
        if wanted.startswith(KEY_PREFIX):  # a whole key or "smsc_<prefix>_…" pasted from a list
            wanted = wanted[len(KEY_PREFIX):].split("_", 1)[0]
        row = await session.scalar(select(ApiKey).where(ApiKey.prefix == wanted.lower()))
        if row is None and wanted.isdigit():
            row = await session.get(ApiKey, int(wanted))
    if row is None:
        raise NotFound(f"no API key with prefix or id {str(prefix_or_id)[:20]!r}")
    return row


async def revoke_api_key(session: AsyncSession, prefix_or_id: str | int, actor: str) -> ApiKeyView:
    """Refuse the key from now on. Revoking a revoked key changes nothing. The caller commits."""
    row = await _find(session, prefix_or_id)
    if row.revoked_at is None:
        row.revoked_at = clock.now()
        await audit.record(session, actor, "api_key.revoke", row.prefix, name=row.name)
    return _view(row)


async def authenticate(session: AsyncSession, presented_key: str) -> ApiKeyView | None:
    """The active key matching `presented_key`, or None. Marks it used (at most once a minute);
    the caller commits."""
    match = _KEY_SHAPE.fullmatch(presented_key or "")
    if match is None:
        return None
    row = await session.scalar(select(ApiKey).where(ApiKey.prefix == match.group(1)))
    if row is None or not hmac.compare_digest(row.key_hash, hash_key(presented_key)):
        return None
    if row.revoked_at is not None:
        return None
    now = clock.now()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        row.last_used_at = now
    return _view(row)
