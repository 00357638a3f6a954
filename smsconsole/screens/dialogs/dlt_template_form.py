"""Add or edit an India DLT content template: its DLT template id, the header (6-character sender)
it is registered under, category, content with {#var#} placeholders, name and principal entity.
The service checks every field; each refused one is named under it. Returns the saved template."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Input, TextArea

from smsconsole.screens.dialogs.registry_form import (
    RegistryFormDialog,
    SaveDraft,
    choices,
    select,
)
from smsconsole.screens.widgets.fields import FormField
from smsconsole.services.compliance.templates import DLT_CATEGORIES, DltTemplateView


class DltTemplateFormDialog(RegistryFormDialog):
    FIRST = "#input-dlt-id"
    HELP = ("As registered on the DLT portal: a message to India must match a template of its header, "
            "each {#var#} standing for up to 30 characters.")

    def __init__(self, save: SaveDraft, template: DltTemplateView | None = None) -> None:
        super().__init__(f"Edit DLT template {template.template_id}" if template else "New DLT template", save)
        self.template = template

    def compose_fields(self) -> ComposeResult:
        t = self.template
        yield FormField("template_id", "Template id", Input(t.template_id if t else "", compact=True,
                                                            id="input-dlt-id", placeholder="e.g. 1107161234567890123"),
                        required=True, help="The content template id the DLT portal gave (digits)")
        yield FormField("header", "Header", Input(t.header if t else "", compact=True, id="input-dlt-header",
                                                  max_length=16, placeholder="e.g. ACMEIN"),
                        required=True, help="The 6-character sender id the template is registered under")
        yield FormField("category", "Category", select(choices(DLT_CATEGORIES), t.category if t else None,
                                                       id="input-dlt-category", prompt="Choose"),
                        required=True)
        yield FormField("content", "Content", TextArea(t.content if t else "", compact=True, soft_wrap=True,
                                                       id="input-dlt-content"),
                        required=True, help="The registered text; {#var#} where a value goes")
        yield FormField("name", "Name", Input((t.name or "") if t else "", compact=True, id="input-dlt-name"))
        yield FormField("entity_id", "Entity id", Input((t.entity_id or "") if t else "", compact=True,
                                                        id="input-dlt-entity", placeholder="digits"),
                        help="The principal entity (PE) id, optional")
