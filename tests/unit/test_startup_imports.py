"""What starting costs: the console's first frame and the CLI's quick commands load only what they
show. Checked by which modules a fresh interpreter has loaded (the times are in bench/startup.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _loaded_after(code: str, env: dict[str, str] | None = None) -> set[str]:
    """The modules a fresh interpreter has loaded after running `code`."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True,
                          env=env)
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


def test_a_reading_command_loads_no_adapter_no_http_client_and_no_alembic(tmp_path: Path) -> None:
    env = {**os.environ, "SMSCONSOLE_DATA_DIR": str(tmp_path / "data"), "SMSCONSOLE_CONFIG_DIR": str(tmp_path / "config")}
    env = {k: v for k, v in env.items() if k not in ("SMSCONSOLE_DATABASE_URL", "SMSCONSOLE_TEST_DATABASE_URL")}
    command = "from smsconsole.cli import main\ntry:\n    main(['providers', 'list'])\nexcept SystemExit:\n    pass"
    first = _loaded_after(command, env)  # creates the database: migrating needs Alembic
    assert "alembic" in first
    loaded = _loaded_after(command, env)
    assert not {"alembic", "httpx", "textual", "smsconsole.providers.twilio", "smsconsole.providers.sandbox",
                "smsconsole.providers.generic.curl", "smsconsole.providers.generic.presets"} & loaded
