"""Groups section (placeholder until it lands)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from smsconsole.screens.base import SectionScreen


class GroupsScreen(SectionScreen):
    MODE = "groups"

    def compose_body(self) -> ComposeResult:
        yield Static("Groups")
