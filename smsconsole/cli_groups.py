"""CLI commands for groups (wired into smsconsole.cli by add_parsers and HANDLERS)."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any

from smsconsole.config import Config

HANDLERS: dict[str, Callable[[Config, argparse.Namespace], Awaitable[int]]] = {}


def add_parsers(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Add this module's subcommands to the top-level `commands` subparsers."""
