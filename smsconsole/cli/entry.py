"""The command line's entry point: the top-level parser, each noun module's commands on it, and
`main`, which runs the chosen command (or the console) and turns a user's error into one line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from smsconsole import __version__
from smsconsole.cli import groups, replies, stats
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
from smsconsole.cli.runtime import ACTOR, masked_url, with_runtime
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

    commands.add_parser("serve", help="run the engine headless (logs to stderr and the log file)")
    cfg = commands.add_parser("config", help="print the effective configuration (secrets masked)")
    cfg.add_argument("--json", action="store_true")

    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION", required=True, parser_class=Parser)
    db_commands.add_parser("upgrade", help="create or upgrade the schema")
    db_commands.add_parser("current", help="print the schema revision")

    providers = commands.add_parser("providers", help="connect and manage providers")
    p_commands = providers.add_subparsers(dest="providers_command", metavar="ACTION", required=True,
                                          parser_class=Parser)
    kinds = p_commands.add_parser("kinds", help="the provider kinds and their config fields")
    kinds.add_argument("--json", action="store_true")
    add = p_commands.add_parser(
        "add", help="add a provider: providers add KIND --name NAME [--base-url URL] [--FIELD VALUE ...]",
        description="Add a provider. FIELD flags are the kind's config fields (see 'providers kinds'). "
        "A secret may be given as env:NAME (read from the environment at use) or '-' (read from stdin).",
        add_help=True,
    )
    add.add_argument("kind")
    add.add_argument("fields", nargs=argparse.REMAINDER, help="--name NAME and the kind's --FIELD VALUE flags")
    presets = p_commands.add_parser("presets", help="Generic HTTP presets for documented gateways")
    presets.add_argument("--json", action="store_true")
    lst = p_commands.add_parser("list", help="list providers")
    lst.add_argument("--json", action="store_true")
    for action, text in (("show", "show one provider (secrets masked)"),
                         ("test", "test a provider's connection (sends nothing)")):
        sub = p_commands.add_parser(action, help=text)
        sub.add_argument("name")
        sub.add_argument("--json", action="store_true")
    upd = p_commands.add_parser(
        "update", help="change a provider: providers update NAME [--rename NEW] [--base-url URL] "
        "[--rate-limit N] [--sender-rate-limit N] [--FIELD VALUE ...]",
        description="Change the given settings of a provider; the others keep their values. FIELD flags are the "
        "kind's config fields (see 'providers kinds'). Rate limits are segments per second ('' for no limit).",
    )
    upd.add_argument("name")
    upd.add_argument("fields", nargs=argparse.REMAINDER, help="the settings to change")
    rm = p_commands.add_parser("remove", help="remove a provider")
    rm.add_argument("name")

    demo = commands.add_parser(
        "demo", help="create (or reset) the demo database: Sandbox provider, 10,000 profiles, months of events",
        description="Creates the demo database (the file demo.db in the data dir, or --database-url) and fills it. "
        "Open it with 'smsconsole --demo'.",
    )
    demo.add_argument("--yes", action="store_true", help="reset an existing demo database without asking")
    demo.add_argument("--profiles", type=int, default=10_000, help="how many profiles (default 10,000)")

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

    send = commands.add_parser("send-test", help="send a test SMS through the outbox and the engine")
    send_through = send.add_mutually_exclusive_group(required=True)
    send_through.add_argument("--provider", help="provider name")
    send_through.add_argument("--group", help="provider group name: its first healthy provider sends it")
    send.add_argument("--to", required=True, help="recipient, E.164 or national form (default region setting)")
    send.add_argument("--body", required=True, help="message text")
    send.add_argument("--smart-encoding", action="store_true", help="replace look-alike characters by GSM-7 ones")
    send.add_argument("--wait", action="store_true", help="wait for the outcome even when another process runs the engine")
    send.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the outcome (default 60)")
    send.add_argument("--json", action="store_true")
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


async def cmd_config(config: Config, args: argparse.Namespace) -> int:
    shown = config.masked()
    if args.json:
        print_json(shown)
    else:
        width = max(len(k) for k in shown)
        for key, value in shown.items():
            print(f"{key:<{width}}  {value}")
    return 0


async def cmd_db(config: Config, args: argparse.Namespace) -> int:
    from smsconsole.db import open_database, schema_state
    from smsconsole.secrets import mask_url

    url = config.effective_database_url
    engine = await open_database(url, migrate=args.db_command == "upgrade")
    try:
        state = await schema_state(engine)
    finally:
        await engine.dispose()
    where = mask_url(url)
    if args.db_command == "upgrade":
        print(f"{where}: schema at revision {state.current} (head)")
    elif state.current is None:
        print(f"{where}: not initialized (run 'smsconsole db upgrade'; head is {state.head})")
    else:
        suffix = " (head)" if state.up_to_date else f" (head is {state.head}; run 'smsconsole db upgrade')"
        print(f"{where}: schema at revision {state.current}{suffix}")
    return 0


async def cmd_serve(config: Config, args: argparse.Namespace) -> int:
    import logging

    from smsconsole.engine.runner import Engine
    from smsconsole.logs import setup_logging

    setup_logging(config.effective_log_file, config.log_level, to_stderr=True)
    log = logging.getLogger("smsconsole.serve")

    async def work(runtime: Any) -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        engine = Engine(runtime.factory, runtime.box, config)
        log.info("smsconsole %s serving %s (pid holder %s)", __version__,
                 masked_url(config), engine.holder.id)
        await engine.run(stop)
        log.info("shut down cleanly")
        return 0

    return await with_runtime(config, work, need_secrets=True, writes=True)


async def cmd_providers(config: Config, args: argparse.Namespace) -> int:
    from smsconsole.services import providers as svc

    action = args.providers_command
    if action == "kinds":
        kinds = svc.provider_kinds()
        if args.json:
            print_json(kinds)
            return 0
        for kind in kinds:
            print(f"{kind.kind}: {kind.display_name}" + (f" — {kind.description}" if kind.description else ""))
            for f in kind.fields:
                flags = ", ".join(x for x in ("required" if f.required else "", "secret" if f.secret else "") if x)
                choice = f" [{'|'.join(f.choices)}]" if f.choices else ""
                print(f"  {f.flag:<26}{f.label}{choice}" + (f" ({flags})" if flags else "")
                      + (f": {f.help}" if f.help else ""))
            print(f"  {'--base-url':<26}override {kind.default_base_url or 'the endpoint'}")
        return 0
    if action == "presets":
        from smsconsole.services.providers import PRESETS

        if args.json:
            print_json(PRESETS)
            return 0
        for p in PRESETS:
            print(f"{p.key}: {p.name} — {p.description}")
            for need in p.needs:
                print(f"    you fill in: {need}")
            if p.adapter:
                print(f"    (the dedicated '{p.adapter}' provider also handles receipts and errors)")
        print("use one with: smsconsole providers add generic --preset KEY --name NAME [--FIELD VALUE ...]")
        return 0

    async def work(runtime: Any) -> int:
        factory, box = runtime.factory, runtime.box
        if action == "add":
            kind = svc.kind_view(args.kind)
            name, base_url, values, rates = _parse_fields(kind, args.fields)
            async with factory() as session, session.begin():
                view = await svc.create_provider(session, box, kind=kind.kind, name=name, values=values,
                                                 base_url=base_url, actor=ACTOR, **rates)
            print(f"added provider {view.name} ({view.display_name}); test it with: smsconsole providers test {view.name}")
            return 0
        if action == "update":
            async with factory() as session:
                current = await svc.get_provider(session, args.name)
                values = await svc.provider_values(session, box, args.name)
            kind = svc.kind_view(current.kind)
            new_name, base_url, changed, rates = _parse_fields(kind, args.fields, update=True)
            if new_name is None and base_url is None and not changed and not rates:
                raise UsageError("update: nothing to change; give --rename, --base-url, --rate-limit, "
                                 "--sender-rate-limit or a field of the kind")
            async with factory() as session, session.begin():
                view = await svc.update_provider(
                    session, box, args.name, values={**values, **changed}, new_name=new_name,
                    base_url=current.base_url if base_url is None else base_url, actor=ACTOR, **rates)
            limits = f"rate limit {_rate(view.rate_limit)}, per sender {_rate(view.sender_rate_limit)}"
            print(f"updated provider {view.name} ({limits}); test it with: smsconsole providers test {view.name}")
            return 0
        if action == "list":
            async with factory() as session:
                views = await svc.list_providers(session)
            if args.json:
                print_json(views)
            elif not views:
                print("no providers yet; add one with: smsconsole providers add sandbox --name sandbox")
            else:
                print(f"{'NAME':<20} {'KIND':<10} {'ENABLED':<8} HEALTH")
                for v in views:
                    print(f"{v.name:<20} {v.kind:<10} {'yes' if v.enabled else 'no':<8} {v.health}"
                          + (f" — {v.health_detail}" if v.health_detail else ""))
            return 0
        if action == "show":
            async with factory() as session:
                view = await svc.get_provider(session, args.name)
            if args.json:
                print_json(view)
            else:
                print(f"{view.name} ({view.display_name})")
                print(f"  base url: {view.base_url or svc.kind_view(view.kind).default_base_url or '-'}")
                print(f"  enabled:  {'yes' if view.enabled else 'no'}")
                print(f"  health:   {view.health}" + (f" — {view.health_detail}" if view.health_detail else ""))
                print(f"  rate limit: {_rate(view.rate_limit)}; per sender: {_rate(view.sender_rate_limit)}")
                for key, value in view.settings.items():
                    shown = value.replace("\n", "\n      ") if isinstance(value, str) else value
                    print(f"  {key}: {shown}")
                from smsconsole.secrets import SecretError

                async with factory() as session:
                    try:
                        preview = svc.request_preview(await svc.load_spec(session, box, args.name))
                    except SecretError:  # the key cannot open its secrets: `providers update` re-enters them
                        preview = None
                if preview:
                    print("  request preview (secrets masked):")
                    print("    " + preview.replace("\n", "\n    "))
            return 0
        if action == "test":
            import httpx

            async with httpx.AsyncClient(timeout=config.send_timeout_seconds) as client:
                check = await svc.test_provider(factory, box, args.name, client, ACTOR)
            if args.json:
                print_json(check)
            else:
                print(f"{'not checked' if not check.checked else 'ok' if check.ok else 'failed'}: {check.detail}")
            return 0 if check.ok else EXIT_FAILED
        if action == "remove":
            async with factory() as session, session.begin():
                await svc.remove_provider(session, args.name, ACTOR)
            print(f"removed provider {args.name}")
            return 0
        raise UsageError(f"unknown providers action {action!r}")

    return await with_runtime(config, work, need_secrets=action in ("add", "test"))


def _rate(value: float | None) -> str:
    return f"{value:g} segments/s" if value else "none"


def _parse_fields(kind: Any, tokens: list[str], *, update: bool = False,
                  ) -> tuple[str, str | None, dict[str, str], dict[str, str]]:
    """Parse --name (--rename when updating), --base-url, --rate-limit, --sender-rate-limit and
    the kind's --FIELD VALUE flags. The rates are returned only when given."""
    parser = Parser(prog=f"smsconsole providers {'update' if update else 'add'} {kind.kind}", add_help=False)
    name_flag = "--rename" if update else "--name"
    parser.add_argument(name_flag, dest="name", required=not update)
    parser.add_argument("--base-url")
    parser.add_argument("--rate-limit")
    parser.add_argument("--sender-rate-limit")
    if kind.kind == "generic" and not update:
        parser.add_argument("--preset")
    for f in kind.fields:
        parser.add_argument(f.flag, dest=f.name)
    known = ", ".join([name_flag, "--base-url", "--rate-limit", "--sender-rate-limit",
                       *(["--preset"] if kind.kind == "generic" and not update else []),
                       *(f.flag for f in kind.fields)])
    parsed, unknown = parser.parse_known_args(tokens)
    if unknown:
        raise UsageError(f"unknown option {unknown[0]!r} for kind {kind.kind}; its options: {known}")
    values: dict[str, str] = {}
    if getattr(parsed, "preset", None):
        from smsconsole.services.providers import PRESETS, preset

        try:
            values.update(preset(parsed.preset).values)
        except KeyError:
            raise UsageError(f"--preset: no preset {parsed.preset!r}; presets: "
                             f"{', '.join(p.key for p in PRESETS)}") from None
    for f in kind.fields:
        value = getattr(parsed, f.name)
        if value is None:
            continue
        if value == "-" and f.secret:
            value = sys.stdin.readline().rstrip("\n")
        values[f.name] = value.replace("\\n", "\n") if f.kind == "multiline" else value
    rates = {key: getattr(parsed, key) for key in ("rate_limit", "sender_rate_limit")
             if getattr(parsed, key) is not None}
    return parsed.name, parsed.base_url, values, rates


async def cmd_send_test(config: Config, args: argparse.Namespace) -> int:
    from smsconsole.engine import lease
    from smsconsole.engine.runner import Engine
    from smsconsole.logs import setup_logging
    from smsconsole.services import messages, settings

    setup_logging(config.effective_log_file, config.log_level)

    async def work(runtime: Any) -> int:
        factory = runtime.factory
        async with factory() as session, session.begin():
            region = (await settings.get_settings(session))["default_region"]
            queued = await messages.queue_test_message(
                session, provider_name=args.provider or "", group_name=args.group or "", to=args.to,
                body=args.body, default_region=region,
                actor=ACTOR, smart_encoding=args.smart_encoding,
            )
        async with factory() as session:
            holder = await lease.current(session)
        engine_task = None
        stop = asyncio.Event()
        if holder is None or not holder.alive:
            engine = Engine(runtime.factory, runtime.box, config)
            engine_task = asyncio.create_task(engine.run(stop))
        elif not args.wait:
            if args.json:
                print_json(queued)
            else:
                print(f"queued: message {queued.id} to {queued.to_number}; the engine on {holder.host} "
                      f"(pid {holder.pid}) will send it")
            return 0
        try:
            final = await _wait_settled(factory, queued.id, args.timeout)
        finally:
            stop.set()
            if engine_task is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(engine_task, timeout=10)
        if args.json:
            print_json(final)
        if final.retrying:
            due = f"{final.next_attempt_at:%H:%M:%S} UTC" if final.next_attempt_at else "soon"
            raise OperationFailed(f"message {final.id} is still retrying after {args.timeout:g}s: next attempt at "
                                  f"{due}; {final.shown_reason or 'the last attempt failed'}")
        if not final.settled:
            raise OperationFailed(f"message {final.id} is still {final.state} after {args.timeout:g}s")
        if final.state == "sent" or final.state == "delivered":
            if not args.json:
                print(f"{final.state}: message {final.id} to {final.to_number} via {final.provider_name}; "
                      f"provider id {final.provider_message_id or '-'}; {final.segments} segment(s), {final.encoding}")
            return 0
        detail = f"[{final.error_code}] " if final.error_code else ""
        raise OperationFailed(f"{final.state}: message {final.id} to {final.to_number}: {detail}{final.reason or ''}".rstrip(": "))

    return await with_runtime(config, work, need_secrets=True)


async def _wait_settled(factory: Any, message_id: int, timeout: float) -> Any:
    from smsconsole.services import messages

    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with factory() as session:
            view = await messages.get_message(session, message_id)
        if view.settled or asyncio.get_running_loop().time() >= deadline:
            return view
        await asyncio.sleep(0.2)


async def cmd_demo(config: Config, args: argparse.Namespace) -> int:
    from smsconsole.secrets import mask_url
    from smsconsole.services import demo

    if args.profiles < 1:
        raise UsageError("--profiles must be at least 1")

    async def work(runtime: Any) -> int:
        async with runtime.factory() as session:
            used = await demo.has_data(session)
        where = mask_url(config.effective_database_url)
        if used:
            if not args.yes:
                if not sys.stdin.isatty():
                    raise UsageError(f"{where} already has data; pass --yes to reset it")
                answer = input(f"{where} already has data. Erase it and create the demo again? [y/N] ")
                if answer.strip().lower() not in ("y", "yes"):
                    print("left unchanged")
                    return EXIT_FAILED
            async with runtime.factory() as session, session.begin():
                await demo.reset(session)

        started = time.monotonic()
        live = sys.stderr.isatty()

        def progress(stage: str, done: int, total: int) -> None:
            """A counter that updates in place on a terminal; a line per finished stage anywhere."""
            line = f"{stage}: {done:,}/{total:,} ({time.monotonic() - started:.0f} s)"
            if live:
                print(f"\r{line}   ", end="\n" if done >= total else "", file=sys.stderr, flush=True)
            elif done >= total:
                print(line, file=sys.stderr, flush=True)

        summary = await demo.create_demo(runtime.factory, runtime.box, profiles_count=args.profiles,
                                         progress=progress)
        print(f"demo ready in {where}: {summary.profiles:,} profiles, {summary.events:,} events, "
              f"{summary.messages:,} messages with {summary.receipts:,} receipts, {summary.replies:,} replies "
              f"({summary.opt_outs:,} STOP), provider '{summary.provider}'")
        open_hint = "smsconsole --demo" if args.database_url is None else f"smsconsole --database-url {where}"
        print(f"open it with: {open_hint}")
        return 0

    return await with_runtime(config, work)


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
    "config": cmd_config,
    "db": cmd_db,
    "serve": cmd_serve,
    "providers": cmd_providers,
    "segments": cmd_segments,
    "send-test": cmd_send_test,
    "demo": cmd_demo,
    "profiles": cmd_profiles,
    "api-keys": cmd_api_keys,
    "import": cmd_import,
}
