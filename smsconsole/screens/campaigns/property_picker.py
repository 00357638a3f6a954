"""The `@` menu of the message body: the profile's known fields and properties, filtered as you type;
returns the chosen name (`profile.properties.city`), or None."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option


class PropertyPickerDialog(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="property-picker.cancel", tooltip="Keep the @ as typed"),
        Binding("down", "down", show=False, id="property-picker.down"),
        Binding("up", "up", show=False, id="property-picker.up"),
    ]

    def __init__(self, names: list[str]) -> None:
        super().__init__(classes="dialog-screen")
        self.names = names

    def compose(self) -> ComposeResult:
        with Vertical(id="property-picker", classes="dialog") as dialog:
            dialog.border_title = "Insert a profile property"
            yield Input(placeholder="filter, e.g. city", compact=True, id="property-filter")
            yield OptionList(*self._options(""), id="property-options")
            yield Static("enter: insert {{ name }} · escape: keep the @", classes="dialog-help", markup=False)

    def _options(self, text: str) -> list[Option]:
        needle = text.strip().lower()
        return [Option(name, id=name) for name in self.names if needle in name.lower()]

    @on(Input.Changed, "#property-filter")
    def _filter(self, event: Input.Changed) -> None:
        options = self.query_one("#property-options", OptionList)
        options.clear_options()
        options.add_options(self._options(event.value))
        options.highlighted = 0 if options.option_count else None

    def on_mount(self) -> None:
        options = self.query_one("#property-options", OptionList)
        options.highlighted = 0 if options.option_count else None
        self.query_one("#property-filter").focus()

    def action_down(self) -> None:
        self.query_one("#property-options", OptionList).action_cursor_down()

    def action_up(self) -> None:
        self.query_one("#property-options", OptionList).action_cursor_up()

    @on(Input.Submitted, "#property-filter")
    def _submitted(self) -> None:
        options = self.query_one("#property-options", OptionList)
        if options.highlighted is not None:
            self.dismiss(options.get_option_at_index(options.highlighted).id)

    @on(OptionList.OptionSelected, "#property-options")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
