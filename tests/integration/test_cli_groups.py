"""`smsconsole groups …`, provider rate-limit flags and `send-test --group`: one line per outcome,
one line and exit 2 for bad input, nothing changed by a refused command."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from smsconsole.config import Config
from smsconsole.engine import lease
from smsconsole.runtime import Runtime
from tests.integration.cli_support import one_line_error

Cli = Any


def _add(cli: Cli, *names: str) -> None:
    for name in names:
        assert cli("providers", "add", "sandbox", "--name", name)[0] == 0


def _show(cli: Cli, name: str) -> dict[str, Any]:
    code, out, _ = cli("groups", "show", name, "--json")
    assert code == 0
    return json.loads(out)


def test_create_list_show_move_default_delete(cli: Cli) -> None:
    _add(cli, "a", "b", "c")
    code, out, err = cli("groups", "create", "india", "--providers", "a,b,c", "--countries", "in,gb")
    assert (code, err) == (0, "")
    assert out.strip() == "created group 'india' (default): a > b > c; countries IN, GB"
    assert cli("groups", "create", "backup", "--providers", "c", "--default")[0] == 0

    code, out, _ = cli("groups", "list")
    assert code == 0
    assert out.splitlines()[0] == "backup (default) — countries: any (no countries of its own)"
    assert "india — countries: IN, GB" in out
    assert "   2. b                    sandbox    unknown          no limit" in out

    assert cli("groups", "move", "india", "c", "up")[1].strip() == "reordered group 'india': a > c > b; countries IN, GB"
    assert cli("groups", "move", "india", "b", "--to", "1")[0] == 0
    shown = _show(cli, "india")
    assert [(m["position"], m["provider_name"], m["status"]) for m in shown["members"]] == [
        (1, "b", "unknown"), (2, "a", "unknown"), (3, "c", "unknown")]
    assert shown["is_default"] is False

    assert cli("groups", "set-default", "india")[1].strip() == "india is now the default group"
    assert cli("groups", "update", "india", "--rename", "asia", "--countries", "")[0] == 0
    shown = _show(cli, "asia")
    assert (shown["is_default"], shown["countries"]) == (True, [])
    assert cli("groups", "delete", "backup", "--yes")[1].strip() == "deleted group 'backup'"
    code, out, _ = cli("groups", "list", "--json")
    assert [g["name"] for g in json.loads(out)] == ["asia"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["groups", "create", "g", "--providers", ",".join(f"p{i}" for i in range(11))],
         "--providers: a group holds at most 10 providers; 11 given"),
        (["groups", "create", "g", "--providers", "p0,nope", "--countries", "GB,XX"],
         "--providers: no provider named 'nope'; --countries: XX: not an ISO 3166 country code (e.g. IN, GB, US)"),
        (["groups", "create", "g", "--providers", "p1", "--countries", "fr,in"],
         "--countries: IN already routed by group 'first' (a country belongs to one group)"),
        (["groups", "show", "nope"], "no group named 'nope'"),
        (["groups", "move", "first", "p0"], "move: give up, down or --to N"),
        (["groups", "move", "first", "p0", "--to", "5"], "--to: must be between 1 and 1"),
        (["groups", "move", "first", "p9", "up"], "PROVIDER: 'p9' is not in group 'first'; its providers: p0"),
        (["groups", "update", "first"], "update: nothing to change; give --rename, --providers or --countries"),
        (["groups", "delete", "first"], "delete group 'first': add --yes to confirm"),
        (["groups", "create", "g"], "the following arguments are required: --providers"),
        (["providers", "remove", "p0"], "provider 'p0' is used by group 'first'; remove it from it first"),
        (["providers", "add", "sandbox", "--name", "z", "--rate-limit", "-1"],
         "--rate-limit: must be more than 0 segments per second (leave empty for no limit)"),
        (["providers", "update", "p1", "--sender-rate-limit", "fast"],
         "--sender-rate-limit: 'fast' is not a number of segments per second"),
        (["send-test", "--provider", "p0", "--group", "first", "--to", "+14155550123", "--body", "x"],
         "argument --group: not allowed with argument --provider"),
        (["send-test", "--group", "nope", "--to", "+14155550123", "--body", "x"], "--group: no group named 'nope'"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_changes_nothing(cli: Cli, argv: list[str], expected: str) -> None:
    _add(cli, *(f"p{i}" for i in range(11)))
    assert cli("groups", "create", "first", "--providers", "p0", "--countries", "IN")[0] == 0
    before = cli("groups", "list", "--json")[1]
    code, _, err = cli(*argv)
    assert code == 2
    assert expected in one_line_error(err)
    assert cli("groups", "list", "--json")[1] == before
    assert "z" not in cli("providers", "list")[1].split()


def test_provider_rate_limits(cli: Cli) -> None:
    code, _, _ = cli("providers", "add", "sandbox", "--name", "a", "--rate-limit", "10", "--sender-rate-limit", "1")
    assert code == 0
    assert "  rate limit: 10 segments/s; per sender: 1 segments/s" in cli("providers", "show", "a")[1]
    code, out, _ = cli("providers", "update", "a", "--rate-limit", "", "--rename", "b")
    assert code == 0
    assert out.startswith("updated provider b (rate limit none, per sender 1 segments/s)")
    views = json.loads(cli("providers", "list", "--json")[1])
    assert [(v["name"], v["rate_limit"], v["sender_rate_limit"]) for v in views] == [("b", None, 1.0)]


def test_send_test_through_a_group_is_queued_for_the_dispatcher(cli: Cli, config: Config) -> None:
    _add(cli, "a")
    assert cli("groups", "create", "uk", "--providers", "a", "--countries", "GB")[0] == 0

    async def engine_elsewhere() -> bool:  # another process runs the engine: the CLI only queues
        rt = await Runtime.open(config)
        try:
            return await lease.acquire(rt.factory, lease.Holder(id="elsewhere:1", host="elsewhere", pid=1), ttl=60)
        finally:
            await rt.close()

    assert asyncio.run(engine_elsewhere())
    code, out, err = cli("send-test", "--group", "uk", "--to", "+447400123456", "--body", "hi", "--json")
    assert (code, err) == (0, "")
    queued = json.loads(out)
    assert (queued["group_name"], queued["provider_name"], queued["country"], queued["state"]) == (
        "uk", None, "GB", "queued")
