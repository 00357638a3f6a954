"""`smsconsole serve --workers N`: N engine processes on this machine sharing one PostgreSQL
database. This process supervises them and runs no engine itself: each child is a plain
`smsconsole serve` (one of them takes the scheduler lease, all of them dispatch and serve the
listener on the same port through SO_REUSEPORT). A child that dies is restarted after a backoff
(1 s, doubling to 30 s; back to 1 s once it has run a minute); what it had claimed is recovered by
the scheduler as for any dead worker. SIGTERM or Ctrl+C stops them all (SIGTERM, then SIGKILL
after STOP_GRACE seconds)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from pathlib import Path

log = logging.getLogger("smsconsole.serve")

STOP_GRACE = 20.0
BACKOFF_FIRST, BACKOFF_CAP, STEADY_AFTER = 1.0, 30.0, 60.0
POOL_MEMBER_ENV = "SMSCONSOLE_POOL_MEMBER"  # set in a child: share the listener's port


def child_log_file(log_file: Path, slot: int) -> Path:
    """Each child logs to its own file beside the main one (rotation is per process)."""
    return log_file.with_name(f"{log_file.stem}-worker{slot}{log_file.suffix or '.log'}")


class Pool:
    def __init__(self, size: int, database_url: str, log_file: Path, log_level: str) -> None:
        self.size = size
        self.database_url = database_url
        self.log_file = log_file
        self.log_level = log_level
        self.children: dict[int, asyncio.subprocess.Process] = {}
        self._started: dict[int, float] = {}
        self._backoff: dict[int, float] = {}

    async def _start(self, slot: int) -> None:
        env = {**os.environ, "SMSCONSOLE_DATABASE_URL": self.database_url, "SMSCONSOLE_LOG_LEVEL": self.log_level,
               "SMSCONSOLE_LOG_FILE": str(child_log_file(self.log_file, slot)), POOL_MEMBER_ENV: str(slot)}
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "smsconsole", "serve", env=env)
        self.children[slot] = proc
        self._started[slot] = time.monotonic()
        log.info("worker %d started (pid %d)", slot, proc.pid)

    async def run(self, stop: asyncio.Event) -> int:
        for slot in range(1, self.size + 1):
            await self._start(slot)
        try:
            while not stop.is_set():
                waits = {asyncio.ensure_future(proc.wait()): slot for slot, proc in self.children.items()}
                stopping = asyncio.ensure_future(stop.wait())
                done, _ = await asyncio.wait([*waits, stopping], return_when=asyncio.FIRST_COMPLETED)
                for future in [*waits, stopping]:
                    if future not in done:
                        future.cancel()
                if stop.is_set():
                    break
                for future in done:
                    if future in waits:
                        await self._restart(waits[future], stop)
        finally:
            await self._stop_all()
        return 0

    async def _restart(self, slot: int, stop: asyncio.Event) -> None:
        proc = self.children[slot]
        code = proc.returncode
        how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with status {code}"
        ran = time.monotonic() - self._started.get(slot, 0.0)
        delay = BACKOFF_FIRST if ran >= STEADY_AFTER else self._backoff.get(slot, BACKOFF_FIRST)
        self._backoff[slot] = min(BACKOFF_CAP, delay * 2)
        log.warning("worker %d (pid %d) %s; restarting it in %.0f s", slot, proc.pid, how, delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)
        if not stop.is_set():
            await self._start(slot)

    async def _stop_all(self) -> None:
        running = [proc for proc in self.children.values() if proc.returncode is None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.gather(*(proc.wait() for proc in running)), timeout=STOP_GRACE)
        except TimeoutError:
            for proc in running:
                if proc.returncode is None:
                    log.warning("worker pid %d did not stop within %.0f s; killing it", proc.pid, STOP_GRACE)
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
            await asyncio.gather(*(proc.wait() for proc in running), return_exceptions=True)
        log.info("all %d workers stopped", len(self.children))
