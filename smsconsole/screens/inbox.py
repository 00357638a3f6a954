"""Inbox section (placeholder until it lands)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from smsconsole.screens.base import SectionScreen


class InboxScreen(SectionScreen):
    MODE = "inbox"

    def compose_body(self) -> ComposeResult:
        yield Static("Inbox")
