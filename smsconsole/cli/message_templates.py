"""Saved message templates for the transactional API: `smsconsole message-templates
list|show|add|update|remove|preview`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from smsconsole.cli.output import Commands, UsageError, add_actions, print_json
from smsconsole.cli.runtime import ACTOR, with_runtime
from smsconsole.config import Config


def register(commands: Commands) -> None:
    noun = commands.add_parser(
        "message-templates", help="saved message bodies that POST /v1/messages names as \"template\"",
        description="A template is a Liquid body that reads the recipient's profile ({{ profile.name }}) and "
        "the request's data ({{ data.order }}); another system sends {\"template\": NAME, \"data\": {...}}.")
    noun.set_defaults(func=cmd_message_templates)
    actions = add_actions(noun, "templates_command")
    listing = actions.add_parser("list", help="every template, by name")
    listing.add_argument("--json", action="store_true")
    show = actions.add_parser("show", help="one template's body")
    show.add_argument("name")
    show.add_argument("--json", action="store_true")
    for name, text in (("add", "save a new template"), ("update", "change a template's body, name or description")):
        sub = actions.add_parser(name, help=text)
        sub.add_argument("name")
        body = sub.add_mutually_exclusive_group(required=name == "add")
        body.add_argument("--body", help="the message (Liquid)")
        body.add_argument("--body-file", metavar="FILE", help="read the message from FILE (UTF-8)")
        sub.add_argument("--description", help="what it is for (at most 200 characters; \"\" clears it)")
        if name == "update":
            sub.add_argument("--rename", metavar="NEW_NAME", help="a new name (requests must then use it)")
        sub.add_argument("--json", action="store_true")
    remove = actions.add_parser("remove", help="delete a template (requests naming it are refused with 422)")
    remove.add_argument("name")
    preview = actions.add_parser("preview", help="render a template for one recipient, sending nothing")
    preview.add_argument("name")
    who = preview.add_mutually_exclusive_group(required=True)
    who.add_argument("--user-id", help="the profile's user id")
    who.add_argument("--phone", help="a phone number (the profile holding it, if any)")
    preview.add_argument("--data", default="{}", help="the request's data as a JSON object, e.g. '{\"order\": \"A-1\"}'")
    preview.add_argument("--json", action="store_true")


def _body(args: argparse.Namespace) -> str | None:
    if getattr(args, "body_file", None):
        path = Path(args.body_file).expanduser()
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UsageError(f"--body-file: no file {path}") from None
        except UnicodeDecodeError:
            raise UsageError(f"--body-file: {path} is not UTF-8 text") from None
        except OSError as exc:
            raise UsageError(f"--body-file: {path} cannot be read ({exc.strerror or type(exc).__name__})") from None
    return args.body


def _data(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--data: is not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(value, dict):
        raise UsageError("--data: must be a JSON object, e.g. '{\"order\": \"A-1\"}'")
    return value


async def cmd_message_templates(config: Config, args: argparse.Namespace) -> int:
    from smsconsole.services import message_templates as templates  # lazy: start-up

    action = args.templates_command
    body = _body(args) if action in ("add", "update") else None
    data = _data(args.data) if action == "preview" else {}

    async def work(runtime: Any) -> int:
        if action == "list":
            async with runtime.factory() as session:
                views = await templates.list_templates(session)
            if args.json:
                print_json(views)
            elif not views:
                print("no message templates; save one with: smsconsole message-templates add NAME --body TEXT")
            else:
                print(f"{'NAME':<24} {'UPDATED':<16} {'CHARS':>5}  BODY")
                for v in views:
                    text = v.body.replace("\n", " ")
                    print(f"{v.name[:24]:<24} {v.updated_at:%Y-%m-%d %H:%M} {len(v.body):>5}  "
                          f"{text[:40] + ('…' if len(text) > 40 else '')}")
            return 0
        if action == "show":
            async with runtime.factory() as session:
                view = await templates.get_template(session, args.name)
            if args.json:
                print_json(view)
            else:
                print(f"{view.name}" + (f" — {view.description}" if view.description else ""))
                print(f"updated {view.updated_at:%Y-%m-%d %H:%M} UTC by {view.updated_by or '-'}")
                print(view.body)
            return 0
        if action == "preview":
            return await _preview(runtime, args, data)
        if action == "remove":
            async with runtime.factory() as session, session.begin():
                await templates.delete_template(session, args.name, actor=ACTOR)
            print(f"removed message template {args.name.strip()}")
            return 0
        async with runtime.factory() as session, session.begin():
            if action == "add":
                view = await templates.create_template(session, args.name, body or "", description=args.description,
                                                       actor=ACTOR)
            else:
                if body is None and args.description is None and args.rename is None:
                    raise UsageError("update: give --body, --body-file, --description or --rename")
                view = await templates.update_template(session, args.name, body=body, description=args.description,
                                                       new_name=args.rename, actor=ACTOR)
        if args.json:
            print_json(view)
        else:
            print(f"{'saved' if action == 'add' else 'updated'} message template {view.name} "
                  f"({len(view.body):,} characters); send it with {{\"template\": \"{view.name}\"}}")
        return 0

    return await with_runtime(config, work)


async def _preview(runtime: Any, args: argparse.Namespace, data: dict[str, Any]) -> int:
    from smsconsole.services import transactional  # lazy: start-up

    request = transactional.parse_request({
        "to": {"user_id": args.user_id} if args.user_id else {"phone": args.phone},
        "template": args.name, "data": data})
    async with runtime.factory() as session:
        try:
            prepared = await transactional.prepare_send(session, request)
        except transactional.Suppressed as exc:
            prepared, reason = None, str(exc)
    if prepared is None:
        print(f"would not be sent: {reason}")
        return 1
    if args.json:
        print_json({"to": prepared.to_number, "body": prepared.body, "encoding": prepared.encoding,
                    "segments": prepared.segments})
    else:
        print(f"to {prepared.to_number} · {prepared.encoding} · {prepared.segments} segment"
              f"{'s' if prepared.segments != 1 else ''}")
        print(prepared.body)
    return 0
