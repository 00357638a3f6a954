"""the binds each engine process holds (SMPP), as of its last heartbeat

`engine_workers.binds`: provider id → the state of this process's bind to it (state, window size
and use, last error, bound since, re-binds), written at every heartbeat so Home and Providers show
it from any process attached to the database, not only the one holding the bind.

Revision ID: 0017
Revises: 0016
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('engine_workers') as batch:
        batch.add_column(sa.Column('binds', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('engine_workers') as batch:
        batch.drop_column('binds')
