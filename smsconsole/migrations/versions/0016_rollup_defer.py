"""rollups kept per batch by the dispatcher on SQLite

`rollup_defer` holds a row only inside a transaction that keeps the rollups itself, once per batch
(services/rollup_batch.py: the images of the batch's rows taken away before its UPDATE and added
after it, a few statements per batch). While it holds one, SQLite's per-row update triggers on
`messages` (migration 0010) stand aside; every other writer still goes through them. On
PostgreSQL the rollup triggers are per statement already, and the table is unused.

A later migration that rebuilds `messages` on SQLite must create these guarded update triggers
again (`sqlite_update_triggers(guarded=True)`), not 0010's.

Revision ID: 0016
Revises: 0015
"""
from __future__ import annotations

import importlib

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

_ROLLUPS = importlib.import_module("smsconsole.migrations.versions.0010_campaign_results")
GUARD = "NOT EXISTS (SELECT 1 FROM rollup_defer)"


def sqlite_update_triggers(*, guarded: bool) -> list[tuple[str, str]]:
    """(name, DDL) of the update triggers on `messages`, with or without the batch guard."""
    out = []
    for table, entries in _ROLLUPS.images("sqlite")["messages"].items():
        for index, entry in enumerate(entries):
            name = f"trg_messages_{table}_upd{index}"
            upd = ";\n  ".join(_ROLLUPS._sqlite_statements("messages", table, [entry], "OLD", "-")
                                + _ROLLUPS._sqlite_statements("messages", table, [entry], "NEW", "+"))
            when = _ROLLUPS._image_changed(entry)
            if guarded:
                when = f"{GUARD} AND ({when})"
            out.append((name, f"CREATE TRIGGER {name} AFTER UPDATE ON messages WHEN {when} BEGIN\n  {upd};\nEND"))
    return out


def _replace_triggers(*, guarded: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name, ddl in sqlite_update_triggers(guarded=guarded):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute(ddl)


def upgrade() -> None:
    op.create_table('rollup_defer',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rollup_defer'))
    )
    _replace_triggers(guarded=True)


def downgrade() -> None:
    _replace_triggers(guarded=False)
    op.drop_table('rollup_defer')
