"""What the CLI says is true and uses the user's words: an error names the flag or argument the
user typed (one that exists in that command's --help), an empty filter says what it filtered out,
a database that cannot be opened is a failed operation (exit 1), actions read opt-out/opt-in as in
the console (--json keeps opt_out/opt_in), the delivery rate says of how many, and a connection
test that contacted nothing says "not checked"."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.integration.cli_support import one_line_error

FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
POSITIONAL = re.compile(r"(?<![\w-])[A-Z][A-Z_|]+(?=[\s:\]]|$)")


def help_text(cli, capsys: pytest.CaptureFixture[str], *command: str) -> str:  # type: ignore[no-untyped-def]
    """The --help of a command (argparse prints it and exits 0)."""
    with pytest.raises(SystemExit) as exited:
        cli(*command, "--help")
    assert exited.value.code == 0
    return capsys.readouterr().out


def kind_flags(cli, kind: str) -> set[str]:  # type: ignore[no-untyped-def]
    """The flags of `providers add|update` for a kind: its fields (as `providers kinds` lists
    them) and the ones every kind takes."""
    kinds = json.loads(cli("providers", "kinds", "--json")[1])
    fields = next(k for k in kinds if k["kind"] == kind)["fields"]
    return {f["flag"] for f in fields} | {"--name", "--rename", "--base-url", "--rate-limit", "--sender-rate-limit"}


@pytest.fixture
def seeded(cli, tmp_path: Path):  # type: ignore[no-untyped-def]
    assert cli("providers", "add", "sandbox", "--name", "sbx")[0] == 0
    assert cli("providers", "add", "sandbox", "--name", "sbx2")[0] == 0
    assert cli("groups", "create", "g1", "--providers", "sbx,sbx2")[0] == 0
    definition = tmp_path / "segment.json"
    definition.write_text('{"match": "all", "conditions": []}')
    assert cli("segments", "create", "everyone", "--file", str(definition))[0] == 0
    people = tmp_path / "people.csv"
    people.write_text("user_id,phone,plan\nu1,+447400123456,gold\n")
    no_key = tmp_path / "nokey.csv"
    no_key.write_text("plan,score\ngold,1\n")
    return tmp_path


# (command: what to look up --help for, then the rest of the bad input, and a word the error must name)
CASES = [
    (("send-test",), ("--provider", "sbx", "--to", "12", "--body", " "), "--to"),
    (("send-test",), ("--group", "ghost", "--to", "+14155550123", "--body", "hi"), "--group"),
    (("sandbox", "reply"), ("--from", "12", "--text", " "), "--from"),
    (("keywords", "add"), ("", "--action", "help"), "WORD"),
    (("keywords", "add"), ("survey", "--action", "custom"), "--event-name"),
    (("keywords", "add"), ("survey", "--action", "help", "--language", "12345"), "--language"),
    (("keywords", "update"), ("stop", "--rename", "HALT"), "--rename"),
    (("groups", "create"), ("bad name!", "--providers", "ghost", "--countries", "ZZ"), "NAME"),
    (("groups", "update"), ("g1", "--rename", "bad name!"), "--rename"),
    (("groups", "move"), ("g1", "sbx", "--to", "9"), "--to"),
    (("groups", "move"), ("g1", "ghost", "up"), "PROVIDER"),
    (("api-keys", "create"), (" ",), "NAME"),
    (("segments", "update"), ("everyone", "--rename", " "), "--rename"),
    (("import", "profiles"), ("{people}", "--map", "email=phone"), "--map email"),
    (("import", "profiles"), ("{nokey}",), "--map"),
    (("import", "profiles"), ("{people}", "--type", "plan=colour"), "--type plan"),
    (("import", "profiles"), ("{people}", "--errors", "{people}"), "--errors"),
    (("providers", "add"), ("sandbox", "--name", "bad name!", "--rate-limit", "fast"), "--rate-limit"),
    (("providers", "add"), ("twilio", "--name", "tw", "--account-sid", "AC1"), "--auth-token"),
    (("providers", "update"), ("sbx", "--rename", "bad name!"), "--rename"),
    (("providers", "update"), ("sbx", "--base-url", "not a url"), "--base-url"),
]


@pytest.mark.parametrize(("command", "rest", "named"), CASES,
                         ids=[" ".join(c) + f" {n}" for c, _, n in CASES])
def test_an_error_names_flags_that_exist_in_the_commands_help(  # type: ignore[no-untyped-def]
    cli, capsys: pytest.CaptureFixture[str], seeded: Path, command: tuple[str, ...], rest: tuple[str, ...], named: str,
) -> None:
    argv = [*command, *(r.format(people=seeded / "people.csv", nokey=seeded / "nokey.csv") for r in rest)]
    code, _, err = cli(*argv)
    line = one_line_error(err)
    assert code == 2, line
    assert named in line, line
    if command[:2] in (("providers", "add"), ("providers", "update")):
        kind = rest[0] if command[1] == "add" else "sandbox"
        known = kind_flags(cli, kind)
    else:
        text = help_text(cli, capsys, *command)
        known = set(FLAG.findall(text)) | set(POSITIONAL.findall(text))
    for flag in FLAG.findall(line.removeprefix("smsconsole: error: ")):
        assert flag in known, f"{line!r} names {flag}, which {' '.join(command)} does not take"
    if named.isupper():
        assert named in known


def test_no_reply_matching_a_filter_is_not_no_replies_at_all(cli) -> None:  # type: ignore[no-untyped-def]
    cli("providers", "add", "sandbox", "--name", "sandbox")
    code, out, _ = cli("inbox", "--keyword", "NOSUCH")
    assert code == 0 and "no replies yet" in out
    for text in ("STOP", "hello there"):
        assert cli("sandbox", "reply", "--from", "+447400123456", "--text", text)[0] == 0
    code, out, _ = cli("inbox", "--keyword", "NOSUCH")
    assert code == 0 and out.strip() == "no replies match keyword NOSUCH (2 replies in all)"
    code, out, _ = cli("inbox", "--action", "help")
    assert code == 0 and out.strip() == "no replies match action help (2 replies in all)"


def test_actions_read_as_in_the_console_and_json_keeps_stored_values(  # type: ignore[no-untyped-def]
    cli, capsys: pytest.CaptureFixture[str],
) -> None:
    cli("providers", "add", "sandbox", "--name", "sandbox")
    cli("sandbox", "reply", "--from", "+447400123456", "--text", "STOP")
    code, out, _ = cli("keywords", "list")
    assert code == 0 and "opt_out" not in out and "opt_in" not in out
    assert re.search(r"^STOP\s+opt-out\s", out, re.M) and re.search(r"^START\s+opt-in\s", out, re.M)
    for spelled in ("opt-out", "opt_out", "OPT-OUT"):
        code, out, _ = cli("inbox", "--action", spelled)
        assert code == 0 and " opt-out " in out and "opt_out" not in out, (spelled, out)
    assert [r["action"] for r in json.loads(cli("inbox", "--json")[1])] == ["opt_out"]
    code, out, _ = cli("keywords", "add", "quit now", "--action", "opt-out")
    assert code == 0 and out.strip() == "added keyword 'QUIT NOW': opt-out"
    code, _, err = cli("inbox", "--action", "unsubscribe")
    line = one_line_error(err)
    assert code == 2 and "opt-out, opt-in, help, custom, option or reply" in line.replace(", reply", " or reply")
    assert "opt_out" not in line
    assert "opt-out" in help_text(cli, capsys, "inbox") and "opt_out" not in help_text(cli, capsys, "keywords", "add")


def test_the_cli_action_lists_match_the_services() -> None:
    from smsconsole.cli.replies import INBOX_ACTIONS, KEYWORD_ACTIONS
    from smsconsole.services.keywords import ACTIONS
    from smsconsole.services.replies import INBOUND_ACTIONS

    assert (KEYWORD_ACTIONS, INBOX_ACTIONS) == (ACTIONS, INBOUND_ACTIONS)


def test_a_database_that_cannot_be_opened_is_a_failed_operation(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the database's folder should be")
    code, _, err = cli("--database-url", f"sqlite:///{blocker}/smsconsole.db", "providers", "list")
    assert code == 1, err
    one_line_error(err)
    code, _, err = cli("--database-url", "postgresql://nobody@127.0.0.1:1/none", "providers", "list")
    assert code == 1, err
    one_line_error(err)
    code, _, err = cli("--database-url", "mysql://db/x", "providers", "list")  # bad input stays a usage error
    assert code == 2 and "unsupported database" in one_line_error(err)


def test_the_stats_rate_says_of_how_many_settled(cli) -> None:  # type: ignore[no-untyped-def]
    cli("providers", "add", "sandbox", "--name", "sbx", "--receipt-delay", "3600")
    for n in range(3):
        code, out, _ = cli("send-test", "--provider", "sbx", "--to", f"+1415555012{n}", "--body", "hi")
        price, sent = out.splitlines()  # the price is said before the send
        assert code == 0 and price == "price: 1 segment (GSM-7); no price for US on sbx" and sent.startswith("sent:"), out
    code, out, _ = cli("stats")
    assert code == 0
    total = next(line for line in out.splitlines() if line.startswith("total"))
    assert total.split()[1:3] == ["3", "0"] and " - " in f" {total} "  # 3 sent, none settled: no rate yet
    assert "3 awaiting a receipt" in out and "delivered ÷ settled" in out
    body = json.loads(cli("stats", "--json")[1])
    assert (body["total"]["settled"], body["total"]["awaiting_receipt"], body["total"]["delivery_rate"]) == (0, 3, None)


def test_a_connection_test_that_contacted_nothing_says_not_checked(cli) -> None:  # type: ignore[no-untyped-def]
    code, _, err = cli("providers", "add", "generic", "--name", "gw", "--url", "https://unreachable.invalid/send",
                       "--params", "to=$$To")
    assert code == 0, err
    code, out, _ = cli("providers", "test", "gw")
    assert code == 0 and out.startswith("not checked: no Check URL (check_url) configured")
    code, out, _ = cli("providers", "list")
    assert re.search(r"^gw\s+generic\s+yes\s+unknown", out, re.M), out


def test_a_send_still_retrying_when_the_wait_ends_says_so_and_when_it_is_tried_next(cli) -> None:  # type: ignore[no-untyped-def]
    cli("providers", "add", "sandbox", "--name", "flaky", "--failure-rate", "100")
    code, _, err = cli("send-test", "--provider", "flaky", "--to", "+14155550123", "--body", "hi", "--timeout", "4")
    line = one_line_error(err)
    assert code == 1
    assert re.search(r"message 1 is still retrying after 4s: next attempt at \d\d:\d\d:\d\d UTC; "
                     r"attempt \d of 5 failed on provider flaky", line), line
    assert "retrying in" not in line


def test_a_preview_names_its_problems_by_flag(cli, seeded: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("import", "profiles", str(seeded / "nokey.csv"), "--preview")
    assert code == 1
    problems = [line.strip() for line in out.splitlines() if line.strip().startswith("problem:")]
    assert problems == ["problem: --map: no column maps to user_id or phone; every row needs one of them"]
