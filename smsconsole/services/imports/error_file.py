"""The error file: the bad rows of an import in the imported file's own form (see the package
docstring), and the notes it adds, which a later import of it skips."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from smsconsole.services.imports.model import ERROR_COLUMNS, ERROR_KEY, SKIP, ImportFileError, RowProblem
from smsconsole.services.imports.reading import RAW_LIMIT, FileFormat, unique_columns

_OLD_ERROR_HEADER = "row,column,reason,raw"  # error files of earlier versions, still removed when stale


def is_error_note(format: str, column: str) -> bool:
    """A column (or key) an error file adds: the reason a row was bad, not the row's data."""
    return column in ERROR_COLUMNS if format == "csv" else column == ERROR_KEY


class ErrorFile:
    """The error file, created at the first bad row: the bad rows in the imported file's own form
    (see the package docstring), so the operator fixes them there and imports that file."""

    def __init__(self, path: Path, fmt: FileFormat, header: list[str], mapping: Mapping[str, str]) -> None:
        self.path, self.fmt = path, fmt
        self.handle: io.TextIOWrapper | None = None
        self.writer: Any = None
        self.header = header
        # an error file imported again: its old notes make way for the new ones
        self.dropped = {i for i, column in enumerate(unique_columns(header)[0])
                        if is_error_note("csv", column) and mapping.get(column, SKIP) == SKIP}
        self.width = len(header) - len(self.dropped)

    def write(self, row: int, problems: list[RowProblem], raw: str) -> None:
        if self.handle is None:
            try:
                self.handle = self.path.open("w", newline="", encoding="utf-8", errors="surrogateescape")
            except OSError as exc:
                raise ImportFileError(f"cannot write the error file {self.path}: {exc.strerror or exc}") from None
            if self.fmt.bom:
                self.handle.write("\ufeff")
            if self.fmt.format == "csv":
                self.writer = csv.writer(self.handle, delimiter=self.fmt.delimiter or ",", quotechar='"',
                                         doublequote=True)
                self.writer.writerow([c for i, c in enumerate(self.header) if i not in self.dropped]
                                     + list(ERROR_COLUMNS))
        reason = "; ".join(f"{p.column}: {p.reason}" if p.column else p.reason for p in problems)
        if self.fmt.format == "csv":
            self.writer.writerow([*self._cells(raw), row, reason])
        else:
            self.handle.write(_error_line(raw, row, reason) + "\n")

    def _cells(self, raw: str) -> list[str]:
        """The record's cells as they are in the file, one per column; a record that cannot be read
        as CSV is kept whole in the first column."""
        try:
            records = list(csv.reader(io.StringIO(raw, newline=""), **self.fmt.reader_args()))
        except csv.Error:
            records = []
        if len(records) != 1:
            cells = [raw[:RAW_LIMIT]]
        elif len(records[0]) == len(self.header):
            cells = [c for i, c in enumerate(records[0]) if i not in self.dropped]
        else:
            cells = records[0]
        return cells + [""] * (self.width - len(cells))

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()

    def remove_stale(self) -> None:
        """A previous run's error file at this path, now out of date (only one this module wrote)."""
        try:
            with self.path.open(encoding="utf-8", errors="replace") as handle:
                first = handle.readline(RAW_LIMIT * 2).lstrip("\ufeff").rstrip("\r\n")
        except OSError:
            return
        ours = first == _OLD_ERROR_HEADER or any(first.endswith(d.join(ERROR_COLUMNS)) for d in ",;\t|")
        if not ours and first.startswith("{"):
            with contextlib.suppress(ValueError, RecursionError):
                value = json.loads(first)
                ours = isinstance(value, dict) and isinstance(value.get(ERROR_KEY), dict)
        if ours:
            with contextlib.suppress(OSError):
                self.path.unlink()


def _error_line(raw: str, row: int, reason: str) -> str:
    """A JSON line for the error file: the line as it was with an `_error` key added, or, for a
    line that is no JSON object, an object whose `_error` holds the line's text."""
    note: dict[str, Any] = {"row": row, "reason": reason}
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, dict):
        return _json({ERROR_KEY: {**note, "line": raw[:RAW_LIMIT]}})
    if ERROR_KEY not in value:  # the text untouched, the note added before its closing brace
        body = raw.rstrip()[:-1].rstrip()
        return f"{body}{', ' if value else ''}{_json(ERROR_KEY)}: {_json(note)}}}"
    old = value.pop(ERROR_KEY)
    if isinstance(old, dict) and "line" in old:  # a line that is still no use keeps its text
        note["line"] = old["line"]
    return _json({**value, ERROR_KEY: note})


def _json(value: Any) -> str:
    """JSON text as readable as it can be: escaped only where a character cannot be written as UTF-8."""
    text = json.dumps(value, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value)
    return text


def default_error_file(path: Path, format: str) -> Path:
    """Where an import of `path` writes its bad rows: NAME.errors.EXT beside it (people.csv →
    people.errors.csv), keeping the extension so the fixed file is read the same way."""
    suffix = path.suffix or (".csv" if format == "csv" else ".jsonl")
    return path.with_name(f"{path.stem}.errors{suffix}")

