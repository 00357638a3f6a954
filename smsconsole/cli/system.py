"""The process and its setup: `serve` (the engine, headless), `config` and `db`."""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

from smsconsole import __version__
from smsconsole.cli.output import Commands, OperationFailed, add_actions, print_json
from smsconsole.cli.runtime import masked_url, with_runtime
from smsconsole.config import Config

MAX_WORKERS = 64


def register(commands: Commands) -> None:
    serve = commands.add_parser(
        "serve", help="run the engine headless (logs to stderr and the log file)",
        description="Run the engine headless. On PostgreSQL any number of `serve` processes (here or on other "
                    "machines) share the work: one holds the scheduler lease, every one dispatches and serves "
                    "the webhook listener.")
    serve.add_argument("--workers", type=_worker_count, metavar="N",
                       help="run N engine processes on this machine sharing the work and the listener's port "
                            "(PostgreSQL only; 1-64)")
    serve.set_defaults(func=cmd_serve)
    workers = commands.add_parser("workers", help="the live engine processes: host, pid, role, claimed and sent "
                                  "per minute")
    workers.add_argument("--json", action="store_true")
    workers.set_defaults(func=cmd_workers)
    cfg = commands.add_parser("config", help="print the effective configuration (secrets masked)")
    cfg.add_argument("--json", action="store_true")
    cfg.set_defaults(func=cmd_config)

    db = commands.add_parser("db", help="database schema")
    db.set_defaults(func=cmd_db)
    db_commands = add_actions(db, "db_command")
    db_commands.add_parser("upgrade", help="create or upgrade the schema")
    db_commands.add_parser("current", help="print the schema revision")


async def cmd_workers(config: Config, args: argparse.Namespace) -> int:
    from smsconsole.services.providers import list_providers  # lazy: start-up
    from smsconsole.services.workers import describe_binds, live_workers, summarize

    async def work(runtime: Any) -> int:
        async with runtime.factory() as session:
            workers = await live_workers(session)
            names = {view.id: view.name for view in await list_providers(session)}
        if args.json:
            print_json([{"host": w.host, "pid": w.pid, "role": w.role, "listening": w.listening,
                         "claimed_per_minute": w.claimed_per_minute, "sent_per_minute": w.sent_per_minute,
                         "started_at": w.started_at.isoformat(), "heartbeat_at": w.heartbeat_at.isoformat(),
                         "binds": {names.get(int(pid), pid): bind for pid, bind in (w.binds or {}).items()}}
                        for w in workers])
            return 0
        if not workers:
            print("no engine is running: start one with `smsconsole serve` (or open the console)")
            return 0
        print(f"{'HOST':<20} {'PID':>7}  {'ROLE':<9} {'CLAIMED/MIN':>11} {'SENT/MIN':>9}  {'STARTED (UTC)':<19}  LISTENING")
        for w in workers:
            print(f"{w.host[:20]:<20} {w.pid:>7}  {w.role:<9} {w.claimed_per_minute:>11,} {w.sent_per_minute:>9,}  "
                  f"{w.started_at:%Y-%m-%d %H:%M:%S}  {w.listening or '-'}")
        total = summarize(workers)
        print(f"{total.line}; {total.claimed_per_minute:,} claimed/min")
        for provider_id in sorted({int(pid) for w in workers for pid in (w.binds or {})}):  # SMPP binds
            print(f"bind {names.get(provider_id, provider_id)}: " + "; ".join(describe_binds(workers, provider_id)))
        return 0

    return await with_runtime(config, work)


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


def _worker_count(value: str) -> int:
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of workers, got {value!r}") from None
    if not 1 <= count <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"the number of workers must be 1 to {MAX_WORKERS}, got {count}")
    return count


async def cmd_serve(config: Config, args: argparse.Namespace) -> int:
    import logging  # lazy: start-up
    import os

    from smsconsole.engine.pool import POOL_MEMBER_ENV  # lazy: start-up
    from smsconsole.engine.runner import Engine
    from smsconsole.logs import setup_logging

    postgres = config.effective_database_url.startswith("postgresql")
    if args.workers is not None and not postgres:
        raise OperationFailed("--workers needs PostgreSQL: SQLite takes one writer at a time, so the engine runs "
                              "in one process (set database_url to a postgresql:// URL, or leave out --workers)")
    setup_logging(config.effective_log_file, config.log_level, to_stderr=True)
    log = logging.getLogger("smsconsole.serve")
    if args.workers is not None:
        return await _serve_pool(config, args.workers, log)

    async def work(runtime: Any) -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        # on PostgreSQL every serve process dispatches beside the lease holder
        engine = Engine(runtime.factory, runtime.box, config, workers=postgres and config.worker_dispatch,
                        reuse_port=bool(os.environ.get(POOL_MEMBER_ENV)))
        log.info("smsconsole %s serving %s (pid holder %s)", __version__,
                 masked_url(config), engine.holder.id)
        await engine.run(stop)
        log.info("shut down cleanly")
        return 0

    return await with_runtime(config, work, need_secrets=True, writes=True)


async def _serve_pool(config: Config, workers: int, log: Any) -> int:
    """Check the database once (schema, key, writable), then supervise the workers."""
    from smsconsole.engine.pool import Pool  # lazy: start-up

    async def check(runtime: Any) -> int:
        return 0

    await with_runtime(config, check, need_secrets=True, writes=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("smsconsole %s: %d workers on %s", __version__, workers, masked_url(config))
    return await Pool(workers, config.effective_database_url, config.effective_log_file, config.log_level).run(stop)
