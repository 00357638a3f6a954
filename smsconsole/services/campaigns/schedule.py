"""Campaign time, pure (no database): when a campaign's runs fall, when a run starts, each
recipient's local delivery instant and the do-not-disturb window.

Rules (issue 13, /README "Campaigns"):
- Times are wall-clock times in the campaign's zone. A wall time that does not exist (the spring
  forward gap) falls at the first instant after the gap (02:30 on the US spring-forward day is
  03:00 local); a wall time that happens twice (fall back) falls once, at its first occurrence. So a
  daily run happens exactly once every day, across any daylight-saving change.
- A recurring run falls on or after its `start` date and never before `not_before` (the moment the
  campaign was scheduled): no run on an earlier date, whatever the creation date.
- Daily with interval N: every Nth day counted from `start`. Weekly: the chosen weekdays of every
  Nth week (weeks start on Monday) counted from the week holding `start`. Monthly: the day of the
  month, every Nth month counted from the first month whose run falls on or after `start`; the
  29th-31st in a shorter month falls on that month's last day. `end` is inclusive.
"""

from __future__ import annotations

import calendar
import functools
import zoneinfo
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import TYPE_CHECKING

import phonenumbers

if TYPE_CHECKING:
    from smsconsole.services.campaigns.definition import Dnd, Recurrence, When

EARLIEST_ZONE = timezone(timedelta(hours=14))  # UTC+14 (Pacific/Kiritimati): the first wall clock to reach a time
UNKNOWN_ZONE = "Etc/Unknown"
_MAX_DATE = date(9999, 12, 1)


# --- zones and wall times ---------------------------------------------------------------------

@functools.lru_cache(maxsize=512)
def _zone(name: str) -> zoneinfo.ZoneInfo | None:
    if not name or not isinstance(name, str):
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return None


def zone(name: str | None, default: str = "UTC") -> zoneinfo.ZoneInfo:
    """The zone named `name`, else `default`, else UTC."""
    return _zone(name or "") or _zone(default) or zoneinfo.ZoneInfo("UTC")


def valid_zone(name: str | None) -> bool:
    """Whether `name` is an IANA time zone name this system knows."""
    return _zone(name or "") is not None


def wall_to_utc(day: date, at: time, tz: zoneinfo.ZoneInfo | str) -> datetime:
    """The instant (UTC) the wall clock in `tz` shows `day` `at`: a time in the spring-forward gap
    is the first instant after the gap; a time that happens twice is its first occurrence."""
    tz = zone(tz) if isinstance(tz, str) else tz
    naive = datetime.combine(day, at.replace(tzinfo=None, fold=0))
    first = naive.replace(tzinfo=tz).astimezone(UTC)  # fold=0: the earlier offset
    if first.astimezone(tz).replace(tzinfo=None) == naive:
        return first
    # In the gap: fold=1 reads it with the offset after the change, fold=0 with the one before;
    # the change itself lies between the two readings. Find it to the second.
    later = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    low, high = min(first, later), max(first, later)
    after = high.astimezone(tz).utcoffset()
    while (high - low) > timedelta(seconds=1):
        middle = low + timedelta(seconds=int((high - low).total_seconds() // 2))
        if middle.astimezone(tz).utcoffset() == after:
            high = middle
        else:
            low = middle
    return high


def _wall(instant: datetime, tz: zoneinfo.ZoneInfo | timezone) -> datetime:
    """The naive wall-clock reading of `instant` in `tz`."""
    if instant.tzinfo is None:
        raise ValueError("an instant must be timezone-aware")
    return instant.astimezone(tz).replace(tzinfo=None, fold=0)


# --- run times --------------------------------------------------------------------------------

def occurrences(when: When, type: str, *, after: datetime, limit: int = 10,
                not_before: datetime | None = None) -> list[datetime]:
    """The planned instants (UTC, sorted, unique) strictly after `after` and never before
    `not_before`, at most `limit`. A one-time campaign "now" falls at `after` itself (or at
    `not_before` when that is later), once. Unknown types have none."""
    if after.tzinfo is None or (not_before is not None and not_before.tzinfo is None):
        raise ValueError("after and not_before must be timezone-aware")
    if limit <= 0:
        return []
    after = after.astimezone(UTC)
    floor = not_before.astimezone(UTC) if not_before is not None else None
    if type == "one_time":
        if when.at == "now":
            return [max(after, floor) if floor else after]
        candidates = [when.at] if isinstance(when.at, datetime) else []
    elif type == "multiple_dates":
        candidates = [d for d in (when.dates or ()) if isinstance(d, datetime)]
    elif type == "recurring":
        if when.recurrence is None:
            return []
        return _recurring(when.recurrence, zone(when.timezone), after, floor, limit)
    else:
        return []
    instants = {_instant(d) for d in candidates}
    return sorted(i for i in instants if i > after and (floor is None or i >= floor))[:limit]


def _instant(moment: datetime) -> datetime:
    """An aware date-time as UTC; a wall time in an IANA zone (as definition.py keeps `at` and
    `dates`) follows the gap and repeat rules of `wall_to_utc`."""
    if isinstance(moment.tzinfo, zoneinfo.ZoneInfo):
        return wall_to_utc(moment.date(), moment.time(), moment.tzinfo)
    return moment.astimezone(UTC)


def next_occurrence(when: When, type: str, *, after: datetime,
                    not_before: datetime | None = None) -> datetime | None:
    """The first planned instant after `after` (see `occurrences`), or None."""
    found = occurrences(when, type, after=after, limit=1, not_before=not_before)
    return found[0] if found else None


def _recurring(rule: Recurrence, tz: zoneinfo.ZoneInfo, after: datetime, floor: datetime | None,
               limit: int) -> list[datetime]:
    bound = max(after, floor) if floor else after
    # No start date: from the day it was scheduled (pass `not_before`, so intervals count from a
    # fixed day).
    start = rule.start or _wall(floor or after, tz).date()
    # The first local date that can hold a run after `bound` (a day earlier: zones ahead of UTC).
    from_day = max(start, _wall(bound, tz).date() - timedelta(days=1))
    found: list[datetime] = []
    for day in _days(rule, start, from_day):
        if rule.end is not None and day > rule.end:
            break
        instant = wall_to_utc(day, rule.time, tz)
        if instant <= after or (floor is not None and instant < floor):
            continue
        found.append(instant)
        if len(found) >= limit:
            break
    return found


def _days(rule: Recurrence, start: date, from_day: date) -> Iterator[date]:
    """The rule's dates on or after `from_day` (itself on or after `start`), in order."""
    interval = max(1, int(rule.interval or 1))
    try:
        if rule.every == "day":
            skip = (from_day - start).days
            day = start + timedelta(days=-(-skip // interval) * interval)
            while day < _MAX_DATE:
                yield day
                day += timedelta(days=interval)
        elif rule.every == "week":
            weekdays = sorted(set(rule.weekdays or ())) or [start.weekday()]
            first_monday = start - timedelta(days=start.weekday())
            weeks = (from_day - first_monday).days // 7
            monday = first_monday + timedelta(weeks=-(-weeks // interval) * interval)  # the first run week
            while monday < _MAX_DATE:
                for weekday in weekdays:
                    day = monday + timedelta(days=weekday)
                    if day >= from_day:
                        yield day
                monday += timedelta(weeks=interval)
        elif rule.every == "month":
            wanted = int(rule.day_of_month or start.day)
            year, month = start.year, start.month
            if _month_day(year, month, wanted) < start:  # the first run month: on or after start
                year, month = _add_months(year, month, 1)
            while date(year, month, 1) < _MAX_DATE:
                day = _month_day(year, month, wanted)
                if day >= from_day:
                    yield day
                year, month = _add_months(year, month, interval)
    except OverflowError:
        return


def _month_day(year: int, month: int, wanted: int) -> date:
    """Day `wanted` of the month, or its last day when the month is shorter."""
    return date(year, month, min(wanted, calendar.monthrange(year, month)[1]))


def _add_months(year: int, month: int, count: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + count
    return index // 12, index % 12 + 1


def start_instant(when: When, planned_at: datetime) -> datetime:
    """When a run must start: at its planned instant, or, delivering in each user's zone, when
    the planned wall time first arrives anywhere (UTC+14), up to ~26 h before the latest zone."""
    if not when.user_timezone:
        return planned_at.astimezone(UTC)
    wall = _wall(planned_at, zone(when.timezone))
    return wall.replace(tzinfo=EARLIEST_ZONE).astimezone(UTC)


def local_instant(planned_at: datetime, campaign_tz: str, recipient_tz: str) -> datetime:
    """The instant (UTC) the recipient's wall clock shows the wall time `planned_at` has in the
    campaign's zone (same date and time), with the gap and repeat rules of `wall_to_utc`."""
    wall = _wall(planned_at, zone(campaign_tz))
    return wall_to_utc(wall.date(), wall.time(), zone(recipient_tz))


# --- recipients ---------------------------------------------------------------------------------

@functools.lru_cache(maxsize=4096)
def _phone_zone(phone: str) -> str | None:
    from phonenumbers import timezone as phone_timezones  # its prefix table loads on first use

    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return None
    for name in phone_timezones.time_zones_for_number(number):
        if name != UNKNOWN_ZONE and valid_zone(name):
            return name
    return None


def recipient_zone(profile_tz: str | None, phone: str | None, default: str) -> str:
    """A recipient's zone: the profile's own when it is a valid IANA name, else the one the phone
    number tells (the first listed when its prefix spans several), else `default` (UTC when that
    is not valid either)."""
    if profile_tz and valid_zone(profile_tz.strip()):
        return profile_tz.strip()
    if phone:
        found = _phone_zone(phone.strip())
        if found:
            return found
    return default if valid_zone(default) else "UTC"


def dnd_shift(instant: datetime, zone_name: str, dnd: Dnd) -> datetime | None:
    """`instant` when it falls outside the do-not-disturb window (on the wall clock of
    `zone_name`; start inclusive, end exclusive; it crosses midnight when start > end); inside it,
    the window's next end at or after `instant` (action delay) or None (action discard). A window
    whose start equals its end is empty."""
    if instant.tzinfo is None:
        raise ValueError("an instant must be timezone-aware")
    start, end = dnd.start.replace(tzinfo=None), dnd.end.replace(tzinfo=None)
    if start == end:
        return instant
    tz = zone(zone_name)
    local = instant.astimezone(tz)
    at = local.time().replace(tzinfo=None, fold=0)
    inside = start <= at < end if start < end else (at >= start or at < end)
    if not inside:
        return instant
    if dnd.action == "discard":
        return None
    return _next_wall(instant, end, tz)


def _next_wall(instant: datetime, at: time, tz: zoneinfo.ZoneInfo) -> datetime:
    """The first instant at or after `instant` at which the wall clock of `tz` shows `at` (or the
    first instant after it, when it falls in a gap)."""
    day = _wall(instant, tz).date()
    for offset in (0, 1, 2):
        candidate_day = day + timedelta(days=offset)
        first = wall_to_utc(candidate_day, at, tz)
        if first >= instant:
            return first
        second = datetime.combine(candidate_day, at, tzinfo=tz).replace(fold=1).astimezone(UTC)
        if second >= instant and _wall(second, tz) == datetime.combine(candidate_day, at):
            return second
    return wall_to_utc(day + timedelta(days=3), at, tz)  # unreachable: a wall time recurs daily
