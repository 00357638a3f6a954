"""inbound parts: a long reply's parts held until the whole message can go through the replies pipeline

`inbound_parts`: one row per part of a concatenated inbound message (SMPP UDH or SAR, Vonage
concat-*), keyed by its set (provider, sender, reference, part count) and part number, so a part
delivered twice is stored once; `done_at` marks the parts whose set has been recorded.

Revision ID: 0019
Revises: 0018
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('inbound_parts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('set_key', sa.String(length=64), nullable=False),
    sa.Column('part', sa.Integer(), nullable=False),
    sa.Column('parts', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('provider_name', sa.String(length=64), nullable=True),
    sa.Column('provider_message_id', sa.String(length=128), nullable=True),
    sa.Column('sender', sa.String(length=64), nullable=False),
    sa.Column('recipient', sa.String(length=64), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('via', sa.String(length=8), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('inbound_id', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_inbound_parts_provider_id_providers'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_parts')),
    sa.UniqueConstraint('set_key', 'part', name='uq_inbound_parts_set_key_part')
    )
    op.create_index('ix_inbound_parts_done_at', 'inbound_parts', ['done_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_inbound_parts_done_at', table_name='inbound_parts')
    op.drop_table('inbound_parts')
