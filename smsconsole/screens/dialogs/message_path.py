"""A message's whole path: the message, each send attempt (provider, outcome, times), each delivery
receipt and each reply that answers it. Opened from Test send's recent list and from Stats."""

from __future__ import annotations

from typing import Any

from textual.screen import Screen

from smsconsole.screens.dialogs.message_detail import MessageDetailDialog
from smsconsole.services.errors import ServiceError
from smsconsole.services.stats import MessagePath, message_path


class MessagePathDialog(MessageDetailDialog):
    def __init__(self, path: MessagePath) -> None:
        super().__init__(path.message, path.attempts, path.receipts, path.replies)
        self.path = path


async def open_message_path(screen: Screen[Any], message_id: int) -> None:
    """Read the path (call from a worker) and show it; a message that is gone is a notification."""
    runtime = await screen.app.runtime()  # type: ignore[attr-defined]
    try:
        async with runtime.factory() as session:
            path = await message_path(session, message_id)
    except ServiceError as exc:
        screen.notify(str(exc), severity="error")
        return
    await screen.app.push_screen(MessagePathDialog(path))
