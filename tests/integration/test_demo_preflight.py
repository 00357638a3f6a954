"""The preflight on the demo database: a promotional campaign to the whole demo audience through the
Sandbox gets the findings the demo's compliance data is there to teach (services/demo_compliance.py),
each counting the recipients a plain SQL count finds, and a cost equal to recipients × segments ×
the price typed in for each country."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select, update

from smsconsole import clock
from smsconsole.models import Profile
from smsconsole.runtime import Runtime
from smsconsole.services import demo
from smsconsole.services.campaigns.definition import parse_document
from smsconsole.services.compliance.preflight import Preflight, preflight_campaign
from smsconsole.services.demo_compliance import PRICES
from smsconsole.sms import analyze

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
# 12:00 UTC: 07:00 or earlier on every US clock (outside 08:00-21:00), 17:30 in India (inside its
# 09:00-21:00 promotional window), 09:00 in São Paulo (inside Brazil's 09:00-22:00).
PLANNED = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
MATCHING = "Winter sale: 20% off everything today. Reply STOP to opt out."  # DLT template 101 with 20% as its variable
LONGER = ("Winter sale: 20% off everything today, and free delivery on every order over 30 until midnight. "
          "Come and see what is new in the shop this week, in every size. Reply STOP to opt out.")


def _document(body: str) -> object:
    parsed, _ = parse_document({"name": "Everyone, promotional", "type": "one_time",
                                "when": {"timezone": "UTC", "at": PLANNED.strftime("%Y-%m-%d %H:%M")},
                                "who": {"segment": "Everyone"}, "what": {"route": {"provider": "sandbox"}, "body": body},
                                "compliance": {"category": "promotional"}},
                               default_timezone="UTC", strict=False)
    return parsed


async def _reachable(runtime: Runtime) -> dict[str, int]:
    """Reachable people per country, counted with SQL of this test's own."""
    async with runtime.factory() as session:
        rows = await session.execute(
            select(Profile.country, func.count()).where(
                Profile.subscription == "subscribed", Profile.sms_capable.is_(True),
                Profile.phone_status.not_in(["missing", "invalid"])).group_by(Profile.country))
        return {country: n for country, n in rows}


async def _without_consent(runtime: Runtime) -> dict[str, int]:
    """Reachable people without an opt-in time on record (the preflight's consent test), per country."""
    async with runtime.factory() as session:
        rows = await session.execute(
            select(Profile.country, func.count()).where(
                Profile.subscription == "subscribed", Profile.sms_capable.is_(True),
                Profile.phone_status.not_in(["missing", "invalid"]), Profile.subscription_at.is_(None))
            .group_by(Profile.country))
        return {country: n for country, n in rows}


async def _preflight(runtime: Runtime, body: str) -> Preflight:
    async with runtime.factory() as session:
        return await preflight_campaign(session, _document(body), now=NOW, planned_at=PLANNED)  # type: ignore[arg-type]


def _codes(p: Preflight) -> dict[tuple[str, str | None], tuple[str, int]]:
    out: dict[tuple[str, str | None], tuple[str, int]] = {}
    for f in p.findings:
        assert (f.code, f.country) not in out, f
        out[(f.code, f.country)] = (f.severity, f.recipients)
    return out


async def test_the_demo_preflight_finds_what_its_compliance_data_teaches(runtime: Runtime) -> None:
    clock.freeze(NOW)
    await demo.create_demo(runtime.factory, runtime.box, profiles_count=600, days=7)
    # Profiles brought in from an older system as subscribed, without their opt-in time: the demo
    # records every opt-in, so the test clears it for every tenth US and GB person.
    async with runtime.factory() as session, session.begin():
        await session.execute(update(Profile).where(Profile.country.in_(["US", "GB"]), Profile.id % 10 == 0)
                              .values(subscription_at=None))
    reachable = await _reachable(runtime)
    without = await _without_consent(runtime)
    assert set(reachable) == {"US", "IN", "GB", "DE", "BR", "AU", "ZA", "SG"}, reachable
    assert set(without) == {"US", "GB"} and all(without.values())

    checked = await _preflight(runtime, MATCHING)
    assert dict(checked.countries) == reachable
    assert _codes(checked) == {
        ("send_window", "US"): ("block", reachable["US"]),  # 07:00 in New York, earlier further west
        ("consent", "US"): ("block", without["US"]),
        ("consent", "GB"): ("block", without["GB"]),
        ("sender_unregistered", "AU"): ("block", reachable["AU"]),  # only the Sandbox's own id reaches AU, BR
        ("sender_unregistered", "BR"): ("block", reachable["BR"]),
        ("no_price", "ZA"): ("warn", reachable["ZA"]),  # left unpriced on purpose
    }
    assert checked.blocked_countries == {"US", "GB", "AU", "BR"}
    blocked = next(f for f in checked.findings if f.code == "sender_unregistered" and f.country == "BR")
    assert "SANDBOX" in blocked.message and "register" in blocked.fix

    # The cost by hand: one GSM-7 segment each, the demo's price per country, ZA left out.
    assert analyze(MATCHING).segments == 1
    by_hand: dict[str, float] = {}
    for country, n in reachable.items():
        if country in PRICES:
            amount, currency = PRICES[country]
            by_hand[currency] = by_hand.get(currency, 0.0) + n * 1 * amount
    assert set(checked.cost.totals) == {"USD", "GBP", "INR"}
    for currency, amount in by_hand.items():
        assert abs(checked.cost.totals[currency] - amount) < 1e-9, (currency, checked.cost.totals, by_hand)
    assert checked.cost.unpriced == reachable["ZA"] and checked.cost.margin == 0.0
    assert checked.cost.sampled == checked.cost.population == sum(reachable.values())


async def test_a_body_off_the_dlt_template_blocks_india_and_costs_two_segments(runtime: Runtime) -> None:
    clock.freeze(NOW)
    await demo.create_demo(runtime.factory, runtime.box, profiles_count=300, days=7)
    reachable = await _reachable(runtime)
    assert await _without_consent(runtime) == {}  # the demo records every opt-in: no consent finding

    checked = await _preflight(runtime, LONGER)
    findings = _codes(checked)
    assert findings[("dlt_template", "IN")] == ("block", reachable["IN"])
    dlt = next(f for f in checked.findings if f.code == "dlt_template")
    assert "1207170000000000101" in dlt.message and 'template has "today."' in dlt.message
    assert {code for code, _ in findings} == {"send_window", "sender_unregistered", "dlt_template", "no_price"}
    assert not any(code == "consent" for code, _ in findings)

    info = analyze(LONGER)
    assert (info.segments, str(info.encoding)) == (2, "GSM-7")
    lines = {line.country: line for line in checked.cost.countries}
    for country, n in reachable.items():
        line = lines[country]
        assert line.recipients == n and line.segments == 2
        if country in PRICES:
            amount, currency = PRICES[country]
            assert (line.unit_price, line.currency) == (amount, currency)
            assert abs((line.cost or 0) - n * 2 * amount) < 1e-9
        else:
            assert line.cost is None
    usd = sum(n * 2 * PRICES[c][0] for c, n in reachable.items() if c in PRICES and PRICES[c][1] == "USD")
    assert abs(checked.cost.totals["USD"] - usd) < 1e-9
    # one segment fewer would save one segment's price per priced recipient
    assert abs(checked.cost.saving_shorter["USD"] - usd / 2) < 1e-9
