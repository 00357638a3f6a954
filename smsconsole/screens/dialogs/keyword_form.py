"""Add or edit a reply keyword: word, action, language, auto-response, event name. The save runs
here, so each refused field is explained under it and the dialog stays open. Returns the saved
keyword, or None. A default keyword keeps its word and action (they are shown, not editable)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Footer, Input, Select, Static, Switch, TextArea
from textual.worker import Worker

from smsconsole.screens.dialogs.form import FormDialog
from smsconsole.screens.widgets.errors import report_worker_error
from smsconsole.screens.widgets.fields import FieldError, FormField, show_problems
from smsconsole.services.errors import ServiceError, ValidationError
from smsconsole.services.keywords import (
    ACTION_LABELS,
    ACTIONS,
    RESPONSE_MAX,
    KeywordView,
)

# the values typed into the form → the saved keyword; raises ValidationError
SaveKeyword = Callable[[dict[str, str]], Awaitable[KeywordView]]


class KeywordFormDialog(FormDialog[KeywordView | None]):
    AUTO_FOCUS = "#input-word"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="keyword-form.cancel",
                tooltip="Close without saving (asks first when something was changed)"),
        Binding("ctrl+s", "save", "Save", id="keyword-form.save", tooltip="Validate and save"),
    ]

    def __init__(self, save: SaveKeyword, keyword: KeywordView | None = None) -> None:
        super().__init__(classes="dialog-screen")
        self.save = save
        self.keyword = keyword

    def compose(self) -> ComposeResult:
        k = self.keyword
        builtin = bool(k and k.builtin)
        with Vertical(id="keyword-form-dialog", classes="dialog") as dialog:
            dialog.border_title = f"Edit keyword {k.word}" if k else "New keyword"
            with VerticalScroll(id="keyword-form-body"):
                if builtin:
                    yield Static("A default keyword: its word and action stay; edit its response or language, or "
                                 "turn it off.", classes="dialog-help", markup=False)
                yield FieldError(id="keyword-form-error")
                yield FormField("word", "Word", Input(value=k.word if k else "", compact=True, id="input-word",
                                                      max_length=64, disabled=builtin, placeholder="e.g. PROMO"),
                                help="The whole reply, any case; accents, punctuation and spacing are ignored",
                                required=True)
                yield FormField("action", "Action", Select([(ACTION_LABELS[a], a) for a in ACTIONS],
                                                           value=k.action if k else "custom", allow_blank=False,
                                                           compact=True, id="input-action", disabled=builtin),
                                help="opt-out unsubscribes; opt-in subscribes; help answers; custom logs an event")
                yield FormField("event_name", "Event name", Input(value=(k.event_name or "") if k else "",
                                                                  compact=True, id="input-event-name",
                                                                  placeholder="e.g. survey_yes"),
                                help="custom only: replies are logged as this event")
                yield FormField("language", "Language", Input(value=(k.language or "") if k else "", compact=True,
                                                              id="input-language", placeholder="en, es, pt-BR …"))
                yield FormField("response", "Auto-response", TextArea((k.response or "") if k else "", compact=True,
                                                                     id="input-response", soft_wrap=True),
                                help=f"Sent back through the same provider; empty sends none (≤ {RESPONSE_MAX})")
                yield FormField("enabled", "Enabled", Switch(value=k.enabled if k else True, id="input-enabled"))
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save", id="save", variant="primary", compact=True)
                yield Button("Cancel", id="cancel", compact=True)
        yield Footer()

    @property
    def fields(self) -> list[FormField]:
        return list(self.query(FormField))

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        self._save({field.field_name: field.value for field in self.fields})

    @work(exclusive=True, group="keyword-form-save", exit_on_error=False)
    async def _save(self, values: dict[str, str]) -> None:
        general = self.query_one("#keyword-form-error", FieldError)
        try:
            saved = await self.save(values)
        except ValidationError as exc:
            first = show_problems(self.fields, exc, general)
            if first is not None and not first.control.disabled:
                first.control.focus()
            return
        except ServiceError as exc:
            general.show(str(exc))
            return
        self.dismiss(saved)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        report_worker_error(self.app, event)
