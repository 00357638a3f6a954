"""`smsconsole providers`: the kinds and presets, and adding, showing, testing, changing and
removing a provider. A kind's config fields become its --FIELD flags (parsed after argparse)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from smsconsole.cli.output import EXIT_FAILED, Commands, Parser, UsageError, add_actions, print_json
from smsconsole.cli.runtime import ACTOR, with_runtime
from smsconsole.config import Config


def register(commands: Commands) -> None:
    providers = commands.add_parser("providers", help="connect and manage providers")
    actions = add_actions(providers, "providers_command")
    kinds = actions.add_parser("kinds", help="the provider kinds and their config fields")
    kinds.add_argument("--json", action="store_true")
    kinds.set_defaults(func=cmd_kinds)
    add = actions.add_parser(
        "add", help="add a provider: providers add KIND --name NAME [--base-url URL] [--FIELD VALUE ...]",
        description="Add a provider. FIELD flags are the kind's config fields (see 'providers kinds'). "
        "A secret may be given as env:NAME (read from the environment at use) or '-' (read from stdin).",
        add_help=True,
    )
    add.add_argument("kind")
    add.add_argument("fields", nargs=argparse.REMAINDER, help="--name NAME and the kind's --FIELD VALUE flags")
    add.set_defaults(func=cmd_add)
    presets = actions.add_parser("presets", help="Generic HTTP presets for documented gateways")
    presets.add_argument("--json", action="store_true")
    presets.set_defaults(func=cmd_presets)
    lst = actions.add_parser("list", help="list providers")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_list)
    for action, text, handler in (("show", "show one provider (secrets masked)", cmd_show),
                                  ("test", "test a provider's connection (sends nothing)", cmd_test)):
        sub = actions.add_parser(action, help=text)
        sub.add_argument("name")
        sub.add_argument("--json", action="store_true")
        sub.set_defaults(func=handler)
    upd = actions.add_parser(
        "update", help="change a provider: providers update NAME [--rename NEW] [--base-url URL] "
        "[--rate-limit N] [--sender-rate-limit N] [--FIELD VALUE ...]",
        description="Change the given settings of a provider; the others keep their values. FIELD flags are the "
        "kind's config fields (see 'providers kinds'). Rate limits are segments per second ('' for no limit).",
    )
    upd.add_argument("name")
    upd.add_argument("fields", nargs=argparse.REMAINDER, help="the settings to change")
    upd.set_defaults(func=cmd_update)
    rm = actions.add_parser("remove", help="remove a provider")
    rm.add_argument("name")
    rm.set_defaults(func=cmd_remove)


async def cmd_kinds(config: Config, args: argparse.Namespace) -> int:
    from smsconsole.services import providers as svc  # lazy: start-up

    kinds = svc.provider_kinds()
    if args.json:
        print_json(kinds)
        return 0
    for kind in kinds:
        print(f"{kind.kind}: {kind.display_name}" + (f" — {kind.description}" if kind.description else ""))
        for f in kind.fields:
            flags = ", ".join(x for x in ("required" if f.required else "", "secret" if f.secret else "") if x)
            choice = f" [{'|'.join(f.choices)}]" if f.choices else ""
            print(f"  {f.flag:<26}{f.label}{choice}" + (f" ({flags})" if flags else "")
                  + (f": {f.help}" if f.help else ""))
        print(f"  {'--base-url':<26}override {kind.default_base_url or 'the endpoint'}")
    return 0


async def cmd_presets(config: Config, args: argparse.Namespace) -> int:
    from smsconsole.services.providers import PRESETS  # lazy: start-up

    if args.json:
        print_json(PRESETS)
        return 0
    for p in PRESETS:
        print(f"{p.key}: {p.name} — {p.description}")
        for need in p.needs:
            print(f"    you fill in: {need}")
        if p.adapter:
            print(f"    (the dedicated '{p.adapter}' provider also handles receipts and errors)")
    print("use one with: smsconsole providers add generic --preset KEY --name NAME [--FIELD VALUE ...]")
    return 0


async def cmd_add(config: Config, args: argparse.Namespace) -> int:
    from smsconsole.services import providers as svc  # lazy: start-up

    async def work(runtime: Any) -> int:
        kind = svc.kind_view(args.kind)
        name, base_url, values, rates = _parse_fields(kind, args.fields)
        async with runtime.factory() as session, session.begin():
            view = await svc.create_provider(session, runtime.box, kind=kind.kind, name=name, values=values,
                                             base_url=base_url, actor=ACTOR, **rates)
        print(f"added provider {view.name} ({view.display_name}); test it with: smsconsole providers test {view.name}")
        return 0

    return await with_runtime(config, work, need_secrets=True)


async def cmd_update(config: Config, args: argparse.Namespace) -> int:
    from smsconsole.services import providers as svc  # lazy: start-up

    async def work(runtime: Any) -> int:
        factory, box = runtime.factory, runtime.box
        async with factory() as session:
            current = await svc.get_provider(session, args.name)
            values = await svc.provider_values(session, box, args.name)
        kind = svc.kind_view(current.kind)
        new_name, base_url, changed, rates = _parse_fields(kind, args.fields, update=True)
        if new_name is None and base_url is None and not changed and not rates:
            raise UsageError("update: nothing to change; give --rename, --base-url, --rate-limit, "
                             "--sender-rate-limit or a field of the kind")
        async with factory() as session, session.begin():
            view = await svc.update_provider(
                session, box, args.name, values={**values, **changed}, new_name=new_name,
                base_url=current.base_url if base_url is None else base_url, actor=ACTOR, **rates)
        limits = f"rate limit {_rate(view.rate_limit)}, per sender {_rate(view.sender_rate_limit)}"
        print(f"updated provider {view.name} ({limits}); test it with: smsconsole providers test {view.name}")
        return 0

    return await with_runtime(config, work)


async def cmd_list(config: Config, args: argparse.Namespace) -> int:
    from smsconsole.services import providers as svc  # lazy: start-up

    async def work(runtime: Any) -> int:
        async with runtime.factory() as session:
            views = await svc.list_providers(session)
        if args.json:
            print_json(views)
        elif not views:
            print("no providers yet; add one with: smsconsole providers add sandbox --name sandbox")
        else:
            print(f"{'NAME':<20} {'KIND':<10} {'ENABLED':<8} HEALTH")
            for v in views:
                print(f"{v.name:<20} {v.kind:<10} {'yes' if v.enabled else 'no':<8} {v.health}"
                      + (f" — {v.health_detail}" if v.health_detail else ""))
        return 0

    return await with_runtime(config, work)


async def cmd_show(config: Config, args: argparse.Namespace) -> int:
    from smsconsole.services import providers as svc  # lazy: start-up

    async def work(runtime: Any) -> int:
        async with runtime.factory() as session:
            view = await svc.get_provider(session, args.name)
        if args.json:
            print_json(view)
            return 0
        print(f"{view.name} ({view.display_name})")
        print(f"  base url: {view.base_url or svc.kind_view(view.kind).default_base_url or '-'}")
        print(f"  enabled:  {'yes' if view.enabled else 'no'}")
        print(f"  health:   {view.health}" + (f" — {view.health_detail}" if view.health_detail else ""))
        print(f"  rate limit: {_rate(view.rate_limit)}; per sender: {_rate(view.sender_rate_limit)}")
        for key, value in view.settings.items():
            shown = value.replace("\n", "\n      ") if isinstance(value, str) else value
            print(f"  {key}: {shown}")
        from smsconsole.secrets import SecretError  # lazy: start-up

        async with runtime.factory() as session:
            try:
                preview = svc.request_preview(await svc.load_spec(session, runtime.box, args.name))
            except SecretError:  # the key cannot open its secrets: `providers update` re-enters them
                preview = None
        if preview:
            print("  request preview (secrets masked):")
            print("    " + preview.replace("\n", "\n    "))
        return 0

    return await with_runtime(config, work)


async def cmd_test(config: Config, args: argparse.Namespace) -> int:
    from smsconsole.services import providers as svc  # lazy: start-up

    async def work(runtime: Any) -> int:
        import httpx  # lazy: start-up

        async with httpx.AsyncClient(timeout=config.send_timeout_seconds) as client:
            check = await svc.test_provider(runtime.factory, runtime.box, args.name, client, ACTOR)
        if args.json:
            print_json(check)
        else:
            print(f"{'not checked' if not check.checked else 'ok' if check.ok else 'failed'}: {check.detail}")
        return 0 if check.ok else EXIT_FAILED

    return await with_runtime(config, work, need_secrets=True)


async def cmd_remove(config: Config, args: argparse.Namespace) -> int:
    from smsconsole.services import providers as svc  # lazy: start-up

    async def work(runtime: Any) -> int:
        async with runtime.factory() as session, session.begin():
            await svc.remove_provider(session, args.name, ACTOR)
        print(f"removed provider {args.name}")
        return 0

    return await with_runtime(config, work)


def _rate(value: float | None) -> str:
    return f"{value:g} segments/s" if value else "none"


def _parse_fields(kind: Any, tokens: list[str], *, update: bool = False,
                  ) -> tuple[str, str | None, dict[str, str], dict[str, str]]:
    """Parse --name (--rename when updating), --base-url, --rate-limit, --sender-rate-limit and
    the kind's --FIELD VALUE flags. The rates are returned only when given."""
    parser = Parser(prog=f"smsconsole providers {'update' if update else 'add'} {kind.kind}", add_help=False)
    name_flag = "--rename" if update else "--name"
    parser.add_argument(name_flag, dest="name", required=not update)
    parser.add_argument("--base-url")
    parser.add_argument("--rate-limit")
    parser.add_argument("--sender-rate-limit")
    if kind.kind == "generic" and not update:
        parser.add_argument("--preset")
    for f in kind.fields:
        parser.add_argument(f.flag, dest=f.name)
    known = ", ".join([name_flag, "--base-url", "--rate-limit", "--sender-rate-limit",
                       *(["--preset"] if kind.kind == "generic" and not update else []),
                       *(f.flag for f in kind.fields)])
    parsed, unknown = parser.parse_known_args(tokens)
    if unknown:
        raise UsageError(f"unknown option {unknown[0]!r} for kind {kind.kind}; its options: {known}")
    values: dict[str, str] = {}
    if getattr(parsed, "preset", None):
        from smsconsole.services.providers import PRESETS, preset  # lazy: start-up

        try:
            values.update(preset(parsed.preset).values)
        except KeyError:
            raise UsageError(f"--preset: no preset {parsed.preset!r}; presets: "
                             f"{', '.join(p.key for p in PRESETS)}") from None
    for f in kind.fields:
        value = getattr(parsed, f.name)
        if value is None:
            continue
        if value == "-" and f.secret:
            value = sys.stdin.readline().rstrip("\n")
        values[f.name] = value.replace("\\n", "\n") if f.kind == "multiline" else value
    rates = {key: getattr(parsed, key) for key in ("rate_limit", "sender_rate_limit")
             if getattr(parsed, key) is not None}
    return parsed.name, parsed.base_url, values, rates
