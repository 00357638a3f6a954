"""Reading the rollups (migration 0010): `stat_traffic`, `stat_campaign` and `stat_series` are each
the GROUP BY of a fixed image of the rows of `messages` (and `campaign_conversions`), kept by
database triggers in the same transaction as the change. A reader sums every slot (PostgreSQL
writes each transaction's change to a slot of its own; `compact` folds them into slot 0), so what
it reads is exact at its snapshot, folded or not. Reads touch a few hundred rows, never messages.

Minutes are whole minutes since 1970 (UTC), hours whole hours. In the images `claimed` and
`sending` are `queued`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import String, and_, delete, func, literal, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole.models import (
    StatCampaign,
    StatSeries,
    StatSeriesHour,
    StatTraffic,
    StatTrafficHour,
)

TABLES = (StatTraffic, StatCampaign, StatSeries, StatTrafficHour, StatSeriesHour)
LATENCY_EDGES = (1, 2, 3, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)  # seconds; then "inf"


def minute_of(at: datetime) -> int:
    """Whole minutes since 1970 (UTC) of an aware datetime."""
    return int(at.timestamp()) // 60


def minute_start(minute: int) -> datetime:
    return datetime.fromtimestamp(minute * 60, tz=UTC)


# --- reading --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrafficRow:
    provider: str  # "" before a provider was chosen
    campaign_id: int  # 0: not a campaign message
    state: str
    n: int


async def traffic(session: AsyncSession, since: datetime, *, campaign_id: int | None = None) -> list[TrafficRow]:
    """Messages queued since `since` (to the minute) by provider, campaign and state now: the
    minutes up to the first whole hour from stat_traffic, the hours after it from
    stat_traffic_hour (a day's window reads a few hundred rows, not tens of thousands)."""
    first = minute_of(since)
    whole_hours = -(-first // 60)  # the first hour that starts at or after `since`
    totals: dict[tuple[str, int, str], int] = {}
    for table, column, where in (
            (StatTraffic, StatTraffic.minute, [StatTraffic.minute >= first, StatTraffic.minute < whole_hours * 60]),
            (StatTrafficHour, StatTrafficHour.hour, [StatTrafficHour.hour >= whole_hours])):
        if campaign_id is not None:
            where.append(table.campaign_id == campaign_id)
        rows = await session.execute(
            select(table.provider, table.campaign_id, table.state, func.sum(table.n))
            .where(*where).group_by(table.provider, table.campaign_id, table.state))
        for provider, campaign, state, n in rows.all():
            key = (provider, int(campaign), state)
            totals[key] = totals.get(key, 0) + int(n or 0)
    return [TrafficRow(p, c, s, n) for (p, c, s), n in totals.items() if n]


@dataclass(frozen=True)
class SeriesRow:
    minute: int
    variant: str
    provider: str
    metric: str  # sent | delivered | failed | converted
    n: int


async def series(session: AsyncSession, first_minute: int, last_minute: int, *, campaign_id: int | None = None,
                 metrics: Iterable[str] | None = None, by_variant: bool = False, by_provider: bool = True,
                 bucket: int = 1) -> list[SeriesRow]:
    """Per `bucket` minutes (the row's minute is its bucket's first) from `first_minute` to
    `last_minute` inclusive: counts by metric and provider (and variant when `by_variant`; provider
    "" for all when not `by_provider`), for one campaign or all traffic (campaign_id None).
    Whole-hour buckets that start on an hour read stat_series_hour."""
    hourly = bucket >= 60 and bucket % 60 == 0 and first_minute % 60 == 0
    table = StatSeriesHour if hourly else StatSeries
    unit = 60 if hourly else 1
    time = StatSeriesHour.hour if hourly else StatSeries.minute
    first, last, step = first_minute // unit, last_minute // unit, max(1, bucket // unit)
    where = [time >= first, time <= last]
    if campaign_id is not None:
        where.append(table.campaign_id == campaign_id)
    if metrics is not None:
        where.append(table.metric.in_(list(metrics)))
    at = time if step <= 1 else (time - first) // step * step + first
    provider = table.provider if by_provider else literal("", String)
    keys = [at.label("m"), table.metric] + ([table.provider] if by_provider else []) \
        + ([table.variant] if by_variant else [])
    rows = await session.execute(select(at.label("m"), provider, table.metric,
                                        *([table.variant] if by_variant else []), func.sum(table.n))
                                 .where(*where).group_by(*keys))
    return [SeriesRow(int(m) * unit, str(v[0]) if by_variant else "", p, metric, int(v[-1]))
            for m, p, metric, *v in rows.all() if v[-1]]


@dataclass(frozen=True)
class CampaignRow:
    run_id: int
    variant: str
    provider: str
    country: str
    state: str  # a message state (claimed/sending as queued), "latency" or "converted"
    detail: str  # error code or reason (failed, undelivered, unknown, suppressed); latency bucket
    n: int
    segments: int
    amount: float  # price sum; revenue for "converted"


async def campaign_rows(session: AsyncSession, campaign_id: int, *, run_ids: Iterable[int] | None = None
                        ) -> list[CampaignRow]:
    """Everything the rollups know of one campaign (or of some of its runs), slots summed."""
    where = [StatCampaign.campaign_id == campaign_id]
    if run_ids is not None:
        where.append(StatCampaign.run_id.in_(list(run_ids)))
    keys = (StatCampaign.run_id, StatCampaign.variant, StatCampaign.provider, StatCampaign.country,
            StatCampaign.state, StatCampaign.detail)
    rows = await session.execute(
        select(*keys, func.sum(StatCampaign.n), func.sum(StatCampaign.segments), func.sum(StatCampaign.amount))
        .where(*where).group_by(*keys))
    return [CampaignRow(int(r), v, p, c, s, d, int(n), int(seg or 0), float(a or 0))
            for r, v, p, c, s, d, n, seg, a in rows.all() if n or a]


async def run_state_counts(session: AsyncSession, run_ids: Iterable[int]) -> list[tuple[int, str, str, int]]:
    """(run id, state, detail, count) of message rows for each run (latency and conversions left out)."""
    ids = list(run_ids)
    if not ids:
        return []
    rows = await session.execute(
        select(StatCampaign.run_id, StatCampaign.state, StatCampaign.detail, func.sum(StatCampaign.n))
        .where(StatCampaign.run_id.in_(ids), StatCampaign.state.not_in(("latency", "converted")))
        .group_by(StatCampaign.run_id, StatCampaign.state, StatCampaign.detail))
    return [(int(r), s, d, int(n)) for r, s, d, n in rows.all() if n]


def latency_percentiles(buckets: dict[str, int], quantiles: Iterable[float] = (0.5, 0.9, 0.99)) -> dict[float, str]:
    """From sent → delivered bucket counts ({"5": 120, "inf": 2}): each quantile as the bucket
    bound it falls under ("≤ 5 s", "> 1 d"); empty when nothing was delivered."""
    total = sum(buckets.values())
    if not total:
        return {}
    ordered = sorted(buckets.items(), key=lambda item: float("inf") if item[0] == "inf" else int(item[0]))
    out: dict[float, str] = {}
    for q in quantiles:
        need, seen = q * total, 0
        for bound, count in ordered:
            seen += count
            if seen >= need:
                out[q] = "> 1 d" if bound == "inf" else f"≤ {_duration(int(bound))}"
                break
    return out


def _duration(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


# --- upkeep ---------------------------------------------------------------------------------------


async def compact(session: AsyncSession) -> int:
    """Fold PostgreSQL's per-transaction slots into slot 0 and drop rows that sum to nothing.
    Safe to run from several processes at once (a delta is deleted once). The caller commits.
    Returns the delta rows folded."""
    folded = 0
    postgres = session.get_bind().dialect.name == "postgresql"
    for table in TABLES:
        name = table.__tablename__
        keys = [c.name for c in table.__table__.primary_key.columns if c.name != "slot"]
        values = [c.name for c in table.__table__.columns if c.name not in keys and c.name != "slot"]
        if postgres:
            cols = ", ".join(keys)
            result = await session.execute(text(
                f"WITH moved AS (DELETE FROM {name} WHERE slot <> 0 RETURNING {cols}, {', '.join(values)}), "
                f"folded AS (INSERT INTO {name} ({cols}, slot, {', '.join(values)}) "
                f"SELECT {cols}, 0, {', '.join(f'sum({v})' for v in values)} FROM moved GROUP BY {cols} "
                f"ORDER BY {cols} "
                f"ON CONFLICT ({cols}, slot) DO UPDATE SET "
                f"{', '.join(f'{v} = {name}.{v} + excluded.{v}' for v in values)} RETURNING 1) "
                f"SELECT (SELECT count(*) FROM moved)"))
            folded += int(result.scalar() or 0)
        zero = and_(table.slot == 0, *(getattr(table, v) == 0 for v in values))
        await session.execute(delete(table).where(zero))
    return folded
