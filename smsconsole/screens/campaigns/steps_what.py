"""The wizard's What step: the route (default routing, a group or one provider) and sender, the
Liquid message body with a live preview for a sample or chosen profile (characters, encoding,
segments and the characters forcing UCS-2), `@` to insert a profile property, the Generic
provider's blocks when its request template uses them, DLT fields for providers that carry them,
and the linked content failure policy."""

from __future__ import annotations

import asyncio
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Select, Static, TextArea

from smsconsole.screens.campaigns.property_picker import PropertyPickerDialog
from smsconsole.screens.campaigns.wizard import WizardStep, step_field, text_number
from smsconsole.services.campaigns.choices import (
    WhatBlocks,
    route_choices,
    route_from_value,
    route_value,
    what_blocks,
)
from smsconsole.services.campaigns.definition import parse_document
from smsconsole.services.campaigns.render import known_properties, preview
from smsconsole.services.errors import ServiceError

PREVIEW_DELAY_SECONDS = 0.3
KEY_BLOCKS = (("body_values", "Message body key-values", "personalisation allowed"),
              ("header_values", "Header key-values", "personalisation allowed"),
              ("global_values", "Global key-values", "no personalisation: outside the batched payload"))


def key_value_text(values: Any) -> str:
    return "\n".join(f"{key}={value}" for key, value in (values or {}).items()) if isinstance(values, dict) else ""


def parse_key_values(text: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip():
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def preview_text(preview: Any) -> Text:
    """The rendered message and what it costs, or why it does not render."""
    if getattr(preview, "problem", None):
        return Text.assemble(("✖ ", "red"), (str(preview.problem), "red"))
    text = Text.assemble((f"as {preview.profile_label}: ", "dim"), preview.text or "")
    plural = "" if preview.segments == 1 else "s"
    text.append(f"\n{preview.chars} chars · ")
    text.append(str(preview.encoding), style="bold yellow" if str(preview.encoding) != "GSM-7" else "bold green")
    text.append(f" · {preview.segments} segment{plural}")
    if preview.ucs2_chars:
        text.append("  UCS-2 because of ", style="dim")
        text.append(" ".join(preview.ucs2_chars), style="reverse bold yellow")
    return text


class WhatStep(WizardStep):
    INDEX = 3
    MAIN = "#input-what-route"

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self.blocks = WhatBlocks()
        self.known: list[str] = []
        self._body_before = ""
        self._route = route_value(state.section("what").get("route")) or "-"  # until the routes are read
        self._routes_ready = False

    def compose_step(self) -> ComposeResult:
        with Horizontal(classes="wizard-row"):
            yield step_field("what.route", "Route", Select([("Default routing", "-")], allow_blank=False, compact=True,
                                                           id="input-what-route"))
            yield step_field("what.sender", "Sender", Input(placeholder="provider's default", compact=True,
                                                            id="input-what-sender"))
        yield step_field("what.body", "Message (Liquid; @ inserts a property)",
                         TextArea(compact=True, id="input-what-body", soft_wrap=True,
                                  placeholder='Hi {{ profile.name | default: "there" }}'))
        yield step_field("preview", "Preview as profile", Input(placeholder="phone or user id; empty: a sample profile",
                                                                compact=True, id="input-what-profile"))
        yield Static("", id="what-preview")
        with Vertical(id="what-generic"):
            yield Static("Generic provider", classes="wizard-heading", markup=False)
            yield step_field("what.generic.template_id", "Template ID",
                             Input(compact=True, id="input-generic-template"),
                             classes="-template-id")
            yield step_field("what.generic.template_variables", "Template variables (one per line, in order)",
                             TextArea(compact=True, id="input-generic-variables"), classes="-template-variables")
            for key, label, help_text in KEY_BLOCKS:
                yield step_field(f"what.generic.{key}", f"{label} (key=value per line)",
                                 TextArea(compact=True, id=f"input-generic-{key.replace('_', '-')}"),
                                 help=help_text, classes=f"-{key.replace('_', '-')}")
        with Vertical(id="what-dlt"):
            yield Static("DLT (India)", classes="wizard-heading", markup=False)
            for name, label in (("dlt_entity_id", "DLT entity ID"), ("dlt_template_id", "DLT template ID")):
                yield step_field(f"what.dlt.{name}", label, Input(compact=True, id=f"input-{name.replace('_', '-')}"),
                                 classes=f"-{name.replace('_', '-')}")
        with Horizontal(classes="wizard-row"):
            yield step_field("what.linked_content.timeout", "Linked content timeout (s)",
                             Input(compact=True, id="input-linked-timeout"))
            yield step_field("what.linked_content.on_failure", "When linked content fails",
                             Select([("skip the recipient", "skip"), ("abort the run", "abort")], allow_blank=False,
                                    compact=True, id="input-linked-failure"))

    def on_mount(self) -> None:
        self.load_choices()

    @work(exclusive=True, group="campaign-what-choices", exit_on_error=False)
    async def load_choices(self) -> None:
        runtime = await self.runtime()
        async with runtime.factory() as session:
            choices = await route_choices(session)
            self.known = await known_properties(session)
        select = self.query_one("#input-what-route", Select)
        select.set_options([(choice.label, choice.value or "-") for choice in choices])
        select.value = self._route if self._route in {choice.value or "-" for choice in choices} else "-"
        self._routes_ready = True
        self.show_blocks()

    def load(self) -> None:
        what = self.state.section("what")
        self.query_one("#input-what-sender", Input).value = str(what.get("sender") or "")
        body = str(what.get("body") or "")
        self._body_before = body
        self.query_one("#input-what-body", TextArea).text = body
        generic = what.get("generic") if isinstance(what.get("generic"), dict) else {}
        self.query_one("#input-generic-template", Input).value = str(generic.get("template_id") or "")
        self.query_one("#input-generic-variables", TextArea).text = "\n".join(
            map(str, generic.get("template_variables") or []))
        for key, _, _ in KEY_BLOCKS:
            self.query_one(f"#input-generic-{key.replace('_', '-')}", TextArea).text = key_value_text(generic.get(key))
        dlt = what.get("dlt") if isinstance(what.get("dlt"), dict) else {}
        for name in ("dlt_entity_id", "dlt_template_id"):
            self.query_one(f"#input-{name.replace('_', '-')}", Input).value = str(dlt.get(name) or "")
        linked = what.get("linked_content") if isinstance(what.get("linked_content"), dict) else {}
        self.query_one("#input-linked-timeout", Input).value = str(linked.get("timeout", 3.0))
        self.query_one("#input-linked-failure", Select).value = linked.get("on_failure") or "skip"
        self.query_one("#what-generic").display = False
        self.query_one("#what-dlt").display = False

    def collect(self) -> None:
        what = self.state.section("what")
        route = self.query_one("#input-what-route", Select).value
        if self._routes_ready and route is not Select.NULL:
            what["route"] = route_from_value("" if route == "-" else str(route))
        what["sender"] = self.query_one("#input-what-sender", Input).value.strip() or None
        what["body"] = self.query_one("#input-what-body", TextArea).text
        generic: dict[str, Any] = {}
        if self.blocks.template_id:
            generic["template_id"] = self.query_one("#input-generic-template", Input).value.strip() or None
        if self.blocks.template_variables:
            text = self.query_one("#input-generic-variables", TextArea).text
            generic["template_variables"] = [line.strip() for line in text.splitlines() if line.strip()]
        for key, _, _ in KEY_BLOCKS:
            area = self.query_one(f"#input-generic-{key.replace('_', '-')}", TextArea)
            if area.parent is not None and area.parent.display:
                generic[key] = parse_key_values(area.text)
        what["generic"] = generic
        what["dlt"] = {field.name: value for field in self.blocks.dlt_fields
                       if (value := self.query_one(f"#input-{field.name.replace('_', '-')}", Input).value.strip())}
        what["linked_content"] = {"timeout": text_number(self.query_one("#input-linked-timeout", Input).value) or 3.0,
                                  "on_failure": self.query_one("#input-linked-failure", Select).value}

    # --- the route's blocks ------------------------------------------------------------------

    @on(Select.Changed, "#input-what-route")
    def _route_changed(self) -> None:
        if self._routes_ready:
            self.collect()
            self.show_blocks()

    @work(exclusive=True, group="campaign-what-blocks", exit_on_error=False)
    async def show_blocks(self) -> None:
        runtime = await self.runtime()
        async with runtime.factory() as session:
            self.blocks = blocks = await what_blocks(session, self.state.section("what").get("route"))
        self.query_one("#what-generic").display = blocks.generic
        self.query_one(".-template-id").display = blocks.template_id
        self.query_one(".-template-variables").display = blocks.template_variables
        for key, keys in (("body_values", blocks.body_keys), ("header_values", blocks.header_keys),
                          ("global_values", blocks.global_keys)):
            self.query_one(f".-{key.replace('_', '-')}").display = bool(keys)
            area = self.query_one(f"#input-generic-{key.replace('_', '-')}", TextArea)
            present = parse_key_values(area.text)
            missing = [name for name in keys if name not in present]
            if missing:
                area.text = "\n".join([*(line for line in area.text.splitlines() if line.strip()),
                                       *(f"{name}=" for name in missing)])
        header = self.query_one(".-header-values")
        header.query_one(".form-field-help", Static).update(
            "personalisation allowed" if blocks.header_personalised else "no personalisation: the provider batches")
        self.query_one("#what-dlt").display = bool(blocks.dlt_fields)
        shown = {field.name: field for field in blocks.dlt_fields}
        for name in ("dlt_entity_id", "dlt_template_id"):
            self.query_one(f".-{name.replace('_', '-')}").display = name in shown
            if name in shown:
                self.query_one(f"#input-{name.replace('_', '-')}", Input).placeholder = shown[name].placeholder
        self.collect()
        self.schedule_preview()

    # --- the body: @ and the live preview ----------------------------------------------------

    @on(TextArea.Changed, "#input-what-body")
    def _body_changed(self) -> None:
        area = self.query_one("#input-what-body", TextArea)
        before, self._body_before = self._body_before, area.text
        row, column = area.cursor_location
        line = area.document.get_line(row)
        if len(area.text) > len(before) and column > 0 and line[column - 1:column] == "@":  # just typed @
            self.pick_property(row, column)
        self.collect()
        self.schedule_preview()

    @work(exclusive=True, group="campaign-what-picker", exit_on_error=False)
    async def pick_property(self, row: int, column: int) -> None:
        chosen = await self.app.push_screen_wait(PropertyPickerDialog(self.known))
        area = self.query_one("#input-what-body", TextArea)
        area.focus()
        if chosen is None:
            return
        area.replace(f"{{{{ {chosen} }}}}", (row, column - 1), (row, column))

    @on(Input.Changed, "#input-what-profile")
    def schedule_preview(self) -> None:
        self.run_preview()

    @work(exclusive=True, group="campaign-what-preview", exit_on_error=False)
    async def run_preview(self) -> None:
        await asyncio.sleep(PREVIEW_DELAY_SECONDS)  # a newer change cancels this worker first
        document, _ = parse_document(self.state.document, default_timezone=self.state.default_timezone, strict=False)
        profile = self.query_one("#input-what-profile", Input).value.strip() or None
        runtime = await self.runtime()
        out = self.query_one("#what-preview", Static)
        try:
            async with runtime.factory() as session:
                shown = await preview(session, document, profile_ref=profile)
        except ServiceError as exc:
            out.update(Text(f"✖ Preview as profile: {exc}", style="red"))
            return
        out.update(preview_text(shown))
