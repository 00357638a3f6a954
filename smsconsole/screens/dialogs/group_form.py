"""The form to create or edit a provider group: name, countries, and its providers in priority
order (added from the existing providers, removed, moved by keys or buttons). It stays open until
the save succeeds: a refused save shows each reason under its field and loses nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Checkbox, Footer, Input, OptionList, Select
from textual.widgets.option_list import Option

from smsconsole.screens.dialogs.form import SavingFormDialog
from smsconsole.screens.widgets.fields import FieldError, FormField
from smsconsole.services.groups import MAX_MEMBERS, GroupView
from smsconsole.services.providers import ProviderView


@dataclass(frozen=True)
class GroupDraft:
    """What the operator typed, as services take it."""

    name: str
    countries: str
    providers: tuple[str, ...]
    is_default: bool


SaveGroup = Callable[[GroupDraft], Awaitable[GroupView]]


class GroupFormDialog(SavingFormDialog[GroupDraft, GroupView | None]):
    """Returns the saved group, or None when cancelled. `save` is the service call to make."""

    AUTO_FOCUS = "#input-group-name"
    FORM_ERROR = "#group-form-error"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="group-form.cancel",
                tooltip="Close without saving (asks first when something was changed)"),
        Binding("ctrl+s", "save", "Save", id="group-form.save", tooltip="Save the group"),
        Binding("shift+up,ctrl+up", "move(-1)", "Up", id="group-form.up",
                tooltip="Move the highlighted provider up (tried earlier)"),
        Binding("shift+down,ctrl+down", "move(1)", "Down", id="group-form.down",
                tooltip="Move the highlighted provider down (tried later)"),
        Binding("d,delete", "delete", "Remove", id="group-form.remove", show=False,
                tooltip="Take the highlighted provider out of the group"),
    ]

    def __init__(self, providers: Sequence[ProviderView], save: SaveGroup, *, current: GroupView | None = None) -> None:
        super().__init__(save, classes="dialog-screen")
        self.providers = {view.name: view for view in providers}
        self.current = current
        self.members: list[str] = list(current.provider_names) if current else []

    def compose(self) -> ComposeResult:
        current = self.current
        with Vertical(id="group-form", classes="dialog") as dialog:
            dialog.border_title = f"Edit group {current.name}" if current else "New provider group"
            yield FieldError(id="group-form-error")
            with VerticalScroll(id="group-form-fields"):
                yield FormField("name", "Name", Input(current.name if current else "", compact=True,
                                                      placeholder="e.g. india or default", id="input-group-name"),
                                required=True, help="Letters, digits, '.', '_' or '-'")
                yield FormField("countries", "Destination countries",
                                Input(", ".join(current.countries) if current else "", compact=True,
                                      placeholder="e.g. IN, GB (empty: none of its own)", id="input-countries"),
                                help="ISO codes; messages to these countries use this group. A country "
                                "belongs to one group")
                with Vertical(id="group-members-box"):
                    members = OptionList(id="group-members", compact=True)
                    yield FormField("providers", f"Providers in priority order (at most {MAX_MEMBERS})", members,
                                    required=True,
                                    help="The first healthy one sends. shift+↑/↓ (or ▲ ▼) reorder, d removes")
                    with Horizontal(id="group-member-tools"):
                        yield Select[str]([], prompt="Add a provider…", compact=True, id="add-member")
                        yield Button("▲", id="member-up", compact=True, tooltip="Move up (shift+↑)")
                        yield Button("▼", id="member-down", compact=True, tooltip="Move down (shift+↓)")
                        yield Button("Remove", id="member-remove", compact=True, tooltip="Remove (x)")
                if current is None:
                    yield Checkbox("Make it the default group", id="input-default", compact=True,
                                   tooltip="Messages with no group and no country group use the default")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save", id="save", variant="primary", compact=True)
                yield Button("Cancel", id="cancel", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self._show_members()

    def form_state(self) -> object:
        return super().form_state(), tuple(self.members)

    @property
    def member_list(self) -> OptionList:
        return self.query_one("#group-members", OptionList)

    def _label(self, position: int, name: str) -> str:
        view = self.providers.get(name)
        kind = f" ({view.display_name})" if view else ""
        off = " — disabled" if view is not None and not view.enabled else ""
        return f"{position}. {name}{kind}{off}"

    def _show_members(self, highlight: str | None = None) -> None:
        members = self.member_list
        members.clear_options()
        members.add_options([Option(self._label(i, name), id=name) for i, name in enumerate(self.members, start=1)])
        if not self.members:
            members.add_option(Option("(none yet: add one below)", id="-none", disabled=True))
        elif highlight in self.members:
            members.highlighted = self.members.index(highlight)
        available = [(self._label(0, name).removeprefix("0. "), name) for name in self.providers
                     if name not in self.members]
        add = self.query_one("#add-member", Select)
        add.set_options(available)
        add.disabled = not available
        add.prompt = "Add a provider…" if available else "Every provider is in the group"

    def _highlighted_member(self) -> str | None:
        index = self.member_list.highlighted
        return self.members[index] if index is not None and 0 <= index < len(self.members) else None

    @on(Select.Changed, "#add-member")
    def _add_member(self, event: Select.Changed) -> None:
        if not isinstance(event.value, str) or event.value in self.members:
            return
        error = self.query_one("#field-providers", FormField).error
        if len(self.members) >= MAX_MEMBERS:
            error.show(f"a group holds at most {MAX_MEMBERS} providers; remove one before adding {event.value}")
            event.select.clear()
            return
        error.show(None)
        self.members.append(event.value)
        self._show_members(highlight=event.value)

    @on(Button.Pressed, "#member-up")
    def _up(self) -> None:
        self.action_move(-1)

    @on(Button.Pressed, "#member-down")
    def _down(self) -> None:
        self.action_move(1)

    def action_move(self, step: int) -> None:
        name = self._highlighted_member()
        if name is None:
            return
        index = self.members.index(name)
        target = max(0, min(len(self.members) - 1, index + step))
        self.members.insert(target, self.members.pop(index))
        self._show_members(highlight=name)

    @on(Button.Pressed, "#member-remove")
    def action_delete(self) -> None:
        name = self._highlighted_member()
        if name is None:
            return
        index = self.members.index(name)
        self.members.remove(name)
        self._show_members(highlight=self.members[min(index, len(self.members) - 1)] if self.members else None)
        self.query_one("#field-providers", FormField).error.show(None)

    def draft(self) -> GroupDraft:
        default = self.query("#input-default")
        return GroupDraft(
            name=self.query_one("#input-group-name", Input).value.strip(),
            countries=self.query_one("#input-countries", Input).value,
            providers=tuple(self.members),
            is_default=bool(default) and self.query_one("#input-default", Checkbox).value,
        )
