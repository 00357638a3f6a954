"""Preparing a large profile import on every core: batches of records go to a process pool and
come back prepared, in file order, a bounded number of batches ahead (memory stays flat).

A batch is prepared in a worker with the property types and column mapping known when it was sent.
The rows before it may still teach the run a type (a property first met in a JSON line, or in a
column of JSON objects) or a mapping (a JSON key the sample did not show); when the batch met such
a name and the run learned it meanwhile, its preparation in the worker is thrown away and the batch
is prepared again here, in order, as a single process would. So the outcome is the same row for row
(prepared values, bad rows and their reasons, types learned) whichever path a batch took."""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from smsconsole.services import profiles as P
from smsconsole.services.imports.mapping import Plan
from smsconsole.services.imports.model import RowProblem
from smsconsole.services.imports.preparing import BatchReader, ReadyRow, phone_warning, prepare_record
from smsconsole.services.imports.reading import Record

PARALLEL_MIN_BYTES = 512 * 1024  # smaller files (a few thousand rows) are prepared in-process: no pool to start
IMPORT_GC_THRESHOLD = 50_000  # new container objects between young collections, importing (Python: 700; running.py)
logger = logging.getLogger("smsconsole.services.imports")  # one logger name for the whole package


def pool_size() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


def start_pool(workers: int | None = None) -> ProcessPoolExecutor:
    """Fresh interpreters (spawn), not forks: the parent runs an event loop, database threads and
    perhaps the console, none of which a fork may copy."""
    return ProcessPoolExecutor(max_workers=workers or pool_size(), mp_context=multiprocessing.get_context("spawn"),
                               initializer=_quiet_worker)


class _Notes(logging.Handler):
    """The worker's log records, sent back with its batch and logged by the parent."""

    records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage())


def _quiet_worker() -> None:
    gc.set_threshold(IMPORT_GC_THRESHOLD, *gc.get_threshold()[1:])
    package = logging.getLogger("smsconsole")
    package.addHandler(_Notes())
    package.propagate = False  # never the stderr of the console the parent may be drawing


class _Watched(dict):  # type: ignore[type-arg]
    """Property types that remember the names asked of them that were not known when sent."""

    def __init__(self, known: dict[str, str]) -> None:
        super().__init__(known)
        self.sent = frozenset(known)
        self.met: set[str] = set()

    def __bool__(self) -> bool:  # `property_types or {}` must keep watching, empty or not
        return True

    def get(self, key: Any, default: Any = None) -> Any:
        if key not in self.sent:
            self.met.add(key)
        return super().get(key, default)


@dataclass(frozen=True)
class _Prepared:
    rows: list[tuple[int, Any, str | None] | tuple[int, list[tuple[str, str]]]]  # (index, prepared, warning) | (index, problems)
    met: frozenset[str]  # property names asked for that were not known when the batch was sent
    learned: list[tuple[str, str]]  # types the batch learned, in the order it learned them
    mapped: list[str]  # columns the batch mapped that the plan did not hold, in order
    notes: list[str]


def prepare_batch(kind: str, format: str, mapping: dict[str, str], types: dict[str, str],
                  defaults: P.AudienceDefaults, records: list[tuple[int, str, dict[str, Any] | None,
                                                                    list[tuple[str, str]], bool]]) -> _Prepared:
    """In a worker: a batch of records (row, raw, values, problems, whole) prepared as
    `BatchReader.prepare` would, with what it needed to know to be valid."""
    plan = Plan(kind, format, mapping)
    watched = _Watched(types)
    known_columns = set(mapping)
    _Notes.records = []
    rows: list[Any] = []
    for index, (row, raw, values, problems, whole) in enumerate(records):
        record = Record(row, raw, values, list(problems), whole)
        if values is not None:
            try:
                prepared = prepare_record(plan, record, watched, {}, defaults)
                rows.append((index, prepared, phone_warning(plan, values, prepared, defaults)))
                continue
            except P.RowError as exc:
                record.problems = exc.problems
        rows.append((index, [(plan.column(column) if column else "", reason) for column, reason in record.problems]))
    learned = [(name, type_) for name, type_ in watched.items() if name not in watched.sent]
    mapped = [column for column in plan.mapping if column not in known_columns]
    return _Prepared(rows, frozenset(watched.met), learned, mapped, list(_Notes.records))


class ParallelReader:
    """`BatchReader.next_batch` with the preparing done in a process pool, up to `depth` batches
    ahead of the one being written. Used from one thread at a time, like BatchReader."""

    def __init__(self, run: BatchReader, pool: ProcessPoolExecutor, depth: int) -> None:
        self.run, self.pool, self.depth = run, pool, depth
        self.pending: deque[tuple[list[Record], Future[_Prepared], frozenset[str], int, int]] = deque()
        self.ended = False
        self.redone = 0  # batches prepared again here (see the module docstring)
        self.broken = False  # the pool failed (a worker killed, or unable to start): the rest is prepared here

    def _fill(self, size: int) -> None:
        run = self.run
        while len(self.pending) < self.depth and not self.ended and not self.broken:
            records = run.read(size)
            if not records:
                self.ended = True
                return
            sent = [(r.row, r.raw, r.values, r.problems, r.whole) for r in records]
            future = self.pool.submit(prepare_batch, run.plan.kind, run.plan.format, dict(run.plan.mapping),
                                      dict(run.types), run.defaults, sent)
            self.pending.append((records, future, frozenset(run.types), len(run.plan.mapping),
                                 run.lines.bytes_read()))

    def next_batch(self, size: int) -> tuple[list[ReadyRow], int, int]:
        self._fill(size)
        if not self.pending:
            return self.run.next_batch(size) if self.broken else ([], 0, self.run.lines.bytes_read())
        records, future, sent_types, sent_mapping, read_bytes = self.pending.popleft()
        self._fill(size)  # keep the workers busy while this batch is finished and written
        run = self.run
        try:
            result = future.result()
        except BrokenProcessPool as exc:
            if not self.broken:
                logger.warning("import: the preparing pool failed (%s); the rest is prepared in-process", exc)
            self.broken = True
            return run.prepare(records), len(records), read_bytes
        stale = (bool(result.met & (set(run.types) - sent_types))
                 or (bool(result.mapped) and len(run.plan.mapping) != sent_mapping))
        if stale:
            self.redone += 1
            logger.info("import rows %d–%d prepared again in-process: rows before them taught the run a type or "
                        "column they use", records[0].row, records[-1].row)
            return run.prepare(records), len(records), read_bytes
        for note in result.notes:
            logger.warning("%s", note)
        for column in result.mapped:  # the same answers, asked in the same order
            run.plan.target(column)
        prepared: list[ReadyRow] = []
        for item in result.rows:
            record = records[item[0]]
            if len(item) == 3:
                prepared.append(ReadyRow(record.row, record.raw, item[1], item[2]))  # type: ignore[misc]
            else:
                run.report(record.row, record.raw, [RowProblem(record.row, column, reason, record.raw)
                                                    for column, reason in item[1]])  # type: ignore[misc]
        for name, type_ in result.learned:
            run.types.setdefault(name, type_)
        run.rows_read += len(records)
        return prepared, len(records), read_bytes

    def cancel(self) -> None:
        for _, future, _, _, _ in self.pending:
            future.cancel()
        self.pending.clear()
