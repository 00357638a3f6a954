"""The CLI as an operator uses it headless: one line and a non-zero exit for every bad input."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.integration.cli_support import one_line_error as _one_line_error


@pytest.mark.fresh_database
def test_db_current_and_upgrade(cli) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("db", "current")
    assert code == 0 and "not initialized" in out
    code, out, _ = cli("db", "upgrade")
    assert code == 0 and "(head)" in out
    code, out, _ = cli("db", "current")
    assert code == 0 and "(head)" in out


def test_provider_lifecycle_and_test_send(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("providers", "add", "sandbox", "--name", "sbx")[0] == 0
    code, out, _ = cli("providers", "list", "--json")
    assert code == 0 and [p["name"] for p in json.loads(out)] == ["sbx"]
    code, out, _ = cli("providers", "test", "sbx")
    assert code == 0 and out.startswith("ok:")
    code, out, _ = cli("send-test", "--provider", "sbx", "--to", "+1 415 555 0123", "--body", "Hi “there” 😀", "--json")
    sent = json.loads(out)
    assert code == 0 and sent["state"] == "sent" and sent["to_number"] == "+14155550123"
    assert sent["encoding"] == "UCS-2" and sent["provider_message_id"]
    code, out, _ = cli("send-test", "--provider", "sbx", "--to", "+14155550123", "--body", "Hi “there”",
                       "--smart-encoding")
    assert code == 0 and "GSM-7" in out
    code, out, _ = cli("providers", "show", "sbx")
    assert code == 0 and "healthy" in out
    assert cli("providers", "remove", "sbx")[0] == 0
    assert json.loads(cli("providers", "list", "--json")[1]) == []


def test_failed_send_exits_1_with_code_and_reason(cli) -> None:  # type: ignore[no-untyped-def]
    cli("providers", "add", "sandbox", "--name", "sbx", "--fail-pattern", r"^\+44")
    code, _, err = cli("send-test", "--provider", "sbx", "--to", "+447400123456", "--body", "x")
    line = _one_line_error(err)
    assert code == 1 and "failed" in line and "SANDBOX-REJECTED" in line


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (("send-test", "--provider", "sbx", "--to", "12", "--body", "hi"), "--to"),
        (("send-test", "--provider", "sbx", "--to", "hello", "--body", "hi"), "--to"),
        (("send-test", "--provider", "sbx", "--to", "+14155550123", "--body", "   "), "--body: is required"),
        (("send-test", "--provider", "sbx", "--to", "+14155550123", "--body", "x" * 1601), "at most 1,600"),
        (("send-test", "--provider", "ghost", "--to", "+14155550123", "--body", "hi"), "no provider named 'ghost'"),
        (("providers", "add", "sandbox", "--name", "x", "--bogus", "1"), "unknown option '--bogus'"),
        (("providers", "add", "sandbox"), "--name"),
        (("providers", "add", "nokind", "--name", "x"), "unknown kind 'nokind'"),
        (("providers", "add", "twilio", "--name", "tw", "--account-sid", "AC1"), "--account-sid"),
        (("providers", "show", "ghost"), "no provider named 'ghost'"),
        (("providers", "remove", "ghost"), "no provider named 'ghost'"),
        (("frobnicate",), "invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli, argv: tuple[str, ...], expected: str) -> None:  # type: ignore[no-untyped-def]
    cli("providers", "add", "sandbox", "--name", "sbx")
    code, _, err = cli(*argv)
    assert code == 2
    assert expected in _one_line_error(err)


def test_nothing_half_written_by_a_rejected_send(cli, tmp_path: Path, database_url: str) -> None:  # type: ignore[no-untyped-def]
    if not database_url.startswith("sqlite"):
        pytest.skip("reads the SQLite file directly")
    cli("providers", "add", "sandbox", "--name", "sbx")
    cli("send-test", "--provider", "sbx", "--to", "12", "--body", "")
    path = database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        assert conn.execute("select count(*) from messages").fetchone()[0] == 0


@pytest.mark.parametrize(
    ("url", "exit_code"),
    [("postgresql://nobody@127.0.0.1:1/nothing", 1),  # cannot be opened: the operation failed
     ("mysql://root@localhost/x", 2), ("not a url", 2), ("sqlite://", 2)],  # a wrong URL is bad input
)
def test_unusable_database_url(cli, url: str, exit_code: int) -> None:  # type: ignore[no-untyped-def]
    code, _, err = cli("--database-url", url, "providers", "list")
    assert code == exit_code
    _one_line_error(err)


def test_database_written_by_a_newer_version(cli, database_url: str) -> None:  # type: ignore[no-untyped-def]
    cli("db", "upgrade")
    import asyncio

    from sqlalchemy import text

    from smsconsole.db import create_engine

    async def bump() -> None:
        engine = create_engine(database_url)
        async with engine.begin() as conn:
            await conn.execute(text("update alembic_version set version_num = '9999_future'"))
        await engine.dispose()

    asyncio.run(bump())
    code, _, err = cli("providers", "list")
    assert code == 1 and "newer smsconsole" in _one_line_error(err)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('database_url = "sqlite:///x\n', "line 1"),
        ("log_level = 'LOUD'\n", "line 1: log_level must be one of"),
        ("\n\nbogus_key = 1\n", "line 3: unknown key 'bogus_key'"),
        ("heartbeat_seconds = 'fast'\n", "heartbeat_seconds must be a float"),
    ],
)
def test_malformed_config_file(cli, tmp_path: Path, content: str, expected: str) -> None:  # type: ignore[no-untyped-def]
    config_file = tmp_path / "config" / "config.toml"
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text(content)
    code, _, err = cli("config")
    line = _one_line_error(err)
    assert code == 2 and str(config_file) in line and expected in line


def test_config_masks_secrets(cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SMSCONSOLE_DATABASE_URL", "postgresql://ops:hunter22@db.internal:5432/sms")
    monkeypatch.setenv("SMSCONSOLE_SECRET_KEY", "a" * 43 + "=")
    code, out, _ = cli("config", "--json")
    shown = json.loads(out)
    assert code == 0 and "hunter22" not in out and "aaaa" not in out
    assert shown["database_url"] == "postgresql://ops:••••••@db.internal:5432/sms"


def test_send_test_when_another_engine_runs(cli, database_url: str) -> None:  # type: ignore[no-untyped-def]
    import asyncio
    from datetime import timedelta

    from smsconsole import clock
    from smsconsole.db import create_engine, session_factory
    from smsconsole.models import EngineLease

    cli("providers", "add", "sandbox", "--name", "sbx")

    async def hold() -> None:
        engine = create_engine(database_url)
        async with session_factory(engine)() as session, session.begin():
            now = clock.now()
            session.add(EngineLease(name="engine", holder="elsewhere:4242:x", host="elsewhere", pid=4242,
                                    acquired_at=now, heartbeat_at=now, expires_at=now + timedelta(minutes=5)))
        await engine.dispose()

    asyncio.run(hold())
    code, out, _ = cli("send-test", "--provider", "sbx", "--to", "+14155550123", "--body", "hi")
    assert code == 0 and "queued" in out and "elsewhere" in out and "4242" in out
    code, _, err = cli("send-test", "--provider", "sbx", "--to", "+14155550123", "--body", "hi", "--wait",
                       "--timeout", "0.5")
    assert code == 1 and "still queued" in _one_line_error(err)


def test_demo_creates_then_refuses_to_reset_without_yes(cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal: no question can be asked
    code, out, _ = cli("demo", "--profiles", "40")
    assert code == 0 and "40 profiles" in out and "sandbox" in out
    code, _, err = cli("demo", "--profiles", "40")
    assert code == 2 and "--yes" in _one_line_error(err)
    code, out, _ = cli("demo", "--profiles", "30", "--yes")
    assert code == 0 and "30 profiles" in out
    code, out, _ = cli("profiles", "search", "demo-00001", "--json")
    assert code == 0 and [p["user_id"] for p in json.loads(out)] == ["demo-00001"]
    code, out, _ = cli("profiles", "show", "demo-00001")
    assert code == 0 and "subscription:" in out and "events:" in out
    code, _, err = cli("profiles", "show", "nobody")
    assert code == 2 and "no profile" in _one_line_error(err)


def test_api_keys_created_shown_once_listed_and_revoked(cli) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("api-keys", "create", "crm", "--json")
    created = json.loads(out)
    assert code == 0 and created["key"].startswith(f"smsc_{created['prefix']}_")
    code, out, _ = cli("api-keys", "list", "--json")
    listed = json.loads(out)
    assert [k["name"] for k in listed] == ["crm"] and created["key"] not in out
    assert cli("api-keys", "revoke", created["prefix"])[0] == 0
    assert json.loads(cli("api-keys", "list", "--json")[1])[0]["revoked_at"]
    code, _, err = cli("api-keys", "revoke", "nope")
    assert code == 2 and "no API key" in _one_line_error(err)


def test_import_keeps_good_rows_reports_bad_ones_and_is_idempotent(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "people.csv"
    source.write_text("phone,user_id,opt-in,zip\n+447400123456,u1,2026-01-05,02139\nabc,,2026-01-05,1\n")
    code, out, _ = cli("import", "profiles", str(source), "--preview")
    assert code == 0 and "opt-in" in out and "optin_at" in out
    code, out, _ = cli("import", "profiles", str(source))
    assert code == 1 and out.startswith("partial:") and "1 created" in out and "row 3, column 'phone'" in out
    assert (tmp_path / "people.errors.csv").read_text().splitlines()[0] == "phone,user_id,opt-in,zip,error_row,error_reason"
    code, out, _ = cli("import", "profiles", str(source), "--json")
    summary = json.loads(out)
    assert (summary["created"], summary["updated"], summary["unchanged"]) == (0, 0, 1)
    code, out, _ = cli("profiles", "show", "u1", "--json")
    assert json.loads(out)["subscription"] == "subscribed"
    code, _, err = cli("import", "profiles", str(tmp_path / "missing.csv"))
    assert code == 2 and "does not exist" in _one_line_error(err)
    code, _, err = cli("import", "events", str(source), "--map", "oops")
    assert code == 2 and "--map" in _one_line_error(err)


def test_generic_provider_from_a_preset(cli) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("providers", "presets")
    assert code == 0 and "msg91:" in out and "textlocal-in:" in out
    code, out, err = cli("providers", "add", "generic", "--preset", "msg91", "--name", "msg91g",
                         "--api-key", "k3y-s3cret", "--sender", "ACMEIN")
    assert code == 0, err
    code, out, _ = cli("providers", "show", "msg91g", "--json")
    settings = json.loads(out)["settings"]
    assert settings["url"] == "https://api.msg91.com/api/v2/sendsms" and settings["batch_key"] == "sms"
    assert "k3y-s3cret" not in out
    code, _, err = cli("providers", "add", "generic", "--preset", "nope", "--name", "x")
    assert code == 2 and "--preset: no preset 'nope'" in _one_line_error(err)
