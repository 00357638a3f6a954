"""The import directions of DESIGN.md, checked by import-linter contracts in pyproject.toml:
services and providers never import Textual; providers import no database code and no services;
screens and the CLI reach providers and rows only through services, the listener rows too; the
layers cli → app → engine → listener → services → providers; the CLI's noun modules are independent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_hold() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "Contracts: 8 kept, 0 broken." in result.stdout


def test_stylesheet_ships_with_the_package() -> None:
    import smsconsole

    assert (Path(smsconsole.__file__).parent / "smsconsole.tcss").is_file()
