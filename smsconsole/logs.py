"""Logging to a rotating file (and stderr for `serve`), with every known secret redacted and a
flood of one line collapsed (so a storm of errors cannot rotate every earlier line out)."""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import threading
from pathlib import Path
from typing import IO, Any

from smsconsole.files import PRIVATE_FILE, private_dir, tighten
from smsconsole.secrets import REDACTOR

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REPEAT_WINDOW_SECONDS = 10.0
REPEAT_BURST = 5  # lines of one kind let through per window


class RepeatFilter(logging.Filter):
    """Per kind of line (logger, level and message template, whatever its arguments), the first
    REPEAT_BURST records of each REPEAT_WINDOW_SECONDS pass; the rest are counted and left out,
    and the next line of that kind to pass says so: "… (repeated 532 more times in the previous
    10 s)". One instance may serve several handlers: each record is decided once."""

    def __init__(self, window: float = REPEAT_WINDOW_SECONDS, burst: int = REPEAT_BURST,
                 max_kinds: int = 2000) -> None:
        super().__init__()
        self.window, self.burst, self.max_kinds = window, burst, max_kinds
        self._kinds: dict[tuple[str, int, str], list[float]] = {}  # kind → [window start, passed, left out]
        self._last: tuple[logging.LogRecord, bool] | None = None
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            if self._last is not None and self._last[0] is record:
                return self._last[1]
            keep = self._decide(record)
            self._last = (record, keep)
            return keep

    def _decide(self, record: logging.LogRecord) -> bool:
        kind = (record.name, record.levelno, record.msg if isinstance(record.msg, str) else str(record.msg))
        now = record.created
        state = self._kinds.get(kind)
        if state is None or now - state[0] >= self.window:
            left_out = int(state[2]) if state else 0
            if state is None and len(self._kinds) >= self.max_kinds:
                self._forget(now)
            self._kinds[kind] = [now, 1, 0]
            if left_out:  # said by our formatter only: the record is shared with every other handler
                record.smsc_repeats = f" (repeated {left_out} more times in the previous {self.window:g} s)"
            return True
        if state[1] < self.burst:
            state[1] += 1
            return True
        state[2] += 1
        return False

    def _forget(self, now: float) -> None:
        for kind in [k for k, (start, _, _) in self._kinds.items() if now - start >= self.window]:
            del self._kinds[kind]
        if len(self._kinds) >= self.max_kinds:  # a flood of distinct templates: start over
            self._kinds.clear()


BACKUPS = 3


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log whose files (the current one and each new one after a rotation) are
    readable by this user only, and which says in one line, once, when it cannot write (a full
    disk) instead of printing a traceback for every record."""

    _warned = False

    def _open(self) -> IO[Any]:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE)
        return open(fd, "a", encoding=self.encoding, errors=self.errors)  # noqa: SIM115

    def handleError(self, record: logging.LogRecord) -> None:
        if self._warned:
            return
        self._warned = True
        error = sys.exc_info()[1]
        reason = getattr(error, "strerror", None) or (type(error).__name__ if error else "unknown error")
        print(f"smsconsole: warning: cannot write the log file {self.baseFilename}: {reason}; "
              "later log lines may be lost", file=sys.stderr)


class LineFormatter(logging.Formatter):
    """The log line, plus the RepeatFilter's count of the lines of its kind left out."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        return super().formatMessage(record) + getattr(record, "smsc_repeats", "")


def setup_logging(log_file: Path, level: str = "INFO", to_stderr: bool = False) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_smsconsole", False):
            root.removeHandler(handler)
    handlers: list[logging.Handler] = []
    try:
        private_dir(log_file.parent)
        # backslashreplace: text from outside (a lone surrogate in a callback) never breaks a log line
        handlers.append(PrivateRotatingFileHandler(log_file, maxBytes=5_000_000, backupCount=BACKUPS,
                                                   encoding="utf-8", errors="backslashreplace"))
    except OSError as exc:
        print(f"smsconsole: warning: cannot write log file {log_file}: {exc.strerror}", file=sys.stderr)
    if to_stderr:
        handlers.append(logging.StreamHandler(sys.stderr))
    repeats = RepeatFilter()
    for handler in handlers:
        handler.setFormatter(LineFormatter(FORMAT))
        handler.addFilter(repeats)
        handler.addFilter(REDACTOR)
        handler._smsconsole = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    tighten([log_file, *(Path(f"{log_file}.{n}") for n in range(1, BACKUPS + 1))])  # logged once handlers exist
    # httpx logs full request URLs at INFO; some providers put credentials in query strings.
    for noisy in ("httpx", "httpcore", "apscheduler", "aiosqlite", "asyncio", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
