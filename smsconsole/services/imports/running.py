"""Running an import: the whole file streamed in batches, the next one read and prepared in a
thread while this one is written, then the summary and its audit entry."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsconsole.services import audit
from smsconsole.services import profiles as P
from smsconsole.services.errors import ValidationError
from smsconsole.services.imports.error_file import default_error_file
from smsconsole.services.imports.mapping import Plan, check_types, stored_event_types
from smsconsole.services.imports.model import KINDS, ImportAborted, ImportSummary, Progress
from smsconsole.services.imports.parallel import (
    IMPORT_GC_THRESHOLD,
    PARALLEL_MIN_BYTES,
    ParallelReader,
    pool_size,
    start_pool,
)
from smsconsole.services.imports.preparing import BatchReader
from smsconsole.services.imports.preview import preview_with_format
from smsconsole.services.imports.writing import BatchWriter, Refused, retrying
from smsconsole.services.values import TYPES

logger = logging.getLogger("smsconsole.services.imports")  # one logger name for the whole package


async def run_import(
    factory: async_sessionmaker[AsyncSession], path: str | os.PathLike[str], kind: str = "profiles", *,
    actor: str, mapping: Mapping[str, str] | None = None, types: Mapping[str, str] | None = None,
    format: str | None = None, delimiter: str | None = None, error_file: str | os.PathLike[str] | None = None,
    progress: Progress | None = None, batch_size: int = 2000, max_reported: int = 100,
    defaults: P.AudienceDefaults | None = None, trigger_campaigns: bool = False, parallel: bool | None = None,
) -> ImportSummary:
    """Import a whole file, streaming it in batches of `batch_size` rows, each written and committed
    in its own transaction (a re-run after a crash completes the rest; rows already imported change
    nothing). Bad rows go to `error_file` (default `default_error_file`, written only when there are
    bad rows), including rows the database refuses, in the file's own format (package docstring). Raises ImportFileError /
    ValidationError before writing anything when the file or the mapping cannot be used, and
    ImportAborted when the database fails mid-way (the batches before it are kept).

    `trigger_campaigns` (event imports only; off by default, so a backfill of old events texts
    nobody): the imported events may trigger live campaigns, as events from the API do.

    `parallel`: prepare profile rows in a process pool on every core (module `parallel`); by
    default a file of PARALLEL_MIN_BYTES or more is, a smaller one is prepared in-process. The
    outcome is the same either way."""
    started = time.monotonic()
    if kind not in KINDS:
        raise ValidationError([("kind", f"must be one of {', '.join(KINDS)}")])
    if batch_size < 1:
        raise ValidationError([("batch_size", "must be at least 1")])
    if trigger_campaigns and kind != "events":
        raise ValidationError([("trigger_campaigns", "only imported events can trigger live campaigns")])

    async def read_settings() -> tuple[P.AudienceDefaults, dict[str, dict[str, str]], dict[str, str]]:
        async with factory() as session:
            return (defaults or await P.audience_defaults(session),
                    await stored_event_types(session) if kind == "events" else {},
                    await P.property_types(session, "profile") if kind == "profiles" else {})

    try:
        defaults, event_types, profile_types = await retrying(read_settings, where="while reading the settings")
    except Refused:
        raise ImportAborted("the database refused to read the settings; nothing was imported") from None
    known = profile_types if kind == "profiles" else {}
    preview, fmt = await asyncio.to_thread(
        preview_with_format, path, kind, mapping=mapping, types=types, format=format, delimiter=delimiter,
        known_types=known, defaults=None, sample_rows=200)
    problems = list(preview.problems)
    for scope, scope_types in event_types.items():
        problems.extend(check_types({k: v for k, v in (types or {}).items() if v in TYPES}, scope_types,
                                     f" of {scope!r} events"))
    errors_path = Path(error_file).expanduser() if error_file else default_error_file(preview.path, preview.format)
    if errors_path.resolve() == preview.path.resolve():
        problems.append(("error_file", "must not be the file being imported"))
    elif not errors_path.parent.is_dir():
        problems.append(("error_file", f"the folder {errors_path.parent} does not exist"))
    if problems:
        raise ValidationError(problems)

    plan = Plan(kind, preview.format, preview.mapping)
    column_types = {**known, **preview.types}  # known types also hold for properties the sample did not show
    run = BatchReader(preview, fmt, plan, column_types, event_types, defaults, errors_path, max_reported)
    writer = BatchWriter(factory, kind, defaults, run, may_trigger=trigger_campaigns)
    if progress:
        progress(0, 0, preview.file_size)
    if parallel is None:
        parallel = preview.file_size >= PARALLEL_MIN_BYTES
    pool = start_pool() if parallel and kind == "profiles" else None
    source = ParallelReader(run, pool, depth=2 * pool_size()) if pool else run
    loop = asyncio.get_running_loop()
    # The next batch is read and prepared in a thread (and the pool's workers) while this one is written.
    reading = loop.run_in_executor(None, source.next_batch, batch_size)
    done_rows = 0
    _pace_collector()
    try:
        while True:
            prepared, count, read_bytes = await asyncio.shield(reading)
            if count == 0:
                break
            reading = loop.run_in_executor(None, source.next_batch, batch_size)
            if prepared:
                await writer.write(prepared)
            done_rows += count
            if progress:
                progress(done_rows, min(read_bytes, preview.file_size), preview.file_size)
    finally:
        if not reading.done():  # cancelled while a batch was being read
            with contextlib.suppress(BaseException):
                await asyncio.wait([reading])
        if isinstance(source, ParallelReader):
            source.cancel()
        if pool is not None:
            await asyncio.shield(loop.run_in_executor(None, _shut_down, pool))
        run.close()
        _restore_collector()
    if run.bad_rows == 0:
        run.errors.remove_stale()
    summary = ImportSummary(
        path=preview.path, kind=kind, format=preview.format, rows_read=run.rows_read, good_rows=writer.good,
        bad_rows=run.bad_rows, created=writer.created, updated=writer.updated, unchanged=writer.unchanged,
        events_recorded=writer.recorded, duplicates=writer.duplicates, problem_count=run.problem_count,
        problems=tuple(sorted(run.reported, key=lambda p: p.row)),
        error_file=errors_path if run.bad_rows else None, elapsed_seconds=time.monotonic() - started,
        unreachable_rows=run.unreachable_rows, unreachable=tuple(sorted(run.unreachable, key=lambda w: w.row)),
        triggered_campaigns=trigger_campaigns, campaign_messages=writer.queued,
    )

    async def record_audit() -> None:
        async with factory() as session, session.begin():
            await audit.record(session, actor, f"import.{kind}", preview.path.name, rows=summary.rows_read,
                               bad_rows=summary.bad_rows, created=summary.created, updated=summary.updated,
                               events=summary.events_recorded,
                               **({"campaign_messages": summary.campaign_messages} if trigger_campaigns else {}))

    try:
        await retrying(record_audit, where="while recording the import in the audit log", imported=summary.good_rows)
    except Refused:
        logger.warning("import of %s finished but its audit entry was refused", preview.path.name)
    return summary


_paced: list[tuple[int, int, int]] = []  # the thresholds to restore, once per import running in this process


def _pace_collector() -> None:
    """Python's cycle collector paced for an import: a batch in flight is tens of thousands of
    container objects that outlive two young collections, so at the default pace a full collection
    of the whole heap ran every few thousand rows (a third of the importing process's CPU). With
    fewer young collections they are rarely promoted, and full collections are rare; nothing is left
    uncollected. `_restore_collector` puts the thresholds back when the last import ends."""
    before = gc.get_threshold()
    _paced.append(before)
    if 0 < before[0] < IMPORT_GC_THRESHOLD:
        gc.set_threshold(IMPORT_GC_THRESHOLD, *before[1:])


def _restore_collector() -> None:
    first = _paced[0]
    _paced.pop()
    if not _paced and gc.get_threshold()[0] == max(first[0], IMPORT_GC_THRESHOLD):
        gc.set_threshold(*first)


def _shut_down(pool: ProcessPoolExecutor) -> None:
    pool.shutdown(wait=True, cancel_futures=True)
