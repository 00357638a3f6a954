"""What a process needs to work: configuration, the database, the secret box."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from smsconsole.config import Config
from smsconsole.db import is_read_only, open_database, session_factory
from smsconsole.files import tighten
from smsconsole.secrets import SecretBox, SecretError, locked_message, read_key
from smsconsole.services.sealed import has_encrypted_secrets, unreadable_secrets


@dataclass
class Runtime:
    config: Config
    db: AsyncEngine
    factory: async_sessionmaker[AsyncSession]
    box: SecretBox
    read_only: bool = False  # the database can be read but not written
    locked: str | None = None  # why the key cannot open the stored credentials (None: it can)

    @classmethod
    async def open(cls, config: Config, *, migrate: bool = True, need_secrets: bool = True) -> Runtime:
        """Open the database (created or upgraded unless migrate=False) and the secret key.

        A new key is made only for a database that holds no encrypted credential. When the key
        is missing or is not the one the stored credentials were encrypted with, this raises
        SecretError saying how to restore it, unless need_secrets=False (commands that read, and
        `providers update` to enter the secrets again). Raises DatabaseError / SecretError with a
        one-line reason."""
        for folder in (config.config_dir, config.data_dir):
            if folder.exists():
                tighten([folder])
        tighten([config.key_file])
        key = read_key(config.key_file, config.secret_key)
        from smsconsole.services.compliance.rules import use_config_dir  # the operator's rules file

        use_config_dir(config.config_dir)
        db = await open_database(config.effective_database_url, migrate=migrate)
        try:
            box = SecretBox(key, key_file=config.key_file, from_env=bool(config.secret_key))
            factory = session_factory(db)
            locked = await _check_key(factory, box, migrate)
            if locked and need_secrets:
                raise SecretError(locked)
        except BaseException:
            await db.dispose()
            raise
        return cls(config=config, db=db, factory=factory, box=box, read_only=is_read_only(db), locked=locked)

    async def close(self) -> None:
        await self.db.dispose()


async def _check_key(factory: async_sessionmaker[AsyncSession], box: SecretBox, migrated: bool) -> str | None:
    """Why `box` cannot open the stored credentials, or None; makes the key when there is none
    and nothing is encrypted."""
    if not migrated:  # the schema may not exist yet, so nothing is stored; a seal makes the key
        return None
    async with factory() as session:
        if not box.has_key:
            if await has_encrypted_secrets(session):
                return locked_message(box, await unreadable_secrets(session, box))
            box.make_key()
            return None
        unreadable = await unreadable_secrets(session, box)
    return locked_message(box, unreadable) if unreadable else None
