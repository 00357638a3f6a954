"""Import a file of profiles or events: name the file, read the preview (its first rows, the
proposed column mapping with property types, problems and warnings), adjust where each column goes,
import with a progress bar, then read the summary. The file is read by the imports service; this
screen only chooses the overrides and shows what comes back."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Checkbox, DataTable, Input, ProgressBar, Select, Static

from smsconsole.messages import AudienceImported, ImportProgressed
from smsconsole.screens.base import ACTOR, SectionScreen
from smsconsole.screens.dialogs.confirm import ConfirmDialog
from smsconsole.screens.widgets.fields import FieldError, FormField
from smsconsole.screens.widgets.formatting import display_folder, display_path, format_size, plural
from smsconsole.services.errors import ServiceError, ValidationError
from smsconsole.services.imports import (
    FIELD_TARGETS,
    PROPERTIES,
    PROPERTY_PREFIX,
    SKIP,
    ImportFileError,
    ImportPreview,
    ImportSummary,
    known_property_types,
    preview_import,
    property_name_for,
    run_import,
)
from smsconsole.services.profiles import PROFILE_FIELDS, audience_defaults
from smsconsole.services.values import TYPES

PREVIEW_ROWS = 5
SHOWN_PROBLEMS = 5
CELL_WIDTH = 24
KINDS = (("Profiles", "profiles"), ("Events", "events"))
TYPE_NOTES = {"known": "stored", "inferred": "guessed", "override": "yours"}


def target_options(kind: str, file_format: str, column: str, current: str) -> list[tuple[str, str]]:
    """Where a column can go: the kind's fields, a property named after it, an object of
    properties, or nowhere."""
    options = [(target, target) for target in FIELD_TARGETS[kind]]
    name = property_name_for(column, file_format)
    if not (kind == "profiles" and name in PROFILE_FIELDS):
        options.append((f"property {name}", PROPERTY_PREFIX + name))
    if current.startswith(PROPERTY_PREFIX) and current != PROPERTY_PREFIX + name:
        options.append((f"property {current.removeprefix(PROPERTY_PREFIX)}", current))
    options.append(("properties (JSON object)", PROPERTIES))
    options.append(("skip", SKIP))
    return options


def shorten(text: str, width: int = CELL_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def preview_notes(preview: ImportPreview) -> Text:
    """What blocks the import, what to know, and the bad rows in the sample."""
    notes = Text()
    for _, reason in preview.problems:
        notes.append(f"✖ {reason}\n", style="red")
    for warning in preview.warnings:
        notes.append(f"⚠ {warning}\n", style="yellow")
    if preview.sample_problems:
        rows = len({problem.row for problem in preview.sample_problems})
        notes.append(f"{plural(rows, 'bad row')} in the first {preview.sample_size} (skipped and reported "
                     "when importing):\n", style="yellow")
        for problem in preview.sample_problems[:SHOWN_PROBLEMS]:
            notes.append(f"  {problem.describe()}\n")
    if not notes:
        notes.append(f"✔ The first {plural(preview.sample_size, 'row')} look good.", style="green")
    notes.rstrip()
    return notes


def summary_text(summary: ImportSummary) -> Text:
    """The outcome and the counts; the bad rows themselves are listed in a table below."""
    outcome = {"ok": ("✔ Imported", "bold green"), "partial": ("⚠ Imported with bad rows", "bold yellow"),
               "failed": ("✖ Nothing imported: every row was bad", "bold red"),
               "empty": ("⚠ The file has no data rows", "bold yellow")}[summary.outcome]
    text = Text.assemble(outcome, f"  {summary.path.name}")
    text.append(f"\n{plural(summary.rows_read, 'row')} read · {summary.good_rows:,} imported · ")
    text.append(plural(summary.bad_rows, "bad row"), style="bold red" if summary.bad_rows else "")
    if summary.kind == "profiles":
        text.append(f"\nProfiles: {summary.created:,} created · {summary.updated:,} updated · "
                    f"{summary.unchanged:,} unchanged")
        if summary.duplicates:
            text.append(f" · {summary.duplicates:,} repeated rows merged")
    else:
        text.append(f"\nEvents: {summary.events_recorded:,} recorded · {summary.duplicates:,} already known · "
                    f"{summary.created:,} new profiles")
        if summary.triggered_campaigns:
            text.append(f"\nLive campaigns: {plural(summary.campaign_messages, 'message')} queued for these events")
    if summary.error_file is not None:
        text.append("\nBad rows written to ", style="dim")
        text.append(display_path(summary.error_file), style="bold")
        text.append(" (fix them there and import that file)", style="dim")
    if summary.unreachable_rows:
        why = "no SMS can reach them" if summary.kind == "profiles" else "their phone was not used"
        text.append(f"\n⚠ {plural(summary.unreachable_rows, 'row')} imported without a reachable phone ({why}): ",
                    style="yellow")
        shown = summary.unreachable[:SHOWN_PROBLEMS]
        text.append(", ".join(f"row {w.row} ({w.reason.rstrip('.')})" for w in shown))
        if summary.unreachable_rows > len(shown):
            text.append(f" and {summary.unreachable_rows - len(shown):,} more")
    text.append(f"\nTook {summary.elapsed_seconds:.1f} s", style="dim")
    return text


def problems_title(summary: ImportSummary) -> str:
    shown = len(summary.problems)
    more = f", the first {shown:,} here, all in the error file" if summary.problem_count > shown else ""
    return f"Bad rows ({plural(summary.problem_count, 'problem')}{more})"


class ColumnMapping(Vertical):
    """One file column: where it goes and, for a property, its type; a refused choice is
    explained under it."""

    def __init__(self, column: str, index: int, preview: ImportPreview) -> None:
        super().__init__(classes="column-mapping")
        self.column = column
        self.index = index
        self.kind = preview.kind
        self.file_format = preview.format
        self._initial = preview
        self._type_fixed = False

    def compose(self) -> ComposeResult:
        target = self._initial.mapping.get(self.column, SKIP)
        with Horizontal(classes="column-row"):
            yield Static(shorten(self.column, 18), classes="column-name", markup=False)
            yield Select[str](target_options(self.kind, self.file_format, self.column, target), value=target,
                              allow_blank=False, compact=True, id=f"column-target-{self.index}",
                              classes="column-target")
            # starts on the preview's type: a Select announces its first value, which must not
            # read as the operator's choice
            name = target.removeprefix(PROPERTY_PREFIX) if target.startswith(PROPERTY_PREFIX) else None
            yield Select[str]([(type_, type_) for type_ in TYPES], allow_blank=False, compact=True,
                              value=self._initial.types.get(name or "", TYPES[0]),
                              id=f"column-type-{self.index}", classes="column-type")
            yield Static("", classes="column-note", markup=False)
        yield FieldError(classes="column-error")

    def on_mount(self) -> None:
        self.show(self._initial)

    @property
    def target(self) -> Select[str]:
        return self.query_one(".column-target", Select)

    @property
    def type_select(self) -> Select[str]:
        return self.query_one(".column-type", Select)

    @property
    def error(self) -> FieldError:
        return self.query_one(".column-error", FieldError)

    @property
    def property_name(self) -> str | None:
        value = self.target.value
        if isinstance(value, str) and value.startswith(PROPERTY_PREFIX):
            return value.removeprefix(PROPERTY_PREFIX)
        return None

    def show(self, preview: ImportPreview) -> None:
        """Show the preview's choice for this column (not announced as the operator's)."""
        target = preview.mapping.get(self.column, SKIP)
        with self.target.prevent(Select.Changed), self.type_select.prevent(Select.Changed):
            self.target.set_options(target_options(self.kind, self.file_format, self.column, target))
            self.target.value = target
            name = self.property_name
            type_ = preview.types.get(name) if name else None
            self.type_select.display = type_ is not None
            if type_ is not None:
                self.type_select.value = type_
        source = preview.type_sources.get(self.property_name or "")
        self._type_fixed = source == "known"  # the database already fixes it
        self.type_select.disabled = self._type_fixed
        self.query_one(".column-note", Static).update(TYPE_NOTES.get(source or "", ""))
        self.error.show(None)

    def set_locked(self, locked: bool) -> None:
        """Disable the choices while the file is being imported."""
        self.target.disabled = locked
        self.type_select.disabled = locked or self._type_fixed


class ImportScreen(SectionScreen):
    """Pushed over the Audience section; escape goes back (asking first while an import runs)."""

    MODE = "audience"
    MAIN = "#import-path"  # a form: its path field takes the focus; escape goes back from it
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="import.back", tooltip="Back to the search (asks first while importing)"),
        Binding("ctrl+s", "start_import", "Import", id="import.start",
                tooltip="Import the whole file with the mapping shown"),
    ]

    def __init__(self, kind: str = "profiles") -> None:
        super().__init__()
        self.kind = kind
        self.preview: ImportPreview | None = None
        self.summary: ImportSummary | None = None  # of the last import
        self._previewed: tuple[str, str] | None = None  # (path as typed, kind) of `preview`
        self._mapping: dict[str, str] = {}  # the operator's choices: column → target
        self._types: dict[str, str] = {}  # the operator's choices: property → type
        self.importing = False

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="import-body"):
            with Horizontal(id="import-source"):
                yield FormField("kind", "Kind", Select[str](KINDS, value=self.kind, allow_blank=False, compact=True,
                                                            id="import-kind"))
                yield FormField("path", "File (CSV or JSON lines; enter to preview)",
                                Input(placeholder="~/exports/contacts.csv", compact=True, id="import-path"),
                                help=f"A relative path starts in {display_folder(Path.cwd())}")
            yield Checkbox("Imported events may trigger live campaigns", value=False, compact=True,
                           id="import-trigger", tooltip="Off: the events are recorded and text nobody (a backfill "
                           "of old events). On: they act as events from the API do, and live campaigns may send.")
            yield FieldError(id="import-error")
            with Vertical(id="import-preview", classes="panel") as preview:
                preview.border_title = "Preview"
                yield Static("", id="import-file-info", markup=False)
                yield DataTable(id="import-rows", cursor_type="none", zebra_stripes=True)
            with Vertical(id="import-mapping", classes="panel") as mapping:
                mapping.border_title = "Columns → where they go"
            yield Static("", id="import-notes")
            with Vertical(id="import-summary", classes="panel") as summary:
                summary.border_title = "Summary"
                yield Static("", id="import-summary-text")
            with Vertical(id="import-problems", classes="panel") as problems:
                problems.border_title = "Bad rows"
                yield DataTable(id="import-problems-table", cursor_type="row", zebra_stripes=True)
        # outside the scrolling part, so the button and the progress stay in sight
        with Horizontal(id="import-actions"):
            yield Button("Import", id="import-start", variant="primary", compact=True, disabled=True,
                         tooltip="Import the whole file (ctrl+s)")
            yield ProgressBar(id="import-progress", show_eta=False)
            yield Static("", id="import-progress-text", markup=False)

    def on_mount(self) -> None:
        for selector in ("#import-preview", "#import-mapping", "#import-notes", "#import-progress",
                         "#import-summary", "#import-problems"):
            self.query_one(selector).display = False
        self.query_one("#import-trigger", Checkbox).display = self.kind == "events"
        problems = self.query_one("#import-problems-table", DataTable)
        problems.add_column("Row", key="row")
        problems.add_column("Column", key="column")
        problems.add_column("Reason", key="reason")

    @property
    def path_field(self) -> FormField:
        return self.query_one("#field-path", FormField)

    @property
    def path_text(self) -> str:
        return self.query_one("#import-path", Input).value.strip()

    # --- preview -----------------------------------------------------------------------------

    @on(Input.Submitted, "#import-path")
    def _path_submitted(self) -> None:
        if self._previewed is None or self._previewed[0] != self.path_text:
            self._mapping.clear()
            self._types.clear()
        self.load_preview()

    @on(Select.Changed, "#import-kind")
    def _kind_changed(self, event: Select.Changed) -> None:
        if event.value == self.kind:
            return
        self.kind = str(event.value)
        trigger = self.query_one("#import-trigger", Checkbox)
        trigger.display = self.kind == "events"
        trigger.value = False  # a choice made for each import of events, off unless ticked
        self._mapping.clear()
        self._types.clear()
        if self.path_text:
            self.load_preview()

    @on(Select.Changed, ".column-target")
    def _target_changed(self, event: Select.Changed) -> None:
        row = next(row for row in self.query(ColumnMapping) if row.target is event.select)
        shown = self.preview.mapping.get(row.column) if self.preview else None
        if self._mapping.get(row.column, shown) == event.value:
            return  # not a change (a Select announces its first value when it mounts)
        self._mapping[row.column] = str(event.value)
        self.load_preview()

    @on(Select.Changed, ".column-type")
    def _type_changed(self, event: Select.Changed) -> None:
        row = next(row for row in self.query(ColumnMapping) if row.type_select is event.select)
        name = row.property_name
        shown = self.preview.types.get(name) if self.preview and name else None
        if name and self._types.get(name, shown) != event.value:
            self._types[name] = str(event.value)
            self.load_preview()

    def _type_overrides(self) -> dict[str, str]:
        """The operator's types for properties some column still maps to."""
        mapped = {row.property_name for row in self.query(ColumnMapping)}
        return {name: type_ for name, type_ in self._types.items() if name in mapped}

    @work(exclusive=True, group="import-preview", exit_on_error=False)
    async def load_preview(self) -> None:
        path, kind = self.path_text, self.kind
        if not path:
            self.path_field.error.show("is required: the file to import")
            return
        runtime = await self.runtime()
        async with runtime.factory() as session:
            known = await known_property_types(session, kind)
            defaults = await audience_defaults(session)
        try:
            preview = await asyncio.to_thread(
                preview_import, path, kind, mapping=dict(self._mapping) or None,
                types=self._type_overrides() or None, known_types=known, defaults=defaults)
        except ImportFileError as exc:
            self.preview, self._previewed = None, None
            self.path_field.error.show(str(exc))
            self._show_panels(False)
            return
        except ValidationError as exc:
            self._show_refusals(exc)
            return
        self.path_field.error.show(None)
        self.query_one("#import-error", FieldError).show(None)
        self.preview, self._previewed = preview, (path, kind)
        await self._show_preview(preview)

    def _show_panels(self, shown: bool) -> None:
        for selector in ("#import-preview", "#import-mapping", "#import-notes"):
            self.query_one(selector).display = shown
        self.query_one("#import-start", Button).disabled = not (shown and self.preview is not None and self.preview.ok)

    async def _show_preview(self, preview: ImportPreview) -> None:
        delimiter = {",": "comma", ";": "semicolon", "\t": "tab", "|": "bar"}.get(preview.delimiter or "",
                                                                                    repr(preview.delimiter))
        details = [preview.path.name, "CSV" if preview.format == "csv" else "JSON lines"]
        if preview.format == "csv":
            details.append(f"{delimiter}-separated")
        details += [format_size(preview.file_size), plural(len(preview.columns), "column")]
        self.query_one("#import-file-info", Static).update(" · ".join(details))
        table = self.query_one("#import-rows", DataTable)
        table.clear(columns=True)
        table.add_column("Line", key="line")
        for index, column in enumerate(preview.columns):
            table.add_column(shorten(column, 16), key=str(index))
        for row in preview.rows[:PREVIEW_ROWS]:
            table.add_row(str(row.row), *(shorten(value) for value in row.values))
        await self._show_mapping(preview)
        self.query_one("#import-notes", Static).update(preview_notes(preview))
        self._show_panels(True)

    async def _show_mapping(self, preview: ImportPreview) -> None:
        panel = self.query_one("#import-mapping", Vertical)
        rows = list(self.query(ColumnMapping))
        same = ([row.column for row in rows] == list(preview.columns)
                and all(row.kind == preview.kind and row.file_format == preview.format for row in rows))
        if not same:
            await panel.remove_children()
            await panel.mount_all(ColumnMapping(column, index, preview)
                                  for index, column in enumerate(preview.columns))
        else:
            for row in rows:
                row.show(preview)

    def _show_refusals(self, error: ValidationError) -> None:
        """Overrides the service refused: each under its column, the rest above the preview."""
        rows = list(self.query(ColumnMapping))
        by_row: dict[ColumnMapping, list[str]] = {}
        general: list[str] = []
        for field, reason in error.problems:
            row = None
            if field.startswith("mapping."):
                row = next((r for r in rows if r.column == field.removeprefix("mapping.")), None)
            elif field.startswith("types."):
                row = next((r for r in rows if r.property_name == field.removeprefix("types.")), None)
            if row is None:
                general.append(f"{field}: {reason}")
            else:
                by_row.setdefault(row, []).append(reason)
        for row in rows:
            row.error.show("; ".join(by_row.get(row, [])) or None, label=row.column)
        self.query_one("#import-error", FieldError).show("\n".join(general) or None)
        self.query_one("#import-start", Button).disabled = True

    # --- import ------------------------------------------------------------------------------

    @on(Button.Pressed, "#import-start")
    def action_start_import(self) -> None:
        if self.importing:
            return
        if self.preview is None or self._previewed != (self.path_text, self.kind):
            self.notify("Check the preview first (enter in the file field), then import.", timeout=4)
            self.load_preview()
            return
        if not self.preview.ok:
            self.notify("Correct the problems shown under the preview first.", severity="warning")
            return
        trigger = self.kind == "events" and self.query_one("#import-trigger", Checkbox).value
        self.run_file_import(self.path_text, self.kind, dict(self._mapping), self._type_overrides(),
                             self.preview.file_size, trigger)

    @work(exclusive=True, group="import-run", exit_on_error=False)
    async def run_file_import(self, path: str, kind: str, mapping: dict[str, str], types: dict[str, str],
                              file_size: int, trigger_campaigns: bool = False) -> None:
        runtime = await self.runtime()
        self._set_running(True, file_size)

        def progress(rows: int, bytes_read: int, size: int) -> None:
            # run_import calls this on the event loop, between batches
            self.post_message(ImportProgressed(rows, bytes_read, size))

        try:
            summary = await run_import(runtime.factory, path, kind, actor=ACTOR, mapping=mapping or None,
                                       types=types or None, progress=progress,
                                       trigger_campaigns=trigger_campaigns)
        except ImportFileError as exc:
            self.path_field.error.show(str(exc))
            return
        except ValidationError as exc:
            self._show_refusals(exc)
            return
        except ServiceError as exc:
            self.query_one("#import-error", FieldError).show(str(exc))
            return
        finally:
            self._set_running(False)
        self._show_summary(summary)
        self.post_message(AudienceImported(kind, summary.rows_read, summary.bad_rows))

    def on_import_progressed(self, message: ImportProgressed) -> None:
        bar = self.query_one("#import-progress", ProgressBar)
        bar.update(total=max(message.file_size, 1), progress=message.bytes_read)
        self.query_one("#import-progress-text", Static).update(
            f"{plural(message.rows, 'row')} · {format_size(message.bytes_read)} of {format_size(message.file_size)}")

    def _set_running(self, running: bool, file_size: int = 0) -> None:
        self.importing = running
        for control in self.query("#import-source Input, #import-source Select, #import-trigger"):
            control.disabled = running
        for row in self.query(ColumnMapping):
            row.set_locked(running)
        self.query_one("#import-start", Button).disabled = running or not (self.preview and self.preview.ok)
        if running:
            bar = self.query_one("#import-progress", ProgressBar)
            bar.update(total=max(file_size, 1), progress=0)
            bar.display = True
            self.query_one("#import-summary").display = False
            self.query_one("#import-problems").display = False
            self.query_one("#import-progress-text", Static).update("starting…")

    def _show_summary(self, summary: ImportSummary) -> None:
        self.summary = summary
        self.query_one("#import-summary-text", Static).update(summary_text(summary))
        panel = self.query_one("#import-summary")
        panel.display = True
        panel.border_title = f"Summary: {summary.outcome}"
        table = self.query_one("#import-problems-table", DataTable)
        table.clear()
        for index, problem in enumerate(summary.problems):
            table.add_row(str(problem.row), problem.column or "(whole row)", problem.reason, key=str(index))
        problems = self.query_one("#import-problems")
        problems.display = bool(summary.problems)
        problems.border_title = problems_title(summary)
        self.call_after_refresh(panel.scroll_visible, top=True, animate=False)

    # --- leaving -----------------------------------------------------------------------------

    def action_back(self) -> None:
        if self.importing:
            self.confirm_stop()
        else:
            self.dismiss()

    @work(exclusive=True, group="import-stop", exit_on_error=False)
    async def confirm_stop(self) -> None:
        stop = await self.app.push_screen_wait(ConfirmDialog(
            "Stop the import",
            "Stop importing? Batches already written stay imported; importing the same file again "
            "finishes the rest (rows already imported change nothing).",
            confirm_label="Stop", destructive=True))
        if stop and self.importing:
            self.workers.cancel_group(self, "import-run")
            self.notify("Import stopped.", severity="warning")
            self.dismiss()
