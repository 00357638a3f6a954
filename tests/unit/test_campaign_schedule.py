"""Campaign time (services/campaigns/schedule.py): when runs fall for every type, the day-of-month
rule, intervals, end dates, daylight-saving changes (never a skipped or doubled run), delivery in
each user's zone, the recipient's zone, and do-not-disturb windows."""

from __future__ import annotations

import zoneinfo
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smsconsole.services.campaigns.definition import Dnd, Recurrence, When, parse_document
from smsconsole.services.campaigns.schedule import (
    dnd_shift,
    local_instant,
    next_occurrence,
    occurrences,
    recipient_zone,
    start_instant,
    wall_to_utc,
)

LONDON = "Europe/London"
NEW_YORK = "America/New_York"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def local(text: str, zone: str) -> datetime:
    """A wall time that exists once in `zone`, as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=zoneinfo.ZoneInfo(zone)).astimezone(UTC)


def when(*, timezone: str = LONDON, at: Any = None, dates: tuple[datetime, ...] = (),
         recurrence: Recurrence | None = None, user_timezone: bool = False, dnd: Dnd | None = None) -> When:
    return When(timezone=timezone, at=at, dates=dates, recurrence=recurrence, user_timezone=user_timezone,
                late="next_day", dnd=dnd, ignore_global_limits=False)


def rule(every: str = "day", *, interval: int = 1, weekdays: tuple[int, ...] = (), day_of_month: int | None = None,
         at: str = "10:00", start: str = "2026-12-01", end: str | None = None) -> Recurrence:
    return Recurrence(every=every, interval=interval, weekdays=weekdays, day_of_month=day_of_month,
                      time=time.fromisoformat(at), start=date.fromisoformat(start),
                      end=date.fromisoformat(end) if end else None)


def recurring(zone: str = LONDON, **kwargs: Any) -> When:
    return when(timezone=zone, recurrence=rule(**kwargs))


def walls(instants: list[datetime], zone: str = LONDON) -> list[str]:
    """Each instant as the wall clock of `zone` shows it, with its UTC offset."""
    return [i.astimezone(zoneinfo.ZoneInfo(zone)).isoformat(sep=" ", timespec="minutes") for i in instants]


# --- one time and multiple dates ------------------------------------------------------------------

AT = local("2026-12-24 10:00", LONDON)


@pytest.mark.parametrize(("after", "not_before", "expected"), [
    (utc("2026-12-01 00:00"), None, [AT]),
    (AT - timedelta(seconds=1), None, [AT]),
    (AT, None, []),  # strictly after
    (utc("2026-12-01 00:00"), AT, [AT]),  # not_before is inclusive
    (utc("2026-12-01 00:00"), AT + timedelta(seconds=1), []),  # scheduled after its time: never
], ids=["before", "a-second-before", "at-itself", "scheduled-at-its-time", "scheduled-too-late"])
def test_one_time_at(after: datetime, not_before: datetime | None, expected: list[datetime]) -> None:
    assert occurrences(when(at=AT), "one_time", after=after, not_before=not_before) == expected


def test_one_time_now_is_the_moment_asked_once() -> None:
    now = utc("2026-12-01 09:00")
    assert occurrences(when(at="now"), "one_time", after=now) == [now]
    assert occurrences(when(at="now"), "one_time", after=now, not_before=now + timedelta(minutes=5)) == [
        now + timedelta(minutes=5)]
    assert next_occurrence(when(at="now"), "one_time", after=now) == now


def test_multiple_dates_sorted_unique_and_only_future() -> None:
    dates = (local("2026-12-31 18:00", LONDON), local("2026-12-24 10:00", LONDON),
             local("2026-12-24 10:00", LONDON), local("2026-11-01 10:00", LONDON))
    found = occurrences(when(dates=dates), "multiple_dates", after=utc("2026-12-01 00:00"))
    assert walls(found) == ["2026-12-24 10:00+00:00", "2026-12-31 18:00+00:00"]
    assert occurrences(when(dates=dates), "multiple_dates", after=utc("2026-12-01 00:00"), limit=1) == found[:1]
    assert occurrences(when(dates=dates), "multiple_dates", after=found[-1]) == []


def parsed(type_: str, when_: dict[str, Any]) -> When:
    """The When of a campaign file as definition.py reads it (wall times kept in the zone)."""
    document, problems = parse_document({"name": "t", "type": type_, "when": when_}, default_timezone="UTC",
                                        strict=False)
    assert problems == []
    return document.when


@pytest.mark.parametrize(("type_", "when_", "expected"), [
    ("one_time", {"timezone": NEW_YORK, "at": "2027-03-14 02:30"}, ["2027-03-14 07:00"]),  # the gap: 03:00 EDT
    ("one_time", {"timezone": NEW_YORK, "at": "2027-11-07 01:30"}, ["2027-11-07 05:30"]),  # twice: the first
    ("one_time", {"timezone": "Asia/Kolkata", "at": "2026-12-24 10:00"}, ["2026-12-24 04:30"]),
    ("multiple_dates", {"timezone": LONDON, "dates": ["2027-03-28 01:30", "2027-10-31 01:30", "2027-07-01 10:00"]},
     ["2027-03-28 01:00", "2027-07-01 09:00", "2027-10-31 00:30"]),
], ids=["one-time-gap", "one-time-twice", "one-time-kolkata", "dates-across-changes"])
def test_wall_times_from_a_campaign_file(type_: str, when_: dict[str, Any], expected: list[str]) -> None:
    found = occurrences(parsed(type_, when_), type_, after=utc("2026-12-01 00:00"))
    assert found == [utc(text) for text in expected]


def test_recurring_without_start_date_begins_when_scheduled() -> None:
    campaign = parsed("recurring", {"timezone": LONDON, "recurrence": {"every": "day", "interval": 2, "time": "10:00"}})
    scheduled = utc("2026-12-01 11:00")  # after today's 10:00
    found = occurrences(campaign, "recurring", after=scheduled, not_before=scheduled, limit=3)
    assert found == [utc("2026-12-03 10:00"), utc("2026-12-05 10:00"), utc("2026-12-07 10:00")]
    later = occurrences(campaign, "recurring", after=found[0], not_before=scheduled, limit=2)
    assert later == found[1:]


def test_unknown_type_or_missing_rule_has_no_runs() -> None:
    now = utc("2026-12-01 00:00")
    assert occurrences(when(at=AT), "live", after=now) == []
    assert occurrences(when(), "recurring", after=now) == []
    assert next_occurrence(when(), "recurring", after=now) is None


def test_naive_moments_are_refused() -> None:
    with pytest.raises(ValueError):
        occurrences(when(at=AT), "one_time", after=datetime(2026, 12, 1))


# --- recurring ------------------------------------------------------------------------------------

CREATED = utc("2026-12-01 08:00")  # a Tuesday


@pytest.mark.parametrize(("campaign", "after", "not_before", "expected"), [
    # daily: from the start date, every day; scheduled after today's time -> tomorrow first
    (recurring(), CREATED, CREATED, ["2026-12-01", "2026-12-02", "2026-12-03", "2026-12-04"]),
    (recurring(), utc("2026-12-01 11:00"), utc("2026-12-01 11:00"),
     ["2026-12-02", "2026-12-03", "2026-12-04", "2026-12-05"]),
    (recurring(start="2026-12-10"), CREATED, CREATED, ["2026-12-10", "2026-12-11", "2026-12-12", "2026-12-13"]),
    # every 3 days counted from the start date, also when asked from later on
    (recurring(interval=3), CREATED, CREATED, ["2026-12-01", "2026-12-04", "2026-12-07", "2026-12-10"]),
    (recurring(interval=3), utc("2026-12-05 12:00"), CREATED, ["2026-12-07", "2026-12-10", "2026-12-13", "2026-12-16"]),
    # weekly on Monday and Thursday; every second week counted from the start's week
    (recurring(every="week", weekdays=(0, 3)), CREATED, CREATED,
     ["2026-12-03", "2026-12-07", "2026-12-10", "2026-12-14"]),
    (recurring(every="week", weekdays=(3, 0), interval=2), CREATED, CREATED,
     ["2026-12-03", "2026-12-14", "2026-12-17", "2026-12-28"]),
    # 10:00 itself has passed: next week
    (recurring(every="week", weekdays=(1,)), utc("2026-12-01 10:00"), utc("2026-12-01 10:00"),
     ["2026-12-08", "2026-12-15", "2026-12-22", "2026-12-29"]),
    (recurring(every="week", weekdays=(0, 3), interval=2), utc("2026-12-08 00:00"), CREATED,  # an off week
     ["2026-12-14", "2026-12-17", "2026-12-28", "2026-12-31"]),
    # monthly on the 7th, created on the 8th: next month's 7th, never an earlier date
    (recurring(every="month", day_of_month=7, start="2026-12-08"), utc("2026-12-08 09:00"), utc("2026-12-08 09:00"),
     ["2027-01-07", "2027-02-07", "2027-03-07", "2027-04-07"]),
    (recurring(every="month", day_of_month=7, start="2026-12-07"), utc("2026-12-07 08:00"), utc("2026-12-07 08:00"),
     ["2026-12-07", "2027-01-07", "2027-02-07", "2027-03-07"]),
    (recurring(every="month", day_of_month=7, start="2026-12-07"), utc("2026-12-07 11:00"), utc("2026-12-07 11:00"),
     ["2027-01-07", "2027-02-07", "2027-03-07", "2027-04-07"]),
    # every second month, counted from the first month with a run on or after the start
    (recurring(every="month", day_of_month=7, interval=2, start="2026-12-08"), CREATED, CREATED,
     ["2027-01-07", "2027-03-07", "2027-05-07", "2027-07-07"]),
    # the 31st: the last day of shorter months
    (recurring(every="month", day_of_month=31, start="2027-03-01"), CREATED, CREATED,
     ["2027-03-31", "2027-04-30", "2027-05-31", "2027-06-30"]),
    # February, leap and not
    (recurring(every="month", day_of_month=30, start="2027-01-15"), CREATED, CREATED,
     ["2027-01-30", "2027-02-28", "2027-03-30", "2027-04-30"]),
    (recurring(every="month", day_of_month=31, start="2028-01-15"), CREATED, CREATED,
     ["2028-01-31", "2028-02-29", "2028-03-31", "2028-04-30"]),
    (recurring(every="month", day_of_month=29, start="2027-02-01"), CREATED, CREATED,
     ["2027-02-28", "2027-03-29", "2027-04-29", "2027-05-29"]),
    (recurring(every="month", day_of_month=29, start="2028-02-01"), CREATED, CREATED,
     ["2028-02-29", "2028-03-29", "2028-04-29", "2028-05-29"]),
    # a month whose shortened day is before the start: the next month
    (recurring(every="month", day_of_month=31, start="2027-04-30"), CREATED, CREATED,
     ["2027-04-30", "2027-05-31", "2027-06-30", "2027-07-31"]),
    # the end date is inclusive
    (recurring(end="2026-12-03"), CREATED, CREATED, ["2026-12-01", "2026-12-02", "2026-12-03"]),
    (recurring(every="week", weekdays=(3,), end="2026-12-10"), CREATED, CREATED, ["2026-12-03", "2026-12-10"]),
    (recurring(every="month", day_of_month=31, start="2027-01-01", end="2027-02-28"), CREATED, CREATED,
     ["2027-01-31", "2027-02-28"]),
    (recurring(end="2026-11-30"), CREATED, CREATED, []),
], ids=["daily", "daily-scheduled-after-the-time", "daily-later-start", "every-3-days", "every-3-days-from-later",
        "weekly-mon-thu", "every-2-weeks", "weekly-today-passed", "every-2-weeks-off-week",
        "monthly-7th-created-8th", "monthly-7th-created-7th", "monthly-7th-created-7th-after-time",
        "every-2-months", "monthly-31st", "monthly-30th-february", "monthly-31st-leap-february",
        "monthly-29th-february", "monthly-29th-leap-february", "monthly-31st-start-on-the-30th",
        "end-inclusive", "weekly-end-inclusive", "monthly-end-on-shortened-day", "ended-before-start"])
def test_recurring_dates(campaign: When, after: datetime, not_before: datetime, expected: list[str]) -> None:
    found = occurrences(campaign, "recurring", after=after, not_before=not_before, limit=4)
    assert [i.astimezone(zoneinfo.ZoneInfo(LONDON)).date().isoformat() for i in found] == expected
    assert all(i.astimezone(zoneinfo.ZoneInfo(LONDON)).time() == time(10, 0) for i in found)
    if found:
        assert next_occurrence(campaign, "recurring", after=after, not_before=not_before) == found[0]


def test_recurring_honours_limit_and_continues_from_after() -> None:
    campaign = recurring()
    first = occurrences(campaign, "recurring", after=CREATED, limit=10)
    assert len(first) == 10
    rest = occurrences(campaign, "recurring", after=first[4], limit=5)
    assert rest == first[5:]
    assert occurrences(campaign, "recurring", after=CREATED, limit=0) == []


def test_recurring_in_a_zone_ahead_of_utc_keeps_its_local_date() -> None:
    """10:00 in Kolkata on the 1st is 04:30 UTC on the 1st; 01:00 in Auckland on the 2nd is the 1st in UTC."""
    kolkata = occurrences(recurring("Asia/Kolkata"), "recurring", after=utc("2026-11-30 00:00"), limit=2)
    assert kolkata == [utc("2026-12-01 04:30"), utc("2026-12-02 04:30")]
    auckland = occurrences(recurring("Pacific/Auckland", at="01:00", start="2026-12-02"), "recurring",
                           after=utc("2026-11-30 00:00"), limit=1)
    assert walls(auckland, "Pacific/Auckland") == ["2026-12-02 01:00+13:00"]


# --- daylight saving: exactly one run per day, at the right instants --------------------------------

@pytest.mark.parametrize(("zone", "at", "start", "expected"), [
    # London springs forward 2027-03-28 01:00 GMT -> 02:00 BST: 01:30 does not exist, runs at 02:00 BST
    (LONDON, "01:30", "2027-03-27", ["2027-03-27 01:30", "2027-03-28 01:00", "2027-03-29 00:30"]),
    (LONDON, "10:00", "2027-03-27", ["2027-03-27 10:00", "2027-03-28 09:00", "2027-03-29 09:00"]),
    # London falls back 2027-10-31 02:00 BST -> 01:00 GMT: 01:30 happens twice, runs at the first
    (LONDON, "01:30", "2027-10-30", ["2027-10-30 00:30", "2027-10-31 00:30", "2027-11-01 01:30"]),
    (LONDON, "10:00", "2027-10-30", ["2027-10-30 09:00", "2027-10-31 10:00", "2027-11-01 10:00"]),
    # New York springs forward 2027-03-14 02:00 EST -> 03:00 EDT: 02:30 runs at 03:00 EDT
    (NEW_YORK, "02:30", "2027-03-13", ["2027-03-13 07:30", "2027-03-14 07:00", "2027-03-15 06:30"]),
    (NEW_YORK, "03:00", "2027-03-13", ["2027-03-13 08:00", "2027-03-14 07:00", "2027-03-15 07:00"]),
    # New York falls back 2027-11-07 02:00 EDT -> 01:00 EST: 01:30 runs at its first occurrence (EDT)
    (NEW_YORK, "01:30", "2027-11-06", ["2027-11-06 05:30", "2027-11-07 05:30", "2027-11-08 06:30"]),
    (NEW_YORK, "00:30", "2027-11-06", ["2027-11-06 04:30", "2027-11-07 04:30", "2027-11-08 05:30"]),
], ids=["london-spring-gap", "london-spring-day", "london-fall-twice", "london-fall-day",
        "newyork-spring-gap", "newyork-spring-after-gap", "newyork-fall-twice", "newyork-fall-before"])
def test_daily_across_daylight_saving(zone: str, at: str, start: str, expected: list[str]) -> None:
    found = occurrences(recurring(zone, at=at, start=start), "recurring", after=utc("2027-01-01 00:00"), limit=3)
    assert found == [utc(text) for text in expected]


@pytest.mark.parametrize("zone", [LONDON, NEW_YORK, "Australia/Lord_Howe", "America/Santiago", "Asia/Kolkata"])
@pytest.mark.parametrize("at", ["00:00", "00:30", "01:00", "01:30", "02:00", "02:30", "03:00", "23:30"])
def test_daily_runs_once_every_local_day_all_year(zone: str, at: str) -> None:
    """Through a whole year, every local date gets exactly one run, at the wall time or, on a
    spring-forward day, the first instant after the gap."""
    tz = zoneinfo.ZoneInfo(zone)
    found = occurrences(recurring(zone, at=at, start="2027-01-01", end="2027-12-31"), "recurring",
                        after=utc("2026-12-01 00:00"), limit=400)
    days = Counter(i.astimezone(tz).date() for i in found)
    assert len(found) == 365 and set(days.values()) == {1}
    wanted = time.fromisoformat(at)
    for instant in found:
        shown = instant.astimezone(tz)
        if shown.time() != wanted:  # only in a gap, and then at its end: a minute earlier was before it
            assert shown.time() > wanted
            before = (instant - timedelta(minutes=1)).astimezone(tz)
            assert before.utcoffset() != shown.utcoffset()


def test_wall_to_utc_gap_and_repeat() -> None:
    assert wall_to_utc(date(2027, 3, 14), time(2, 30), NEW_YORK) == utc("2027-03-14 07:00")
    assert wall_to_utc(date(2027, 11, 7), time(1, 30), NEW_YORK) == utc("2027-11-07 05:30")
    assert wall_to_utc(date(2027, 3, 28), time(1, 0), LONDON) == utc("2027-03-28 01:00")
    assert wall_to_utc(date(2027, 3, 28), time(1, 59, 59), LONDON) == utc("2027-03-28 01:00")


# --- deliver in the user's time zone ------------------------------------------------------------

def test_start_instant_is_the_planned_time_unless_per_user_zone() -> None:
    planned = local("2026-12-24 10:00", LONDON)
    assert start_instant(when(at=planned), planned) == planned
    # the same wall time at UTC+14: 10:00 on the 24th there is 20:00 UTC on the 23rd
    assert start_instant(when(at=planned, user_timezone=True), planned) == utc("2026-12-23 20:00")
    summer = local("2027-07-01 10:00", NEW_YORK)
    assert start_instant(when(timezone=NEW_YORK, at=summer, user_timezone=True), summer) == utc("2027-06-30 20:00")


@pytest.mark.parametrize(("planned", "campaign_zone", "recipient", "expected"), [
    ("2026-12-24 10:00", LONDON, LONDON, "2026-12-24 10:00"),
    ("2026-12-24 10:00", LONDON, "Asia/Kolkata", "2026-12-24 04:30"),
    ("2026-12-24 10:00", LONDON, "Asia/Kathmandu", "2026-12-24 04:15"),
    ("2026-12-24 10:00", LONDON, NEW_YORK, "2026-12-24 15:00"),
    ("2026-12-24 10:00", LONDON, "Pacific/Kiritimati", "2026-12-23 20:00"),
    ("2026-12-24 10:00", "Asia/Kolkata", LONDON, "2026-12-24 10:00"),
    # summer time on one side only
    ("2027-07-01 10:00", NEW_YORK, LONDON, "2027-07-01 09:00"),
    ("2027-07-01 10:00", NEW_YORK, "Asia/Kolkata", "2027-07-01 04:30"),
    # the recipient's spring-forward gap: 02:30 there runs at 03:00 EDT
    ("2027-03-14 02:30", LONDON, NEW_YORK, "2027-03-14 07:00"),
    # the recipient's repeated hour: the first 01:30
    ("2027-11-07 01:30", LONDON, NEW_YORK, "2027-11-07 05:30"),
], ids=["same-zone", "kolkata", "kathmandu", "new-york", "utc-plus-14", "from-kolkata", "summer-london",
        "summer-kolkata", "recipient-gap", "recipient-repeat"])
def test_local_instant(planned: str, campaign_zone: str, recipient: str, expected: str) -> None:
    assert local_instant(local(planned, campaign_zone), campaign_zone, recipient) == utc(expected)


@pytest.mark.parametrize(("profile_tz", "phone", "expected"), [
    ("Asia/Kolkata", "+14155550123", "Asia/Kolkata"),  # the profile's own zone first
    ("Mars/Olympus_Mons", "+14155550123", "America/Los_Angeles"),  # not a zone: the phone's
    ("", "+12125550123", NEW_YORK),
    (None, "+442071234567", LONDON),
    (None, "+447911123456", "Europe/Guernsey"),  # several zones for the prefix: the first listed
    (None, "+919876543210", "Asia/Calcutta"),  # phonenumbers' name for Asia/Kolkata
    (None, "+447700900123", "Europe/Paris"),  # the number's zone is unknown: the default
    (None, "not a number", "Europe/Paris"),
    (None, None, "Europe/Paris"),
    ("../../etc/passwd", None, "Europe/Paris"),
], ids=["profile", "invalid-profile-us", "us-east", "gb-landline", "gb-mobile", "india", "unknown-zone",
        "garbage-phone", "none", "path-like"])
def test_recipient_zone(profile_tz: str | None, phone: str | None, expected: str) -> None:
    assert recipient_zone(profile_tz, phone, "Europe/Paris") == expected


def test_recipient_zone_default_falls_back_to_utc() -> None:
    assert recipient_zone(None, None, "Nowhere/Special") == "UTC"
    assert zoneinfo.ZoneInfo(recipient_zone(None, "+919876543210", "UTC")).utcoffset(
        datetime(2026, 12, 1)) == timedelta(hours=5, minutes=30)


# --- do not disturb -------------------------------------------------------------------------------

NIGHT = Dnd(start=time(21, 0), end=time(9, 0), action="delay")
NIGHT_DISCARD = Dnd(start=time(21, 0), end=time(9, 0), action="discard")
LUNCH = Dnd(start=time(13, 0), end=time(14, 0), action="delay")


@pytest.mark.parametrize(("instant", "zone", "dnd", "expected"), [
    ("2026-12-24 22:00", LONDON, NIGHT, "2026-12-25 09:00"),  # evening: the next morning
    ("2026-12-24 08:00", LONDON, NIGHT, "2026-12-24 09:00"),  # early morning: this morning
    ("2026-12-24 21:00", LONDON, NIGHT, "2026-12-25 09:00"),  # the start is inside
    ("2026-12-24 09:00", LONDON, NIGHT, "2026-12-24 09:00"),  # the end is not
    ("2026-12-24 12:00", LONDON, NIGHT, "2026-12-24 12:00"),  # outside: unchanged
    ("2026-12-24 00:00", LONDON, NIGHT, "2026-12-24 09:00"),
    ("2026-12-24 22:00", LONDON, NIGHT_DISCARD, None),
    ("2026-12-24 12:00", LONDON, NIGHT_DISCARD, "2026-12-24 12:00"),
    ("2026-12-24 13:30", LONDON, LUNCH, "2026-12-24 14:00"),
    ("2026-12-24 13:00", LONDON, LUNCH, "2026-12-24 14:00"),
    ("2026-12-24 14:00", LONDON, LUNCH, "2026-12-24 14:00"),
    ("2026-12-24 12:59", LONDON, LUNCH, "2026-12-24 12:59"),
    ("2026-12-24 22:00", LONDON, Dnd(start=time(13, 0), end=time(14, 0), action="discard"), "2026-12-24 22:00"),
    # the recipient's zone decides: 16:00 UTC is 21:30 in Kolkata (inside) and 16:00 in London (outside)
    ("2026-12-24 16:00", "Asia/Kolkata", NIGHT, "2026-12-25 03:30"),
    ("2026-12-24 16:00", "Asia/Kolkata", NIGHT_DISCARD, None),
    ("2026-12-24 03:00", NEW_YORK, NIGHT, "2026-12-24 14:00"),
    # across a change: the window ends at 09:00 BST the morning after London springs forward
    ("2027-03-27 22:00", LONDON, NIGHT, "2027-03-28 08:00"),
    ("2027-10-30 22:00", LONDON, NIGHT, "2027-10-31 09:00"),
    # an end inside New York's gap: the first instant after it (03:00 EDT)
    ("2027-03-14 06:00", NEW_YORK, Dnd(start=time(22, 0), end=time(2, 30), action="delay"), "2027-03-14 07:00"),
    # an empty window
    ("2026-12-24 22:00", LONDON, Dnd(start=time(9, 0), end=time(9, 0), action="discard"), "2026-12-24 22:00"),
], ids=["evening", "early-morning", "at-start", "at-end", "midday", "midnight", "discard", "discard-outside",
        "lunch", "lunch-start", "lunch-end", "before-lunch", "lunch-discard-evening", "kolkata-inside",
        "kolkata-discard", "new-york-night", "london-spring", "london-fall", "end-in-gap", "empty-window"])
def test_dnd_shift(instant: str, zone: str, dnd: Dnd, expected: str | None) -> None:
    assert dnd_shift(utc(instant), zone, dnd) == (utc(expected) if expected else None)


def test_dnd_end_on_the_repeated_hour_is_never_before_the_instant() -> None:
    """A window ending at 01:30 on New York's fall-back night, checked during the second 01:15:
    the first 01:30 has passed, so the window ends at the second one."""
    second_0115 = utc("2027-11-07 06:15")  # 01:15 EST
    ends = dnd_shift(second_0115, NEW_YORK, Dnd(start=time(22, 0), end=time(1, 30), action="delay"))
    assert ends == utc("2027-11-07 06:30")


# --- properties -------------------------------------------------------------------------------------

ZONES = [LONDON, NEW_YORK, "Asia/Kolkata", "Australia/Lord_Howe", "America/Santiago", "Pacific/Apia", "UTC"]


@st.composite
def rules(draw: st.DrawFn) -> tuple[When, datetime, datetime | None]:
    every = draw(st.sampled_from(["day", "week", "month"]))
    start = draw(st.dates(min_value=date(2026, 1, 1), max_value=date(2029, 12, 31)))
    end = draw(st.none() | st.dates(min_value=start, max_value=date(2031, 12, 31)))
    recurrence = Recurrence(
        every=every, interval=draw(st.integers(1, 5)),
        weekdays=tuple(draw(st.sets(st.integers(0, 6), min_size=1))) if every == "week" else (),
        day_of_month=draw(st.integers(1, 31)) if every == "month" else None,
        time=time(draw(st.integers(0, 23)), draw(st.sampled_from([0, 15, 30, 59]))), start=start, end=end)
    campaign = when(timezone=draw(st.sampled_from(ZONES)), recurrence=recurrence)
    after = draw(st.datetimes(min_value=datetime(2025, 6, 1), max_value=datetime(2031, 1, 1),
                              timezones=st.just(UTC)))
    not_before = draw(st.none() | st.datetimes(min_value=datetime(2025, 6, 1), max_value=datetime(2031, 1, 1),
                                               timezones=st.just(UTC)))
    return campaign, after, not_before


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules())
def test_recurring_runs_are_increasing_unique_and_never_early(case: tuple[When, datetime, datetime | None]) -> None:
    campaign, after, not_before = case
    rule_ = campaign.recurrence
    assert rule_ is not None
    found = occurrences(campaign, "recurring", after=after, not_before=not_before, limit=12)
    assert all(a < b for a, b in zip(found, found[1:], strict=False))
    assert all(i > after and (not_before is None or i >= not_before) for i in found)
    tz = zoneinfo.ZoneInfo(campaign.timezone)
    for instant in found:
        day = instant.astimezone(tz).date()
        assert day >= rule_.start and (rule_.end is None or day <= rule_.end)
        if rule_.every == "week":
            assert day.weekday() in rule_.weekdays
    # asking again from any run continues the same series
    if len(found) > 2:
        assert occurrences(campaign, "recurring", after=found[1], not_before=not_before, limit=10) == found[2:]
