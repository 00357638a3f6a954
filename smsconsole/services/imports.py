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
batch is kept. Writes that meet another writer (a concurrent import) are retried."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsconsole.models import PropertyDef
from smsconsole.phone import parse_number
from smsconsole.services import audit
from smsconsole.services import profiles as P
from smsconsole.services.errors import ServiceError, ValidationError
from smsconsole.services.values import TYPES, infer_json_type, infer_type, parse_datetime

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
_OLD_ERROR_HEADER = "row,column,reason,raw"  # error files of earlier versions, still removed when stale
HEAD_BYTES = 64 * 1024
RAW_LIMIT = 131_072  # characters of a bad row kept for the error file (a csv reader's default field limit)
BUSY_RETRIES = 6  # writes that meet another writer (locked, deadlock, lost connection): ~3 s in all
CONFLICT_RETRIES = 3  # a unique-key conflict, usually a concurrent import of the same people

logger = logging.getLogger(__name__)

_WHO = {
    "user_id": ("userid", "id", "externalid", "customerid", "uid", "clientid", "contactid", "memberid",
                "accountid", "externaluserid"),
    "phone": ("phone", "mobile", "msisdn", "phonenumber", "mobilenumber", "mobilephone", "cellphone",
              "cell", "cellnumber", "phoneno", "telephone", "tel", "contactnumber", "e164", "number"),
}
# Normalized header (lower case, letters and digits only) → target, in order of preference: when
# two columns match one target, the spelling listed first wins and the other stays a property.
_SPELLINGS: dict[str, dict[str, tuple[str, ...]]] = {
    "profiles": {
        **_WHO,
        "name": ("name", "fullname", "displayname", "contactname", "customername"),
        "timezone": ("timezone", "tz", "tzname", "olson", "zone"),
        "country": ("country", "countrycode", "countryiso", "iso2"),
        "optin_at": ("optinat", "optintimestamp", "optin", "optindate", "optintime", "optedinat", "optedin",
                     "smsoptinat", "smsoptin", "consentat", "consenttimestamp", "consentdate", "consentedat",
                     "consent", "subscribedat"),
        "optout_at": ("optoutat", "optouttimestamp", "optout", "optoutdate", "optouttime", "optedoutat", "optedout",
                      "smsoptoutat", "smsoptout", "unsubscribedat", "unsubscribedate"),
        PROPERTIES: ("properties", "traits", "attributes"),
    },
    "events": {
        **_WHO,
        "name": ("event", "eventname", "name", "eventtype", "type", "action"),
        "at": ("at", "timestamp", "time", "eventtime", "eventat", "eventtimestamp", "occurredat", "datetime",
               "date", "eventdate", "happenedat", "createdat", "ts"),
        PROPERTIES: ("properties", "props", "attributes", "eventproperties"),
    },
}
_TIME_TARGETS = ("optin_at", "optout_at", "at")
_DATA_LIKE = re.compile(r"[+(]?\d[\d\s().\-/:]*|\S+@\S+\.\S+")  # numbers, phones, dates, e-mails
_LEADING_ZERO = re.compile(r"[+-]?0\d")


class ImportFileError(ServiceError):
    """The file cannot be imported at all (missing, unreadable, binary, empty, no header)."""


class ImportAborted(ServiceError):
    """The database failed during the import in a way retrying did not cure. The batches before
    it are kept (and the bad rows so far are in the error file); re-running the import completes it."""


@dataclass(frozen=True)
class RowProblem:
    row: int  # line number in the file where the row starts; the header is line 1
    column: str  # the file's column (CSV header or JSON key); "" when the whole row is unusable
    reason: str
    raw: str  # the row as it is in the file (shortened to 500 characters here; to RAW_LIMIT in the error file)

    def describe(self) -> str:
        where = f"row {self.row}" + (f", column {self.column!r}" if self.column else "")
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class RowWarning:
    """A row imported with something the operator should fix, e.g. a phone that is not valid."""

    row: int
    column: str
    reason: str  # never the row's data

    def describe(self) -> str:
        where = f"row {self.row}" + (f", column {self.column!r}" if self.column else "")
        return f"{where}: {self.reason}"


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

    @property
    def outcome(self) -> str:
        """ok (no bad rows), partial (some), failed (every row bad), empty (no data rows)."""
        if self.rows_read == 0:
            return "empty"
        if self.bad_rows == 0:
            return "ok"
        return "failed" if self.good_rows == 0 else "partial"


Progress = Callable[[int, int, int], None]  # (rows read, bytes read, file size)


# --- reading the file ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Format:
    format: str
    bom: bool
    delimiter: str | None = None
    skipinitialspace: bool = False

    def reader_args(self) -> dict[str, Any]:
        # strict: a stray quote is reported as a bad row instead of silently joining the lines after it
        return {"delimiter": self.delimiter or ",", "quotechar": '"', "doublequote": True,
                "skipinitialspace": self.skipinitialspace, "strict": True}


@dataclass
class _Record:
    row: int
    raw: str
    values: dict[str, Any] | None  # column → value, None when unreadable
    problems: list[tuple[str, str]] = field(default_factory=list)
    whole: bool = True  # raw holds the whole record (not cut at RAW_LIMIT)

    def may_hold_unstorable(self) -> bool:
        """NUL and lone surrogates reach the values only as such in a CSV line or as \\u escapes in JSON."""
        return not self.whole or "\x00" in self.raw or "\\u" in self.raw


def _undecodable(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _read_head(path: Path) -> tuple[bytes, int]:
    try:
        if path.is_dir():
            raise ImportFileError(f"{path} is a folder, not a file")
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(HEAD_BYTES)
    except FileNotFoundError:
        raise ImportFileError(f"{path} does not exist") from None
    except PermissionError:
        raise ImportFileError(f"{path} cannot be read (permission denied)") from None
    except OSError as exc:
        raise ImportFileError(f"{path} cannot be read: {exc.strerror or exc}") from None
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ImportFileError(f"{path.name} is UTF-16 text; save it as UTF-8 (e.g. 'CSV UTF-8' in Excel)")
    if head.startswith(b"PK\x03\x04"):
        raise ImportFileError(f"{path.name} is a ZIP archive (an Excel workbook?); export the sheet as CSV UTF-8")
    if head.startswith(b"\x1f\x8b"):
        raise ImportFileError(f"{path.name} is gzip-compressed; decompress it first")
    if not head.removeprefix(b"\xef\xbb\xbf").strip():
        raise ImportFileError(f"{path.name} is empty")
    text = head.decode("utf-8", errors="surrogateescape")
    # A stray NUL or control character is a bad row, reported as such; a file full of them is binary.
    odd = sum(1 for c in text if ("\udc80" <= c <= "\udcff") or (c < " " and c not in "\t\r\n\f\v"))
    if odd > len(text) * 0.1:
        raise ImportFileError(f"{path.name} is not a text file; use CSV or JSON lines (UTF-8)")
    return head, size


def _detect(path: Path, head: bytes, format: str | None, delimiter: str | None) -> _Format:
    bom = head.startswith(b"\xef\xbb\xbf")
    text = head.decode("utf-8-sig", errors="surrogateescape")
    first = text.lstrip()[:1]
    if format is None:
        suffix = path.suffix.lower()
        if suffix in (".jsonl", ".ndjson", ".json"):
            format = "jsonl"
        elif suffix in (".csv", ".tsv", ".tab", ".txt"):
            format = "csv"
        else:
            format = "jsonl" if first in ("{", "[") else "csv"
    if format not in FORMATS:
        raise ValidationError([("format", f"must be one of {', '.join(FORMATS)}")])
    if format == "jsonl":
        if first == "[":
            raise ImportFileError(f"{path.name} holds a JSON array; write one JSON object per line (JSON lines)")
        if text.lstrip().split("\n", 1)[0].strip() == "{":
            raise ImportFileError(f"{path.name} looks like indented JSON; write one JSON object per line (JSON lines)")
        return _Format("jsonl", bom)
    if delimiter is not None:
        if len(delimiter) != 1 or delimiter in '"\r\n':
            raise ValidationError([("delimiter", "must be one character other than a quote or a line break")])
        return _Format("csv", bom, delimiter)
    sample = text[: text.rfind("\n") + 1] if len(head) == HEAD_BYTES and "\n" in text else text
    header_line = next((line for line in sample.splitlines() if line.strip()), "")
    if path.suffix.lower() in (".tsv", ".tab") and "\t" in header_line:
        return _Format("csv", bom, "\t")
    skipinitialspace = False
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        chosen, skipinitialspace = sniffed.delimiter, sniffed.skipinitialspace
    except csv.Error:
        chosen = ""
    if not chosen or chosen not in header_line:  # the sniffer can be fooled by the data; the header decides
        counts = {d: header_line.count(d) for d in ",;\t|"}
        chosen = max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","
    return _Format("csv", bom, chosen, skipinitialspace)


def _still_quoted(line: str, quoted: bool, delimiter: str, skipinitialspace: bool) -> bool:
    """Whether a CSV record is inside a quoted field at the end of `line`, given whether it was at
    its start: the csv module's reading of the dialect (double quotes, no escape character), where a
    character after a closing quote continues the field instead of being strict mode's error."""
    START, FIELD, QUOTED, CLOSED = range(4)
    state = QUOTED if quoted else START
    i, end = 0, len(line)
    while i < end:
        if state == QUOTED:
            i = line.find('"', i)
            if i < 0:
                return True
            state = CLOSED
        else:
            char = line[i]
            if char == delimiter:
                state = START
            elif state == START:
                if char == '"':
                    state = QUOTED
                elif not (char == " " and skipinitialspace):
                    state = FIELD
            elif state == CLOSED:
                state = QUOTED if char == '"' else FIELD  # "" is an escaped quote
        i += 1
    return state == QUOTED


class _Lines:
    """The file as text lines with their endings, counting lines and bytes, remembering the lines of
    the current record so a bad one can be copied verbatim (up to RAW_LIMIT characters). The csv
    reader and `skip_rest_of_record` read from the same iterator."""

    def __init__(self, path: Path, fmt: _Format) -> None:
        self.binary = path.open("rb")
        self.text = io.TextIOWrapper(self.binary, encoding="utf-8-sig", errors="surrogateescape", newline="")
        self.delimiter, self.skipinitialspace = fmt.delimiter or ",", fmt.skipinitialspace
        self.line_no = 0
        self.start = 1  # line number of the current record's first line
        self.header: list[str] = []  # CSV: the header's cells as they are in the file
        self.pending: list[str] = []
        self.pending_chars = 0
        self.overflow_quoted: bool | None = None  # quote state once lines past RAW_LIMIT are dropped
        self.taken_whole = True
        self.iterator = self._read()

    def __iter__(self) -> Iterator[str]:
        return self.iterator

    def _read(self) -> Iterator[str]:
        for line in self.text:
            self.line_no += 1
            if not self.pending or self.pending_chars + len(line) <= RAW_LIMIT:
                self.pending.append(line)
                self.pending_chars += len(line)
            else:  # an enormous record: keep its start for the error file, and only its quote state after that
                if self.overflow_quoted is None:
                    self.overflow_quoted = self._quoted(self.pending, False)
                self.overflow_quoted = self._quoted([line], self.overflow_quoted)
            yield line

    def _quoted(self, lines: list[str], quoted: bool) -> bool:
        for line in lines:
            quoted = _still_quoted(line, quoted, self.delimiter, self.skipinitialspace)
        return quoted

    def skip_rest_of_record(self) -> None:
        """After the csv reader gave up on a record (which leaves it at the end of a line, possibly
        inside a quoted field): read on to where the record really ends, so no line of it is taken
        for a record of its own."""
        quoted = self.overflow_quoted if self.overflow_quoted is not None else self._quoted(self.pending, False)
        while quoted:
            try:
                line = next(self.iterator)
            except StopIteration:
                return
            quoted = _still_quoted(line, True, self.delimiter, self.skipinitialspace)

    def take(self) -> tuple[int, str]:
        """(first line number, raw text) of the lines read since the last call; `taken_whole` says
        whether the raw text is all of them."""
        start, raw = self.start, "".join(self.pending).rstrip("\r\n")
        self.taken_whole = self.overflow_quoted is None
        self.start = self.line_no + 1
        self.pending.clear()
        self.pending_chars, self.overflow_quoted = 0, None
        return start, raw

    def bytes_read(self) -> int:
        with contextlib.suppress(ValueError, OSError):
            return self.binary.tell()
        return 0

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.text.close()


def _unique_columns(cells: list[str]) -> tuple[list[str], list[str]]:
    columns: list[str] = []
    warnings: list[str] = []
    for index, cell in enumerate(cells, start=1):
        name = cell.strip() or f"column {index}"
        if not cell.strip():
            warnings.append(f"column {index} has no name in the header; it is called {name!r}")
        if name in columns:
            base, n = name, 2
            while f"{base} ({n})" in columns:
                n += 1
            name = f"{base} ({n})"
            warnings.append(f"the header names {base!r} more than once; the later one is called {name!r}")
        columns.append(name)
    return columns, warnings


def _csv_header(lines: _Lines, reader: Iterator[list[str]], path: Path) -> tuple[list[str], list[str]]:
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            lines.skip_rest_of_record()
            row, _ = lines.take()
            reason = _csv_reason(exc)
            raise ImportFileError(f"line {row} of {path.name} cannot be read as the header: {reason}") from None
        row, raw = lines.take()
        if not any(c.strip() for c in cells):
            continue
        if _undecodable(raw):
            raise ImportFileError(f"the header of {path.name} is not UTF-8 text; save the file as UTF-8")
        if any(_UNSTORABLE.search(c) for c in cells):
            raise ImportFileError(f"line {row} of {path.name}: the column names contain a NUL character (\\x00); "
                                  "fix the header")
        data_like = [c.strip() for c in cells if _DATA_LIKE.fullmatch(c.strip())]
        if data_like:
            raise ImportFileError(
                f"line {row} of {path.name} looks like data, not column names ({data_like[0]!r}); "
                "add a header line such as user_id,phone,optin_at")
        lines.header = cells
        return _unique_columns(cells)
    raise ImportFileError(f"{path.name} has no header line")


def _csv_records(lines: _Lines, fmt: _Format, path: Path) -> tuple[list[str], list[str], Iterator[_Record]]:
    reader = csv.reader(lines, **fmt.reader_args())
    columns, warnings = _csv_header(lines, reader, path)
    width = len(columns)

    def records() -> Iterator[_Record]:
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                lines.skip_rest_of_record()
                row, raw = lines.take()
                yield _Record(row, raw, None, [("", _csv_reason(exc))])
                continue
            row, raw = lines.take()
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > width and not any(c.strip() for c in cells[width:]):
                cells = cells[:width]  # trailing empty fields, as some spreadsheets write them
            if len(cells) != width:
                yield _Record(row, raw, None, [("", f"has {len(cells)} fields; the header has {width}")])
                continue
            if _undecodable(raw):
                bad = [(columns[i] if i < width else "", "contains bytes that are not UTF-8; save the file as UTF-8")
                       for i, c in enumerate(cells) if _undecodable(c)]
                yield _Record(row, raw, None, bad or [("", "contains bytes that are not UTF-8")])
                continue
            values = {name: cell.strip() for name, cell in zip(columns, cells)}
            yield _Record(row, raw, values, whole=lines.taken_whole)

    return columns, warnings, records()


def _jsonl_records(lines: _Lines) -> Iterator[_Record]:
    for line in lines:
        row, raw = lines.take()
        if not line.strip():
            continue
        if _undecodable(raw):
            yield _Record(row, raw, None, [("", "contains bytes that are not UTF-8; save the file as UTF-8")])
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            yield _Record(row, raw, None, [("", f"is not valid JSON ({exc.msg} at character {exc.colno})")])
            continue
        except RecursionError:
            yield _Record(row, raw, None, [("", "is nested too deeply to read")])
            continue
        except ValueError:  # e.g. an integer of more digits than Python converts
            yield _Record(row, raw, None, [("", "holds a number too long to read")])
            continue
        if not isinstance(value, dict):
            yield _Record(row, raw, None, [("", "is not a JSON object")])
            continue
        yield _Record(row, raw, value)


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _csv_reason(exc: csv.Error) -> str:
    if "field larger than field limit" in str(exc):
        return (f"a field is longer than {csv.field_size_limit():,} characters; "
                "check for a quote that is never closed")
    return f"cannot be read as CSV ({exc}); check its quotes"


def _unstorable_values(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(column, reason) for each column holding text no database can store: NUL, which PostgreSQL
    refuses, or a lone surrogate (from a JSON escape such as "\\ud800"), which is not Unicode text —
    in its name, its value or anywhere inside it."""
    problems: list[tuple[str, str]] = []
    for column, value in values.items():
        stack: list[Any] = [column, value]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                found = _UNSTORABLE.search(item)
                if found:
                    char = found.group()
                    problems.append((column, "contains a NUL character (\\x00)" if char == "\x00"
                                     else f"contains a lone surrogate (\\u{ord(char):04x}), which is not text"))
                    break
            elif isinstance(item, dict):
                stack.extend(item.keys())
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
    return problems


def _open_records(path: Path, fmt: _Format) -> tuple[_Lines, list[str], list[str], Iterator[_Record]]:
    lines = _Lines(path, fmt)
    try:
        if fmt.format == "csv":
            columns, warnings, records = _csv_records(lines, fmt, path)
            return lines, columns, warnings, records
        return lines, [], [], _jsonl_records(lines)
    except BaseException:
        lines.close()
        raise


# --- mapping and types ---------------------------------------------------------------------------


def _normalized(header: str) -> str:
    return re.sub(r"[\W_]+", "", header.lower())


def property_name_for(column: str, format: str = "csv") -> str:
    """The property a column becomes by default: CSV headers in snake case ("Zip Code" → zip_code),
    JSON keys as they are."""
    if format == "jsonl":
        return column
    return re.sub(r"\W+", "_", column.strip().lower()).strip("_") or column.strip()


def _is_error_note(format: str, column: str) -> bool:
    """A column (or key) an error file adds: the reason a row was bad, not the row's data."""
    return column in ERROR_COLUMNS if format == "csv" else column == ERROR_KEY


def _as_property(kind: str, format: str, column: str) -> str:
    """A column's default when it is no field: a property, unless its name is a profile field's
    or it holds an error file's notes."""
    if _is_error_note(format, column):
        return SKIP
    name = property_name_for(column, format)
    if kind == "profiles" and name in P.PROFILE_FIELDS:
        return SKIP
    return PROPERTY_PREFIX + name


def _is_object(value: Any) -> bool:
    if isinstance(value, dict):
        return True
    if isinstance(value, str) and value.strip().startswith("{"):
        with contextlib.suppress(ValueError):
            return isinstance(json.loads(value), dict)
    return False


def _is_moment(value: Any) -> bool:
    if not isinstance(value, str):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    try:
        parse_datetime(value)
    except (ValueError, OverflowError):
        return False
    return True


def _propose(kind: str, format: str, columns: list[str],
             samples: Mapping[str, list[Any]]) -> tuple[dict[str, str], list[str]]:
    """The automatic mapping: known spellings to fields, everything else a property."""
    spellings = _SPELLINGS[kind]
    candidates: dict[str, list[tuple[int, str]]] = {}
    for column in columns:
        key = _normalized(column)
        for target, names in spellings.items():
            if key in names:
                candidates.setdefault(target, []).append((names.index(key), column))
                break
    mapping = {column: _as_property(kind, format, column) for column in columns}
    warnings: list[str] = []
    for target, found in candidates.items():
        found.sort()
        for _, column in found:
            values = [v for v in samples.get(column, []) if v not in (None, "")]
            if target in _TIME_TARGETS and values and not any(_is_moment(v) for v in values):
                warnings.append(f"column {column!r} does not hold dates, so it is not used as {target}")
                continue
            if target == PROPERTIES and not any(_is_object(v) for v in values):
                continue
            mapping[column] = target
            others = [c for _, c in found if c != column]
            if others:
                warnings.append(f"{', '.join(map(repr, others))} also look like {target}; {column!r} is used")
            break
    notes = [column for column in columns if _is_error_note(format, column)]
    if notes:
        warnings.append(f"{', '.join(map(repr, notes))} {'are' if len(notes) > 1 else 'is'} skipped: the notes "
                        "of an error file, not data")
    warnings.extend(f"column {column!r} is skipped: its name is a profile field's; map it to "
                    f"property:<name> to keep it" for column, target in mapping.items()
                    if target == SKIP and not _is_error_note(format, column))
    return mapping, warnings


def _parse_target(column: str, target: str, kind: str, format: str) -> tuple[str | None, str | None]:
    """(normalized target, None) or (None, reason)."""
    target = target.strip()
    if target in (SKIP, PROPERTIES) or target in FIELD_TARGETS[kind]:
        return target, None
    if target == "property":
        target = PROPERTY_PREFIX + property_name_for(column, format)
    if target.startswith(PROPERTY_PREFIX):
        name = target[len(PROPERTY_PREFIX):].strip()
        if not name or len(name) > 128:
            return None, "a property name must be 1–128 characters"
        if kind == "profiles" and name in P.PROFILE_FIELDS:
            return None, f"{name!r} is a profile field; map the column to {name} instead"
        return PROPERTY_PREFIX + name, None
    choices = ", ".join((*FIELD_TARGETS[kind], "property:<name>", PROPERTIES, SKIP))
    return None, f"{target!r} is not a target; use one of {choices}"


def _mapping_problems(kind: str, mapping: Mapping[str, str]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    by_target: dict[str, list[str]] = {}
    for column, target in mapping.items():
        if target != SKIP and target != PROPERTIES:
            by_target.setdefault(target, []).append(column)
    for target, columns in by_target.items():
        if len(columns) > 1:
            what = f"property {target[len(PROPERTY_PREFIX):]!r}" if target.startswith(PROPERTY_PREFIX) else target
            problems.append(("mapping", f"columns {', '.join(map(repr, columns))} all map to {what}; keep one"))
    if "user_id" not in by_target and "phone" not in by_target:
        problems.append(("mapping", "no column maps to user_id or phone; every row needs one of them"))
    if kind == "events":
        if "name" not in by_target:
            problems.append(("mapping", "no column maps to the event name"))
        if "at" not in by_target:
            problems.append(("mapping", "no column maps to the event time (at); without it a re-import "
                                        "would record every event again"))
    return problems


def _infer_column(format: str, values: list[Any]) -> str:
    values = [v for v in values if v not in (None, "")]
    if format == "jsonl":
        kinds = {infer_json_type(v) for v in values}
        return kinds.pop() if len(kinds) == 1 else "string"
    inferred = infer_type(values)
    if inferred == "boolean" and all(str(v).strip() in ("0", "1") for v in values):
        inferred = "number"  # a 0/1 sample is more often a count than a flag; a later 2 would then fail
    if inferred == "number" and any(_LEADING_ZERO.match(str(v).strip()) for v in values):
        inferred = "string"  # zip codes, account numbers: a leading zero is part of the value
    return inferred


def _check_types(overrides: Mapping[str, str], known: Mapping[str, str], scope_note: str = "") -> list[tuple[str, str]]:
    problems = []
    for name, type_ in overrides.items():
        if type_ not in TYPES:
            problems.append((f"types.{name}", f"{type_!r} is not a type; use one of {', '.join(TYPES)}"))
        elif name in known and known[name] != type_:
            problems.append((f"types.{name}", f"is already a {known[name]} property{scope_note}; "
                                              f"its type cannot change to {type_}"))
    return problems


async def known_property_types(session: AsyncSession, kind: str) -> dict[str, str]:
    """Property types already stored, for `preview_import(known_types=…)`: the profile ones, or for
    events every event's (when two events disagree on a property, the first by event name)."""
    if kind == "profiles":
        return await P.property_types(session, "profile")
    flat: dict[str, str] = {}
    for types in (await _event_types(session)).values():
        for name, type_ in types.items():
            flat.setdefault(name, type_)
    return flat


async def _event_types(session: AsyncSession) -> dict[str, dict[str, str]]:
    rows = await session.execute(select(PropertyDef.scope, PropertyDef.name, PropertyDef.type)
                                 .where(PropertyDef.scope.like("event:%")).order_by(PropertyDef.scope))
    found: dict[str, dict[str, str]] = {}
    for scope, name, type_ in rows.all():
        found.setdefault(scope.removeprefix("event:"), {})[name] = type_
    return found


# --- preview -------------------------------------------------------------------------------------


def _display(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def preview_import(
    path: str | os.PathLike[str], kind: str = "profiles", *, mapping: Mapping[str, str] | None = None,
    types: Mapping[str, str] | None = None, format: str | None = None, delimiter: str | None = None,
    known_types: Mapping[str, str] | None = None, defaults: P.AudienceDefaults | None = None,
    sample_rows: int = 100,
) -> ImportPreview:
    """Look at a file before importing it. `mapping` (column → target) and `types` (property → type)
    override the proposal; `known_types` (from `known_property_types`) marks types the database
    already fixes; with `defaults` the sample rows are also validated as the import would.
    Raises ImportFileError for a file that cannot be imported, ValidationError for bad overrides."""
    return _preview(path, kind, mapping=mapping, types=types, format=format, delimiter=delimiter,
                    known_types=known_types, defaults=defaults, sample_rows=sample_rows)[0]


def _preview(
    path: str | os.PathLike[str], kind: str, *, mapping: Mapping[str, str] | None,
    types: Mapping[str, str] | None, format: str | None, delimiter: str | None,
    known_types: Mapping[str, str] | None, defaults: P.AudienceDefaults | None, sample_rows: int,
) -> tuple[ImportPreview, _Format]:
    if kind not in KINDS:
        raise ValidationError([("kind", f"must be one of {', '.join(KINDS)}")])
    file_path = Path(path).expanduser().absolute()
    head, size = _read_head(file_path)
    fmt = _detect(file_path, head, format, delimiter)
    lines, columns, warnings, records = _open_records(file_path, fmt)
    try:
        sample = list(islice(records, sample_rows))
    finally:
        lines.close()
    readable = [r for r in sample if r.values is not None]
    if fmt.format == "jsonl":
        for record in readable:
            assert record.values is not None
            columns.extend(k for k in record.values if k not in columns)
    samples = {c: [r.values.get(c) for r in readable if r.values is not None] for c in columns}
    proposed, mapping_warnings = _propose(kind, fmt.format, columns, samples)
    warnings.extend(mapping_warnings)

    problems: list[tuple[str, str]] = []
    final = dict(proposed)
    for column, target in (mapping or {}).items():
        if column not in proposed and fmt.format == "csv":
            problems.append((f"mapping.{column}", f"the file has no column {column!r}"))
            continue
        parsed, reason = _parse_target(column, target, kind, fmt.format)
        if reason:
            problems.append((f"mapping.{column}", reason))
        else:
            assert parsed is not None
            final[column] = parsed
    overrides = dict(types or {})
    known = dict(known_types or {})
    problems.extend(_check_types(overrides, known))
    mapped_properties = {t[len(PROPERTY_PREFIX):]: c for c, t in final.items() if t.startswith(PROPERTY_PREFIX)}
    if fmt.format == "csv" and not any(t == PROPERTIES for t in final.values()):
        problems.extend((f"types.{name}", "no column maps to this property")
                        for name in overrides if name not in mapped_properties)
    if problems:
        raise ValidationError(problems)

    effective: dict[str, str] = {}
    sources: dict[str, str] = {}
    for name, column in mapped_properties.items():
        if name in overrides:
            effective[name], sources[name] = overrides[name], "override"
        elif name in known:
            effective[name], sources[name] = known[name], "known"
        else:
            effective[name], sources[name] = _infer_column(fmt.format, samples.get(column, [])), "inferred"
    for name, type_ in overrides.items():
        effective.setdefault(name, type_)
        sources.setdefault(name, "override")

    sample_problems: list[RowProblem] = []
    unreachable: list[RowWarning] = []
    plan = _Plan(kind, fmt.format, final)
    for record in sample:
        if record.values is None:
            sample_problems.extend(_problems(record, plan))
        elif defaults is not None:
            try:
                prepared = _prepare_record(plan, record, {**known, **effective}, {}, defaults)
            except P.RowError as exc:
                record.problems = exc.problems
                sample_problems.extend(_problems(record, plan))
            else:
                reason = _phone_warning(plan, record.values, prepared, defaults)
                if reason:
                    unreachable.append(RowWarning(record.row, plan.column("phone"), reason))
    if unreachable:
        first = unreachable[0]
        more = ", …" if len(unreachable) > 1 else ""
        warnings.append(f"{len(unreachable)} of the first {len(sample)} rows have a phone that is not valid "
                        f"(row {first.row}: {first.reason.rstrip('.')}{more}); they will be imported without a "
                        "reachable phone")
    unreadable = sum(1 for r in sample if r.values is None)
    if unreadable:
        warnings.append(f"{unreadable} of the first {len(sample)} rows cannot be read; they will be reported "
                        "and skipped")
    if not sample:
        warnings.append("the file has no data rows")
    return ImportPreview(
        path=file_path, kind=kind, format=fmt.format, file_size=size, bom=fmt.bom, delimiter=fmt.delimiter,
        columns=tuple(columns), mapping=final, types=effective, type_sources=sources,
        rows=tuple(PreviewRow(r.row, tuple(_display(r.values.get(c)) for c in columns))
                   for r in readable if r.values is not None),
        sample_size=len(sample), sample_problems=tuple(sample_problems),
        problems=tuple(_mapping_problems(kind, final)), warnings=tuple(warnings),
    ), fmt


# --- turning a record into prepared rows -----------------------------------------------------------


class _Plan:
    """The mapping applied to records; JSON keys the sample did not show get the automatic mapping."""

    def __init__(self, kind: str, format: str, mapping: Mapping[str, str]) -> None:
        self.kind, self.format = kind, format
        self.mapping = dict(mapping)
        self.column_of: dict[str, str] = {}
        for column, target in self.mapping.items():
            self._remember(column, target)

    def _remember(self, column: str, target: str) -> None:
        if target.startswith(PROPERTY_PREFIX):
            self.column_of.setdefault(target[len(PROPERTY_PREFIX):], column)
        elif target not in (SKIP, PROPERTIES):
            self.column_of.setdefault(target, column)

    def target(self, column: str) -> str:
        found = self.mapping.get(column)
        if found is None:
            key = _normalized(column)
            found = _as_property(self.kind, self.format, column)
            for target, names in _SPELLINGS[self.kind].items():
                if key in names and target not in self.column_of and target != PROPERTIES:
                    found = target
                    break
            self.mapping[column] = found
            self._remember(column, found)
        return found

    def column(self, name: str) -> str:
        """The file's column for a field or property name in a RowError."""
        return self.column_of.get(name, name)


def _prepare(plan: _Plan, values: Mapping[str, Any], types: Mapping[str, str],
             event_types: Mapping[str, Mapping[str, str]], defaults: P.AudienceDefaults,
             check_text: bool = True) -> Any:
    if check_text:
        unstorable = _unstorable_values({c: v for c, v in values.items() if plan.target(c) != SKIP})
        if unstorable:
            raise P.RowError(unstorable)
    fields: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    explicit: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for column, value in values.items():
        target = plan.target(column)
        if target == SKIP:
            continue
        if target == PROPERTIES:
            if value in (None, ""):
                continue
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError:
                    value = None
            if not isinstance(value, dict):
                problems.append((column, "must be a JSON object of properties"))
                continue
            clashes = [k for k in value if plan.kind == "profiles" and k in P.PROFILE_FIELDS]
            if clashes:
                problems.append((column, f"{clashes[0]!r} is a profile field, not a property"))
                continue
            properties.update(value)
        elif target.startswith(PROPERTY_PREFIX):
            explicit[target[len(PROPERTY_PREFIX):]] = value
        else:
            fields[target] = value
    properties.update(explicit)
    if plan.kind == "events" and fields.get("at") in (None, ""):
        problems.append((plan.column("at"), "is required: an event needs its time"))
    try:  # every problem of the row at once
        if plan.kind == "events":
            name = str(fields.get("name") or "").strip()
            row_types = {**types, **event_types[name]} if name in event_types else types
            prepared = P.prepare_event({**fields, "properties": properties}, defaults, row_types)
        else:
            prepared = P.prepare_profile({**fields, **properties}, defaults, types)
    except P.RowError as exc:
        problems.extend(exc.problems)
    if problems:
        raise P.RowError(problems)
    return prepared


def _prepare_record(plan: _Plan, record: _Record, types: Mapping[str, str],
                    event_types: Mapping[str, Mapping[str, str]], defaults: P.AudienceDefaults) -> Any:
    """`_prepare` for a readable record; a value that breaks a parser in a way no check foresaw
    (a date past year 9999 in UTC, say) is a RowError too, not the end of the import."""
    assert record.values is not None
    try:
        return _prepare(plan, record.values, types, event_types, defaults, record.may_hold_unstorable())
    except (ValueError, ArithmeticError, RecursionError) as exc:
        logger.warning("import row %d could not be prepared: %s", record.row, type(exc).__name__)
        raise P.RowError([("", f"holds a value that cannot be imported ({type(exc).__name__})")]) from None


def _phone_warning(plan: _Plan, values: Mapping[str, Any], prepared: Any, defaults: P.AudienceDefaults) -> str | None:
    """Why a row that imports has a phone no SMS can use: a profile kept with a phone that is not
    valid, or an event (known by its user id) whose phone is not used. None when there is none."""
    if plan.kind == "profiles":
        return (prepared.phone_reason or "The number is not valid.") if prepared.phone_status == "invalid" else None
    column = plan.column("phone")
    given = values.get(column) if plan.target(column) == "phone" else None
    if prepared.phone is not None or given in (None, "") or not isinstance(given, (str, int)):
        return None
    return parse_number(str(given), defaults.region).reason or "The number is not valid."


def _problems(record: _Record, plan: _Plan) -> list[RowProblem]:
    return [RowProblem(record.row, plan.column(column) if column else "", reason, record.raw)
            for column, reason in record.problems]


# --- running -------------------------------------------------------------------------------------


class _ErrorFile:
    """The error file, created at the first bad row: the bad rows in the imported file's own form
    (see the module docstring), so the operator fixes them there and imports that file."""

    def __init__(self, path: Path, fmt: _Format, header: list[str], mapping: Mapping[str, str]) -> None:
        self.path, self.fmt = path, fmt
        self.handle: io.TextIOWrapper | None = None
        self.writer: Any = None
        self.header = header
        # an error file imported again: its old notes make way for the new ones
        self.dropped = {i for i, column in enumerate(_unique_columns(header)[0])
                        if _is_error_note("csv", column) and mapping.get(column, SKIP) == SKIP}
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


@dataclass(frozen=True)
class _Ready:
    """A prepared row and where it came from, kept until its batch is written."""

    row: int
    raw: str
    prepared: Any
    warning: str | None = None  # why its phone is not valid, when it has one that is not


class _Run:
    """The reading side of an import: records → prepared rows, bad rows → error file. Runs in a
    worker thread one batch at a time, so a long file never blocks the event loop; rows the
    database refuses are reported from the event loop, hence the lock."""

    def __init__(self, preview: ImportPreview, fmt: _Format, plan: _Plan, types: dict[str, str],
                 event_types: dict[str, dict[str, str]], defaults: P.AudienceDefaults, errors_path: Path,
                 max_reported: int) -> None:
        self.lines, _, _, self.records = _open_records(preview.path, fmt)
        self.plan, self.types, self.event_types, self.defaults = plan, types, event_types, defaults
        self.errors = _ErrorFile(errors_path, fmt, self.lines.header, preview.mapping)
        self.max_reported = max_reported
        self.rows_read = self.bad_rows = self.problem_count = self.unreachable_rows = 0
        self.reported: list[RowProblem] = []
        self.unreachable: list[RowWarning] = []
        self.lock = threading.Lock()

    def next_batch(self, size: int) -> tuple[list[_Ready], int, int]:
        """(prepared rows, rows read, bytes read so far) for up to `size` rows; rows read is 0 at the
        end of the file."""
        prepared: list[_Ready] = []
        count = 0
        for record in islice(self.records, size):
            count += 1
            if record.values is not None:
                try:
                    row = _prepare_record(self.plan, record, self.types, self.event_types, self.defaults)
                    warning = _phone_warning(self.plan, record.values, row, self.defaults)
                    prepared.append(_Ready(record.row, record.raw, row, warning))
                    continue
                except P.RowError as exc:
                    record.problems = exc.problems
            self.report(record.row, record.raw, _problems(record, self.plan))
        self.rows_read += count
        self._learn([r.prepared for r in prepared])
        return prepared, count, self.lines.bytes_read()

    def report(self, row: int, raw: str, found: list[RowProblem]) -> None:
        with self.lock:
            self.bad_rows += 1
            self.problem_count += len(found)
            self.errors.write(row, found, raw)
            room = self.max_reported - len(self.reported)
            if room > 0:
                self.reported.extend(RowProblem(p.row, p.column, p.reason, p.raw[:500]) for p in found[:room])

    def warn(self, rows: list[_Ready]) -> None:
        """Rows written with a phone that is not valid."""
        with self.lock:
            for ready in rows:
                if ready.warning is None:
                    continue
                self.unreachable_rows += 1
                if len(self.unreachable) < self.max_reported:
                    self.unreachable.append(RowWarning(ready.row, self.plan.column("phone"), ready.warning))

    def _learn(self, prepared: list[Any]) -> None:
        """Types first seen in this batch hold for the rest of the file, as the database keeps them."""
        for row in prepared:
            if self.plan.kind == "events":
                scope = self.event_types.setdefault(row.name, {})
                for name, type_ in row.property_types.items():
                    scope.setdefault(name, type_)
            else:
                for name, type_ in row.property_types.items():
                    self.types.setdefault(name, type_)

    def close(self) -> None:
        self.lines.close()
        self.errors.close()


# --- writing, with retries and the refused rows isolated -----------------------------------------------


def _failure(exc: BaseException) -> str:
    """What a failed write means: "busy" (another writer or a dropped connection: try again),
    "conflict" (a unique key: a concurrent import of the same people, or this row itself), "row"
    (a value the database or its driver refuses) or "fatal" (the database itself: full, read-only,
    broken)."""
    if isinstance(exc, DBAPIError):
        orig = exc.orig
        state = str(getattr(orig, "sqlstate", None) or "")
        if exc.connection_invalidated or state[:2] in ("08", "40") or state == "55P03":
            return "busy"
        if isinstance(exc, IntegrityError) or state.startswith("23"):
            return "conflict"
        if state.startswith("22"):
            return "row"
        if isinstance(exc, OperationalError) and any(w in str(orig).lower() for w in ("locked", "busy")):
            return "busy"
        if not state and not isinstance(exc, OperationalError) and _caused_by_a_value(exc):
            return "row"
        return "fatal"
    return "row"  # a value the driver could not encode, caught before it reached the database


def _caused_by_a_value(exc: BaseException) -> bool:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        if isinstance(current, (ValueError, UnicodeError, OverflowError)):
            return True
        nested = [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
        current = getattr(current, "orig", None) or current.__cause__ or (nested[0] if nested else None)
    return False


def _database_says(exc: BaseException) -> str:
    """The database's own first line for a failure of the database itself (never a row's values:
    only used for "busy" and "fatal" failures, whose messages name no data)."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
    text = re.sub(r"^<class '[\w.]+'>: ", "", text)
    state = getattr(orig, "sqlstate", None)
    return (f"{text[:200]} (SQLSTATE {state})" if state else text[:200]) or type(orig).__name__


_REFUSED = {
    "conflict": "the database refused this row: it conflicts with a stored row (a unique key or a rule); "
                "re-run the import to retry it",
    "row": "the database refused this row: it holds a value the database cannot store",
}


class _Writer:
    """Writes prepared batches, each in its own transaction. A batch that fails for one of its
    rows is written again in halves until the refused rows are alone (each reported as a bad row,
    without its values); one that meets another writer is retried; a failure of the database
    itself stops the import with ImportAborted."""

    def __init__(self, factory: async_sessionmaker[AsyncSession], kind: str, defaults: P.AudienceDefaults,
                 run: _Run) -> None:
        self.factory, self.kind, self.defaults, self.run = factory, kind, defaults, run
        self.created = self.updated = self.unchanged = self.recorded = self.duplicates = self.good = 0

    async def write(self, rows: list[_Ready]) -> None:
        await self._store(rows, CONFLICT_RETRIES)

    async def _store(self, rows: list[_Ready], conflict_retries: int) -> None:
        try:
            where = f"rows {rows[0].row}–{rows[-1].row}" if len(rows) > 1 else f"row {rows[0].row}"
            await _retrying(lambda: self._write(rows), conflict_retries, where=f"while writing {where}",
                            imported=self.good)
        except _Refused as refused:
            if len(rows) == 1:
                self.run.report(rows[0].row, rows[0].raw,
                                [RowProblem(rows[0].row, "", _REFUSED[refused.kind], rows[0].raw)])
                return
            middle = len(rows) // 2
            await self._store(rows[:middle], 0)
            await self._store(rows[middle:], 0)

    async def _write(self, rows: list[_Ready]) -> None:
        prepared = [r.prepared for r in rows]
        async with self.factory() as session, session.begin():
            if self.kind == "profiles":
                result = await P.upsert_profiles(session, prepared, source="import", defaults=self.defaults)
                counts = (result.created, result.updated, result.unchanged, 0,
                          len(prepared) - result.created - result.updated - result.unchanged)
            else:
                events = await P.record_events(session, prepared, source="import", defaults=self.defaults)
                counts = (events.profiles_created, 0, 0, events.recorded, events.duplicates)
        self.created += counts[0]
        self.updated += counts[1]
        self.unchanged += counts[2]
        self.recorded += counts[3]
        self.duplicates += counts[4]
        self.good += len(rows)
        self.run.warn(rows)


class _Refused(Exception):
    def __init__(self, kind: str) -> None:
        self.kind = kind


async def _retrying(operation: Callable[[], Any], conflict_retries: int = 0, *, where: str,
                    imported: int | None = None) -> Any:
    """Run a write (a transaction of its own, so a failed try leaves nothing behind) until it
    succeeds: "busy" failures are retried BUSY_RETRIES times, "conflict" ones `conflict_retries`
    times, with a growing, jittered pause; a failure that stays raises _Refused (conflict, row)
    or ImportAborted (busy, fatal)."""
    busy_left, conflict_left, pause = BUSY_RETRIES, conflict_retries, 0.05
    while True:
        try:
            return await operation()
        except (SQLAlchemyError, ValueError, UnicodeError, OverflowError) as exc:
            kind = _failure(exc)
            if kind == "busy" and busy_left:
                busy_left -= 1
                logger.info("import %s: the database was busy, retrying (%s)", where, _database_says(exc))
            elif kind == "conflict" and conflict_left:
                conflict_left -= 1
                logger.info("import %s: a unique-key conflict, retrying", where)
            elif kind in ("conflict", "row"):
                raise _Refused(kind) from None
            else:
                logger.warning("import stopped: the database failed (%s)", _database_says(exc))
                done = ("nothing was imported" if imported is None
                        else f"{imported:,} rows before them were imported; re-run the same import to complete it")
                raise ImportAborted(f"the database failed {where} ({_database_says(exc)}); {done}") from None
        await asyncio.sleep(pause * (0.5 + random.random()))
        pause = min(pause * 2, 1.0)


def default_error_file(path: Path, format: str) -> Path:
    """Where an import of `path` writes its bad rows: NAME.errors.EXT beside it (people.csv →
    people.errors.csv), keeping the extension so the fixed file is read the same way."""
    suffix = path.suffix or (".csv" if format == "csv" else ".jsonl")
    return path.with_name(f"{path.stem}.errors{suffix}")


async def run_import(
    factory: async_sessionmaker[AsyncSession], path: str | os.PathLike[str], kind: str = "profiles", *,
    actor: str, mapping: Mapping[str, str] | None = None, types: Mapping[str, str] | None = None,
    format: str | None = None, delimiter: str | None = None, error_file: str | os.PathLike[str] | None = None,
    progress: Progress | None = None, batch_size: int = 2000, max_reported: int = 100,
    defaults: P.AudienceDefaults | None = None,
) -> ImportSummary:
    """Import a whole file, streaming it in batches of `batch_size` rows, each written and committed
    in its own transaction (a re-run after a crash completes the rest; rows already imported change
    nothing). Bad rows go to `error_file` (default `default_error_file`, written only when there are
    bad rows), including rows the database refuses, in the file's own format (module docstring). Raises ImportFileError /
    ValidationError before writing anything when the file or the mapping cannot be used, and
    ImportAborted when the database fails mid-way (the batches before it are kept)."""
    started = time.monotonic()
    if kind not in KINDS:
        raise ValidationError([("kind", f"must be one of {', '.join(KINDS)}")])
    if batch_size < 1:
        raise ValidationError([("batch_size", "must be at least 1")])

    async def read_settings() -> tuple[P.AudienceDefaults, dict[str, dict[str, str]], dict[str, str]]:
        async with factory() as session:
            return (defaults or await P.audience_defaults(session),
                    await _event_types(session) if kind == "events" else {},
                    await P.property_types(session, "profile") if kind == "profiles" else {})

    try:
        defaults, event_types, profile_types = await _retrying(read_settings, where="while reading the settings")
    except _Refused:
        raise ImportAborted("the database refused to read the settings; nothing was imported") from None
    known = profile_types if kind == "profiles" else {}
    preview, fmt = await asyncio.to_thread(
        _preview, path, kind, mapping=mapping, types=types, format=format, delimiter=delimiter,
        known_types=known, defaults=None, sample_rows=200)
    problems = list(preview.problems)
    for scope, scope_types in event_types.items():
        problems.extend(_check_types({k: v for k, v in (types or {}).items() if v in TYPES}, scope_types,
                                     f" of {scope!r} events"))
    errors_path = Path(error_file).expanduser() if error_file else default_error_file(preview.path, preview.format)
    if errors_path.resolve() == preview.path.resolve():
        problems.append(("error_file", "must not be the file being imported"))
    elif not errors_path.parent.is_dir():
        problems.append(("error_file", f"the folder {errors_path.parent} does not exist"))
    if problems:
        raise ValidationError(problems)

    plan = _Plan(kind, preview.format, preview.mapping)
    column_types = {**known, **preview.types}  # known types also hold for properties the sample did not show
    run = _Run(preview, fmt, plan, column_types, event_types, defaults, errors_path, max_reported)
    writer = _Writer(factory, kind, defaults, run)
    if progress:
        progress(0, 0, preview.file_size)
    loop = asyncio.get_running_loop()
    # The next batch is read and prepared in a thread while this one is written.
    reading = loop.run_in_executor(None, run.next_batch, batch_size)
    done_rows = 0
    try:
        while True:
            prepared, count, read_bytes = await asyncio.shield(reading)
            if count == 0:
                break
            reading = loop.run_in_executor(None, run.next_batch, batch_size)
            if prepared:
                await writer.write(prepared)
            done_rows += count
            if progress:
                progress(done_rows, min(read_bytes, preview.file_size), preview.file_size)
    finally:
        if not reading.done():  # cancelled while a batch was being read
            with contextlib.suppress(BaseException):
                await asyncio.wait([reading])
        run.close()
    if run.bad_rows == 0:
        run.errors.remove_stale()
    summary = ImportSummary(
        path=preview.path, kind=kind, format=preview.format, rows_read=run.rows_read, good_rows=writer.good,
        bad_rows=run.bad_rows, created=writer.created, updated=writer.updated, unchanged=writer.unchanged,
        events_recorded=writer.recorded, duplicates=writer.duplicates, problem_count=run.problem_count,
        problems=tuple(sorted(run.reported, key=lambda p: p.row)),
        error_file=errors_path if run.bad_rows else None, elapsed_seconds=time.monotonic() - started,
        unreachable_rows=run.unreachable_rows, unreachable=tuple(sorted(run.unreachable, key=lambda w: w.row)),
    )

    async def record_audit() -> None:
        async with factory() as session, session.begin():
            await audit.record(session, actor, f"import.{kind}", preview.path.name, rows=summary.rows_read,
                               bad_rows=summary.bad_rows, created=summary.created, updated=summary.updated,
                               events=summary.events_recorded)

    try:
        await _retrying(record_audit, where="while recording the import in the audit log", imported=summary.good_rows)
    except _Refused:
        logger.warning("import of %s finished but its audit entry was refused", preview.path.name)
    return summary
