"""The wizard's Who step for a live campaign: the trigger — the event and conditions on its
properties (Single action: with a delay; Inaction within time: with the follow-up event, its
conditions and the time to wait for it), or the date property, its offset in days and the local
time (On a date) — re-eligibility, the optional filter (a saved segment), the reach sample and the
daily and target limits. The trigger is read back in words as it is typed."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.suggester import SuggestFromList
from textual.widgets import Input, Select, Static

from smsconsole.screens.campaigns.wizard import (
    WizardStep,
    show_segments,
    step_field,
    text_number,
)
from smsconsole.services.campaigns.definition import (
    TYPE_LABELS,
    parse_document,
    parse_minutes,
)
from smsconsole.services.campaigns.words import (
    conditions_text,
    minutes_text,
    parse_conditions_text,
    reeligible_words,
    trigger_sentence,
)
from smsconsole.services.segments import list_segments, segment_catalog

REELIGIBLE_CHOICES = [("every time it happens", "every_time"), ("once, ever", "once"),
                      ("again after N days", "after_days")]
CONDITIONS = ("where", "cancel_where")
FILTER_HELP = ("Filter: only people in a saved segment (their past behaviour and properties), or anyone. "
               "Reach: a stable random sample. Daily: at most N messages a day. Target: the campaign ends "
               "after N messages in all.")


class TriggerStep(WizardStep):
    INDEX = 2
    MAIN = "#input-trigger-event"

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self.kind = state.document.get("type") or "action"
        if self.kind == "date":
            self.MAIN = "#input-trigger-property"
        self._segments_ready = False

    def compose_step(self) -> ComposeResult:
        yield Static(TYPE_LABELS.get(self.kind, self.kind), classes="wizard-heading", markup=False)
        yield Static("", id="trigger-words")
        if self.kind == "date":
            with Horizontal(classes="wizard-row"):
                yield step_field("who.trigger.property", "Date property", Input(
                    placeholder="e.g. travel_date", compact=True, id="input-trigger-property"), required=True)
                yield step_field("who.trigger.offset_days", "Days from it", Input(
                    placeholder="0", compact=True, id="input-trigger-offset"), help="-1: the day before")
                yield step_field("who.trigger.at", "At (HH:MM)", Input(
                    placeholder="09:00", compact=True, id="input-trigger-at"))
        with Horizontal(classes="wizard-row"):
            label = "Of the event (optional)" if self.kind == "date" else "Event"
            yield step_field("who.trigger.event", label, Input(
                placeholder="e.g. add_to_cart" if self.kind != "date" else "empty: a profile property",
                compact=True, id="input-trigger-event"), required=self.kind != "date")
            yield step_field("who.trigger.where", "Its conditions (optional)", Input(
                placeholder="e.g. amount > 100, currency = GBP", compact=True, id="input-trigger-where"))
        if self.kind == "action":
            yield step_field("who.trigger.delay_minutes", "Send after", Input(
                placeholder="at once; or 10m, 2h, 1d", compact=True, id="input-trigger-delay"))
        if self.kind == "inaction":
            with Horizontal(classes="wizard-row"):
                yield step_field("who.trigger.cancel_event", "And not (follow-up)", Input(
                    placeholder="e.g. checkout", compact=True, id="input-trigger-cancel"), required=True)
                yield step_field("who.trigger.cancel_where", "Its conditions (optional)", Input(
                    placeholder="e.g. total > 0", compact=True, id="input-trigger-cancel-where"))
            yield step_field("who.trigger.within_minutes", "Within", Input(
                placeholder="e.g. 5m, 2h, 1d", compact=True, id="input-trigger-within"), required=True)
        with Horizontal(classes="wizard-row"):
            yield step_field("who.trigger.reeligible", "A person gets it", Select(
                REELIGIBLE_CHOICES, allow_blank=False, compact=True, id="input-trigger-reeligible"))
            yield step_field("who.trigger.reeligible_days", "N days", Input(
                placeholder="7", compact=True, id="input-trigger-reeligible-days"), classes="-after-days")
        yield step_field("who.segment", "Filter", Select(
            [], prompt="No filter: anyone who triggers it", compact=True, id="input-who-segment"))
        with Horizontal(classes="wizard-row"):
            for key, label, placeholder in (("reach_percent", "Reach %", "100"), ("daily_limit", "Daily limit", "none"),
                                            ("target_limit", "Target limit", "none")):
                yield step_field(f"who.{key}", label, Input(placeholder=placeholder, compact=True,
                                                            id=f"input-who-{key.replace('_', '-')}"))
        yield Static(FILTER_HELP, classes="wizard-note", markup=False)

    def on_mount(self) -> None:
        self.load_choices()

    @work(exclusive=True, group="campaign-trigger-choices", exit_on_error=False)
    async def load_choices(self) -> None:
        """Saved segments for the filter; event names and date properties as suggestions."""
        runtime = await self.runtime()
        async with runtime.factory() as session:
            views = await list_segments(session)
            catalog = await segment_catalog(session)
        show_segments(self, views)
        self._segments_ready = True
        events = sorted(catalog.event_names())
        for selector in ("#input-trigger-event", "#input-trigger-cancel"):
            for box in self.query(selector).results(Input):
                box.suggester = SuggestFromList(events, case_sensitive=True)
        dates = sorted(p.name for p in catalog.properties if p.type == "date")
        dates += sorted({p.name for e in catalog.events for p in e.properties if p.type == "date"} - set(dates))
        for box in self.query("#input-trigger-property").results(Input):
            box.suggester = SuggestFromList(dates, case_sensitive=True)

    # --- document <-> widgets ------------------------------------------------------------------

    def _trigger(self) -> dict[str, Any]:
        who = self.state.section("who")
        if not isinstance(who.get("trigger"), dict):
            who["trigger"] = {}
        return who["trigger"]

    def _set(self, selector: str, value: Any) -> None:
        for box in self.query(selector).results(Input):
            box.value = "" if value is None else str(value)

    def load(self) -> None:
        who = self.state.section("who")
        trigger = self._trigger()
        self._set("#input-trigger-event", trigger.get("event"))
        self._set("#input-trigger-cancel", trigger.get("cancel_event"))
        for key, selector in (("where", "#input-trigger-where"), ("cancel_where", "#input-trigger-cancel-where")):
            value = trigger.get(key)
            self._set(selector, value if isinstance(value, str) else conditions_text(value))
        self._set("#input-trigger-delay", minutes_text(trigger.get("delay_minutes")))
        self._set("#input-trigger-within", minutes_text(trigger.get("within_minutes")))
        self._set("#input-trigger-property", trigger.get("property"))
        offset = trigger.get("offset_days")
        self._set("#input-trigger-offset", None if offset in (None, 0) else offset)
        self._set("#input-trigger-at", trigger.get("at"))
        self.query_one("#input-trigger-reeligible", Select).value = trigger.get("reeligible") or "every_time"
        self._set("#input-trigger-reeligible-days", trigger.get("reeligible_days"))
        percent = who.get("reach_percent")
        self._set("#input-who-reach-percent", None if percent in (None, 100, 100.0) else percent)
        self._set("#input-who-daily-limit", who.get("daily_limit"))
        self._set("#input-who-target-limit", who.get("target_limit"))
        self._show_parts()
        self._show_words()

    def _text(self, selector: str) -> str | None:
        box = next(iter(self.query(selector).results(Input)), None)
        return (box.value.strip() or None) if box is not None else None

    def collect(self) -> None:
        who = self.state.section("who")
        trigger = self._trigger()
        trigger["event"] = self._text("#input-trigger-event")
        for key, selector in (("where", "#input-trigger-where"), ("cancel_where", "#input-trigger-cancel-where")):
            if not self.query(selector):
                trigger.pop(key, None)
                continue
            text = self._text(selector) or ""
            conditions, problems = parse_conditions_text(text)
            # a line that does not read is kept as typed: the draft check refuses it, the step names why
            trigger[key] = text if problems else conditions
        for key, selector in (("delay_minutes", "#input-trigger-delay"), ("within_minutes", "#input-trigger-within")):
            if not self.query(selector):
                trigger.pop(key, None)
                continue
            text = self._text(selector)
            minutes = parse_minutes(text) if text is not None else None
            trigger[key] = minutes if minutes is not None else text
        trigger["cancel_event"] = self._text("#input-trigger-cancel")
        if self.kind == "date":
            trigger["property"] = self._text("#input-trigger-property")
            offset = self._text("#input-trigger-offset")
            trigger["offset_days"] = text_number(offset) if offset and offset.lstrip("+-").isdigit() else offset
            trigger["at"] = self._text("#input-trigger-at")
        else:
            for key in ("property", "offset_days", "at"):
                trigger.pop(key, None)
        for key in ("cancel_event",):
            if trigger.get(key) is None:
                trigger.pop(key, None)
        trigger["reeligible"] = self.query_one("#input-trigger-reeligible", Select).value
        if trigger["reeligible"] == "after_days":
            trigger["reeligible_days"] = text_number(self._text("#input-trigger-reeligible-days") or "")
        else:
            trigger.pop("reeligible_days", None)
        select = self.query_one("#input-who-segment", Select)
        if self._segments_ready:
            who["segment"] = None if select.value is Select.NULL else select.value
        who.pop("definition", None)
        for key in ("run_limit", "safety_limit"):
            who.pop(key, None)
        for key in ("reach_percent", "daily_limit", "target_limit"):
            value = text_number(self._text(f"#input-who-{key.replace('_', '-')}") or "")
            who[key] = 100 if key == "reach_percent" and value is None else value

    # --- problems: the condition lines name the part that does not read ------------------------

    def condition_problems(self) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        for key, selector in (("where", "#input-trigger-where"), ("cancel_where", "#input-trigger-cancel-where")):
            text = self._text(selector) if self.query(selector) else None
            if text:
                for index, reason in parse_conditions_text(text)[1]:
                    found.append((f"who.trigger.{key}", f"condition {index}: {reason}"))
        return found

    def show_step_problems(self, problems: list[tuple[str, str]]) -> bool:
        own = self.condition_problems()
        mine = {name for name, _ in own}
        kept = [(name, reason) for name, reason in problems
                if not any(name == field or name.startswith(field + ".") for field in mine)]
        return super().show_step_problems(kept + own)

    # --- live words ----------------------------------------------------------------------------

    @on(Input.Changed)
    @on(Select.Changed)
    def _changed(self) -> None:
        self._show_parts()
        self.collect()
        self._show_words()

    def _show_parts(self) -> None:
        after = self.query_one("#input-trigger-reeligible", Select).value == "after_days"
        for widget in self.query(".-after-days"):
            widget.display = after

    def _show_words(self) -> None:
        document, problems = parse_document(self.state.document, default_timezone=self.state.default_timezone)
        words = Text(trigger_sentence(self.kind, document.who.trigger, user_timezone=document.when.user_timezone),
                     style="bold")
        again = reeligible_words(document.who.trigger)
        words.append(f"; {again[0].lower()}{again[1:]}", style="")
        if any(name.startswith("who.trigger") for name, _ in problems) or self.condition_problems():
            words.append("  (some fields do not read yet)", style="yellow")
        self.query_one("#trigger-words", Static).update(words)
