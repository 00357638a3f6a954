"""`smsconsole segments`: saved segments from a JSON definition; reach, duplicate, delete, and the
catalog of what a condition can use."""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from smsconsole.cli.output import (
    EXIT_FAILED,
    Commands,
    Handler,
    UsageError,
    add_actions,
    confirmed,
    plain,
    print_json,
)
from smsconsole.cli.runtime import ACTOR, with_runtime
from smsconsole.config import Config

# One action on segments: (session factory, args, the definition read from --file or None) → exit code.
Action = Callable[[Any, argparse.Namespace, Any], Awaitable[int]]


def register(commands: Commands) -> None:
    segments = commands.add_parser(
        "segments", help="saved segments: create from a JSON definition, estimate reach, duplicate, delete",
        description="A definition is JSON: {\"match\": \"all\"|\"any\", \"conditions\": [...]}; see README "
        "'Segments' for conditions and operators, and 'segments catalog' for the properties and events you can use.",
    )
    actions = add_actions(segments, "segments_command")
    s_list = actions.add_parser("list", help="list saved segments")
    s_list.add_argument("--reach", action="store_true", help="also estimate each segment's reach")
    s_list.add_argument("--json", action="store_true")
    s_list.set_defaults(func=_command(_list))
    s_show = actions.add_parser("show", help="a segment's definition and its reach now")
    s_show.add_argument("name")
    s_show.add_argument("--json", action="store_true")
    s_show.set_defaults(func=_command(_show))
    s_create = actions.add_parser("create", help="save a segment from a definition file (- for stdin)")
    s_create.add_argument("name")
    s_create.add_argument("--file", required=True, metavar="PATH", help="the definition, JSON (- reads stdin)")
    s_create.add_argument("--description")
    s_create.add_argument("--json", action="store_true")
    s_create.set_defaults(func=_command(_create))
    s_update = actions.add_parser("update", help="change a segment's definition, name or description")
    s_update.add_argument("name")
    s_update.add_argument("--file", metavar="PATH", help="a new definition, JSON (- reads stdin)")
    s_update.add_argument("--rename", metavar="NEW_NAME")
    s_update.add_argument("--description", help="a new description ('' clears it)")
    s_update.add_argument("--json", action="store_true")
    s_update.set_defaults(func=_command(_update))
    s_dup = actions.add_parser("duplicate", help="copy a segment (default name: 'NAME (copy)')")
    s_dup.add_argument("name")
    s_dup.add_argument("--as", dest="new_name", metavar="NEW_NAME")
    s_dup.add_argument("--json", action="store_true")
    s_dup.set_defaults(func=_command(_duplicate))
    s_del = actions.add_parser("delete", help="delete a segment (not while a scheduled campaign uses it)")
    s_del.add_argument("name")
    s_del.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    s_del.set_defaults(func=cmd_delete)
    s_est = actions.add_parser("estimate", help="reach of a saved segment, or of a definition file")
    s_est_target = s_est.add_mutually_exclusive_group(required=True)
    s_est_target.add_argument("name", nargs="?", help="a saved segment")
    s_est_target.add_argument("--file", metavar="PATH", help="a definition, JSON (- reads stdin)")
    s_est.add_argument("--json", action="store_true")
    s_est.set_defaults(func=_command(_estimate))
    s_cat = actions.add_parser("catalog", help="the fields, properties (with types and operators) and events")
    s_cat.add_argument("--json", action="store_true")
    s_cat.set_defaults(func=_command(_catalog))


def _command(action: Action) -> Handler:
    """`action` as a command's handler."""
    return functools.partial(_run, action=action)


async def _run(config: Config, args: argparse.Namespace, *, action: Action) -> int:
    """Read the --file definition first (a bad one is a usage error before the database opens),
    then run `action`; its ValidationError is named by the definition's paths and the flags."""
    from smsconsole.services.errors import ValidationError  # lazy: start-up

    definition = _read_definition(args.file) if getattr(args, "file", None) else None

    async def work(runtime: Any) -> int:
        try:
            return await action(runtime.factory, args, definition)
        except ValidationError as exc:
            raise UsageError(_definition_problems(exc.problems, args.segments_command)) from None

    return await with_runtime(config, work)


async def cmd_delete(config: Config, args: argparse.Namespace) -> int:
    if not args.yes and not confirmed(f"Delete segment {args.name!r}? This cannot be undone. [y/N] ",
                                      f"delete segment {args.name!r}: add --yes to confirm"):
        print("nothing deleted")
        return EXIT_FAILED
    return await _run(config, args, action=_delete)


async def _list(factory: Any, args: argparse.Namespace, definition: Any) -> int:
    from smsconsole.services import segments  # lazy: start-up

    async with factory() as session:
        views = await segments.list_segments(session)
        reach = {v.name: await segments.estimate_reach(session, v.definition) for v in views} if args.reach else {}
    if args.json:
        print_json([{**plain(v), **({"reach": plain(reach[v.name])} if v.name in reach else {})}
                    for v in views])
    elif not views:
        print("no segments; create one with: smsconsole segments create NAME --file definition.json")
    else:
        for v in views:
            counts = (f"  [{reach[v.name].qualified:,} qualify, {reach[v.name].reachable:,} reachable]"
                      if v.name in reach else "")
            print(f"{v.name}{counts}\n    {v.summary}")
    return 0


async def _catalog(factory: Any, args: argparse.Namespace, definition: Any) -> int:
    from smsconsole.services import segments  # lazy: start-up

    async with factory() as session:
        catalog = await segments.segment_catalog(session)
    if args.json:
        print_json(catalog)
        return 0
    print("fields:")
    for info in catalog.fields:
        print(f"  {info.name:<24} {info.type:<8} {' '.join(info.operators)}")
    print("properties:" if catalog.properties else "properties: none yet (import profiles first)")
    for info in catalog.properties:
        print(f"  {info.name:<24} {info.type:<8} {' '.join(info.operators)}")
    print("events:" if catalog.events else "events: none recorded yet")
    for event in catalog.events:
        props = ", ".join(f"{p.name} ({p.type})" for p in event.properties)
        print(f"  {event.name}" + (f"  where: {props}" if props else ""))
    print(f"subscription states: {', '.join(catalog.subscription_states)}")
    return 0


async def _estimate(factory: Any, args: argparse.Namespace, definition: Any) -> int:
    from smsconsole.services import segments  # lazy: start-up

    async with factory() as session:
        if definition is None:
            definition = (await segments.get_segment(session, args.name)).definition
        estimate = await segments.estimate_reach(session, definition)
    if args.json:
        print_json(estimate)
    else:
        print(segments.describe_definition(definition) if isinstance(definition, dict) else "")
        _print_reach(estimate)
    return 0


async def _show(factory: Any, args: argparse.Namespace, definition: Any) -> int:
    from smsconsole.services import segments  # lazy: start-up

    async with factory() as session:
        view = await segments.get_segment(session, args.name)
        estimate = await segments.estimate_reach(session, view.definition)
    if args.json:
        print_json({**plain(view), "reach": plain(estimate)})
        return 0
    print(view.name + (f" — {view.description}" if view.description else ""))
    print(f"  {view.summary}")
    print(f"  updated {view.updated_at:%Y-%m-%d %H:%M} UTC, created {view.created_at:%Y-%m-%d %H:%M} UTC")
    print("  definition:")
    for line in json.dumps(view.definition, indent=2, ensure_ascii=False).splitlines():
        print(f"    {line}")
    print(f"  reach at {estimate.computed_at:%Y-%m-%d %H:%M} UTC:")
    _print_reach(estimate, indent="    ")
    return 0


async def _create(factory: Any, args: argparse.Namespace, definition: Any) -> int:
    from smsconsole.services import segments  # lazy: start-up

    async with factory() as session, session.begin():
        view = await segments.create_segment(session, name=args.name, definition=definition,
                                             description=args.description, actor=ACTOR)
    return _saved(view, "created", args)


async def _update(factory: Any, args: argparse.Namespace, definition: Any) -> int:
    from smsconsole.services import segments  # lazy: start-up

    async with factory() as session, session.begin():
        if definition is None and args.rename is None and args.description is None:
            raise UsageError("update: nothing to change; give --file, --rename or --description")
        view = await segments.update_segment(session, args.name, definition=definition, new_name=args.rename,
                                             description=args.description, actor=ACTOR)
    return _saved(view, "updated", args)


async def _duplicate(factory: Any, args: argparse.Namespace, definition: Any) -> int:
    from smsconsole.services import segments  # lazy: start-up

    async with factory() as session, session.begin():
        view = await segments.duplicate_segment(session, args.name, new_name=args.new_name, actor=ACTOR)
    return _saved(view, f"duplicated {args.name!r} as", args)


async def _delete(factory: Any, args: argparse.Namespace, definition: Any) -> int:
    from smsconsole.services import segments  # lazy: start-up

    async with factory() as session, session.begin():
        await segments.delete_segment(session, args.name, actor=ACTOR)
    print(f"deleted segment {args.name!r}")
    return 0


def _saved(view: Any, verb: str, args: argparse.Namespace) -> int:
    if args.json:
        print_json(view)
    else:
        print(f"{verb} segment {view.name!r}: {view.summary}")
    return 0


REASON_WORDS = {
    "no_phone": "no phone", "invalid_phone": "invalid phone", "not_mobile_capable": "not mobile-capable",
    "unsubscribed": "unsubscribed", "never_opted_in": "never opted in",
}


def _read_definition(path: str) -> Any:
    """A definition file's JSON; a missing file or bad JSON is a usage error naming the place."""
    name = "stdin" if path == "-" else path
    try:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()  # noqa: SIM115
    except FileNotFoundError:
        raise UsageError(f"--file: {name}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"--file: {name}: is a directory") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--file: {name}: cannot be read ({exc.__class__.__name__}: {exc})") from None
    if not text.strip():
        raise UsageError(f"--file: {name} is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--file: {name} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def _definition_problems(problems: list[tuple[str, str]], action: str = "create") -> str:
    """Problems named as the definition's paths (`conditions[1].value`) or the argument or flag
    they came from (a new name is --rename or --as)."""
    new_name = {"update": "--rename", "duplicate": "--as"}.get(action, "NAME")

    def where(path: str) -> str:
        return new_name if path in ("name", "new_name") else f"definition {path}" if path else "definition"

    return "; ".join(f"{where(path)}: {reason}" for path, reason in problems)


def _print_reach(estimate: Any, indent: str = "") -> None:
    qualified, reachable = estimate.qualified, estimate.reachable
    share = f" ({reachable / qualified:.0%})" if qualified else ""
    print(f"{indent}qualify:   {qualified:,}")
    print(f"{indent}reachable: {reachable:,}{share} by SMS now")
    reasons = [(code, n) for code, n in estimate.unreachable.items() if n]
    if reasons:
        print(f"{indent}not reachable: {qualified - reachable:,}")
        for code, n in reasons:
            print(f"{indent}  {REASON_WORDS.get(code, code):<20} {n:>10,}")
    if estimate.by_country:
        print(f"{indent}by country (qualify / reachable):")
        for c in estimate.by_country[:10]:
            print(f"{indent}  {c.country or '--':<4} {c.qualified:>10,} {c.reachable:>10,}")
        if len(estimate.by_country) > 10:
            rest = estimate.by_country[10:]
            print(f"{indent}  {'rest':<4} {sum(c.qualified for c in rest):>10,} "
                  f"{sum(c.reachable for c in rest):>10,}  ({len(rest)} more countries)")
    for warning in estimate.warnings:
        print(f"{indent}warning: {warning}")
