"""Shared provider-test fixtures: one loopback server per test module whose Switchboard each
test points at its own fresh fake, and an httpx client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.fakes.server import Switchboard, serve


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[Switchboard, str]]:
    switchboard = Switchboard()
    with serve(switchboard) as running:
        yield switchboard, running.url


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as http:
        yield http
