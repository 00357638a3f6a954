"""Choose which kind of provider to add: returns the kind, or None."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from smsconsole.services.providers import KindView

SANDBOX = "sandbox"


class KindPickerDialog(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="kind-picker.cancel", tooltip="Close without adding a provider"),
    ]

    def __init__(self, kinds: Sequence[KindView]) -> None:
        super().__init__(classes="dialog-screen")
        # the Sandbox first: the help line points to it and it needs no account
        self.kinds = sorted(kinds, key=lambda kind: kind.kind != SANDBOX)

    def compose(self) -> ComposeResult:
        with Vertical(id="kind-picker", classes="dialog") as dialog:
            dialog.border_title = "Add provider"
            yield Static("Which kind of provider? (Sandbox needs no account.)", classes="dialog-help")
            yield OptionList(
                *(Option(Text.assemble((kind.display_name, "bold"), "\n", (kind.description, "dim")), id=kind.kind)
                  for kind in self.kinds),
                id="kind-options",
            )
        yield Footer()

    @on(OptionList.OptionSelected, "#kind-options")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
