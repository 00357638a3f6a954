"""unique profile identity (user id, or phone when there is none)

Revision ID: 0006
Revises: 0005

One person is one profile: the user id was unique already; now the phone is unique among profiles
without a user id (a partial unique index), so concurrent writers of one phone-only person converge
on one row. A profile with a user id is its own identity and may share its phone.

Databases written before this may hold phone-only duplicates (concurrent API writers or imports).
They are MERGED into the oldest (lowest id), which keeps its id:
- the others' events, consents, messages and inbound messages (every row whose foreign key points
  at a profile) move to it; a row that would then repeat one the merged profile already has under
  a unique key (the same consent twice) is dropped (or unlinked, where its key is ON DELETE SET NULL);
- columns and properties are taken as the upserts would have left them: the duplicates in order of
  their last update, a later non-empty name, time zone, country or property value winning;
- the subscription is the one with the latest subscription time (consent only moves forward);
- created_at is the oldest one's, updated_at the latest.
Downgrade drops the index; merged profiles are not split again.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

INDEX = 'uq_profiles_phone_without_user_id'
_JSON = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')
_profiles = sa.table(
    'profiles', sa.column('id', sa.BigInteger), sa.column('user_id', sa.String), sa.column('phone', sa.String),
    sa.column('name', sa.String), sa.column('timezone', sa.String), sa.column('country', sa.String),
    sa.column('properties', _JSON), sa.column('subscription', sa.String),
    sa.column('subscription_at', sa.DateTime(timezone=True)), sa.column('updated_at', sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    _merge_duplicates(op.get_bind())
    op.create_index(INDEX, 'profiles', ['phone'], unique=True,
                    sqlite_where=sa.text('user_id IS NULL'), postgresql_where=sa.text('user_id IS NULL'))


def downgrade() -> None:
    op.drop_index(INDEX, table_name='profiles')


def _merge_duplicates(bind: Any) -> None:
    p = _profiles
    duplicated = (sa.select(p.c.phone).where(p.c.user_id.is_(None), p.c.phone.is_not(None))
                  .group_by(p.c.phone).having(sa.func.count() > 1).subquery())
    rows = bind.execute(sa.select(p).where(p.c.user_id.is_(None), p.c.phone.in_(sa.select(duplicated.c.phone)))
                        .order_by(p.c.phone, p.c.id)).all()
    if not rows:
        return
    groups: dict[str, list[Any]] = {}
    for row in rows:
        groups.setdefault(row.phone, []).append(row)

    merges = sa.Table('profile_identity_merges', sa.MetaData(),
                      sa.Column('dup_id', sa.BigInteger, primary_key=True), sa.Column('keeper_id', sa.BigInteger))
    merges.create(bind)
    bind.execute(merges.insert(), [{'dup_id': r.id, 'keeper_id': g[0].id} for g in groups.values() for r in g[1:]])
    inspector = sa.inspect(bind)
    for table_name in inspector.get_table_names():
        for fk in inspector.get_foreign_keys(table_name):
            if fk['referred_table'] == 'profiles' and len(fk['constrained_columns']) == 1:
                _move_references(bind, inspector, merges, table_name, fk)
    bind.execute(sa.update(p).where(p.c.id == sa.bindparam('keeper')).values(
        name=sa.bindparam('m_name'), timezone=sa.bindparam('m_timezone'), country=sa.bindparam('m_country'),
        properties=sa.bindparam('m_properties', type_=_JSON), subscription=sa.bindparam('m_subscription'),
        subscription_at=sa.bindparam('m_subscription_at', type_=sa.DateTime(timezone=True)),
        updated_at=sa.bindparam('m_updated_at', type_=sa.DateTime(timezone=True)),
    ), [_merged(group) for group in groups.values()])
    bind.execute(sa.delete(p).where(p.c.id.in_(sa.select(merges.c.dup_id))))
    merges.drop(bind)


def _merged(group: list[Any]) -> dict[str, Any]:
    """The keeper's values: the group folded in order of last update, later non-empty values winning."""
    values: dict[str, Any] = {'keeper': group[0].id, 'm_properties': {}}
    for row in sorted(group, key=lambda r: (r.updated_at, r.id)):
        for column in ('name', 'timezone', 'country'):
            values[f'm_{column}'] = getattr(row, column) or values.get(f'm_{column}')
        values['m_properties'].update(row.properties or {})
    subscribed = [r for r in group if r.subscription_at is not None]
    latest = max(subscribed, key=lambda r: (r.subscription_at, r.id)) if subscribed else group[0]
    values['m_subscription'], values['m_subscription_at'] = latest.subscription, latest.subscription_at
    values['m_updated_at'] = max(r.updated_at for r in group)
    return values


def _move_references(bind: Any, inspector: Any, merges: sa.Table, table_name: str, fk: dict[str, Any]) -> None:
    """Point the duplicates' rows at the keeper; first drop (or unlink) the rows that would repeat
    another of the same person under a unique key that includes the reference."""
    column = fk['constrained_columns'][0]
    uniques = [set(u['column_names']) for u in inspector.get_unique_constraints(table_name)]
    uniques += [set(i['column_names']) for i in inspector.get_indexes(table_name) if i.get('unique')]
    columns = {column, 'id', *(c for u in uniques for c in u if c)}
    table = sa.table(table_name, *(sa.column(c) for c in columns))
    ref = table.c[column]
    keeper_of = sa.select(merges.c.keeper_id).where(merges.c.dup_id == ref).correlate_except(merges).scalar_subquery()
    moving = ref.in_(sa.select(merges.c.dup_id))
    for unique in uniques:
        if column not in unique or None in unique:
            continue
        other = table.alias('other')
        siblings = merges.alias('siblings')
        same_person = sa.or_(other.c[column] == keeper_of, other.c[column].in_(
            sa.select(siblings.c.dup_id).where(siblings.c.keeper_id == keeper_of).correlate_except(siblings)))
        repeats = sa.exists().where(same_person, sa.or_(other.c[column] == keeper_of, other.c.id < table.c.id),
                                    *(other.c[c] == table.c[c] for c in unique - {column}))
        if (fk.get('options') or {}).get('ondelete', '').upper() == 'CASCADE':
            bind.execute(sa.delete(table).where(moving, repeats))
        else:
            bind.execute(sa.update(table).where(moving, repeats).values({column: None}))
    bind.execute(sa.update(table).where(moving).values({column: keeper_of}))
