"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from smsconsole.models import Base
from smsconsole.runtime import Runtime


EXPRESSION_INDEXES = {"ix_messages_queue"}


@pytest.mark.fresh_database
async def test_migrated_schema_matches_the_models(runtime: Runtime) -> None:
    def diff(connection):  # type: ignore[no-untyped-def]
        def include(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
            # SQLite's reflection drops an index's expressions (`priority DESC`), so the claim-order
            # index looks different there whatever the migration wrote; PostgreSQL compares it in full
            return not (type_ == "index" and name in EXPRESSION_INDEXES and connection.dialect.name == "sqlite")

        context = MigrationContext.configure(connection, opts={"compare_type": True, "include_object": include})
        return compare_metadata(context, Base.metadata)

    async with runtime.db.connect() as connection:
        differences = await connection.run_sync(diff)
    assert differences == []


def test_the_revision_list_read_from_file_names_is_alembics_own() -> None:
    # db.py opens a database without importing Alembic: it reads the revisions from the migration
    # files' names. They must be Alembic's revisions, in one line, ending at Alembic's head.
    from alembic.script import ScriptDirectory

    from smsconsole.db import _alembic_config, head_revision, known_revisions

    script = ScriptDirectory.from_config(_alembic_config("sqlite:///unused.db"))
    chain = [rev.revision for rev in reversed(list(script.walk_revisions()))]
    downs = [rev.down_revision for rev in reversed(list(script.walk_revisions()))]
    assert known_revisions() == chain
    assert downs == [None, *chain[:-1]]  # linear: each revision follows the one before
    assert head_revision() == script.get_current_head()


async def test_opening_a_database_at_head_does_not_import_alembic(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'x.db'}"
    code = (
        "import asyncio, sys\n"
        "from smsconsole.db import open_database\n"
        "async def main(migrate):\n"
        "    engine = await open_database(sys.argv[1], migrate=migrate)\n"
        "    await engine.dispose()\n"
        "asyncio.run(main(True))\n"
        "before = 'alembic' in sys.modules\n"
        "for name in [m for m in sys.modules if m == 'alembic' or m.startswith('alembic.')]:\n"
        "    del sys.modules[name]\n"
        "asyncio.run(main(True))\n"
        "print(before, 'alembic' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, url], capture_output=True, text=True, check=True)
    # the first open creates the schema (Alembic migrates); the second finds it at head without Alembic
    assert out.stdout.split() == ["True", "False"]
