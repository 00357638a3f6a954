"""Integration fixtures: `cli` runs the command line in-process against the test database; `bound`
is an SMPP provider bound to the loopback SMSC, storing what its bind receives."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from smsconsole.cli import main
from smsconsole.providers.smpp.adapter import SmppProvider
from smsconsole.runtime import Runtime
from smsconsole.services.smpp import receipt_sink
from tests.fakes.smsc import FakeSmsc, provider_values
from tests.integration.dispatch_support import add_provider


@pytest.fixture
def cli(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SMSCONSOLE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("SMSCONSOLE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SMSCONSOLE_DATABASE_URL", database_url)
    monkeypatch.delenv("SMSCONSOLE_SECRET_KEY", raising=False)

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
async def bound(runtime: Runtime, smsc: FakeSmsc) -> AsyncIterator[tuple[int, SmppProvider]]:
    """An smpp provider row and its adapter, bound, storing into the runtime's database."""
    values = provider_values(smsc)
    provider_id = await add_provider(runtime, "smsc", kind="smpp", **values)
    adapter = SmppProvider(values)
    adapter.attach(receipt_sink(runtime.factory, provider_id, "smsc"))
    adapter.start()
    yield provider_id, adapter
    await adapter.aclose()
