"""The command line: `smsconsole` starts the console; subcommands work headless.

`entry` holds the top-level parser and `main`; `output` how every command speaks (exit codes, the
one-line error, --json) and `runtime` how it opens the database; each other module is one noun
(`providers`, `groups` …) whose `register(commands)` adds its subcommands, each with its handler
as `func`. Noun modules import the shared modules, never each other or this package."""

from smsconsole.cli.entry import build_parser, main

__all__ = ["build_parser", "main"]
