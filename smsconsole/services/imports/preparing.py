"""Turning records into prepared rows through the mapping, and the reading side of an import run:
a batch of records at a time, bad rows reported and written to the error file."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from smsconsole.phone import parse_number
from smsconsole.services import profiles as P
from smsconsole.services.imports.error_file import ErrorFile
from smsconsole.services.imports.mapping import Plan
from smsconsole.services.imports.model import (
    PROPERTIES,
    PROPERTY_PREFIX,
    SKIP,
    ImportPreview,
    RowProblem,
    RowWarning,
)
from smsconsole.services.imports.reading import FileFormat, Record, open_records, unstorable_values

logger = logging.getLogger("smsconsole.services.imports")  # one logger name for the whole package


def _prepare(plan: Plan, values: Mapping[str, Any], types: Mapping[str, str],
             event_types: Mapping[str, Mapping[str, str]], defaults: P.AudienceDefaults,
             check_text: bool = True) -> Any:
    if check_text:
        unstorable = unstorable_values({c: v for c, v in values.items() if plan.target(c) != SKIP})
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


def prepare_record(plan: Plan, record: Record, types: Mapping[str, str],
                    event_types: Mapping[str, Mapping[str, str]], defaults: P.AudienceDefaults) -> Any:
    """`_prepare` for a readable record; a value that breaks a parser in a way no check foresaw
    (a date past year 9999 in UTC, say) is a RowError too, not the end of the import."""
    assert record.values is not None
    try:
        return _prepare(plan, record.values, types, event_types, defaults, record.may_hold_unstorable())
    except (ValueError, ArithmeticError, RecursionError) as exc:
        logger.warning("import row %d could not be prepared: %s", record.row, type(exc).__name__)
        raise P.RowError([("", f"holds a value that cannot be imported ({type(exc).__name__})")]) from None


def phone_warning(plan: Plan, values: Mapping[str, Any], prepared: Any, defaults: P.AudienceDefaults) -> str | None:
    """Why a row that imports has a phone no SMS can use: a profile kept with a phone that is not
    valid, or an event (known by its user id) whose phone is not used. None when there is none."""
    if plan.kind == "profiles":
        return (prepared.phone_reason or "The number is not valid.") if prepared.phone_status == "invalid" else None
    column = plan.column("phone")
    given = values.get(column) if plan.target(column) == "phone" else None
    if prepared.phone is not None or given in (None, "") or not isinstance(given, (str, int)):
        return None
    return parse_number(str(given), defaults.region).reason or "The number is not valid."


def record_problems(record: Record, plan: Plan) -> list[RowProblem]:
    return [RowProblem(record.row, plan.column(column) if column else "", reason, record.raw)
            for column, reason in record.problems]


@dataclass(frozen=True)
class ReadyRow:
    """A prepared row and where it came from, kept until its batch is written."""

    row: int
    raw: str
    prepared: Any
    warning: str | None = None  # why its phone is not valid, when it has one that is not


class BatchReader:
    """The reading side of an import: records → prepared rows, bad rows → error file. Runs in a
    worker thread one batch at a time, so a long file never blocks the event loop; rows the
    database refuses are reported from the event loop, hence the lock."""

    def __init__(self, preview: ImportPreview, fmt: FileFormat, plan: Plan, types: dict[str, str],
                 event_types: dict[str, dict[str, str]], defaults: P.AudienceDefaults, errors_path: Path,
                 max_reported: int) -> None:
        self.lines, _, _, self.records = open_records(preview.path, fmt)
        self.plan, self.types, self.event_types, self.defaults = plan, types, event_types, defaults
        self.errors = ErrorFile(errors_path, fmt, self.lines.header, preview.mapping)
        self.max_reported = max_reported
        self.rows_read = self.bad_rows = self.problem_count = self.unreachable_rows = 0
        self.reported: list[RowProblem] = []
        self.unreachable: list[RowWarning] = []
        self.lock = threading.Lock()

    def next_batch(self, size: int) -> tuple[list[ReadyRow], int, int]:
        """(prepared rows, rows read, bytes read so far) for up to `size` rows; rows read is 0 at the
        end of the file."""
        records = self.read(size)
        return self.prepare(records), len(records), self.lines.bytes_read()

    def read(self, size: int) -> list[Record]:
        """The next `size` records, as read (not yet prepared)."""
        return list(islice(self.records, size))

    def prepare(self, records: list[Record]) -> list[ReadyRow]:
        """Prepare a batch here, reporting its bad rows and learning its types, in row order."""
        prepared: list[ReadyRow] = []
        for record in records:
            if record.values is not None:
                try:
                    row = prepare_record(self.plan, record, self.types, self.event_types, self.defaults)
                    warning = phone_warning(self.plan, record.values, row, self.defaults)
                    prepared.append(ReadyRow(record.row, record.raw, row, warning))
                    continue
                except P.RowError as exc:
                    record.problems = exc.problems
            self.report(record.row, record.raw, record_problems(record, self.plan))
        self.rows_read += len(records)
        self._learn([r.prepared for r in prepared])
        return prepared

    def report(self, row: int, raw: str, found: list[RowProblem]) -> None:
        with self.lock:
            self.bad_rows += 1
            self.problem_count += len(found)
            self.errors.write(row, found, raw)
            room = self.max_reported - len(self.reported)
            if room > 0:
                self.reported.extend(RowProblem(p.row, p.column, p.reason, p.raw[:500]) for p in found[:room])

    def warn(self, rows: list[ReadyRow]) -> None:
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
