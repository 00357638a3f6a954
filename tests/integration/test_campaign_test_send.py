"""A campaign's test send: rendered as the chosen profile, queued to any number through the
campaign's route with the provider options the campaign would send (a Generic provider on a
loopback gateway receives the template id, the personalized template variables and body values,
the header and global values as written), named by its Campaign ID; problems named by field."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from smsconsole import clock
from smsconsole.engine.dispatcher import DispatchSettings, Dispatcher
from smsconsole.models import Message, Profile
from smsconsole.runtime import Runtime
from smsconsole.services.campaigns.definition import parse_document
from smsconsole.services.campaigns.testsend import send_campaign_test
from smsconsole.services.errors import ValidationError
from tests.fakes.generic import FakeGateway
from tests.fakes.server import serve
from tests.integration.dispatch_support import add_provider

WHAT: dict[str, Any] = {
    "route": {"provider": "gw"},
    "body": 'Sale for {{ profile.name | default: "you" }}',
    "generic": {"template_id": "TPL-9", "template_variables": ["{{ profile.name }}", "20"],
                "body_values": {"City": "{{ profile.city | upcase }}"},
                "global_values": {"Glob": "{{ profile.name }}"}, "header_values": {"Region": "eu"}},
}


@pytest.fixture(scope="module")
def gateway() -> Iterator[FakeGateway]:
    fake = FakeGateway()
    with serve(fake.app) as server:
        fake.url = server.url
        yield fake


@pytest.fixture
async def world(runtime: Runtime, gateway: FakeGateway) -> Runtime:
    gateway.reset()
    await add_provider(
        runtime, "gw", kind="generic", url=f"{gateway.url}/send",
        params="to=$$To\ntext=$$Body\ntid=$$TemplateID\nvars=$$TemplateVariables\ncity=$$City\nglob=$$Glob",
        headers="X-Region: $$Region", custom_keys="City, Glob, Region",
    )
    now = clock.now()
    async with runtime.factory() as session, session.begin():
        session.add(Profile(user_id="ann", phone="+14155550100", phone_raw="+14155550100", phone_status="valid",
                            sms_capable=True, subscription="unsubscribed", name="Ann", properties={"city": "Paris"},
                            subscription_at=now, created_at=now, updated_at=now))
    return runtime


def _document(**what: Any) -> Any:
    data = {"name": "Spring sale", "type": "one_time", "when": {"at": "now"}, "who": {"segment": "Everyone"},
            "what": {**WHAT, **what}}
    return parse_document(data)[0]


async def test_a_test_is_rendered_as_the_profile_and_carries_the_campaigns_provider_options(
        world: Runtime, gateway: FakeGateway) -> None:
    async with world.factory() as session, session.begin():
        sent = await send_campaign_test(session, _document(), to="+447400123456", profile_ref="ann",
                                        campaign_id=None, default_region=None, actor="test")
    assert sent.preview.text == "Sale for Ann" and sent.route == "provider gw"
    async with httpx.AsyncClient(timeout=5) as client:
        assert await Dispatcher(world.factory, world.box, client, DispatchSettings()).run_once() == 1
    form = dict(gateway.requests[0].form)
    assert (form["to"], form["text"], form["tid"], form["vars"], form["city"], form["glob"]) == (
        "+447400123456", "Sale for Ann", "TPL-9", "Ann,20", "PARIS", "{{ profile.name }}")
    assert gateway.requests[0].header("X-Region") == "eu"
    async with world.factory() as session:
        row = await session.scalar(select(Message).where(Message.id == sent.message.id))
    # A test goes to the operator's number even though Ann unsubscribed: it is not sent to her.
    assert row is not None and (row.kind, row.state, row.body) == ("test", "sent", "Sale for Ann")


async def test_a_test_names_its_campaign(world: Runtime) -> None:
    from smsconsole.services.campaigns import crud

    async with world.factory() as session, session.begin():
        view = await crud.create_campaign(session, {"name": "Spring sale", "type": "one_time",
                                                    "what": WHAT}, actor="test")
        sent = await send_campaign_test(session, _document(), to="+447400123456", campaign_id=view.id,
                                        default_region=None, actor="test")
    assert sent.message.campaign == view.code


@pytest.mark.parametrize(("what", "profile", "field", "words"), [
    ({}, "nobody", "profile", "nobody"),
    ({"body": "{{ profile.name | nosuchfilter }}"}, "ann", "what.body", "nosuchfilter"),
    ({"route": {}}, "ann", "route", "default group"),
    ({"route": {"provider": "gone"}}, "ann", "provider", "gone"),
], ids=["unknown-profile", "bad-body", "no-default-group", "unknown-provider"])
async def test_a_refused_test_names_the_field(world: Runtime, what: dict[str, Any], profile: str, field: str,
                                              words: str) -> None:
    async with world.factory() as session, session.begin():
        with pytest.raises(ValidationError) as caught:
            await send_campaign_test(session, _document(**what), to="+447400123456", profile_ref=profile,
                                     default_region=None, actor="test")
    reason = caught.value.for_field(field)
    assert reason is not None and words in reason, caught.value.problems
    async with world.factory() as session:
        assert await session.scalar(select(Message.id)) is None


async def test_a_bad_number_is_refused_under_to(world: Runtime) -> None:
    async with world.factory() as session, session.begin():
        with pytest.raises(ValidationError) as caught:
            await send_campaign_test(session, _document(), to="+1415555abcd", profile_ref="ann",
                                     default_region=None, actor="test")
    assert caught.value.for_field("to")
