"""Worker failures become notifications. Worker state messages do not bubble, so every node that
runs workers (the app, each section screen, each dialog with a worker) routes them here."""

from __future__ import annotations

import logging
from typing import Any

from textual.app import App
from textual.worker import Worker, WorkerState

log = logging.getLogger("smsconsole.console")


def report_worker_error(app: App[Any], event: Worker.StateChanged) -> None:
    error = event.worker.error
    if event.state is not WorkerState.ERROR or error is None:
        return
    log.error("%s failed: %s: %s", event.worker.name or "worker", type(error).__name__, error)
    app.notify(f"{type(error).__name__}: {error}", title="Something went wrong", severity="error", timeout=10)
