"""What Home warns about: campaigns held back by their safety check, with the numbers."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole.models import Campaign, CampaignRun
from smsconsole.services.campaigns.definition import campaign_code


@dataclass(frozen=True)
class BlockedCampaign:
    id: int
    code: str  # the Campaign ID people see, C12
    name: str
    qualified: int | None  # who qualified at the blocked run, when known
    safety_limit: int | None
    reason: str | None

    @property
    def sentence(self) -> str:
        """One line for an alert: name, Campaign ID, qualified vs limit."""
        if self.qualified is not None and self.safety_limit is not None:
            numbers = f"{self.qualified:,} qualified, safety limit {self.safety_limit:,}"
        else:
            numbers = self.reason or "safety check"
        return f"{self.name} ({self.code}) blocked by its safety check: {numbers}"


async def blocked_campaigns(session: AsyncSession) -> list[BlockedCampaign]:
    """Campaigns in state blocked (not deleted), oldest block first, with their latest blocked run's count."""
    rows = (await session.scalars(
        select(Campaign).where(Campaign.state == "blocked", Campaign.deleted_at.is_(None)).order_by(Campaign.updated_at)
    )).all()
    blocked: list[BlockedCampaign] = []
    for row in rows:
        qualified = await session.scalar(
            select(CampaignRun.qualified).where(CampaignRun.campaign_id == row.id, CampaignRun.state == "blocked")
            .order_by(CampaignRun.number.desc()).limit(1)
        )
        limit = (row.document or {}).get("who", {}) or {}
        safety = limit.get("safety_limit") if isinstance(limit, dict) else None
        blocked.append(BlockedCampaign(row.id, campaign_code(row.id), row.name, qualified,
                                       safety if isinstance(safety, int) else None, row.blocked_reason))
    return blocked
