"""Whether the secret key opens the providers' stored credentials — asked by every process as it
opens the database, so this module imports only the rows, not the provider adapters."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole.models import Provider as ProviderRow
from smsconsole.secrets import ENC_PREFIX, SecretBox


async def unreadable_secrets(session: AsyncSession, box: SecretBox) -> list[tuple[str, list[str]]]:
    """Providers with encrypted secrets that `box` cannot decrypt: (name, secret field names)."""
    found = []
    for name, stored in await session.execute(select(ProviderRow.name, ProviderRow.secrets).order_by(ProviderRow.name)):
        fields = [field for field, sealed in sorted((stored or {}).items())
                  if str(sealed).startswith(ENC_PREFIX) and not box.can_open(sealed)]
        if fields:
            found.append((name, fields))
    return found


async def has_encrypted_secrets(session: AsyncSession) -> bool:
    """Whether any provider stores an encrypted secret (not only env: references)."""
    for (stored,) in await session.execute(select(ProviderRow.secrets)):
        if any(str(sealed).startswith(ENC_PREFIX) for sealed in (stored or {}).values()):
            return True
    return False
