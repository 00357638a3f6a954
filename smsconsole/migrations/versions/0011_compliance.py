"""compliance: senders and their registrations, DLT templates, 10DLC campaigns, prices

`senders` are the numbers and sender ids each provider sends from, with their type, the countries
they may send to and their registrations (US 10DLC brand and campaign, toll-free verification,
India DLT entity). `dlt_templates` and `tendlc_campaigns` hold what was registered with India's
DLT platforms and The Campaign Registry; `prices` what each provider charges per country. A run
keeps the preflight it started with (`campaign_runs.preflight`).

Revision ID: 0011
Revises: 0010
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('senders',
    sa.Column('id', BigId, nullable=False),
    sa.Column('provider_id', BigId, nullable=False),
    sa.Column('value', sa.String(length=32), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('countries', sa.JSON(), nullable=False),
    sa.Column('brand_id', sa.String(length=64), nullable=True),
    sa.Column('tendlc_campaign', sa.String(length=64), nullable=True),
    sa.Column('tollfree_status', sa.String(length=16), nullable=True),
    sa.Column('dlt_entity_id', sa.String(length=32), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_senders_provider_id_providers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_senders')),
    sa.UniqueConstraint('provider_id', 'value', name='uq_senders_provider_value')
    )
    op.create_table('dlt_templates',
    sa.Column('id', BigId, nullable=False),
    sa.Column('template_id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=True),
    sa.Column('header', sa.String(length=16), nullable=False),
    sa.Column('entity_id', sa.String(length=32), nullable=True),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dlt_templates')),
    sa.UniqueConstraint('template_id', name=op.f('uq_dlt_templates_template_id'))
    )
    with op.batch_alter_table('dlt_templates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dlt_templates_header'), ['header'], unique=False)
    op.create_table('tendlc_campaigns',
    sa.Column('id', BigId, nullable=False),
    sa.Column('campaign_id', sa.String(length=64), nullable=False),
    sa.Column('brand_id', sa.String(length=64), nullable=False),
    sa.Column('use_case', sa.String(length=48), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('samples', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tendlc_campaigns')),
    sa.UniqueConstraint('campaign_id', name=op.f('uq_tendlc_campaigns_campaign_id'))
    )
    op.create_table('prices',
    sa.Column('id', BigId, nullable=False),
    sa.Column('provider_id', BigId, nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('sender_type', sa.String(length=16), server_default='', nullable=False),
    sa.Column('unit', sa.String(length=8), nullable=False),
    sa.Column('amount', sa.Float(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('source', sa.String(length=8), nullable=False),
    sa.Column('fetched_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_prices_provider_id_providers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_prices')),
    sa.UniqueConstraint('provider_id', 'country', 'sender_type', name='uq_prices_provider_country_type')
    )
    with op.batch_alter_table('campaign_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('preflight', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('campaign_runs', schema=None) as batch_op:
        batch_op.drop_column('preflight')
    op.drop_table('prices')
    op.drop_table('tendlc_campaigns')
    with op.batch_alter_table('dlt_templates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dlt_templates_header'))
    op.drop_table('dlt_templates')
    op.drop_table('senders')
