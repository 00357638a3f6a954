"""Prices: set by hand, imported from CSV, fetched from Twilio's Pricing API (a loopback fake of its
documented Messaging Countries resource), picked for a sender type; and the `senders`,
`templates` and `prices` commands."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from smsconsole import clock
from smsconsole.models import AuditEntry
from smsconsole.providers.twilio import TwilioProvider
from smsconsole.runtime import Runtime
from smsconsole.services import providers as provider_svc
from smsconsole.services.compliance import prices as svc
from smsconsole.services.errors import ServiceError, ValidationError
from tests.fakes.server import serve
from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN
from tests.fakes.twilio_pricing import FakeTwilioPricing
from tests.integration.cli_support import one_line_error

ACTOR = "test"
Cli = Any


@pytest.fixture
def pricing() -> Iterator[FakeTwilioPricing]:
    fake = FakeTwilioPricing()
    with serve(fake.app) as server:
        fake.base_url = server.url
        yield fake
        fake.close()


async def _provider(rt: Runtime, name: str, kind: str = "sandbox", base_url: str | None = None, **values: str) -> int:
    async with rt.factory() as session, session.begin():
        view = await provider_svc.create_provider(session, rt.box, kind=kind, name=name, values=values,
                                                  base_url=base_url, actor=ACTOR)
    return view.id


async def _twilio(rt: Runtime, url: str, name: str = "tw", token: str = AUTH_TOKEN) -> int:
    return await _provider(rt, name, "twilio", base_url=url, account_sid=ACCOUNT_SID, auth_token=token,
                           sender="+14155550100")


async def test_set_list_pick_and_lookup(runtime: Runtime) -> None:
    a = await _provider(runtime, "a")
    b = await _provider(runtime, "b")
    async with runtime.factory() as session, session.begin():
        any_us = await svc.set_price(session, provider="a", country="us", amount="0.01", actor=ACTOR)
        await svc.set_price(session, provider="a", country="US", amount=0.0079, sender_type="long_code", actor=ACTOR)
        await svc.set_price(session, provider="a", country="IN", amount="0.25", currency="inr", unit="message", actor=ACTOR)
        await svc.set_price(session, provider="b", country="US", amount="0.02", actor=ACTOR)
        again = await svc.set_price(session, provider="a", country="US", amount="0.011", actor=ACTOR)
    assert again.id == any_us.id and (again.amount, again.source, again.fetched_at) == (0.011, "manual", None)
    async with runtime.factory() as session:
        listed = await svc.list_prices(session)
        only_a_in = await svc.list_prices(session, provider="a", country="in")
        lookup = await svc.price_lookup(session, [a])
    assert [(p.provider, p.country, p.sender_type, p.amount) for p in listed] == [
        ("a", "IN", "", 0.25), ("a", "US", "", 0.011), ("a", "US", "long_code", 0.0079), ("b", "US", "", 0.02)]
    assert [(p.currency, p.unit) for p in only_a_in] == [("INR", "message")]
    assert sorted(lookup) == [(a, "IN"), (a, "US")] and b not in {k[0] for k in lookup}
    us = lookup[(a, "US")]
    assert svc.pick_price(us, "long_code").amount == 0.0079  # type: ignore[union-attr]
    assert svc.pick_price(us, "toll_free").amount == 0.011  # type: ignore[union-attr]
    assert svc.pick_price(us, None).amount == 0.011  # type: ignore[union-attr]
    assert svc.pick_price([p for p in us if p.sender_type], "short_code") is None
    assert svc.pick_price([], "long_code") is None
    async with runtime.factory() as session, session.begin():
        await svc.remove_price(session, any_us.id, actor=ACTOR)
    async with runtime.factory() as session:
        assert [p.sender_type for p in await svc.list_prices(session, provider="a", country="US")] == ["long_code"]


async def test_every_bad_price_field_is_named(runtime: Runtime) -> None:
    await _provider(runtime, "a")
    async with runtime.factory() as session:
        with pytest.raises(ValidationError) as caught:
            await svc.set_price(session, provider="nope", country="XX", amount="-1", currency="dollars",
                                unit="sms", sender_type="pigeon", actor=ACTOR)
        assert [f for f, _ in caught.value.problems] == ["provider", "country", "amount", "currency", "unit", "sender_type"]
        with pytest.raises(ValidationError) as caught:
            await svc.set_price(session, provider="a", country="US", amount="abc", actor=ACTOR)
        assert caught.value.problems == [("amount", "'abc' is not a number")]
        with pytest.raises(ValidationError, match="check the decimal point"):
            await svc.set_price(session, provider="a", country="US", amount="7900", actor=ACTOR)


async def test_import_keeps_good_rows_and_names_bad_ones(runtime: Runtime, tmp_path: Path) -> None:
    await _provider(runtime, "a")
    await _provider(runtime, "b")
    path = tmp_path / "prices.csv"
    path.write_text("provider,country,price,currency,unit,sender_type\n"
                    "a,US,0.0079,,,long_code\n"
                    "a,IN,0.25,INR,message,\n"
                    "b,GB,0.04,GBP,segment,any\n"
                    "nope,US,0.01,,,\n"
                    "a,XX,cheap,,,\n")
    async with runtime.factory() as session, session.begin():
        report = await svc.import_prices(session, path, actor=ACTOR)
    assert (report.added, report.updated) == (3, 0)
    problems = dict(report.problems)
    assert sorted(problems) == [5, 6]
    assert problems[5] == "provider: no provider named 'nope'"
    assert problems[6].startswith("country: XX") and "price: 'cheap' is not a number" in problems[6]
    path.write_text("provider,country,price\na,US,0.0085\n")
    async with runtime.factory() as session, session.begin():
        again = await svc.import_prices(session, path, actor=ACTOR)
    assert (again.added, again.updated, again.problems) == (1, 0, ())  # '' (any) is not long_code: a new price
    async with runtime.factory() as session:
        listed = {(p.provider, p.country, p.sender_type): p for p in await svc.list_prices(session)}
    assert {k: (p.amount, p.currency, p.unit, p.source) for k, p in listed.items()} == {
        ("a", "IN", ""): (0.25, "INR", "message", "csv"), ("a", "US", ""): (0.0085, "USD", "segment", "csv"),
        ("a", "US", "long_code"): (0.0079, "USD", "segment", "csv"), ("b", "GB", ""): (0.04, "GBP", "segment", "csv")}
    async with runtime.factory() as session:
        with pytest.raises(ValidationError, match="no such file"):
            await svc.import_prices(session, tmp_path / "missing.csv", actor=ACTOR)


def test_pricing_host_follows_the_api_host() -> None:
    assert TwilioProvider({}).pricing_base_url == "https://pricing.twilio.com"
    assert TwilioProvider({}, base_url="https://api.dublin.ie1.twilio.com").pricing_base_url == \
        "https://pricing.dublin.ie1.twilio.com"
    assert TwilioProvider({}, base_url="http://127.0.0.1:8080/").pricing_base_url == "http://127.0.0.1:8080"


async def test_fetch_from_twilio_stores_the_highest_carrier_price_per_sender_type(
        runtime: Runtime, pricing: FakeTwilioPricing) -> None:
    pid = await _twilio(runtime, pricing.base_url)
    clock.freeze(clock.now().replace(microsecond=0))
    async with httpx.AsyncClient(timeout=5) as client, runtime.factory() as session, session.begin():
        report = await svc.fetch_prices(session, "tw", countries="us, ca,GB,FR", box=runtime.box, client=client,
                                        actor=ACTOR)
    assert [r.path for r in pricing.requests] == [f"/v1/Messaging/Countries/{c}" for c in ("US", "CA", "GB", "FR")]
    assert {r.basic_auth for r in pricing.requests} == {(ACCOUNT_SID, AUTH_TOKEN)}
    assert report.problems == (("FR", "Twilio has no messaging prices for FR"),)
    got = {(p.country, p.sender_type): (p.amount, p.currency) for p in report.prices}
    assert got == {
        ("US", "long_code"): (0.0083, "USD"), ("US", "toll_free"): (0.0081, "USD"), ("US", "short_code"): (0.007, "USD"),
        ("CA", "long_code"): (0.0083, "USD"), ("CA", "toll_free"): (0.009, "USD"), ("GB", "long_code"): (0.042, "GBP"),
    }
    assert {(p.source, p.unit, p.fetched_at) for p in report.prices} == {("api", "segment", clock.now())}
    assert report.words() == "6 prices for 3 countries from tw; 1 not priced"
    async with runtime.factory() as session:
        stored = await svc.price_lookup(session, [pid])
        audit = await session.scalar(select(AuditEntry).where(AuditEntry.action == "price.fetch"))
    assert svc.pick_price(stored[(pid, "US")], "toll_free").amount == 0.0081  # type: ignore[union-attr]
    assert audit is not None and audit.details["not_priced"] == ["FR"]


async def test_fetch_refused_credentials_is_one_line_and_stores_nothing(
        runtime: Runtime, pricing: FakeTwilioPricing) -> None:
    await _twilio(runtime, pricing.base_url, token="wrong" + "0" * 27)
    async with httpx.AsyncClient(timeout=5) as client, runtime.factory() as session:
        with pytest.raises(ServiceError) as caught:
            await svc.fetch_prices(session, "tw", countries="US,CA", box=runtime.box, client=client, actor=ACTOR)
    assert str(caught.value) == ("tw: Twilio refused the credentials (HTTP 401): check the Account SID, "
                                 "API key SID and auth token")
    assert len(pricing.requests) == 1
    async with runtime.factory() as session:
        assert await svc.list_prices(session) == []


async def test_fetch_for_a_kind_without_a_wired_pricing_api(runtime: Runtime) -> None:
    await _provider(runtime, "vg", "vonage", api_key="key12345", api_secret="secret123456", sender="ACME")
    await _provider(runtime, "sbx")
    async with runtime.factory() as session:
        with pytest.raises(ServiceError, match=r"^Vonage has a Pricing API .* not call yet: import a CSV"):
            await svc.fetch_prices(session, "vg", countries="US", box=runtime.box, actor=ACTOR)
        with pytest.raises(ServiceError, match="no pricing fetch for Sandbox"):
            await svc.fetch_prices(session, "sbx", countries="US", box=runtime.box, actor=ACTOR)
        with pytest.raises(ValidationError) as caught:
            await svc.fetch_prices(session, "nope", countries="", box=runtime.box, actor=ACTOR)
    assert [f for f, _ in caught.value.problems] == ["provider", "countries"]


# --- the commands ------------------------------------------------------------------------------------


def test_cli_senders_templates_and_prices(cli: Cli, tmp_path: Path) -> None:
    assert cli("providers", "add", "sandbox", "--name", "sbx", "--sender", "ACMEIN")[0] == 0
    code, out, err = cli("senders", "add", "sbx", "+1 415 555 0100", "--countries", "us,ca", "--note", "main")
    assert (code, err) == (0, "")
    assert out.strip() == "added sender 1: sbx +14155550100 (long code; countries US,CA; -)"
    code, _, err = cli("senders", "add", "sbx", "12", "--type", "short_code", "--countries", "XX")
    assert code == 2
    assert one_line_error(err) == ("smsconsole: error: VALUE: a short code is 3 to 8 digits; "
                                   "--countries: XX: not an ISO 3166 country code (e.g. US, IN, GB)")
    code, _, err = cli("senders", "update", "1", "--10dlc-campaign", "CX4B2ZQ")
    assert code == 2 and "--10dlc-campaign: no 10DLC campaign 'CX4B2ZQ' is registered" in one_line_error(err)
    assert cli("templates", "10dlc", "add", "--campaign", "CX4B2ZQ", "--brand", "BZ3F9QX", "--use-case", "mixed",
               "--sample", "Your code is 1234", "--sample", "Sale today! Reply STOP to opt out")[0] == 0
    assert cli("senders", "update", "1", "--10dlc-campaign", "CX4B2ZQ", "--brand", "BZ3F9QX")[0] == 0
    code, out, _ = cli("senders", "list")
    assert code == 0
    assert out.splitlines() == [
        "ID  PROVIDER  SENDER        TYPE          COUNTRIES  REGISTRATION                                 NOTE",
        "1   sbx       +14155550100  long code     US,CA      10DLC brand BZ3F9QX, 10DLC campaign CX4B2ZQ  main",
        "-   sbx       ACMEIN        alphanumeric  any        -                                            configured, not registered",
    ]
    shown = json.loads(cli("senders", "list", "--provider", "sbx", "--json")[1])
    assert [(s["id"], s["value"], s["implicit"]) for s in shown] == [(1, "+14155550100", False), (None, "ACMEIN", True)]
    code, out, _ = cli("templates", "10dlc", "list")
    assert out.splitlines()[1].split() == ["CX4B2ZQ", "BZ3F9QX", "MIXED", "active", "2"]

    dlt = tmp_path / "dlt.csv"
    dlt.write_text("Template ID,Header,Template Type,Template Content\n"
                   "1107000000000000001,ACMEIN,Transactional,Your OTP is {#var#}\n"
                   "x,ACMEIN,Transactional,Hi\n")
    code, out, err = cli("templates", "import", str(dlt))
    assert (code, err) == (1, "")
    assert out.splitlines() == [f"DLT templates from {dlt}: 1 added, 0 updated, 1 row refused",
                                "  line 3: template_id: a DLT template id is digits (up to 30)"]
    code, out, _ = cli("templates", "list", "--header", "ACMEIN")
    assert out.splitlines()[1].split()[:4] == ["1107000000000000001", "ACMEIN", "transactional", "1"]
    code, _, err = cli("templates", "add", "--id", "12", "--header", "ACME", "--category", "spam", "--content", "x")
    assert code == 2 and one_line_error(err).startswith("smsconsole: error: --header: a DLT header is 6 letters or digits")
    code, _, err = cli("templates", "import", str(tmp_path / "none.csv"))
    assert code == 2 and "no such file" in one_line_error(err)

    assert cli("prices", "set", "sbx", "us", "0.0079", "--sender-type", "long_code")[0] == 0
    code, _, err = cli("prices", "set", "sbx", "US", "lots")
    assert code == 2 and one_line_error(err) == "smsconsole: error: AMOUNT: 'lots' is not a number"
    csv = tmp_path / "prices.csv"
    csv.write_text("provider,country,price,currency,unit,sender_type\nsbx,IN,0.25,INR,message,\n")
    assert cli("prices", "import", str(csv)) == (0, f"prices from {csv}: 1 added, 0 updated\n", "")
    code, out, _ = cli("prices", "list")
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "PROVIDER", "COUNTRY", "SENDER", "TYPE", "PRICE", "UNIT", "SOURCE", "DATE"]
    assert [line.split()[:8] for line in lines[1:]] == [
        ["2", "sbx", "IN", "any", "0.25", "INR", "per", "message"],
        ["1", "sbx", "US", "long", "code", "0.0079", "USD", "per"]]
    assert len({line.index("PRICE") if i == 0 else None for i, line in enumerate(lines)} - {None}) == 1
    code, _, err = cli("prices", "fetch", "sbx", "--countries", "US")
    assert code == 2 and "import a CSV" in one_line_error(err)
    assert cli("prices", "remove", "1")[0] == 0
    assert [p["country"] for p in json.loads(cli("prices", "list", "--json")[1])] == ["IN"]


def test_cli_prices_fetch(cli: Cli, pricing: FakeTwilioPricing) -> None:
    assert cli("providers", "add", "twilio", "--name", "tw", "--base-url", pricing.base_url, "--account-sid", ACCOUNT_SID,
               "--auth-token", AUTH_TOKEN, "--sender", "+14155550100")[0] == 0
    code, out, err = cli("prices", "fetch", "tw", "--countries", "US,FR")
    assert (code, err) == (1, "")
    lines = out.splitlines()
    assert lines[0] == "fetched 3 prices for 1 country from tw; 1 not priced"
    assert [line.split()[2:6] for line in lines[2:5]] == [
        ["US", "long", "code", "0.0083"], ["US", "short", "code", "0.007"], ["US", "toll", "free", "0.0081"]]
    assert lines[5] == "  FR: Twilio has no messaging prices for FR"
    shown = json.loads(cli("prices", "list", "--json")[1])
    assert {(p["sender_type"], p["source"]) for p in shown} == {("long_code", "api"), ("short_code", "api"), ("toll_free", "api")}
    assert all(p["fetched_at"] for p in shown)
