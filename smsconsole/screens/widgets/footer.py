"""Textual's footer, fitted to the terminal: it never cuts a key in half."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import groupby

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.binding import Binding
from textual.events import Resize
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

KEPT_ACTIONS = frozenset({"quit", "app.quit"})  # shown whatever the width


@dataclass(frozen=True)
class _Item:
    """One thing the footer shows: a key with its description, or a group of keys and its label."""

    keys: tuple[str, ...]  # as displayed
    description: str
    action: str = ""
    grouped: bool = False
    compact_group: bool = True

    def width(self, compact: bool) -> int:
        """Cells it takes, by the rules of Textual's footer CSS (textual is pinned)."""
        if self.grouped:
            if self.compact_group:  # KeyGroup.-compact: padding-left 1, margin-right 1, keys bare
                keys = 2 + sum(cell_len(key) for key in self.keys)
            else:  # grouped keys: margin 0 1
                keys = sum(cell_len(key) + 2 for key in self.keys)
            return keys + cell_len(self.description) + 1
        key, description = cell_len(self.keys[0]), cell_len(self.description)
        if not description:
            return key + (1 if compact else 0)
        return key + 1 + description + 1 + (0 if compact else 1)


class FittingFooter(Footer):
    """When the keys do not fit beside the palette key, the footer takes Textual's compact style;
    if they still do not fit, it leaves out the key groups (the sections: the top bar shows their
    numbers), then the screen's keys from the last, keeping quit. Every key still works and is
    listed in the palette's Keys panel. The fit is worked out before the keys are mounted."""

    DEFAULT_CSS = """
    FittingFooter.-no-groups KeyGroup, FittingFooter.-no-groups FooterLabel {
        display: none;
    }
    FittingFooter.-compact FooterLabel {
        margin-right: 1;
    }
    """

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        items = list(self._items())
        compact, show_groups, dropped = self._fit(items, self.size.width)
        self.compact = compact
        self.set_class(not show_groups, "-no-groups")
        for widget in super().compose():
            if isinstance(widget, FooterKey) and (widget.key, widget.action) in dropped:
                widget.display = False
            yield widget

    def on_resize(self, event: Resize) -> None:
        if self._bindings_ready and event.size.width != getattr(self, "_fitted_width", None):
            self._fitted_width = event.size.width
            self.call_later(self.recompose)

    def _items(self) -> Iterable[tuple[_Item, Binding | None]]:
        """What Footer.compose will show, in its order (the same selection and grouping)."""
        by_action: dict[str, list[Binding]] = {}
        for _, binding, _, _ in self.screen.active_bindings.values():
            if binding.show:
                by_action.setdefault(binding.action, []).append(binding)
        for group, runs in groupby(by_action.values(), lambda bindings: bindings[0].group):
            firsts = [bindings[0] for bindings in runs]
            if group is not None and len(firsts) > 1:
                keys = tuple(self.app.get_key_display(binding) for binding in firsts)
                yield _Item(keys, group.description, grouped=True, compact_group=group.compact), None
            else:
                for binding in firsts:
                    yield _Item((self.app.get_key_display(binding),), binding.description, binding.action), binding

    def _fit(self, items: list[tuple[_Item, Binding | None]], width: int) -> tuple[bool, bool, set[tuple[str, str]]]:
        """(compact, show the groups, keys left out) for the fullest footer that fits `width`."""
        palette = self._palette_width
        droppable = [(item, binding) for item, binding in items
                     if binding is not None and binding.action not in KEPT_ACTIONS]
        options: list[tuple[bool, bool, int]] = [(False, True, 0), (True, True, 0)]
        options += [(True, False, dropped) for dropped in range(len(droppable) + 1)]
        for compact, show_groups, dropped in options:
            left_out = {id(item) for item, _ in droppable[len(droppable) - dropped:]} if dropped else set()
            used = sum(item.width(compact) for item, _ in items
                       if id(item) not in left_out and (show_groups or not item.grouped))
            if width <= 0 or used + palette(compact) <= width:
                break
        keys = {(binding.key, binding.action) for item, binding in droppable if id(item) in left_out and binding}
        return compact, show_groups, keys

    def _palette_width(self, compact: bool) -> int:
        if not (self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE):
            return 0
        try:
            _, binding, _, _ = self.screen.active_bindings[self.app.COMMAND_PALETTE_BINDING]
        except KeyError:
            return 0
        key, description = cell_len(self.app.get_key_display(binding)), cell_len(binding.description)
        # border-left 1; compact: "^p palette"; else " ^p palette " and padding-right 1
        return 1 + key + 1 + description + (0 if compact else 3)
