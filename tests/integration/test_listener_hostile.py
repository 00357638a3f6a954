"""The listener under hostile input: odd bytes at every door (NUL, lone surrogates, over-long ids,
dates that overflow) get a 4xx with the reason or, where the message is genuine, are stored safely —
never a 500; replayed receipts and replies are stored and acted on once; a client that hangs up
mid-request is not an error; and slow clients can neither exhaust the listener nor stop sending."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from smsconsole import clock
from smsconsole.db import _alembic_config, create_engine
from smsconsole.listener.app import create_app
from smsconsole.models import Consent, Event, InboundMessage, Message, Profile, Receipt
from smsconsole.providers.base import CallbackRequest
from smsconsole.runtime import Runtime
from smsconsole.services import api_keys, providers, settings as settings_service
from tests.providers import test_generic_receipts as G
from tests.providers import test_twilio_receipts as T

PUBLIC = "https://console.example.com"
PHONE = "+447400123456"
LONG_SID = "SM" + "0123456789abcdef" * 12  # 194 characters: over the 128 the columns hold


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with runtime.factory() as session, session.begin():
        await settings_service.update_settings(session, {"public_base_url": PUBLIC}, actor="test")
    app = create_app(runtime.factory, box=runtime.box, engine_state=lambda: "running")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://listener") as http:
        yield http


async def _provider(rt: Runtime, name: str, kind: str, config: dict[str, str]) -> int:
    async with rt.factory() as session, session.begin():
        view = await providers.create_provider(session, rt.box, kind=kind, name=name, values=config, actor="test")
    return view.id


async def _sent(rt: Runtime, provider_id: int, name: str, provider_message_id: str) -> int:
    async with rt.factory() as session, session.begin():
        now = clock.now()
        message = Message(kind="test", priority=0, provider_id=provider_id, provider_name=name, to_number=PHONE,
                          body="hi", encoding="GSM-7", segments=1, state="sent",
                          provider_message_id=provider_message_id, attempts=1, created_at=now, updated_at=now,
                          sent_at=now)
        session.add(message)
        await session.flush()
        return message.id


async def _post(http: httpx.AsyncClient, request: CallbackRequest) -> httpx.Response:
    parts = urlsplit(request.url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    headers = {k: v for k, v in request.headers.items() if k != "host"}
    return await http.request(request.method, target, headers=headers, content=request.body or None)


async def _count(rt: Runtime, model: type, *where: Any) -> int:
    async with rt.factory() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where)) or 0


async def _rows(rt: Runtime) -> tuple[int, ...]:
    return tuple([await _count(rt, model) for model in (Receipt, InboundMessage, Message, Profile, Event, Consent)])


def _twilio(kind: str, params: dict[str, str]) -> CallbackRequest:
    url = T.STATUS_URL if kind == "status" else T.INBOUND_URL
    return T.signed(url, params)


GENERIC = "gw"
GENERIC_STATUS = f"{PUBLIC}/callbacks/{GENERIC}/status?token={G.TOKEN}"
GENERIC_INBOUND = f"{PUBLIC}/callbacks/{GENERIC}/inbound?token={G.TOKEN}"


def _generic_json(url: str, raw: str) -> CallbackRequest:
    return CallbackRequest("POST", url, {"content-type": "application/json"}, raw.encode())


# --- item 10: odd bytes at every door ----------------------------------------------------------


def _ascii_id(value: object) -> str:
    """A test id xdist can carry between processes (no lone surrogates), short enough to read."""
    return ascii(value).strip("'\"")[:60]


@pytest.mark.parametrize("path", [
    "/callbacks/tw%00/status", "/callbacks/%00/inbound", "/callbacks/twilio-main%00/inbound",
    "/callbacks/%ED%B2%80/status", "/callbacks/" + "a" * 300 + "/status", "/callbacks/tw%0A/status",
], ids=_ascii_id)
async def test_an_impossible_provider_name_is_a_404_whatever_the_database(
        runtime: Runtime, client: httpx.AsyncClient, path: str) -> None:
    await _provider(runtime, "twilio-main", "twilio", T.CONFIG)
    before = await _rows(runtime)
    response = await client.post(path, content=b"MessageSid=SM1", headers={"content-type": T.FORM})
    assert response.status_code == 404, response.text
    assert response.json()["error"] in ("unknown_provider", "not_found")  # a newline matches no route
    assert await _rows(runtime) == before


async def test_a_genuine_twilio_stop_with_a_nul_and_an_overlong_sid_is_recorded_once(
        runtime: Runtime, client: httpx.AsyncClient) -> None:
    await _provider(runtime, "twilio-main", "twilio", T.CONFIG)
    reply = {"MessageSid": LONG_SID, "From": PHONE, "To": "+15005550006", "Body": "STOP\x00", "NumMedia": "0"}
    for _ in range(3):  # the provider retries until it gets a 2xx: each retry changes nothing
        response = await _post(client, _twilio("inbound", reply))
        assert response.status_code == 200, response.text
    async with runtime.factory() as session:
        [row] = list(await session.scalars(select(InboundMessage)))
        subscription = await session.scalar(select(Profile.subscription).where(Profile.phone == PHONE))
    assert (row.keyword, row.action, row.text, row.sender) == ("STOP", "opt_out", "STOP", PHONE)
    assert row.provider_message_id is not None and len(row.provider_message_id) <= 128
    assert subscription == "unsubscribed"
    assert await _count(runtime, Message, Message.kind == "auto") == 1  # one confirmation, not three


async def test_a_genuine_twilio_receipt_with_an_overlong_sid_and_a_nul_status_is_kept_once(
        runtime: Runtime, client: httpx.AsyncClient) -> None:
    await _provider(runtime, "twilio-main", "twilio", T.CONFIG)
    for _ in range(3):
        response = await _post(client, _twilio("status", {"MessageSid": LONG_SID, "MessageStatus": "deliv\x00ered",
                                                          "To": PHONE, "ErrorCode": "3\x000"}))
        assert response.status_code == 200, response.text
    async with runtime.factory() as session:
        [receipt] = list(await session.scalars(select(Receipt)))
    assert "\x00" not in receipt.provider_status and len(receipt.provider_message_id) <= 128


@pytest.mark.parametrize("kind", ["status", "inbound"])
@pytest.mark.parametrize("oddity", ["\\u0000", "\\udc80", "\\ud800x"], ids=["nul", "lone-low", "lone-high"])
async def test_json_callbacks_with_nul_or_lone_surrogates_are_stored_safely(
        runtime: Runtime, client: httpx.AsyncClient, kind: str, oddity: str) -> None:
    await _provider(runtime, GENERIC, "generic", {**G.BASE, "inbound_id_field": "mo_id"})
    if kind == "status":
        raw = '{"id": "m-1%s", "status": "DELIVRD%s"}' % (oddity, oddity)
        url = GENERIC_STATUS
    else:
        raw = '{"from": "919812345678", "text": "STOP%s", "mo_id": "r-1%s"}' % (oddity, oddity)
        url = GENERIC_INBOUND
    for _ in range(2):
        response = await _post(client, _generic_json(url, raw))
        assert response.status_code < 300, response.text
    async with runtime.factory() as session:
        if kind == "status":
            [receipt] = list(await session.scalars(select(Receipt)))
            stored = [receipt.provider_message_id, receipt.provider_status]
        else:
            [row] = list(await session.scalars(select(InboundMessage)))
            stored = [row.provider_message_id or "", row.text]
    for value in stored:
        assert "\x00" not in value and value.encode("utf-8")  # encodable: no lone surrogate left


@pytest.mark.parametrize("path", ["/callbacks/gw/status", "/callbacks/gw/inbound"])
async def test_a_nul_in_the_token_or_query_is_a_4xx(runtime: Runtime, client: httpx.AsyncClient, path: str) -> None:
    await _provider(runtime, GENERIC, "generic", dict(G.BASE))
    before = await _rows(runtime)
    for query in ("?token=%00", f"?token={G.TOKEN}%00", "?token=%ED%B2%80"):
        response = await client.post(path + query, content=b"id=m-1&status=DELIVRD&from=1&text=x",
                                     headers={"content-type": T.FORM})
        assert 400 <= response.status_code < 500, (query, response.text)
    assert await _rows(runtime) == before


async def _api_key(rt: Runtime) -> str:
    async with rt.factory() as session, session.begin():
        _, key = await api_keys.create_api_key(session, "hostile", "test")
    return key


PROFILE_ODDITIES = [
    ('{"user_id": "u\\u0000", "phone": "+14155550100"}', "user_id"),
    ('{"user_id": "u1", "name": "Ann\\u0000", "phone": "+14155550100"}', "name"),
    ('{"user_id": "u1", "name": "Ann\\udc80", "phone": "+14155550100"}', "name"),
    ('{"user_id": "\\ud800", "phone": "+14155550100"}', "user_id"),
    ('{"user_id": "u1", "properties": {"plan": "pro\\u0000"}}', "properties.plan"),
    ('{"user_id": "u1", "properties": {"pl\\u0000an": "pro"}}', "properties"),
    ('{"user_id": "u1", "properties": {"plan\\udc80": "pro"}}', "properties"),
    ('{"user_id": "u1", "optin_at": "0001-01-01T00:00:00+14:00"}', "optin_at"),
    ('{"user_id": "u1", "optout_at": "9999-12-31T23:59:59-14:00"}', "optout_at"),
    ('{"user_id": "u1", "timezone": "Europe/Lon\\u0000don"}', "timezone"),
    ('{"user_id": "u1", "phone": "+1415\\u00005550100"}', "phone"),
]
EVENT_ODDITIES = [
    ('{"user_id": "u1", "name": "purchase\\u0000"}', "name"),
    ('{"user_id": "u1", "name": "purchase\\udc80"}', "name"),
    ('{"user_id": "u\\u0000", "name": "purchase"}', "user_id"),
    ('{"user_id": "u1", "name": "purchase", "properties": {"sku": "a\\u0000"}}', "properties.sku"),
    ('{"user_id": "u1", "name": "purchase", "properties": {"\\udc80": 1}}', "properties"),
    ('{"user_id": "u1", "name": "purchase", "at": "0001-01-01T00:00:00+14:00"}', "at"),
    ('{"user_id": "u1", "name": "sms_optin", "at": "0001-01-01T00:00:00+01:00"}', "at"),
]


@pytest.mark.parametrize(("path", "raw", "field"),
                         [("/v1/profiles", raw, field) for raw, field in PROFILE_ODDITIES]
                         + [("/v1/events", raw, field) for raw, field in EVENT_ODDITIES], ids=_ascii_id)
async def test_the_ingestion_api_answers_odd_values_with_a_422_naming_the_field(
        runtime: Runtime, client: httpx.AsyncClient, path: str, raw: str, field: str) -> None:
    key = await _api_key(runtime)
    before = await _rows(runtime)
    response = await client.post(path, content=raw.encode(), headers={"Authorization": f"Bearer {key}",
                                                                       "content-type": "application/json"})
    assert response.status_code == 422, response.text
    [problem] = response.json()["errors"]
    assert (problem["index"], problem["field"]) == (0, field)
    assert problem["reason"]
    assert await _rows(runtime) == before


# --- item 15: replays are no-ops ---------------------------------------------------------------


async def test_a_receipt_replayed_concurrently_is_stored_once(runtime: Runtime, client: httpx.AsyncClient) -> None:
    provider_id = await _provider(runtime, "twilio-main", "twilio", T.CONFIG)
    message_id = await _sent(runtime, provider_id, "twilio-main", "SM1")
    receipt = {"MessageSid": "SM1", "MessageStatus": "delivered", "To": PHONE}
    answers = await asyncio.gather(*(_post(client, _twilio("status", receipt)) for _ in range(8)))
    assert all(a.status_code in (200, 503) for a in answers), [a.status_code for a in answers]
    for _ in range(2):  # what a provider does after a 503: send it again
        assert (await _post(client, _twilio("status", receipt))).status_code == 200
    assert await _count(runtime, Receipt) == 1
    async with runtime.factory() as session:
        assert await session.scalar(select(Message.state).where(Message.id == message_id)) == "delivered"


async def test_a_replayed_receipt_with_an_overlong_id_is_stored_once(runtime: Runtime,
                                                                     client: httpx.AsyncClient) -> None:
    await _provider(runtime, "twilio-main", "twilio", T.CONFIG)
    for _ in range(3):
        response = await _post(client, _twilio("status", {"MessageSid": LONG_SID, "MessageStatus": "delivered"}))
        assert response.status_code == 200
    assert await _count(runtime, Receipt) == 1


async def test_two_long_ids_sharing_their_first_128_characters_stay_two_receipts(
        runtime: Runtime, client: httpx.AsyncClient) -> None:
    await _provider(runtime, "twilio-main", "twilio", T.CONFIG)
    for sid in (LONG_SID + "A", LONG_SID + "B"):
        assert (await _post(client, _twilio("status", {"MessageSid": sid, "MessageStatus": "delivered"}))
                ).status_code == 200
    assert await _count(runtime, Receipt) == 2


async def test_a_generic_stop_without_a_message_id_is_acted_on_once_per_replay(
        runtime: Runtime, client: httpx.AsyncClient) -> None:
    await _provider(runtime, GENERIC, "generic", dict(G.BASE))  # no inbound_id_field
    stop = CallbackRequest("POST", GENERIC_INBOUND, {"content-type": T.FORM},
                           urlencode({"from": "919812345678", "text": "STOP", "to": "ACME"}).encode())
    for _ in range(3):
        assert (await _post(client, stop)).status_code < 300
    assert await _count(runtime, InboundMessage) == 1
    assert await _count(runtime, Message, Message.kind == "auto") == 1  # one confirmation
    assert await _count(runtime, Event) == 1


async def test_a_generic_reply_repeated_after_the_replay_window_is_a_new_reply(
        runtime: Runtime, client: httpx.AsyncClient) -> None:
    from smsconsole.services.replies import REPLAY_WINDOW

    await _provider(runtime, GENERIC, "generic", dict(G.BASE))
    hello = CallbackRequest("POST", GENERIC_INBOUND, {"content-type": T.FORM},
                            urlencode({"from": "919812345678", "text": "hello"}).encode())
    start = clock.now()
    clock.freeze(start)
    assert (await _post(client, hello)).status_code < 300
    clock.freeze(start + REPLAY_WINDOW / 2)
    assert (await _post(client, hello)).status_code < 300  # a replay
    clock.freeze(start + REPLAY_WINDOW * 3)
    assert (await _post(client, hello)).status_code < 300  # the person wrote the same thing again
    assert await _count(runtime, InboundMessage) == 2


def _migrate(url: str, revision: str) -> Any:
    from alembic import command

    async def run() -> None:
        engine = create_engine(url)
        cfg = _alembic_config(url)

        def upgrade(connection: Any) -> None:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)

        async with engine.begin() as connection:
            await connection.run_sync(upgrade)
        await engine.dispose()

    return run()


@pytest.mark.fresh_database
async def test_the_migration_collapses_duplicate_receipts_of_an_old_database(database_url: str) -> None:
    await _migrate(database_url, "0006")
    engine = create_engine(database_url)
    now = clock.now()

    def seed(connection: Any) -> None:
        metadata = sa.MetaData()
        table = sa.Table("providers", metadata, autoload_with=connection)
        defaults = {sa.String: "x", sa.Integer: 0, sa.Boolean: False, sa.DateTime: now, sa.JSON: {}}
        row: dict[str, Any] = {}
        for column in table.columns:
            if column.nullable or column.primary_key or column.server_default is not None:
                continue
            row[column.name] = next((v for t, v in defaults.items() if isinstance(column.type, t)), "x")
        row.update(name="old", kind="sandbox")
        provider_id = connection.execute(table.insert().values(**row)).inserted_primary_key[0]
        receipts = sa.Table("receipts", metadata, autoload_with=connection)
        base = {"provider_id": provider_id, "provider_name": "old", "provider_status": "DELIVRD",
                "state": "delivered", "via": "webhook", "received_at": now, "part": None}
        connection.execute(receipts.insert(), [
            {**base, "provider_message_id": "a"}, {**base, "provider_message_id": "a"},
            {**base, "provider_message_id": "a"}, {**base, "provider_message_id": "a", "part": 1},
            {**base, "provider_message_id": "a", "part": 1}, {**base, "provider_message_id": "b"},
            {**base, "provider_message_id": "a", "provider_status": "SENT", "state": "sent"},
        ])

    async with engine.begin() as connection:
        await connection.run_sync(seed)
    await engine.dispose()
    await _migrate(database_url, "head")
    engine = create_engine(database_url)
    async with engine.connect() as connection:
        kept = (await connection.execute(sa.text(
            "SELECT provider_message_id, provider_status, part FROM receipts ORDER BY id"))).all()
    await engine.dispose()
    assert sorted((pmid, status, part or 0) for pmid, status, part in kept) == [
        ("a", "DELIVRD", 0), ("a", "DELIVRD", 1), ("a", "SENT", 0), ("b", "DELIVRD", 0)]


# --- item 16: a client that hangs up is not an error ---------------------------------------------


@pytest.mark.parametrize("path", ["/callbacks/gw/status", "/v1/profiles"])
async def test_a_client_that_hangs_up_mid_body_is_logged_as_a_disconnect_not_a_500(
        runtime: Runtime, caplog: pytest.LogCaptureFixture, path: str) -> None:
    key = await _api_key(runtime)
    app = create_app(runtime.factory, box=runtime.box, engine_state=lambda: "running")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"listener"), (b"content-type", b"application/json"),
                         (b"content-length", b"1000"), (b"authorization", f"Bearer {key}".encode())],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80)}
    incoming = [{"type": "http.request", "body": b'{"user_id": ', "more_body": True}, {"type": "http.disconnect"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    with caplog.at_level(logging.DEBUG, logger="smsconsole"):
        await app(scope, receive, send)
    assert not [m for m in sent if m["type"] == "http.response.start" and m["status"] >= 500]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert any("disconnect" in r.getMessage() for r in caplog.records if r.name.startswith("smsconsole.listener"))


# --- item 7: slow clients neither exhaust the listener nor stop sending ---------------------------

SLOW_CLIENTS = 1100  # the issue's reproduction: more than a 1,024-descriptor process can hold
ISSUE_FD_LIMIT = 1024
# Run in its own process (its own descriptors, like clients elsewhere on the network): open N
# connections, half sending nothing, half a request line and a header but never the end; hold
# them until stdin closes (at most two minutes), then close them all.
SLOW_CLIENT_SCRIPT = textwrap.dedent("""
    import resource, select, socket, sys, time
    port, count = int(sys.argv[1]), int(sys.argv[2])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 512), hard))
    held = []
    for n in range(count):
        sock = socket.socket()
        sock.settimeout(10)
        try:
            sock.connect(("127.0.0.1", port))
            if n % 2:
                sock.sendall(b"POST /v1/events HTTP/1.1\\r\\nHost: slow\\r\\nContent-Length: 100\\r\\n")
        except OSError:
            sock.close()
            continue
        held.append(sock)
    print("ready", len(held), flush=True)
    select.select([sys.stdin], [], [], 120)
    for sock in held:
        sock.close()
""")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Sink:
    """The loopback gateway (tests/fakes/sink.py) in its own process, like a provider."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        root = Path(__file__).resolve().parents[2]
        self.process = subprocess.Popen([sys.executable, "-m", "tests.fakes.sink", "--port", str(self.port)],
                                        cwd=root)
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"{self.url}/count", timeout=2):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the fake gateway did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


async def test_a_thousand_slow_clients_neither_block_the_listener_nor_stop_sending(
        runtime: Runtime, tmp_path: Path, database_url: str) -> None:
    from smsconsole.engine.runner import Engine
    from tests.conftest import make_config
    from tests.fakes.sink import generic_config
    from tests.integration.dispatch_support import add_provider, message_row, queue

    sink = _Sink()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    port = _free_port()
    config = make_config(tmp_path, database_url, listen_port=port)
    engine = Engine(runtime.factory, runtime.box, config)
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    slow: subprocess.Popen[str] | None = None
    try:
        provider_id = await add_provider(runtime, "sink", kind="generic", **generic_config(sink.url))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            for _ in range(300):  # the engine takes its lease and starts the listener
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(ISSUE_FD_LIMIT, hard), hard))  # as in the issue
        slow = subprocess.Popen([sys.executable, "-c", SLOW_CLIENT_SCRIPT, str(port), str(SLOW_CLIENTS)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert slow.stdout is not None
        ready = await asyncio.wait_for(asyncio.to_thread(slow.stdout.readline), timeout=120)
        assert ready.startswith("ready"), ready
        assert int(ready.split()[1]) >= 1000  # at least 1,000 slow connections were opened

        # A normal client still gets its answer while the slow ones are held.
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            health = await http.get("/healthz")
        assert (health.status_code, health.json()["database"]) == (200, "ok")

        # And the dispatcher keeps sending: every message queued now leaves.
        ids = await queue(runtime, *(message_row(n, provider_id=provider_id, provider_name="sink")
                                     for n in range(200)))
        engine.poke()
        for _ in range(1200):  # bounded: 60 s at most
            sent = await _count(runtime, Message, Message.id.in_(ids), Message.state == "sent")
            if sent == len(ids):
                break
            await asyncio.sleep(0.05)
        assert sent == len(ids)
    finally:
        if slow is not None:
            with contextlib.suppress(Exception):
                slow.stdin.close()  # type: ignore[union-attr]
            slow.wait(30)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        stop.set()
        await asyncio.wait_for(task, timeout=30)
        sink.stop()
