"""The transactional send API's tables: the idempotency keys of `POST /v1/messages`, the
escalation steps of its messages and the saved templates a request may name. Registered on the Base of smsconsole.models."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from smsconsole.models import Base, BigId

__all__ = ["IdempotencyKey", "MessageEscalation", "MessageTemplate"]


class IdempotencyKey(Base):
    """One `Idempotency-Key` of one API key: the request it came with (a hash of its JSON) and the
    answer it got, replayed for 24 hours. The unique pair makes a second message for the same key
    impossible, whatever the concurrency."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("api_key_id", "key", name="uq_idempotency_keys_api_key_key"),
        Index("ix_idempotency_keys_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the request's canonical JSON
    status: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]


class MessageEscalation(Base):
    """One escalation step of a transactional message: when the message (or a resend of it) is not
    delivered by `due_at`, send again through a group or POST an alert to a webhook.
    pending → firing → fired | skipped | failed, or pending → cancelled (delivered in time)."""

    __tablename__ = "message_escalations"
    __table_args__ = (
        UniqueConstraint("message_id", "position", name="uq_message_escalations_message_position"),
        Index("ix_message_escalations_state_due", "state", "due_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)  # 1, 2, ... in the request's order
    after_minutes: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime]
    action: Mapped[str] = mapped_column(String(16))  # group | webhook
    group_name: Mapped[str | None] = mapped_column(String(64))
    webhook_url: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    result: Mapped[str | None] = mapped_column(Text)  # what happened, in a sentence
    sent_message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    http_status: Mapped[int | None] = mapped_column(Integer)  # the webhook's answer
    fired_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class MessageTemplate(Base):
    """A saved message body (Liquid) that `POST /v1/messages` names instead of sending a body:
    `{"template": "order_shipped", "data": {...}}`. Names are unique, compared as written."""

    __tablename__ = "message_templates"
    __table_args__ = (UniqueConstraint("name", name="uq_message_templates_name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    updated_by: Mapped[str | None] = mapped_column(String(128))
