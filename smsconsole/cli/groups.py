"""`smsconsole groups`: provider groups, their priority order, countries and the default."""

from __future__ import annotations

import argparse
from typing import Any

from smsconsole.cli.output import EXIT_FAILED, Commands, UsageError, add_actions, confirmed, plain, print_json
from smsconsole.cli.runtime import ACTOR, with_runtime
from smsconsole.config import Config


def register(commands: Commands) -> None:
    groups = commands.add_parser(
        "groups", help="provider groups: priority order, failover, destination countries, the default",
        description="A group lists up to 10 providers in priority order; a message sent through it goes to the "
        "first healthy one. A message naming no group uses the group of its destination country, else the default.",
    )
    groups.set_defaults(func=cmd_groups)
    g = add_actions(groups, "groups_command")
    lst = g.add_parser("list", help="groups with their providers and health")
    lst.add_argument("--json", action="store_true")
    show = g.add_parser("show", help="one group: providers in priority order with their health")
    show.add_argument("name")
    show.add_argument("--json", action="store_true")
    create = g.add_parser("create", help="create a group")
    create.add_argument("name")
    create.add_argument("--providers", required=True, metavar="A,B,C", help="provider names, highest priority first")
    create.add_argument("--countries", metavar="IN,GB", help="destination countries routed through this group")
    create.add_argument("--default", action="store_true", help="make it the default group")
    create.add_argument("--json", action="store_true")
    upd = g.add_parser("update", help="rename a group, or replace its providers or countries")
    upd.add_argument("name")
    upd.add_argument("--rename", metavar="NEW_NAME")
    upd.add_argument("--providers", metavar="A,B,C", help="the new list, highest priority first")
    upd.add_argument("--countries", metavar="IN,GB", help="the new countries ('' for none)")
    upd.add_argument("--json", action="store_true")
    move = g.add_parser("move", help="move a provider up or down in a group's priority order",
                        usage="%(prog)s NAME PROVIDER {up,down} | NAME PROVIDER --to N")
    move.add_argument("name")
    move.add_argument("provider")
    move.add_argument("direction", nargs="?", choices=("up", "down"))
    move.add_argument("--to", type=int, metavar="N", help="the priority to move to (1 is tried first)")
    move.add_argument("--json", action="store_true")
    default = g.add_parser("set-default", help="make a group the default")
    default.add_argument("name")
    delete = g.add_parser("delete", help="delete a group (the default only when it is the last one)")
    delete.add_argument("name")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def _rate(value: float | None) -> str:
    return f"{value:g}/s" if value else "no limit"


def _member_line(member: Any) -> str:
    status = member.status()
    if status == "out of rotation" and member.circuit_until is not None:
        status += f" until {member.circuit_until:%Y-%m-%d %H:%M:%S} UTC"
    limits = _rate(member.rate_limit) + (f", {_rate(member.sender_rate_limit)} per sender"
                                         if member.sender_rate_limit else "")
    return f"  {member.position:>2}. {member.provider_name:<20} {member.kind:<10} {status:<16} {limits}"


def _print_group(view: Any) -> None:
    mark = " (default)" if view.is_default else ""
    countries = ", ".join(view.countries) or "any (no countries of its own)"
    print(f"{view.name}{mark} — countries: {countries}")
    for member in view.members:
        print(_member_line(member))


def _group_json(view: Any) -> dict[str, Any]:
    data = plain(view)
    for member, shown in zip(view.members, data["members"], strict=True):
        shown["status"] = member.status()
    return data


async def cmd_groups(config: Config, args: argparse.Namespace) -> int:
    from smsconsole.services import groups as svc  # lazy: start-up

    action = args.groups_command
    if action == "move" and (args.direction is None) == (args.to is None):
        raise UsageError("move: give up, down or --to N")
    if action == "update" and args.rename is None and args.providers is None and args.countries is None:
        raise UsageError("update: nothing to change; give --rename, --providers or --countries")
    if action == "delete" and not args.yes and not confirmed(
            f"Delete group {args.name!r}? [y/N] ", f"delete group {args.name!r}: add --yes to confirm"):
        print("nothing deleted")
        return EXIT_FAILED

    async def work(runtime: Any) -> int:
        factory = runtime.factory
        if action in ("list", "show"):
            async with factory() as session:
                views = (await svc.list_groups(session) if action == "list"
                         else [await svc.get_group(session, args.name)])
            if args.json:
                shown = [_group_json(v) for v in views]
                print_json(shown if action == "list" else shown[0])
            elif not views:
                print("no groups yet; create one with: smsconsole groups create NAME --providers A,B")
            else:
                for view in views:
                    _print_group(view)
            return 0
        async with factory() as session, session.begin():
            if action == "create":
                view = await svc.create_group(session, name=args.name, providers=args.providers,
                                              countries=args.countries, is_default=args.default, actor=ACTOR)
                verb = "created"
            elif action == "update":
                view = await svc.update_group(session, args.name, new_name=args.rename,
                                              providers=args.providers, countries=args.countries, actor=ACTOR)
                verb = "updated"
            elif action == "move":
                step = {"up": -1, "down": 1}.get(args.direction or "")
                view = await svc.move_member(session, args.name, args.provider, by=step, to=args.to,
                                             actor=ACTOR)
                verb = "reordered"
            elif action == "set-default":
                view = await svc.set_default_group(session, args.name, actor=ACTOR)
                print(f"{view.name} is now the default group")
                return 0
            else:
                await svc.delete_group(session, args.name, actor=ACTOR)
                print(f"deleted group {args.name!r}")
                return 0
        if getattr(args, "json", False):
            print_json(_group_json(view))
        else:
            print(f"{verb} group {view.name!r}" + (" (default)" if view.is_default else "") + ": "
                  + " > ".join(view.provider_names)
                  + (f"; countries {', '.join(view.countries)}" if view.countries else ""))
        return 0

    return await with_runtime(config, work)

