"""The wizard's What step: the route (default routing, a group or one provider) and sender, the
Liquid message body with a live preview for a sample or chosen profile (characters, encoding,
segments and the characters forcing UCS-2), `@` to insert a profile property, the Generic
provider's blocks when its request template uses them, DLT fields for providers that carry them,
and the linked content failure policy.

Variants (an A/B test) and a control group are one row of buttons above the body until asked
for; then the variants A–E are a row of buttons (each with its share) to switch between, each
with its own body, Generic and DLT fields and preview, its split in percent and the control
group's percent, checked as they are typed. Last, the optional conversion goal (what_goal.py), the
optional reply options (what_replies.py) and the compliance category, run-start choice and budget
(what_policy.py)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Select, Static, TextArea

from smsconsole.screens.campaigns.property_picker import PropertyPickerDialog
from smsconsole.screens.campaigns.variants import (
    DEFAULT_CONTROL,
    add_variant,
    holders,
    remove_variant,
    variant_list,
    variant_of_problem,
    variant_path,
)
from smsconsole.screens.campaigns.what_goal import GoalSection
from smsconsole.screens.campaigns.what_policy import PolicySection
from smsconsole.screens.campaigns.what_replies import RepliesSection
from smsconsole.screens.campaigns.wizard import WizardStep, step_field, text_number
from smsconsole.screens.dialogs.confirm import ConfirmDialog
from smsconsole.screens.widgets.fields import FormField, show_problems
from smsconsole.services.campaigns.arms import LETTERS, MAX_VARIANTS
from smsconsole.services.campaigns.choices import (
    WhatBlocks,
    route_choices,
    route_from_value,
    route_value,
    what_blocks,
)
from smsconsole.services.campaigns.definition import LIVE_TYPES, parse_document
from smsconsole.services.campaigns.render import known_properties, preview
from smsconsole.services.errors import ServiceError, ValidationError
from smsconsole.services.segments import segment_catalog

PREVIEW_DELAY_SECONDS = 0.3
KEY_BLOCKS = (("body_values", "Message body key-values", "personalisation allowed"),
              ("header_values", "Header key-values", "personalisation allowed"),
              ("global_values", "Global key-values", "no personalisation: outside the batched payload"))
BODY_LABEL = "Message{letter} (Liquid; @ inserts a property)"
# a variant's own fields: their FormField ids, and their names under the variant's path
VARIANT_FIELDS = {"field-what-body": "body", "field-what-generic-template-id": "generic.template_id",
                  "field-what-generic-template-variables": "generic.template_variables",
                  **{f"field-what-generic-{key.replace('_', '-')}": f"generic.{key}" for key, _, _ in KEY_BLOCKS},
                  "field-what-dlt-dlt-entity-id": "dlt.dlt_entity_id",
                  "field-what-dlt-dlt-template-id": "dlt.dlt_template_id"}


def key_value_text(values: Any) -> str:
    return "\n".join(f"{key}={value}" for key, value in (values or {}).items()) if isinstance(values, dict) else ""


def parse_key_values(text: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip():
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def sample_event(text: str) -> dict[str, Any] | None:
    """A live campaign's sample event as typed (its properties as a JSON object; empty: None, the
    person's latest matching event). A ValidationError on the field `event` otherwise."""
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError([("event", f"is not JSON: {exc.msg} at column {exc.colno}")]) from None
    if not isinstance(value, dict):
        raise ValidationError([("event", 'must be a JSON object of the event\'s properties, e.g. {"amount": 120}')])
    return value


def preview_text(preview: Any) -> Text:
    """The rendered message and what it costs, or why it does not render."""
    if getattr(preview, "problem", None):
        return Text.assemble(("✖ ", "red"), (str(preview.problem), "red"))
    text = Text.assemble((f"as {preview.profile_label}: ", "dim"), preview.text or "")
    if event := getattr(preview, "event_label", None):
        text.append(f"\nwith event: {event}", style="dim")
    plural = "" if preview.segments == 1 else "s"
    text.append(f"\n{preview.chars} chars · ")
    text.append(str(preview.encoding), style="bold yellow" if str(preview.encoding) != "GSM-7" else "bold green")
    text.append(f" · {preview.segments} segment{plural}")
    if preview.ucs2_chars:
        text.append("  UCS-2 because of ", style="dim")
        text.append(" ".join(preview.ucs2_chars), style="reverse bold yellow")
    return text


class VariantBar(Horizontal):
    """The variants as buttons (the one shown marked), then add and remove. Focusing the bar (a
    problem named on it) focuses the variant shown."""

    def compose(self) -> ComposeResult:
        for letter in LETTERS:
            yield Button(letter, id=f"what-variant-{letter.lower()}", compact=True, classes="what-variant",
                         tooltip=f"Show variant {letter}")
        yield Button("+ Variant", id="what-variant-add", compact=True,
                     tooltip="Add a variant: a copy of the one shown, to edit")
        yield Button("Remove", id="what-variant-remove", compact=True, tooltip="Remove the variant shown")

    def focus(self, scroll_visible: bool = True) -> VariantBar:
        current = next(iter(self.query(".what-variant.-current").results(Button)), None)
        if current is not None:
            current.focus(scroll_visible)
        return self


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
        self.live = state.document.get("type") in LIVE_TYPES
        self.current = 0  # the variant shown (0: A)
        what = state.section("what")
        self.arms_open = variant_list(what) is not None or what.get("control") not in (None, "", 0)
        self.goal = GoalSection(self._goal_changed)
        self.replies = RepliesSection(self._replies_changed)
        self.policy = PolicySection(self._policy_changed)

    def compose_step(self) -> ComposeResult:
        with Horizontal(classes="wizard-row"):
            yield step_field("what.route", "Route", Select([("Default routing", "-")], allow_blank=False, compact=True,
                                                           id="input-what-route"))
            yield step_field("what.sender", "Sender", Input(placeholder="provider's default", compact=True,
                                                            id="input-what-sender"))
        with Horizontal(id="what-arms-add"):
            yield Button("+ Variant (A/B test)", id="what-add-variant", compact=True,
                         tooltip="Add a variant B: its own message and a share of the people")
            yield Button("+ Control group", id="what-add-control", compact=True,
                         tooltip="Hold out a share of the people: qualified and recorded, never sent")
        with Vertical(id="what-arms"):
            yield step_field("what.variants", "Variants", VariantBar(id="what-variant-bar"))
            with Horizontal(classes="wizard-row"):
                yield step_field("what.variants.1.split", "Split % of A", Input(compact=True, id="input-what-split"),
                                 classes="-split")
                yield step_field("what.control", "Control group %", Input(
                    placeholder="0: none", compact=True, id="input-what-control"), classes="-control")
        yield step_field("what.body", BODY_LABEL.format(letter=""),
                         TextArea(compact=True, id="input-what-body", soft_wrap=True,
                                  placeholder='Hi {{ profile.name | default: "there" }}'))
        profile = step_field("preview", "Preview as profile", Input(
            placeholder="phone or user id; empty: a sample profile", compact=True, id="input-what-profile"))
        if self.live:  # and the triggering event
            with Horizontal(classes="wizard-row"):
                yield profile
                yield step_field("event", "With event (JSON)", Input(
                    placeholder='{"amount": 120}; empty: their latest', compact=True, id="input-what-event"))
        else:
            yield profile
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
        yield self.goal
        yield self.replies
        yield self.policy

    def on_mount(self) -> None:
        self.load_choices()

    @work(exclusive=True, group="campaign-what-choices", exit_on_error=False)
    async def load_choices(self) -> None:
        runtime = await self.runtime()
        async with runtime.factory() as session:
            choices = await route_choices(session)
            document, _ = parse_document(self.state.document, default_timezone=self.state.default_timezone)
            trigger = document.who.trigger if self.live else None
            self.known = await known_properties(session, event=trigger.event if trigger else None)
            catalog = await segment_catalog(session)
        self.goal.set_catalog(catalog)
        select = self.query_one("#input-what-route", Select)
        select.set_options([(choice.label, choice.value or "-") for choice in choices])
        select.value = self._route if self._route in {choice.value or "-" for choice in choices} else "-"
        self._routes_ready = True
        self.show_blocks()

    def load(self) -> None:
        what = self.state.section("what")
        self.query_one("#input-what-sender", Input).value = str(what.get("sender") or "")
        control = what.get("control")
        self.query_one("#input-what-control", Input).value = "" if control in (None, 0) else str(control)
        self.load_variant()
        linked = what.get("linked_content") if isinstance(what.get("linked_content"), dict) else {}
        self.query_one("#input-linked-timeout", Input).value = str(linked.get("timeout", 3.0))
        self.query_one("#input-linked-failure", Select).value = linked.get("on_failure") or "skip"
        self.query_one("#what-generic").display = False
        self.query_one("#what-dlt").display = False
        self.goal.load(self.state.document)
        self.replies.load(self.state.document)
        self.policy.load(self.state.document)
        self.show_arms()

    def load_variant(self) -> None:
        """The shown variant's fields (body, split, Generic, DLT) from the document, and its
        fields named by its path (a problem with `what.variants.2.body` finds B's body)."""
        what = self.state.section("what")
        shown = holders(what)
        self.current = min(self.current, len(shown) - 1)
        holder = shown[self.current]
        split = holder.get("split") if variant_list(what) is not None else None
        self.query_one("#input-what-split", Input).value = "" if split is None else str(split)
        body = str(holder.get("body") or "")
        self._body_before = body
        self.query_one("#input-what-body", TextArea).text = body
        generic = holder.get("generic") if isinstance(holder.get("generic"), dict) else {}
        self.query_one("#input-generic-template", Input).value = str(generic.get("template_id") or "")
        self.query_one("#input-generic-variables", TextArea).text = "\n".join(
            map(str, generic.get("template_variables") or []))
        for key, _, _ in KEY_BLOCKS:
            self.query_one(f"#input-generic-{key.replace('_', '-')}", TextArea).text = key_value_text(generic.get(key))
        dlt = holder.get("dlt") if isinstance(holder.get("dlt"), dict) else {}
        for name in ("dlt_entity_id", "dlt_template_id"):
            self.query_one(f"#input-{name.replace('_', '-')}", Input).value = str(dlt.get(name) or "")
        path = variant_path(what, self.current)
        letter = f" {LETTERS[self.current]}" if variant_list(what) is not None else ""
        for form_field in self.fields:
            if (name := VARIANT_FIELDS.get(str(form_field.id))) is not None:
                form_field.field_name = f"{path}.{name}"
        self._relabel("#field-what-body", BODY_LABEL.format(letter=letter))
        split_field = self.query_one(".-split", FormField)
        split_field.field_name = f"{path}.split"
        self._relabel(".-split", f"Split % of{letter or ' A'}")

    def _relabel(self, selector: str, label: str) -> None:
        form_field = self.query_one(selector, FormField)
        form_field.label = label
        form_field.query_one(".form-field-label", Label).update(label)

    def collect(self) -> None:
        what = self.state.section("what")
        route = self.query_one("#input-what-route", Select).value
        if self._routes_ready and route is not Select.NULL:
            what["route"] = route_from_value("" if route == "-" else str(route))
        what["sender"] = self.query_one("#input-what-sender", Input).value.strip() or None
        if self.arms_open:
            control = text_number(self.query_one("#input-what-control", Input).value)
            if control in (None, 0):
                what.pop("control", None)
            else:
                what["control"] = control
        holder = holders(what)[self.current]
        if variant_list(what) is not None:
            split = text_number(self.query_one("#input-what-split", Input).value)
            if split is None:
                holder.pop("split", None)
            else:
                holder["split"] = split
        holder["body"] = self.query_one("#input-what-body", TextArea).text
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
        holder["generic"] = generic
        holder["dlt"] = {field.name: value for field in self.blocks.dlt_fields
                         if (value := self.query_one(f"#input-{field.name.replace('_', '-')}", Input).value.strip())}
        what["linked_content"] = {"timeout": text_number(self.query_one("#input-linked-timeout", Input).value) or 3.0,
                                  "on_failure": self.query_one("#input-linked-failure", Select).value}
        self.goal.collect(self.state.document)
        self.replies.collect(self.state.document)
        self.policy.collect(self.state.document)

    # --- variants and the control group -------------------------------------------------------

    def shares(self) -> tuple[list[float], float]:
        """Each variant's share and the control's, as the document reads now (blank splits shared)."""
        what = parse_document(self.state.document, default_timezone=self.state.default_timezone)[0].what
        return [variant.split for variant in what.arms], what.control

    def show_arms(self) -> None:
        """The arms' row: closed (two buttons) until a variant or a control group is added; open,
        a button per variant with its share, the split of the one shown and the control's %."""
        what = self.state.section("what")
        count = len(holders(what))
        multi = variant_list(what) is not None
        self.query_one("#what-arms-add").display = not self.arms_open
        self.query_one("#what-arms").display = self.arms_open
        splits, _ = self.shares()
        for index, letter in enumerate(LETTERS):
            button = self.query_one(f"#what-variant-{letter.lower()}", Button)
            button.display = index < count
            share = max(splits[index], 0.0) if index < len(splits) else 0.0  # below 0: the splits take too much
            button.label = f"{letter} {share:g}%"
            button.set_class(index == self.current, "-current")
        self.query_one("#what-variant-add").display = count < MAX_VARIANTS
        remove = self.query_one("#what-variant-remove", Button)
        remove.display = multi
        remove.label = f"Remove {LETTERS[self.current]}"
        self.query_one(".-split").display = multi
        share = max(splits[self.current], 0.0) if self.current < len(splits) else 0.0
        self.query_one("#input-what-split", Input).placeholder = f"{share:g} (equal share)"

    def arms_problems(self) -> list[tuple[str, str]]:
        """The splits' and the control's problems as the draft reads now (other variants' named)."""
        return self.named([(name, reason) for name, reason in self.state.draft_problems()
                           if name in ("what.variants", "what.control") or name.endswith(".split")])

    def named(self, problems: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """A problem of a variant not shown goes on the Variants row, naming the variant."""
        out = []
        for name, reason in problems:
            index = variant_of_problem(name)
            if index is None or index == self.current:
                out.append((name, reason))
                continue
            rest = name.split(".", 3)[3].replace(".", " ").replace("_", " ") if name.count(".") >= 3 else ""
            out.append(("what.variants", f"variant {LETTERS[index]}" + (f", {rest}" if rest else "") + f": {reason}"))
        return out

    def show_variant(self, index: int) -> None:
        self.collect()
        self.current = index
        self.show_current()

    def show_current(self) -> None:
        """Fill the fields with the variant now shown. Switching is no edit: the fields' changes are
        not posted (no `@` menu, no error cleared by them); the other variant's errors go here."""
        with self.prevent(TextArea.Changed, Input.Changed):
            self.load_variant()
        for form_field in self.fields:
            if form_field.id in VARIANT_FIELDS or form_field.has_class("-split"):
                form_field.error.show(None)
        self.show_arms()
        self.show_blocks()  # then the preview

    @on(Button.Pressed, ".what-variant")
    def _variant_pressed(self, event: Button.Pressed) -> None:
        self.show_variant(LETTERS.index(str(event.button.id)[-1].upper()))

    @on(Button.Pressed, "#what-add-variant")
    @on(Button.Pressed, "#what-variant-add")
    def action_add_variant(self) -> None:
        self.collect()
        added = add_variant(self.state.section("what"), self.current)
        if added is None:
            self.notify(f"At most {MAX_VARIANTS} variants (A-E).", severity="warning")
            return
        self.query_one("#input-what-split", Input).value = ""  # every split back to an equal share
        self.arms_open = True
        self.show_variant(added)
        self.query_one("#input-what-body", TextArea).focus()

    @on(Button.Pressed, "#what-add-control")
    def _add_control(self) -> None:
        self.arms_open = True
        control = self.query_one("#input-what-control", Input)
        if not control.value.strip():
            control.value = str(DEFAULT_CONTROL)
        self.collect()
        self.show_arms()
        control.focus()

    @on(Button.Pressed, "#what-variant-remove")
    def _remove_pressed(self) -> None:
        self.remove_shown()

    @work(exclusive=True, group="campaign-what-remove", exit_on_error=False)
    async def remove_shown(self) -> None:
        self.collect()
        letter = LETTERS[self.current]
        if not await self.app.push_screen_wait(ConfirmDialog(
                f"Remove variant {letter}", f"Remove variant {letter} and its message? The others keep theirs "
                "and share its people equally.", confirm_label="Remove", destructive=True)):
            return
        what = self.state.section("what")
        remove_variant(what, self.current)
        self.current = max(0, self.current - 1)
        self.arms_open = variant_list(what) is not None or what.get("control") not in (None, "", 0)
        self.show_current()

    @on(Input.Changed, "#input-what-split")
    @on(Input.Changed, "#input-what-control")
    def _arms_changed(self) -> None:
        self.collect()
        self.show_arms()
        fields = [field for field in self.fields if field.field_name in
                  ("what.variants", "what.control") or field.field_name.endswith(".split")]
        show_problems(fields, ValidationError(problems) if (problems := self.arms_problems()) else None, None)

    def show_step_problems(self, problems: list[tuple[str, str]]) -> bool:
        """Show the variant the first variant's problem names (unless the one shown has some), then
        every problem: the conditions' named by part, other variants' on the Variants row."""
        indexes = [variant_of_problem(name) for name, _ in problems]
        first = next((index for index in indexes if index is not None), None)
        if first is not None and self.current not in indexes and first < len(holders(self.state.section("what"))):
            self.show_variant(first)
        own = self.goal.condition_problems()
        kept = [(name, reason) for name, reason in problems
                if not (own and (name == "goal.where" or name.startswith("goal.where.")))]
        return super().show_step_problems(self.named(kept) + own)

    def _goal_changed(self) -> None:
        self.collect()
        self.goal.show_words(self.state.document)

    def _replies_changed(self) -> None:
        self.collect()
        self.replies.show_words(self.state.document)

    def _policy_changed(self) -> None:
        self.collect()
        self.policy.show_words(self.state.document)

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
    @on(Input.Changed, "#input-what-event")
    def schedule_preview(self) -> None:
        self.run_preview()

    @work(exclusive=True, group="campaign-what-preview", exit_on_error=False)
    async def run_preview(self) -> None:
        await asyncio.sleep(PREVIEW_DELAY_SECONDS)  # a newer change cancels this worker first
        document, _ = parse_document(self.state.document, default_timezone=self.state.default_timezone, strict=False)
        profile = self.query_one("#input-what-profile", Input).value.strip() or None
        runtime = await self.runtime()
        out = self.query_one("#what-preview", Static)
        fields = [field for field in self.fields if field.field_name == "event"]
        try:
            event = sample_event(self.query_one("#input-what-event", Input).value) if self.live else None
        except ValidationError as exc:
            show_problems(fields, exc, None)
            out.update(Text(f"✖ With event: {exc.problems[0][1]}", style="red"))
            return
        show_problems(fields, None, None)
        try:
            async with runtime.factory() as session:
                shown = await preview(session, document, profile_ref=profile, event=event,
                                      variant=LETTERS[self.current])  # the variant shown
        except ServiceError as exc:
            out.update(Text(f"✖ Preview as profile: {exc}", style="red"))
            return
        out.update(preview_text(shown))
