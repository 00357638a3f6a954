"""Profiles, consent and events as the audience core stores them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from smsconsole import clock
from smsconsole.models import Consent, Event, Profile
from smsconsole.runtime import Runtime
from smsconsole.services import profiles as P
from smsconsole.services.errors import NotFound

GB = P.AudienceDefaults(region="GB", timezone="UTC")


async def _upsert(rt: Runtime, *rows: dict, source: str = "import") -> P.UpsertResult:  # type: ignore[type-arg]
    prepared = [P.prepare_profile(r, GB) for r in rows]
    async with rt.factory() as session, session.begin():
        return await P.upsert_profiles(session, prepared, source=source, defaults=GB)


async def _events(rt: Runtime, *rows: dict) -> P.EventsResult:  # type: ignore[type-arg]
    prepared = [P.prepare_event(r, GB) for r in rows]
    async with rt.factory() as session, session.begin():
        return await P.record_events(session, prepared, source="api", defaults=GB)


async def _show(rt: Runtime, key: str) -> P.ProfileDetail:
    async with rt.factory() as session:
        return await P.get_profile(session, key, default_region="GB")


async def test_phone_normalized_timezone_and_country_derived(runtime: Runtime) -> None:
    await _upsert(runtime, {"user_id": "u1", "phone": "07400 123456"},
                  {"user_id": "u2", "phone": "+1 (415) 555-0123", "timezone": "America/Chicago"},
                  {"user_id": "u3", "phone": "+61 412 345 678"})
    u1, u2, u3 = [await _show(runtime, k) for k in ("u1", "u2", "u3")]
    assert (u1.phone, u1.country, u1.timezone, u1.phone_type) == ("+447400123456", "GB", "Europe/London", "mobile")
    assert (u2.phone, u2.country, u2.timezone) == ("+14155550123", "US", "America/Chicago")  # explicit wins
    assert (u3.country, u3.timezone) == ("AU", "UTC")  # Australia has many zones: the default setting
    assert [u.timezone_source for u in (u1, u2, u3)] == ["phone", "given", "default"]


async def test_invalid_phone_kept_with_reason_and_unreachable(runtime: Runtime) -> None:
    await _upsert(runtime, {"user_id": "u1", "phone": "12345"}, {"user_id": "u2", "phone": "+441212345678"},
                  {"user_id": "u3"})
    u1, u2, u3 = [await _show(runtime, k) for k in ("u1", "u2", "u3")]
    assert (u1.phone, u1.phone_raw, u1.phone_status) == (None, "12345", "invalid") and u1.phone_reason
    assert u1.unreachable_reason == "invalid phone"
    assert u2.unreachable_reason == "not mobile-capable"  # a landline
    assert u3.unreachable_reason == "no phone"


async def test_reimport_changes_nothing_and_merges_properties(runtime: Runtime) -> None:
    rows = ({"user_id": "u1", "phone": "+447400123456", "plan": "gold", "optin_at": "2026-01-02T10:00:00Z"},
            {"phone": "+447400123457", "name": "Ann"})
    first = await _upsert(runtime, *rows)
    assert (first.created, first.updated, first.unchanged) == (2, 0, 0)
    async with runtime.factory() as session:
        stamp = await session.scalar(select(Profile.updated_at).where(Profile.user_id == "u1"))
    again = await _upsert(runtime, *rows)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    async with runtime.factory() as session:
        assert await session.scalar(select(Profile.updated_at).where(Profile.user_id == "u1")) == stamp
        assert await session.scalar(select(func.count()).select_from(Consent)) == 1
    merged = await _upsert(runtime, {"user_id": "u1", "vip": True}, {"phone": "07400 123457", "age": 40})
    assert (merged.created, merged.updated) == (0, 2)  # the phone-only profile is found by its phone
    assert (await _show(runtime, "u1")).properties == {"plan": "gold", "vip": True}
    assert (await _show(runtime, "+447400123457")).properties == {"age": 40}


async def test_subscription_moves_forward_in_time_only(runtime: Runtime) -> None:
    await _upsert(runtime, {"user_id": "u1", "phone": "+447400123456", "optin_at": "2026-03-01"})
    await _upsert(runtime, {"user_id": "u1", "optout_at": "2026-02-01"})  # older than the opt-in
    detail = await _show(runtime, "u1")
    assert detail.subscription == "subscribed"
    assert [(c.state, c.at.date().isoformat()) for c in detail.consents] == [
        ("subscribed", "2026-03-01"), ("unsubscribed", "2026-02-01")]
    await _events(runtime, {"user_id": "u1", "name": "sms_optout", "at": "2026-03-05T08:00:00Z"})
    detail = await _show(runtime, "u1")
    assert detail.subscription == "unsubscribed" and detail.consents[0].source == "event"


async def test_events_create_unknown_profiles_and_ignore_repeats(runtime: Runtime) -> None:
    clock.freeze(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
    batch = ({"user_id": "u9", "name": "order", "at": "2026-11-01T10:00:00Z", "properties": {"amount": 12.5}},
             {"phone": "07400 999888", "name": "sms_optin"},
             {"user_id": "u9", "name": "order", "at": "2026-11-01T10:00:00Z", "properties": {"amount": 12.5}})
    first = await _events(runtime, *batch)
    assert (first.recorded, first.duplicates, first.profiles_created) == (2, 1, 2)
    second = await _events(runtime, *batch)
    assert (second.recorded, second.duplicates, second.profiles_created) == (0, 3, 0)
    opted = await _show(runtime, "+447400999888")
    assert opted.subscription == "subscribed" and opted.subscription_at == clock.now()
    async with runtime.factory() as session:
        assert await session.scalar(select(func.count()).select_from(Event)) == 2


@pytest.mark.parametrize(
    ("row", "columns"),
    [
        ({}, {"user_id"}),
        ({"phone": "abc"}, {"phone"}),
        ({"user_id": "u", "timezone": "Mars/Base"}, {"timezone"}),
        ({"user_id": "u", "country": "Atlantis"}, {"country"}),
        ({"user_id": "u", "optin_at": "yesterday"}, {"optin_at"}),
        ({"user_id": "x" * 129}, {"user_id"}),
    ],
)
def test_bad_profile_rows_name_every_column(row: dict, columns: set[str]) -> None:  # type: ignore[type-arg]
    with pytest.raises(P.RowError) as caught:
        P.prepare_profile(row, GB)
    assert {column for column, _ in caught.value.problems} == columns


def test_typed_properties_follow_the_catalog() -> None:
    prepared = P.prepare_profile({"user_id": "u", "zip": "02139", "score": "7", "joined": "2026-01-05"}, GB,
                                 {"zip": "string", "score": "number", "joined": "date"})
    assert prepared.properties == {"zip": "02139", "score": 7, "joined": "2026-01-05T00:00:00Z"}
    with pytest.raises(P.RowError, match="score"):
        P.prepare_profile({"user_id": "u", "score": "lots"}, GB, {"score": "number"})


async def test_search_by_phone_in_any_format_user_id_or_name(runtime: Runtime) -> None:
    await _upsert(runtime, {"user_id": "cust-1", "phone": "+447400123456", "name": "Ann Smith"},
                  {"user_id": "cust-2", "phone": "+447400123457", "name": "Bob 100%"})
    async with runtime.factory() as session:
        by_phone = await P.search_profiles(session, "07400 123456", default_region="GB")
        by_id = await P.search_profiles(session, "cust-2")
        by_name = await P.search_profiles(session, "smi")
        literal = await P.search_profiles(session, "100%")
        with pytest.raises(NotFound):
            await P.get_profile(session, "nobody")
    assert [p.user_id for p in by_phone] == ["cust-1"]
    assert [p.user_id for p in by_id] == ["cust-2"]
    assert [p.user_id for p in by_name] == ["cust-1"]
    assert [p.user_id for p in literal] == ["cust-2"]


async def test_search_by_the_start_of_a_phone_or_user_id(runtime: Runtime) -> None:
    await _upsert(runtime, {"user_id": "cust-1", "phone": "+447400123456"},
                  {"user_id": "cust-2", "phone": "+447400129999"},
                  {"user_id": "cust-3", "phone": "+447411000000"},
                  {"user_id": "other", "phone": "+14155550123"})

    async def found(query: str, region: str | None = "GB") -> list[str | None]:
        async with runtime.factory() as session:
            return [p.user_id for p in await P.search_profiles(session, query, default_region=region)]

    assert await found("+44 7400") == ["cust-1", "cust-2"]
    assert await found("07400 12") == ["cust-1", "cust-2"]  # national, read in the default region
    assert await found("0044 7400 1234") == ["cust-1"]
    assert await found("447411") == ["cust-3"]  # international without its plus
    assert await found("07400 12", region=None) == []  # no region: a national start means nothing
    assert await found("(415) 555", region="US") == ["other"]
    assert await found("074") == []  # too short to be the start of a phone
    assert await found("cust-") == ["cust-1", "cust-2", "cust-3"]
    # an exact match comes before the profiles that only start with the text
    await _upsert(runtime, {"user_id": "cust", "phone": "+447400000001"})
    assert (await found("cust"))[0] == "cust"


@pytest.mark.parametrize(
    ("query", "region", "prefixes"),
    [
        ("+44 7400", None, ["+447400"]),
        ("07400 12", "GB", ["+44740012"]),
        ("0091 81234", "IN", ["+9181234"]),
        ("415-555", "US", ["+415555", "+1415555"]),
        ("12", "GB", []),
        ("Ann", "GB", []),
        ("u-1001", "GB", []),
    ],
)
def test_phone_prefixes(query: str, region: str | None, prefixes: list[str]) -> None:
    assert P.phone_prefixes(query, region) == prefixes


async def test_types_are_decided_per_distinct_set_and_only_disagreeing_rows_are_coerced_again(runtime: Runtime) -> None:
    """A batch's rows share a few sets of property types; each set is decided and compared once,
    and a row is coerced again only when its set disagrees with what the database holds."""
    async with runtime.factory() as session, session.begin():
        await P.upsert_profiles(session, [P.prepare_profile({"user_id": "first", "level": "high"}, GB, {})],
                                source="api", defaults=GB)  # level: string, from now on
    # prepared before `level` was stored: a number is inferred for it
    rows = [P.prepare_profile({"user_id": f"u{i}", "level": i, "size": 3}, GB, {}) for i in range(6)]
    rows.append(P.prepare_profile({"user_id": "t", "size": "4"}, GB, {"size": "number"}))
    async with runtime.factory() as session, session.begin():
        result = await P.upsert_profiles(session, rows, source="api", defaults=GB)
    assert result.created == 7
    async with runtime.factory() as session:
        assert await P.property_types(session, "profile") == {"level": "string", "size": "number"}
    assert [(await _show(runtime, f"u{i}")).properties for i in range(6)] == [
        {"level": str(i), "size": 3} for i in range(6)]
    assert (await _show(runtime, "t")).properties == {"size": 4}
