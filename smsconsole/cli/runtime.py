"""Opening the database for a command: its work runs with a Runtime that is closed after it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from smsconsole.cli.output import OperationFailed
from smsconsole.config import Config

ACTOR = "cli"  # who the audit log names for a change made from the command line


async def with_runtime(config: Config, work: Callable[[Any], Awaitable[int]], *, migrate: bool = True,
                       need_secrets: bool = False, writes: bool = False) -> int:
    """Run `work` with a runtime. need_secrets: refuse when the key cannot open the stored
    credentials; writes: refuse a read-only database up front (a command that runs the engine)."""
    from smsconsole.runtime import Runtime  # lazy: start-up (the database layer)

    runtime = await Runtime.open(config, migrate=migrate, need_secrets=need_secrets)
    if writes and runtime.read_only:
        await runtime.close()
        raise OperationFailed(f"the database {masked_url(config)} is read-only and this command writes to it")
    try:
        return await work(runtime)
    finally:
        await runtime.close()


def masked_url(config: Config) -> str:
    from smsconsole.secrets import mask_url  # lazy: start-up

    return mask_url(config.effective_database_url)
