"""A labelled form field with its help line and an inline error, and the value plumbing that lets a
form read every kind of control the same way."""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Input, Label, Select, Static, Switch, TextArea

from smsconsole.services.errors import ValidationError


class FieldError(Static):
    """The reason a field was refused, shown under it; hidden while there is none."""

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

    def show(self, reason: str | None) -> None:
        self.reason = reason or None
        self.update(f"✖ {reason}" if reason else "")
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
    def value(self) -> str:
        return control_value(self.control)


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
                  general: FieldError | None = None, *, summarize: bool = False) -> FormField | None:
    """Show each problem under its field (clearing the others); problems about no shown field go
    to `general`, and with `summarize` so do the names of the fields to correct (for a form that
    scrolls). Returns the first field with a problem, to focus it."""
    problems: dict[str, list[str]] = {}
    for name, reason in (error.problems if error else []):
        problems.setdefault(name, []).append(reason)
    first: FormField | None = None
    refused: list[str] = []
    for field in fields:
        reasons = problems.pop(field.field_name, [])
        field.error.show("; ".join(reasons) or None)
        if reasons:
            refused.append(field.label.removesuffix(" *"))
            first = first or field
    if general is not None:
        lines = [f"Not saved: correct {', '.join(refused)}"] if summarize and refused else []
        lines += [f"{name}: {'; '.join(reasons)}" for name, reasons in problems.items()]
        general.show("\n".join(lines) or None)
    return first
