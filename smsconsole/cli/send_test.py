"""`smsconsole send-test`: queue a test SMS and, unless another process runs the engine, run the
engine until the message settles."""

from __future__ import annotations

import argparse
from typing import Any

from smsconsole.cli.delivery import add_delivery_flags, deliver
from smsconsole.cli.output import Commands
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
    add_delivery_flags(send)
    send.add_argument("--json", action="store_true")
    send.set_defaults(func=cmd_send_test)


async def cmd_send_test(config: Config, args: argparse.Namespace) -> int:
    from smsconsole.logs import setup_logging  # lazy: start-up
    from smsconsole.services import messages, settings
    from smsconsole.services.compliance.views import test_send_price

    setup_logging(config.effective_log_file, config.log_level)

    async def work(runtime: Any) -> int:
        factory = runtime.factory
        async with factory() as session, session.begin():
            region = (await settings.get_settings(session))["default_region"]
            price = await test_send_price(session, to=args.to, body=args.body, default_region=region,
                                          provider_name=args.provider or "", group_name=args.group or "",
                                          smart_encoding=args.smart_encoding)
            queued = await messages.queue_test_message(
                session, provider_name=args.provider or "", group_name=args.group or "", to=args.to,
                body=args.body, default_region=region,
                actor=ACTOR, smart_encoding=args.smart_encoding,
            )
        if price is not None and not args.json:
            print(f"price: {price.line}", flush=True)
        return await deliver(config, runtime, queued, args)

    return await with_runtime(config, work, need_secrets=True)

