"""Secrets stay secret (DESIGN.md invariant 7): a credential used for real sends and failures at
DEBUG level appears in no log line, in no CLI output, and not in plaintext in the database file."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from smsconsole.cli import main
from tests.fakes.server import serve
from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, Reply, twilio_error


@pytest.fixture
def twilio() -> FakeTwilio:
    fake = FakeTwilio()
    with serve(fake.app) as server:
        fake.base_url = server.url
        yield fake
        fake.close()


def test_credential_in_no_log_line_output_or_database_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], twilio: FakeTwilio,
) -> None:
    db_file = tmp_path / "data" / "smsconsole.db"
    monkeypatch.setenv("SMSCONSOLE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("SMSCONSOLE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SMSCONSOLE_DATABASE_URL", f"sqlite:///{db_file}")
    monkeypatch.setenv("SMSCONSOLE_LOG_LEVEL", "DEBUG")
    monkeypatch.delenv("SMSCONSOLE_SECRET_KEY", raising=False)

    outputs = []

    def run(*argv: str) -> int:
        code = main(list(argv))
        outputs.append(capsys.readouterr())
        return code

    assert run("providers", "add", "twilio", "--name", "tw", "--base-url", twilio.base_url,
               "--account-sid", ACCOUNT_SID, "--auth-token", AUTH_TOKEN, "--sender", "+15005550006") == 0
    assert run("providers", "test", "tw") == 0
    assert run("send-test", "--provider", "tw", "--to", "+14155550123", "--body", "hello") == 0
    twilio.answer_next(twilio_error(401, 20003, "Authenticate"))
    assert run("send-test", "--provider", "tw", "--to", "+14155550123", "--body", "again") == 1
    twilio.answer_next(Reply(500, "oops"), Reply(500, "oops"))
    assert run("providers", "show", "tw", "--json") == 0
    assert json.loads(outputs[-1].out)["settings"]["auth_token"] == "••••••"
    assert run("config") == 0
    assert any(r.basic_auth == (ACCOUNT_SID, AUTH_TOKEN) for r in twilio.requests)  # it was really used

    basic = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    log_text = (tmp_path / "data" / "smsconsole.log").read_text()
    assert "message" in log_text.lower()  # the DEBUG log did record the sends
    for text in (log_text, *(o.out + o.err for o in outputs)):
        assert AUTH_TOKEN not in text and basic not in text
    for path in tmp_path.joinpath("data").glob("smsconsole.db*"):  # the file, its WAL and shm
        raw = path.read_bytes()
        assert AUTH_TOKEN.encode() not in raw and basic.encode() not in raw

    key_file = tmp_path / "config" / "secret.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
