"""Ask for a segment's name and make the service call with it (duplicate asks the copy's name). It
stays open until the call succeeds: a refused name is shown under the field with its reason."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ClassVar

from textual.binding import Binding, BindingType

from smsconsole.screens.dialogs.one_field import OneFieldDialog
from smsconsole.services.segments import SegmentView

SaveName = Callable[[str], Awaitable[SegmentView]]


class SegmentNameDialog(OneFieldDialog):
    """Returns what `save` returned, or None when cancelled."""

    PREFIX = "segment-name"
    FIELD = "name"
    AUTO_FOCUS = "#input-segment-name"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="segment-name.cancel", tooltip="Close without saving"),
        Binding("ctrl+s", "save", "Save", id="segment-name.save", tooltip="Save under this name"),
    ]

    def __init__(self, title: str, help: str, save: SaveName, *, name: str = "", confirm_label: str = "Save") -> None:
        super().__init__(title, help, "Name", save, value=name, confirm_label=confirm_label)
