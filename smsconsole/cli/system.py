"""The process and its setup: `serve` (the engine, headless), `config` and `db`."""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

from smsconsole import __version__
from smsconsole.cli.output import Commands, add_actions, print_json
from smsconsole.cli.runtime import masked_url, with_runtime
from smsconsole.config import Config


def register(commands: Commands) -> None:
    serve = commands.add_parser("serve", help="run the engine headless (logs to stderr and the log file)")
    serve.set_defaults(func=cmd_serve)
    cfg = commands.add_parser("config", help="print the effective configuration (secrets masked)")
    cfg.add_argument("--json", action="store_true")
    cfg.set_defaults(func=cmd_config)

    db = commands.add_parser("db", help="database schema")
    db.set_defaults(func=cmd_db)
    db_commands = add_actions(db, "db_command")
    db_commands.add_parser("upgrade", help="create or upgrade the schema")
    db_commands.add_parser("current", help="print the schema revision")


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
    from smsconsole.db import open_database, schema_state  # lazy: start-up

    url = config.effective_database_url
    engine = await open_database(url, migrate=args.db_command == "upgrade")
    try:
        state = await schema_state(engine)
    finally:
        await engine.dispose()
    where = masked_url(config)
    if args.db_command == "upgrade":
        print(f"{where}: schema at revision {state.current} (head)")
    elif state.current is None:
        print(f"{where}: not initialized (run 'smsconsole db upgrade'; head is {state.head})")
    else:
        suffix = " (head)" if state.up_to_date else f" (head is {state.head}; run 'smsconsole db upgrade')"
        print(f"{where}: schema at revision {state.current}{suffix}")
    return 0


async def cmd_serve(config: Config, args: argparse.Namespace) -> int:
    import logging  # lazy: start-up

    from smsconsole.engine.runner import Engine  # lazy: start-up
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
