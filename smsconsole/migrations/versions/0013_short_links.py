"""tracked short links

`short_links` holds one row per link a campaign message tracks (`{{ url | track }}`): its random
code (unique), the long URL, the message, profile, campaign, run and variant it was made for, when
it expires, and its clicks and link previews.

Revision ID: 0013
Revises: 0012
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('short_links',
    sa.Column('id', BigId, nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('message_id', BigId, nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('profile_id', BigId, nullable=True),
    sa.Column('campaign_id', BigId, nullable=True),
    sa.Column('run_id', BigId, nullable=True),
    sa.Column('variant', sa.String(length=8), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('clicks', sa.Integer(), nullable=False),
    sa.Column('previews', sa.Integer(), nullable=False),
    sa.Column('first_clicked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_clicked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_short_links')),
    sa.UniqueConstraint('code', name=op.f('uq_short_links_code')),
    sa.UniqueConstraint('message_id', 'position', name='uq_short_links_message_position')
    )
    with op.batch_alter_table('short_links', schema=None) as batch_op:
        batch_op.create_index('ix_short_links_campaign_clicks', ['campaign_id', 'clicks'], unique=False)
        batch_op.create_index('ix_short_links_expires_at', ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('short_links', schema=None) as batch_op:
        batch_op.drop_index('ix_short_links_expires_at')
        batch_op.drop_index('ix_short_links_campaign_clicks')
    op.drop_table('short_links')
