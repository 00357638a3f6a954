"""How every command speaks: exit codes, the one-line error, `--json`, the parser that turns bad
input into that one line, and the yes/no question before a destructive step.

Every error a user can cause prints one line and exits non-zero (2 for bad input or setup,
1 when the requested operation itself failed)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict, is_dataclass
from datetime import datetime
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, NoReturn

from smsconsole.cli.problems import describe_problems
from smsconsole.config import Config, ConfigError

if TYPE_CHECKING:
    from sqlalchemy.exc import DBAPIError

EXIT_FAILED = 1
EXIT_USAGE = 2

# A command's handler (set as `func=` on its parser by the noun module's `register`).
Handler = Callable[[Config, argparse.Namespace], Awaitable[int]]
# The subparsers a noun module adds its commands to.
Commands = argparse._SubParsersAction


class UsageError(Exception):
    """Bad command-line input; printed as one line, exit 2."""


class OperationFailed(Exception):
    """The operation ran and failed (send failed, connection test failed); exit 1."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")

    def add_argument(self, *names: Any, **kwargs: Any) -> argparse.Action:
        # a positional reads the same in --help, README and errors: NAME, WORD (choices stay listed)
        if len(names) == 1 and not str(names[0]).startswith("-") and not {"metavar", "choices"} & kwargs.keys():
            kwargs["metavar"] = str(names[0]).upper()
        return super().add_argument(*names, **kwargs)


def add_actions(noun: argparse.ArgumentParser, dest: str) -> Commands:
    """A noun's required ACTION subcommands (`groups list`, `groups show` …), parsed by Parser."""
    return noun.add_subparsers(dest=dest, metavar="ACTION", required=True, parser_class=Parser)


def print_json(value: Any) -> None:
    print(json.dumps(plain(value), indent=2, ensure_ascii=False))


def plain(value: Any) -> Any:
    """A value as JSON holds it: dataclasses as dicts, times in ISO 8601, paths as text."""
    if is_dataclass(value) and not isinstance(value, type):
        return plain(asdict(value))
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    return value


def confirmed(question: str, refusal: str) -> bool:
    """Ask `question` on a terminal (yes or no); with no terminal to ask, refuse with `refusal`."""
    if not sys.stdin.isatty():
        raise UsageError(refusal)
    return input(question).strip().lower() in ("y", "yes")


def fail(message: str, code: int) -> int:
    print(f"smsconsole: error: {message}", file=sys.stderr)
    return code


def error_line(exc: Exception, parser: argparse.ArgumentParser, args: argparse.Namespace | None,
               config: Config | None) -> tuple[str, int] | None:
    """The one line and exit code for an error a user can cause; None for anything else (a bug)."""
    if isinstance(exc, (UsageError, ConfigError)):
        return str(exc), EXIT_USAGE
    if isinstance(exc, OperationFailed):
        return str(exc), EXIT_FAILED
    # Error classes of modules a command never imported cannot have been raised, so they are
    # looked up only among the loaded modules (importing them here would cost every command).
    if isinstance(exc, (*_loaded("smsconsole.db", "DatabaseUrlError"), *_loaded("smsconsole.secrets", "SecretError"))):
        return str(exc), EXIT_USAGE
    if isinstance(exc, _loaded("smsconsole.db", "DatabaseError")):  # cannot be opened: the operation failed
        return str(exc), EXIT_FAILED
    if isinstance(exc, _loaded("sqlalchemy.exc", "DBAPIError")):  # full disk or database, read-only, lost connection
        return _describe_database_error(exc, config), EXIT_FAILED  # type: ignore[arg-type]
    if isinstance(exc, OSError):  # e.g. no space left on device writing a file
        return _describe_os_error(exc), EXIT_FAILED
    from smsconsole.services.errors import ServiceError, ValidationError  # lazy: start-up

    if isinstance(exc, ValidationError):
        return describe_problems(exc.problems, parser, args), EXIT_USAGE
    if isinstance(exc, ServiceError):
        return str(exc), EXIT_USAGE
    return None


def _loaded(module: str, name: str) -> tuple[type[BaseException], ...]:
    """The class `module.name` when that module is loaded (for isinstance), else ()."""
    loaded = sys.modules.get(module)
    return (getattr(loaded, name),) if loaded is not None else ()


def _describe_database_error(exc: DBAPIError, config: Config | None) -> str:
    """One line for a database error: the driver's first line only (never the statement or its
    parameters, which may hold personal data)."""
    from smsconsole.secrets import mask_url  # lazy: start-up

    reason = str(exc.orig or exc).strip().splitlines()[0] if str(exc.orig or exc).strip() else type(exc).__name__
    where = f"the database {mask_url(config.effective_database_url)}" if config else "the database"
    lowered = reason.lower()
    if "readonly database" in lowered or "read-only transaction" in lowered:
        return f"{where} is read-only and this command writes to it ({reason})"
    if "database or disk is full" in lowered or "no space left" in lowered or "disk full" in lowered:
        return f"{where} is full, or the disk it is on is ({reason}); free some space and run the command again"
    return f"database error: {reason}"


def _describe_os_error(exc: OSError) -> str:
    reason = exc.strerror or type(exc).__name__
    return f"{reason}: {exc.filename}" if exc.filename else reason
