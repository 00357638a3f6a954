"""Importing profiles and events from CSV or JSON-lines files.

`preview_import` reads the head of a file (format, CSV dialect, header, a proposed column mapping,
property types inferred from a sample, the first rows); `run_import` streams the whole file
through `profiles.prepare_profile` / `upsert_profiles` (or the event pair) in batches, each batch
committed on its own, keeping the good rows and writing every bad one to an error file. Memory
stays O(batch): the file is read line by line and nothing accumulates per row.

Row numbers are the file's line numbers (the header is line 1), as an editor shows them. The
csv module does the parsing and csv.Sniffer guesses the dialect (no third-party CSV library is
needed for that); decoding uses `surrogateescape`, so a line with bytes that are not UTF-8 is
reported as a bad row instead of stopping the import, and is copied byte for byte into the error
file.

The error file (`NAME.errors.EXT` beside the file: people.csv → people.errors.csv, events.jsonl →
events.errors.jsonl) holds the bad rows in the file's own form, so an operator fixes them there and
imports that file: a CSV keeps its header, delimiter and cells, with two columns added at the end,
`error_row` (the line number in the imported file) and `error_reason`; a JSON line keeps its text,
with an `_error` key added ({"row": …, "reason": …}, plus "line" holding the text of a line that is
no JSON object). An import skips those columns and that key, so the fixed file imports as it is.
A row kept with a phone that is not valid (no SMS can reach it) is counted and listed as a warning.

Hostile files are read safely: a CSV record the csv module gives up on (a field past its size
limit, a stray quote) is skipped to its real end, so lines inside a quoted field never become rows
of their own; text no database can store (NUL, lone surrogates) is a bad row; and a row the
database refuses anyway is isolated by writing its batch again in halves, so the rest of the
batch is kept. Writes that meet another writer (a concurrent import) are retried.

The package, one concern a module: `model` (kinds, targets, what a preview and an import report),
`reading` (format, dialect, records), `error_file`, `mapping` (columns to fields and properties,
type inference), `preparing` (records to prepared rows, the reading side of a run), `parallel`
(preparing a large profile import in a process pool, same outcome row for row), `preview`,
`writing` (batches, retries, refused rows), `bulk` (the profile upsert on the drivers' bulk paths)
and `running` (`run_import`)."""

from smsconsole.services.imports.error_file import default_error_file
from smsconsole.services.imports.mapping import known_property_types, property_name_for
from smsconsole.services.imports.model import (
    ERROR_COLUMNS,
    ERROR_KEY,
    FIELD_TARGETS,
    FORMATS,
    KINDS,
    PROPERTIES,
    PROPERTY_PREFIX,
    SKIP,
    ImportAborted,
    ImportFileError,
    ImportPreview,
    ImportSummary,
    PreviewRow,
    Progress,
    RowProblem,
    RowWarning,
)
from smsconsole.services.imports.preview import preview_import
from smsconsole.services.imports.reading import HEAD_BYTES, RAW_LIMIT
from smsconsole.services.imports.running import run_import
from smsconsole.services.imports.writing import BUSY_RETRIES, CONFLICT_RETRIES

__all__ = [
    "BUSY_RETRIES",
    "CONFLICT_RETRIES",
    "ERROR_COLUMNS",
    "ERROR_KEY",
    "FIELD_TARGETS",
    "FORMATS",
    "HEAD_BYTES",
    "KINDS",
    "PROPERTIES",
    "PROPERTY_PREFIX",
    "RAW_LIMIT",
    "SKIP",
    "ImportAborted",
    "ImportFileError",
    "ImportPreview",
    "ImportSummary",
    "PreviewRow",
    "Progress",
    "RowProblem",
    "RowWarning",
    "default_error_file",
    "known_property_types",
    "preview_import",
    "property_name_for",
    "run_import",
]
