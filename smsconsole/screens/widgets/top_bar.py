"""The line at the top of every section: the section tabs (click or press their key) and the engine
banner saying who runs the engine."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.events import Click
from textual.widgets import Static

from smsconsole.screens.sections import SECTIONS, Section


@dataclass(frozen=True)
class EngineInfo:
    """What the banner shows. `tone` is one of: here, elsewhere, none."""

    description: str
    tone: str = "none"


class SectionTab(Static):
    """One section's tab; a click switches to its mode."""

    def __init__(self, section: Section, *, current: bool) -> None:
        super().__init__(f"{section.key} {section.title}", id=f"tab-{section.mode}", markup=False,
                         classes="section-tab -current" if current else "section-tab")
        self.section = section
        self.tooltip = section.tooltip

    async def on_click(self, event: Click) -> None:
        event.stop()
        await self.app.switch_mode(self.section.mode)


class EngineBanner(Static):
    """Who runs the engine, kept in step with the app's `engine_info`."""

    def __init__(self) -> None:
        super().__init__("", id="engine-banner", markup=False)

    def on_mount(self) -> None:
        self.watch(self.app, "engine_info", self._show)

    def _show(self, info: EngineInfo) -> None:
        self.update(f"● {info.description}")
        for tone in ("here", "elsewhere", "none"):
            self.set_class(info.tone == tone, f"-{tone}")


class TopBar(Horizontal):
    def __init__(self, mode: str) -> None:
        super().__init__(id="top-bar")
        self.mode = mode

    def compose(self) -> ComposeResult:
        yield Static("smsconsole", id="brand", markup=False)
        for section in SECTIONS:
            yield SectionTab(section, current=section.mode == self.mode)
        yield EngineBanner()
