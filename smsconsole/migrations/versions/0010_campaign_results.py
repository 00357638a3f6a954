"""campaign results: conversions, prices, reply links and the rollups

`campaign_conversions` holds one conversion per (run, person): the first goal event in the window
after the message (after the would-be send time for a control row). Messages gain the price a
provider reported (receipts keep the price they carry until their message appears); inbound
messages the campaign, run and variant of the message they answer.

The rollups (`stat_traffic`, `stat_campaign`, `stat_series`) are each, at every commit, the GROUP BY
of a fixed function ("image") of the current rows of `messages` (and `campaign_conversions`):

- stat_traffic (minute of created_at, provider, campaign, state): the Home and Stats windows.
- stat_campaign (campaign, run, variant, provider, country, state, detail): a report's counts,
  segments and cost; `detail` is the error code (or reason) of failed/undelivered/unknown rows and
  the reason of suppressed ones. Entries with state "latency" count delivered rows by the bucket
  (upper bound in seconds, "inf" past a day) of sent → delivered; state "converted" counts
  conversions with their revenue as amount.
- stat_series (minute, campaign, variant, provider, metric): sent (by sent_at), delivered and
  failed (by finished_at), converted (by converted_at).
- stat_traffic_hour and stat_series_hour: the same by the hour, so a day's window or a long
  campaign's chart reads tens of rows where the minutes would be tens of thousands.

`claimed` and `sending` count as `queued` in the images (nothing has left yet), so a claim changes
no rollup. Triggers keep them: on SQLite a row trigger upserts slot 0 (one writer); on PostgreSQL a
statement trigger adds the statement's net change per key to slot txid_current() (rows only its
own transaction touches: no waits, no deadlocks between workers), which services/rollups.py folds
into slot 0. Readers sum every slot, so a count is exact whether or not it was folded.

A later migration that rebuilds `messages` on SQLite (batch "move and copy") drops its triggers:
it must create them again (see `create_triggers`).

Revision ID: 0010
Revises: 0009
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')

# Sent → delivered buckets, upper bounds in seconds (the last bucket is "inf").
LATENCY_EDGES = (1, 2, 3, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)

STATE = "(CASE WHEN {r}.state IN ('claimed', 'sending') THEN 'queued' ELSE {r}.state END)"
DETAIL = ("(CASE WHEN {r}.state IN ('failed', 'undelivered', 'unknown') "
          "THEN substr(coalesce({r}.error_code, {r}.reason, ''), 1, 120) "
          "WHEN {r}.state = 'suppressed' THEN substr(coalesce({r}.reason, ''), 1, 120) ELSE '' END)")


def _minute(dialect: str, column: str) -> str:
    if dialect == "postgresql":
        return f"CAST(floor(extract(epoch FROM {column}) / 60) AS BIGINT)"
    return f"(CAST(strftime('%s', {column}) AS INTEGER) / 60)"


def _hour(dialect: str, column: str) -> str:
    if dialect == "postgresql":
        return f"CAST(floor(extract(epoch FROM {column}) / 3600) AS BIGINT)"
    return f"(CAST(strftime('%s', {column}) AS INTEGER) / 3600)"


def _seconds(dialect: str, start: str, end: str) -> str:
    if dialect == "postgresql":
        return f"extract(epoch FROM ({end} - {start}))"
    return f"((julianday({end}) - julianday({start})) * 86400.0)"


def _latency_bucket(dialect: str) -> str:
    seconds = _seconds(dialect, "{r}.sent_at", "{r}.finished_at")
    whens = " ".join(f"WHEN {seconds} < {edge} THEN '{edge}'" for edge in LATENCY_EDGES)
    return f"(CASE {whens} ELSE 'inf' END)"


# table -> (key columns, value columns)
TABLES = {
    "stat_traffic": (("minute", "provider", "campaign_id", "state"), ("n",)),
    "stat_campaign": (("campaign_id", "run_id", "variant", "provider", "country", "state", "detail"),
                      ("n", "segments", "amount")),
    "stat_series": (("minute", "campaign_id", "variant", "provider", "metric"), ("n",)),
    "stat_traffic_hour": (("hour", "provider", "campaign_id", "state"), ("n",)),
    "stat_series_hour": (("hour", "campaign_id", "variant", "provider", "metric"), ("n",)),
}


def images(dialect: str) -> dict[str, dict[str, list[tuple[str, list[str], list[str]]]]]:
    """source table -> rollup table -> [(condition, key expressions, value expressions)] over a
    row called {r}."""
    m = lambda column: _minute(dialect, f"{{r}}.{column}")  # noqa: E731
    h = lambda column: _hour(dialect, f"{{r}}.{column}")  # noqa: E731
    provider, campaign, variant = "coalesce({r}.provider_name, '')", "coalesce({r}.campaign_id, 0)", \
        "coalesce({r}.variant, '')"
    message_key = ["{r}.campaign_id", "coalesce({r}.run_id, 0)", variant, provider, "coalesce({r}.country, '')"]
    return {
        "messages": {
            "stat_traffic": [("1 = 1", [m("created_at"), provider, campaign, STATE], ["1"])],
            "stat_campaign": [
                ("{r}.campaign_id IS NOT NULL", [*message_key, STATE, DETAIL],
                 ["1", "{r}.segments", "coalesce({r}.price, 0)"]),
                ("{r}.campaign_id IS NOT NULL AND {r}.state = 'delivered' AND {r}.sent_at IS NOT NULL "
                 "AND {r}.finished_at IS NOT NULL", [*message_key, "'latency'", _latency_bucket(dialect)],
                 ["1", "0", "0"]),
            ],
            "stat_series": [
                ("{r}.sent_at IS NOT NULL", [m("sent_at"), campaign, variant, provider, "'sent'"], ["1"]),
                ("{r}.state = 'delivered' AND {r}.finished_at IS NOT NULL",
                 [m("finished_at"), campaign, variant, provider, "'delivered'"], ["1"]),
                ("{r}.state IN ('failed', 'undelivered') AND {r}.finished_at IS NOT NULL",
                 [m("finished_at"), campaign, variant, provider, "'failed'"], ["1"]),
            ],
            "stat_traffic_hour": [("1 = 1", [h("created_at"), provider, campaign, STATE], ["1"])],
            "stat_series_hour": [
                ("{r}.sent_at IS NOT NULL", [h("sent_at"), campaign, variant, provider, "'sent'"], ["1"]),
                ("{r}.state = 'delivered' AND {r}.finished_at IS NOT NULL",
                 [h("finished_at"), campaign, variant, provider, "'delivered'"], ["1"]),
                ("{r}.state IN ('failed', 'undelivered') AND {r}.finished_at IS NOT NULL",
                 [h("finished_at"), campaign, variant, provider, "'failed'"], ["1"]),
            ],
        },
        "campaign_conversions": {
            "stat_campaign": [("1 = 1", ["{r}.campaign_id", "{r}.run_id", variant, "''", "''", "'converted'", "''"],
                               ["1", "0", "coalesce({r}.revenue, 0)"])],
            "stat_series": [("1 = 1", [m("converted_at"), "{r}.campaign_id", variant, "''", "'converted'"], ["1"])],
            "stat_series_hour": [("1 = 1", [h("converted_at"), "{r}.campaign_id", variant, "''", "'converted'"],
                                  ["1"])],
        },
    }


def _upsert(table: str, select_sql: str, slot: str) -> str:
    keys, values = TABLES[table]
    columns = ", ".join((*keys, "slot", *values))
    sets = ", ".join(f"{v} = {table}.{v} + excluded.{v}" for v in values)
    return (f"INSERT INTO {table} ({columns}) {select_sql} "
            f"ON CONFLICT ({', '.join((*keys, 'slot'))}) DO UPDATE SET {sets}")


def _sqlite_statements(source: str, table: str, entries: list, r: str, sign: str) -> list[str]:
    out = []
    for condition, keys, values in entries:
        fill = lambda text: text.replace("{r}", r)  # noqa: E731
        cols = ", ".join([fill(k) for k in keys] + ["0"] + [f"{sign}({fill(v)})" for v in values])
        out.append(_upsert(table, f"SELECT {cols} WHERE {fill(condition)}", "0"))
    return out


def _image_changed(entry: tuple[str, list[str], list[str]]) -> str:
    """SQL true exactly when an UPDATE changes this entry of the row's image: it appears, goes, or
    keeps its place with another key or value (claimed → sending, say, changes no entry)."""
    condition, keys, values = entry
    old, new = (lambda text: text.replace("{r}", "OLD")), (lambda text: text.replace("{r}", "NEW"))  # noqa: E731
    moved = " OR ".join(f"({old(e)}) IS NOT ({new(e)})" for e in (*keys, *values) if "{r}" in e)
    return f"(({old(condition)}) IS NOT ({new(condition)})) OR (({new(condition)}) AND ({moved}))"


def sqlite_triggers() -> list[str]:
    """Row triggers: an insert adds the new row's image, a delete takes the old one away, and an
    update runs, for each entry of the image it changes (and only those), minus old plus new."""
    ddl = []
    for source, tables in images("sqlite").items():
        for table, entries in tables.items():
            name = f"trg_{source}_{table}"
            ins = ";\n  ".join(_sqlite_statements(source, table, entries, "NEW", "+"))
            dele = ";\n  ".join(_sqlite_statements(source, table, entries, "OLD", "-"))
            ddl.append(f"CREATE TRIGGER {name}_ins AFTER INSERT ON {source} BEGIN\n  {ins};\nEND")
            ddl.append(f"CREATE TRIGGER {name}_del AFTER DELETE ON {source} BEGIN\n  {dele};\nEND")
            for index, entry in enumerate(entries):
                upd = ";\n  ".join(_sqlite_statements(source, table, [entry], "OLD", "-")
                                    + _sqlite_statements(source, table, [entry], "NEW", "+"))
                ddl.append(f"CREATE TRIGGER {name}_upd{index} AFTER UPDATE ON {source} "
                           f"WHEN {_image_changed(entry)} BEGIN\n  {upd};\nEND")
    return ddl


def _pg_select(table: str, entries: list, sources: list[tuple[str, str]]) -> str:
    keys, values = TABLES[table]
    parts = []
    for relation, sign in sources:
        for condition, key_exprs, value_exprs in entries:
            fill = lambda text: text.replace("{r}", "r")  # noqa: E731
            cols = [f"{fill(k)} AS {name}" for k, name in zip(key_exprs, keys, strict=True)]
            cols += [f"{sign}({fill(v)}) AS {name}" for v, name in zip(value_exprs, values, strict=True)]
            parts.append(f"SELECT {', '.join(cols)} FROM {relation} r WHERE {fill(condition)}")
    union = " UNION ALL ".join(parts)
    sums = ", ".join(f"sum({v})" for v in values)
    nonzero = " OR ".join(f"sum({v}) <> 0" for v in values)
    return (f"SELECT {', '.join(keys)}, txid_current(), {sums} FROM ({union}) d "
            f"GROUP BY {', '.join(keys)} HAVING {nonzero}")


def postgresql_triggers() -> list[str]:
    ddl = []
    for source, tables in images("postgresql").items():
        for op_name, sources, referencing in (
                ("ins", [("new_rows", "+")], "REFERENCING NEW TABLE AS new_rows"),
                ("upd", [("old_rows", "-"), ("new_rows", "+")], "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"),
                ("del", [("old_rows", "-")], "REFERENCING OLD TABLE AS old_rows")):
            body = ";\n  ".join(_upsert(table, _pg_select(table, entries, sources), "")
                                for table, entries in tables.items())
            function = f"rollup_{source}_{op_name}"
            ddl.append(f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
                       f"BEGIN\n  {body};\n  RETURN NULL;\nEND $$")
            event = {"ins": "INSERT", "upd": "UPDATE", "del": "DELETE"}[op_name]
            ddl.append(f"CREATE TRIGGER trg_{source}_rollup_{op_name} AFTER {event} ON {source} {referencing} "
                       f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()")
    return ddl


def backfill(dialect: str) -> list[str]:
    """The rollups computed from the rows already there."""
    out = []
    per_table: dict[str, list[str]] = {}
    for source, tables in images(dialect).items():
        for table, entries in tables.items():
            keys, values = TABLES[table]
            for condition, key_exprs, value_exprs in entries:
                fill = lambda text: text.replace("{r}", "r")  # noqa: E731
                cols = [f"{fill(k)} AS {name}" for k, name in zip(key_exprs, keys, strict=True)]
                cols += [f"{fill(v)} AS {name}" for v, name in zip(value_exprs, values, strict=True)]
                per_table.setdefault(table, []).append(f"SELECT {', '.join(cols)} FROM {source} r WHERE {fill(condition)}")
    for table, parts in per_table.items():
        keys, values = TABLES[table]
        sums = ", ".join(f"sum({v})" for v in values)
        out.append(f"INSERT INTO {table} ({', '.join((*keys, 'slot', *values))}) "
                   f"SELECT {', '.join(keys)}, 0, {sums} FROM ({' UNION ALL '.join(parts)}) d "
                   f"WHERE 1 = 1 GROUP BY {', '.join(keys)}")
    return out


def create_triggers() -> None:
    dialect = op.get_bind().dialect.name
    for statement in (postgresql_triggers() if dialect == "postgresql" else sqlite_triggers()):
        op.execute(statement)


def drop_triggers() -> None:
    dialect = op.get_bind().dialect.name
    for source, tables in images(dialect).items():
        if dialect == "postgresql":
            for op_name in ("ins", "upd", "del"):
                op.execute(f"DROP TRIGGER IF EXISTS trg_{source}_rollup_{op_name} ON {source}")
                op.execute(f"DROP FUNCTION IF EXISTS rollup_{source}_{op_name}()")
        else:
            for table, entries in tables.items():
                for op_name in ("ins", "del", *(f"upd{index}" for index in range(len(entries)))):
                    op.execute(f"DROP TRIGGER IF EXISTS trg_{source}_{table}_{op_name}")


def upgrade() -> None:
    op.create_table('campaign_conversions',
    sa.Column('id', BigId, nullable=False),
    sa.Column('campaign_id', BigId, nullable=False),
    sa.Column('run_id', sa.BigInteger(), nullable=False),
    sa.Column('variant', sa.String(length=8), nullable=True),
    sa.Column('profile_id', sa.BigInteger(), nullable=False),
    sa.Column('message_id', sa.BigInteger(), nullable=True),
    sa.Column('event_id', sa.BigInteger(), nullable=False),
    sa.Column('converted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revenue', sa.Float(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_conversions_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_conversions')),
    sa.UniqueConstraint('run_id', 'profile_id', name='uq_campaign_conversions_person')
    )
    with op.batch_alter_table('campaign_conversions', schema=None) as batch_op:
        batch_op.create_index('ix_campaign_conversions_campaign', ['campaign_id', 'run_id', 'variant'], unique=False)
        batch_op.create_index('ix_campaign_conversions_event', ['event_id'], unique=False)

    op.create_table('stat_traffic',
    sa.Column('minute', sa.BigInteger(), nullable=False),
    sa.Column('provider', sa.String(length=64), nullable=False),
    sa.Column('campaign_id', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('slot', sa.BigInteger(), nullable=False),
    sa.Column('n', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('minute', 'provider', 'campaign_id', 'state', 'slot', name=op.f('pk_stat_traffic'))
    )
    op.create_table('stat_campaign',
    sa.Column('campaign_id', sa.BigInteger(), nullable=False),
    sa.Column('run_id', sa.BigInteger(), nullable=False),
    sa.Column('variant', sa.String(length=8), nullable=False),
    sa.Column('provider', sa.String(length=64), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('detail', sa.String(length=120), nullable=False),
    sa.Column('slot', sa.BigInteger(), nullable=False),
    sa.Column('n', sa.BigInteger(), nullable=False),
    sa.Column('segments', sa.BigInteger(), nullable=False),
    sa.Column('amount', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('campaign_id', 'run_id', 'variant', 'provider', 'country', 'state', 'detail', 'slot',
                            name=op.f('pk_stat_campaign'))
    )
    op.create_table('stat_series',
    sa.Column('minute', sa.BigInteger(), nullable=False),
    sa.Column('campaign_id', sa.BigInteger(), nullable=False),
    sa.Column('variant', sa.String(length=8), nullable=False),
    sa.Column('provider', sa.String(length=64), nullable=False),
    sa.Column('metric', sa.String(length=16), nullable=False),
    sa.Column('slot', sa.BigInteger(), nullable=False),
    sa.Column('n', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('minute', 'campaign_id', 'variant', 'provider', 'metric', 'slot', name=op.f('pk_stat_series'))
    )
    with op.batch_alter_table('stat_series', schema=None) as batch_op:
        batch_op.create_index('ix_stat_series_campaign', ['campaign_id', 'minute'], unique=False)
    op.create_table('stat_traffic_hour',
    sa.Column('hour', sa.BigInteger(), nullable=False),
    sa.Column('provider', sa.String(length=64), nullable=False),
    sa.Column('campaign_id', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('slot', sa.BigInteger(), nullable=False),
    sa.Column('n', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('hour', 'provider', 'campaign_id', 'state', 'slot', name=op.f('pk_stat_traffic_hour'))
    )
    op.create_table('stat_series_hour',
    sa.Column('hour', sa.BigInteger(), nullable=False),
    sa.Column('campaign_id', sa.BigInteger(), nullable=False),
    sa.Column('variant', sa.String(length=8), nullable=False),
    sa.Column('provider', sa.String(length=64), nullable=False),
    sa.Column('metric', sa.String(length=16), nullable=False),
    sa.Column('slot', sa.BigInteger(), nullable=False),
    sa.Column('n', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('hour', 'campaign_id', 'variant', 'provider', 'metric', 'slot',
                            name=op.f('pk_stat_series_hour'))
    )
    with op.batch_alter_table('stat_series_hour', schema=None) as batch_op:
        batch_op.create_index('ix_stat_series_hour_campaign', ['campaign_id', 'hour'], unique=False)

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('price', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('price_currency', sa.String(length=3), nullable=True))
    with op.batch_alter_table('receipts', schema=None) as batch_op:  # a receipt kept until its message appears
        batch_op.add_column(sa.Column('price', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('price_currency', sa.String(length=3), nullable=True))
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('campaign_id', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('run_id', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('variant', sa.String(length=8), nullable=True))
        batch_op.create_index('ix_inbound_campaign', ['campaign_id', 'run_id'], unique=False)

    # replies received before: linked to the campaign arm of the message they answer
    for column in ("campaign_id", "run_id", "variant"):
        op.execute(f"UPDATE inbound_messages SET {column} = (SELECT m.{column} FROM messages m "
                   f"WHERE m.id = inbound_messages.answers_message_id) WHERE answers_message_id IS NOT NULL")
    dialect = op.get_bind().dialect.name
    for statement in backfill(dialect):
        op.execute(statement)
    create_triggers()


def downgrade() -> None:
    drop_triggers()
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_inbound_campaign')
        batch_op.drop_column('variant')
        batch_op.drop_column('run_id')
        batch_op.drop_column('campaign_id')
    with op.batch_alter_table('receipts', schema=None) as batch_op:
        batch_op.drop_column('price_currency')
        batch_op.drop_column('price')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('price_currency')
        batch_op.drop_column('price')
    with op.batch_alter_table('stat_series_hour', schema=None) as batch_op:
        batch_op.drop_index('ix_stat_series_hour_campaign')
    op.drop_table('stat_series_hour')
    op.drop_table('stat_traffic_hour')
    with op.batch_alter_table('stat_series', schema=None) as batch_op:
        batch_op.drop_index('ix_stat_series_campaign')
    op.drop_table('stat_series')
    op.drop_table('stat_campaign')
    op.drop_table('stat_traffic')
    with op.batch_alter_table('campaign_conversions', schema=None) as batch_op:
        batch_op.drop_index('ix_campaign_conversions_event')
        batch_op.drop_index('ix_campaign_conversions_campaign')
    op.drop_table('campaign_conversions')
