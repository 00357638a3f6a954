"""`smsconsole send-test`: queue a test SMS and, unless another process runs the engine, run the
engine until the message settles."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any

from smsconsole.cli.output import Commands, OperationFailed, print_json
from smsconsole.cli.runtime import ACTOR, with_runtime
from smsconsole.config import Config


def register(commands: Commands) -> None:
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
    send.set_defaults(func=cmd_send_test)


async def cmd_send_test(config: Config, args: argparse.Namespace) -> int:
    from smsconsole.engine import lease  # lazy: start-up
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
        return _report(final, args)

    return await with_runtime(config, work, need_secrets=True)


def _report(final: Any, args: argparse.Namespace) -> int:
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
                  f"provider id {final.provider_message_id or '-'}; {final.segments} segment(s), {final.encoding}")
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
