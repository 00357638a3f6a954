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


def register(commands: Commands) -> None:
    campaigns = commands.add_parser(
        "campaigns", help="campaigns: create from a JSON or TOML file, schedule, pause, resume, stop, runs, preview",
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
    runs = action("runs", _runs, "a campaign's runs, latest first, with their message counts")
    runs.add_argument("--limit", type=int, default=20, metavar="N", help="at most N runs (default 20)")
    test = actions.add_parser("test", help="send a test of the campaign to any number, rendered as one profile, "
                              "through the campaign's route (with its DLT fields and Generic values)")
    test.add_argument("ref", metavar="CAMPAIGN", help=REF_HELP)
    test.add_argument("--to", required=True, help="recipient, E.164 or national form (default region setting)")
    test.add_argument("--profile", metavar="PROFILE", help="render as this user id, phone or profile number "
                      "(default: the first reachable person of the audience, else a sample profile)")
    add_delivery_flags(test)
    test.add_argument("--json", action="store_true")
    test.set_defaults(func=_test)
    preview = action("preview", _preview, "the body rendered for one profile: text, characters, encoding, parts")
    preview.add_argument("--profile", metavar="PROFILE", help="user id, phone or profile number (default: the "
                         "first reachable person of the audience, else a sample profile)")


async def _test(config: Config, args: argparse.Namespace) -> int:
    """Queue the campaign's test (services/campaigns/testsend.py) and see it through like send-test."""
    from smsconsole.logs import setup_logging  # lazy: start-up
    from smsconsole.services.campaigns import crud
    from smsconsole.services.campaigns.definition import parse_document
    from smsconsole.services.campaigns.testsend import send_campaign_test
    from smsconsole.services.errors import ValidationError
    from smsconsole.services.settings import get_settings

    setup_logging(config.effective_log_file, config.log_level)

    async def work(runtime: Any) -> int:
        try:
            async with runtime.factory() as session, session.begin():
                view = await crud.get_campaign(session, args.ref)
                settings = await get_settings(session)
                document, _ = parse_document(view.document, default_timezone=settings["default_timezone"])
                sent = await send_campaign_test(session, document, to=args.to, profile_ref=args.profile,
                                                campaign_id=view.id, actor=ACTOR,
                                                default_region=settings.get("default_region") or None)
        except ValidationError as exc:
            flags = {"to": "--to", "profile": "--profile"}
            raise UsageError("; ".join(f"{flags.get(f, f)}: {r}" for f, r in exc.problems)) from None
        if not args.json:
            print(f"{view.code} test as {sent.preview.profile_label} through {sent.route}: {sent.preview.text!r}")
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
                                                                   "undelivered", "failed", "unknown", "suppressed")
             if getattr(counts, label) or label in ("queued", "sent", "delivered", "failed")]
    return ", ".join(parts)


async def _list(factory: Any, args: argparse.Namespace, document: Any) -> int:
    from smsconsole.services.campaigns import crud  # lazy: start-up
    from smsconsole.services.campaigns.definition import TYPE_LABELS

    async with factory() as session:
        views = await crud.list_campaigns(session)
    if args.json:
        print_json(views)
    elif not views:
        print("no campaigns; create one with: smsconsole campaigns create --file campaign.toml")
    else:
        print(f"{'ID':<6} {'STATE':<10} {'TYPE':<15} {'NEXT RUN':<21} NAME")
        for v in views:
            print(f"{v.code:<6} {v.state:<10} {TYPE_LABELS.get(v.type, v.type):<15} {_when(v.next_run_at):<21} {v.name}")
            if v.last_run is not None:
                print(f"       run {v.last_run.number} {v.last_run.state}: {_counts_line(v.last_run)}")
    return 0


async def _show(factory: Any, args: argparse.Namespace, document: Any) -> int:
    from smsconsole.services.campaigns import crud  # lazy: start-up
    from smsconsole.services.campaigns.definition import parse_document  # lazy: start-up

    async with factory() as session:
        view = await crud.get_campaign(session, args.ref)
        upcoming = await crud.upcoming_runs(session, args.ref)
        problems = await crud.check_campaign(session, args.ref) if view.state == "draft" else []
        runs = await crud.list_runs(session, args.ref, limit=5)
    if args.json:
        print_json({**plain(view), "next_runs": plain(upcoming), "problems": [list(p) for p in problems],
                    "runs": plain(runs)})
        return 0
    parsed, _ = parse_document(view.document, strict=False)
    print(f"{view.code}  {view.name} — {view.state}")
    if view.blocked_reason:
        print(f"  blocked: {view.blocked_reason}")
    for label, lines in (("When", when_words(parsed, view.type)), ("Who", who_words(parsed)),
                         ("What", what_words(parsed))):
        print(f"  {label + ':':<6}{lines[0]}")
        for line in lines[1:]:
            print(f"        {line}")
    if problems:
        print("  not ready to schedule: " + describe_problems(problems))
    print("  next runs: " + (", ".join(_when(t) for t in upcoming) if upcoming else "none"))
    created = f"created {view.created_at:%Y-%m-%d %H:%M} UTC, updated {view.updated_at:%Y-%m-%d %H:%M} UTC"
    print(f"  {created}" + (f", scheduled {view.scheduled_at:%Y-%m-%d %H:%M} UTC" if view.scheduled_at else ""))
    if runs:
        print("  latest runs:")
        for run in runs:
            _print_run(run, "    ")
    return 0


def _print_run(run: Any, indent: str) -> None:
    print(f"{indent}run {run.number:<3} {_when(run.planned_at):<21} {run.state:<13} {_counts_line(run)}")
    if run.reason:
        print(f"{indent}        {run.reason}")
    held_back = {**(run.suppressed or {})}
    if run.counts is not None:
        held_back = {**held_back, **{k: v for k, v in run.counts.suppressed_by_reason.items()}}
    if any(held_back.values()):
        from smsconsole.services.campaigns.reasons import describe_held_back  # lazy: start-up

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
    from smsconsole.services.campaigns.definition import parse_document  # lazy: start-up
    from smsconsole.services.settings import get_settings  # lazy: start-up

    async with factory() as session:
        view = await crud.get_campaign(session, args.ref)
        settings = await get_settings(session)
        parsed, _ = parse_document(view.document, default_timezone=settings["default_timezone"], strict=False)
        shown = await render.preview(session, parsed, profile_ref=args.profile,
                                     default_region=settings.get("default_region") or None)
    if args.json:
        print_json(shown)
        return 0 if shown.problem is None else EXIT_FAILED
    if shown.problem is not None:
        raise OperationFailed(f"preview of {view.code} for {shown.profile_label}: {shown.problem}")
    print(f"{view.code} {view.name!r} as {shown.profile_label}:")
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

    async with factory() as session, session.begin():
        view = await crud.schedule_campaign(session, args.ref, actor=ACTOR)
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


# --- choices in words ----------------------------------------------------------------------------

WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _local(moment: Any) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if isinstance(moment, datetime) else str(moment)


def _limit(value: int | None, words: str) -> str | None:
    return f"{words} {value:,}" if value else None


def when_words(doc: Any, kind: str) -> list[str]:
    when = doc.when
    tz = when.timezone
    if kind == "one_time":
        first = ("once, as soon as it is scheduled" if when.at == "now" else
                 f"once, at {_local(when.at)} {tz}" if when.at else "once (the time is not chosen yet)")
    elif kind == "multiple_dates":
        shown = ", ".join(_local(d) for d in when.dates[:5]) + (f" and {len(when.dates) - 5} more"
                                                                  if len(when.dates) > 5 else "")
        first = f"on {len(when.dates)} dates ({tz}): {shown}" if when.dates else "on several dates (none chosen yet)"
    else:
        r = when.recurrence
        if r is None:
            first = "recurring (not chosen yet)"
        else:
            unit = {"day": "day", "week": "week", "month": "month"}[r.every]
            every = f"every {unit}" if r.interval == 1 else f"every {r.interval} {unit}s"
            if r.every == "week":
                every += " on " + (", ".join(WEEKDAY_NAMES[d] for d in r.weekdays) or "(no days chosen)")
            elif r.every == "month":
                day = r.day_of_month
                every += f" on day {day}" + (" (a shorter month's last day)" if day and day > 28 else "") \
                    if day else " (no day chosen)"
            span = f", from {r.start}" if r.start else ", from when it is scheduled"
            span += f" until {r.end}" if r.end else ", no end"
            first = f"{every} at {r.time:%H:%M} {tz}{span}"
    lines = [first]
    if when.user_timezone:
        late = "sent the next day" if when.late == "next_day" else "skipped"
        lines.append(f"at that time in each user's own time zone (users whose time has passed: {late})")
    if when.dnd is not None:
        action = "delayed until it ends" if when.dnd.action == "delay" else "discarded"
        lines.append(f"do not disturb {when.dnd.start:%H:%M}-{when.dnd.end:%H:%M} in the user's zone: {action}")
    lines.append("global limits ignored for this campaign" if when.ignore_global_limits else "global limits apply")
    return lines


def who_words(doc: Any) -> list[str]:
    from smsconsole.services.segments import describe_definition  # lazy: start-up

    who = doc.who
    if who.segment:
        first = f"segment {who.segment!r}"
    elif who.definition:
        first = f"ad-hoc segment: {describe_definition(who.definition)}"
    else:
        first = "no audience chosen yet"
    reach = "everyone who qualifies" if who.reach_percent >= 100 else f"a random {who.reach_percent:g}% of those who qualify"
    limits = [part for part in (_limit(who.target_limit, "at most"), _limit(who.run_limit, "per run at most"),
                                _limit(who.daily_limit, "per day at most")) if part]
    lines = [first, reach + (f"; {', '.join(limits)}" if limits else "")]
    lines.append(f"safety check: a run is blocked when more than {who.safety_limit:,} qualify" if who.safety_limit
                 else "no safety check")
    return lines


def what_words(doc: Any) -> list[str]:
    what = doc.what
    route = (f"through group {what.route_group!r}" if what.route_group else
             f"through provider {what.route_provider!r}" if what.route_provider else "default routing")
    lines = [route + (f", sender {what.sender!r}" if what.sender else "")]
    body = what.body.strip()
    lines += [f"body: {json.dumps(body, ensure_ascii=False)}" if body else "body: (not written yet)"]
    if what.generic:
        lines.append("generic provider: " + ", ".join(f"{key} {json.dumps(value, ensure_ascii=False)}"
                                                     for key, value in what.generic.items()))
    if what.dlt:
        lines.append("DLT: " + ", ".join(f"{key} {value}" for key, value in what.dlt.items()))
    if "connected_content" in body:
        failure = "skip the recipient" if what.linked_on_failure == "skip" else "abort the run"
        lines.append(f"linked content: timeout {what.linked_timeout:g} s; when it fails, {failure}")
    return lines
