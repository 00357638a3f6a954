"""Replies: `sandbox reply`, `keywords list|add|update|remove` and `inbox`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from smsconsole.cli.output import Commands, UsageError, add_actions, print_json
from smsconsole.cli.runtime import ACTOR, with_runtime
from smsconsole.config import Config

# Actions as the console and this CLI's text show them; --json and the database keep the stored
# values (opt_out, opt_in), and both spellings are accepted as input.
ACTION_WORDS = {"opt_out": "opt-out", "opt_in": "opt-in"}
KEYWORD_ACTIONS = ("opt_out", "opt_in", "help", "custom")
INBOX_ACTIONS = (*KEYWORD_ACTIONS, "option", "reply")  # option: it answered a campaign's reply options


def action_word(action: str | None) -> str:
    """An action as people read it: opt-out, opt-in, help, custom, reply."""
    return ACTION_WORDS.get(action or "", action or "-")


def _action_type(allowed: tuple[str, ...]) -> Callable[[str], str]:
    """An argparse type: opt-out or opt_out (any case) becomes the stored value; anything else is
    refused naming the actions as they are shown."""
    def parse(value: str) -> str:
        action = value.strip().lower().replace("-", "_")
        if action not in allowed:
            raise argparse.ArgumentTypeError(
                f"{value!r} is not an action; use {', '.join(action_word(a) for a in allowed)}")
        return action

    return parse


def register(commands: Commands) -> None:
    sandbox = commands.add_parser("sandbox", help="the built-in Sandbox provider: simulate a reply")
    sandbox.set_defaults(func=cmd_sandbox)
    sb_commands = add_actions(sandbox, "sandbox_command")
    reply = sb_commands.add_parser(
        "reply", help="a reply from a number, through the same door as a real one (keywords, opt-out, auto-response)")
    reply.add_argument("--from", dest="sender", required=True, metavar="NUMBER",
                       help="who replies (E.164, or national form in the default region)")
    reply.add_argument("--text", required=True, help="what they reply, e.g. STOP")
    reply.add_argument("--provider", help="the Sandbox provider (default: the first enabled one)")
    reply.add_argument("--json", action="store_true")

    keywords = commands.add_parser(
        "keywords", help="reply keywords (STOP, HELP, …) and their auto-responses",
        description="A keyword matches a reply that is exactly the keyword, ignoring case, accents, "
        "punctuation and spacing ('Stop.', 'opt-out', 'ARRÊT'). Actions: opt-out, opt-in, help, custom "
        "(logs --event-name as an event).")
    keywords.set_defaults(func=cmd_keywords)
    k_commands = add_actions(keywords, "keywords_command")
    k_list = k_commands.add_parser("list", help="every keyword, with its action, language and response")
    k_list.add_argument("--json", action="store_true")
    update_help = "change a keyword (a default one: response, language, enabled)"
    for name, text in (("add", "add a keyword"), ("update", update_help)):
        sub = k_commands.add_parser(name, help=text)
        sub.add_argument("word")
        sub.add_argument("--action", required=name == "add", type=_action_type(KEYWORD_ACTIONS),
                         help="opt-out, opt-in, help or custom")
        sub.add_argument("--response", help="the auto-response ('' sends none)")
        sub.add_argument("--language", help="language code of the response, e.g. en, es, pt-BR")
        sub.add_argument("--event-name", "--event", dest="event_name",
                         help="custom: the event a reply is logged as, e.g. survey_yes")
        if name == "update":
            sub.add_argument("--rename", metavar="NEW_WORD", help="a new word (not for a default keyword)")
            state = sub.add_mutually_exclusive_group()
            state.add_argument("--enable", dest="enabled", action="store_const", const=True)
            state.add_argument("--disable", dest="enabled", action="store_const", const=False)
        sub.add_argument("--json", action="store_true")
    k_remove = k_commands.add_parser("remove", help="remove a keyword (STOP stays)")
    k_remove.add_argument("word")

    inbox = commands.add_parser("inbox", help="the latest replies: keyword matched, action taken, message answered")
    inbox.set_defaults(func=cmd_inbox)
    inbox.add_argument("--limit", type=int, default=50, help="how many (default 50)")
    inbox.add_argument("--action", type=_action_type(INBOX_ACTIONS),
                       help="only this action: opt-out, opt-in, help, custom or reply")
    inbox.add_argument("--keyword", help="only replies that matched this keyword")
    inbox.add_argument("--json", action="store_true")


async def cmd_sandbox(config: Config, args: argparse.Namespace) -> int:
    from smsconsole.services.providers import first_sandbox
    from smsconsole.services.replies import simulate_reply
    from smsconsole.services.settings import get_settings

    async def work(runtime: Any) -> int:
        async with runtime.factory() as session, session.begin():
            name = args.provider
            if not name:
                name = await first_sandbox(session)
                if name is None:
                    raise UsageError("no Sandbox provider: add one with 'smsconsole providers add sandbox "
                                     "--name sandbox'")
            region = (await get_settings(session))["default_region"]
            view = await simulate_reply(session, name, args.sender, args.text, default_region=region)
        if args.json:
            print_json(view)
        else:
            print(_describe_reply(view))
        return 0

    return await with_runtime(config, work)


def _describe_reply(view: Any) -> str:
    what = {"opt_out": "opted out", "opt_in": "opted in", "help": "asked for help",
            "custom": "custom keyword", "reply": "a reply (logged as sms_reply)",
            "option": "campaign reply option"}.get(view.action or "", "recorded")
    matched = f"{view.keyword}: " if view.keyword else f"option {view.reply_option}: " if view.reply_option else ""
    parts = [f"reply {view.id} from {view.sender} via {view.provider_name}: {view.text!r} → {matched}{what}"]
    if view.suppressed:
        parts.append(f"{view.suppressed} queued message(s) suppressed")
    if view.response_message_id:
        parts.append(f"auto-response queued (message {view.response_message_id})")
    if view.answers_message_id:
        campaign = f" (campaign {view.answers_arm})" if view.answers_arm else ""
        parts.append(f"answers message {view.answers_message_id}{campaign}")
    return "; ".join(parts)


async def cmd_keywords(config: Config, args: argparse.Namespace) -> int:
    from smsconsole.services import keywords

    async def work(runtime: Any) -> int:
        action = args.keywords_command
        if action == "list":
            async with runtime.factory() as session, session.begin():
                views = await keywords.list_keywords(session)
            if args.json:
                print_json(views)
                return 0
            print(f"{'WORD':<22} {'ACTION':<8} {'LANG':<6} {'STATE':<9} RESPONSE")
            for v in views:
                state = ("default" if v.builtin else "custom") if v.enabled else "disabled"
                response = v.response or (f"(logs event {v.event_name})" if v.event_name else "(no response)")
                print(f"{v.word:<22} {action_word(v.action):<8} {v.language or '-':<6} {state:<9} {response}")
            return 0
        if action == "remove":
            async with runtime.factory() as session, session.begin():
                view = await keywords.get_keyword(session, args.word)
                await keywords.delete_keyword(session, args.word, actor=ACTOR)
            print(f"removed keyword {view.word!r}")
            return 0
        async with runtime.factory() as session, session.begin():
            if action == "add":
                view = await keywords.create_keyword(session, word=args.word, action=args.action,
                                                     language=args.language, response=args.response,
                                                     event_name=args.event_name, actor=ACTOR)
            else:
                view = await keywords.update_keyword(session, args.word, new_word=args.rename, action=args.action,
                                                     language=args.language, response=args.response,
                                                     event_name=args.event_name, enabled=args.enabled, actor=ACTOR)
        if args.json:
            print_json(view)
        else:
            verb = "added" if action == "add" else "updated"
            print(f"{verb} keyword {view.word!r}: {action_word(view.action)}"
                  + (f" ({view.language})" if view.language else "")
                  + (f", logs {view.event_name}" if view.event_name else "")
                  + ("" if view.enabled else ", disabled"))
        return 0

    return await with_runtime(config, work)


async def cmd_inbox(config: Config, args: argparse.Namespace) -> int:
    from smsconsole.services.replies import count_inbound, recent_inbound

    if args.limit < 1:
        raise UsageError("--limit must be at least 1")

    async def work(runtime: Any) -> int:
        async with runtime.factory() as session:
            views = await recent_inbound(session, limit=args.limit, action=args.action, keyword=args.keyword)
            total = 0 if views else await count_inbound(session)  # says why the list is empty
        if args.json:
            print_json(views)
        elif not views and total:
            wanted = " and ".join(part for part in (
                f"keyword {args.keyword}" if args.keyword else "",
                f"action {action_word(args.action)}" if args.action else "") if part)
            print(f"no replies match {wanted} ({total:,} repl{'y' if total == 1 else 'ies'} in all)")
        elif not views:
            print("no replies yet (they arrive by polling or the webhook listener; try "
                  "'smsconsole sandbox reply --from +447400123456 --text STOP')")
        else:
            print(f"{'RECEIVED':<19} {'FROM':<16} {'PROFILE':<16} {'MATCHED':<10} {'ACTION':<8} {'ANSWERS':<8} "
                  f"{'CAMPAIGN':<10} TEXT")
            for v in views:
                who = (v.profile_name or v.profile_key or "-")[:16]
                answers = str(v.answers_message_id) if v.answers_message_id else "-"
                text = v.text.replace("\n", " ")
                matched = v.keyword or (f"option {v.reply_option}" if v.reply_option else "-")  # a keyword, or an option
                print(f"{v.received_at:%Y-%m-%d %H:%M:%S} {v.sender:<16} {who:<16} {matched:<10} "
                      f"{action_word(v.action):<8} {answers:<8} {v.answers_arm or '-':<10} {text}")
        return 0

    return await with_runtime(config, work)
