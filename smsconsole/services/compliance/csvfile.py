"""Reading a small registry CSV (DLT templates, prices): a header row whose column names are matched
loosely (case, spaces and punctuation ignored, known aliases), then one record per row with the
file's line number. A missing, unreadable or headerless file is one ValidationError on `file`."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from smsconsole.services.errors import ValidationError

MAX_BYTES = 20 * 1024 * 1024  # registries are small; a bigger file is a mistake


def column_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def _text(path: Path) -> str:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ValidationError([("file", f"{path}: no such file")]) from None
    except OSError as exc:
        raise ValidationError([("file", f"{path}: cannot be read ({exc.strerror or exc})")]) from None
    if path.is_dir():
        raise ValidationError([("file", f"{path}: is a folder, not a CSV file")])
    if size > MAX_BYTES:
        raise ValidationError([("file", f"{path}: {size // (1024 * 1024)} MB; a registry CSV is at most {MAX_BYTES // (1024 * 1024)} MB")])
    try:
        return path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise ValidationError([("file", f"{path}: cannot be read ({exc.strerror or exc})")]) from None
    except UnicodeDecodeError as exc:
        raise ValidationError([("file", f"{path}: not UTF-8 text (byte {exc.start}); save it as CSV UTF-8")]) from None


def read_csv(path: Path, columns: Mapping[str, Sequence[str]], *, required: Sequence[str]) -> Iterator[tuple[int, dict[str, str] | str]]:
    """(line, {field: value}) per data row, or (line, reason) for a row that cannot be read; the
    header row names the columns (any of each field's aliases). Blank rows are skipped."""
    text = _text(Path(path))
    reader = csv.reader(text.splitlines(keepends=True))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise ValidationError([("file", f"{path}: line 1: {exc}")]) from None
    if not header or not any(cell.strip() for cell in header):
        raise ValidationError([("file", f"{path}: empty; the first row names the columns ({', '.join(columns)})")])
    keys = [column_key(cell) for cell in header]
    where: dict[str, int] = {}
    for field, aliases in columns.items():
        for alias in aliases:
            if alias in keys:
                where[field] = keys.index(alias)
                break
    if missing := [f for f in required if f not in where]:
        raise ValidationError([("file", (f"{path}: the header row has no {', '.join(missing)} column; "
                                         f"expected columns: {', '.join(columns)}"))])
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num, f"cannot be read as CSV: {exc}"
            continue
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > len(header) and any(c.strip() for c in cells[len(header):]):
            yield reader.line_num, f"{len(cells)} values where the header has {len(header)} columns"
            continue
        yield reader.line_num, {field: cells[i].strip() if i < len(cells) else "" for field, i in where.items()}
