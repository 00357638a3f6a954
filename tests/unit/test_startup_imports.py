"""What starting costs: the console's first frame and the CLI's quick commands load only what they
show. Checked by which modules a fresh interpreter has loaded (the times are in bench/startup.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def _loaded_after(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running `code`."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_region_names_do_not_load_the_geocoding_table() -> None:
    loaded = _loaded_after("from smsconsole import phone\nassert phone.region_name('GB') == 'United Kingdom'\n"
                           "assert dict(phone.REGION_CHOICES)['DE'] == 'Germany'")
    assert "phonenumbers.geodata" not in loaded


def test_the_console_loads_the_engine_after_its_first_frame() -> None:
    loaded = _loaded_after("import smsconsole.app")
    assert not {"smsconsole.engine.runner", "smsconsole.engine.dispatcher", "smsconsole.listener.server",
                "apscheduler", "uvicorn"} & loaded


def test_the_console_loads_a_section_when_it_is_first_opened() -> None:
    # the first frame is Home's: the other sections' screens, their services and Alembic wait
    loaded = _loaded_after("import smsconsole.app")
    assert not {"smsconsole.screens.home", "smsconsole.screens.providers", "smsconsole.screens.audience.search",
                "smsconsole.screens.segments.screen", "smsconsole.screens.stats", "smsconsole.screens.commands",
                "smsconsole.services.imports", "smsconsole.services.segments", "alembic"} & loaded


@pytest.mark.parametrize("argv", [["--help"], ["providers", "--help"], ["--version"]])
def test_help_loads_no_database_code(argv: list[str]) -> None:
    loaded = _loaded_after(f"from smsconsole.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass")
    assert not {"sqlalchemy", "smsconsole.db", "cryptography", "textual"} & loaded
