"""The parts of a long reply, held until their set is whole (services/inbound_parts.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from smsconsole.models import Base, BigId

__all__ = ["InboundPart"]


class InboundPart(Base):
    """One part of a concatenated inbound message as the provider delivered it. `set_key` names its
    set (provider, sender, concatenation reference, part count); `done_at` is when the set went
    through the replies pipeline (as `inbound_id`); finished rows are kept a while so that a
    provider's retry of a part is recognised, then deleted."""

    __tablename__ = "inbound_parts"
    __table_args__ = (
        UniqueConstraint("set_key", "part", name="uq_inbound_parts_set_key_part"),
        Index("ix_inbound_parts_done_at", "done_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    set_key: Mapped[str] = mapped_column(String(64))
    part: Mapped[int] = mapped_column(Integer)
    parts: Mapped[int] = mapped_column(Integer)
    provider_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("providers.id", ondelete="SET NULL"))
    provider_name: Mapped[str | None] = mapped_column(String(64))
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    sender: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str | None] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    via: Mapped[str] = mapped_column(String(8))
    occurred_at: Mapped[datetime | None]
    received_at: Mapped[datetime]
    done_at: Mapped[datetime | None]
    inbound_id: Mapped[int | None] = mapped_column(BigInteger)
