"""dispatch claims and fencing: a claimed message names the lease tenure that claimed it, and the
lease carries a token that is new for every tenure

Revision ID: 0005
Revises: 0004
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('messages') as batch_op:
        batch_op.add_column(sa.Column('claim_token', sa.String(length=32), nullable=True))
    with op.batch_alter_table('engine_lease') as batch_op:
        batch_op.add_column(sa.Column('token', sa.String(length=32), nullable=True))


def downgrade() -> None:
    op.execute("UPDATE messages SET state = 'queued', claim_token = NULL WHERE state = 'claimed'")
    with op.batch_alter_table('engine_lease') as batch_op:
        batch_op.drop_column('token')
    with op.batch_alter_table('messages') as batch_op:
        batch_op.drop_column('claim_token')
