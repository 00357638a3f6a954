"""The rollups (migration 0010): each table is the GROUP BY of a fixed image of the rows of
`messages` (and `campaign_conversions`), kept by database triggers in the same transaction as the
change; readers sum over `slot` (services/rollups.py). Nothing in Python writes to them except
`rollups.compact`, which folds PostgreSQL's per-transaction slots."""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from smsconsole.models import Base


class StatTraffic(Base):
    """Messages by the minute they were queued, provider, campaign (0: none) and state now."""

    __tablename__ = "stat_traffic"

    minute: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # minutes since 1970, UTC
    provider: Mapped[str] = mapped_column(String(64), primary_key=True)  # "" before one is chosen
    campaign_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    state: Mapped[str] = mapped_column(String(16), primary_key=True)  # claimed/sending count as queued
    slot: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


class StatCampaign(Base):
    """A campaign's rows by run, variant, provider, country, state and detail (error code or
    reason); state "latency" (detail: the bucket's upper bound in seconds, or "inf") and
    "converted" (amount: revenue) are kept here too. amount is the price sum for message states."""

    __tablename__ = "stat_campaign"

    campaign_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    run_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    variant: Mapped[str] = mapped_column(String(8), primary_key=True)
    provider: Mapped[str] = mapped_column(String(64), primary_key=True)
    country: Mapped[str] = mapped_column(String(2), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), primary_key=True)
    detail: Mapped[str] = mapped_column(String(120), primary_key=True)
    slot: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)
    segments: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[float] = mapped_column(Float)


class StatSeries(Base):
    """Per minute: messages sent (by sent_at), delivered and failed (by finished_at), conversions
    (by converted_at), by campaign (0: none), variant and provider."""

    __tablename__ = "stat_series"
    __table_args__ = (Index("ix_stat_series_campaign", "campaign_id", "minute"),)

    minute: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    variant: Mapped[str] = mapped_column(String(8), primary_key=True)
    provider: Mapped[str] = mapped_column(String(64), primary_key=True)
    metric: Mapped[str] = mapped_column(String(16), primary_key=True)  # sent | delivered | failed | converted
    slot: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


class StatTrafficHour(Base):
    """stat_traffic by the hour (hours since 1970, UTC): a day's window in a few hundred rows."""

    __tablename__ = "stat_traffic_hour"

    hour: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    provider: Mapped[str] = mapped_column(String(64), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    state: Mapped[str] = mapped_column(String(16), primary_key=True)
    slot: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


class StatSeriesHour(Base):
    """stat_series by the hour: a long campaign's chart."""

    __tablename__ = "stat_series_hour"
    __table_args__ = (Index("ix_stat_series_hour_campaign", "campaign_id", "hour"),)

    hour: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    variant: Mapped[str] = mapped_column(String(8), primary_key=True)
    provider: Mapped[str] = mapped_column(String(64), primary_key=True)
    metric: Mapped[str] = mapped_column(String(16), primary_key=True)
    slot: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


class RollupDefer(Base):
    """Holds a row only inside a transaction that keeps the rollups itself, per batch
    (services/rollup_batch.py): while it does, SQLite's per-row update triggers on `messages`
    stand aside (migration 0016). Never committed with a row in it."""

    __tablename__ = "rollup_defer"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
