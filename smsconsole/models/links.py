"""Tracked short links: one row per link a message tracks (`{{ url | track }}`), made when the
engine renders the message, found by its code when the recipient opens it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from smsconsole.models import Base, BigId

__all__ = ["ShortLink"]


class ShortLink(Base):
    """A short code (unique, random) and the long URL it redirects to, with who got it in which
    message of which campaign run and variant; clicks and link previews (bots, HEAD) counted on
    the row. `position` is the link's place in its message (0: the first `track` of the body)."""

    __tablename__ = "short_links"
    __table_args__ = (
        UniqueConstraint("message_id", "position", name="uq_short_links_message_position"),
        Index("ix_short_links_campaign_clicks", "campaign_id", "clicks"),
        Index("ix_short_links_expires_at", "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    url: Mapped[str] = mapped_column(Text)
    message_id: Mapped[int | None] = mapped_column(BigId)
    position: Mapped[int] = mapped_column(Integer, default=0)
    profile_id: Mapped[int | None] = mapped_column(BigId)
    campaign_id: Mapped[int | None] = mapped_column(BigId)
    run_id: Mapped[int | None] = mapped_column(BigId)
    variant: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    clicks: Mapped[int] = mapped_column(Integer, default=0)
    previews: Mapped[int] = mapped_column(Integer, default=0)
    first_clicked_at: Mapped[datetime | None]
    last_clicked_at: Mapped[datetime | None]
