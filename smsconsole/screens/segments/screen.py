"""Segments: the saved segments (placeholder until the list and builder land)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from smsconsole.screens.base import SectionScreen


class SegmentsScreen(SectionScreen):
    MODE = "segments"

    def compose_body(self) -> ComposeResult:
        yield Static("Segments")
