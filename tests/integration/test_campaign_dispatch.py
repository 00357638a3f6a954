"""Render at claim: campaign rows (inserted directly: campaign, run with its document snapshot,
outbox rows with `render` true and an empty body) sent by the real Dispatcher through a Generic
provider on a loopback fake gateway. Bodies are rendered per recipient and persisted; the
Generic blocks and DLT fields of the run reach the request; a failed render is suppressed with
its reason; linked content is fetched from a loopback server once per URL per run, and its
failure either skips the recipient or aborts the run."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from smsconsole import clock
from smsconsole.engine.dispatcher import DispatchSettings, Dispatcher, dedupe_key
from smsconsole.models import Campaign, CampaignRun, Message, Profile
from smsconsole.runtime import Runtime
from tests.fakes.generic import FakeGateway, RecordedRequest, Reply
from tests.fakes.server import serve
from tests.integration.dispatch_support import add_provider, message_row, queue

DOCUMENT: dict[str, Any] = {
    "name": "Spring sale", "type": "one_time",
    "when": {"timezone": "UTC", "at": "now"},
    "who": {"segment": "Everyone"},
    "what": {"route": {"provider": "gw"}, "body": 'Hi {{ profile.name | default: "there" }} 👋'},
}


@pytest.fixture(scope="module")
def gateway() -> Iterator[FakeGateway]:
    fake = FakeGateway()
    with serve(fake.app) as server:
        fake.url = server.url
        yield fake


@pytest.fixture(scope="module")
def linked_server() -> Iterator[FakeGateway]:
    fake = FakeGateway()
    with serve(fake.app) as server:
        fake.url = server.url
        yield fake


@pytest.fixture(autouse=True)
def _fresh(gateway: FakeGateway, linked_server: FakeGateway) -> None:
    gateway.reset()
    linked_server.reset()


def _weather(request: RecordedRequest) -> Reply:
    city = parse_qs(request.query).get("city", [""])[0]
    if city == "Atlantis":
        return Reply(503, "down")
    return Reply(200, {"temp": {"Paris": 21, "Oslo": 3}.get(city, 0)})


async def _setup(rt: Runtime, gateway: FakeGateway, what: dict[str, Any],
                 people: list[dict[str, Any]]) -> tuple[int, list[int]]:
    """A Generic provider, a running campaign and run with `what`, one rendered-at-claim outbox
    row per person. Returns (run id, message ids)."""
    provider_id = await add_provider(
        rt, "gw", kind="generic", url=f"{gateway.url}/send",
        params="to=$$To\ntext=$$Body\ntid=$$TemplateID\nvars=$$TemplateVariables\ncity=$$City\nglob=$$Glob",
        headers="X-Region: $$Region", custom_keys="City, Glob, Region",
    )
    document = copy.deepcopy(DOCUMENT)
    document["what"].update(what)
    now = clock.now()
    async with rt.factory() as session, session.begin():
        campaign = Campaign(name="Spring sale", type="one_time", state="running", document=document,
                            created_at=now, updated_at=now)
        session.add(campaign)
        await session.flush()
        run = CampaignRun(campaign_id=campaign.id, number=1, planned_at=now, state="running", document=document,
                          suppressed={}, updated_at=now)
        session.add(run)
        profiles = [Profile(phone=f"+1415555{n:04d}", phone_raw=f"+1415555{n:04d}", phone_status="valid",
                            sms_capable=True, subscription="subscribed", subscription_at=now, created_at=now, updated_at=now,
                            name=person.get("name"), properties=person.get("properties", {}))
                    for n, person in enumerate(people)]
        session.add_all(profiles)
        await session.flush()
        campaign_id, run_id = campaign.id, run.id
        profile_ids = [p.id for p in profiles]
    rows = [message_row(n, kind="campaign", provider_id=provider_id, provider_name="gw", profile_id=profile_id,
                        campaign_id=campaign_id, run_id=run_id, variant="A", render=True, body="",
                        dedupe_key=dedupe_key(run_id, profile_id))
            for n, profile_id in enumerate(profile_ids)]
    return run_id, await queue(rt, *rows)


async def _messages(rt: Runtime, ids: list[int]) -> list[Message]:
    async with rt.factory() as session:
        return list(await session.scalars(select(Message).where(Message.id.in_(ids)).order_by(Message.id)))


async def _drain(rt: Runtime, batch_size: int = 50) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        dispatcher = Dispatcher(rt.factory, rt.box, client, DispatchSettings(batch_size=batch_size))
        while await dispatcher.run_once():
            pass


def _sent_texts(gateway: FakeGateway) -> dict[str, str]:
    return {dict(r.form)["to"]: dict(r.form)["text"] for r in gateway.requests}


async def test_bodies_rendered_per_recipient_persisted_and_sent(runtime: Runtime, gateway: FakeGateway) -> None:
    _, ids = await _setup(runtime, gateway, {}, [{"name": "Ann"}, {}])
    await _drain(runtime)
    rows = await _messages(runtime, ids)
    assert [(m.state, m.body, m.encoding, m.segments, m.render) for m in rows] == [
        ("sent", "Hi Ann 👋", "UCS-2", 1, False), ("sent", "Hi there 👋", "UCS-2", 1, False)]
    assert _sent_texts(gateway) == {"+14155550000": "Hi Ann 👋", "+14155550001": "Hi there 👋"}


async def test_generic_blocks_and_dlt_reach_the_provider(runtime: Runtime, gateway: FakeGateway) -> None:
    what = {"body": "Sale for {{ profile.name }}", "dlt": {"dlt_entity_id": "1101"},
            "generic": {"template_id": "TPL-9", "template_variables": ["{{ profile.name }}", "20"],
                        "body_values": {"City": "{{ profile.properties.city | upcase }}"},
                        "global_values": {"Glob": "{{ profile.name }}"}, "header_values": {"Region": "eu"}}}
    await _setup(runtime, gateway, what, [{"name": "Ann", "properties": {"city": "Paris"}}])
    await _drain(runtime)
    [request] = gateway.requests
    form = dict(request.form)
    assert (form["text"], form["tid"], form["vars"], form["city"]) == ("Sale for Ann", "TPL-9", "Ann,20", "PARIS")
    assert form["glob"] == "{{ profile.name }}"  # global values take no personalization
    assert request.header("x-region") == "eu"


async def test_failed_or_empty_render_is_suppressed_with_its_reason(runtime: Runtime, gateway: FakeGateway) -> None:
    _, ids = await _setup(runtime, gateway, {"body": "{{ profile.name }}{% if profile.properties.n %}{{ profile.properties.n | divided_by: 0 }}{% endif %}"},
                          [{"name": "Ann"}, {"name": "Bob", "properties": {"n": 4}}, {"name": " "}])
    await _drain(runtime)
    rows = await _messages(runtime, ids)
    assert [m.state for m in rows] == ["sent", "suppressed", "suppressed"]
    assert rows[1].reason == "personalization failed: line 1, column 74: divided_by: can't divide by 0"
    assert rows[2].reason == "personalization failed: the message came out empty"
    assert rows[1].body == "" and len(gateway.requests) == 1


async def test_a_run_whose_body_does_not_compile_sends_nothing(runtime: Runtime, gateway: FakeGateway) -> None:
    _, ids = await _setup(runtime, gateway, {"body": "Hi {{ profile.name | shout }}"}, [{"name": "Ann"}])
    await _drain(runtime)
    [row] = await _messages(runtime, ids)
    assert row.state == "suppressed"
    assert row.reason == "personalization failed: the template has an error at line 1, column 22: unknown filter 'shout'"
    assert gateway.requests == []


def _linked_what(server: FakeGateway, on_failure: str) -> dict[str, Any]:
    return {"body": '{% connected_content "' + server.url + '/weather?city={{ profile.properties.city }}" as w %}'
                    "{{ profile.name }}: {{ w.temp }} C",
            "linked_content": {"timeout": 2, "on_failure": on_failure}}


async def test_linked_content_fetched_once_per_url_per_run(runtime: Runtime, gateway: FakeGateway,
                                                           linked_server: FakeGateway) -> None:
    linked_server.default = _weather
    people = [{"name": n, "properties": {"city": c}} for n, c in
              [("Ann", "Paris"), ("Bob", "Oslo"), ("Cy", "Paris"), ("Di", "Paris"), ("Ed", "Oslo")]]
    _, ids = await _setup(runtime, gateway, _linked_what(linked_server, "skip"), people)
    await _drain(runtime, batch_size=2)  # three batches share the run's cache
    rows = await _messages(runtime, ids)
    assert [m.body for m in rows] == ["Ann: 21 C", "Bob: 3 C", "Cy: 21 C", "Di: 21 C", "Ed: 3 C"]
    assert sorted(urlsplit(r.path + "?" + r.query).query for r in linked_server.requests) == ["city=Oslo", "city=Paris"]


async def test_linked_content_failure_skips_the_recipient(runtime: Runtime, gateway: FakeGateway,
                                                          linked_server: FakeGateway) -> None:
    linked_server.default = _weather
    people = [{"name": "Ann", "properties": {"city": "Atlantis"}}, {"name": "Bob", "properties": {"city": "Oslo"}}]
    run_id, ids = await _setup(runtime, gateway, _linked_what(linked_server, "skip"), people)
    await _drain(runtime)
    rows = await _messages(runtime, ids)
    assert [(m.state, m.reason) for m in rows] == [
        ("suppressed", "personalization failed: linked content from 127.0.0.1 answered HTTP 503"), ("sent", None)]
    async with runtime.factory() as session:
        assert (await session.get(CampaignRun, run_id)).state == "running"  # type: ignore[union-attr]


async def test_linked_content_failure_aborts_the_run(runtime: Runtime, gateway: FakeGateway,
                                                     linked_server: FakeGateway) -> None:
    linked_server.default = Reply(503, "down")
    people = [{"name": n, "properties": {"city": "Oslo"}} for n in ("Ann", "Bob", "Cy", "Di")]
    run_id, ids = await _setup(runtime, gateway, _linked_what(linked_server, "abort"), people)
    await _drain(runtime, batch_size=2)
    rows = await _messages(runtime, ids)
    reason = "run aborted: linked content from 127.0.0.1 answered HTTP 503"
    assert [(m.state, m.reason) for m in rows] == [("suppressed", reason)] * 4
    assert gateway.requests == [] and len(linked_server.requests) == 1
    async with runtime.factory() as session:
        run = await session.get(CampaignRun, run_id)
        assert run is not None and (run.state, run.reason) == ("failed", reason) and run.finished_at is not None


async def test_a_retry_sends_the_persisted_body_with_its_options(runtime: Runtime, gateway: FakeGateway) -> None:
    """A transient failure requeues the message rendered (render false): the next claim sends
    the same text and still carries the run's options."""
    gateway.answer(Reply(503, "busy"))
    what = {"body": "Hi {{ profile.name }}", "generic": {"template_id": "TPL-1"}}
    _, ids = await _setup(runtime, gateway, what, [{"name": "Ann"}])
    async with httpx.AsyncClient(timeout=5) as client:
        dispatcher = Dispatcher(runtime.factory, runtime.box, client, DispatchSettings(backoff_base=0.0))
        await dispatcher.run_once()
        [row] = await _messages(runtime, ids)
        assert (row.state, row.body, row.render) == ("queued", "Hi Ann", False)
        async with runtime.factory() as session, session.begin():
            await session.execute(Message.__table__.update().values(next_attempt_at=None))
        await dispatcher.run_once()
    assert [dict(r.form)["text"] for r in gateway.requests] == ["Hi Ann", "Hi Ann"]
    assert [dict(r.form)["tid"] for r in gateway.requests] == ["TPL-1", "TPL-1"]
    [row] = await _messages(runtime, ids)
    assert row.state == "sent"


async def test_rendering_costs_the_same_statements_whatever_the_batch_size(runtime: Runtime,
                                                                            gateway: FakeGateway) -> None:
    """Per batch: the profiles in one query, the rendered bodies in one executemany; the run's
    document is read once for the whole run."""
    from sqlalchemy import event

    _, first = await _setup(runtime, gateway, {}, [{"name": f"P{n}"} for n in range(45)])
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if "profiles.properties" in statement and statement.startswith("SELECT"):
            seen.append("profiles")
        elif statement.startswith("UPDATE messages SET body="):
            seen.append("bodies")
        elif statement.startswith("SELECT campaign_runs.id, campaign_runs.document"):
            seen.append("documents")

    event.listen(runtime.db.sync_engine, "before_cursor_execute", count)
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            dispatcher = Dispatcher(runtime.factory, runtime.box, client, DispatchSettings(batch_size=40))
            assert await dispatcher.run_once() == 40
            assert seen == ["documents", "profiles", "bodies"]
            seen.clear()
            assert await dispatcher.run_once() == 5
            assert seen == ["profiles", "bodies"]
    finally:
        event.remove(runtime.db.sync_engine, "before_cursor_execute", count)
    assert [m.body for m in await _messages(runtime, first)] == [f"Hi P{n} 👋" for n in range(45)]
