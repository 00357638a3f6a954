"""Imports fed hostile files: a quoted field past the CSV field limit, NUL characters, lone
surrogates and undecodable bytes, values beyond what Python or the database can hold, a row the
database refuses, a database that fails mid-import, and two imports of one file at once. Each
bad row is reported alone (row number and a reason with no personal data), no line inside a bad
row becomes a row of its own, and every other row is kept."""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from smsconsole.models import Event, Profile
from smsconsole.runtime import Runtime
from smsconsole.services import imports as I
from smsconsole.services import profiles as P

from .cli_support import one_line_error

GB = P.AudienceDefaults(region="GB", timezone="UTC")
LIMIT = csv.field_size_limit()
GIANT = "A" * (LIMIT + 1)


def _write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogateescape"))
    return path


async def _import(rt: Runtime, path: Path, kind: str = "profiles", **options: object) -> I.ImportSummary:
    options.setdefault("defaults", GB)
    return await I.run_import(rt.factory, path, kind, actor="tester", **options)  # type: ignore[arg-type]


async def _user_ids(rt: Runtime) -> set[str | None]:
    async with rt.factory() as session:
        return set(await session.scalars(select(Profile.user_id)))


async def _count(rt: Runtime, model: type) -> int:
    async with rt.factory() as session:
        return await session.scalar(select(func.count()).select_from(model)) or 0


def _error_rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8", errors="surrogateescape") as handle:
        return list(csv.reader(handle))[1:]


# --- a quoted field past the csv module's field limit ---------------------------------------------

GHOST_FILE = ("user_id,phone,name,optin_at\n"
              f'real1,+14155550100,"{GIANT}\nghost1,+14155550001,Ghost,2026-01-01\n"\n'
              "real2,+14155550102,Bob,2026-01-01\n")


async def test_a_quoted_field_over_the_limit_is_one_bad_row_and_makes_no_phantom_profile(
        runtime: Runtime, tmp_path: Path) -> None:
    source = _write(tmp_path / "people.csv", GHOST_FILE)
    summary = await _import(runtime, source)

    assert (summary.rows_read, summary.good_rows, summary.bad_rows) == (2, 1, 1)
    assert [(p.row, p.column) for p in summary.problems] == [(2, "")]
    assert f"a field is longer than {LIMIT:,} characters" in summary.problems[0].reason
    assert await _user_ids(runtime) == {"real2"}
    async with runtime.factory() as session:
        assert await session.scalar(select(Profile.id).where(Profile.phone == "+14155550001")) is None
    [bad] = _error_rows(tmp_path / "people.errors.csv")  # the unreadable record whole in the first column
    assert bad[0].startswith('real1,+14155550100,"AAA') and len(bad[0]) == LIMIT  # readable CSV
    assert bad[1:] == ["", "", "", "2", summary.problems[0].reason]


async def test_the_error_file_of_a_giant_field_imports_again_without_a_phantom(runtime: Runtime, tmp_path: Path) -> None:
    first = await _import(runtime, _write(tmp_path / "people.csv", GHOST_FILE))
    assert first.error_file is not None
    again = await _import(runtime, first.error_file)
    assert (again.rows_read, again.good_rows, again.bad_rows) == (1, 0, 1)
    assert {(p.row, p.column) for p in again.problems} == {(2, "user_id")}  # too long to be an id: still bad
    assert await _user_ids(runtime) == {"real2"}


def test_the_preview_shows_the_giant_field_as_one_bad_row_and_no_phantom(tmp_path: Path) -> None:
    preview = I.preview_import(_write(tmp_path / "people.csv", GHOST_FILE), defaults=GB)
    assert [row.values[0] for row in preview.rows] == ["real2"]
    assert [(p.row, p.column) for p in preview.sample_problems] == [(2, "")]


async def test_a_giant_field_in_an_events_file_records_no_phantom_event(runtime: Runtime, tmp_path: Path) -> None:
    source = _write(tmp_path / "events.csv", (
        "user_id,event,at,note\n"
        f'u1,order,2026-03-01,"{GIANT}\nghost1,order,2026-03-02,x\n"\n'
        "u2,order,2026-03-03,ok\n"))
    summary = await _import(runtime, source, "events")
    assert (summary.events_recorded, summary.bad_rows) == (1, 1)
    assert [p.row for p in summary.problems] == [2]
    assert await _user_ids(runtime) == {"u2"}


async def test_a_quote_error_mid_row_does_not_turn_the_quoted_lines_after_it_into_rows(
        runtime: Runtime, tmp_path: Path) -> None:
    source = _write(tmp_path / "people.csv", (
        "user_id,phone,name\n"
        'u1,+14155550100,"Ann"x,"\nghost1,+14155550001,Ghost\n"\n'   # a strict-mode error, then a quoted newline
        "u2,+14155550102,Bob\n"))
    summary = await _import(runtime, source)
    assert [(p.row, p.column) for p in summary.problems] == [(2, "")]
    assert "check its quotes" in summary.problems[0].reason
    assert await _user_ids(runtime) == {"u2"}


# --- NUL characters, lone surrogates, undecodable bytes ---------------------------------------------


async def test_nul_characters_in_csv_fields_are_bad_rows_and_their_batches_are_kept(
        runtime: Runtime, tmp_path: Path) -> None:
    lines = ["user_id,phone,name,plan"]
    for i in range(2, 2002):  # file lines 2..2001; NUL at line 500 (in the file's head) and 1800 (past it)
        name = "Ann\x00Smith" if i == 500 else f"Person {i}"
        plan = "go\x00ld" if i == 1800 else "gold"
        lines.append(f"u{i},+4474001{i:05d},{name},{plan}")
    source = _write(tmp_path / "people.csv", "\n".join(lines) + "\n")

    summary = await _import(runtime, source, batch_size=1000)
    assert [(p.row, p.column) for p in summary.problems] == [(500, "name"), (1800, "plan")]
    for problem in summary.problems:
        assert problem.reason == "contains a NUL character (\\x00)"
    assert (summary.created, summary.good_rows, summary.bad_rows) == (1998, 1998, 2)
    assert "u499" in await _user_ids(runtime) and "u500" not in await _user_ids(runtime)

    again = await _import(runtime, source, batch_size=1000)
    assert (again.created, again.unchanged, again.bad_rows) == (0, 1998, 2)


JSONL_HOSTILE = [
    ('{"user_id": "u1", "name": "order", "at": "2026-03-01", "note": "fine"}', None),
    ('{"user_id": "u2", "name": "order", "at": "2026-03-01", "properties": {"note": "a\\u0000b"}}', "properties"),
    ('{"user_id": "u3", "name": "order", "at": "2026-03-01", "properties": {"k\\u0000ey": "x"}}', "properties"),
    ('{"user_id": "u4", "name": "order", "at": "2026-03-01", "co\\u0000lor": "red"}', "co\x00lor"),
    ('{"user_id": "u5", "name": "order", "at": "2026-03-01", "note": "\\ud800"}', "note"),
    ('{"user_id": "u6\\udc80", "name": "order", "at": "2026-03-01"}', "user_id"),
    ('{"user_id": "u7", "name": "order", "at": "2026-03-01", "tags": ["a", "b\\u0000"]}', "tags"),
    ('{"user_id": "u8", "name": "ord\\u0000er", "at": "2026-03-01"}', "name"),
    ('{"user_id": "u9", "name": "order", "at": "2026-03-01", "note": "Ren\xe9e"}', ""),  # a Latin-1 byte
    ('{"user_id": "u10", "name": "order", "at": "2026-03-01", "big": ' + "1" * 5000 + "}", ""),
    ('{"user_id": "u11", "name": "order", "at": "2026-03-01", "deep": ' + "[" * 100_000 + "]" * 100_000 + "}", ""),
    ('{"user_id": "u12", "name": "order", "at": "2026-03-01", "note": "\\ud83d\\ude00 fine"}', None),
]


@pytest.mark.parametrize("kind", ["events", "profiles"])
async def test_json_lines_with_nul_surrogates_or_oversized_values_are_bad_rows(
        runtime: Runtime, tmp_path: Path, kind: str) -> None:
    content = "\n".join(line for line, _ in JSONL_HOSTILE) + "\n"
    if kind == "profiles":
        content = content.replace('"name": "order", "at": "2026-03-01", ', "")
    latin1 = content.encode("utf-8").replace("é".encode(), b"\xe9")  # the u9 line: a byte that is not UTF-8
    source = _write(tmp_path / f"{kind}.jsonl", latin1)
    expected = [(row, column) for row, (_, column) in enumerate(JSONL_HOSTILE, start=1) if column is not None]

    summary = await _import(runtime, source, kind)
    assert [(p.row, p.column) for p in summary.problems] == expected
    assert await _user_ids(runtime) >= {"u1", "u12"}
    assert not await _user_ids(runtime) & {f"u{row}" for row, _ in expected}
    if kind == "events":
        assert summary.events_recorded == 2 and await _count(runtime, Event) == 2
    else:
        assert summary.created == 2
    again = await _import(runtime, source, kind)
    assert again.bad_rows == summary.bad_rows and again.created == 0

    # the error file keeps each bad line (its bytes, when it is a JSON object) and imports again harmlessly
    assert summary.error_file == tmp_path / f"{kind}.errors.jsonl"
    originals = latin1.split(b"\n")
    written = summary.error_file.read_bytes().split(b"\n")
    assert len(written) == len(expected) + 1 and written[-1] == b""
    for line, (row, _) in zip(written, expected):
        original = originals[row - 1]
        if line.startswith(b'{"_error": '):
            note = json.loads(line)["_error"]
            assert note["row"] == row and original.decode("utf-8", "surrogateescape").startswith(note["line"])
        else:
            assert line.startswith(original.rstrip(b"}").rstrip()) and b', "_error": {"row": %d, ' % row in line
    before = await _user_ids(runtime)
    retried = await _import(runtime, summary.error_file, kind)
    assert (retried.bad_rows, retried.good_rows) == (summary.bad_rows, 0)
    assert await _user_ids(runtime) == before


async def test_a_header_with_a_nul_character_stops_the_import_before_it_writes(
        runtime: Runtime, tmp_path: Path) -> None:
    with pytest.raises(I.ImportFileError, match="column names contain a NUL character"):
        await _import(runtime, _write(tmp_path / "people.csv", "user_id,pl\x00an\nu1,gold\n"))
    assert await _count(runtime, Profile) == 0


async def test_a_date_beyond_the_calendar_is_a_bad_row(runtime: Runtime, tmp_path: Path) -> None:
    source = _write(tmp_path / "people.csv", ("user_id,optin_at\n"
                                               "u1,0001-01-01T00:00:00+14:00\n"
                                               "u2,2026-01-01\n"))
    assert [p.row for p in I.preview_import(source, defaults=GB).sample_problems] == [2]
    summary = await _import(runtime, source)
    assert [p.row for p in summary.problems] == [2] and summary.good_rows == 1
    assert await _user_ids(runtime) == {"u2"}


# --- the database refuses a row, or fails ---------------------------------------------------------


async def _refuse_name(rt: Runtime, name: str) -> None:
    """A rule in the database itself (as a DBA might add) that refuses one value."""
    async with rt.db.begin() as conn:
        if conn.dialect.name == "sqlite":
            await conn.execute(text(f"CREATE TRIGGER refuse BEFORE INSERT ON profiles WHEN NEW.name = '{name}' "
                                    "BEGIN SELECT RAISE(ABORT, 'refused by a rule'); END"))
        else:
            await conn.execute(text(f"ALTER TABLE profiles ADD CONSTRAINT refuse CHECK (name <> '{name}')"))


async def test_a_row_the_database_refuses_is_reported_and_the_rest_of_its_batch_kept(
        runtime: Runtime, tmp_path: Path) -> None:
    await _refuse_name(runtime, "Refused Person")
    lines = ["user_id,phone,name"] + [
        f"u{i},+4474001{i:05d},{'Refused Person' if i == 300 else f'Person {i}'}" for i in range(2, 1002)]
    source = _write(tmp_path / "people.csv", "\n".join(lines) + "\n")

    summary = await _import(runtime, source, batch_size=1000)
    assert [(p.row, p.column) for p in summary.problems] == [(300, "")]
    reason = summary.problems[0].reason
    assert reason.startswith("the database refused this row") and "Refused" not in reason and "+44" not in reason
    assert (summary.created, summary.bad_rows) == (999, 1)
    assert len(await _user_ids(runtime)) == 999
    assert [(r[:3], r[3]) for r in _error_rows(tmp_path / "people.errors.csv")] == [
        (["u300", "+447400100300", "Refused Person"], "300")]


def _cli_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return {**os.environ, "SMSCONSOLE_CONFIG_DIR": str(tmp_path / "config"),
            "SMSCONSOLE_DATA_DIR": str(tmp_path / "data"), "SMSCONSOLE_DATABASE_URL": database_url}


async def test_a_database_failure_mid_import_is_one_line_and_keeps_the_finished_batches(
        runtime: Runtime, tmp_path: Path, database_url: str) -> None:
    async with runtime.db.begin() as conn:
        if conn.dialect.name == "sqlite":  # a broken trigger: every insert into profiles fails
            await conn.execute(text("CREATE TRIGGER broken AFTER INSERT ON profiles WHEN NEW.name = 'Full' "
                                    "BEGIN INSERT INTO missing_table VALUES (1); END"))
        else:  # the disk fills up when the row named Full is written
            await conn.execute(text(
                "CREATE FUNCTION fill() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF NEW.name = 'Full' THEN RAISE EXCEPTION 'could not extend file' USING ERRCODE = 'disk_full'; "
                "END IF; RETURN NEW; END $$"))
            await conn.execute(text("CREATE TRIGGER fill BEFORE INSERT ON profiles "
                                    "FOR EACH ROW EXECUTE FUNCTION fill()"))
    lines = ["user_id,phone,name"] + [
        f"u{i},+4474001{i:05d},{'Full' if i == 2500 else f'Person {i}'}" for i in range(2, 3002)]
    source = _write(tmp_path / "people.csv", "\n".join(lines) + "\n")

    result = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "smsconsole", "import", "profiles", str(source)],
        env=_cli_env(tmp_path, database_url), capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    line = one_line_error(result.stderr)
    assert "the database failed" in line and "re-run" in line
    assert "Person" not in line and "+44" not in line and "u2500" not in line
    if runtime.db.dialect.name == "postgresql":
        assert "SQLSTATE 53100" in line and "2,000 rows before them were imported" in line
        assert len(await _user_ids(runtime)) == 2000  # the first batch (lines 2–2001) is kept


async def test_a_write_that_meets_a_lock_is_retried_until_it_goes_through(
        runtime: Runtime, tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    if runtime.db.dialect.name == "sqlite":
        pytest.skip("SQLite waits its 10 s busy timeout before 'database is locked'; the retry is the same code")
    async with runtime.db.connect() as conn:  # lock waits end after 200 ms, as a busy server's might
        await conn.execute(text(f'ALTER DATABASE "{make_url(database_url).database}" SET lock_timeout = 200'))
        await conn.commit()
    await runtime.db.dispose()
    retried = asyncio.Event()

    class Retries(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "retrying" in record.getMessage():
                retried.set()

    caplog.set_level(logging.INFO, logger="smsconsole.services.imports")
    logging.getLogger("smsconsole.services.imports").addHandler(handler := Retries())
    source = _write(tmp_path / "people.csv", _people(100))
    try:
        async with runtime.db.connect() as locker:
            await locker.execute(text("LOCK TABLE profiles IN EXCLUSIVE MODE"))  # reads go on, writes wait
            importing = asyncio.create_task(_import(runtime, source))
            await asyncio.wait([importing, asyncio.create_task(retried.wait())], timeout=60,
                               return_when=asyncio.FIRST_COMPLETED)
            await locker.rollback()
        summary = await importing
    finally:
        logging.getLogger("smsconsole.services.imports").removeHandler(handler)
    assert (summary.created, summary.bad_rows) == (100, 0)
    assert await _count(runtime, Profile) == 100


# --- two imports of one file at once --------------------------------------------------------------


def _people(count: int) -> str:
    return "user_id,phone,name,plan\n" + "".join(f"u{i},+4474002{i:05d},Person {i},gold\n" for i in range(count))


async def test_two_imports_of_one_file_at_once_both_finish(runtime: Runtime, tmp_path: Path) -> None:
    source = _write(tmp_path / "people.csv", _people(3000))
    first, second = await asyncio.gather(_import(runtime, source, batch_size=500),
                                         _import(runtime, source, batch_size=500))
    assert first.bad_rows == second.bad_rows == 0
    assert first.created + second.created == 3000
    assert first.created + first.updated + first.unchanged == 3000
    assert await _count(runtime, Profile) == 3000


async def test_two_cli_imports_of_one_file_at_once_never_print_a_traceback(
        runtime: Runtime, tmp_path: Path, database_url: str) -> None:
    source = _write(tmp_path / "people.csv", _people(6000))
    command = [sys.executable, "-m", "smsconsole", "import", "profiles", str(source)]
    env = _cli_env(tmp_path, database_url)
    runs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    outputs = [run.communicate(timeout=180) for run in runs]
    for run, (out, err) in zip(runs, outputs, strict=True):
        assert "Traceback" not in err, err
        if run.returncode == 0:
            assert out.startswith("ok: 6,000 rows read")
        else:
            one_line_error(err)
    assert await _count(runtime, Profile) == 6000
