"""A service's ValidationError as one CLI line, each field named as the user typed it: the
command's own flag (`--map`, `--rename`, `--from`) or argument (`NAME`), never a service's
internal field name (`mapping`, `word`). Reads the command's argparse parser, so a flag renamed
there is named right here too."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

# Service field names that differ from the destination of the flag that carried them, by command.
FIELD_DESTS: dict[tuple[str, ...], dict[str, str]] = {
    ("providers", "update"): {"name": "rename"},
    ("groups", "update"): {"name": "rename", "new_name": "rename"},
    ("groups", "move"): {"position": "to"},
    ("keywords", "update"): {"word": "rename"},
    ("import",): {"mapping": "map", "types": "type", "error_file": "errors"},
    ("sandbox", "reply"): {"from": "sender"},
    ("segments", "update"): {"name": "rename", "new_name": "rename"},
    ("segments", "duplicate"): {"name": "new_name"},
}
# Commands whose flags are parsed after argparse (a provider kind's fields, as --FIELD).
KIND_FLAGS = {("providers", "add"), ("providers", "update")}


def command_of(parser: argparse.ArgumentParser, args: argparse.Namespace | None,
               ) -> tuple[tuple[str, ...], argparse.ArgumentParser]:
    """The subcommand path the user ran (`("groups", "move")`) and its parser."""
    path: list[str] = []
    current = parser
    while args is not None:
        sub = next((a for a in current._actions if isinstance(a, argparse._SubParsersAction)), None)
        chosen = getattr(args, sub.dest, None) if sub is not None else None
        if sub is None or chosen not in sub.choices:
            break
        path.append(chosen)
        current = sub.choices[chosen]
    return tuple(path), current


def _lookup(parser: argparse.ArgumentParser, path: tuple[str, ...], dest: str) -> str | None:
    for action in parser._actions:
        if action.dest != dest or isinstance(action, argparse._SubParsersAction) or action.nargs == argparse.REMAINDER:
            continue
        if action.option_strings:
            return next((o for o in action.option_strings if o.startswith("--")), action.option_strings[0])
        metavar = action.metavar if isinstance(action.metavar, str) else None
        return metavar or dest.upper()
    if path in KIND_FLAGS:
        return "--" + dest.replace("_", "-")
    return None


def field_name(field: str, path: tuple[str, ...], parser: argparse.ArgumentParser) -> str:
    """`mapping.email` → `--map email`; `word` → `WORD` (an argument) or `--rename`; a field no
    flag carried stays as the service named it."""
    base, _, detail = field.partition(".")
    aliases = next((FIELD_DESTS[path[:n]] for n in range(len(path), 0, -1) if path[:n] in FIELD_DESTS), {})
    named = _lookup(parser, path, aliases.get(base, base)) or base
    return f"{named} {detail}" if detail else named


def describe_problems(problems: Sequence[tuple[str, str]], parser: argparse.ArgumentParser | None = None,
                      args: argparse.Namespace | None = None) -> str:
    if parser is None:
        return "; ".join(f"{field}: {reason}" if field else reason for field, reason in problems)
    path, command = command_of(parser, args)
    return name_problems(problems, path, command)


def name_problems(problems: Sequence[tuple[str, str]], path: tuple[str, ...],
                  command: argparse.ArgumentParser) -> str:
    """The problems as one line, each field named as `command` (the parser of the subcommand
    `path`, e.g. `("import",)`) takes it."""
    return "; ".join(f"{field_name(field, path, command)}: {reason}" if field else reason
                     for field, reason in problems)
