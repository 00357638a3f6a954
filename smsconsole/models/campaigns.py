"""Campaign models: the campaign and its runs, a live campaign's waits, due times and daily
counts, and conversions. Registered on the Base of smsconsole.models, which names them too."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from smsconsole.models import Base, BigId


class Campaign(Base):
    """A campaign: its document (When/Who/What as saved; a draft may be incomplete) and lifecycle.
    Deleting is soft (deleted_at) so sent messages keep their Campaign ID."""

    __tablename__ = "campaigns"
    __table_args__ = (
        Index("uq_campaigns_live_name", "name", unique=True,
              sqlite_where=text("deleted_at IS NULL"), postgresql_where=text("deleted_at IS NULL")),
        Index("ix_campaigns_state_next", "state", "next_run_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    type: Mapped[str] = mapped_column(String(24))  # one_time | multiple_dates | recurring | action | inaction | date
    state: Mapped[str] = mapped_column(String(16))  # draft | scheduled | running | paused | stopped | completed | blocked
    document: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    blocked_reason: Mapped[str | None] = mapped_column(Text)
    next_run_at: Mapped[datetime | None]
    created_by: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    scheduled_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]


class CampaignRun(Base):
    """One occurrence of a campaign: planned time, state, the document it ran with, and the
    people held back before any outbox row was written (message counts come from the outbox)."""

    __tablename__ = "campaign_runs"
    __table_args__ = (
        UniqueConstraint("campaign_id", "planned_at", name="uq_campaign_runs_occurrence"),
        Index("ix_campaign_runs_state_planned", "state", "planned_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)  # 1, 2, ... within its campaign
    planned_at: Mapped[datetime]
    # planned | materializing | running | live | paused | stopped | completed | blocked | missed | failed
    # (a live campaign has one run, `live` while it takes triggers)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    document: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    started_at: Mapped[datetime | None]
    materialized_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    qualified: Mapped[int | None] = mapped_column(Integer)
    materialized: Mapped[int | None] = mapped_column(Integer)
    suppressed: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    cursor: Mapped[int | None] = mapped_column(BigInteger)
    preflight: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the run-start preflight (findings, cost)
    updated_at: Mapped[datetime]


class CampaignWait(Base):
    """A pending inaction wait: the person did the trigger event (A) at `started_at` and gets the
    message at `due_at` unless the follow-up event (B) arrives in between. One pending wait per
    (campaign, person); finished waits stay as history with their end state."""

    __tablename__ = "campaign_waits"
    __table_args__ = (
        Index("uq_campaign_waits_pending", "campaign_id", "profile_id", unique=True,
              sqlite_where=text("state = 'pending'"), postgresql_where=text("state = 'pending'")),
        Index("ix_campaign_waits_due", "due_at", sqlite_where=text("state = 'pending'"),
              postgresql_where=text("state = 'pending'")),
        Index("ix_campaign_waits_campaign_state", "campaign_id", "state"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    run_id: Mapped[int] = mapped_column(BigInteger)
    profile_id: Mapped[int] = mapped_column(BigInteger)
    event_id: Mapped[int | None] = mapped_column(BigInteger)  # the trigger event (A)
    started_at: Mapped[datetime]  # A's time
    due_at: Mapped[datetime]  # started_at + the campaign's window
    # pending | fired | cancelled (B arrived in time) | expired (due long ago) | skipped | limited | ended
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    ended_event_id: Mapped[int | None] = mapped_column(BigInteger)  # the follow-up event (B) that cancelled it
    ended_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class CampaignDue(Base):
    """A due time of an on-a-date campaign for one person: the date property's day ± the offset
    (`due_day`, the recipient's local date) at the campaign's local time; `due_at` (UTC) is filled
    in by the engine once the day is near. `anchor` is "profile" (a profile property) or
    "event:<id>" (a property of that event). Unique per (campaign, person, anchor, day)."""

    __tablename__ = "campaign_due"
    __table_args__ = (
        UniqueConstraint("campaign_id", "profile_id", "anchor", "due_day", name="uq_campaign_due_occurrence"),
        Index("ix_campaign_due_pending", "due_at", sqlite_where=text("state = 'pending'"),
              postgresql_where=text("state = 'pending'")),
        Index("ix_campaign_due_day", "campaign_id", "state", "due_day"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    run_id: Mapped[int] = mapped_column(BigInteger)
    profile_id: Mapped[int] = mapped_column(BigInteger)
    anchor: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[int | None] = mapped_column(BigInteger)
    due_day: Mapped[date]
    due_at: Mapped[datetime | None]
    # pending | fired | cancelled (the date changed) | late (its time had passed) | skipped | limited | ended
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CampaignLiveDay(Base):
    """A live campaign's counts for one day (its time zone's calendar day), bumped in the same
    transaction as what they count, so the console and the limits read a handful of rows."""

    __tablename__ = "campaign_live_days"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    triggered: Mapped[int] = mapped_column(Integer, default=0)  # trigger events (or due times) that matched
    queued: Mapped[int] = mapped_column(Integer, default=0)  # messages queued (counts toward the limits)
    waits_started: Mapped[int] = mapped_column(Integer, default=0)
    waits_cancelled: Mapped[int] = mapped_column(Integer, default=0)  # the follow-up event came in time
    # matched but not queued, by reason
    not_in_filter: Mapped[int] = mapped_column(Integer, default=0)  # the Who filter or the reach sample left them out
    unreachable: Mapped[int] = mapped_column(Integer, default=0)  # opted out, no valid phone, ...
    not_eligible: Mapped[int] = mapped_column(Integer, default=0)  # the re-eligibility rule (already sent)
    limited: Mapped[int] = mapped_column(Integer, default=0)  # daily or target limit reached
    late: Mapped[int] = mapped_column(Integer, default=0)  # the event or due time was too old to act on


class CampaignConversion(Base):
    """A person of a run converted: the first goal event in the window after their message (after
    the would-be send time for a control row). One per (run, person); `revenue` is the goal's value
    property of that event."""

    __tablename__ = "campaign_conversions"
    __table_args__ = (
        UniqueConstraint("run_id", "profile_id", name="uq_campaign_conversions_person"),
        Index("ix_campaign_conversions_campaign", "campaign_id", "run_id", "variant"),
        Index("ix_campaign_conversions_event", "event_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    run_id: Mapped[int] = mapped_column(BigInteger)
    variant: Mapped[str | None] = mapped_column(String(8))  # "A"…"E" or "control"
    profile_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int | None] = mapped_column(BigInteger)  # the message (or control row) it is credited to
    event_id: Mapped[int] = mapped_column(BigInteger)
    converted_at: Mapped[datetime]  # the event's time
    revenue: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
