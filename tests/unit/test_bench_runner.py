"""`python -m bench` (bench/run): one benchmark's rows as JSON, in the table's shape. No timings are
asserted: the figures belong to bench/README.md."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KEYS = {"bench", "measure", "figure", "goal", "ratio", "holds", "seconds"}


def run_bench(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSCONSOLE_")}
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_one_benchmark_as_json_rows() -> None:
    done = run_bench("--only", "startup", "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert rows, done.stderr
    for row in rows:
        assert set(row) == KEYS
        assert row["bench"] == "startup"
        assert isinstance(row["measure"], str) and row["measure"]
        assert isinstance(row["figure"], str) and isinstance(row["goal"], str)
        assert row["ratio"] is None or isinstance(row["ratio"], float | int)
        assert row["holds"] in (True, False, None)
    # it really measured (a crash would be one "not measured" row)
    assert not any(row["measure"].endswith("not measured") for row in rows), rows


def test_an_unknown_benchmark_is_a_clear_error() -> None:
    done = run_bench("--only", "nosuch")
    assert done.returncode == 2
    assert "unknown benchmark nosuch" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_benchmark_that_fails_is_a_row_not_a_crash(tmp_path: Path) -> None:
    # a timeout of zero seconds: the child is killed, and the table still prints with a row saying so
    done = run_bench("--only", "startup", "--timeout", "0", "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [row["measure"] for row in rows] == ["startup: not measured"]
    assert rows[0]["figure"].startswith("timed out") and rows[0]["holds"] is None
