"""transactional send API: idempotency keys and escalations

`idempotency_keys` holds each API key's `Idempotency-Key` values with the request hash and the
first answer (unique per API key and key); `message_escalations` the escalation steps of
transactional messages, fired by the engine.

Revision ID: 0012
Revises: 0011
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('idempotency_keys',
    sa.Column('id', BigId, nullable=False),
    sa.Column('api_key_id', BigId, nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('response', sa.JSON(), nullable=False),
    sa.Column('message_id', BigId, nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['api_key_id'], ['api_keys.id'], name=op.f('fk_idempotency_keys_api_key_id_api_keys'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_idempotency_keys_message_id_messages'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_keys')),
    sa.UniqueConstraint('api_key_id', 'key', name='uq_idempotency_keys_api_key_key')
    )
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.create_index('ix_idempotency_keys_created_at', ['created_at'], unique=False)
    op.create_table('message_escalations',
    sa.Column('id', BigId, nullable=False),
    sa.Column('message_id', BigId, nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('after_minutes', sa.Integer(), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('group_name', sa.String(length=64), nullable=True),
    sa.Column('webhook_url', sa.Text(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('result', sa.Text(), nullable=True),
    sa.Column('sent_message_id', BigId, nullable=True),
    sa.Column('http_status', sa.Integer(), nullable=True),
    sa.Column('fired_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_message_escalations_message_id_messages'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['sent_message_id'], ['messages.id'], name=op.f('fk_message_escalations_sent_message_id_messages'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_message_escalations')),
    sa.UniqueConstraint('message_id', 'position', name='uq_message_escalations_message_position')
    )
    with op.batch_alter_table('message_escalations', schema=None) as batch_op:
        batch_op.create_index('ix_message_escalations_state_due', ['state', 'due_at'], unique=False)


def downgrade() -> None:
    op.drop_table('message_escalations')
    op.drop_table('idempotency_keys')
