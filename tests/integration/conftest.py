"""Integration fixtures: `cli` runs the command line in-process against the test database."""

from __future__ import annotations

from pathlib import Path

import pytest

from smsconsole.cli import main


@pytest.fixture
def cli(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SMSCONSOLE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("SMSCONSOLE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SMSCONSOLE_DATABASE_URL", database_url)
    monkeypatch.delenv("SMSCONSOLE_SECRET_KEY", raising=False)

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run
