"""A labelled form field with its help line and an inline error, and the value plumbing that lets a
form read every kind of control the same way.

How a form shows a service's ValidationError((field, reason), ...): each reason once, under its
field, as a sentence that names the field ("Name is required"); a general line above the form only
for reasons about no field shown; and an error clears as soon as its field changes."""

from __future__ import annotations

import re
from collections.abc import Iterable

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import (
    Checkbox,
    Input,
    Label,
    Select,
    SelectionList,
    Static,
    Switch,
    TextArea,
)

from smsconsole.services.errors import ValidationError

# a reason that starts with one of these continues the field's name: "is required" → "Name is required"
_PREDICATE_WORDS = frozenset({"is", "are", "must", "has", "have", "needs", "need", "should", "cannot", "can't",
                              "does", "do", "was", "may", "accepts", "takes", "holds", "contains"})


def problem_label(label: str) -> str:
    """A field's label as a problem names it: without the required mark or a parenthesised note."""
    return re.sub(r"\s*\(.*\)\s*$", "", label.removesuffix(" *")).strip() or label


def humanize(field_name: str) -> str:
    """A service's field name for a field the form does not show: `event_name` → `Event name`."""
    words = field_name.replace("_", " ").replace(".", " ").strip()
    return words[:1].upper() + words[1:]


def name_problem(label: str, reason: str) -> str:
    """The reason as a sentence naming its field: "Name is required", "Countries: ZZ: not an ISO…"."""
    if not label or reason.lower().startswith(label.lower()):
        return reason
    first = reason.split(" ", 1)[0]
    return f"{label} {reason}" if first in _PREDICATE_WORDS else f"{label}: {reason}"


class FieldError(Static):
    """The reason a field was refused, shown under it; hidden while there is none. `reason` is the
    service's reason; the line shows it naming the field (`label`, or the enclosing FormField's)."""

    DEFAULT_CSS = """
    FieldError {
        color: $text-error;
        height: auto;
        display: none;
    }
    FieldError.-shown {
        display: block;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("", markup=False, id=id, classes=classes)
        self.reason: str | None = None
        self.message: str | None = None  # what the line says (without the ✖)

    def show(self, reason: str | None, *, label: str | None = None) -> None:
        if label is None and isinstance(self.parent, FormField):
            label = self.parent.problem_label
        self.reason = reason or None
        self.message = name_problem(label, reason) if reason and label else self.reason
        self.update(f"✖ {self.message}" if self.message else "")
        self.set_class(bool(reason), "-shown")


class FormField(Vertical):
    """Label, control, help and error of one named field. `field_name` is the name services use in
    their (field, reason) problems."""

    DEFAULT_CSS = """
    FormField {
        height: auto;
        margin-bottom: 1;
    }
    FormField > .form-field-label {
        text-style: bold;
    }
    FormField > .form-field-help {
        color: $text-muted;
    }
    """

    def __init__(self, field_name: str, label: str, control: Widget, *, help: str = "",
                 required: bool = False, classes: str | None = None) -> None:
        super().__init__(id=f"field-{css_name(field_name)}", classes=classes)
        self.field_name = field_name
        self.label = label + (" *" if required else "")
        self.control = control
        self.help = help

    def compose(self) -> ComposeResult:
        yield Label(self.label, classes="form-field-label")
        yield self.control
        if self.help:
            yield Static(self.help, classes="form-field-help", markup=False)
        yield FieldError()

    @property
    def error(self) -> FieldError:
        return self.query_one(FieldError)

    @property
    def problem_label(self) -> str:
        return problem_label(self.label)

    @property
    def value(self) -> str:
        return control_value(self.control)

    @on(Input.Changed)
    @on(TextArea.Changed)
    @on(Select.Changed)
    @on(Switch.Changed)
    @on(Checkbox.Changed)
    @on(SelectionList.SelectedChanged)
    def _control_changed(self) -> None:
        """A changed value is no longer the refused one: its error goes (the message goes on to the form)."""
        for error in self.query(FieldError):
            error.show(None)


def css_name(field_name: str) -> str:
    return field_name.replace("_", "-")


def control_value(control: Widget) -> str:
    """A control's value as the text services take."""
    if isinstance(control, Input):
        return control.value
    if isinstance(control, TextArea):
        return control.text
    if isinstance(control, Switch):
        return "true" if control.value else "false"
    if isinstance(control, Select):
        return "" if control.value is Select.NULL else str(control.value)
    raise TypeError(f"not a form control: {control!r}")


def set_control_value(control: Widget, value: str) -> None:
    if isinstance(control, Input):
        control.value = value
    elif isinstance(control, TextArea):
        control.text = value
    elif isinstance(control, Switch):
        control.value = value.strip().lower() in ("true", "yes", "1", "on")
    elif isinstance(control, Select):
        control.value = value if value else Select.NULL
    else:
        raise TypeError(f"not a form control: {control!r}")


def show_problems(fields: Iterable[FormField], error: ValidationError | None,
                  general: FieldError | None = None) -> FormField | None:
    """Show each problem once: under its field (clearing the others), or, when it is about no shown
    field, in `general` with the field named. Returns the first field with a problem, to focus it."""
    problems: dict[str, list[str]] = {}
    for name, reason in (error.problems if error else []):
        problems.setdefault(name, []).append(reason)
    first: FormField | None = None
    for field in fields:
        reasons = problems.pop(field.field_name, [])
        field.error.show("; ".join(reasons) or None)
        if reasons:
            first = first or field
    if general is not None:
        general.show("\n".join(name_problem(humanize(name), "; ".join(reasons))
                                for name, reasons in problems.items()) or None)
    return first
