"""The preview: a file's format, columns, proposed mapping, property types and first rows,
read from its head before anything is written."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from itertools import islice
from pathlib import Path
from typing import Any

from smsconsole.services import profiles as P
from smsconsole.services.errors import ValidationError
from smsconsole.services.imports.mapping import (
    Plan,
    check_types,
    infer_column,
    mapping_problems,
    parse_target,
    propose_mapping,
)
from smsconsole.services.imports.model import (
    KINDS,
    PROPERTIES,
    PROPERTY_PREFIX,
    ImportPreview,
    PreviewRow,
    RowProblem,
    RowWarning,
)
from smsconsole.services.imports.preparing import phone_warning, prepare_record, record_problems
from smsconsole.services.imports.reading import FileFormat, detect_format, open_records, read_head

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
    return preview_with_format(path, kind, mapping=mapping, types=types, format=format, delimiter=delimiter,
                    known_types=known_types, defaults=defaults, sample_rows=sample_rows)[0]


def preview_with_format(
    path: str | os.PathLike[str], kind: str, *, mapping: Mapping[str, str] | None,
    types: Mapping[str, str] | None, format: str | None, delimiter: str | None,
    known_types: Mapping[str, str] | None, defaults: P.AudienceDefaults | None, sample_rows: int,
) -> tuple[ImportPreview, FileFormat]:
    if kind not in KINDS:
        raise ValidationError([("kind", f"must be one of {', '.join(KINDS)}")])
    file_path = Path(path).expanduser().absolute()
    head, size = read_head(file_path)
    fmt = detect_format(file_path, head, format, delimiter)
    lines, columns, warnings, records = open_records(file_path, fmt)
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
    proposed, mapping_warnings = propose_mapping(kind, fmt.format, columns, samples)
    warnings.extend(mapping_warnings)

    problems: list[tuple[str, str]] = []
    final = dict(proposed)
    for column, target in (mapping or {}).items():
        if column not in proposed and fmt.format == "csv":
            problems.append((f"mapping.{column}", f"the file has no column {column!r}"))
            continue
        parsed, reason = parse_target(column, target, kind, fmt.format)
        if reason:
            problems.append((f"mapping.{column}", reason))
        else:
            assert parsed is not None
            final[column] = parsed
    overrides = dict(types or {})
    known = dict(known_types or {})
    problems.extend(check_types(overrides, known))
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
            effective[name], sources[name] = infer_column(fmt.format, samples.get(column, [])), "inferred"
    for name, type_ in overrides.items():
        effective.setdefault(name, type_)
        sources.setdefault(name, "override")

    sample_problems: list[RowProblem] = []
    unreachable: list[RowWarning] = []
    plan = Plan(kind, fmt.format, final)
    for record in sample:
        if record.values is None:
            sample_problems.extend(record_problems(record, plan))
        elif defaults is not None:
            try:
                prepared = prepare_record(plan, record, {**known, **effective}, {}, defaults)
            except P.RowError as exc:
                record.problems = exc.problems
                sample_problems.extend(record_problems(record, plan))
            else:
                reason = phone_warning(plan, record.values, prepared, defaults)
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
        problems=tuple(mapping_problems(kind, final)), warnings=tuple(warnings),
    ), fmt
