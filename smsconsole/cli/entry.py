"""The command line's entry point: the top-level parser with each noun module's commands on it, and
`main`, which runs the chosen command (or the console) and turns a user's error into one line."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from dataclasses import replace

from smsconsole import __version__
from smsconsole.cli import (
    audience,
    campaigns,
    compliance,
    demo,
    groups,
    imports,
    message_templates,
    providers,
    replies,
    segments,
    send_test,
    stats,
    system,
    web,
)
from smsconsole.cli.output import Parser, error_line, fail
from smsconsole.config import Config, load_config

# Each command imports what it needs (the database layer, providers, the console) when it runs,
# so `--help` and the reading commands start quickly; see bench/startup.py.

# The nouns in the order `smsconsole --help` lists their commands; a new noun is one more module
# with a `register(commands)` that adds its parsers, each with its handler as `func`.
NOUNS = (system, providers, demo, audience, imports, message_templates, segments, groups, compliance, campaigns, replies,
         stats, send_test, web)


def build_parser() -> Parser:
    parser = Parser(prog="smsconsole", description="Terminal console for SMS campaigns through your own providers.")
    parser.add_argument("--version", action="version", version=f"smsconsole {__version__}")
    parser.add_argument("--database-url", help="database URL (default: SQLite file in the user data dir); "
                        "also SMSCONSOLE_DATABASE_URL")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")
    parser.add_argument("--demo", action="store_true",
                        help="use the demo database (created by 'smsconsole demo') instead of the configured one")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for noun in NOUNS:
        noun.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    config: Config | None = None
    args: argparse.Namespace | None = None
    try:
        args = parser.parse_args(argv)
        config = _load_config(args)
        if args.command is None:
            return _run_console(config)
        return asyncio.run(args.func(config, args))
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


def _load_config(args: argparse.Namespace) -> Config:
    """The configuration, with the demo database when --demo (or `demo`) names no other one."""
    config = load_config({"database_url": args.database_url, "log_level": args.log_level})
    if (args.demo or args.command == "demo") and not config.database_url:
        config = replace(config, database_url=f"sqlite:///{config.data_dir / 'demo.db'}")
    elif args.demo and args.database_url is None:
        config = replace(config, database_url=f"sqlite:///{config.data_dir / 'demo.db'}")
    return config


def _run_console(config: Config) -> int:
    from smsconsole.app import SmsConsoleApp  # lazy: start-up
    from smsconsole.logs import setup_logging

    setup_logging(config.effective_log_file, config.log_level)

    async def check() -> bool:  # fail in one line before the screen takes over the terminal
        from smsconsole.runtime import Runtime  # lazy: start-up

        runtime = await Runtime.open(config)
        await runtime.close()
        return runtime.read_only

    read_only = asyncio.run(check())
    SmsConsoleApp(config, run_engine=not read_only).run()  # a read-only database: attached, no engine
    return 0
