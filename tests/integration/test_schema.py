"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from smsconsole.models import Base
from smsconsole.runtime import Runtime


async def test_migrated_schema_matches_the_models(runtime: Runtime) -> None:
    def diff(connection):  # type: ignore[no-untyped-def]
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)

    async with runtime.db.connect() as connection:
        differences = await connection.run_sync(diff)
    assert differences == []
