"""`send-test` prints the message's price before it is sent: segments × the provider's price for
the recipient's country (`prices set`), or that there is none; counted as billed (look-alikes
replaced with --smart-encoding); a group names the member that carries its traffic."""

from __future__ import annotations

import json


def test_send_test_prints_the_price_first(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("providers", "add", "sandbox", "--name", "sbx")[0] == 0
    assert cli("prices", "set", "sbx", "GB", "0.0079")[0] == 0
    code, out, err = cli("send-test", "--provider", "sbx", "--to", "+447400123456", "--body", "x" * 161)
    assert code == 0, err
    price, sent = out.splitlines()
    assert price.startswith("price: 2 segments × 0.0079 USD = 0.0158 USD on sbx, priced ")
    assert sent.startswith("sent: message 1 to +447400123456 via sbx")

    # no price for the US on it
    code, out, _ = cli("send-test", "--provider", "sbx", "--to", "+14155550123", "--body", "hi")
    assert code == 0 and out.splitlines()[0] == "price: 1 segment (GSM-7); no price for US on sbx"

    # as billed: the curly quotes force UCS-2 unless replaced
    body = "“Hi” " + "y" * 70
    code, out, _ = cli("send-test", "--provider", "sbx", "--to", "+447400123456", "--body", body)
    assert out.splitlines()[0].startswith("price: 2 segments × 0.0079 USD = 0.0158 USD")
    code, out, _ = cli("send-test", "--provider", "sbx", "--to", "+447400123456", "--body", body, "--smart-encoding")
    assert out.splitlines()[0].startswith("price: 1 segment × 0.0079 USD = 0.0079 USD")

    # a per-message price, through a group: its first member
    assert cli("prices", "set", "sbx", "GB", "0.05", "--currency", "EUR", "--unit", "message")[0] == 0
    assert cli("groups", "create", "uk", "--providers", "sbx")[0] == 0
    code, out, _ = cli("send-test", "--group", "uk", "--to", "+447400123456", "--body", "x" * 161)
    assert code == 0
    assert out.splitlines()[0].startswith("price: 2 segments, 0.05 EUR per message on sbx (first in group uk), "
                                          "priced ")


def test_no_price_line_in_json_or_for_a_refused_send(cli) -> None:  # type: ignore[no-untyped-def]
    cli("providers", "add", "sandbox", "--name", "sbx")
    cli("prices", "set", "sbx", "GB", "0.0079")
    code, out, _ = cli("send-test", "--provider", "sbx", "--to", "+447400123456", "--body", "hi", "--json")
    assert code == 0 and json.loads(out)["state"] == "sent"  # stdout is the JSON alone
    code, out, err = cli("send-test", "--provider", "sbx", "--to", "12", "--body", "hi")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
