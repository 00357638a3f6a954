"""The command line's entry point: the top-level parser, each noun module's commands on it, and
`main`, which runs the chosen command (or the console) and turns a user's error into one line."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from smsconsole import __version__
from smsconsole.cli import demo, groups, providers, replies, send_test, stats, system
from smsconsole.cli.output import (
    EXIT_FAILED,
    Handler,
    OperationFailed,
    Parser,
    UsageError,
    error_line,
    fail,
    plain,
    print_json,
)
from smsconsole.cli.problems import describe_problems
from smsconsole.cli.runtime import ACTOR, with_runtime
from smsconsole.config import Config, load_config

# Each command imports what it needs (the database layer, providers, the console) when it runs,
# so `--help` and the reading commands start quickly; see bench/startup.py.


def build_parser() -> Parser:
    parser = Parser(prog="smsconsole", description="Terminal console for SMS campaigns through your own providers.")
    parser.add_argument("--version", action="version", version=f"smsconsole {__version__}")
    parser.add_argument("--database-url", help="database URL (default: SQLite file in the user data dir); "
                        "also SMSCONSOLE_DATABASE_URL")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")
    parser.add_argument("--demo", action="store_true",
                        help="use the demo database (created by 'smsconsole demo') instead of the configured one")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    for noun in (system, providers, demo):
        noun.register(commands)

    profiles = commands.add_parser("profiles", help="find and show profiles")
    pr_commands = profiles.add_subparsers(dest="profiles_command", metavar="ACTION", required=True,
                                          parser_class=Parser)
    pr_show = pr_commands.add_parser("show", help="one profile by phone (any format) or user id")
    pr_show.add_argument("key", metavar="PHONE|ID")
    pr_show.add_argument("--json", action="store_true")
    pr_search = pr_commands.add_parser("search", help="search by phone, user id or name")
    pr_search.add_argument("query")
    pr_search.add_argument("--json", action="store_true")

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
    imp.add_argument("--preview", action="store_true", help="show the mapping, types and first rows; import nothing")
    imp.add_argument("--json", action="store_true")

    keys = commands.add_parser("api-keys", help="keys for the ingestion API (POST /v1/profiles, /v1/events)")
    k_commands = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True, parser_class=Parser)
    k_create = k_commands.add_parser("create", help="create a key; it is shown once")
    k_create.add_argument("name")
    k_create.add_argument("--json", action="store_true")
    k_list = k_commands.add_parser("list", help="list keys (never their secret)")
    k_list.add_argument("--json", action="store_true")
    k_revoke = k_commands.add_parser("revoke", help="revoke a key by its prefix or id")
    k_revoke.add_argument("key", metavar="PREFIX|ID")

    segments = commands.add_parser(
        "segments", help="saved segments: create from a JSON definition, estimate reach, duplicate, delete",
        description="A definition is JSON: {\"match\": \"all\"|\"any\", \"conditions\": [...]}; see README "
        "'Segments' for conditions and operators, and 'segments catalog' for the properties and events you can use.",
    )
    s_commands = segments.add_subparsers(dest="segments_command", metavar="ACTION", required=True,
                                         parser_class=Parser)
    s_list = s_commands.add_parser("list", help="list saved segments")
    s_list.add_argument("--reach", action="store_true", help="also estimate each segment's reach")
    s_list.add_argument("--json", action="store_true")
    s_show = s_commands.add_parser("show", help="a segment's definition and its reach now")
    s_show.add_argument("name")
    s_show.add_argument("--json", action="store_true")
    s_create = s_commands.add_parser("create", help="save a segment from a definition file (- for stdin)")
    s_create.add_argument("name")
    s_create.add_argument("--file", required=True, metavar="PATH", help="the definition, JSON (- reads stdin)")
    s_create.add_argument("--description")
    s_create.add_argument("--json", action="store_true")
    s_update = s_commands.add_parser("update", help="change a segment's definition, name or description")
    s_update.add_argument("name")
    s_update.add_argument("--file", metavar="PATH", help="a new definition, JSON (- reads stdin)")
    s_update.add_argument("--rename", metavar="NEW_NAME")
    s_update.add_argument("--description", help="a new description ('' clears it)")
    s_update.add_argument("--json", action="store_true")
    s_dup = s_commands.add_parser("duplicate", help="copy a segment (default name: 'NAME (copy)')")
    s_dup.add_argument("name")
    s_dup.add_argument("--as", dest="new_name", metavar="NEW_NAME")
    s_dup.add_argument("--json", action="store_true")
    s_del = s_commands.add_parser("delete", help="delete a segment (not while a scheduled campaign uses it)")
    s_del.add_argument("name")
    s_del.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    s_est = s_commands.add_parser("estimate", help="reach of a saved segment, or of a definition file")
    s_est_target = s_est.add_mutually_exclusive_group(required=True)
    s_est_target.add_argument("name", nargs="?", help="a saved segment")
    s_est_target.add_argument("--file", metavar="PATH", help="a definition, JSON (- reads stdin)")
    s_est.add_argument("--json", action="store_true")
    s_cat = s_commands.add_parser("catalog", help="the fields, properties (with types and operators) and events")
    s_cat.add_argument("--json", action="store_true")

    groups.register(commands)
    replies.register(commands)
    stats.register(commands)

    send_test.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    config: Config | None = None
    args: argparse.Namespace | None = None
    try:
        args = parser.parse_args(argv)
        config = load_config({"database_url": args.database_url, "log_level": args.log_level})
        if (args.demo or args.command == "demo") and not config.database_url:
            config = replace(config, database_url=f"sqlite:///{config.data_dir / 'demo.db'}")
        elif args.demo and args.database_url is None:
            config = replace(config, database_url=f"sqlite:///{config.data_dir / 'demo.db'}")
        if args.command is None:
            return _run_console(config)
        handler = args.func if hasattr(args, "func") else HANDLERS[args.command]
        return asyncio.run(handler(config, args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. piped into head: the reader has gone, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        described = error_line(exc, parser, args, config)
        if described is None:
            raise
        return fail(*described)


def _run_console(config: Config) -> int:
    from smsconsole.app import SmsConsoleApp
    from smsconsole.logs import setup_logging

    setup_logging(config.effective_log_file, config.log_level)

    async def check() -> bool:  # fail in one line before the screen takes over the terminal
        from smsconsole.runtime import Runtime

        runtime = await Runtime.open(config)
        await runtime.close()
        return runtime.read_only

    read_only = asyncio.run(check())
    SmsConsoleApp(config, run_engine=not read_only).run()  # a read-only database: attached, no engine
    return 0


def _display(value: Any) -> str:
    """A property value as people write it: lists comma-separated, booleans lower-case."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "(empty list)"
    return str(value)


async def cmd_profiles(config: Config, args: argparse.Namespace) -> int:
    from smsconsole.services import profiles, settings

    async def work(runtime: Any) -> int:
        async with runtime.factory() as session:
            region = (await settings.get_settings(session))["default_region"] or None
            if args.profiles_command == "search":
                found = await profiles.search_profiles(session, args.query, default_region=region)
                if args.json:
                    print_json(found)
                elif not found:
                    print("no profiles match")
                else:
                    print(f"{'USER ID':<16} {'PHONE':<16} {'NAME':<24} {'CC':<3} {'SUBSCRIPTION':<13} REACHABLE")
                    for p in found:
                        print(f"{p.user_id or '-':<16} {p.phone or '-':<16} {(p.name or '-')[:24]:<24} "
                              f"{p.country or '-':<3} {p.subscription:<13} {'yes' if p.reachable else 'no'}")
                return 0
            detail = await profiles.get_profile(session, args.key, default_region=region, event_limit=20)
        if args.json:
            print_json(detail)
            return 0
        print(f"{detail.name or '(no name)'}  user id {detail.user_id or '-'}  (profile {detail.id})")
        phone = detail.phone or detail.phone_raw or "-"
        phone_note = detail.phone_type or detail.phone_reason or detail.phone_status
        print(f"  phone:        {phone} ({phone_note})")
        print(f"  country:      {detail.country or '-'}   time zone: {detail.timezone or '-'}")
        since = f" since {detail.subscription_at:%Y-%m-%d %H:%M} UTC" if detail.subscription_at else ""
        print(f"  subscription: {detail.subscription}{since}")
        print(f"  reachable:    {'yes' if detail.reachable else 'no — ' + (detail.unreachable_reason or '')}")
        if detail.properties:
            print("  properties:")
            for key, value in sorted(detail.properties.items()):
                print(f"    {key} ({detail.property_types.get(key, 'string')}): {_display(value)}")
        if detail.consents:
            print("  consent history:")
            for c in detail.consents:
                print(f"    {c.at:%Y-%m-%d %H:%M}  {c.state:<12} via {c.source}" + (f" ({c.phone})" if c.phone else ""))
        print(f"  events: {detail.event_count:,}" + (" (latest first)" if detail.events else ""))
        for e in detail.events:
            props = ", ".join(f"{k}={_display(v)}" for k, v in e.properties.items())
            print(f"    {e.at:%Y-%m-%d %H:%M}  {e.name}" + (f"  {props}" if props else ""))
        return 0

    return await with_runtime(config, work)


async def cmd_api_keys(config: Config, args: argparse.Namespace) -> int:
    from smsconsole.services import api_keys

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


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, target = value.partition("=")
        if not sep or not key.strip() or not target.strip():
            raise UsageError(f"{flag} takes NAME=VALUE, got {value!r}")
        pairs[key.strip()] = target.strip()
    return pairs


async def cmd_import(config: Config, args: argparse.Namespace) -> int:
    from pathlib import Path

    from smsconsole.logs import setup_logging
    from smsconsole.services import imports, profiles

    setup_logging(config.effective_log_file, config.log_level)
    mapping = _pairs(args.map, "--map") or None
    types = _pairs(args.type, "--type") or None
    path = Path(args.file)

    async def work(runtime: Any) -> int:
        if args.preview:
            async with runtime.factory() as session:
                known = await imports.known_property_types(session, args.kind)
                defaults = await profiles.audience_defaults(session)
            preview = imports.preview_import(path, args.kind, mapping=mapping, types=types, format=args.format,
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
            if preview.problems:
                parser = build_parser()  # to name each problem's flag as typed (--map, --type)
                for problem in preview.problems:
                    print(f"  problem: {describe_problems([problem], parser, args)}")
            for warning in preview.warnings:
                print(f"  warning: {warning}")
            return 0 if preview.ok else EXIT_FAILED

        def progress(rows: int, done: int, size: int) -> None:
            if sys.stderr.isatty() and size:
                print(f"\r{rows:,} rows, {100 * done / size:.0f}%   ", end="", file=sys.stderr, flush=True)

        try:
            summary = await imports.run_import(
                runtime.factory, path, args.kind, actor=ACTOR, mapping=mapping, types=types, format=args.format,
                delimiter=args.delimiter, error_file=Path(args.errors) if args.errors else None, progress=progress,
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
            if args.kind == "profiles":
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
            if summary.error_file:
                print(f"bad rows written to {summary.error_file} (fix them there and import that file)")
            if summary.unreachable_rows:
                rows = f"{summary.unreachable_rows:,} row{'s' if summary.unreachable_rows != 1 else ''}"
                print(f"warning: {rows} imported without a reachable phone "
                      + ("(no SMS can reach them; fix the phone and import again):" if args.kind == "profiles"
                         else "(the phone is not a valid number, so it was not used):"))
                for warning in summary.unreachable[:10]:
                    print(f"  {warning.describe()}")
                if summary.unreachable_rows > 10:
                    print(f"  … and {summary.unreachable_rows - 10:,} more")
        return EXIT_FAILED if summary.outcome in ("partial", "failed") else 0

    return await with_runtime(config, work, writes=not args.preview)


# --- segments ----------------------------------------------------------------------------------------

REASON_WORDS = {
    "no_phone": "no phone", "invalid_phone": "invalid phone", "not_mobile_capable": "not mobile-capable",
    "unsubscribed": "unsubscribed", "never_opted_in": "never opted in",
}


def _read_definition(path: str) -> Any:
    """A definition file's JSON; a missing file or bad JSON is a usage error naming the place."""
    name = "stdin" if path == "-" else path
    try:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()  # noqa: SIM115
    except FileNotFoundError:
        raise UsageError(f"--file: {name}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"--file: {name}: is a directory") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--file: {name}: cannot be read ({exc.__class__.__name__}: {exc})") from None
    if not text.strip():
        raise UsageError(f"--file: {name} is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--file: {name} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def _definition_problems(problems: list[tuple[str, str]], action: str = "create") -> str:
    """Problems named as the definition's paths (`conditions[1].value`) or the argument or flag
    they came from (a new name is --rename or --as)."""
    new_name = {"update": "--rename", "duplicate": "--as"}.get(action, "NAME")

    def where(path: str) -> str:
        return new_name if path in ("name", "new_name") else f"definition {path}" if path else "definition"

    return "; ".join(f"{where(path)}: {reason}" for path, reason in problems)


def _print_reach(estimate: Any, indent: str = "") -> None:
    qualified, reachable = estimate.qualified, estimate.reachable
    share = f" ({reachable / qualified:.0%})" if qualified else ""
    print(f"{indent}qualify:   {qualified:,}")
    print(f"{indent}reachable: {reachable:,}{share} by SMS now")
    reasons = [(code, n) for code, n in estimate.unreachable.items() if n]
    if reasons:
        print(f"{indent}not reachable: {qualified - reachable:,}")
        for code, n in reasons:
            print(f"{indent}  {REASON_WORDS.get(code, code):<20} {n:>10,}")
    if estimate.by_country:
        print(f"{indent}by country (qualify / reachable):")
        for c in estimate.by_country[:10]:
            print(f"{indent}  {c.country or '--':<4} {c.qualified:>10,} {c.reachable:>10,}")
        if len(estimate.by_country) > 10:
            rest = estimate.by_country[10:]
            print(f"{indent}  {'rest':<4} {sum(c.qualified for c in rest):>10,} "
                  f"{sum(c.reachable for c in rest):>10,}  ({len(rest)} more countries)")
    for warning in estimate.warnings:
        print(f"{indent}warning: {warning}")


async def cmd_segments(config: Config, args: argparse.Namespace) -> int:
    from smsconsole.services import segments
    from smsconsole.services.errors import ValidationError

    action = args.segments_command
    definition = _read_definition(args.file) if getattr(args, "file", None) else None
    if action == "delete" and not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(f"delete segment {args.name!r}: add --yes to confirm")
        answer = input(f"Delete segment {args.name!r}? This cannot be undone. [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return EXIT_FAILED

    async def work(runtime: Any) -> int:
        try:
            return await _segments_action(runtime, args, action, definition, segments)
        except ValidationError as exc:
            raise UsageError(_definition_problems(exc.problems, action)) from None

    return await with_runtime(config, work)


async def _segments_action(runtime: Any, args: argparse.Namespace, action: str, definition: Any,
                           segments: Any) -> int:
    factory = runtime.factory
    if action == "list":
        async with factory() as session:
            views = await segments.list_segments(session)
            reach = {v.name: await segments.estimate_reach(session, v.definition) for v in views} if args.reach else {}
        if args.json:
            print_json([{**plain(v), **({"reach": plain(reach[v.name])} if v.name in reach else {})}
                         for v in views])
        elif not views:
            print("no segments; create one with: smsconsole segments create NAME --file definition.json")
        else:
            for v in views:
                counts = (f"  [{reach[v.name].qualified:,} qualify, {reach[v.name].reachable:,} reachable]"
                          if v.name in reach else "")
                print(f"{v.name}{counts}\n    {v.summary}")
        return 0
    if action == "catalog":
        async with factory() as session:
            catalog = await segments.segment_catalog(session)
        if args.json:
            print_json(catalog)
            return 0
        print("fields:")
        for info in catalog.fields:
            print(f"  {info.name:<24} {info.type:<8} {' '.join(info.operators)}")
        print("properties:" if catalog.properties else "properties: none yet (import profiles first)")
        for info in catalog.properties:
            print(f"  {info.name:<24} {info.type:<8} {' '.join(info.operators)}")
        print("events:" if catalog.events else "events: none recorded yet")
        for event in catalog.events:
            props = ", ".join(f"{p.name} ({p.type})" for p in event.properties)
            print(f"  {event.name}" + (f"  where: {props}" if props else ""))
        print(f"subscription states: {', '.join(catalog.subscription_states)}")
        return 0
    if action == "estimate":
        async with factory() as session:
            if definition is None:
                definition = (await segments.get_segment(session, args.name)).definition
            estimate = await segments.estimate_reach(session, definition)
        if args.json:
            print_json(estimate)
        else:
            print(segments.describe_definition(definition) if isinstance(definition, dict) else "")
            _print_reach(estimate)
        return 0
    if action == "show":
        async with factory() as session:
            view = await segments.get_segment(session, args.name)
            estimate = await segments.estimate_reach(session, view.definition)
        if args.json:
            print_json({**plain(view), "reach": plain(estimate)})
            return 0
        print(view.name + (f" — {view.description}" if view.description else ""))
        print(f"  {view.summary}")
        print(f"  updated {view.updated_at:%Y-%m-%d %H:%M} UTC, created {view.created_at:%Y-%m-%d %H:%M} UTC")
        print("  definition:")
        for line in json.dumps(view.definition, indent=2, ensure_ascii=False).splitlines():
            print(f"    {line}")
        print(f"  reach at {estimate.computed_at:%Y-%m-%d %H:%M} UTC:")
        _print_reach(estimate, indent="    ")
        return 0
    async with factory() as session, session.begin():
        if action == "create":
            view = await segments.create_segment(session, name=args.name, definition=definition,
                                                 description=args.description, actor=ACTOR)
            verb = "created"
        elif action == "update":
            if definition is None and args.rename is None and args.description is None:
                raise UsageError("update: nothing to change; give --file, --rename or --description")
            view = await segments.update_segment(session, args.name, definition=definition, new_name=args.rename,
                                                 description=args.description, actor=ACTOR)
            verb = "updated"
        elif action == "duplicate":
            view = await segments.duplicate_segment(session, args.name, new_name=args.new_name, actor=ACTOR)
            verb = f"duplicated {args.name!r} as"
        else:
            await segments.delete_segment(session, args.name, actor=ACTOR)
            print(f"deleted segment {args.name!r}")
            return 0
    if args.json:
        print_json(view)
    else:
        print(f"{verb} segment {view.name!r}: {view.summary}")
    return 0


HANDLERS: dict[str, Handler] = {
    "segments": cmd_segments,
    "profiles": cmd_profiles,
    "api-keys": cmd_api_keys,
    "import": cmd_import,
}
