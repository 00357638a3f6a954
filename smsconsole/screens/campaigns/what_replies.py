"""The What step's optional reply options (services/campaigns/reply_options.py): the answers a
campaign asks for ("Reply C to confirm, R to reschedule"; "Reply 0-10"), each the words a reply may
be (or a range of numbers: the event gets the number as `score`), the event an answer records and
an optional auto-answer, and the window after the message in which answers count. Four rows to
start (another appears when the last is filled, up to ten); an empty row is skipped, and no row
and no window removes `replies` from the document. Read back in words as it is typed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Static

from smsconsole.screens.campaigns.wizard import step_field
from smsconsole.screens.widgets.fields import FormField
from smsconsole.services.campaigns.arms import window_words
from smsconsole.services.campaigns.reply_options import (
    MAX_OPTIONS,
    is_range,
    parse_replies,
    sentence,
)

SHOWN_ROWS = 4  # rows shown to start; one more appears when the last one shown is filled
PARTS = ("reply", "event", "answer")
EMPTY_WORDS = "No reply options: replies are logged as sms_reply."


def row_text(option: Any) -> dict[str, str]:
    """One option of the document as its row shows it ("C, CONFIRM" or "0-10", the event, the answer)."""
    if not isinstance(option, dict):
        return {part: "" for part in PARTS}
    numbers, words = option.get("numbers"), option.get("reply")
    if numbers not in (None, ""):
        reply = "-".join(map(str, numbers)) if isinstance(numbers, list | tuple) else str(numbers)
    elif isinstance(words, list | tuple):
        reply = ", ".join(map(str, words))
    else:
        reply = "" if words is None else str(words)
    return {"reply": reply, "event": str(option.get("event") or ""), "answer": str(option.get("answer") or "")}


class RepliesSection(Vertical):
    """`load` and `collect` read and write the document's top-level `replies`. The rows' fields are
    named as the document check names its problems: `replies.options.N.reply` (`.numbers` for a
    range) for the Nth row collected, so a problem lands under the row that holds that option."""

    def __init__(self, changed: Callable[[], None]) -> None:
        super().__init__(id="what-replies")
        self.changed = changed  # the step collects the document and calls show_words
        self.positions: list[int] = []  # the rows (from 1) of the options collected, in order

    def compose(self) -> ComposeResult:
        yield Static("Reply options (optional)", classes="wizard-heading", markup=False)
        yield Static("", id="replies-words", classes="wizard-note")
        with Horizontal(classes="wizard-row"):
            yield step_field("replies.window", "Answers count within", Input(
                placeholder="48h", compact=True, id="input-replies-window"), classes="-replies-window")
            yield Static("Keywords (STOP, HELP…) always win. A range such as 0-10 records the number as score.",
                         classes="wizard-note replies-help", markup=False)
        for row in range(1, MAX_OPTIONS + 1):
            with Horizontal(classes="wizard-row replies-row", id=f"replies-row-{row}"):
                yield step_field(f"replies.options.{row}.reply", f"Option {row} reply", Input(
                    placeholder="C, CONFIRM or 0-10", compact=True, id=f"input-replies-reply-{row}"),
                    classes="-replies-reply")
                yield step_field(f"replies.options.{row}.event", "Event", Input(
                    placeholder="appointment_confirmed", compact=True, id=f"input-replies-event-{row}"))
                yield step_field(f"replies.options.{row}.answer", "Auto-answer (optional)", Input(
                    placeholder="Thanks, see you then.", compact=True, id=f"input-replies-answer-{row}"))

    def _input(self, part: str, row: int) -> Input:
        return self.query_one(f"#input-replies-{part}-{row}", Input)

    def _typed(self, row: int) -> dict[str, str]:
        return {part: self._input(part, row).value.strip() for part in PARTS}

    def load(self, document: dict[str, Any]) -> None:
        replies = document.get("replies") if isinstance(document.get("replies"), dict) else {}
        window = replies.get("window")
        self.query_one("#input-replies-window", Input).value = (
            window_words(window) if isinstance(window, int) and not isinstance(window, bool) and window > 0
            else "" if window is None else str(window))
        options = replies.get("options") if isinstance(replies.get("options"), list) else []
        for row in range(1, MAX_OPTIONS + 1):
            shown = row_text(options[row - 1]) if row <= len(options) else {part: "" for part in PARTS}
            for part in PARTS:
                self._input(part, row).value = shown[part]
        self._name_rows()
        self.show_rows()
        self.show_words(document)

    def collect(self, document: dict[str, Any]) -> None:
        """The options into the document, in the rows' order (an empty row skipped); nothing typed
        removes `replies`. What does not read is kept as typed: the draft check names it."""
        window = self.query_one("#input-replies-window", Input).value.strip()
        options: list[dict[str, Any]] = []
        for row in self._filled_rows():
            typed = self._typed(row)
            option: dict[str, Any] = {}
            if is_range(typed["reply"]):
                option["numbers"] = typed["reply"]
            elif words := [word.strip() for word in typed["reply"].split(",") if word.strip()]:
                option["reply"] = words
            if typed["event"]:
                option["event"] = typed["event"]
            if typed["answer"]:
                option["answer"] = typed["answer"]
            options.append(option)
        self._name_rows()
        if not window and not options:
            document.pop("replies", None)
            return
        replies: dict[str, Any] = {}
        if window:
            replies["window"] = window
        replies["options"] = options
        document["replies"] = replies

    def _filled_rows(self) -> list[int]:
        return [row for row in range(1, MAX_OPTIONS + 1) if any(self._typed(row).values())]

    def _name_rows(self) -> None:
        """Each filled row's fields named by the option it is collected as; an empty row's by a name
        no problem has (with no option at all, the first row's reply takes `replies.options`: add one)."""
        self.positions = self._filled_rows()
        index = {row: n for n, row in enumerate(self.positions, 1)}
        for row in range(1, MAX_OPTIONS + 1):
            n = index.get(row)
            for part in PARTS:
                form_field = self.query_one(f"#field-replies-options-{row}-{part}", FormField)
                if n is None:
                    form_field.field_name = ("replies.options" if row == 1 and part == "reply" and not index
                                             else f"replies.rows.{row}.{part}")
                elif part == "reply" and is_range(self._input("reply", row).value):
                    form_field.field_name = f"replies.options.{n}.numbers"
                else:
                    form_field.field_name = f"replies.options.{n}.{part}"

    def show_rows(self) -> None:
        """The first four rows, and one more after the last filled one (up to ten)."""
        last = max(self._filled_rows(), default=0)
        for row in range(1, MAX_OPTIONS + 1):
            self.query_one(f"#replies-row-{row}").display = row <= max(SHOWN_ROWS, last + 1)

    def label_of(self, name: str) -> str:
        """A problem's field as the rows name it: `replies.options.2.event` → "Option 3 event"
        when the second option collected is on the third row."""
        parts = name.split(".")
        if parts[:1] == ["replies"] and len(parts) >= 3 and parts[1] == "options" and parts[2].isdigit():
            n = int(parts[2])
            row = self.positions[n - 1] if 0 < n <= len(self.positions) else n
            part = {"numbers": "reply", "answer": "auto-answer"}.get(parts[3], parts[3]) if len(parts) > 3 else "reply"
            return f"Option {row} {part}"
        return "Answers count within" if name == "replies.window" else "Reply options"

    def show_words(self, document: dict[str, Any]) -> None:
        raw = document.get("replies")
        words = self.query_one("#replies-words", Static)
        if not raw:
            words.update(Text(EMPTY_WORDS, style="dim"))
            return
        problems: list[tuple[str, str]] = []
        value = parse_replies(raw, problems)
        if not problems and value is not None:
            words.update(Text(sentence(value), style="bold"))
            return
        # what reads so far could mislead (a bad window reads as the default): the first problem instead
        name, reason = problems[0] if problems else ("replies.options", "add at least one option")
        more = f" ({len(problems) - 1} more: Next names each under its field)" if len(problems) > 1 else ""
        words.update(Text(f"{self.label_of(name)}: {reason}.{more}", style="yellow"))

    @on(Input.Changed)
    def _input_changed(self) -> None:
        self.show_rows()
        self.changed()
