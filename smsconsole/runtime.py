"""What a process needs to work: configuration, the database, the secret box."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from smsconsole.config import Config
from smsconsole.db import open_database, session_factory
from smsconsole.secrets import SecretBox, load_or_create_key


@dataclass
class Runtime:
    config: Config
    db: AsyncEngine
    factory: async_sessionmaker[AsyncSession]
    box: SecretBox

    @classmethod
    async def open(cls, config: Config, *, migrate: bool = True) -> Runtime:
        """Open the database (created or upgraded unless migrate=False) and the secret key.
        Raises DatabaseError / SecretError with a one-line reason."""
        box = SecretBox(load_or_create_key(config.key_file, config.secret_key))
        db = await open_database(config.effective_database_url, migrate=migrate)
        return cls(config=config, db=db, factory=session_factory(db), box=box)

    async def close(self) -> None:
        await self.db.dispose()
