"""`smsconsole demo`: create (or reset) the demo database and fill it."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from smsconsole.cli.output import EXIT_FAILED, Commands, UsageError, confirmed
from smsconsole.cli.runtime import masked_url, with_runtime
from smsconsole.config import Config


def register(commands: Commands) -> None:
    demo = commands.add_parser(
        "demo", help="create (or reset) the demo database: Sandbox provider, 10,000 profiles, months of events",
        description="Creates the demo database (the file demo.db in the data dir, or --database-url) and fills it. "
        "Open it with 'smsconsole --demo'.",
    )
    demo.add_argument("--yes", action="store_true", help="reset an existing demo database without asking")
    demo.add_argument("--profiles", type=int, default=10_000, help="how many profiles (default 10,000)")
    demo.set_defaults(func=cmd_demo)


async def cmd_demo(config: Config, args: argparse.Namespace) -> int:
    from smsconsole.services import demo  # lazy: start-up

    if args.profiles < 1:
        raise UsageError("--profiles must be at least 1")

    async def work(runtime: Any) -> int:
        async with runtime.factory() as session:
            used = await demo.has_data(session)
        where = masked_url(config)
        if used:
            if not args.yes and not confirmed(f"{where} already has data. Erase it and create the demo again? [y/N] ",
                                              f"{where} already has data; pass --yes to reset it"):
                print("left unchanged")
                return EXIT_FAILED
            async with runtime.factory() as session, session.begin():
                await demo.reset(session)
        summary = await demo.create_demo(runtime.factory, runtime.box, profiles_count=args.profiles,
                                         progress=_progress())
        print(f"demo ready in {where}: {summary.profiles:,} profiles, {summary.events:,} events, "
              f"{summary.messages:,} messages with {summary.receipts:,} receipts, {summary.replies:,} replies "
              f"({summary.opt_outs:,} STOP), provider '{summary.provider}'")
        open_hint = "smsconsole --demo" if args.database_url is None else f"smsconsole --database-url {where}"
        if summary.campaign:
            print(f"A/B campaign {summary.campaign}: {summary.campaign_messages:,} rows, {summary.conversions:,} "
                  f"conversions; its report: {open_hint} campaigns report {summary.campaign}")
        print(f"open it with: {open_hint}")
        return 0

    return await with_runtime(config, work)


def _progress() -> Callable[[str, int, int], None]:
    """A counter that updates in place on a terminal; a line per finished stage anywhere."""
    started = time.monotonic()
    live = sys.stderr.isatty()

    def progress(stage: str, done: int, total: int) -> None:
        line = f"{stage}: {done:,}/{total:,} ({time.monotonic() - started:.0f} s)"
        if live:
            print(f"\r{line}   ", end="\n" if done >= total else "", file=sys.stderr, flush=True)
        elif done >= total:
            print(line, file=sys.stderr, flush=True)

    return progress
