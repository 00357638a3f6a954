"""Add or edit a saved message template (Settings → Message templates): its name, an optional
description and the Liquid body `POST /v1/messages` renders for `"template": NAME`. A line under the
body says what the text as typed costs (characters, GSM-7 or UCS-2, segments); the placeholders
fill in when a request renders it, so a sent message may be longer. The save runs here: each
refused field is explained under it and nothing typed is lost. Returns the saved template."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Footer, Input, Static, TextArea

from smsconsole.screens.dialogs.form import SavingFormDialog
from smsconsole.screens.widgets.fields import FieldError, FormField
from smsconsole.services.message_templates import (
    BODY_MAX,
    DESCRIPTION_MAX,
    TemplateView,
)
from smsconsole.sms import analyze

Draft = dict[str, str]  # name, description, body: as the service takes them
SaveTemplate = Callable[[Draft], Awaitable[TemplateView]]


def body_info(body: str) -> Text:
    """What the body as typed costs: its length against the limit, the encoding, the segments."""
    info = analyze(body)
    plural = "" if info.segments == 1 else "s"
    over = len(body) > BODY_MAX
    return Text.assemble(
        (f"{len(body):,} of {BODY_MAX:,} chars", "bold red" if over else ""), " · ",
        (str(info.encoding), "bold yellow" if info.non_gsm else "bold green"),
        f" · {info.segments} segment{plural}",
        (" (as typed, before Liquid)" if "{{" in body or "{%" in body else "", "dim"),
    )


class MessageTemplateFormDialog(SavingFormDialog[Draft, TemplateView | None]):
    """`template` is the one edited (None: a new one); `save` makes the service call."""

    AUTO_FOCUS = "#input-template-name"
    FORM_ERROR = "#template-form-error"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="template-form.cancel",
                tooltip="Close without saving (asks first when something was changed)"),
        Binding("ctrl+s", "save", "Save", id="template-form.save", tooltip="Validate and save"),
    ]

    def __init__(self, save: SaveTemplate, template: TemplateView | None = None) -> None:
        super().__init__(save, classes="dialog-screen")
        self.template = template

    def compose(self) -> ComposeResult:
        t = self.template
        with Vertical(id="template-form-dialog", classes="dialog") as dialog:
            dialog.border_title = f"Edit template {t.name}" if t else "New message template"
            yield FieldError(id="template-form-error")
            with VerticalScroll(id="template-form-fields"):
                yield FormField("name", "Name", Input(t.name if t else "", compact=True, id="input-template-name",
                                                      max_length=64, placeholder="e.g. order_shipped"),
                                required=True, help='What a request names: {"template": "order_shipped"}')
                yield FormField("description", "Description",
                                Input((t.description or "") if t else "", compact=True,
                                      id="input-template-description", max_length=DESCRIPTION_MAX,
                                      placeholder="optional, e.g. sent when the parcel leaves"))
                yield FormField("body", "Body (Liquid)",
                                TextArea(t.body if t else "", compact=True, soft_wrap=True, id="input-template-body",
                                         placeholder="Hi {{ profile.name }}, order {{ data.order }} has shipped."),
                                required=True, help=" ")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save", id="save", variant="primary", compact=True)
                yield Button("Cancel", id="cancel", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self._show_body_info()

    @on(TextArea.Changed, "#input-template-body")
    def _show_body_info(self) -> None:
        body = self.query_one("#input-template-body", TextArea).text
        self.query_one("#field-body > .form-field-help", Static).update(body_info(body))

    def draft(self) -> Draft:
        return {field.field_name: field.value for field in self.fields}
