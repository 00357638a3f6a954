"""Logging to a rotating file (and stderr for `serve`), with every known secret redacted."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

from smsconsole.secrets import REDACTOR

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(log_file: Path, level: str = "INFO", to_stderr: bool = False) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_smsconsole", False):
            root.removeHandler(handler)
    handlers: list[logging.Handler] = []
    try:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.handlers.RotatingFileHandler(log_file, maxBytes=5_000_000, backupCount=3,
                                                             encoding="utf-8"))
    except OSError as exc:
        print(f"smsconsole: warning: cannot write log file {log_file}: {exc.strerror}", file=sys.stderr)
    if to_stderr:
        handlers.append(logging.StreamHandler(sys.stderr))
    for handler in handlers:
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.addFilter(REDACTOR)
        handler._smsconsole = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    # httpx logs full request URLs at INFO; some providers put credentials in query strings.
    for noisy in ("httpx", "httpcore", "apscheduler", "aiosqlite", "asyncio", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
