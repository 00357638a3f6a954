"""bind limits: how many engine processes may bind to a provider at once (SMPP)

`provider_binds`: one row per slot of a provider's bind limit that a process holds, keyed by
(provider, slot) so two processes can never hold the same slot; the row carries the dispatch
token of its holder, and a slot whose token no live tenure carries is free again.

`messages.needs_bind_id`: the provider whose bind a message waits for. A process that holds no
bind to that provider hands the message back with it set, and only the processes holding a bind
claim it.

Revision ID: 0018
Revises: 0017
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('provider_binds',
    sa.Column('provider_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('slot', sa.Integer(), nullable=False),
    sa.Column('token', sa.String(length=32), nullable=False),
    sa.Column('taken_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_provider_binds_provider_id_providers'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('provider_id', 'slot', name=op.f('pk_provider_binds'))
    )
    with op.batch_alter_table('messages') as batch:
        batch.add_column(sa.Column('needs_bind_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                                    nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('messages') as batch:
        batch.drop_column('needs_bind_id')
    op.drop_table('provider_binds')
