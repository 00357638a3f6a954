"""A poller that cannot work is quiet about it: it backs off and logs once when it starts failing
and once when it works again; the engine's chores never overlap themselves, and stopping the
engine right after it started logs no traceback."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from smsconsole.config import Config
from smsconsole.engine.pollers import Pollers, PollSettings
from smsconsole.engine.runner import Engine, EngineState
from smsconsole.runtime import Runtime
from smsconsole.services import providers
from tests.fakes.server import Switchboard, serve
from tests.fakes.twilio import FakeTwilio
from tests.providers.test_twilio_receipts import CONFIG as TWILIO

SECRET_VARIABLE = "SMSCONSOLE_TEST_POLLER_TOKEN"


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[Switchboard, str]]:
    switchboard = Switchboard()
    with serve(switchboard) as running:
        yield switchboard, running.url


@pytest.fixture
def twilio(server: tuple[Switchboard, str]) -> Iterator[FakeTwilio]:
    switchboard, url = server
    fake = FakeTwilio()
    fake.base_url = url
    switchboard.target = fake.app
    yield fake
    fake.close()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


def _poller_records(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "smsconsole.pollers" and r.levelno == level]


async def test_an_unset_env_secret_is_logged_once_backs_off_and_recovery_is_logged_once(
        runtime: Runtime, twilio: FakeTwilio, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SECRET_VARIABLE, raising=False)
    async with runtime.factory() as session, session.begin():
        await providers.create_provider(session, runtime.box, kind="twilio", name="twilio-env",
                                        values={**TWILIO, "auth_token": f"env:{SECRET_VARIABLE}"},
                                        base_url=twilio.base_url, actor="test")
        provider_id = (await providers.get_provider(session, "twilio-env")).id
    now = [1000.0]
    pollers = Pollers(runtime.factory, runtime.box, http, PollSettings(interval_seconds=10),
                      monotonic=lambda: now[0])
    caplog.set_level(logging.INFO, logger="smsconsole.pollers")

    waits: list[float] = []  # how long the poller waits before the next try, after each failed try
    for _ in range(300):  # five simulated minutes, one tick a second as the engine runs them
        before = pollers.next_attempt(provider_id)
        await pollers.tick()
        after = pollers.next_attempt(provider_id)
        if after is not None and after != before:
            waits.append(after - now[0])
        now[0] += 1.0

    errors = _poller_records(caplog, logging.ERROR)
    assert len(errors) == 1, errors
    assert "twilio-env" in errors[0] and SECRET_VARIABLE in errors[0]
    assert len(waits) >= 3 and all(later > earlier for earlier, later in zip(waits, waits[1:])), waits
    assert not _poller_records(caplog, logging.WARNING)
    assert not twilio.requests  # nothing was asked of the provider without its credentials

    monkeypatch.setenv(SECRET_VARIABLE, TWILIO["auth_token"])
    caplog.clear()
    for _ in range(700):  # past the longest backoff, then some
        await pollers.tick()
        now[0] += 1.0
    assert pollers.next_attempt(provider_id) is None
    assert twilio.requests  # it polls again
    recovered = _poller_records(caplog, logging.INFO)
    assert len(recovered) == 1 and "twilio-env" in recovered[0] and "works again" in recovered[0], recovered
    assert not _poller_records(caplog, logging.ERROR) and not _poller_records(caplog, logging.WARNING)


@pytest.fixture
async def black_hole() -> AsyncIterator[str]:
    """A server that takes connections and never answers: a poll against it is in flight until
    the engine stops."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.read(-1)
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


async def test_stopping_the_engine_right_after_it_started_logs_no_traceback(
        runtime: Runtime, config: Config, black_hole: str, caplog: pytest.LogCaptureFixture) -> None:
    async with runtime.factory() as session, session.begin():
        await providers.create_provider(session, runtime.box, kind="sandbox", name="sandbox", values={},
                                        actor="test")
        await providers.create_provider(session, runtime.box, kind="twilio", name="twilio-silent", values=TWILIO,
                                        base_url=black_hole, actor="test")
    caplog.set_level(logging.DEBUG)
    for stop_after in (0.0, 0.05, 1.5):  # before the first poll, and while it waits for its answer
        engine = Engine(runtime.factory, runtime.box, config)
        stop = asyncio.Event()
        task = asyncio.create_task(engine.run(stop))
        for _ in range(500):
            if engine.state is EngineState.RUNNING:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(stop_after)
        stop.set()
        await asyncio.wait_for(task, timeout=30)
        assert engine.state is EngineState.STOPPED
    tracebacks = [r for r in caplog.records if r.exc_info is not None and r.levelno >= logging.WARNING]
    assert not tracebacks, [(r.name, r.getMessage()) for r in tracebacks]
    assert not [r for r in caplog.records if "maximum number of running instances" in r.getMessage()]


async def test_quitting_the_console_while_a_poll_is_in_flight_logs_no_traceback(
        runtime: Runtime, black_hole: str, caplog: pytest.LogCaptureFixture) -> None:
    from tests.tui.support import make_app, wait_for

    async with runtime.factory() as session, session.begin():
        await providers.create_provider(session, runtime.box, kind="twilio", name="twilio-silent", values=TWILIO,
                                        base_url=black_hole, actor="test")
    caplog.set_level(logging.DEBUG)
    app = make_app(runtime.config, runtime, run_engine=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.engine is not None and app.engine.state is EngineState.RUNNING,
                       timeout=30, what="the engine")
        await pilot.pause(1.5)  # the first poll is waiting for its answer
        await pilot.press("q")
    assert app._engine_task is not None and app._engine_task.done()
    tracebacks = [r for r in caplog.records if r.exc_info is not None and r.levelno >= logging.WARNING]
    assert not tracebacks, [(r.name, r.getMessage()) for r in tracebacks]
