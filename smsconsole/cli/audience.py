"""`smsconsole profiles`: find profiles and show one (phone, subscription, properties, consent
history, latest events)."""

from __future__ import annotations

import argparse
from typing import Any

from smsconsole.cli.output import Commands, add_actions, print_json
from smsconsole.cli.runtime import with_runtime
from smsconsole.config import Config


def register(commands: Commands) -> None:
    profiles = commands.add_parser("profiles", help="find and show profiles")
    actions = add_actions(profiles, "profiles_command")
    show = actions.add_parser("show", help="one profile by phone (any format) or user id")
    show.add_argument("key", metavar="PHONE|ID")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_show)
    search = actions.add_parser("search", help="search by phone, user id or name")
    search.add_argument("query")
    search.add_argument("--json", action="store_true")
    search.set_defaults(func=cmd_search)


async def _default_region(session: Any) -> str | None:
    from smsconsole.services import settings  # lazy: start-up

    return (await settings.get_settings(session))["default_region"] or None


async def cmd_search(config: Config, args: argparse.Namespace) -> int:
    from smsconsole.services import profiles  # lazy: start-up

    async def work(runtime: Any) -> int:
        async with runtime.factory() as session:
            region = await _default_region(session)
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

    return await with_runtime(config, work)


async def cmd_show(config: Config, args: argparse.Namespace) -> int:
    from smsconsole.services import profiles  # lazy: start-up

    async def work(runtime: Any) -> int:
        async with runtime.factory() as session:
            region = await _default_region(session)
            detail = await profiles.get_profile(session, args.key, default_region=region, event_limit=20)
        if args.json:
            print_json(detail)
        else:
            _print_profile(detail)
        return 0

    return await with_runtime(config, work)


def _print_profile(detail: Any) -> None:
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


def _display(value: Any) -> str:
    """A property value as people write it: lists comma-separated, booleans lower-case."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "(empty list)"
    return str(value)
