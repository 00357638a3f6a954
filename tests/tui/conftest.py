"""Console fixtures: a frozen clock and seeded data (the app factory is in support.py).

Pilot tests (async) share one event loop with the app, so they use the `runtime` fixture of
tests/conftest.py (a migrated temp-file database; PostgreSQL too when configured) and hand it to
the app. Snapshot tests run the app in its own loop (`App.run`), so the app opens the database
itself; their paths are relative to a temp working directory, so the screens show the same text
on every machine."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.message import Message

from smsconsole import clock
from smsconsole.config import Config
from smsconsole.runtime import Runtime
from tests.conftest import copy_sqlite_template
from tests.tui.seed import FROZEN, seed_demo


@pytest.fixture(autouse=True)
def frozen_clock() -> Iterator[None]:
    clock.freeze(FROZEN)
    yield
    clock.freeze(None)


@pytest.fixture
def posted() -> list[Message]:
    """Messages seen by the app during a run_test(message_hook=posted.append)."""
    return []


@pytest.fixture
def snapshot_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    """A seeded database under a temp working directory, named by relative paths."""
    monkeypatch.chdir(tmp_path)
    config = Config(config_dir=Path("config"), data_dir=Path("data"))

    async def seed() -> None:
        await copy_sqlite_template(Path(config.effective_database_url.removeprefix("sqlite:///")))
        rt = await Runtime.open(config)
        try:
            await seed_demo(rt)
        finally:
            await rt.close()

    asyncio.run(seed())
    return config
