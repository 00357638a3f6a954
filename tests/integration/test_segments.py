"""Segments: what each operator selects on a hand-built audience of twelve, time windows at their
edges, AND/OR nesting, reach with every reason and the country breakdown, validation against the
database's catalog (the parser's own rules are in tests/unit/test_segment_parsing.py), and saved
segments. Every expected answer is worked out from the table below, on SQLite and PostgreSQL.

The audience is built once per backend (a module-scoped database on a module event loop), so each
case is its own named test without re-creating twelve profiles and fourteen events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select, update

from smsconsole import clock
from smsconsole.models import AuditEntry, Profile
from smsconsole.runtime import Runtime
from smsconsole.services import profiles as P
from smsconsole.services import segments as svc
from smsconsole.services.errors import Conflict, NotFound, ValidationError
from tests.conftest import BACKENDS, _create_pg_database, _drop_pg_database, make_config

pytestmark = pytest.mark.asyncio(loop_scope="module")

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)
CREATED = datetime(2025, 11, 1, tzinfo=UTC)  # when everyone but u10 was imported
CREATED_U10 = datetime(2026, 2, 20, tzinfo=UTC)
DEFAULTS = P.AudienceDefaults(region=None, timezone="UTC")
TYPES = {"plan": "string", "score": "number", "vip": "boolean", "renewal": "date", "tags": "list",
         "nickname": "string"}

#  user  phone             country  subscription   reach reason         plan      score  vip    renewal (NOW = 2026-03-01T12:00:00Z)       tags
#  u01   +91 mobile        IN       subscribed     reachable            gold      10     true   2026-02-01T12:00:00Z  (28 days ago)       sports, news
#  u02   +91 mobile        IN       subscribed     reachable            silver    5.5    false  2026-01-30T12:00:00Z  (exactly 30 days)   news
#  u03   +91 mobile        IN       unsubscribed   unsubscribed         gold      0      -      2026-01-30T11:59:59Z  (30 days + 1 s)     sports
#  u04   +44 mobile        GB       never          never opted in       bronze    -3     true   2026-03-08T12:00:00Z  (in exactly 7 days) -
#  u05   +44 landline      GB       subscribed     not mobile-capable   gold      100    -      2026-03-08T12:00:01Z  (7 days + 1 s)      -
#  u06   +44 mobile        GB       subscribed     reachable            GOLD      10     -      -                                         [] (empty)
#  u07   "+4412" invalid   GB       subscribed     invalid phone        gold      -      -      -                                         -
#  u08   none              IN       subscribed     no phone             silver    -      -      -                                         -
#  u09   none              -        never          no phone             -         -      -      -                                         -
#  u10   +33 mobile        FR       subscribed     reachable            5 (num)   "high" 1(num) 20260101 (a number)                       "news" (text)
#        (u10's nickname is the list ["Asha"]; u01's is "Asha", u04's "Bobby Tables", u11's "asha")
#  u11   +49 mobile        DE       subscribed     reachable            platinum  7      -      2025-12-31T23:59:59Z                      news, vip
#  u12   +61 mobile        AU       subscribed     reachable            -         20     -      2026-03-01T12:00:00Z  (now)               -
# u10's values were stored with other types than the catalog's: a typed condition ignores them.
PROFILES: list[dict[str, Any]] = [
    {"user_id": "u01", "phone": "+919876543210", "optin_at": "2026-01-01", "name": "Asha Rao", "plan": "gold",
     "score": 10, "vip": True, "renewal": "2026-02-01T12:00:00Z", "tags": ["sports", "news"], "nickname": "Asha"},
    {"user_id": "u02", "phone": "+919876543211", "optin_at": "2026-01-01", "plan": "silver", "score": 5.5,
     "vip": False, "renewal": "2026-01-30T12:00:00Z", "tags": ["news"]},
    {"user_id": "u03", "phone": "+919876543212", "optin_at": "2026-01-01", "optout_at": "2026-02-01",
     "plan": "gold", "score": 0, "renewal": "2026-01-30T11:59:59Z", "tags": ["sports"]},
    {"user_id": "u04", "phone": "+447400123456", "name": "Bob Tables", "plan": "bronze", "score": -3, "vip": True,
     "renewal": "2026-03-08T12:00:00Z", "nickname": "Bobby Tables"},
    {"user_id": "u05", "phone": "+442071838750", "optin_at": "2026-01-01", "plan": "gold", "score": 100,
     "renewal": "2026-03-08T12:00:01Z"},
    {"user_id": "u06", "phone": "+447123456789", "optin_at": "2026-01-01", "plan": "GOLD", "score": 10, "tags": []},
    {"user_id": "u07", "phone": "+4412", "country": "GB", "optin_at": "2026-01-01", "plan": "gold"},
    {"user_id": "u08", "country": "IN", "optin_at": "2026-01-01", "plan": "silver"},
    {"user_id": "u09"},
    {"user_id": "u11", "phone": "+4915123456789", "optin_at": "2026-01-01", "plan": "platinum", "score": 7,
     "renewal": "2025-12-31T23:59:59Z", "tags": ["news", "vip"], "nickname": "asha"},
    {"user_id": "u12", "phone": "+61412345678", "optin_at": "2026-01-01", "score": 20,
     "renewal": "2026-03-01T12:00:00Z"},
]
U10 = {"user_id": "u10", "phone": "+33612345678", "timezone": "Europe/Paris", "optin_at": "2026-01-01",
       "plan": 5, "score": "high", "vip": 1, "renewal": 20260101, "tags": "news", "nickname": ["Asha"]}
U10_TYPES = {"plan": "number", "score": "string", "vip": "number", "renewal": "number", "tags": "string",
             "nickname": "list"}

# Events, at times relative to NOW.     orders ever / in the last 30 days (from 2026-01-30T12:00:00Z)
EVENTS: list[tuple[str, str, datetime, dict[str, Any]]] = [
    ("u01", "order", NOW - DAY, {"amount": 150, "sku": "A-1"}),           # u01: 3 ever, 2 in 30 days
    ("u01", "order", NOW - 10 * DAY, {"amount": 50, "sku": "B-2"}),
    ("u01", "order", NOW - 40 * DAY, {"amount": 300, "sku": "A-1"}),
    ("u02", "order", NOW - 30 * DAY, {"amount": 120, "sku": "C-3"}),      # u02: 1 / 1 (exactly 30 days ago)
    ("u03", "order", NOW - 30 * DAY - SECOND, {"amount": 500, "sku": "A-1"}),  # u03: 1 / 0 (one second out)
    ("u04", "order", NOW - 5 * DAY, {"amount": 20, "sku": "B-2"}),        # u04: 2 / 2
    ("u04", "order", NOW - 6 * DAY, {"amount": 20, "sku": "B-2"}),
    ("u05", "order", datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC), {"amount": 80, "sku": "C-3"}),  # u05: 2 / 2
    ("u05", "order", datetime(2026, 2, 1, 0, 0, 0, tzinfo=UTC), {"amount": 80, "sku": "C-3"}),
    ("u11", "order", NOW - 2 * DAY, {"amount": 101, "sku": "A-1", "gift": True}),  # u11: 1 / 1
    ("u01", "login", NOW - timedelta(hours=1), {}),                       # logins in the last 60 days:
    ("u06", "login", NOW - 59 * DAY, {}),                                 #   u01, u06, u07 (exactly 60)
    ("u07", "login", NOW - 60 * DAY, {}),
    ("u08", "login", NOW - 61 * DAY, {}),                                 #   not u08 (61 days)
]
ORDER_TYPES = {"amount": "number", "sku": "string", "gift": "boolean"}

ALL = {f"u{n:02d}" for n in range(1, 13)}


def ids(text: str) -> set[str]:
    """ids("01 03") == {"u01", "u03"}."""
    return {f"u{n}" for n in text.split()}


def but(text: str) -> set[str]:
    """Everyone except these."""
    return ALL - ids(text)


async def _seed(rt: Runtime) -> None:
    clock.freeze(CREATED)
    async with rt.factory() as session, session.begin():
        prepared = [P.prepare_profile(row, DEFAULTS, TYPES) for row in PROFILES]
        await P.upsert_profiles(session, prepared, source="import", defaults=DEFAULTS)
    clock.freeze(CREATED_U10)
    u10 = P.prepare_profile(U10, DEFAULTS, U10_TYPES)
    async with rt.factory() as session, session.begin():
        # u10 holds other types than the catalog's, as data stored before types were enforced can;
        # the service refuses such values now, so they are written directly.
        await P.upsert_profiles(session, [replace(u10, properties={}, property_types={}, raw_properties={})],
                                source="import", defaults=DEFAULTS)
        await session.execute(update(Profile).where(Profile.user_id == "u10").values(properties=u10.properties))
    clock.freeze(NOW)
    async with rt.factory() as session, session.begin():
        events = [P.prepare_event({"user_id": user, "name": name, "at": at.isoformat(), "properties": props},
                                  DEFAULTS, ORDER_TYPES if name == "order" else {})
                  for user, name, at, props in EVENTS]
        await P.record_events(session, events, source="api", defaults=DEFAULTS)
    clock.freeze(None)


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=BACKENDS)
async def audience(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Runtime]:
    tmp_path = tmp_path_factory.mktemp(f"segments-{request.param}")
    url = f"sqlite:///{tmp_path / 'smsconsole.db'}" if request.param == "sqlite" else await _create_pg_database()
    rt = await Runtime.open(make_config(tmp_path, url))
    try:
        await _seed(rt)
        yield rt
    finally:
        await rt.close()
        if request.param != "sqlite":
            await _drop_pg_database(url)


async def matching(rt: Runtime, *conditions: dict[str, Any], match: str = "all") -> set[str]:
    definition = {"match": match, "conditions": list(conditions)}
    async with rt.factory() as session:
        condition = await svc.segment_condition(session, definition, now=NOW)
        return set(await session.scalars(select(Profile.user_id).where(condition)))


async def check(rt: Runtime, condition: dict[str, Any], expected: set[str]) -> None:
    assert await matching(rt, condition) == expected
    async with rt.factory() as session:  # reach counts the same people
        assert (await svc.estimate_reach(session, {"conditions": [condition]}, now=NOW)).qualified == len(expected)


def cases(*rows: tuple[dict[str, Any], set[str]]) -> Any:
    return pytest.mark.parametrize(("condition", "expected"), rows,
                                   ids=[svc.describe_definition({"conditions": [c]}) for c, _ in rows])


# --- profile properties, by type -----------------------------------------------------------------

def prop(name: str, op: str, value: Any = None) -> dict[str, Any]:
    return {"property": name, "op": op} | ({} if value is None else {"value": value})


@cases(
    (prop("plan", "equals", "gold"), ids("01 03 05 07")),  # case-sensitive: not u06's GOLD
    (prop("plan", "not_equals", "gold"), but("01 03 05 07")),  # includes u09, u12 (no plan) and u10 (a number)
    (prop("plan", "equals", "5"), set()),  # u10 holds the number 5, not the text "5"
    (prop("plan", "in", ["gold", "silver"]), ids("01 02 03 05 07 08")),
    (prop("plan", "not_in", ["gold", "silver"]), ids("04 06 09 10 11 12")),
    (prop("plan", "contains", "il"), ids("02 08")),  # silver
    (prop("plan", "contains", "O"), ids("06")),  # GOLD; "bronze" has a lower-case o
    (prop("plan", "not_contains", "O"), but("06")),
    (prop("plan", "contains", "5"), set()),  # u10's number 5 is not text
    (prop("plan", "exists"), but("09 12")),  # u10's number counts as a value
    (prop("plan", "not_exists"), ids("09 12")),
    (prop("nickname", "equals", "Asha"), ids("01")),
    (prop("nickname", "contains", "sha"), ids("01 11")),  # not u10's list
    (prop("nickname", "equals", '["Asha"]'), set()),  # u10 holds a list, not this text
    (prop("nickname", "in", ['["Asha"]', "Asha"]), ids("01")),
)
async def test_string_property(audience: Runtime, condition: dict[str, Any], expected: set[str]) -> None:
    await check(audience, condition, expected)


@cases(
    (prop("score", "equals", 10), ids("01 06")),
    (prop("score", "equals", 10.0), ids("01 06")),
    (prop("score", "not_equals", 10), but("01 06")),
    (prop("score", "in", [0, 5.5]), ids("02 03")),
    (prop("score", "not_in", [0, 5.5]), but("02 03")),
    (prop("score", "greater", 7), ids("01 05 06 12")),  # strict: not u11's 7; not u10's "high"
    (prop("score", "less", 0), ids("04")),
    (prop("score", "between", [0, 10]), ids("01 02 03 06 11")),  # inclusive at both ends
    (prop("score", "exists"), but("07 08 09")),
    (prop("score", "not_exists"), ids("07 08 09")),
)
async def test_number_property(audience: Runtime, condition: dict[str, Any], expected: set[str]) -> None:
    await check(audience, condition, expected)


@cases(
    (prop("vip", "equals", True), ids("01 04")),  # not u10's number 1
    (prop("vip", "equals", False), ids("02")),
    (prop("vip", "not_equals", True), but("01 04")),
    (prop("vip", "exists"), ids("01 02 04 10")),
    (prop("vip", "not_exists"), but("01 02 04 10")),
)
async def test_boolean_property(audience: Runtime, condition: dict[str, Any], expected: set[str]) -> None:
    await check(audience, condition, expected)


@cases(
    # within the last 30 days: 2026-01-30T12:00:00Z .. now, both included
    (prop("renewal", "within_last_days", 30), ids("01 02 12")),  # u02 exactly 30 days; u03 one second out
    (prop("renewal", "more_than_days_ago", 30), ids("03 11")),  # the complement in the past
    (prop("renewal", "within_next_days", 7), ids("04 12")),  # u04 exactly 7 days ahead; u05 one second more
    (prop("renewal", "before", "2026-01-01"), ids("11")),  # 2025-12-31T23:59:59Z
    (prop("renewal", "before", "2026-01-30T12:00:00Z"), ids("03 11")),  # strict
    (prop("renewal", "after", "2026-03-07"), ids("04 05")),  # after the whole day
    (prop("renewal", "after", "2026-03-08T12:00:00Z"), ids("05")),  # strict
    (prop("renewal", "between", ["2026-01-30", "2026-02-01"]), ids("01 02 03")),  # whole days at both ends
    (prop("renewal", "between", ["2026-01-30T12:00:00Z", "2026-03-01T12:00:00Z"]), ids("01 02 12")),
    # u10's number 20260101 sorts inside this range as text; a number is not a date
    (prop("renewal", "between", ["2026-01-01", "2026-12-31"]), ids("01 02 03 04 05 12")),
    (prop("renewal", "exists"), but("06 07 08 09")),
    (prop("renewal", "not_exists"), ids("06 07 08 09")),
)
async def test_date_property(audience: Runtime, condition: dict[str, Any], expected: set[str]) -> None:
    await check(audience, condition, expected)


@cases(
    (prop("tags", "contains", "news"), ids("01 02 11")),  # not u10's text "news"
    (prop("tags", "not_contains", "news"), but("01 02 11")),
    (prop("tags", "contains_any", ["sports", "vip"]), ids("01 03 11")),
    (prop("tags", "exists"), ids("01 02 03 06 10 11")),  # an empty list is a value
    (prop("tags", "not_exists"), but("01 02 03 06 10 11")),
)
async def test_list_property(audience: Runtime, condition: dict[str, Any], expected: set[str]) -> None:
    await check(audience, condition, expected)


# --- built-in fields, subscription, reachability ----------------------------------------------------

def fld(name: str, op: str, value: Any = None) -> dict[str, Any]:
    return {"field": name, "op": op} | ({} if value is None else {"value": value})


@cases(
    (fld("country", "equals", "gb"), ids("04 05 06 07")),  # codes are upper-cased
    (fld("country", "not_equals", "IN"), but("01 02 03 08")),  # includes u09, who has no country
    (fld("country", "in", ["IN", "FR"]), ids("01 02 03 08 10")),
    (fld("country", "not_in", ["IN", "GB"]), ids("09 10 11 12")),
    (fld("country", "not_exists"), ids("09")),
    (fld("user_id", "contains", "1"), ids("01 10 11 12")),
    (fld("name", "contains", "Tables"), ids("04")),
    (fld("name", "not_contains", "Tables"), but("04")),
    (fld("name", "exists"), ids("01 04")),
    (fld("timezone", "equals", "Europe/Paris"), ids("10")),
    (fld("created_at", "within_last_days", 30), ids("10")),
    (fld("created_at", "before", "2026-01-01"), but("10")),
    (fld("created_at", "between", ["2025-11-01", "2025-11-01"]), but("10")),
    ({"subscription": "never"}, ids("04 09")),
    ({"subscription": ["unsubscribed", "never"]}, ids("03 04 09")),
    ({"reachable": True}, ids("01 02 06 10 11 12")),
    ({"reachable": False}, ids("03 04 05 07 08 09")),
)
async def test_fields_subscription_and_reachability(audience: Runtime, condition: dict[str, Any],
                                                    expected: set[str]) -> None:
    await check(audience, condition, expected)


# --- behaviour ------------------------------------------------------------------------------------

def did(event: str, **extra: Any) -> dict[str, Any]:
    return {"event": event, **extra}


def count(op: str, value: int) -> dict[str, Any]:
    return {"op": op, "value": value}


LAST_30 = {"last_days": 30}


@cases(
    (did("order"), ids("01 02 03 04 05 11")),
    (did("order", did=False), but("01 02 03 04 05 11")),
    (did("order", window=LAST_30), ids("01 02 04 05 11")),  # u02 exactly 30 days ago; u03 one second more
    (did("order", did=False, window=LAST_30), but("01 02 04 05 11")),
    (did("order", count=count("at_least", 2), window=LAST_30), ids("01 04 05")),
    (did("order", count=count("at_least", 3)), ids("01")),  # u01's third order is 40 days old
    (did("order", count=count("at_least", 3), window=LAST_30), set()),
    (did("order", count=count("at_least", 0)), ALL),
    (did("order", count=count("at_most", 1), window=LAST_30), but("01 04 05")),  # zero counts as at most 1
    (did("order", count=count("at_most", 0), window=LAST_30), but("01 02 04 05 11")),
    (did("order", count=count("exactly", 2), window=LAST_30), ids("01 04 05")),
    (did("order", count=count("exactly", 1), window=LAST_30), ids("02 11")),
    (did("order", count=count("exactly", 0)), but("01 02 03 04 05 11")),
    # between: a bare date is the whole day; date-times are exact and inclusive
    (did("order", window={"between": ["2026-01-31", "2026-01-31"]}), ids("05")),  # 23:59:59 in, 00:00 next day out
    (did("order", count=count("exactly", 2),
         window={"between": ["2026-01-31T23:59:59Z", "2026-02-01T00:00:00Z"]}), ids("05")),
    (did("order", window={"between": ["2026-02-01T00:00:01Z", "2026-02-19T11:59:59Z"]}), set()),  # u01 1 s late
    (did("order", window={"between": ["2026-02-01T00:00:01Z", "2026-02-19T12:00:00Z"]}), ids("01")),
    # property filters on the event
    (did("order", where=[prop("amount", "greater", 100)]), ids("01 02 03 11")),
    (did("order", window=LAST_30, where=[prop("amount", "greater", 100)]), ids("01 02 11")),
    (did("order", count=count("at_least", 2), where=[prop("sku", "equals", "A-1")]), ids("01")),
    (did("order", where=[prop("sku", "in", ["B-2", "C-3"]), prop("amount", "less", 50)]), ids("04")),
    (did("order", where=[prop("gift", "equals", True)]), ids("11")),
    (did("order", did=False, where=[prop("sku", "equals", "A-1")]), but("01 03 11")),
    (did("login", did=False, window={"last_days": 60}), but("01 06 07")),  # u07 exactly 60 days; u08 61
    (did("signup"), set()),  # never recorded: allowed, with a warning
)
async def test_event_conditions(audience: Runtime, condition: dict[str, Any], expected: set[str]) -> None:
    await check(audience, condition, expected)


async def test_time_windows_move_with_now(audience: Runtime) -> None:
    """The same definition one second later loses the order placed exactly 30 days before NOW."""
    definition = {"conditions": [did("order", window=LAST_30)]}
    async with audience.factory() as session:
        later = await svc.segment_condition(session, definition, now=NOW + SECOND)
        people = set(await session.scalars(select(Profile.user_id).where(later)))
    assert people == ids("01 04 05 11")


# --- groups ---------------------------------------------------------------------------------------


async def test_and_or_nesting(audience: Runtime) -> None:
    gold = prop("plan", "equals", "gold")  # 01 03 05 07
    assert await matching(audience, gold, {"reachable": True}) == ids("01")
    assert await matching(audience, gold, fld("country", "equals", "DE"), match="any") == ids("01 03 05 07 11")
    # (IN or GB) and (ordered in 30 days or score > 15)
    #   = {01 02 03 08 04 05 06 07} ∩ ({01 02 04 05 11} ∪ {05 12}) = {01 02 04 05}
    assert await matching(
        audience,
        {"match": "any", "conditions": [fld("country", "equals", "IN"), fld("country", "equals", "GB")]},
        {"match": "any", "conditions": [did("order", window=LAST_30), prop("score", "greater", 15)]},
    ) == ids("01 02 04 05")
    # (gold and unreachable) or (tagged news and never logged in) = {03 05 07} ∪ {02 11}
    assert await matching(
        audience,
        {"match": "all", "conditions": [gold, {"reachable": False}]},
        {"match": "all", "conditions": [prop("tags", "contains", "news"), did("login", did=False)]},
        match="any",
    ) == ids("02 03 05 07 11")
    # five levels (the top one included) are allowed
    deep: dict[str, Any] = gold
    for _ in range(4):
        deep = {"match": "any", "conditions": [deep]}
    assert await matching(audience, deep) == ids("01 03 05 07")
    assert await matching(audience) == ALL  # no conditions: everyone


# --- reach ----------------------------------------------------------------------------------------


async def test_reach_of_everyone_gives_every_reason_and_the_country_breakdown(audience: Runtime) -> None:
    async with audience.factory() as session:
        reach = await svc.estimate_reach(session, {"match": "all", "conditions": []}, now=NOW)
    assert (reach.qualified, reach.reachable) == (12, 6)  # 01 02 06 10 11 12
    assert reach.unreachable.items() == [
        ("no phone", 2),  # u08, u09
        ("invalid phone", 1),  # u07
        ("not mobile-capable", 1),  # u05
        ("unsubscribed", 1),  # u03
        ("never opted in", 1),  # u04
    ]
    assert [(c.country, c.qualified, c.reachable) for c in reach.by_country] == [
        ("GB", 4, 1), ("IN", 4, 2), ("AU", 1, 1), ("DE", 1, 1), ("FR", 1, 1), (None, 1, 0),
    ]
    assert reach.warnings == ()


async def test_reach_of_a_segment(audience: Runtime) -> None:
    definition = {"conditions": [prop("plan", "in", ["gold", "silver"])]}  # 01 02 03 05 07 08
    async with audience.factory() as session:
        reach = await svc.estimate_reach(session, definition, now=NOW)
    assert (reach.qualified, reach.reachable) == (6, 2)  # u01, u02
    assert reach.unreachable == svc.UnreachableCounts(no_phone=1, invalid_phone=1, not_mobile_capable=1,
                                                      unsubscribed=1, never_opted_in=0)
    assert [(c.country, c.qualified, c.reachable) for c in reach.by_country] == [("IN", 4, 2), ("GB", 2, 0)]


async def test_unknown_event_is_a_warning_and_matches_no_one(audience: Runtime) -> None:
    async with audience.factory() as session:
        reach = await svc.estimate_reach(session, {"conditions": [did("signup")]}, now=NOW)
    assert reach.qualified == 0
    assert reach.warnings == ("conditions[0].event: no 'signup' event has been recorded yet",)


# --- validation -----------------------------------------------------------------------------------


# The parser's every rule is tested without a database in tests/unit/test_segment_parsing.py; here,
# that check_definition reads what it needs from the database: JSON text, profile property types,
# an event's property types, and every problem still reported at once.
@pytest.mark.parametrize(
    ("definition", "paths"),
    [
        ("{not json", ["definition"]),
        ({"conditions": [prop("plann", "equals", "x")]}, ["conditions[0].property"]),
        ({"conditions": [did("order", where=[prop("amount", "contains", "1")])]}, ["conditions[0].where[0].op"]),
        ({"match": "both", "conditions": [prop("plan", "equals", 1), {"match": "any", "conditions": [
            prop("score", "less", "x"), did("order", count=count("exactly", -2), window={"last_days": -1})]}]},
         ["match", "conditions[0].value", "conditions[1].conditions[0].value",
          "conditions[1].conditions[1].count.value", "conditions[1].conditions[1].window.last_days"]),
    ],
)
async def test_check_definition_reports_problems_against_the_database_catalog(audience: Runtime, definition: Any,
                                                                              paths: list[str]) -> None:
    async with audience.factory() as session:
        with pytest.raises(ValidationError) as caught:
            await svc.check_definition(session, definition)
    assert [path for path, _ in caught.value.problems] == paths


# --- catalog --------------------------------------------------------------------------------------


async def test_catalog_lists_fields_properties_and_events_with_types(audience: Runtime) -> None:
    async with audience.factory() as session:
        catalog = await svc.segment_catalog(session)
        assert await svc.event_names(session) == ["login", "order"]
    assert [(f.name, f.type) for f in catalog.fields] == [
        ("user_id", "string"), ("name", "string"), ("country", "string"), ("timezone", "string"),
        ("created_at", "date"),
    ]
    assert catalog.property_types() == TYPES  # the first import's types; u10's later ones did not change them
    assert [e.name for e in catalog.events] == ["login", "order"]
    assert catalog.event_property_types("order") == ORDER_TYPES
    assert next(p for p in catalog.properties if p.name == "tags").operators == svc.OPERATORS["list"]


# --- saved segments -------------------------------------------------------------------------------


async def test_create_show_list_update_and_audit(audience: Runtime) -> None:
    definition = {"conditions": [fld("country", "in", ["in", "gb"]), did("order", window=LAST_30)]}
    async with audience.factory() as session, session.begin():
        created = await svc.create_segment(session, name=" Recent buyers ", definition=definition,
                                           description="ordered this month", actor="ops")
    assert created.name == "Recent buyers"
    # stored normalized: explicit match, upper-case codes, did and window spelled out
    assert created.definition == {"match": "all", "conditions": [
        {"field": "country", "op": "in", "value": ["IN", "GB"]},
        {"event": "order", "did": True, "window": {"last_days": 30}}]}
    assert created.summary == 'country is one of ["IN", "GB"] AND did order in the last 30 days'
    async with audience.factory() as session, session.begin():
        updated = await svc.update_segment(session, "Recent buyers", new_name="Recent buyers IN",
                                           definition={"conditions": [fld("country", "equals", "IN")]}, actor="ops")
        assert [s.name for s in await svc.list_segments(session)].count("Recent buyers IN") == 1
        with pytest.raises(NotFound):
            await svc.get_segment(session, "Recent buyers")
        reach = await svc.estimate_reach(session, updated.definition, now=NOW)
    assert reach.qualified == 4  # 01 02 03 08
    async with audience.factory() as session, session.begin():
        shown = await svc.get_segment(session, "Recent buyers IN")
        assert (shown.description, shown.definition["conditions"]) == ("ordered this month",
                                                                       [fld("country", "equals", "IN")])
        await svc.delete_segment(session, "Recent buyers IN", actor="ops")
        actions = list(await session.scalars(select(AuditEntry.action).where(
            AuditEntry.target.like("Recent buyers%")).order_by(AuditEntry.id)))
    assert actions == ["segment.create", "segment.update", "segment.delete"]


async def test_duplicate_names_and_bad_definitions_are_refused_together(audience: Runtime) -> None:
    async with audience.factory() as session, session.begin():
        await svc.create_segment(session, name="Gold", definition={"conditions": [prop("plan", "equals", "gold")]},
                                 actor="ops")
    async with audience.factory() as session, session.begin():
        with pytest.raises(ValidationError) as caught:
            await svc.create_segment(session, name="Gold", definition={"conditions": [prop("plan", "greater", 1)]},
                                     actor="ops")
    assert [p for p, _ in caught.value.problems] == ["name", "conditions[0].op"]
    assert caught.value.for_field("name") == "a segment named 'Gold' already exists"
    async with audience.factory() as session, session.begin():
        with pytest.raises(ValidationError) as caught:
            await svc.create_segment(session, name="  ", definition={"conditions": []}, actor="ops")
        assert caught.value.problems == [("name", "is required")]
        await svc.create_segment(session, name="Silver", definition={"conditions": []}, actor="ops")
        with pytest.raises(ValidationError, match="already exists"):
            await svc.update_segment(session, "Silver", new_name="Gold", actor="ops")


async def test_duplicate_and_delete(audience: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    async with audience.factory() as session, session.begin():
        original = await svc.create_segment(session, name="Lapsed", actor="ops",
                                            definition={"conditions": [did("login", did=False, window={"last_days": 60})]})
        first = await svc.duplicate_segment(session, "Lapsed", actor="ops")
        second = await svc.duplicate_segment(session, "Lapsed", actor="ops")
        named = await svc.duplicate_segment(session, "Lapsed", new_name="Lapsed IN", actor="ops")
    assert [first.name, second.name, named.name] == ["Lapsed (copy)", "Lapsed (copy 2)", "Lapsed IN"]
    assert first.definition == original.definition and first.id != original.id

    async def used_by(session: Any, segment_id: int) -> list[str]:
        return ["Spring sale"] if segment_id == original.id else []

    monkeypatch.setattr(svc.crud, "campaigns_using_segment", used_by)
    async with audience.factory() as session, session.begin():
        with pytest.raises(Conflict, match="Spring sale"):
            await svc.delete_segment(session, "Lapsed", actor="ops")
        await svc.delete_segment(session, "Lapsed (copy)", actor="ops")
        with pytest.raises(NotFound):
            await svc.delete_segment(session, "Lapsed (copy)", actor="ops")
    async with audience.factory() as session:
        names = {s.name for s in await svc.list_segments(session)}
    assert {"Lapsed", "Lapsed (copy 2)", "Lapsed IN"} <= names and "Lapsed (copy)" not in names


async def test_compiled_sql_has_no_values_inlined(audience: Runtime) -> None:
    """User values travel as bound parameters, never as SQL text."""
    definition = {"conditions": [prop("plan", "equals", "x'); DROP TABLE profiles; --"),
                                 did("order", where=[prop("sku", "contains", "%_'")])]}
    async with audience.factory() as session:
        condition = await svc.segment_condition(session, definition, now=NOW)
        sql = str(select(Profile.id).where(condition).compile(session.get_bind()))
        assert "DROP TABLE" not in sql and "%_'" not in sql
        assert set(await session.scalars(select(Profile.user_id).where(condition))) == set()
