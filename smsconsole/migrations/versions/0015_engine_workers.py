"""engine workers and shared rate buckets

`engine_workers`: one row per process running the engine (host, pid, role, dispatch token,
per-minute figures), renewed by heartbeat; expired rows are dead workers whose claims the
scheduler recovers.

`rate_buckets`: per-provider (and per-sender) token buckets that every worker on PostgreSQL
draws from, so a provider's rate limit holds across processes and machines.

`ix_messages_queue`: the claim order (priority, then id) over queued messages only, so each
worker's claim reads the head of the queue instead of sorting every queued row.

Revision ID: 0015
Revises: 0014
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('engine_workers',
    sa.Column('id', sa.String(length=128), nullable=False),
    sa.Column('host', sa.String(length=128), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('token', sa.String(length=32), nullable=False),
    sa.Column('listening', sa.String(length=200), nullable=True),
    sa.Column('claimed_per_minute', sa.Integer(), nullable=False),
    sa.Column('sent_per_minute', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_engine_workers')),
    sa.UniqueConstraint('token', name='uq_engine_workers_token')
    )
    op.create_index('ix_engine_workers_expires_at', 'engine_workers', ['expires_at'], unique=False)
    op.create_table('rate_buckets',
    sa.Column('key', sa.String(length=160), nullable=False),
    sa.Column('rate', sa.Float(), nullable=False),
    sa.Column('tokens', sa.Float(), nullable=False),
    sa.Column('updated', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_rate_buckets'))
    )
    op.create_index('ix_messages_queue', 'messages', [sa.text('priority DESC'), 'id'], unique=False,
                    postgresql_where=sa.text("state = 'queued'"), sqlite_where=sa.text("state = 'queued'"))


def downgrade() -> None:
    op.drop_index('ix_messages_queue', table_name='messages', postgresql_where=sa.text("state = 'queued'"),
                  sqlite_where=sa.text("state = 'queued'"))
    op.drop_table('rate_buckets')
    op.drop_index('ix_engine_workers_expires_at', table_name='engine_workers')
    op.drop_table('engine_workers')
