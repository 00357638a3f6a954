"""Checks shared by the CLI tests."""

from __future__ import annotations


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("smsconsole: error: ") and "Traceback" not in err
    return lines[0]
