"""Seeing a queued test message through (shared by `send-test` and `campaigns test`): unless
another live process holds the engine lease, run the engine in this process until the message
settles; report the outcome in one line (exit 1 when it failed, is still retrying or unsettled)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any

from smsconsole.cli.output import OperationFailed, print_json
from smsconsole.config import Config


async def deliver(config: Config, runtime: Any, queued: Any, args: argparse.Namespace) -> int:
    """`queued` (a MessageView) sent by this process's engine, or by the engine already running
    (waited for only with --wait). `args` carries json, wait and timeout."""
    from smsconsole.engine import lease  # lazy: start-up
    from smsconsole.engine.runner import Engine

    factory = runtime.factory
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
    return report(final, args)


def report(final: Any, args: argparse.Namespace) -> int:
    """The settled message: 0 when sent or delivered; still retrying, unsettled or failed is
    OperationFailed (exit 1) naming why."""
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
                  f"provider id {final.provider_message_id or '-'}; {final.segments} segment(s), {final.encoding}"
                  + (f"; cost {final.price_text}" if final.price_text else ""))
        return 0
    detail = f"[{final.error_code}] " if final.error_code else ""
    raise OperationFailed(f"{final.state}: message {final.id} to {final.to_number}: {detail}{final.reason or ''}".rstrip(": "))


async def _wait_settled(factory: Any, message_id: int, timeout: float) -> Any:
    from smsconsole.services import messages  # lazy: start-up

    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with factory() as session:
            view = await messages.get_message(session, message_id)
        if view.settled or asyncio.get_running_loop().time() >= deadline:
            return view
        await asyncio.sleep(0.2)


def add_delivery_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wait", action="store_true", help="wait for the outcome even when another process runs the engine")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the outcome (default 60)")
