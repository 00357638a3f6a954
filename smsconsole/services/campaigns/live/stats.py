"""A live campaign's numbers for its page and `campaigns show`: waits and due dates pending, today's
counters (campaign_live_days, the campaign's own calendar day), the total queued toward the
target limit, and the latest messages it queued. A handful of indexed reads, cheap enough for a
page refreshed every second: the pending counts stop at `count_cap` (with a million waits
pending, the whole read takes about 6 ms on SQLite and on PostgreSQL after ANALYZE; an exact count,
70-90 ms, is for one-off reads such as `campaigns show`); the latest fires come from
ix_messages_campaign (campaign_id, id)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole.models import CampaignDue, CampaignLiveDay, CampaignWait, Event, Message
from smsconsole.services.campaigns.definition import CampaignDocument
from smsconsole.services.campaigns.live.common import COUNTERS, campaign_day

COUNT_CAP = 10_000  # pending waits / dues are counted up to this many on a live page ("10,000+")
EXACT_CAP = 100_000_000  # a one-off read (campaigns show) counts them all
LATEST = 8
HELD_BACK_COUNTERS = ("not_in_filter", "unreachable", "not_eligible", "limited", "late")
HELD_BACK_WORDS = {"not_in_filter": "not in the filter", "unreachable": "not reachable",
                   "not_eligible": "not eligible again yet", "limited": "over the daily or target limit",
                   "late": "too late to act on"}


@dataclass(frozen=True)
class LiveFire:
    """One message the campaign queued."""

    message_id: int
    created_at: datetime
    to_number: str
    profile_id: int | None
    state: str
    reason: str | None
    event_name: str | None  # the triggering event; None for a due date
    from_wait: bool


@dataclass(frozen=True)
class LiveStats:
    day: date  # today in the campaign's time zone
    waits_pending: int  # at most count_cap
    dues_pending: int  # at most count_cap
    today: dict[str, int] = field(default_factory=dict)  # the campaign_live_days counters for `day`
    queued_total: int = 0  # over every day: what the target limit counts
    latest: tuple[LiveFire, ...] = ()
    count_cap: int = COUNT_CAP

    def count_words(self, n: int) -> str:
        """'1,234', or '10,000+' when the count stopped at the cap."""
        return f"{n:,}+" if n >= self.count_cap else f"{n:,}"

    @property
    def held_back_today(self) -> dict[str, int]:
        return {name: self.today.get(name, 0) for name in HELD_BACK_COUNTERS if self.today.get(name)}


def held_back_words(counts: dict[str, int]) -> str:
    """'not in the filter 3, not reachable 1', largest first."""
    items = sorted(counts.items(), key=lambda item: -item[1])
    return ", ".join(f"{HELD_BACK_WORDS.get(name, name)} {n:,}" for name, n in items if n)


async def _capped_count(session: AsyncSession, statement: object, cap: int) -> int:
    inner = statement.limit(cap).subquery()  # type: ignore[attr-defined]
    return int(await session.scalar(select(func.count()).select_from(inner)) or 0)


async def live_stats(session: AsyncSession, campaign_id: int, document: CampaignDocument, *, now: datetime,
                     latest: int = LATEST, count_cap: int = COUNT_CAP) -> LiveStats:
    """The live panel's numbers for one campaign at `now`; pending counts stop at `count_cap`."""
    day = campaign_day(document, now)
    waits = await _capped_count(session, select(CampaignWait.id).where(
        CampaignWait.campaign_id == campaign_id, CampaignWait.state == "pending"), count_cap)
    dues = 0
    if document.type == "date":
        dues = await _capped_count(session, select(CampaignDue.id).where(
            CampaignDue.campaign_id == campaign_id, CampaignDue.state == "pending"), count_cap)
    row = (await session.execute(select(*(getattr(CampaignLiveDay, name) for name in COUNTERS)).where(
        CampaignLiveDay.campaign_id == campaign_id, CampaignLiveDay.day == day))).first()
    today = {name: int(value or 0) for name, value in zip(COUNTERS, row, strict=True)} if row else \
        dict.fromkeys(COUNTERS, 0)
    total = int(await session.scalar(select(func.coalesce(func.sum(CampaignLiveDay.queued), 0)).where(
        CampaignLiveDay.campaign_id == campaign_id)) or 0)
    rows = (await session.execute(
        select(Message.id, Message.created_at, Message.to_number, Message.profile_id, Message.state, Message.reason,
               Event.name, Message.wait_id)
        .outerjoin(Event, Event.id == Message.event_id)
        .where(Message.campaign_id == campaign_id)
        .order_by(Message.id.desc()).limit(latest))).all()
    fires = tuple(LiveFire(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7] is not None) for r in rows)
    return LiveStats(day=day, waits_pending=waits, dues_pending=dues, today=today, queued_total=total, latest=fires,
                     count_cap=count_cap)
