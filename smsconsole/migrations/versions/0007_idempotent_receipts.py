"""replayed receipts and replies are idempotent

Receipts get one row per (provider, provider message id, provider status, part): `part` becomes
NOT NULL (0 for a whole message) so the unique key holds, and rows a replay duplicated in an older
database are collapsed to the first one (the message's state never depended on the copies).
Replies get `dedupe_key`, unique per provider, for messages that carry no provider message id.

Revision ID: 0007
Revises: 0006
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    receipts = sa.table("receipts", sa.column("part", sa.Integer()))
    op.execute(receipts.update().where(receipts.c.part.is_(None)).values(part=0))
    # Receipts that carried only our reference were kept with an empty id, which is no key: give each its own.
    op.execute(sa.text("UPDATE receipts SET provider_message_id = 'receipt:' || CAST(id AS VARCHAR(20))"
                       " WHERE provider_message_id = ''"))
    # Keep the first row of each (provider, id, status, part); NULL providers (deleted) never clash.
    op.execute(sa.text(
        "DELETE FROM receipts WHERE EXISTS (SELECT 1 FROM receipts AS first_row"
        " WHERE first_row.provider_id = receipts.provider_id"
        " AND first_row.provider_message_id = receipts.provider_message_id"
        " AND first_row.provider_status = receipts.provider_status"
        " AND first_row.part = receipts.part AND first_row.id < receipts.id)"
    ))
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.alter_column("part", existing_type=sa.Integer(), nullable=False, server_default="0")
        batch_op.create_unique_constraint(
            "uq_receipts_report", ["provider_id", "provider_message_id", "provider_status", "part"])
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dedupe_key", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint("uq_inbound_messages_dedupe", ["provider_id", "dedupe_key"])


def downgrade() -> None:
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.drop_constraint("uq_inbound_messages_dedupe", type_="unique")
        batch_op.drop_column("dedupe_key")
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.drop_constraint("uq_receipts_report", type_="unique")
        batch_op.alter_column("part", existing_type=sa.Integer(), nullable=True, server_default=None)
