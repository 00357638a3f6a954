"""`smsconsole campaigns`: campaigns from a JSON or TOML file (the format is in README
'Campaigns'), their lifecycle (schedule, pause, resume, stop, duplicate, delete), their runs with
counts, and a preview of the body for one profile. A campaign is named by its Campaign ID (C12),
its number (12) or its name."""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from smsconsole.cli import campaign_preflight, campaign_report
from smsconsole.cli.delivery import add_delivery_flags, deliver
from smsconsole.cli.output import (
    EXIT_FAILED,
    Commands,
    Handler,
    OperationFailed,
    UsageError,
    add_actions,
    confirmed,
    plain,
    print_json,
)
from smsconsole.cli.runtime import ACTOR, with_runtime
from smsconsole.config import Config

# One action on campaigns: (session factory, args, the document read from --file or None) → exit code.
Action = Callable[[Any, argparse.Namespace, Any], Awaitable[int]]
REF_HELP = "the campaign: its Campaign ID (C12), number (12) or name"
EVENT_HELP = ("a live campaign's sample event: its properties as a JSON object, e.g. '{\"amount\": 120}' "
              "(default: the person's latest trigger event)")
VARIANT_HELP = "an A/B campaign's variant to use: A, B, C, D or E (default: A)"


def register(commands: Commands) -> None:
    campaigns = commands.add_parser(
        "campaigns", help="campaigns: create from a JSON or TOML file, schedule, pause, resume, stop, runs, report, preview",
        description="A campaign file (JSON, or TOML by its .toml extension) holds name, type, when, who and what; "
        "see README 'Campaigns' and examples/campaign.toml. A draft keeps whatever is filled in; scheduling "
        "checks everything and names each problem.",
    )
    actions = add_actions(campaigns, "campaigns_command")

    def action(name: str, run: Action, help: str, *, ref: bool = True, json_flag: bool = True) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, help=help)
        if ref:
            parser.add_argument("ref", metavar="CAMPAIGN", help=REF_HELP)
        if json_flag:
            parser.add_argument("--json", action="store_true")
        parser.set_defaults(func=_command(run))
        return parser

    action("list", _list, "campaigns with their state, next run and latest run", ref=False)
    action("show", _show, "a campaign's choices in words, next run times and latest runs")
    create = action("create", _create, "save a campaign file as a draft (--schedule: schedule it at once)", ref=False)
    create.add_argument("--file", required=True, metavar="PATH", help="the campaign, JSON or .toml (- reads JSON on stdin)")
    create.add_argument("--schedule", action="store_true", help="schedule it now (the file must be complete)")
    update = action("update", _update, "replace a campaign's document (a scheduled one is checked again)")
    update.add_argument("--file", required=True, metavar="PATH", help="the campaign, JSON or .toml (- reads JSON on stdin)")
    action("schedule", _schedule, "check a draft and schedule it (every problem is named)")
    action("pause", _pause, "hold a campaign's waiting messages and runs until it resumes")
    action("resume", _resume, "resume a paused campaign, or a blocked one after its limit was raised")
    stop = action("stop", _stop, "stop a campaign for good: waiting messages are suppressed")
    stop.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    duplicate = action("duplicate", _duplicate, "copy a campaign as a new draft (default name: 'Copy of NAME')")
    duplicate.add_argument("--name", metavar="NEW_NAME")
    delete = action("delete", _delete, "delete a campaign (an active one is stopped; sent messages keep their history)",
                    json_flag=False)
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    action("attribute", _attribute, "recompute a campaign's conversions from its goal events (after the goal "
           "changed, or events recorded late)")
    runs = action("runs", _runs, "a campaign's runs, latest first, with their message counts")
    runs.add_argument("--limit", type=int, default=20, metavar="N", help="at most N runs (default 20)")
    report = action("report", campaign_report.report_command, "a campaign's results per run, variant and control: "
                    "delivery, replies, conversions, lift, cost, providers, countries", json_flag=False)
    campaign_report.add_arguments(report)
    action("preflight", campaign_preflight.preflight_command, "the compliance and cost check of the next run: "
           "senders, registrations, DLT templates, send windows, consent, opt-out text, encoding, cost per country "
           "(exit 1 when a finding blocks it)")
    test = actions.add_parser("test", help="send a test of the campaign to any number, rendered as one profile, "
                              "through the campaign's route (with its DLT fields and Generic values)")
    test.add_argument("ref", metavar="CAMPAIGN", help=REF_HELP)
    test.add_argument("--to", required=True, help="recipient, E.164 or national form (default region setting)")
    test.add_argument("--profile", metavar="PROFILE", help="render as this user id, phone or profile number "
                      "(default: the first reachable person of the audience, else a sample profile)")
    test.add_argument("--event", metavar="JSON", help=EVENT_HELP)
    test.add_argument("--variant", metavar="X", help=VARIANT_HELP)
    add_delivery_flags(test)
    test.add_argument("--json", action="store_true")
    test.set_defaults(func=_test)
    preview = action("preview", _preview, "the body rendered for one profile: text, characters, encoding, parts")
    preview.add_argument("--profile", metavar="PROFILE", help="user id, phone or profile number (default: the "
                         "first reachable person of the audience, else a sample profile)")
    preview.add_argument("--event", metavar="JSON", help=EVENT_HELP)
    preview.add_argument("--variant", metavar="X", help=VARIANT_HELP)


def _event(args: argparse.Namespace) -> dict[str, Any] | None:
    """--event as the sample event's properties; a usage error unless it is a JSON object."""
    text = getattr(args, "event", None)
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise UsageError('--event: must be a JSON object of the event\'s properties, e.g. {"amount": 120}')
    return value


async def _test(config: Config, args: argparse.Namespace) -> int:
    """Queue the campaign's test (services/campaigns/testsend.py) and see it through like send-test."""
    from smsconsole.logs import setup_logging  # lazy: start-up
    from smsconsole.services.campaigns import crud
    from smsconsole.services.campaigns.definition import parse_document
    from smsconsole.services.campaigns.testsend import send_campaign_test
    from smsconsole.services.compliance.views import test_send_price
    from smsconsole.services.errors import ValidationError
    from smsconsole.services.settings import get_settings

    setup_logging(config.effective_log_file, config.log_level)
    event = _event(args)

    async def work(runtime: Any) -> int:
        try:
            async with runtime.factory() as session, session.begin():
                view = await crud.get_campaign(session, args.ref)
                settings = await get_settings(session)
                document, _ = parse_document(view.document, default_timezone=settings["default_timezone"])
                sent = await send_campaign_test(session, document, to=args.to, profile_ref=args.profile,
                                                campaign_id=view.id, actor=ACTOR,
                                                default_region=settings.get("default_region") or None, event=event,
                                                variant=args.variant)
                price = await test_send_price(session, to=sent.message.to_number, body=sent.message.body,
                                              default_region=None, provider_name=sent.message.provider_name or "",
                                              group_name=sent.message.group_name or "")
        except ValidationError as exc:
            flags = {"to": "--to", "profile": "--profile", "variant": "--variant"}
            raise UsageError("; ".join(f"{flags.get(f, f)}: {r}" for f, r in exc.problems)) from None
        if not args.json:
            event_words = f", event {sent.preview.event_label}," if sent.preview.event_label else ""
            of = f" of variant {sent.preview.variant}" if sent.preview.variant else ""
            print(f"{view.code} test{of} as {sent.preview.profile_label}{event_words} through {sent.route}: "
                  f"{sent.preview.text!r}")
            if price is not None:
                print(f"price: {price.line}", flush=True)
        return await deliver(config, runtime, sent.message, args)

    return await with_runtime(config, work, need_secrets=True)


def _command(action: Action) -> Handler:
    return functools.partial(_run, action=action)


async def _run(config: Config, args: argparse.Namespace, *, action: Action) -> int:
    """Read --file first (a bad one is a usage error before the database opens), then run
    `action`; a ValidationError is named by the document's fields (when.at) or the flag (--name)."""
    from smsconsole.services.errors import ValidationError  # lazy: start-up

    document = read_document(args.file) if getattr(args, "file", None) else None

    async def work(runtime: Any) -> int:
        try:
            return await action(runtime.factory, args, document)
        except ValidationError as exc:
            raise UsageError(describe_problems(exc.problems, args.campaigns_command)) from None

    return await with_runtime(config, work)


def describe_problems(problems: list[tuple[str, str]], command: str = "create") -> str:
    """One line: each field as the campaign file names it (`when.at`), or the flag that carried it."""
    def where(field: str) -> str:
        if field == "name" and command == "duplicate":
            return "--name"
        if field == "variant":
            return "--variant"
        return "--file" if field == "document" else field

    return "; ".join(f"{where(field)}: {reason}" for field, reason in problems)


# --- the campaign file ---------------------------------------------------------------------------


def read_document(path: str) -> Any:
    """A campaign file: TOML when it ends in .toml, else JSON. A missing file or one that does not
    parse is a usage error naming the place."""
    name = "stdin" if path == "-" else path
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"--file: {name}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"--file: {name}: is a directory") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--file: {name}: cannot be read ({exc.__class__.__name__}: {exc})") from None
    if not text.strip():
        raise UsageError(f"--file: {name} is empty")
    if path.lower().endswith(".toml"):
        import tomllib  # lazy: start-up

        try:
            return _plain_toml(tomllib.loads(text), "")
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"--file: {name} is not TOML: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--file: {name} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def _plain_toml(value: Any, path: str) -> Any:
    """TOML's dates and times as the campaign file writes them in JSON: "2026-12-24 10:00",
    "2026-12-01", "10:00". A time with an offset is refused: times are wall times in when.timezone."""
    if isinstance(value, dict):
        return {key: _plain_toml(item, f"{path}.{key}" if path else key) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain_toml(item, f"{path}.{index}") for index, item in enumerate(value, 1)]
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise UsageError(f"{path}: write a local date and time without an offset (e.g. 2026-12-24 10:00); "
                             "times are read in when.timezone")
        return value.strftime("%Y-%m-%d %H:%M" if not value.second else "%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.strftime("%H:%M")
    return value


# --- reading commands ----------------------------------------------------------------------------


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "-"


def _counts_line(run: Any) -> str:
    counts = run.counts
    if counts is None:
        return ""
    parts = [f"{label} {getattr(counts, label):,}" for label in ("queued", "held", "sending", "sent", "delivered",
                                                                   "undelivered", "failed", "unknown", "suppressed",
                                                                   "control")
             if getattr(counts, label) or label in ("queued", "sent", "delivered", "failed")]
    return ", ".join(parts)


async def _list(factory: Any, args: argparse.Namespace, document: Any) -> int:
    from smsconsole.services.campaigns import crud  # lazy: start-up
    from smsconsole.services.campaigns.definition import LIVE_TYPES, TYPE_LABELS
    from smsconsole.services.campaigns.words import live_lines, trigger_sentence

    async with factory() as session:
        views = await crud.list_campaigns(session)
        live = await _live_figures(session, [v for v in views if v.type in LIVE_TYPES]) if not args.json else {}
    if args.json:
        print_json(views)
    elif not views:
        print("no campaigns; create one with: smsconsole campaigns create --file campaign.toml")
    else:
        width = max([14] + [len(TYPE_LABELS.get(v.type, v.type)) for v in views]) + 1
        print(f"{'ID':<6} {'STATE':<10} {'TYPE':<{width}} {'NEXT RUN':<21} NAME")
        for v in views:
            print(f"{v.code:<6} {v.state:<10} {TYPE_LABELS.get(v.type, v.type):<{width}} {_when(v.next_run_at):<21} "
                  f"{v.name}")
            if v.code in live:
                document, stats = live[v.code]
                print(f"       {trigger_sentence(v.type, document.who.trigger, user_timezone=document.when.user_timezone)}")
                if v.last_run is not None:  # live (or was): its counts today
                    print(f"       {live_lines(v.type, document, stats)[0]}")
            elif v.last_run is not None:
                print(f"       run {v.last_run.number} {v.last_run.state}: {_counts_line(v.last_run)}")
    return 0


async def _live_figures(session: Any, views: list[Any], *, exact: bool = False) -> dict[str, Any]:
    """Each live campaign's parsed document and figures (services/campaigns/live/stats.py); `exact`
    counts every pending wait (one campaign's show), else they stop at 10,000 (the list)."""
    from smsconsole import clock  # lazy: start-up
    from smsconsole.services.campaigns.definition import parse_document
    from smsconsole.services.campaigns.live.stats import (
        COUNT_CAP,
        EXACT_CAP,
        live_stats,
    )

    figures = {}
    for view in views:
        document, _ = parse_document({**view.document, "type": view.type})
        figures[view.code] = (document, await live_stats(session, view.id, document, now=clock.now(),
                                                         count_cap=EXACT_CAP if exact else COUNT_CAP))
    return figures


async def _show(factory: Any, args: argparse.Namespace, document: Any) -> int:
    from smsconsole.services.campaigns import crud  # lazy: start-up
    from smsconsole.services.campaigns.definition import (  # lazy: start-up
        LIVE_TYPES,
        parse_document,
    )
    from smsconsole.services.campaigns.reply_options import option_lines
    from smsconsole.services.campaigns.words import goal_words, what_words, when_words, who_words

    async with factory() as session:
        view = await crud.get_campaign(session, args.ref)
        upcoming = await crud.upcoming_runs(session, args.ref)
        problems = await crud.check_campaign(session, args.ref) if view.state == "draft" else []
        runs = await crud.list_runs(session, args.ref, limit=5)
        live = (await _live_figures(session, [view], exact=True)).get(view.code) if view.type in LIVE_TYPES else None
    if args.json:
        print_json({**plain(view), "next_runs": plain(upcoming), "problems": [list(p) for p in problems],
                    "runs": plain(runs), **({"live": {**plain(live[1]), "day": live[1].day.isoformat()}}
                                            if live else {})})
        return 0
    parsed, _ = parse_document({**view.document, "type": view.type}, strict=False)
    print(f"{view.code}  {view.name} — {view.state}")
    if view.blocked_reason:
        print(f"  blocked: {view.blocked_reason}")
    for label, lines in (("When", when_words(parsed, view.type)), ("Who", who_words(parsed)),
                         ("What", what_words(parsed)), ("Goal", goal_words(parsed)),
                         ("Reply", option_lines(parsed.replies))):
        if not lines:  # no goal, no reply options
            continue
        print(f"  {label + ':':<6}{' ' if len(label) > 4 else ''}{lines[0]}")
        for line in lines[1:]:
            print(f"        {line}")
    if problems:
        print("  not ready to schedule: " + describe_problems(problems))
    if live is not None:
        _print_live(view, *live)
    else:
        print("  next runs: " + (", ".join(_when(t) for t in upcoming) if upcoming else "none"))
    created = f"created {view.created_at:%Y-%m-%d %H:%M} UTC, updated {view.updated_at:%Y-%m-%d %H:%M} UTC"
    print(f"  {created}" + (f", scheduled {view.scheduled_at:%Y-%m-%d %H:%M} UTC" if view.scheduled_at else ""))
    if runs:
        print("  latest runs:")
        for run in runs:
            _print_run(run, "    ")
    return 0


def _print_live(view: Any, document: Any, stats: Any) -> None:
    """A live campaign's figures and the latest messages it queued."""
    from smsconsole.services.campaigns.words import live_lines  # lazy: start-up
    from smsconsole.services.messages import state_words

    run = view.last_run
    if run is None or run.state not in ("live", "paused"):
        print("  live: " + ("not yet (it goes live when scheduled and its start comes)" if run is None
                            else f"no longer ({run.state})"))
    else:
        print(f"  live: since {_when(run.started_at)}" + (" (paused)" if run.state == "paused" else ""))
    for line in live_lines(view.type, document, stats):
        print(f"        {line}")
    if stats.latest:
        print("  latest messages:")
        for fire in stats.latest:
            source = fire.event_name or "due date"
            source = f"wait: {source}" if fire.from_wait else source
            reason = f" ({fire.reason})" if fire.reason and fire.state in ("suppressed", "failed", "held") else ""
            print(f"    {fire.created_at:%Y-%m-%d %H:%M:%S} UTC  {fire.to_number:<16} {source:<24} {state_words(fire.state)}{reason}")


def _print_run(run: Any, indent: str) -> None:
    print(f"{indent}run {run.number:<3} {_when(run.planned_at):<21} {run.state:<13} {_counts_line(run)}")
    if run.reason:
        print(f"{indent}        {run.reason}")
    held_back = {**(run.suppressed or {})}
    if run.counts is not None:
        held_back = {**held_back, **{k: v for k, v in run.counts.suppressed_by_reason.items()}}
    if any(held_back.values()):
        from smsconsole.services.campaigns.reasons import (
            describe_held_back,  # lazy: start-up
        )

        print(f"{indent}        held back: " + describe_held_back(held_back))


async def _runs(factory: Any, args: argparse.Namespace, document: Any) -> int:
    from smsconsole.services.campaigns import crud  # lazy: start-up

    if args.limit < 1:
        raise UsageError("--limit: must be 1 or more")
    async with factory() as session:
        view = await crud.get_campaign(session, args.ref)
        runs = await crud.list_runs(session, args.ref, limit=args.limit)
    if args.json:
        print_json(runs)
    elif not runs:
        print(f"{view.code} {view.name!r} has no runs yet" + (f"; next at {_when(view.next_run_at)}"
                                                             if view.next_run_at else ""))
    else:
        print(f"{view.code}  {view.name} — {view.state}")
        for run in runs:
            _print_run(run, "  ")
    return 0


async def _preview(factory: Any, args: argparse.Namespace, document: Any) -> int:
    from smsconsole.services.campaigns import crud, render  # lazy: start-up
    from smsconsole.services.campaigns.definition import (
        parse_document,  # lazy: start-up
    )
    from smsconsole.services.settings import get_settings  # lazy: start-up

    event = _event(args)
    async with factory() as session:
        view = await crud.get_campaign(session, args.ref)
        settings = await get_settings(session)
        parsed, _ = parse_document(view.document, default_timezone=settings["default_timezone"], strict=False)
        shown = await render.preview(session, parsed, profile_ref=args.profile,
                                     default_region=settings.get("default_region") or None, event=event,
                                     variant=args.variant)
    if args.json:
        print_json(shown)
        return 0 if shown.problem is None else EXIT_FAILED
    if shown.problem is not None:
        raise OperationFailed(f"preview of {view.code} for {shown.profile_label}: {shown.problem}")
    print(f"{view.code} {view.name!r}" + (f" variant {shown.variant}" if shown.variant else "")
          + f" as {shown.profile_label}"
          + (f", event {shown.event_label}:" if shown.event_label else ":"))
    for line in shown.text.splitlines() or [""]:
        print(f"  {line}")
    parts = "part" if shown.segments == 1 else "parts"
    print(f"{shown.chars} characters, {shown.encoding}, {shown.segments} {parts}")
    if shown.ucs2_chars:
        print("UCS-2 because of: " + " ".join(shown.ucs2_chars))
    return 0


# --- changing commands ---------------------------------------------------------------------------


def _saved(view: Any, message: str, args: argparse.Namespace) -> int:
    if args.json:
        print_json(view)
    else:
        print(message)
    return 0


def _next(view: Any) -> str:
    return f"; next run {_when(view.next_run_at)}" if view.next_run_at else ""


async def _create(factory: Any, args: argparse.Namespace, document: Any) -> int:
    from smsconsole.services.campaigns import crud  # lazy: start-up

    async with factory() as session, session.begin():
        view = await crud.create_campaign(session, document, actor=ACTOR)
        if args.schedule:
            view = await crud.schedule_campaign(session, view.id, actor=ACTOR)
            return _saved(view, f"created and scheduled {view.code} {view.name!r}{_next(view)}", args)
        problems = await crud.check_campaign(session, view.id)
    if args.json:
        print_json(view)
        return 0
    print(f"created draft {view.code} {view.name!r}")
    if problems:
        print(f"before it can be scheduled: {describe_problems(problems)}")
    else:
        print(f"ready: smsconsole campaigns schedule {view.code}")
    return 0


async def _update(factory: Any, args: argparse.Namespace, document: Any) -> int:
    from smsconsole.services.campaigns import crud  # lazy: start-up

    async with factory() as session, session.begin():
        view = await crud.update_campaign(session, args.ref, document, actor=ACTOR)
    return _saved(view, f"updated {view.code} {view.name!r} ({view.state}){_next(view)}", args)


async def _schedule(factory: Any, args: argparse.Namespace, document: Any) -> int:
    from smsconsole.services.campaigns import crud  # lazy: start-up

    from smsconsole.services.compliance.preflight import PreflightBlocked

    try:
        async with factory() as session, session.begin():
            view = await crud.schedule_campaign(session, args.ref, actor=ACTOR)
    except PreflightBlocked as exc:
        campaign_preflight.print_blocked(exc)
        raise OperationFailed(f"not scheduled: {exc}; every finding: smsconsole campaigns preflight {args.ref}") from None
    return _saved(view, f"scheduled {view.code} {view.name!r}{_next(view)}", args)


async def _pause(factory: Any, args: argparse.Namespace, document: Any) -> int:
    from smsconsole.services.campaigns import crud  # lazy: start-up

    async with factory() as session, session.begin():
        view = await crud.pause_campaign(session, args.ref, actor=ACTOR)
    return _saved(view, f"paused {view.code} {view.name!r}: nothing of it is sent until it resumes", args)


async def _resume(factory: Any, args: argparse.Namespace, document: Any) -> int:
    from smsconsole.services.campaigns import crud  # lazy: start-up

    async with factory() as session, session.begin():
        view = await crud.resume_campaign(session, args.ref, actor=ACTOR)
    return _saved(view, f"resumed {view.code} {view.name!r} ({view.state}){_next(view)}", args)


async def _stop(factory: Any, args: argparse.Namespace, document: Any) -> int:
    from smsconsole.services.campaigns import crud  # lazy: start-up

    if not args.yes and not confirmed(f"Stop campaign {args.ref!r} for good? Its waiting messages are suppressed. "
                                      "[y/N] ", f"stop campaign {args.ref!r}: add --yes to confirm"):
        print("nothing stopped")
        return EXIT_FAILED
    async with factory() as session, session.begin():
        view = await crud.stop_campaign(session, args.ref, actor=ACTOR)
    return _saved(view, f"stopped {view.code} {view.name!r}", args)


async def _duplicate(factory: Any, args: argparse.Namespace, document: Any) -> int:
    from smsconsole.services.campaigns import crud  # lazy: start-up

    async with factory() as session, session.begin():
        view = await crud.duplicate_campaign(session, args.ref, new_name=args.name, actor=ACTOR)
    return _saved(view, f"duplicated {args.ref!r} as draft {view.code} {view.name!r}", args)


async def _attribute(factory: Any, args: argparse.Namespace, document: Any) -> int:
    from smsconsole.services.campaigns import crud  # lazy: start-up
    from smsconsole.services.campaigns.conversions import recompute

    async with factory() as session, session.begin():
        view = await crud.get_campaign(session, args.ref)
        count = await recompute(session, view.id)
        goal = bool((view.document or {}).get("goal"))
    if args.json:
        print_json({"campaign": view.code, "conversions": count})
    elif not goal:
        print(f"{view.code} {view.name!r} has no goal: no conversions")
    else:
        print(f"{view.code} {view.name!r}: {count:,} conversion{'s' if count != 1 else ''} attributed")
    return 0


async def _delete(factory: Any, args: argparse.Namespace, document: Any) -> int:
    from smsconsole.services.campaigns import crud  # lazy: start-up

    if not args.yes and not confirmed(f"Delete campaign {args.ref!r}? An active campaign is stopped first; sent "
                                      "messages keep their history. [y/N] ",
                                      f"delete campaign {args.ref!r}: add --yes to confirm"):
        print("nothing deleted")
        return EXIT_FAILED
    async with factory() as session, session.begin():
        view = await crud.get_campaign(session, args.ref)
        await crud.delete_campaign(session, view.id, actor=ACTOR)
    print(f"deleted {view.code} {view.name!r}")
    return 0
