"""The What step's preview and `@` menu against a real database: the body rendered for a chosen
profile, the audience's first reachable profile, or the built-in sample; counts, encoding,
segments and the characters forcing UCS-2; the run abort write."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from smsconsole import clock
from smsconsole.models import Campaign, CampaignRun, Message, Profile, PropertyDef
from smsconsole.runtime import Runtime
from smsconsole.services.campaigns.definition import parse_document
from smsconsole.services.campaigns.render import abort_run, known_properties, preview
from smsconsole.services.errors import NotFound
from tests.integration.dispatch_support import message_row, queue


def _document(body: str, who: dict[str, Any] | None = None) -> Any:
    document, _ = parse_document({"name": "P", "type": "one_time", "who": who or {}, "what": {"body": body}})
    return document


async def _people(rt: Runtime) -> None:
    now = clock.now()
    async with rt.factory() as session, session.begin():
        session.add_all([
            Profile(user_id="u-never", phone="+14155550100", phone_status="valid", sms_capable=True, name="Nora",
                    subscription="never", country="US", properties={"city": "Reno"}, subscription_at=now, created_at=now, updated_at=now),
            Profile(user_id="u-zoe", phone="+447700900123", phone_status="valid", sms_capable=True, name="Zoë",
                    subscription="subscribed", country="GB", properties={"city": "Leeds"}, subscription_at=now, created_at=now,
                    updated_at=now),
            Profile(user_id="u-bo", phone="+14155550101", phone_status="valid", sms_capable=True, name="Bo",
                    subscription="subscribed", country="US", properties={"city": "Reno"}, subscription_at=now, created_at=now,
                    updated_at=now),
        ])
        session.add_all([PropertyDef(scope="profile", name="city", type="string"),
                         PropertyDef(scope="event:order", name="total", type="number")])


async def test_preview_for_the_first_reachable_profile_of_the_audience(runtime: Runtime) -> None:
    await _people(runtime)
    async with runtime.factory() as session:
        shown = await preview(session, _document("Hi {{ profile.name }} in {{ profile.city }} 🎉"), profile_ref=None)
        assert (shown.text, shown.problem, shown.profile_label) == ("Hi Zoë in Leeds 🎉", None, "Zoë (u-zoe)")
        assert (shown.chars, shown.encoding, shown.segments) == (17, "UCS-2", 1)
        assert shown.ucs2_chars == ("ë", "🎉")
        ad_hoc = {"definition": {"conditions": [{"field": "country", "op": "equals", "value": "US"}]}}
        shown = await preview(session, _document("Hi {{ profile.name }}", ad_hoc), profile_ref=None)
        assert shown.text == "Hi Bo" and shown.encoding == "GSM-7" and shown.ucs2_chars == ()


async def test_preview_for_a_chosen_profile_or_the_sample(runtime: Runtime) -> None:
    await _people(runtime)
    async with runtime.factory() as session:
        shown = await preview(session, _document("Hi {{ profile.name }}"), profile_ref="u-never")
        assert (shown.text, shown.profile_label) == ("Hi Nora", "Nora (u-never)")
        shown = await preview(session, _document("Hi {{ profile.name }}"), profile_ref="+14155550101")
        assert shown.text == "Hi Bo"
        with pytest.raises(NotFound):
            await preview(session, _document("Hi"), profile_ref="nobody")
        nobody = {"definition": {"conditions": [{"field": "country", "op": "equals", "value": "FR"}]}}
        shown = await preview(session, _document("Hi {{ profile.name }}", nobody), profile_ref=None)
        assert (shown.text, shown.profile_label) == ("Hi Alex", "sample profile (Alex)")


async def test_preview_names_the_problem(runtime: Runtime) -> None:
    async with runtime.factory() as session:
        shown = await preview(session, _document("{{ profile.vip }}"), profile_ref=None)
        assert (shown.text, shown.segments, shown.problem) == ("", 0, "the message came out empty")
        shown = await preview(session, _document("Hi {{ profile.name | shout }}"), profile_ref=None)
        assert shown.problem == "the template has an error at line 1, column 22: unknown filter 'shout'"


async def test_known_properties_for_the_at_menu(runtime: Runtime) -> None:
    await _people(runtime)
    async with runtime.factory() as session:
        assert await known_properties(session) == [
            "profile.user_id", "profile.phone", "profile.name", "profile.country", "profile.timezone",
            "profile.properties.city"]


async def test_abort_run_fails_the_run_and_suppresses_what_is_waiting(runtime: Runtime) -> None:
    now = clock.now()
    async with runtime.factory() as session, session.begin():
        campaign = Campaign(name="C", type="one_time", state="running", document={}, created_at=now, updated_at=now)
        session.add(campaign)
        await session.flush()
        run = CampaignRun(campaign_id=campaign.id, number=1, planned_at=now, state="running", document={},
                          suppressed={}, updated_at=now)
        session.add(run)
        await session.flush()
        campaign_id, run_id = campaign.id, run.id
    ids = await queue(runtime, *[message_row(n, kind="campaign", campaign_id=campaign_id, run_id=run_id, state=state)
                                 for n, state in enumerate(["queued", "held", "sent"])])
    async with runtime.factory() as session, session.begin():
        assert await abort_run(session, run_id, "linked content failed") == 2
    async with runtime.factory() as session, session.begin():
        assert await abort_run(session, run_id, "again") == 0
    async with runtime.factory() as session:
        states = list(await session.execute(select(Message.state, Message.reason).where(Message.id.in_(ids))
                                            .order_by(Message.id)))
        run_row = await session.get(CampaignRun, run_id)
    reason = "run aborted: linked content failed"
    assert [tuple(s) for s in states] == [("suppressed", reason), ("suppressed", reason), ("sent", None)]
    assert run_row is not None and (run_row.state, run_row.reason) == ("failed", reason)
