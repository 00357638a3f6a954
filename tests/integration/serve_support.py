"""Helpers of the tests that run `smsconsole serve` as a child process and kill it (the dispatch
crash test, the workers tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from smsconsole.models import Message
from smsconsole.runtime import Runtime


def start_serve(env: dict[str, str], log: Path, *extra: str) -> subprocess.Popen[bytes]:
    """`smsconsole serve` (and `extra` arguments) with its output appended to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "smsconsole", "serve", *extra], env=env, stdout=out,
                                stderr=subprocess.STDOUT)


async def open_count(rt: Runtime) -> int:
    """Messages not yet settled: queued, claimed or sending."""
    async with rt.factory() as session:
        return await session.scalar(select(func.count()).select_from(Message)
                                    .where(Message.state.in_(("queued", "claimed", "sending")))) or 0


async def message_states(rt: Runtime, *where: Any) -> dict[str, str]:
    """Each message's state by its id (as text), of the messages `where` selects (all by default)."""
    async with rt.factory() as session:
        rows = await session.execute(select(Message.id, Message.state).where(*where))
        return {str(message_id): state for message_id, state in rows}
