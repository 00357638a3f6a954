"""The wizard's first two steps: the campaign's name and type (three scheduled types, three live
ones), then When — one time (now, or a date and time), several dates, or recurring (daily, weekly
on chosen days, monthly on a day); for a live campaign the span it is live (start and end); the
time zone, delivery in each user's zone, do-not-disturb hours and the global limits opt-out."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import (
    Checkbox,
    Input,
    RadioButton,
    RadioSet,
    Select,
    SelectionList,
    Static,
    TextArea,
)

from smsconsole import clock
from smsconsole.screens.campaigns.wizard import WizardStep, step_field, text_number
from smsconsole.services.campaigns.definition import (
    LIVE_TYPES,
    SCHEDULED_TYPES,
    TYPE_LABELS,
    WEEKDAYS,
    parse_document,
)
from smsconsole.services.campaigns.schedule import occurrences
from smsconsole.services.campaigns.words import live_span

TYPE_HELP = {
    "one_time": "once: now, or at a date and time",
    "multiple_dates": "on each of a list of dates and times",
    "recurring": "daily, weekly on chosen days, or monthly on a day of the month",
    "action": "each time someone does an event, at once or after a delay",
    "inaction": "did an event and not its follow-up in time (a cart)",
    "date": "a date property ± days, at a local time (a reminder)",
}
EVERY_CHOICES = [("Daily", "day"), ("Weekly", "week"), ("Monthly", "month")]
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
NEXT_RUNS_SHOWN = 5


class TypeStep(WizardStep):
    INDEX = 0
    MAIN = "#wizard-type"

    def compose_step(self) -> ComposeResult:
        yield step_field("name", "Name", Input(placeholder="e.g. Spring sale", compact=True, id="input-campaign-name"),
                         required=True, help="Unique among campaigns; the Campaign ID (C12) is given at the first save")
        with RadioSet(id="wizard-type", compact=True):
            for kind in SCHEDULED_TYPES + LIVE_TYPES:
                yield RadioButton(f"{TYPE_LABELS[kind]}: {TYPE_HELP[kind]}", id=f"type-{kind}")
        yield Static("The first three run at chosen times to a segment; the last three are live: each person's "
                     "own event or date triggers their message.", classes="wizard-note", markup=False)

    def load(self) -> None:
        name = self.query_one("#input-campaign-name", Input)
        name.value = str(self.state.document.get("name") or "")
        if not name.value:  # a new campaign starts at its name
            self.call_after_refresh(name.focus)
        kind = self.state.document.get("type") or "one_time"
        if kind in TYPE_LABELS:
            self.query_one(f"#type-{kind}", RadioButton).value = True

    def collect(self) -> None:
        self.state.document["name"] = self.query_one("#input-campaign-name", Input).value.strip()
        pressed = self.query_one("#wizard-type", RadioSet).pressed_button
        if pressed is not None and pressed.id:
            kind = pressed.id.removeprefix("type-")
            self.state.document["type"] = kind
            who = self.state.section("who")
            if kind in LIVE_TYPES:  # a live campaign has no runs to limit
                for key in ("run_limit", "safety_limit"):
                    who.pop(key, None)
            else:
                who.pop("trigger", None)


class WhenStep(WizardStep):
    INDEX = 1

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self.kind = state.document.get("type") or "one_time"
        self.live = self.kind in LIVE_TYPES
        self.MAIN = {"one_time": "#when-at-choice", "multiple_dates": "#input-when-dates",
                     "recurring": "#input-when-every"}.get(self.kind, "#input-when-start")

    def compose_step(self) -> ComposeResult:
        yield Static(f"{TYPE_LABELS.get(self.kind, self.kind)}", classes="wizard-heading", markup=False)
        if self.kind == "one_time":
            with RadioSet(id="when-at-choice", compact=True):
                yield RadioButton("Now, when scheduled", id="when-now")
                yield RadioButton("At a date and time", id="when-later")
            yield step_field("when.at", "Date and time", Input(placeholder="YYYY-MM-DD HH:MM", compact=True,
                                                               id="input-when-at"))
        elif self.kind == "multiple_dates":
            yield step_field("when.dates", "Dates and times", TextArea(compact=True, id="input-when-dates"),
                             help="One per line, YYYY-MM-DD HH:MM")
        elif self.live:
            with Horizontal(classes="wizard-row"):
                yield step_field("when.start", "Live from", Input(placeholder="YYYY-MM-DD HH:MM", compact=True,
                                                                  id="input-when-start"),
                                 help="Empty: as soon as it is scheduled")
                yield step_field("when.end", "Until (optional)", Input(placeholder="YYYY-MM-DD HH:MM", compact=True,
                                                                       id="input-when-end"),
                                 help="Empty: no end")
        else:
            with Horizontal(classes="wizard-row"):
                yield step_field("when.recurrence.every", "Repeat",
                                 Select(EVERY_CHOICES, allow_blank=False, compact=True, id="input-when-every"))
                yield step_field("when.recurrence.interval", "Every N", Input("1", compact=True,
                                                                              id="input-when-interval"))
                yield step_field("when.recurrence.time", "At (HH:MM)", Input(placeholder="10:00", compact=True,
                                                                             id="input-when-time"))
            yield step_field("when.recurrence.weekdays", "On days",
                             SelectionList(*[(name, WEEKDAYS[i]) for i, name in enumerate(DAY_NAMES)],
                                           compact=True, id="input-when-weekdays"), classes="-weekly")
            yield step_field("when.recurrence.day_of_month", "Day of the month (1-31)",
                             Input(placeholder="7", compact=True, id="input-when-day"), classes="-monthly",
                             help="Starts on that day, never earlier; 29-31 fall on a shorter month's last day")
            with Horizontal(classes="wizard-row"):
                yield step_field("when.recurrence.start", "Start date", Input(placeholder="YYYY-MM-DD", compact=True,
                                                                              id="input-when-start"))
                yield step_field("when.recurrence.end", "End date (optional)",
                                 Input(placeholder="YYYY-MM-DD", compact=True, id="input-when-end"))
        yield step_field("when.timezone", "Time zone", Input(placeholder="Europe/London", compact=True,
                                                             id="input-when-timezone"))
        if not self.live or self.kind == "date":
            yield Checkbox("The date's time of day is in each user's own time zone" if self.live else
                           "Deliver at that time in each user's own time zone", compact=True, id="input-when-user-tz")
        yield step_field("when.late", "Users whose local time has already passed",
                         Select([("get it the next day at that time", "next_day"), ("are skipped", "skip")],
                                allow_blank=False, compact=True, id="input-when-late"), classes="-user-tz")
        yield Checkbox("Do not disturb hours (in the user's time zone)", compact=True, id="input-when-dnd")
        with Horizontal(classes="wizard-row -dnd"):
            yield step_field("when.dnd.start", "From", Input(placeholder="21:00", compact=True, id="input-dnd-start"))
            yield step_field("when.dnd.end", "Until", Input(placeholder="09:00", compact=True, id="input-dnd-end"))
            yield step_field("when.dnd.action", "Messages inside",
                             Select([("delayed to the end", "delay"), ("discarded", "discard")], allow_blank=False,
                                    compact=True, id="input-dnd-action"))
        yield Checkbox("Don't apply global throttle limits to this campaign", compact=True,
                       id="input-when-ignore-limits")
        yield Static("", id="when-next-runs")

    def load(self) -> None:
        when = self.state.section("when")
        if self.kind == "one_time":
            at = when.get("at")
            self.query_one("#when-now" if at in (None, "now") else "#when-later", RadioButton).value = True
            self.query_one("#input-when-at", Input).value = "" if at in (None, "now") else str(at)
        elif self.kind == "multiple_dates":
            self.query_one("#input-when-dates", TextArea).text = "\n".join(map(str, when.get("dates") or []))
        elif self.live:
            self.query_one("#input-when-start", Input).value = str(when.get("start") or "")
            self.query_one("#input-when-end", Input).value = str(when.get("end") or "")
        else:
            rec = when.get("recurrence") if isinstance(when.get("recurrence"), dict) else {}
            self.query_one("#input-when-every", Select).value = rec.get("every") or "day"
            self.query_one("#input-when-interval", Input).value = str(rec.get("interval") or 1)
            self.query_one("#input-when-time", Input).value = str(rec.get("time") or "")
            days = self.query_one("#input-when-weekdays", SelectionList)
            for day in rec.get("weekdays") or []:
                if day in WEEKDAYS:
                    days.select(day)
            self.query_one("#input-when-day", Input).value = str(rec.get("day_of_month") or "")
            self.query_one("#input-when-start", Input).value = str(rec.get("start") or "")
            self.query_one("#input-when-end", Input).value = str(rec.get("end") or "")
        self.query_one("#input-when-timezone", Input).value = str(when.get("timezone") or self.state.default_timezone)
        for box in self.query("#input-when-user-tz").results(Checkbox):
            box.value = bool(when.get("user_timezone"))
        self.query_one("#input-when-late", Select).value = when.get("late") or "next_day"
        dnd = when.get("dnd") if isinstance(when.get("dnd"), dict) else None
        self.query_one("#input-when-dnd", Checkbox).value = dnd is not None
        if dnd:
            self.query_one("#input-dnd-start", Input).value = str(dnd.get("start") or "")
            self.query_one("#input-dnd-end", Input).value = str(dnd.get("end") or "")
            self.query_one("#input-dnd-action", Select).value = dnd.get("action") or "delay"
        self.query_one("#input-when-ignore-limits", Checkbox).value = bool(when.get("ignore_global_limits"))
        self._show_parts()

    def collect(self) -> None:
        when = self.state.section("when")
        if self.kind == "one_time":
            later = self.query_one("#when-later", RadioButton).value
            when["at"] = self.query_one("#input-when-at", Input).value.strip() if later else "now"
        elif self.kind == "multiple_dates":
            text = self.query_one("#input-when-dates", TextArea).text
            when["dates"] = [line.strip() for line in text.splitlines() if line.strip()]
        elif self.live:
            when["start"] = self.query_one("#input-when-start", Input).value.strip() or None
            when["end"] = self.query_one("#input-when-end", Input).value.strip() or None
        else:
            every = self.query_one("#input-when-every", Select).value
            rec: dict[str, Any] = {
                "every": every, "interval": text_number(self.query_one("#input-when-interval", Input).value) or 1,
                "time": self.query_one("#input-when-time", Input).value.strip() or None,
                "start": self.query_one("#input-when-start", Input).value.strip() or None,
                "end": self.query_one("#input-when-end", Input).value.strip() or None,
            }
            if every == "week":
                rec["weekdays"] = list(self.query_one("#input-when-weekdays", SelectionList).selected)
            if every == "month":
                rec["day_of_month"] = text_number(self.query_one("#input-when-day", Input).value)
            when["recurrence"] = rec
        when["timezone"] = self.query_one("#input-when-timezone", Input).value.strip() or None
        when["user_timezone"] = self._user_timezone()
        if not self.live:
            when["late"] = self.query_one("#input-when-late", Select).value
        if self.query_one("#input-when-dnd", Checkbox).value:
            when["dnd"] = {"start": self.query_one("#input-dnd-start", Input).value.strip() or None,
                           "end": self.query_one("#input-dnd-end", Input).value.strip() or None,
                           "action": self.query_one("#input-dnd-action", Select).value}
        else:
            when.pop("dnd", None)
        when["ignore_global_limits"] = self.query_one("#input-when-ignore-limits", Checkbox).value

    @on(RadioSet.Changed)
    @on(Select.Changed)
    @on(Checkbox.Changed)
    @on(Input.Changed)
    @on(TextArea.Changed)
    @on(SelectionList.SelectedChanged)
    def _changed(self) -> None:
        self._show_parts()
        self.collect()
        self.show_next_runs()

    def _show_parts(self) -> None:
        if self.kind == "one_time":
            self.query_one("#field-when-at").display = self.query_one("#when-later", RadioButton).value
        if self.kind == "recurring":
            every = self.query_one("#input-when-every", Select).value
            for widget in self.query(".-weekly"):
                widget.display = every == "week"
            for widget in self.query(".-monthly"):
                widget.display = every == "month"
        for widget in self.query(".-user-tz"):
            widget.display = self._user_timezone() and not self.live
        for widget in self.query(".-dnd"):
            widget.display = self.query_one("#input-when-dnd", Checkbox).value

    def _user_timezone(self) -> bool:
        return any(box.value for box in self.query("#input-when-user-tz").results(Checkbox))

    @work(exclusive=True, group="campaign-when-runs", exit_on_error=False)
    async def show_next_runs(self) -> None:
        """The next run times as typed (a draft check; nothing is saved); a live campaign's span."""
        line = self.query_one("#when-next-runs", Static)
        document, problems = parse_document(self.state.document, default_timezone=self.state.default_timezone,
                                            strict=True)
        if self.live:
            if any(name.startswith(("when.start", "when.end", "when.timezone")) for name, _ in problems):
                line.update(Text("Live: correct the times above", style="dim"))
            else:
                line.update(Text(live_span(document.when), style="bold"))
            return
        # only the times decide the runs (do-not-disturb hours, say, do not)
        if any(name.startswith(("when.at", "when.dates", "when.recurrence", "when.timezone", "type"))
               for name, _ in problems):
            line.update(Text("Next runs: fill in the times above", style="dim"))
            return
        try:

            runs = occurrences(document.when, document.type, after=clock.now(), limit=NEXT_RUNS_SHOWN)
        except Exception as exc:  # noqa: BLE001 (a preview only: any failure is shown, not raised)
            line.update(Text(f"Next runs: {exc}", style="dim"))
            return
        line.update(next_runs_text(runs, document.when.timezone))


def next_runs_text(runs: list[Any], zone: str) -> Text:
    if not runs:
        return Text("Next runs: none (every time is in the past or after the end)", style="yellow")
    tz = ZoneInfo(zone)
    shown = ", ".join(run.astimezone(tz).strftime("%a %Y-%m-%d %H:%M") for run in runs[:NEXT_RUNS_SHOWN])
    return Text.assemble(("Next runs: ", "bold"), shown, (f" ({zone})", "dim"))
