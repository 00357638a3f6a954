"""The words of an import: kinds, formats, mapping targets and the error file's notes; what a
preview and an import report; the errors they raise."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from smsconsole.services.errors import ServiceError

KINDS = ("profiles", "events")
FORMATS = ("csv", "jsonl")
SKIP = "skip"
PROPERTIES = "properties"  # a column (or JSON key) holding an object of properties
PROPERTY_PREFIX = "property:"
FIELD_TARGETS: dict[str, tuple[str, ...]] = {
    "profiles": ("user_id", "phone", "name", "timezone", "country", "optin_at", "optout_at"),
    "events": ("user_id", "phone", "name", "at"),
}
ERROR_COLUMNS = ("error_row", "error_reason")  # added to a CSV error file's header; skipped when imported
ERROR_KEY = "_error"  # added to each line of a JSON-lines error file; skipped when imported


class ImportFileError(ServiceError):
    """The file cannot be imported at all (missing, unreadable, binary, empty, no header)."""


class ImportAborted(ServiceError):
    """The database failed during the import in a way retrying did not cure. The batches before
    it are kept (and the bad rows so far are in the error file); re-running the import completes it."""


@dataclass(frozen=True)
class _RowNote:
    row: int  # line number in the file where the row starts; the header is line 1
    column: str  # the file's column (CSV header or JSON key); "" when it is about the whole row
    reason: str

    def describe(self) -> str:
        where = f"row {self.row}" + (f", column {self.column!r}" if self.column else "")
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class RowProblem(_RowNote):
    """A bad row: not imported, written to the error file."""

    raw: str  # the row as it is in the file (shortened to 500 characters here; to RAW_LIMIT in the error file)


@dataclass(frozen=True)
class RowWarning(_RowNote):
    """A row imported with something the operator should fix, e.g. a phone that is not valid. Its
    reason never holds the row's data."""


@dataclass(frozen=True)
class PreviewRow:
    row: int
    values: tuple[str, ...]  # aligned with ImportPreview.columns, as text


@dataclass(frozen=True)
class ImportPreview:
    path: Path
    kind: str  # profiles | events
    format: str  # csv | jsonl
    file_size: int
    bom: bool  # the file starts with a UTF-8 byte order mark
    delimiter: str | None  # CSV only
    columns: tuple[str, ...]  # header (CSV) or the keys met in the sample, in order (JSON lines)
    mapping: Mapping[str, str]  # every column → "user_id" | "phone" | … | "property:<name>" | "properties" | "skip"
    types: Mapping[str, str]  # property name → type, for every mapped property
    type_sources: Mapping[str, str]  # property name → "override" | "known" | "inferred"
    rows: tuple[PreviewRow, ...]  # the readable rows of the sample
    sample_size: int  # rows read for the sample (readable or not)
    sample_problems: tuple[RowProblem, ...]  # bad rows in the sample (row validation needs `defaults`)
    problems: tuple[tuple[str, str], ...]  # (field, reason) that block the import until fixed
    warnings: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class ImportSummary:
    path: Path
    kind: str
    format: str
    rows_read: int  # data rows (blank lines are skipped, not counted)
    good_rows: int
    bad_rows: int
    created: int  # profiles created (for events: profiles created for unknown people)
    updated: int  # profiles changed
    unchanged: int  # profiles the file matched exactly
    events_recorded: int
    duplicates: int  # profiles: rows repeating an earlier row's user id/phone in the same batch (merged);
    # events: events already stored or repeated in the file (ignored)
    problem_count: int  # every (row, column, reason) found; a row can have several
    problems: tuple[RowProblem, ...]  # the first `max_reported`
    error_file: Path | None  # None when there were no bad rows
    elapsed_seconds: float
    unreachable_rows: int = 0  # rows imported with a phone that is not valid (profiles: no SMS reaches them;
    # events: the phone is not used)
    unreachable: tuple[RowWarning, ...] = ()  # the first `max_reported` of them
    triggered_campaigns: bool = False  # the imported events were allowed to trigger live campaigns
    campaign_messages: int = 0  # messages live campaigns queued for them

    @property
    def outcome(self) -> str:
        """ok (no bad rows), partial (some), failed (every row bad), empty (no data rows)."""
        if self.rows_read == 0:
            return "empty"
        if self.bad_rows == 0:
            return "ok"
        return "failed" if self.good_rows == 0 else "partial"


Progress = Callable[[int, int, int], None]  # (rows read, bytes read, file size)
