"""live campaigns: inaction waits, date due times, daily counts

`campaign_waits` holds each inaction wait (pending until its due time, one pending per campaign
and person), `campaign_due` the due times of on-a-date campaigns (unique per campaign, person,
anchor and day), `campaign_live_days` a live campaign's counts per day. Messages gain the event
that triggered them and the wait they fired from; the campaign index gains the id (latest fires)
and a (campaign, person, created) index serves the re-eligibility checks.

Revision ID: 0009
Revises: 0008
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
PENDING = sa.text("state = 'pending'")


def upgrade() -> None:
    op.create_table('campaign_waits',
    sa.Column('id', BigId, nullable=False),
    sa.Column('campaign_id', BigId, nullable=False),
    sa.Column('run_id', sa.BigInteger(), nullable=False),
    sa.Column('profile_id', sa.BigInteger(), nullable=False),
    sa.Column('event_id', sa.BigInteger(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('ended_event_id', sa.BigInteger(), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_waits_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_waits'))
    )
    with op.batch_alter_table('campaign_waits', schema=None) as batch_op:
        batch_op.create_index('uq_campaign_waits_pending', ['campaign_id', 'profile_id'], unique=True, sqlite_where=PENDING, postgresql_where=PENDING)
        batch_op.create_index('ix_campaign_waits_due', ['due_at'], unique=False, sqlite_where=PENDING, postgresql_where=PENDING)
        batch_op.create_index('ix_campaign_waits_campaign_state', ['campaign_id', 'state'], unique=False)

    op.create_table('campaign_due',
    sa.Column('id', BigId, nullable=False),
    sa.Column('campaign_id', BigId, nullable=False),
    sa.Column('run_id', sa.BigInteger(), nullable=False),
    sa.Column('profile_id', sa.BigInteger(), nullable=False),
    sa.Column('anchor', sa.String(length=32), nullable=False),
    sa.Column('event_id', sa.BigInteger(), nullable=True),
    sa.Column('due_day', sa.Date(), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_due_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_due')),
    sa.UniqueConstraint('campaign_id', 'profile_id', 'anchor', 'due_day', name='uq_campaign_due_occurrence')
    )
    with op.batch_alter_table('campaign_due', schema=None) as batch_op:
        batch_op.create_index('ix_campaign_due_pending', ['due_at'], unique=False, sqlite_where=PENDING, postgresql_where=PENDING)
        batch_op.create_index('ix_campaign_due_day', ['campaign_id', 'state', 'due_day'], unique=False)

    op.create_table('campaign_live_days',
    sa.Column('campaign_id', BigId, nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('triggered', sa.Integer(), nullable=False),
    sa.Column('queued', sa.Integer(), nullable=False),
    sa.Column('waits_started', sa.Integer(), nullable=False),
    sa.Column('waits_cancelled', sa.Integer(), nullable=False),
    sa.Column('not_in_filter', sa.Integer(), nullable=False),
    sa.Column('unreachable', sa.Integer(), nullable=False),
    sa.Column('not_eligible', sa.Integer(), nullable=False),
    sa.Column('limited', sa.Integer(), nullable=False),
    sa.Column('late', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_live_days_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('campaign_id', 'day', name=op.f('pk_campaign_live_days'))
    )

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('event_id', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('wait_id', sa.BigInteger(), nullable=True))
        batch_op.drop_index('ix_messages_campaign')
        batch_op.create_index('ix_messages_campaign', ['campaign_id', 'id'], unique=False)
        batch_op.create_index('ix_messages_campaign_profile', ['campaign_id', 'profile_id', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_campaign_profile')
        batch_op.drop_index('ix_messages_campaign')
        batch_op.create_index('ix_messages_campaign', ['campaign_id'], unique=False)
        batch_op.drop_column('wait_id')
        batch_op.drop_column('event_id')
    op.drop_table('campaign_live_days')
    with op.batch_alter_table('campaign_due', schema=None) as batch_op:
        batch_op.drop_index('ix_campaign_due_day')
        batch_op.drop_index('ix_campaign_due_pending', sqlite_where=PENDING, postgresql_where=PENDING)
    op.drop_table('campaign_due')
    with op.batch_alter_table('campaign_waits', schema=None) as batch_op:
        batch_op.drop_index('ix_campaign_waits_campaign_state')
        batch_op.drop_index('ix_campaign_waits_due', sqlite_where=PENDING, postgresql_where=PENDING)
        batch_op.drop_index('uq_campaign_waits_pending', sqlite_where=PENDING, postgresql_where=PENDING)
    op.drop_table('campaign_waits')
