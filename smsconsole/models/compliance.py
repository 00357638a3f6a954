"""Compliance models: the senders each provider sends from with their registrations, the India DLT
templates and US 10DLC campaigns registered for them, and prices per provider and country.
Registered on the Base of smsconsole.models, which names them too."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from smsconsole.models import Base, BigId


class Sender(Base):
    """A number or sender id a provider sends from: its type, the countries it may send to (empty:
    any) and its registrations (US 10DLC brand and campaign, toll-free verification, India DLT
    principal entity; the DLT header is the value itself)."""

    __tablename__ = "senders"
    __table_args__ = (UniqueConstraint("provider_id", "value", name="uq_senders_provider_value"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"))
    value: Mapped[str] = mapped_column(String(32))  # E.164 number, short code or alphanumeric id
    type: Mapped[str] = mapped_column(String(16))  # long_code | short_code | toll_free | alphanumeric
    countries: Mapped[list[str]] = mapped_column(JSON, default=list)  # ISO 3166 alpha-2; [] = any
    brand_id: Mapped[str | None] = mapped_column(String(64))  # US 10DLC brand
    tendlc_campaign: Mapped[str | None] = mapped_column(String(64))  # US 10DLC campaign id (tendlc_campaigns)
    tollfree_status: Mapped[str | None] = mapped_column(String(16))  # verified | pending | rejected
    dlt_entity_id: Mapped[str | None] = mapped_column(String(32))  # India DLT principal entity id
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class DltTemplate(Base):
    """An India DLT content template: the text with {#var#} placeholders, its category and the
    header (sender id) it is registered under."""

    __tablename__ = "dlt_templates"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    template_id: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str | None] = mapped_column(String(120))
    header: Mapped[str] = mapped_column(String(16), index=True)
    entity_id: Mapped[str | None] = mapped_column(String(32))
    category: Mapped[str] = mapped_column(String(16))  # transactional | service | promotional
    content: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class TenDlcCampaign(Base):
    """A US 10DLC campaign registered with The Campaign Registry: its brand, use case and the
    sample messages registered with it."""

    __tablename__ = "tendlc_campaigns"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(64), unique=True)
    brand_id: Mapped[str] = mapped_column(String(64))
    use_case: Mapped[str] = mapped_column(String(48))
    description: Mapped[str | None] = mapped_column(Text)
    samples: Mapped[list[Any]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | pending | rejected | expired
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Price(Base):
    """What a provider charges to one country (per segment or per message), for one sender type
    or for any ('')."""

    __tablename__ = "prices"
    __table_args__ = (UniqueConstraint("provider_id", "country", "sender_type", name="uq_prices_provider_country_type"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"))
    country: Mapped[str] = mapped_column(String(2))
    sender_type: Mapped[str] = mapped_column(String(16), default="", server_default="")
    unit: Mapped[str] = mapped_column(String(8), default="segment")  # segment | message
    amount: Mapped[float] = mapped_column(Float)
    currency: Mapped[str] = mapped_column(String(3))
    source: Mapped[str] = mapped_column(String(8))  # manual | csv | api
    fetched_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
