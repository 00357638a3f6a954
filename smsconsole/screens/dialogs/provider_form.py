"""The form to add or edit a provider, generated from the kind's declared fields. It stays open
until the save succeeds: a refused save shows each reason under its field and loses nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Button, Footer, Input, Select, Static, Switch, TextArea

from smsconsole.screens.dialogs.curl_paste import CurlPasteDialog
from smsconsole.screens.dialogs.form import SavingFormDialog
from smsconsole.screens.widgets.fields import FieldError, FormField, set_control_value
from smsconsole.secrets import ENV_PREFIX, MASK
from smsconsole.services.providers import PRESETS, CurlImport, FieldView, KindView, ProviderView, preset, preview_curl

KEEP_SECRET = "leave empty to keep the stored secret"
GENERIC = "generic"
# The Generic HTTP settings a curl command describes (the rest are ours: batching, parsing answers).
CURL_FIELDS = ("method", "url", "username", "password", "headers", "body_type", "params", "raw_body")


def as_example(placeholder: str) -> str:
    """A declared placeholder as the form shows it: marked as an example, so it never reads as a
    value already filled in."""
    text = placeholder.strip()
    return f"e.g. {text}" if text and not text.lower().startswith(("e.g.", "default")) else text


@dataclass(frozen=True)
class ProviderDraft:
    """What the operator typed, as services take it."""

    name: str
    base_url: str | None
    values: dict[str, str]
    enabled: bool
    rate_limit: str = ""  # segments per second as typed; empty: no limit
    sender_rate_limit: str = ""


SaveProvider = Callable[[ProviderDraft], Awaitable[ProviderView]]


class ProviderFormDialog(SavingFormDialog[ProviderDraft, ProviderView | None]):
    """Returns the saved provider, or None when cancelled. `save` is the service call to make."""

    AUTO_FOCUS = "#input-name"
    FORM_ERROR = "#provider-form-error"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="provider-form.cancel",
                tooltip="Close without saving (asks first when something was changed)"),
        Binding("ctrl+s", "save", "Save", id="provider-form.save", tooltip="Save the provider"),
    ]

    def __init__(self, kind: KindView, save: SaveProvider, *, current: ProviderView | None = None,
                 values: Mapping[str, str] | None = None) -> None:
        super().__init__(save, classes="dialog-screen")
        self.kind = kind
        self.current = current
        self.values = dict(values or {})

    def compose(self) -> ComposeResult:
        editing = self.current is not None
        current_name = self.current.name if self.current else ""
        current_base_url = (self.current.base_url or "") if self.current else ""
        with Vertical(id="provider-form", classes="dialog") as dialog:
            dialog.border_title = (f"Edit {self.current.name} ({self.kind.display_name})" if self.current
                                   else f"Add {self.kind.display_name} provider")
            if self.kind.description:
                yield Static(self.kind.description, classes="dialog-help", markup=False)
            yield FieldError(id="provider-form-error")
            with VerticalScroll(id="provider-form-fields"):
                yield from self.compose_kind_tools()
                yield FormField("name", "Name", Input(current_name,
                                                      placeholder="e.g. sandbox or twilio-us", compact=True,
                                                      id="input-name"),
                                help="Letters, digits, '.', '_' or '-'; used by the CLI and in reports",
                                required=True)
                for field in self.kind.fields:
                    yield FormField(field.name, field.label, self._control(field), help=self._help(field),
                                    required=field.required)
                yield FormField("base_url", "Base URL",
                                Input(current_base_url,
                                      placeholder=(f"default: {self.kind.default_base_url}" if self.kind.default_base_url
                                                   else "e.g. https://sms.example.com"), compact=True,
                                      id="input-base-url"),
                                help="Leave empty for the provider's own endpoint; set it for a proxy or a test server")
                with Horizontal(id="provider-rate-limits"):
                    yield FormField("rate_limit", "Rate limit",
                                    Input(self._rate(self.current.rate_limit if self.current else None),
                                          placeholder="no limit", compact=True, id="input-rate-limit"),
                                    help="Segments per second the provider allows; empty: no limit")
                    yield FormField("sender_rate_limit", "Per sender",
                                    Input(self._rate(self.current.sender_rate_limit if self.current else None),
                                          placeholder="no limit", compact=True, id="input-sender-rate-limit"),
                                    help="Segments per second per sender (e.g. Twilio long codes)")
                if editing:
                    assert self.current is not None
                    yield FormField("enabled", "Enabled", Switch(self.current.enabled, id="input-enabled"),
                                    help="A disabled provider sends nothing")
                yield from self.compose_kind_extras()
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save", id="save", variant="primary", compact=True)
                yield Button("Cancel", id="cancel", compact=True)
        yield Footer()

    def compose_kind_tools(self) -> ComposeResult:
        """Helpers above the fields. Generic HTTP: fill the form from a pasted curl command."""
        if self.kind.kind == GENERIC:
            with Horizontal(id="curl-tools"):
                yield Select([(p.name, p.key) for p in PRESETS], prompt="Start from a preset…", id="preset",
                             compact=True, tooltip="Fill the form with a documented gateway's request")
                yield Button("Paste curl…", id="paste-curl", compact=True,
                             tooltip="Fill the request settings from a provider's sample curl command")
            yield Static("", id="curl-notes", markup=False)

    def compose_kind_extras(self) -> ComposeResult:
        """Helpers below the fields. Generic HTTP: the request it will send, read only."""
        if self.kind.kind == GENERIC:
            yield FormField("request_preview", "Request preview (secrets masked)",
                            Static("", id="request-preview", markup=False),
                            help="Placeholders stay as typed; they are filled per message when sending")

    def _control(self, field: FieldView) -> Widget:
        value = self.values.get(field.name, "" if self.current else field.default)
        widget_id = f"input-{field.name.replace('_', '-')}"
        if field.kind == "bool":
            return Switch(value.strip().lower() in ("true", "yes", "1"), id=widget_id)
        if field.choices:
            options = [(choice, choice) for choice in field.choices]
            return Select(options, value=value if value in field.choices else Select.NULL,
                          allow_blank=not field.required, compact=True, id=widget_id)
        if field.kind == "multiline":
            return TextArea(value, compact=True, id=widget_id, classes="form-multiline")
        return Input(
            value, id=widget_id, compact=True,
            password=field.secret and not value.startswith(ENV_PREFIX),
            placeholder=KEEP_SECRET if self._stored_secret(field) else as_example(field.placeholder),
            type="integer" if field.kind == "int" else "text",
        )

    @staticmethod
    def _rate(value: float | None) -> str:
        return f"{value:g}" if value else ""

    def _help(self, field: FieldView) -> str:
        parts = [field.help] if field.help else []
        if field.secret and ENV_PREFIX not in field.help:
            parts.append("env:NAME reads it from the environment at use")
        if self._stored_secret(field):
            parts.append(KEEP_SECRET.capitalize())
        return ". ".join(part.rstrip(".") for part in parts) + ("." if parts else "")

    def _stored_secret(self, field: FieldView) -> bool:
        return field.secret and self.current is not None and self.current.settings.get(field.name) == MASK

    @property
    def fields(self) -> list[FormField]:
        return [field for field in self.query(FormField) if field.field_name != "request_preview"]

    def on_mount(self) -> None:
        self._update_preview()
        # focusing the name field centres it; start at the top, where the form begins
        scroll = self.query_one("#provider-form-fields", VerticalScroll)
        self.call_after_refresh(scroll.scroll_home, animate=False)

    def draft(self) -> ProviderDraft:
        by_name = {field.field_name: field for field in self.fields}
        kind_fields = {f.name for f in self.kind.fields}
        return ProviderDraft(
            name=by_name["name"].value.strip(),
            base_url=by_name["base_url"].value.strip() or None,
            values={name: field.value for name, field in by_name.items() if name in kind_fields},
            enabled=by_name["enabled"].value == "true" if "enabled" in by_name else True,
            rate_limit=by_name["rate_limit"].value.strip(),
            sender_rate_limit=by_name["sender_rate_limit"].value.strip(),
        )

    def fill(self, values: Mapping[str, str]) -> None:
        """Put values into the fields they name (e.g. from a pasted curl command)."""
        for field in self.fields:
            if field.field_name in values:
                set_control_value(field.control, values[field.field_name])

    @on(Input.Changed)
    def _reveal_references(self, event: Input.Changed) -> None:
        """An env:NAME reference is not a secret: show it as typed; hide anything else."""
        field = next((f for f in self.kind.fields if f"input-{f.name.replace('_', '-')}" == event.input.id), None)
        if field is not None and field.secret:
            event.input.password = not event.value.startswith(ENV_PREFIX)

    @on(Input.Changed)
    @on(TextArea.Changed)
    @on(Select.Changed)
    def _update_preview(self) -> None:
        if self.kind.kind != GENERIC or not self.is_mounted:
            return
        try:
            preview = Text(preview_curl(self.draft().values))
        except ValueError as exc:  # GenericRequestError: the settings cannot make a request yet
            preview = Text(f"Shown once the settings can make a request ({exc})", style="dim")
        self.query_one("#request-preview", Static).update(preview)

    @on(Select.Changed, "#preset")
    def _preset_chosen(self, event: Select.Changed) -> None:
        """Replace the request settings by the preset's; say what the operator must still fill in."""
        if not isinstance(event.value, str):
            return
        chosen = preset(event.value)
        defaults = {f.name: f.default for f in self.kind.fields if f.name not in ("sender", "api_key")}
        self.fill({**defaults, **chosen.values})
        notes = [f"{chosen.name} — still to do: {'; '.join(chosen.needs)}.", *chosen.notes]
        if chosen.adapter:
            notes.append(f"The dedicated {chosen.adapter} provider kind also reads receipts and error codes.")
        self.query_one("#curl-notes", Static).update("\n".join(notes))

    @on(Button.Pressed, "#paste-curl")
    def _paste_curl(self) -> None:
        self.app.push_screen(CurlPasteDialog(), self._curl_imported)

    def _curl_imported(self, imported: CurlImport | None) -> None:
        """Replace the request settings by the imported ones; say what to adjust."""
        if imported is None:
            return
        defaults = {f.name: f.default for f in self.kind.fields}
        self.fill({name: imported.config.get(name, defaults[name]) for name in CURL_FIELDS})
        notes = [*imported.suggestions, *imported.warnings]
        if imported.unknown:
            notes.append(f"left out (not understood): {' '.join(imported.unknown)}")
        self.query_one("#curl-notes", Static).update("\n".join(notes) or "Imported.")
