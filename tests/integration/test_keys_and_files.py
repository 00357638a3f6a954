"""The secret key, secrets in provider answers, and the files smsconsole writes.

- A lost or wrong key file is never silent: every start that needs secrets refuses in one line
  that says which key is expected and how to restore it, no new key is made over stored
  credentials, and an operator can re-enter a provider's secret to make it work with a new key.
- A gateway that echoes its request (URL, headers, body) cannot leak a secret into a message's
  reason, its attempts, a CLI printout or the log: resolved secrets are scrubbed where adapters
  are built.
- The database (and its WAL), the log, the key file and their folders are private to the user.
- A read-only database opens for reading; a full disk or database is one line, not a traceback.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus, unquote

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from smsconsole.config import Config
from smsconsole.db import create_engine, is_sqlite
from smsconsole.runtime import Runtime
from smsconsole.secrets import SecretError
from tests.conftest import make_config
from tests.fakes.generic import FakeGateway, RecordedRequest, Reply
from tests.fakes.server import serve
from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.integration.cli_support import one_line_error

TO = "+14155550123"


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _rows(database_url: str, sql: str) -> list[tuple]:  # type: ignore[type-arg]
    async def read() -> list[tuple]:  # type: ignore[type-arg]
        engine = create_engine(database_url)
        try:
            async with engine.connect() as conn:
                return [tuple(row) for row in (await conn.execute(text(sql))).all()]
        finally:
            await engine.dispose()

    return asyncio.run(read())


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio()
    with serve(fake.app) as server:
        fake.base_url = server.url
        yield fake
        fake.close()


def _config(tmp_path: Path, database_url: str) -> Config:
    return make_config(tmp_path, database_url)


def _add_twilio(cli, name: str, base_url: str) -> None:  # type: ignore[no-untyped-def]
    code, _, err = cli("providers", "add", "twilio", "--name", name, "--base-url", base_url,
                       "--account-sid", ACCOUNT_SID, "--auth-token", AUTH_TOKEN, "--sender", "+15005550006")
    assert code == 0, err


# --- item 12: a lost key -----------------------------------------------------------------------------


def test_lost_key_file_refuses_to_start_in_one_line_and_makes_no_new_key(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, database_url: str, twilio: FakeTwilio,
) -> None:
    _add_twilio(cli, "tw", twilio.base_url)
    key_file = tmp_path / "config" / "secret.key"
    key_file.unlink()

    with pytest.raises(SecretError) as refused:  # what the console (and its in-process engine) opens
        asyncio.run(_open_and_close(_config(tmp_path, database_url)))
    line = str(refused.value)
    assert "\n" not in line and str(key_file) in line and "missing" in line
    assert "backup" in line and "SMSCONSOLE_SECRET_KEY" in line and "providers update tw --auth-token" in line
    assert not key_file.exists()  # no new key was made over stored credentials

    for argv in (("providers", "test", "tw"), ("providers", "add", "sandbox", "--name", "sbx"),
                 ("send-test", "--provider", "tw", "--to", TO, "--body", "hi", "--timeout", "5"),
                 ("serve",)):
        code, _, err = cli(*argv)
        assert code == 2 and str(key_file) in one_line_error(err) and "missing" in err, argv
    assert not key_file.exists()
    assert not twilio.requests  # nothing was sent with a key that cannot open the credentials
    code, out, _ = cli("providers", "list")  # reading needs no secret
    assert code == 0 and "tw" in out


async def _open_and_close(config: Config) -> None:
    runtime = await Runtime.open(config)
    await runtime.close()


def test_wrong_key_refuses_then_reentered_secrets_work_with_the_new_key(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, database_url: str, twilio: FakeTwilio,
) -> None:
    _add_twilio(cli, "tw1", twilio.base_url)
    _add_twilio(cli, "tw2", twilio.base_url)
    key_file = tmp_path / "config" / "secret.key"
    key_file.write_bytes(Fernet.generate_key() + b"\n")  # e.g. a key made by a reinstall

    code, _, err = cli("providers", "test", "tw1")
    line = one_line_error(err)
    assert code == 2 and str(key_file) in line and "does not match" in line and "backup" in line
    assert "tw1" in line and "tw2" in line

    # the secret is required again; other settings alone cannot be saved over an unreadable secret
    code, _, err = cli("providers", "update", "tw1", "--sender", "+15005550007")
    assert code == 2 and "--auth-token" in one_line_error(err)
    code, out, err = cli("providers", "update", "tw1", "--auth-token", AUTH_TOKEN)
    assert code == 0, err
    code, _, err = cli("providers", "test", "tw1")  # tw2 still cannot be opened: still refused
    line = one_line_error(err)
    assert code == 2 and "tw2" in line and "tw1" not in line
    code, _, err = cli("providers", "update", "tw2", "--auth-token", AUTH_TOKEN)
    assert code == 0, err

    code, out, err = cli("providers", "test", "tw1")
    assert code == 0 and out.startswith("ok:"), err
    code, out, err = cli("send-test", "--provider", "tw2", "--to", TO, "--body", "hello", "--json")
    assert code == 0 and json.loads(out)["state"] == "sent", err
    assert [r.basic_auth for r in twilio.requests if r.method == "POST"] == [(ACCOUNT_SID, AUTH_TOKEN)]


def test_missing_key_reentered_secret_creates_a_new_private_key(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, database_url: str, twilio: FakeTwilio,
) -> None:
    _add_twilio(cli, "tw", twilio.base_url)
    key_file = tmp_path / "config" / "secret.key"
    old_key = key_file.read_bytes()
    key_file.unlink()
    code, _, err = cli("providers", "update", "tw", "--auth-token", AUTH_TOKEN)
    assert code == 0, err
    assert key_file.read_bytes() != old_key and _mode(key_file) == 0o600
    code, out, err = cli("providers", "test", "tw")
    assert code == 0 and out.startswith("ok:"), err


def test_wrong_key_in_the_environment_names_the_variable(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch,
) -> None:
    _add_twilio(cli, "tw", twilio.base_url)
    monkeypatch.setenv("SMSCONSOLE_SECRET_KEY", Fernet.generate_key().decode())
    code, _, err = cli("providers", "test", "tw")
    line = one_line_error(err)
    assert code == 2 and "SMSCONSOLE_SECRET_KEY" in line and "does not match" in line


def test_a_new_key_is_made_only_when_no_credential_is_stored(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    key_file = tmp_path / "config" / "secret.key"
    assert cli("providers", "add", "sandbox", "--name", "sbx")[0] == 0
    code, _, err = cli("providers", "add", "twilio", "--name", "tw", "--account-sid", ACCOUNT_SID,
                       "--auth-token", "env:TW_TOKEN", "--sender", "+15005550006")
    assert code == 0, err
    key_file.unlink()  # only an env: reference is stored: nothing is encrypted
    code, out, err = cli("providers", "test", "sbx")
    assert code == 0 and out.startswith("ok:"), err
    assert key_file.exists() and _mode(key_file) == 0o600


# --- item 13: secrets echoed by a gateway ----------------------------------------------------------

ENV_SECRET = "envK3y/with+plus&eq=ünï"  # encodes differently in a URL, a form and JSON
STORED_SECRET = "st0red:Pass word%42"
USERNAME = "gw-user"


def _secret_forms() -> list[str]:
    forms = []
    for secret in (ENV_SECRET, STORED_SECRET):
        forms += [secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]]
    forms.append(base64.b64encode(f"{USERNAME}:{STORED_SECRET}".encode()).decode())
    return forms


def _echo(request: RecordedRequest) -> Reply:
    """A gateway that refuses everything and echoes the request back, secrets and all."""
    return Reply(400, f"bad request {request.path}?{request.query} auth={request.header('authorization')} "
                      f"key={request.header('x-api-key')} body={request.text} decoded={unquote(request.query)}")


@pytest.fixture
def echo_gateway() -> Iterator[FakeGateway]:
    fake = FakeGateway()
    fake.default = _echo
    with serve(fake.app) as server:
        fake.url = server.url
        yield fake


def test_echoing_gateway_leaks_no_secret_into_messages_attempts_output_or_log(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, database_url: str, echo_gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GW_KEY", ENV_SECRET)
    monkeypatch.setenv("SMSCONSOLE_LOG_LEVEL", "DEBUG")
    code, _, err = cli(
        "providers", "add", "generic", "--name", "gw", "--url", f"{echo_gateway.url}/send?k=$$ApiKey&to=$$To",
        "--username", USERNAME, "--password", STORED_SECRET, "--api-key", "env:GW_KEY",
        "--headers", "X-Api-Key: $$ApiKey", "--params", "key=$$ApiKey\\ntext=$$Body",
        "--check-url", f"{echo_gateway.url}/check?k=$$ApiKey",
    )
    assert code == 0, err
    outputs = []
    code, out, err = cli("send-test", "--provider", "gw", "--to", TO, "--body", "hello")
    outputs.append(out + err)
    assert code == 1 and "bad request" in err and "***" in err
    code, out, err = cli("providers", "test", "gw")
    outputs.append(out + err)
    assert code == 1 and "HTTP 400" in out and "***" in out
    assert len(echo_gateway.requests) == 2
    first = echo_gateway.requests[0]
    assert first.header("x-api-key") == ENV_SECRET and ENV_SECRET in unquote(first.query)
    assert first.basic_auth == (USERNAME, STORED_SECRET)  # the secrets really were sent and echoed

    stored = _rows(database_url, "SELECT reason, error_code FROM messages") \
        + _rows(database_url, "SELECT error_message, error_code FROM message_attempts") \
        + _rows(database_url, "SELECT health_detail FROM providers") \
        + _rows(database_url, "SELECT details FROM audit_log")
    assert any(row[0] and "bad request" in str(row[0]) for row in stored)
    log_text = (tmp_path / "data" / "smsconsole.log").read_text()
    assert "generic" in log_text  # the DEBUG log recorded the sends
    for where, text_ in (("database", repr(stored)), ("log", log_text), *(("output", o) for o in outputs)):
        for form in _secret_forms():
            assert form not in text_, f"{form!r} leaked into the {where}"


async def test_a_secret_cut_in_half_by_an_excerpt_is_scrubbed_too(
    echo_gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Error messages quote at most 200 characters of an answer: one that stops inside a secret
    must not keep the secret's beginning."""
    import httpx

    from smsconsole.providers.base import OutboundMessage
    from smsconsole.services.providers import AdapterSpec, build_adapter

    monkeypatch.setenv("GW_KEY", ENV_SECRET)
    spec = AdapterSpec(1, "gw", "generic", None, True, {
        "url": f"{echo_gateway.url}/send", "api_key": "env:GW_KEY", "params": "to=$$To\ntext=$$Body"},
        updated_at=None)  # type: ignore[arg-type]
    for padding in range(185, 200):
        echo_gateway.default = Reply(400, "p" * padding + " " + ENV_SECRET + " and more after it")
        async with httpx.AsyncClient() as client:
            [outcome] = await build_adapter(spec, client).send([OutboundMessage(ref="1", to=TO, body="hi")])
        message = str(outcome.error)
        assert message.endswith("…") and ENV_SECRET[:4] not in message, message


# --- item 14: private files ------------------------------------------------------------------------


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The usual umask, under which files are created 0644 and folders 0755 unless made private."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


async def test_files_and_folders_are_private_after_a_runtime_opens_and_writes(
    tmp_path: Path, database_url: str, open_umask: None,
) -> None:
    from smsconsole.logs import setup_logging
    from smsconsole.services import providers

    config = _config(tmp_path, database_url)
    setup_logging(config.effective_log_file, "INFO")
    runtime = await Runtime.open(config)
    try:
        async with runtime.factory() as session, session.begin():
            await providers.create_provider(session, runtime.box, kind="twilio", name="tw", actor="test", values={
                "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "sender": "+15005550006"})
        import logging

        logging.getLogger("smsconsole.test").warning("a line")
        expected = {config.config_dir: 0o700, config.data_dir: 0o700, config.key_file: 0o600,
                    config.effective_log_file: 0o600}
        if is_sqlite(database_url):
            db_file = Path(database_url.removeprefix("sqlite:///"))
            for path in (db_file, Path(f"{db_file}-wal"), Path(f"{db_file}-shm")):
                expected[path] = 0o600
        modes = {str(path): oct(_mode(path)) for path in expected}
        assert modes == {str(path): oct(mode) for path, mode in expected.items()}
    finally:
        await runtime.close()


async def test_loose_files_are_tightened_on_start_and_it_is_logged(
    tmp_path: Path, database_url: str, open_umask: None,
) -> None:
    from smsconsole.logs import setup_logging

    config = _config(tmp_path, database_url)
    runtime = await Runtime.open(config)
    await runtime.close()
    loose = [config.config_dir, config.data_dir, config.key_file]
    if is_sqlite(database_url):
        loose.append(Path(database_url.removeprefix("sqlite:///")))
    config.effective_log_file.parent.mkdir(exist_ok=True)
    config.effective_log_file.write_text("earlier\n")
    loose.append(config.effective_log_file)
    for path in loose:
        path.chmod(0o755 if path.is_dir() else 0o644)

    setup_logging(config.effective_log_file, "INFO")
    runtime = await Runtime.open(config)
    await runtime.close()
    for path in loose:
        assert _mode(path) == (0o700 if path.is_dir() else 0o600), path
    log_text = config.effective_log_file.read_text()
    for path in loose:
        assert f"{path}" in log_text and "tightened" in log_text


# --- item 16: read-only database, full disk --------------------------------------------------------


def _sqlite_only(database_url: str) -> None:
    if not is_sqlite(database_url):
        pytest.skip("SQLite files only")


def _profiles_csv(tmp_path: Path, count: int) -> Path:
    path = tmp_path / "profiles.csv"
    lines = ["user_id,phone,name"] + [f"u{i},+1415555{i:04d},Person {i}" for i in range(count)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_read_only_database_opens_for_reading_and_refuses_writes_in_one_line(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, database_url: str,
) -> None:
    _sqlite_only(database_url)
    assert cli("import", "profiles", str(_profiles_csv(tmp_path, 3)))[0] == 0
    assert cli("providers", "add", "sandbox", "--name", "sbx")[0] == 0
    read_only = f"{database_url}?mode=ro"
    for argv in (("profiles", "show", "+14155550001"), ("providers", "list"), ("stats",), ("inbox",)):
        code, out, err = cli("--database-url", read_only, *argv)
        assert code == 0 and not err, (argv, err)
    code, out, _ = cli("--database-url", read_only, "profiles", "show", "+14155550001")
    assert "Person 1" in out
    for argv in (("providers", "add", "sandbox", "--name", "other"),
                 ("import", "profiles", str(_profiles_csv(tmp_path, 5)))):
        code, _, err = cli("--database-url", read_only, *argv)
        assert code != 0 and "read-only" in one_line_error(err), (argv, err)
    code, _, err = cli("--database-url", read_only, "serve")
    assert code != 0 and "read-only" in one_line_error(err)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write any file whatever its mode, so chmod cannot make a "
                    "database read-only here; the ?mode=ro test covers the same read-only code path")
def test_database_file_the_user_cannot_write_opens_read_only(cli, tmp_path: Path, database_url: str) -> None:  # type: ignore[no-untyped-def]
    _sqlite_only(database_url)
    assert cli("import", "profiles", str(_profiles_csv(tmp_path, 3)))[0] == 0
    db_file = Path(database_url.removeprefix("sqlite:///"))
    db_file.chmod(0o400)
    db_file.parent.chmod(0o500)
    try:
        code, out, err = cli("profiles", "show", "+14155550001")
        assert code == 0 and "Person 1" in out, err
        code, _, err = cli("providers", "add", "sandbox", "--name", "other")
        assert code != 0 and "read-only" in one_line_error(err)
    finally:
        db_file.parent.chmod(0o700)
        db_file.chmod(0o600)


@pytest.fixture
def full_sqlite(database_url: str) -> Iterator[None]:
    """Every new SQLite connection may not grow its database file: a full disk, as SQLite sees it."""
    from sqlalchemy import event
    from sqlalchemy.pool import Pool

    def cap(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA page_count")
        pages = cursor.fetchone()[0]
        cursor.execute(f"PRAGMA max_page_count = {max(pages, 1)}")
        cursor.close()

    _sqlite_only(database_url)
    event.listen(Pool, "connect", cap)
    try:
        yield
    finally:
        event.remove(Pool, "connect", cap)


def test_full_database_is_one_line_and_exits_non_zero(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, database_url: str, request: pytest.FixtureRequest,
) -> None:
    _sqlite_only(database_url)
    assert cli("db", "upgrade")[0] == 0
    request.getfixturevalue("full_sqlite")
    code, _, err = cli("segments", "create", "big", "--file", str(_big_segment(tmp_path)))
    line = one_line_error(err)
    assert code == 1 and "full" in line


def _big_segment(tmp_path: Path) -> Path:
    path = tmp_path / "segment.json"
    path.write_text(json.dumps({"match": "any", "conditions": [
        {"field": "user_id", "op": "equals", "value": f"user-{i:06d}-{'x' * 40}"} for i in range(200)]}))
    return path


def test_log_file_on_a_full_disk_is_one_line_not_a_traceback(  # type: ignore[no-untyped-def]
    cli, monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full to stand for a full disk")
    monkeypatch.setenv("SMSCONSOLE_LOG_FILE", "/dev/full")
    assert cli("providers", "add", "sandbox", "--name", "sbx")[0] == 0
    code, out, err = cli("send-test", "--provider", "sbx", "--to", TO, "--body", "hi")
    assert "Traceback" not in err and "Logging error" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "/dev/full" in lines[0] and "No space left" in lines[0], err
    assert code == 0 and out.splitlines()[-1].startswith("sent")  # the message went out: its outcome is still reported
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode) and _mode(Path("/dev/full")) == 0o666  # never chmod-ed
