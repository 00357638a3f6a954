"""The line at the top of every section: the section tabs (click or press their key) and the engine
banner saying who runs the engine. On a narrow terminal the tabs take their short titles and the
banner its short form, so six tabs and the banner fit in 80 columns."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.events import Click, Resize
from textual.widgets import Static

from smsconsole.screens.sections import SECTIONS, Section


@dataclass(frozen=True)
class EngineInfo:
    """What the banner shows. `tone` is one of: here, elsewhere, none."""

    description: str
    tone: str = "none"
    short: str = ""  # shown when the description does not fit, e.g. "not running"


class SectionTab(Static):
    """One section's tab; a click switches to its mode."""

    def __init__(self, section: Section, *, current: bool) -> None:
        super().__init__(f"{section.key} {section.title}", id=f"tab-{section.mode}", markup=False,
                         classes="section-tab -current" if current else "section-tab")
        self.section = section
        self.tooltip = section.tooltip

    def show_title(self, *, short: bool) -> None:
        self.update(f"{self.section.key} {self.section.short_title if short else self.section.title}")

    async def on_click(self, event: Click) -> None:
        event.stop()
        await self.app.switch_mode(self.section.mode)


class EngineBanner(Static):
    """Who runs the engine, kept in step with the app's `engine_info`."""

    def __init__(self) -> None:
        super().__init__("", id="engine-banner", markup=False)
        self._info = EngineInfo("")

    def on_mount(self) -> None:
        self.watch(self.app, "engine_info", self._show)

    def on_resize(self, _: Resize) -> None:
        self._show(self._info)

    def _show(self, info: EngineInfo) -> None:
        self._info = info
        full = f"● {info.description}"
        fits = len(full) < self.size.width  # one column is the right padding
        self.update(full if fits or not info.short else f"● {info.short}")
        self.tooltip = None if fits else info.description
        for tone in ("here", "elsewhere", "none"):
            self.set_class(info.tone == tone, f"-{tone}")


class TopBar(Horizontal):
    NARROW = 100  # below this many columns the tabs take their short titles

    def __init__(self, mode: str) -> None:
        super().__init__(id="top-bar")
        self.mode = mode

    def on_resize(self, event: Resize) -> None:
        for tab in self.query(SectionTab):
            tab.show_title(short=event.size.width < self.NARROW)

    def compose(self) -> ComposeResult:
        yield Static("smsconsole", id="brand", markup=False)
        for section in SECTIONS:
            yield SectionTab(section, current=section.mode == self.mode)
        yield EngineBanner()
