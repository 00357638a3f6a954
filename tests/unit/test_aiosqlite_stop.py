"""A connection stopped twice still closes: the hang that froze the console's exit and test teardown
(SQLAlchemy force-stops a connection whose query was cancelled while its graceful close runs)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import aiosqlite

from smsconsole.db import _fix_aiosqlite_double_stop


async def _close_racing_a_forced_stop(path: Path) -> None:
    conn = await aiosqlite.connect(path)
    closing = asyncio.create_task(conn.close())
    await asyncio.sleep(0)  # the graceful close has queued its request to the worker thread
    conn.stop()  # what SQLAlchemy's terminate does when the shielded close was cancelled
    with contextlib.suppress(ValueError):
        await asyncio.wait_for(closing, timeout=10)


async def test_a_close_racing_a_forced_stop_finishes(tmp_path: Path) -> None:
    _fix_aiosqlite_double_stop()
    await _close_racing_a_forced_stop(tmp_path / "a.db")


async def test_a_close_after_a_stop_finishes(tmp_path: Path) -> None:
    _fix_aiosqlite_double_stop()
    conn = await aiosqlite.connect(tmp_path / "b.db")
    conn.stop()
    with contextlib.suppress(ValueError):  # aiosqlite says "Connection closed"; it must not hang
        await asyncio.wait_for(conn.close(), timeout=10)
