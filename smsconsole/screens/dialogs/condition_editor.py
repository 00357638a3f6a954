"""Add or edit one segment condition (or one where-filter of an event condition). The choices come
from the catalog: property names with their types, the operators the type allows, recorded event
names. Returns the condition's JSON, or None when cancelled. It stays open until the service's
validator accepts the condition, with each reason shown under the row it belongs to."""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Button, Footer, Input, Label, Select, SelectionList, Static

from smsconsole.screens.dialogs.form import FormDialog
from smsconsole.screens.segments.conditions import (
    EVENT,
    FIELD,
    FILTER,
    PROPERTY,
    REACHABLE,
    SUBSCRIPTION,
    editor_row,
    field_words,
    parse_value,
    parse_whole,
    value_texts,
)
from smsconsole.screens.widgets.fields import FieldError
from smsconsole.services.errors import ValidationError
from smsconsole.services.segments import (
    COUNT_CATALOGUE,
    DAYS,
    LIST,
    NO_VALUE,
    OPERATORS,
    PAIR,
    SegmentCatalog,
    operator_menu,
    validate_definition,
    value_kind,
)

KIND_LABELS = {
    PROPERTY: "Profile property", FIELD: "Built-in field", EVENT: "Event: did / did not",
    SUBSCRIPTION: "SMS subscription", REACHABLE: "Reachable by SMS",
}
WINDOW_LABELS = {"ever": "ever", "last_days": "in the last N days", "between": "between two dates"}
VALUE_HINTS = {
    "string": "text, e.g. gold", "number": "a number, e.g. 42 or 9.99", "boolean": "true or false",
    "date": "a date: 2026-01-31 or 2026-01-31T09:30:00Z (UTC)", "list": "one item, e.g. sports",
}
ROWS = ("kind", "name", "op", "value", "event", "count", "window", "subscription", "reachable")
ROW_LABELS = {"kind": "Condition", "name": "Property", "op": "Operator", "value": "Value", "event": "Event",
              "count": "Did", "window": "When", "subscription": "States", "reachable": "Is"}


def _offer(select: Select[str], options: list[tuple[str, str]]) -> None:
    """Replace a select's options, with a blank entry only when there is nothing to choose (Select
    takes allow_blank once, at construction; textual is pinned, so its attribute is relied on)."""
    select._allow_blank = not options
    select.set_options(options)


def _options(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(label, value) for value, label in pairs]


class ConditionEditorDialog(FormDialog[dict[str, Any] | None]):
    """`event` set: the dialog edits a where-filter on that event's properties."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="condition-editor.cancel", tooltip="Close without changing anything (asks first when something was changed)"),
        Binding("ctrl+s", "done", "Done", id="condition-editor.done", tooltip="Check the condition and put it in place"),
    ]

    def __init__(self, catalog: SegmentCatalog, *, condition: dict[str, Any] | None = None,
                 event: str | None = None, kind: str | None = None) -> None:
        super().__init__(classes="dialog-screen")
        self.catalog = catalog
        self.condition = dict(condition or {})
        self.event = event
        if event is not None:
            self.kind = FILTER
        else:
            self.kind = kind or next((k for k in (PROPERTY, FIELD, EVENT, SUBSCRIPTION, REACHABLE)
                                      if k in self.condition), PROPERTY)

    # --- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        condition = self.condition
        editing = bool(condition)
        with Vertical(id="condition-editor", classes="dialog") as dialog:
            if self.kind == FILTER:
                dialog.border_title = f"{'Edit' if editing else 'Add'} filter on {self.event} events"
            else:
                dialog.border_title = f"{'Edit' if editing else 'Add'} condition"
            yield FieldError(id="condition-error")
            if self.kind != FILTER:
                yield from self._row("kind", Select(_options(list(KIND_LABELS.items())), value=self.kind,
                                                    allow_blank=False, compact=True, id="select-kind"))
            yield from self._row("name", Select([], compact=True, id="select-name"))
            yield from self._row("op", Select([], compact=True, id="select-op"))
            first, second = value_texts(condition.get("op", ""), condition.get("value"))
            yield from self._row(
                "value",
                Input(first, compact=True, id="input-value"),
                Static("and", id="value-and", classes="editor-word"),
                Input(second, compact=True, id="input-value2"),
                help_id="value-help",
            )
            yield from self._event_rows(condition)
            states = condition.get("subscription", "subscribed")
            states = [states] if isinstance(states, str) else list(states) if isinstance(states, list) else []
            yield from self._row("subscription", SelectionList[str](
                *((state, state, state in states) for state in self.catalog.subscription_states),
                id="select-subscription", compact=True))
            yield from self._row("reachable", Select(
                [("reachable by SMS now", "true"), ("not reachable by SMS", "false")],
                value="false" if condition.get("reachable") is False else "true", allow_blank=False, compact=True,
                id="select-reachable"))
            with Horizontal(classes="dialog-buttons"):
                yield Button("Done", id="done", variant="primary", compact=True)
                yield Button("Cancel", id="cancel", compact=True)
        yield Footer()

    def _event_rows(self, condition: dict[str, Any]) -> ComposeResult:
        names = [e.name for e in self.catalog.events]
        current = condition.get("event")
        if isinstance(current, str) and current and current not in names:
            names.append(current)
        yield from self._row("event", Select([(name, name) for name in names],
                                             value=current if current in names else (names[0] if names else Select.NULL),
                                             allow_blank=not names, compact=True, id="select-event"),
                             help_id="event-help")
        count = condition.get("count") if isinstance(condition.get("count"), dict) else {}
        did = "false" if condition.get("did") is False else "true"
        yield from self._row(
            "count",
            Select([("did", "true"), ("did not do it", "false")], value=did, allow_blank=False, compact=True,
                   id="select-did"),
            Select([(op.label, op.name) for op in COUNT_CATALOGUE.values()], value=count.get("op", "at_least"),
                   allow_blank=False, compact=True, id="select-count-op"),
            Input(str(count.get("value", 1)), compact=True, id="input-count"),
            Static("times", id="count-times", classes="editor-word"),
        )
        window = condition.get("window", "ever")
        kind = "last_days" if isinstance(window, dict) and "last_days" in window else \
            "between" if isinstance(window, dict) and "between" in window else "ever"
        between = window.get("between") if kind == "between" and isinstance(window, dict) else None
        start, end = (between if isinstance(between, list) and len(between) == 2 else ["", ""])
        yield from self._row(
            "window",
            Select(_options(list(WINDOW_LABELS.items())), value=kind, allow_blank=False, compact=True,
                   id="select-window"),
            Input(str(window.get("last_days", 30)) if kind == "last_days" else "30", compact=True,
                  id="input-days", placeholder="days"),
            Static("days", id="window-days", classes="editor-word"),
            Input(str(start), compact=True, id="input-start", placeholder="2026-01-01"),
            Static("to", id="window-to", classes="editor-word"),
            Input(str(end), compact=True, id="input-end", placeholder="2026-01-31"),
        )

    def _row(self, row: str, *controls: Widget, help_id: str | None = None) -> ComposeResult:
        with Vertical(id=f"row-{row}", classes="editor-row"):
            with Horizontal(classes="editor-line"):
                yield Label(ROW_LABELS[row], id=f"label-{row}", classes="editor-label")
                yield from controls
            if help_id:
                yield Static("", id=help_id, classes="editor-help", markup=False)
            yield FieldError(id=f"error-{row}")

    def on_mount(self) -> None:
        self._fill_names(self.condition.get("property") or self.condition.get("field"))
        self._fill_operators(self.condition.get("op"))
        self._update_rows()
        first = {EVENT: "#select-event", SUBSCRIPTION: "#select-subscription", REACHABLE: "#select-reachable"}
        self.query_one(first.get(self.kind, "#select-name")).focus()

    # --- choices -----------------------------------------------------------------------------

    def _choices(self) -> list[tuple[str, str]]:
        """(name, type) the name select offers for the current kind."""
        if self.kind == FILTER:
            return sorted(self.catalog.event_property_types(self.event or "").items())
        infos = self.catalog.fields if self.kind == FIELD else self.catalog.properties
        return [(info.name, info.type) for info in infos]

    def _type(self) -> str:
        name = self._value("#select-name")
        return dict(self._choices()).get(name, "string")

    def _value(self, selector: str) -> str:
        select = self.query_one(selector, Select)
        return "" if select.value is Select.NULL else str(select.value)

    def _fill_names(self, keep: str | None = None) -> None:
        select = self.query_one("#select-name", Select)
        choices = self._choices()
        if isinstance(keep, str) and keep and keep not in dict(choices):
            choices = [*choices, (keep, "unknown")]
        with self.prevent(Select.Changed):
            _offer(select, [(f"{name}  ({type_})", name) for name, type_ in choices])
            if choices:
                select.value = keep if keep in dict(choices) else choices[0][0]

    def _fill_operators(self, keep: str | None = None) -> None:
        select = self.query_one("#select-op", Select)
        allowed = list(OPERATORS.get(self._type(), ()))
        if isinstance(keep, str) and keep and keep not in allowed:
            allowed.append(keep)
        with self.prevent(Select.Changed):
            _offer(select, [(operator_menu(op), op) for op in allowed])
            if allowed:
                select.value = keep if keep in allowed else allowed[0]

    def _update_rows(self) -> None:
        """Show the rows the kind and operator need, and the value's format."""
        kind = self.kind
        valued_kinds = (PROPERTY, FIELD, FILTER)
        shown = {
            "kind": kind != FILTER, "name": kind in valued_kinds, "op": kind in valued_kinds,
            "value": kind in valued_kinds and value_kind(self._value("#select-op")) != NO_VALUE,
            "event": kind == EVENT, "count": kind == EVENT, "window": kind == EVENT,
            "subscription": kind == SUBSCRIPTION, "reachable": kind == REACHABLE,
        }
        for row, visible in shown.items():
            for widget in self.query(f"#row-{row}"):
                widget.display = visible
        self.query_one("#label-name", Label).update("Field" if kind == FIELD else "Property")
        if kind in valued_kinds:
            op, type_ = self._value("#select-op"), self._type()
            between = value_kind(op) == PAIR
            self.query_one("#input-value2").display = between
            self.query_one("#value-and").display = between
            if value_kind(op) == DAYS:
                hint = "whole days, e.g. 30"
            elif value_kind(op) == LIST:
                hint = "comma-separated: " + ("numbers, e.g. 1, 2, 3" if type_ == "number" else "e.g. IN, GB")
            elif between:
                hint = f"from and to, both included: {VALUE_HINTS.get(type_, 'text')}"
            else:
                hint = VALUE_HINTS.get(type_, "text")
            self.query_one("#value-help", Static).update(hint)
            if not self._choices():
                self._error("name", "no profile properties yet: import profiles first, or use a built-in field"
                            if kind == PROPERTY else "this event has no recorded properties")
        if kind == EVENT:
            did = self._value("#select-did") != "false"
            self.query_one("#select-count-op").display = did
            self.query_one("#input-count").display = did
            self.query_one("#count-times").display = did
            window = self._value("#select-window")
            for selector in ("#input-days", "#window-days"):
                self.query_one(selector).display = window == "last_days"
            for selector in ("#input-start", "#window-to", "#input-end"):
                self.query_one(selector).display = window == "between"
            names = {e.name for e in self.catalog.events}
            self.query_one("#event-help", Static).update(
                "no events recorded yet; events can be imported in Audience" if not names else
                "where-filters on its properties: press f on it in the tree")

    @on(Input.Changed)
    @on(Select.Changed)
    @on(SelectionList.SelectedChanged)
    def _row_changed(self, event: Input.Changed | Select.Changed | SelectionList.SelectedChanged[str]) -> None:
        """A changed row's refusal goes at once; the other rows' stay until Done checks again.
        (Defined before the handlers below, which may show a row's live note again.)"""
        control = event.control
        row = next((node for node in control.ancestors if (node.id or "").startswith("row-")), None)
        if row is not None:
            for error in row.query(FieldError):
                error.show(None)

    @on(Select.Changed, "#select-kind")
    def _kind_changed(self) -> None:
        kind = self._value("#select-kind") or PROPERTY
        if kind == self.kind:  # the select announces its first value too
            return
        self.kind = kind
        self._clear_errors()
        self._fill_names()
        self._fill_operators()
        self._update_rows()

    @on(Select.Changed, "#select-name")
    def _name_changed(self) -> None:
        self._fill_operators(self._value("#select-op"))
        self._update_rows()

    @on(Select.Changed, "#select-op")
    @on(Select.Changed, "#select-did")
    @on(Select.Changed, "#select-window")
    def _shape_changed(self) -> None:
        self._update_rows()

    # --- the result --------------------------------------------------------------------------

    def built(self) -> dict[str, Any]:
        """The condition as JSON, from what is on screen (unchecked)."""
        kind = self.kind
        if kind in (PROPERTY, FIELD, FILTER):
            op = self._value("#select-op")
            document: dict[str, Any] = {FIELD if kind == FIELD else PROPERTY: self._value("#select-name"), "op": op}
            given, value = parse_value(self._type(), op, self.query_one("#input-value", Input).value,
                                       self.query_one("#input-value2", Input).value)
            if given:
                document["value"] = value
            return document
        if kind == EVENT:
            document = {"event": self._value("#select-event"), "did": self._value("#select-did") != "false"}
            if document["did"]:
                count_op, count_text = self._value("#select-count-op"), self.query_one("#input-count", Input).value
                if not (count_op == "at_least" and count_text.strip() == "1"):
                    document["count"] = {"op": count_op, "value": parse_whole(count_text)}
            window = self._value("#select-window")
            if window == "last_days":
                document["window"] = {"last_days": parse_whole(self.query_one("#input-days", Input).value)}
            elif window == "between":
                document["window"] = {"between": [self.query_one("#input-start", Input).value.strip(),
                                                  self.query_one("#input-end", Input).value.strip()]}
            if isinstance(self.condition.get("where"), list) and self.condition.get("event") == document["event"]:
                document["where"] = self.condition["where"]
            return document
        if kind == SUBSCRIPTION:
            states = list(self.query_one("#select-subscription", SelectionList).selected)
            return {"subscription": states[0] if len(states) == 1 else states}
        return {"reachable": self._value("#select-reachable") != "false"}

    def problems(self, condition: dict[str, Any]) -> list[tuple[str, str]]:
        """What the service's validator says about this one condition, as (row, reason)."""
        if self.kind == FILTER:
            document, prefix = {"conditions": [{"event": self.event, "where": [condition]}]}, "conditions[0].where[0]"
        else:
            document, prefix = {"conditions": [condition]}, "conditions[0]"
        try:
            validate_definition(document, self.catalog)
        except ValidationError as exc:
            found = []
            for path, reason in exc.problems:
                if path == prefix or path.startswith(prefix + "."):
                    rest = path[len(prefix):].lstrip(".")
                    found.append((editor_row(rest), f"{field_words(rest)}: {reason}" if rest else reason))
                elif self.kind != FILTER or not path.startswith("conditions[0]"):
                    found.append(("general", f"{path}: {reason}"))
            return found
        return []

    def _clear_errors(self) -> None:
        for error in self.query(FieldError):
            error.show(None)

    def _error(self, row: str, reason: str) -> None:
        target = f"#error-{row}" if row != "general" else "#condition-error"
        self.query_one(target, FieldError).show(reason)

    @on(Button.Pressed, "#done")
    @on(Input.Submitted)
    def action_done(self) -> None:
        condition = self.built()
        problems = self.problems(condition)
        self._clear_errors()
        if not problems:
            self.dismiss(condition)
            return
        by_row: dict[str, list[str]] = {}
        for row, reason in problems:
            by_row.setdefault(row if row in ROWS or row == "general" else "general", []).append(reason)
        for row, reasons in by_row.items():
            self._error(row, "; ".join(reasons))
        first = next((row for row in ROWS if row in by_row), None)
        focus = {"name": "#select-name", "op": "#select-op", "value": "#input-value", "event": "#select-event",
                 "count": "#input-count", "window": "#select-window", "subscription": "#select-subscription"}
        if first in focus:
            target = self.query_one(focus[first])
            if first == "window":
                window = self._value("#select-window")
                target = self.query_one("#input-days" if window == "last_days" else "#input-start"
                                        if window == "between" else "#select-window")
            target.focus()
