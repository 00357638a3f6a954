"""The replies CLI: sandbox reply through the inbound door, keywords, inbox and stats; bad input
is one line and exit 2."""

from __future__ import annotations

import json


def test_sandbox_reply_stop_then_inbox_and_stats(cli) -> None:  # type: ignore[no-untyped-def]
    code, _, err = cli("sandbox", "reply", "--from", "+447400123456", "--text", "STOP")
    assert code == 2 and err.count("\n") == 1 and "no Sandbox provider" in err
    assert cli("providers", "add", "sandbox", "--name", "sandbox")[0] == 0
    code, out, _ = cli("sandbox", "reply", "--from", "+447400123456", "--text", " stop! ")
    assert code == 0 and "STOP: opted out" in out and "auto-response queued" in out
    code, out, _ = cli("sandbox", "reply", "--from", "+447400123456", "--text", "stop sending me deals", "--json")
    assert code == 0 and json.loads(out)["action"] == "reply"
    code, out, _ = cli("inbox", "--json")
    assert [(r["keyword"], r["action"], r["via"]) for r in json.loads(out)] == [
        (None, "reply", "sandbox"), ("STOP", "opt_out", "sandbox")]
    code, out, _ = cli("inbox", "--action", "opt_out")
    assert code == 0 and "opt-out" in out and "deals" not in out
    code, out, _ = cli("profiles", "show", "+447400123456", "--json")
    assert json.loads(out)["subscription"] == "unsubscribed"
    code, out, _ = cli("stats", "--json")
    body = json.loads(out)
    assert body["total"]["replies"] == 2 and body["total"]["waiting"] == 1  # the confirmation
    assert len(body["per_minute"]) == 60
    code, out, _ = cli("stats", "--window", "today")
    assert code == 0 and "sandbox" in out


def test_sandbox_reply_bad_input(cli) -> None:  # type: ignore[no-untyped-def]
    cli("providers", "add", "sandbox", "--name", "sandbox")
    code, _, err = cli("sandbox", "reply", "--from", "12", "--text", " ")
    assert code == 2 and "--from" in err and "--text" in err and err.count("\n") == 1
    code, _, err = cli("sandbox", "reply", "--from", "+447400123456", "--text", "hi", "--provider", "nope")
    assert code == 2 and "nope" in err
    code, out, _ = cli("inbox")
    assert "no replies yet" in out


def test_keywords_commands(cli) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("keywords", "list")
    assert code == 0 and "STOP" in out and "ARRET" in out and "AYUDA" in out
    code, _, err = cli("keywords", "add", "survey", "--action", "custom")
    assert code == 2 and "--event-name" in err
    code, out, _ = cli("keywords", "add", "Survey!", "--action", "custom", "--event", "survey_yes",
                       "--response", "Thanks", "--language", "en")
    assert code == 0 and "'SURVEY'" in out
    code, _, err = cli("keywords", "add", "survey", "--action", "help")
    assert code == 2 and "already exists" in err
    code, out, _ = cli("keywords", "update", "survey", "--disable", "--json")
    assert code == 0 and json.loads(out)["enabled"] is False
    code, _, err = cli("keywords", "update", "stop", "--rename", "HALT")
    assert code == 2 and "keeps its word" in err
    code, out, _ = cli("keywords", "update", "stop", "--response", "Bye. Reply START to come back.")
    assert code == 0
    code, out, _ = cli("keywords", "remove", "survey")
    assert code == 0 and "removed" in out
    code, _, err = cli("keywords", "remove", "stop")
    assert code == 2 and "cannot be removed" in err
    code, _, err = cli("keywords", "remove", "nothing-here")
    assert code == 2 and "no keyword" in err
    code, out, _ = cli("keywords", "list", "--json")
    stop = next(k for k in json.loads(out) if k["word"] == "STOP")
    assert stop["response"].startswith("Bye.") and stop["builtin"] is True
