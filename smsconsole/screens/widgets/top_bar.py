"""The line at the top of every section: the section tabs (click or press their key) and the engine
banner saying who runs the engine. The tabs take the widest form that leaves the banner room for
its short form (a dot and a word or two): with the brand and full titles on a wide terminal, then
without the brand, then closer together, then short titles, then short titles with the key against
them ("0Camp", 80 columns), then numbers only; the banner takes the rest and never pushes a tab off."""

from __future__ import annotations

from dataclasses import dataclass

from rich.cells import cell_len
from rich.text import Text
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

    def label(self, form: str) -> str:
        """The tab's text in one of the forms: full, short, glued (short, no space), number."""
        if form == "number":
            return self.section.key
        if form == "glued":
            return f"{self.section.key}{self.section.short_title}"
        return f"{self.section.key} {self.section.short_title if form == 'short' else self.section.title}"

    def show_title(self, form: str) -> None:
        label = self.label(form)
        # glued, the key stands out from its title by its style
        self.update(Text.assemble((label[0], "bold"), label[1:]) if form == "glued" else label)

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
    BANNER_ROOM = 16  # "● running here" and its padding: the banner's short form always fits
    BRAND_WIDTH = len("smsconsole") + 2
    # (classes, tab form, tab padding) from the widest layout to the narrowest
    LAYOUTS = (("", "full", 2), ("-no-brand", "full", 2), ("-no-brand -tight", "full", 1),
               ("-no-brand -tight", "short", 1), ("-no-brand -tight", "glued", 1), ("-no-brand -tight", "number", 1))

    def __init__(self, mode: str) -> None:
        super().__init__(id="top-bar")
        self.mode = mode

    def on_resize(self, event: Resize) -> None:
        self.fit(event.size.width)

    def fit(self, width: int) -> None:
        """Take the widest layout whose tabs leave the banner its room."""
        tabs = list(self.query(SectionTab))
        for classes, form, padding in self.LAYOUTS:
            used = sum(cell_len(tab.label(form)) + padding for tab in tabs)
            if "-no-brand" not in classes:
                used += self.BRAND_WIDTH
            if used + self.BANNER_ROOM <= width:
                break
        for name in ("-no-brand", "-tight"):
            self.set_class(name in classes.split(), name)
        for tab in tabs:
            tab.show_title(form)

    def compose(self) -> ComposeResult:
        yield Static("smsconsole", id="brand", markup=False)
        for section in SECTIONS:
            yield SectionTab(section, current=section.mode == self.mode)
        yield EngineBanner()
