"""Reading a file: its head (refusing what is not UTF-8 text), the format and CSV dialect, and its
records line by line, each with its line number and raw text, so a bad one can be reported and
copied into the error file as it is."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smsconsole.services.errors import ValidationError
from smsconsole.services.imports.model import FORMATS, ImportFileError

HEAD_BYTES = 64 * 1024
RAW_LIMIT = 131_072  # characters of a bad row kept for the error file (a csv reader's default field limit)
_DATA_LIKE = re.compile(r"[+(]?\d[\d\s().\-/:]*|\S+@\S+\.\S+")  # numbers, phones, dates, e-mails


@dataclass(frozen=True)
class FileFormat:
    format: str
    bom: bool
    delimiter: str | None = None
    skipinitialspace: bool = False

    def reader_args(self) -> dict[str, Any]:
        # strict: a stray quote is reported as a bad row instead of silently joining the lines after it
        return {"delimiter": self.delimiter or ",", "quotechar": '"', "doublequote": True,
                "skipinitialspace": self.skipinitialspace, "strict": True}


@dataclass
class Record:
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


def read_head(path: Path) -> tuple[bytes, int]:
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


def detect_format(path: Path, head: bytes, format: str | None, delimiter: str | None) -> FileFormat:
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
        return FileFormat("jsonl", bom)
    if delimiter is not None:
        if len(delimiter) != 1 or delimiter in '"\r\n':
            raise ValidationError([("delimiter", "must be one character other than a quote or a line break")])
        return FileFormat("csv", bom, delimiter)
    sample = text[: text.rfind("\n") + 1] if len(head) == HEAD_BYTES and "\n" in text else text
    header_line = next((line for line in sample.splitlines() if line.strip()), "")
    if path.suffix.lower() in (".tsv", ".tab") and "\t" in header_line:
        return FileFormat("csv", bom, "\t")
    skipinitialspace = False
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        chosen, skipinitialspace = sniffed.delimiter, sniffed.skipinitialspace
    except csv.Error:
        chosen = ""
    if not chosen or chosen not in header_line:  # the sniffer can be fooled by the data; the header decides
        counts = {d: header_line.count(d) for d in ",;\t|"}
        chosen = max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","
    return FileFormat("csv", bom, chosen, skipinitialspace)


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


class Lines:
    """The file as text lines with their endings, counting lines and bytes, remembering the lines of
    the current record so a bad one can be copied verbatim (up to RAW_LIMIT characters). The csv
    reader and `skip_rest_of_record` read from the same iterator."""

    def __init__(self, path: Path, fmt: FileFormat) -> None:
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


def unique_columns(cells: list[str]) -> tuple[list[str], list[str]]:
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


def _csv_rows(lines: Lines, reader: Iterator[list[str]]) -> Iterator[tuple[int, str, list[str] | csv.Error]]:
    """(first line number, raw text, cells) of each CSV record; in place of the cells, the csv
    module's error for a record it gave up on, which is then skipped to its real end."""
    while True:
        try:
            cells: list[str] | csv.Error = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            lines.skip_rest_of_record()
            cells = exc
        row, raw = lines.take()
        yield row, raw, cells


def _csv_header(lines: Lines, rows: Iterator[tuple[int, str, list[str] | csv.Error]],
                path: Path) -> tuple[list[str], list[str]]:
    for row, raw, cells in rows:
        if isinstance(cells, csv.Error):
            reason = _csv_reason(cells)
            raise ImportFileError(f"line {row} of {path.name} cannot be read as the header: {reason}")
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
        return unique_columns(cells)
    raise ImportFileError(f"{path.name} has no header line")


def _csv_records(lines: Lines, fmt: FileFormat, path: Path) -> tuple[list[str], list[str], Iterator[Record]]:
    rows = _csv_rows(lines, csv.reader(lines, **fmt.reader_args()))
    columns, warnings = _csv_header(lines, rows, path)
    width = len(columns)

    def records() -> Iterator[Record]:
        for row, raw, cells in rows:
            if isinstance(cells, csv.Error):
                yield Record(row, raw, None, [("", _csv_reason(cells))])
                continue
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > width and not any(c.strip() for c in cells[width:]):
                cells = cells[:width]  # trailing empty fields, as some spreadsheets write them
            if len(cells) != width:
                yield Record(row, raw, None, [("", f"has {len(cells)} fields; the header has {width}")])
                continue
            if _undecodable(raw):
                bad = [(columns[i] if i < width else "", "contains bytes that are not UTF-8; save the file as UTF-8")
                       for i, c in enumerate(cells) if _undecodable(c)]
                yield Record(row, raw, None, bad or [("", "contains bytes that are not UTF-8")])
                continue
            values = {name: cell.strip() for name, cell in zip(columns, cells)}
            yield Record(row, raw, values, whole=lines.taken_whole)

    return columns, warnings, records()


def _jsonl_records(lines: Lines) -> Iterator[Record]:
    for line in lines:
        row, raw = lines.take()
        if not line.strip():
            continue
        if _undecodable(raw):
            yield Record(row, raw, None, [("", "contains bytes that are not UTF-8; save the file as UTF-8")])
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            yield Record(row, raw, None, [("", f"is not valid JSON ({exc.msg} at character {exc.colno})")])
            continue
        except RecursionError:
            yield Record(row, raw, None, [("", "is nested too deeply to read")])
            continue
        except ValueError:  # e.g. an integer of more digits than Python converts
            yield Record(row, raw, None, [("", "holds a number too long to read")])
            continue
        if not isinstance(value, dict):
            yield Record(row, raw, None, [("", "is not a JSON object")])
            continue
        yield Record(row, raw, value)


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _csv_reason(exc: csv.Error) -> str:
    if "field larger than field limit" in str(exc):
        return (f"a field is longer than {csv.field_size_limit():,} characters; "
                "check for a quote that is never closed")
    return f"cannot be read as CSV ({exc}); check its quotes"


def unstorable_values(values: Mapping[str, Any]) -> list[tuple[str, str]]:
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


def open_records(path: Path, fmt: FileFormat) -> tuple[Lines, list[str], list[str], Iterator[Record]]:
    lines = Lines(path, fmt)
    try:
        if fmt.format == "csv":
            columns, warnings, records = _csv_records(lines, fmt, path)
            return lines, columns, warnings, records
        return lines, [], [], _jsonl_records(lines)
    except BaseException:
        lines.close()
        raise

