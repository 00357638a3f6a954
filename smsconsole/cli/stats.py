"""`smsconsole stats`: delivery per provider, provider health and throughput."""

from __future__ import annotations

import argparse
from typing import Any

from smsconsole.cli.output import Commands, print_json
from smsconsole.cli.runtime import with_runtime
from smsconsole.config import Config


def register(commands: Commands) -> None:
    stats = commands.add_parser("stats", help="delivery per provider (sent, delivered, failed, replies …), "
                                "provider health and throughput")
    stats.add_argument("--window", choices=("hour", "today"), default="hour", help="the last hour (default) or today")
    stats.add_argument("--campaign", metavar="CAMPAIGN",
                       help="only this campaign's messages (and replies to them): its Campaign ID (C12 or 12) or name")
    stats.add_argument("--json", action="store_true")
    stats.set_defaults(func=cmd_stats)


async def cmd_stats(config: Config, args: argparse.Namespace) -> int:
    from smsconsole.services.stats import delivery_stats, describe_rate, find_campaign_id  # lazy: start-up

    async def work(runtime: Any) -> int:
        async with runtime.factory() as session:
            campaign_id = await find_campaign_id(session, args.campaign) if args.campaign else None
            result = await delivery_stats(session, args.window, campaign_id=campaign_id)
        if args.json:
            payload = {
                "window": result.window, "since": result.since, "campaign": result.campaign,
                "total": {**_counts(result.total)},
                "providers": {name: _counts(c) for name, c in result.by_provider.items()},
                "campaigns": {code: {"name": result.campaign_names.get(code, ""), **_counts(c)}
                              for code, c in result.by_campaign.items()},
                "per_minute": result.per_minute,
                "health": result.providers,
            }
            print_json(payload)
            return 0
        label = "last hour" if result.window == "hour" else "today (UTC)"
        only = f", campaign {result.campaign} {result.campaign_names.get(result.campaign, '')}".rstrip() \
            if result.campaign else ""
        print(f"Delivery{only}, {label} (messages queued since {result.since:%Y-%m-%d %H:%M} UTC)")
        print(f"{'PROVIDER':<16} {'SENT':>6} {'DELIV':>6} {'UNDEL':>6} {'FAILED':>6} {'UNKN':>6} {'REPL':>6} "
              f"{'DELIVERED/SETTLED':>17}  HEALTH / CIRCUIT")
        health = {p.name: p for p in result.providers}
        for name, c in [*result.by_provider.items(), ("total", result.total)]:
            rate = describe_rate(c)
            h = health.get(name)
            state = f"{h.health} / {h.circuit_state}" if h else ""
            print(f"{name[:16]:<16} {c.sent:>6} {c.delivered:>6} {c.undelivered:>6} {c.failed:>6} {c.unknown:>6} "
                  f"{c.replies:>6} {rate:>17}  {state}")
        if result.by_campaign:
            print(f"{'CAMPAIGN':<16} {'SENT':>6} {'DELIV':>6} {'UNDEL':>6} {'FAILED':>6} {'UNKN':>6} {'REPL':>6} "
                  f"{'DELIVERED/SETTLED':>17}  SUPPRESSED")
            for code, c in result.by_campaign.items():
                name = f"{code} {result.campaign_names.get(code, '')}".strip()
                print(f"{name[:16]:<16} {c.sent:>6} {c.delivered:>6} {c.undelivered:>6} {c.failed:>6} "
                      f"{c.unknown:>6} {c.replies:>6} {describe_rate(c):>17}  {c.suppressed}")
        print(f"sent per minute, last 60 min: {sum(result.per_minute)} total, peak {max(result.per_minute)}")
        print(f"rate: delivered ÷ settled (delivered, undelivered or failed); {result.total.awaiting_receipt:,} "
              f"awaiting a receipt, {result.total.waiting:,} waiting to be sent")
        return 0

    return await with_runtime(config, work)


def _counts(counts: Any) -> dict[str, Any]:
    return {"waiting": counts.waiting, "sent": counts.sent, "delivered": counts.delivered,
            "undelivered": counts.undelivered, "failed": counts.failed, "unknown": counts.unknown,
            "suppressed": counts.suppressed, "replies": counts.replies, "settled": counts.settled,
            "awaiting_receipt": counts.awaiting_receipt, "delivery_rate": counts.delivery_rate}
