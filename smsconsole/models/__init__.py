"""ORM models. Services return frozen dataclasses built from these, never the rows themselves."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

BigId = BigInteger().with_variant(Integer, "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as UTC; always returned timezone-aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON}


class Provider(Base):
    __tablename__ = "providers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    base_url: Mapped[str | None] = mapped_column(String(500))
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    secrets: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    health: Mapped[str] = mapped_column(String(16), default="unknown")
    health_detail: Mapped[str | None] = mapped_column(Text)
    health_checked_at: Mapped[datetime | None]
    # Rate limits, in message segments per second as providers count them (None: no limit).
    rate_limit: Mapped[float | None] = mapped_column(Float)
    sender_rate_limit: Mapped[float | None] = mapped_column(Float)  # per sender (e.g. Twilio long codes)
    # Circuit breaker: closed (in rotation), open (out until circuit_until), half_open (probing).
    circuit_state: Mapped[str] = mapped_column(String(16), default="closed", server_default="closed")
    circuit_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    circuit_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ProviderGroup(Base):
    """Providers in priority order, with failover; optionally for some destination countries."""

    __tablename__ = "provider_groups"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    countries: Mapped[list[str]] = mapped_column(JSON, default=list)  # ISO 3166 alpha-2, upper case
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ProviderGroupMember(Base):
    __tablename__ = "provider_group_members"
    __table_args__ = (
        UniqueConstraint("group_id", "provider_id", name="uq_provider_group_members_provider"),
        UniqueConstraint("group_id", "position", name="uq_provider_group_members_position"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("provider_groups.id", ondelete="CASCADE"))
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # 1 = highest priority


class Message(Base):
    """The outbox: one row per message to one recipient, moved along by the engine."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_state_due", "state", "next_attempt_at"),
        Index("ix_messages_provider_message_id", "provider_message_id"),
        Index("ix_messages_kind_created", "kind", "created_at"),
        Index("ix_messages_to_state", "to_number", "state"),
        Index("ix_messages_run_state", "run_id", "state"),
        Index("ix_messages_campaign", "campaign_id", "id"),
        Index("ix_messages_campaign_profile", "campaign_id", "profile_id", "created_at"),
        Index("ix_messages_profile_sent", "profile_id", "sent_at"),
        # the dispatchers' claim order over queued messages only (every worker's claim reads it)
        Index("ix_messages_queue", text("priority DESC"), "id", postgresql_where=text("state = 'queued'"),
              sqlite_where=text("state = 'queued'")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # test | campaign | auto | transactional
    priority: Mapped[int] = mapped_column(Integer, default=0)  # higher goes first
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id", ondelete="SET NULL"))
    provider_name: Mapped[str | None] = mapped_column(String(64))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("provider_groups.id", ondelete="SET NULL"))
    profile_id: Mapped[int | None] = mapped_column(ForeignKey("profiles.id", ondelete="SET NULL"))
    country: Mapped[str | None] = mapped_column(String(2))  # the destination's region, for routing
    to_number: Mapped[str] = mapped_column(String(32))
    sender: Mapped[str | None] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    encoding: Mapped[str] = mapped_column(String(8))
    segments: Mapped[int] = mapped_column(Integer)
    # queued → claimed (by one engine tenure, not yet sent) → sending (its request is leaving) → …
    state: Mapped[str] = mapped_column(String(16), index=False)
    claim_token: Mapped[str | None] = mapped_column(String(32))  # the lease tenure that claimed it
    # The provider whose bind this message waits for (SMPP bind limits): a process without a bind
    # to it handed the message back, and only processes holding one claim it (engine/binds.py).
    needs_bind_id: Mapped[int | None] = mapped_column(BigId)
    reason: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(32))
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    # Campaign messages: the campaign and run they belong to, the variant, and whether the body is
    # rendered from the run's template when the message is claimed (until then it is "").
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("campaign_runs.id", ondelete="SET NULL"))
    variant: Mapped[str | None] = mapped_column(String(8))
    render: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Provider options fixed when the message was queued (a campaign's test send: its DLT fields and
    # Generic values); a run's messages get theirs from the run's document when claimed.
    options: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Live campaigns: the event that triggered the message (its properties are `event` in the
    # body) and the inaction wait it fired from (the claim re-checks the follow-up event).
    event_id: Mapped[int | None] = mapped_column(BigInteger)
    wait_id: Mapped[int | None] = mapped_column(BigInteger)
    # What the provider charged, when it said (send response or receipt), in `price_currency`.
    price: Mapped[float | None] = mapped_column(Float)
    price_currency: Mapped[str | None] = mapped_column(String(3))
    created_at: Mapped[datetime]
    sending_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class MessageAttempt(Base):
    """One try of one message with one provider; an operator reads a message's path from these."""

    __tablename__ = "message_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id", ondelete="SET NULL"))
    provider_name: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str] = mapped_column(String(16))  # sent | transient | permanent | configuration | unknown
    http_status: Mapped[int | None] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    retry_after: Mapped[float | None] = mapped_column(Float)


class EngineLease(Base):
    """Who runs the engine for this database; renewed by heartbeat, taken over after expiry."""

    __tablename__ = "engine_lease"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    host: Mapped[str] = mapped_column(String(128))
    pid: Mapped[int] = mapped_column(Integer)
    # New for every tenure (each acquisition that is not a renewal): outbox writes are fenced on it.
    token: Mapped[str | None] = mapped_column(String(32))
    acquired_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class Setting(Base):
    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[datetime]


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(200))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# --- audience ------------------------------------------------------------------------------------

JSONDoc = JSON().with_variant(JSONB(), "postgresql")


class Profile(Base):
    """A person in the audience. Phone kept as typed plus its E.164 form and why it is unusable.
    One person, one row: the user id is unique, and so is the phone among profiles without one."""

    __tablename__ = "profiles"
    __table_args__ = (
        Index("ix_profiles_phone", "phone"),
        Index("uq_profiles_phone_without_user_id", "phone", unique=True,
              sqlite_where=text("user_id IS NULL"), postgresql_where=text("user_id IS NULL")),
        Index("ix_profiles_country", "country"),
        Index("ix_profiles_name", "name"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    phone: Mapped[str | None] = mapped_column(String(32))  # E.164 when valid
    phone_raw: Mapped[str | None] = mapped_column(String(64))
    phone_status: Mapped[str] = mapped_column(String(16), default="missing")  # missing | invalid | valid
    phone_reason: Mapped[str | None] = mapped_column(Text)
    phone_type: Mapped[str | None] = mapped_column(String(32))
    sms_capable: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[str | None] = mapped_column(String(200))
    timezone: Mapped[str | None] = mapped_column(String(64))
    country: Mapped[str | None] = mapped_column(String(2))
    properties: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    subscription: Mapped[str] = mapped_column(String(16), default="never")  # subscribed | unsubscribed | never
    subscription_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Consent(Base):
    """One change of a profile's SMS subscription, with where it came from."""

    __tablename__ = "consents"
    __table_args__ = (
        Index("uq_consents_change", "profile_id", "state", "source", "at", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("profiles.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16))  # subscribed | unsubscribed
    source: Mapped[str] = mapped_column(String(16))  # import | api | keyword | operator | event
    at: Mapped[datetime]
    phone: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)


class Event(Base):
    """Something a person did. `dedupe` makes re-imports and API retries idempotent."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_name_profile_at", "name", "profile_id", "at"),
        Index("ix_events_profile_at", "profile_id", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("profiles.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime]
    properties: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    dedupe: Mapped[str] = mapped_column(String(40), unique=True)


class PropertyDef(Base):
    """The typed catalog of profile properties (and, with scope 'event:NAME', event properties)."""

    __tablename__ = "property_defs"

    scope: Mapped[str] = mapped_column(String(140), primary_key=True)  # "profile" or "event:order"
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    type: Mapped[str] = mapped_column(String(16))  # string | number | boolean | date | list


class Segment(Base):
    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ApiKey(Base):
    """A key for the ingestion API; only its SHA-256 is stored, the key is shown once."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


# --- receipts and replies ---------------------------------------------------------------------


class Receipt(Base):
    """A delivery receipt as received (webhook or poll). `applied_at` is None while its message is
    not known yet (a receipt can arrive before the send is recorded); it is applied when it appears.
    One row per (provider, message id, status, part): a replayed receipt inserts nothing."""

    __tablename__ = "receipts"
    __table_args__ = (
        Index("ix_receipts_lookup", "provider_id", "provider_message_id"),
        Index("ix_receipts_pending", "applied_at"),
        UniqueConstraint("provider_id", "provider_message_id", "provider_status", "part", name="uq_receipts_report"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id", ondelete="SET NULL"))
    provider_name: Mapped[str | None] = mapped_column(String(64))
    provider_message_id: Mapped[str] = mapped_column(String(128))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    recipient: Mapped[str | None] = mapped_column(String(32))
    provider_status: Mapped[str] = mapped_column(String(64))
    state: Mapped[str | None] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(32))
    error_kind: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    part: Mapped[int] = mapped_column(Integer, server_default="0")  # 0: the whole message, else 1, 2, …
    parts: Mapped[int | None] = mapped_column(Integer)
    via: Mapped[str] = mapped_column(String(8))  # webhook | poll
    occurred_at: Mapped[datetime | None]
    received_at: Mapped[datetime]
    applied_at: Mapped[datetime | None]
    # what the provider said the message (or this part) cost, applied with the receipt
    price: Mapped[float | None] = mapped_column(Float)
    price_currency: Mapped[str | None] = mapped_column(String(3))


class InboundMessage(Base):
    """A message a person sent us: kept whole, with what the keywords made of it."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        UniqueConstraint("provider_id", "provider_message_id"),
        UniqueConstraint("provider_id", "dedupe_key", name="uq_inbound_messages_dedupe"),
        Index("ix_inbound_received", "received_at"),
        Index("ix_inbound_sender", "sender"),
        Index("ix_inbound_campaign", "campaign_id", "run_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id", ondelete="SET NULL"))
    provider_name: Mapped[str | None] = mapped_column(String(64))
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    # Without a provider message id: a hash of what the message says, so a replay is found (replies.py).
    dedupe_key: Mapped[str | None] = mapped_column(String(64))
    sender: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str | None] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    profile_id: Mapped[int | None] = mapped_column(ForeignKey("profiles.id", ondelete="SET NULL"))
    keyword: Mapped[str | None] = mapped_column(String(64))  # the keyword it matched
    action: Mapped[str | None] = mapped_column(String(16))  # opt_out | opt_in | help | custom | option | reply
    answers_message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    # the campaign, run and variant of the message it answers (copied when it is matched)
    campaign_id: Mapped[int | None] = mapped_column(BigInteger)
    run_id: Mapped[int | None] = mapped_column(BigInteger)
    variant: Mapped[str | None] = mapped_column(String(8))
    # the campaign reply option it picked (action "option"): the option's first word, or the number
    reply_option: Mapped[str | None] = mapped_column(String(32))
    response_message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    via: Mapped[str] = mapped_column(String(8))  # webhook | poll | sandbox
    occurred_at: Mapped[datetime | None]
    received_at: Mapped[datetime]
    processed_at: Mapped[datetime | None]


class Keyword(Base):
    """A reply keyword (STOP, AYUDA, …) and what it does, with its auto-response."""

    __tablename__ = "keywords"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    word: Mapped[str] = mapped_column(String(64), unique=True)  # normalized: upper case, single spaces
    action: Mapped[str] = mapped_column(String(16))  # opt_out | opt_in | help | custom
    language: Mapped[str | None] = mapped_column(String(16))
    response: Mapped[str | None] = mapped_column(Text)  # the auto-response; None sends none
    event_name: Mapped[str | None] = mapped_column(String(128))  # custom: the event logged
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PollCursor(Base):
    """Where a provider's status or inbound poller resumes after a restart."""

    __tablename__ = "poll_cursors"

    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)  # status | inbound
    cursor: Mapped[str | None] = mapped_column(Text)
    polled_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


class MessagePart(Base):
    """One part of a long message whose provider gives each part its own id (Vonage) and sends
    one receipt per part; the receipts service resolves the parts to one message status."""

    __tablename__ = "message_parts"
    __table_args__ = (
        UniqueConstraint("provider_id", "provider_message_id", name="uq_message_parts_provider_message"),
        UniqueConstraint("message_id", "part", name="uq_message_parts_message_part"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id", ondelete="SET NULL"))
    provider_message_id: Mapped[str] = mapped_column(String(128))
    part: Mapped[int] = mapped_column(Integer)  # 1-based
    state: Mapped[str] = mapped_column(String(16), default="sent")  # sent | delivered | undelivered | failed
    updated_at: Mapped[datetime]


# Campaigns and the rollups live in their own modules, registered on the same Base and named here too.
from smsconsole.models.campaigns import Campaign as Campaign  # noqa: E402
from smsconsole.models.campaigns import CampaignConversion as CampaignConversion  # noqa: E402
from smsconsole.models.campaigns import CampaignDue as CampaignDue  # noqa: E402
from smsconsole.models.campaigns import CampaignLiveDay as CampaignLiveDay  # noqa: E402
from smsconsole.models.campaigns import CampaignRun as CampaignRun  # noqa: E402
from smsconsole.models.campaigns import CampaignWait as CampaignWait  # noqa: E402
from smsconsole.models.rollups import RollupDefer as RollupDefer  # noqa: E402
from smsconsole.models.rollups import StatCampaign as StatCampaign  # noqa: E402
from smsconsole.models.rollups import StatSeries as StatSeries  # noqa: E402
from smsconsole.models.rollups import StatSeriesHour as StatSeriesHour  # noqa: E402
from smsconsole.models.rollups import StatTraffic as StatTraffic  # noqa: E402
from smsconsole.models.rollups import StatTrafficHour as StatTrafficHour  # noqa: E402
from smsconsole.models.compliance import DltTemplate as DltTemplate  # noqa: E402
from smsconsole.models.compliance import Price as Price  # noqa: E402
from smsconsole.models.compliance import Sender as Sender  # noqa: E402
from smsconsole.models.compliance import TenDlcCampaign as TenDlcCampaign  # noqa: E402
from smsconsole.models.api import *  # noqa: E402,F403  (the transactional API's tables; names in its __all__)
from smsconsole.models.links import *  # noqa: E402,F403  (tracked short links; names in its __all__)
from smsconsole.models.workers import *  # noqa: E402,F403  (engine processes, shared rate buckets)
from smsconsole.models.inbound_parts import *  # noqa: E402,F403  (a long reply's parts until it is whole)
