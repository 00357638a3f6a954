"""campaign reply options; saved message templates

`inbound_messages.reply_option`: the option a reply picked when it answered a campaign's reply
options (services/campaigns/reply_options.py) — the option's first word, or the number — beside
its action "option". Counted per campaign, run and variant through ix_inbound_campaign.

`message_templates`: saved message bodies (Liquid) that `POST /v1/messages` may name instead of
sending a body, unique by name.

Revision ID: 0014
Revises: 0013
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.add_column('inbound_messages', sa.Column('reply_option', sa.String(length=32), nullable=True))
    op.create_table('message_templates',
    sa.Column('id', BigId, nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=128), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_message_templates')),
    sa.UniqueConstraint('name', name='uq_message_templates_name')
    )


def downgrade() -> None:
    op.drop_table('message_templates')
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.drop_column('reply_option')
