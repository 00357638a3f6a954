"""Getting the audience in: `smsconsole import` (profiles or events from a file) and `api-keys`
(the keys of the ingestion API, POST /v1/profiles and /v1/events)."""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path
from typing import Any

from smsconsole.cli.output import EXIT_FAILED, Commands, OperationFailed, UsageError, add_actions, plain, print_json
from smsconsole.cli.problems import name_problems
from smsconsole.cli.runtime import ACTOR, with_runtime
from smsconsole.config import Config


def register(commands: Commands) -> None:
    imp = commands.add_parser(
        "import", help="import profiles (CSV) or events (CSV or JSON lines)",
        description="Streams the file in batches; good rows are kept, each bad row is reported (row, column, "
        "reason) and written to NAME.errors.EXT beside it (people.csv -> people.errors.csv) in the file's own "
        "columns plus error_row and error_reason: fix the rows there and import that file. Rows kept with a phone "
        "that is not valid are listed as warnings. Re-running the same file changes nothing. Exit 0 when every row "
        "was imported, 1 when some or all rows were bad, or when the database failed mid-way (the batches "
        "written before are kept; re-run to import the rest).",
    )
    imp.add_argument("kind", choices=("profiles", "events"))
    imp.add_argument("file")
    imp.add_argument("--map", action="append", default=[], metavar="COLUMN=TARGET",
                     help="map a column: user_id, phone, name, timezone, country, optin_at, optout_at (profiles); "
                     "user_id, phone, name, at (events); property:NAME; properties; or skip")
    imp.add_argument("--type", action="append", default=[], metavar="PROPERTY=TYPE",
                     help="property type: string, number, boolean, date or list (overrides inference)")
    imp.add_argument("--format", choices=("csv", "jsonl"), help="file format (default: detected)")
    imp.add_argument("--delimiter", help="CSV delimiter (default: detected)")
    imp.add_argument("--errors", metavar="PATH", help="where to write bad rows (default NAME.errors.EXT beside FILE)")
    imp.add_argument("--trigger-campaigns", action="store_true",
                     help="events only: the imported events may trigger live campaigns, as events from the API do "
                     "(default: they trigger nothing, so a backfill of old events texts nobody)")
    imp.add_argument("--preview", action="store_true", help="show the mapping, types and first rows; import nothing")
    imp.add_argument("--json", action="store_true")
    # the preview names each problem by its flag as typed (--map, --type), so it reads this parser
    imp.set_defaults(func=functools.partial(cmd_import, parser=imp))

    keys = commands.add_parser("api-keys", help="keys for the HTTP API (POST /v1/profiles, /v1/events, /v1/messages)")
    keys.set_defaults(func=cmd_api_keys)
    k_commands = add_actions(keys, "keys_command")
    k_create = k_commands.add_parser("create", help="create a key; it is shown once")
    k_create.add_argument("name")
    k_create.add_argument("--json", action="store_true")
    k_list = k_commands.add_parser("list", help="list keys (never their secret)")
    k_list.add_argument("--json", action="store_true")
    k_revoke = k_commands.add_parser("revoke", help="revoke a key by its prefix or id")
    k_revoke.add_argument("key", metavar="PREFIX|ID")


async def cmd_import(config: Config, args: argparse.Namespace, *, parser: argparse.ArgumentParser) -> int:
    from smsconsole.logs import setup_logging  # lazy: start-up

    setup_logging(config.effective_log_file, config.log_level)
    mapping = _pairs(args.map, "--map") or None
    types = _pairs(args.type, "--type") or None
    if args.trigger_campaigns and args.kind != "events":
        raise UsageError("--trigger-campaigns applies to event imports only (smsconsole import events FILE)")

    async def work(runtime: Any) -> int:
        if args.preview:
            return await _preview(runtime, args, mapping, types, parser)
        return await _run(runtime, args, mapping, types)

    return await with_runtime(config, work, writes=not args.preview)


async def _preview(runtime: Any, args: argparse.Namespace, mapping: dict[str, str] | None,
                   types: dict[str, str] | None, parser: argparse.ArgumentParser) -> int:
    from smsconsole.services import imports, profiles  # lazy: start-up

    async with runtime.factory() as session:
        known = await imports.known_property_types(session, args.kind)
        defaults = await profiles.audience_defaults(session)
    preview = imports.preview_import(Path(args.file), args.kind, mapping=mapping, types=types, format=args.format,
                                     delimiter=args.delimiter, known_types=known, defaults=defaults)
    if args.json:
        print_json(preview)
        return 0
    print(f"{preview.path}: {preview.format}" + (f", delimiter {preview.delimiter!r}" if preview.delimiter else "")
          + f", {len(preview.columns)} columns")
    for column in preview.columns:
        target = preview.mapping.get(column, "skip")
        name = target.removeprefix("property:")
        type_note = f" ({preview.types[name]}, {preview.type_sources[name]})" if name in preview.types else ""
        print(f"  {column:<24} -> {target}{type_note}")
    for problem in preview.sample_problems[:10]:
        print(f"  sample {problem.describe()}")
    for problem in preview.problems:
        print(f"  problem: {name_problems([problem], ('import',), parser)}")
    for warning in preview.warnings:
        print(f"  warning: {warning}")
    return 0 if preview.ok else EXIT_FAILED


async def _run(runtime: Any, args: argparse.Namespace, mapping: dict[str, str] | None,
               types: dict[str, str] | None) -> int:
    from smsconsole.services import imports  # lazy: start-up

    def progress(rows: int, done: int, size: int) -> None:
        if sys.stderr.isatty() and size:
            print(f"\r{rows:,} rows, {100 * done / size:.0f}%   ", end="", file=sys.stderr, flush=True)

    try:
        summary = await imports.run_import(
            runtime.factory, Path(args.file), args.kind, actor=ACTOR, mapping=mapping, types=types,
            format=args.format, delimiter=args.delimiter, error_file=Path(args.errors) if args.errors else None,
            progress=progress, trigger_campaigns=args.trigger_campaigns,
        )
    except imports.ImportAborted as exc:  # the database failed mid-way; finished batches are kept
        if sys.stderr.isatty():
            print(file=sys.stderr)
        raise OperationFailed(str(exc)) from None
    if sys.stderr.isatty():
        print(file=sys.stderr)
    if args.json:
        print_json({**plain(summary), "outcome": summary.outcome})
    else:
        _print_summary(summary, args.kind)
    return EXIT_FAILED if summary.outcome in ("partial", "failed") else 0


def _print_summary(summary: Any, kind: str) -> None:
    if kind == "profiles":
        done = f"{summary.created:,} created, {summary.updated:,} updated, {summary.unchanged:,} unchanged"
    else:
        done = (f"{summary.events_recorded:,} events recorded, {summary.duplicates:,} already known, "
                f"{summary.created:,} profiles created")
    print(f"{summary.outcome}: {summary.rows_read:,} rows read in {summary.elapsed_seconds:.1f}s; {done}; "
          f"{summary.bad_rows:,} bad rows")
    for problem in summary.problems[:20]:
        print(f"  {problem.describe()}")
    if summary.problem_count > 20:
        print(f"  … and {summary.problem_count - 20:,} more")
    if summary.triggered_campaigns:
        count = summary.campaign_messages
        print(f"live campaigns: {count:,} message{'s' if count != 1 else ''} queued for the imported events")
    if summary.error_file:
        print(f"bad rows written to {summary.error_file} (fix them there and import that file)")
    if summary.unreachable_rows:
        rows = f"{summary.unreachable_rows:,} row{'s' if summary.unreachable_rows != 1 else ''}"
        print(f"warning: {rows} imported without a reachable phone "
              + ("(no SMS can reach them; fix the phone and import again):" if kind == "profiles"
                 else "(the phone is not a valid number, so it was not used):"))
        for warning in summary.unreachable[:10]:
            print(f"  {warning.describe()}")
        if summary.unreachable_rows > 10:
            print(f"  … and {summary.unreachable_rows - 10:,} more")


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, target = value.partition("=")
        if not sep or not key.strip() or not target.strip():
            raise UsageError(f"{flag} takes NAME=VALUE, got {value!r}")
        pairs[key.strip()] = target.strip()
    return pairs


async def cmd_api_keys(config: Config, args: argparse.Namespace) -> int:
    from smsconsole.services import api_keys  # lazy: start-up

    async def work(runtime: Any) -> int:
        action = args.keys_command
        if action == "create":
            async with runtime.factory() as session, session.begin():
                view, key = await api_keys.create_api_key(session, args.name, ACTOR)
            if args.json:
                print_json({**plain(view), "key": key})
            else:
                print(f"created API key {view.name} ({view.prefix}). Copy it now; it is not shown again:")
                print(key)
            return 0
        if action == "list":
            async with runtime.factory() as session:
                views = await api_keys.list_api_keys(session)
            if args.json:
                print_json(views)
            elif not views:
                print("no API keys; create one with: smsconsole api-keys create NAME")
            else:
                print(f"{'PREFIX':<10} {'NAME':<24} {'CREATED':<17} {'LAST USED':<17} STATE")
                for v in views:
                    used = f"{v.last_used_at:%Y-%m-%d %H:%M}" if v.last_used_at else "never"
                    state = f"revoked {v.revoked_at:%Y-%m-%d}" if v.revoked_at else "active"
                    print(f"{v.prefix:<10} {v.name[:24]:<24} {v.created_at:%Y-%m-%d %H:%M} {used:<17} {state}")
            return 0
        async with runtime.factory() as session, session.begin():
            view = await api_keys.revoke_api_key(session, args.key, ACTOR)
        print(f"revoked API key {view.name} ({view.prefix})")
        return 0

    return await with_runtime(config, work)
