"""campaigns and their runs

`campaigns` holds each campaign's document (When/Who/What) and lifecycle, soft-deleted so sent
messages keep their Campaign ID; `campaign_runs` one row per occurrence (unique per campaign and
planned time, so a run can never be created twice). Messages gain the campaign, run and variant
they belong to, a `render` flag (body rendered from the run's template when claimed) and the
provider options fixed when a message is queued (a campaign's test send).

Revision ID: 0008
Revises: 0007
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op



revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('campaigns',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('type', sa.String(length=24), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('document', sa.JSON(), nullable=False),
    sa.Column('blocked_reason', sa.Text(), nullable=True),
    sa.Column('next_run_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=128), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('scheduled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaigns'))
    )
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.create_index('ix_campaigns_state_next', ['state', 'next_run_at'], unique=False)
        batch_op.create_index('uq_campaigns_live_name', ['name'], unique=True, sqlite_where=sa.text('deleted_at IS NULL'), postgresql_where=sa.text('deleted_at IS NULL'))

    op.create_table('campaign_runs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('campaign_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('planned_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('document', sa.JSON(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('materialized_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('qualified', sa.Integer(), nullable=True),
    sa.Column('materialized', sa.Integer(), nullable=True),
    sa.Column('suppressed', sa.JSON(), nullable=False),
    sa.Column('cursor', sa.BigInteger(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_runs_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_runs')),
    sa.UniqueConstraint('campaign_id', 'planned_at', name='uq_campaign_runs_occurrence')
    )
    with op.batch_alter_table('campaign_runs', schema=None) as batch_op:
        batch_op.create_index('ix_campaign_runs_state_planned', ['state', 'planned_at'], unique=False)

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('campaign_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.add_column(sa.Column('run_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.add_column(sa.Column('variant', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('render', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('options', sa.JSON(), nullable=True))
        batch_op.create_index('ix_messages_campaign', ['campaign_id'], unique=False)
        batch_op.create_index('ix_messages_profile_sent', ['profile_id', 'sent_at'], unique=False)
        batch_op.create_index('ix_messages_run_state', ['run_id', 'state'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_messages_campaign_id_campaigns'), 'campaigns', ['campaign_id'], ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key(batch_op.f('fk_messages_run_id_campaign_runs'), 'campaign_runs', ['run_id'], ['id'], ondelete='SET NULL')



def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_messages_run_id_campaign_runs'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_messages_campaign_id_campaigns'), type_='foreignkey')
        batch_op.drop_index('ix_messages_run_state')
        batch_op.drop_index('ix_messages_profile_sent')
        batch_op.drop_index('ix_messages_campaign')
        batch_op.drop_column('options')
        batch_op.drop_column('render')
        batch_op.drop_column('variant')
        batch_op.drop_column('run_id')
        batch_op.drop_column('campaign_id')

    with op.batch_alter_table('campaign_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_campaign_runs_state_planned')

    op.drop_table('campaign_runs')
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_index('uq_campaigns_live_name', sqlite_where=sa.text('deleted_at IS NULL'), postgresql_where=sa.text('deleted_at IS NULL'))
        batch_op.drop_index('ix_campaigns_state_next')

    op.drop_table('campaigns')
