"""The log survives a flood: lines of one kind beyond a few per window are counted, not written."""

from __future__ import annotations

import logging
from pathlib import Path

from smsconsole.logs import REPEAT_BURST, REPEAT_WINDOW_SECONDS, LineFormatter, RepeatFilter, setup_logging


def _record(message: str, arg: object, created: float, level: int = logging.ERROR) -> logging.LogRecord:
    record = logging.makeLogRecord({"name": "smsconsole.test", "levelno": level,
                                    "levelname": logging.getLevelName(level), "msg": message, "args": (arg,)})
    record.created = created
    return record


def test_a_flood_of_one_kind_of_line_is_collapsed_and_counted() -> None:
    repeats = RepeatFilter()
    passed = [n for n in range(1000) if repeats.filter(_record("accept failed: %s", n, 100.0 + n / 1000))]
    assert passed == list(range(REPEAT_BURST))
    other = _record("something else %s", 1, 100.5)
    assert repeats.filter(other)  # another kind of line is not held back by the flood
    later = _record("accept failed: %s", "again", 100.0 + REPEAT_WINDOW_SECONDS + 1)
    assert repeats.filter(later)
    assert LineFormatter("%(message)s").format(later) == (
        f"accept failed: again (repeated {1000 - REPEAT_BURST} more times in the previous {REPEAT_WINDOW_SECONDS:g} s)")
    assert later.getMessage() == "accept failed: again"  # other handlers (a test's caplog) see the record as logged


def test_one_record_is_decided_once_for_every_handler() -> None:
    repeats = RepeatFilter(burst=1)
    first, second = _record("x %s", 1, 1.0), _record("x %s", 2, 1.1)
    assert [repeats.filter(first), repeats.filter(first)] == [True, True]
    assert [repeats.filter(second), repeats.filter(second)] == [False, False]


def test_the_log_file_holds_a_handful_of_lines_of_a_flood(tmp_path: Path) -> None:
    log_file = tmp_path / "smsconsole.log"
    setup_logging(log_file)
    try:
        for n in range(2000):
            logging.getLogger("smsconsole.listener").error("socket.accept() out of system resource (%s)", n)
    finally:
        root = logging.getLogger()
        for handler in [h for h in root.handlers if getattr(h, "_smsconsole", False)]:
            handler.close()
            root.removeHandler(handler)
    lines = log_file.read_text().splitlines()
    assert 1 <= len(lines) <= REPEAT_BURST
