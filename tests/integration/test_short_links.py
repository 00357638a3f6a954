"""Tracked short links on SQLite and PostgreSQL: `{{ url | track }}` in a campaign body becomes
`<domain>/<code>` when the engine renders the message (one link per recipient and message, written
with the body; a re-render re-uses it), previews show a placeholder of the real length, no domain
in Settings is a clear render problem; the listener's `GET /{code}` redirects (302), counts clicks
and previews (bots, HEAD), records `link_click` (a goal event like any other, and a segment
condition), answers 404 and 410 pages; the campaign report counts clicks per variant."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from smsconsole import clock
from smsconsole.cli.campaign_report import report_lines
from smsconsole.engine.dispatcher import Dispatcher, DispatchSettings, dedupe_key
from smsconsole.listener.app import create_app
from smsconsole.models import Campaign, CampaignRun, Event, Message, Profile, ShortLink
from smsconsole.runtime import Runtime
from smsconsole.screens.campaigns.report_panel import summary_text
from smsconsole.services import links as link_service
from smsconsole.services.campaigns.conversions import recompute
from smsconsole.services.campaigns.definition import parse_document
from smsconsole.services.campaigns.render import preview
from smsconsole.services.campaigns.report import build_report, report_csv, report_dict
from smsconsole.services.errors import ValidationError
from smsconsole.services.settings import get_settings, update_settings
from smsconsole.sms import analyze
from tests.integration.dispatch_support import add_provider, message_row, queue

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
DOMAIN = "https://go.example.com"
BODY = 'Hi {{ profile.name }}, your cart: {{ "https://shop.example.com/cart?u=" | append: profile.user_id | track }}'
DOCUMENT: dict[str, Any] = {
    "name": "Cart", "type": "one_time",
    "when": {"timezone": "UTC", "at": "now"},
    "who": {"segment": "Everyone"},
    "what": {"route": {"provider": "sb"}, "body": BODY},
}
SHORT = re.compile(re.escape(DOMAIN) + r"/([0-9A-Za-z]{7})")


@pytest.fixture(autouse=True)
def _frozen() -> None:
    clock.freeze(NOW)


async def _settings(rt: Runtime, **values: str) -> None:
    async with rt.factory() as session, session.begin():
        await update_settings(session, values, "test")


async def _campaign(rt: Runtime, people: list[dict[str, Any]], *, what: dict[str, Any] | None = None,
                    variants: list[str] | None = None, goal: dict[str, Any] | None = None
                    ) -> tuple[int, int, list[int], list[int]]:
    """A Sandbox provider, a running campaign and run, one render-at-claim row per person (variant
    from `variants`, else A). Returns (campaign id, run id, message ids, profile ids)."""
    provider_id = await add_provider(rt, "sb")
    document = copy.deepcopy(DOCUMENT)
    document["what"].update(what or {})
    if goal:
        document["goal"] = goal
    now = clock.now()
    async with rt.factory() as session, session.begin():
        campaign = Campaign(name="Cart", type="one_time", state="running", document=document,
                            created_at=now, updated_at=now)
        session.add(campaign)
        await session.flush()
        run = CampaignRun(campaign_id=campaign.id, number=1, planned_at=now, state="running", document=document,
                          suppressed={}, updated_at=now)
        session.add(run)
        profiles = [Profile(user_id=person.get("user_id"), phone=f"+1415555{n:04d}", phone_raw=f"+1415555{n:04d}",
                            phone_status="valid", sms_capable=True, subscription="subscribed", subscription_at=now,
                            created_at=now, updated_at=now, name=person.get("name"), properties={})
                    for n, person in enumerate(people)]
        session.add_all(profiles)
        await session.flush()
        campaign_id, run_id, profile_ids = campaign.id, run.id, [p.id for p in profiles]
    rows = [message_row(n, kind="campaign", provider_id=provider_id, provider_name="sb", profile_id=profile_id,
                        campaign_id=campaign_id, run_id=run_id, variant=(variants or ["A"] * len(people))[n],
                        render=True, body="", dedupe_key=dedupe_key(run_id, profile_id))
            for n, profile_id in enumerate(profile_ids)]
    return campaign_id, run_id, await queue(rt, *rows), profile_ids


async def _drain(rt: Runtime) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        dispatcher = Dispatcher(rt.factory, rt.box, client, DispatchSettings(batch_size=50))
        while await dispatcher.run_once():
            pass


async def _messages(rt: Runtime, ids: list[int]) -> list[Message]:
    async with rt.factory() as session:
        return list(await session.scalars(select(Message).where(Message.id.in_(ids)).order_by(Message.id)))


async def _links(rt: Runtime) -> list[ShortLink]:
    async with rt.factory() as session:
        return list(await session.scalars(select(ShortLink).order_by(ShortLink.message_id, ShortLink.position)))


def _listener(rt: Runtime) -> httpx.AsyncClient:
    app = create_app(rt.factory, box=rt.box, engine_state=lambda: "running")
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://go.example.com")


# --- settings ------------------------------------------------------------------------------------


async def test_settings_validate_the_domain_and_the_retention(runtime: Runtime) -> None:
    async with runtime.factory() as session:
        values = await get_settings(session)
    assert (values["link_domain"], values["link_retention_days"]) == ("", "90")
    with pytest.raises(ValidationError) as caught:
        async with runtime.factory() as session:
            await update_settings(session, {"link_domain": "go.example.com", "link_retention_days": "0"}, "test")
    assert [field for field, _ in caught.value.problems] == ["link_domain", "link_retention_days"]
    await _settings(runtime, link_domain="https://go.example.com/", link_retention_days="30")
    async with runtime.factory() as session:
        found = await link_service.link_settings(session)
    assert found == link_service.LinkSettings("https://go.example.com", 30)


# --- rendering at claim ---------------------------------------------------------------------------


async def test_each_recipient_gets_a_link_of_their_own_stored_with_the_message(runtime: Runtime) -> None:
    await _settings(runtime, link_domain=DOMAIN, link_retention_days="30")
    campaign_id, run_id, ids, profile_ids = await _campaign(
        runtime, [{"user_id": "u1", "name": "Ann"}, {"user_id": "u2", "name": "Bob"}])
    await _drain(runtime)
    messages = await _messages(runtime, ids)
    assert [m.state for m in messages] == ["sent", "sent"]
    codes = [SHORT.search(m.body).group(1) for m in messages]  # type: ignore[union-attr]
    assert messages[0].body == f"Hi Ann, your cart: {DOMAIN}/{codes[0]}"
    assert codes[0] != codes[1]
    assert messages[0].segments == analyze(messages[0].body).segments
    links = await _links(runtime)
    assert [(link.code, link.url, link.message_id, link.profile_id, link.campaign_id, link.run_id, link.variant,
             link.position, link.clicks) for link in links] == [
        (codes[0], "https://shop.example.com/cart?u=u1", ids[0], profile_ids[0], campaign_id, run_id, "A", 0, 0),
        (codes[1], "https://shop.example.com/cart?u=u2", ids[1], profile_ids[1], campaign_id, run_id, "A", 0, 0)]
    assert all(link.created_at == NOW and link.expires_at == NOW + timedelta(days=30) for link in links)


async def test_a_message_rendered_again_reuses_its_link(runtime: Runtime) -> None:
    await _settings(runtime, link_domain=DOMAIN)
    _, _, ids, _ = await _campaign(runtime, [{"user_id": "u1", "name": "Ann"}])
    await _drain(runtime)
    [first] = await _messages(runtime, ids)
    async with runtime.factory() as session, session.begin():  # retried: back in the queue, to render again
        await session.execute(update(Message).where(Message.id == ids[0]).values(
            state="queued", render=True, body="", sent_at=None, provider_message_id=None))
    await _drain(runtime)
    [again] = await _messages(runtime, ids)
    assert again.state == "sent" and again.body == first.body
    assert len(await _links(runtime)) == 1


async def test_without_a_domain_the_message_is_suppressed_with_a_clear_reason(runtime: Runtime) -> None:
    _, _, ids, _ = await _campaign(runtime, [{"user_id": "u1"}])
    await _drain(runtime)
    [message] = await _messages(runtime, ids)
    assert message.state == "suppressed"
    assert message.reason == "personalization failed: " + link_service.NO_DOMAIN
    assert "set the short-link domain in Settings" in message.reason
    assert await _links(runtime) == []


async def test_a_value_that_is_not_a_url_is_a_render_problem(runtime: Runtime) -> None:
    await _settings(runtime, link_domain=DOMAIN)
    _, _, ids, _ = await _campaign(runtime, [{"user_id": "u1"}],
                                   what={"body": "Go {{ 'javascript:alert(1)' | track }}"})
    await _drain(runtime)
    [message] = await _messages(runtime, ids)
    assert (message.state, message.reason) == (
        "suppressed", "personalization failed: track needs an http(s) URL with a host and no spaces")


async def test_a_taken_code_is_drawn_again(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    async with runtime.factory() as session, session.begin():
        await link_service.create_links(session, [link_service.NewLink("Taken01", "https://a.example", None, 0,
                                                                       None, None, None, None)], retention_days=1)
    draws = iter(["Taken01", "Fresh02"])
    monkeypatch.setattr(link_service, "new_code", lambda: next(draws))
    async with runtime.factory() as session, session.begin():
        link = link_service.NewLink("Taken01", "https://b.example", None, 0, None, None, None, None)
        redrawn = await link_service.create_links(session, [link], retention_days=1)
    assert redrawn == {"Taken01": "Fresh02"} and link.code == "Fresh02"
    assert sorted(link.code for link in await _links(runtime)) == ["Fresh02", "Taken01"]


# --- previews -------------------------------------------------------------------------------------


async def test_previews_show_a_placeholder_of_the_real_length(runtime: Runtime) -> None:
    document, _ = parse_document(DOCUMENT, strict=False)
    async with runtime.factory() as session:
        missing = await preview(session, document)
    assert missing.problem == link_service.NO_DOMAIN
    await _settings(runtime, link_domain=DOMAIN)
    async with runtime.factory() as session:
        shown = await preview(session, document)
    assert shown.problem is None
    assert shown.text == f"Hi Alex, your cart: {DOMAIN}/Ab3x9Kq"
    assert shown.chars == len(f"Hi Alex, your cart: {DOMAIN}/") + link_service.CODE_LENGTH
    assert await _links(runtime) == []  # a preview makes no link


# --- the redirect ---------------------------------------------------------------------------------


async def _one_link(rt: Runtime, **campaign: Any) -> tuple[ShortLink, int]:
    await _settings(rt, link_domain=DOMAIN, link_retention_days="10")
    campaign_id, _, _, _ = await _campaign(rt, [{"user_id": "u1", "name": "Ann"}], **campaign)
    await _drain(rt)
    [link] = await _links(rt)
    return link, campaign_id


async def test_a_click_redirects_counts_and_records_the_event(runtime: Runtime) -> None:
    link, campaign_id = await _one_link(runtime)
    async with _listener(runtime) as client:
        first = await client.get(f"/{link.code}", headers={"User-Agent": "Mozilla/5.0 (iPhone) Safari/604.1"})
        second = await client.get(f"/{link.code}", headers={"User-Agent": "Mozilla/5.0 (iPhone) Safari/604.1"})
    assert (first.status_code, first.headers["location"]) == (302, "https://shop.example.com/cart?u=u1")
    assert second.status_code == 302 and first.headers["cache-control"] == "no-store"
    [row] = await _links(runtime)
    assert (row.clicks, row.previews, row.first_clicked_at, row.last_clicked_at) == (2, 0, NOW, NOW)
    async with runtime.factory() as session:
        events = list(await session.scalars(select(Event).where(Event.name == "link_click")))
    assert len(events) == 2
    assert events[0].profile_id == link.profile_id
    assert events[0].properties == {"campaign": f"C{campaign_id}", "run": link.run_id, "variant": "A",
                                    "url": "https://shop.example.com/cart?u=u1"}


@pytest.mark.parametrize("agent", [
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 (KHTML, like Gecko) (Applebot/0.1)",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "WhatsApp/2.23.20.0 A",
    "TelegramBot (like TwitterBot)", "Mozilla/5.0 (compatible; Discordbot/2.0)", "Twitterbot/1.0",
    "LinkedInBot/1.0", "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5",
    "Mozilla/5.0 (compatible; Googlebot/2.1)", "Mozilla/5.0 (compatible; bingbot/2.0)", "",
])
async def test_link_preview_bots_are_redirected_but_counted_as_previews(runtime: Runtime, agent: str) -> None:
    link, _ = await _one_link(runtime)
    async with _listener(runtime) as client:
        response = await client.get(f"/{link.code}", headers={"User-Agent": agent})
    assert response.status_code == 302
    [row] = await _links(runtime)
    assert (row.clicks, row.previews) == (0, 1)
    async with runtime.factory() as session:
        assert await session.scalar(select(func.count()).select_from(Event).where(Event.name == "link_click")) == 0


async def test_head_is_a_preview(runtime: Runtime) -> None:
    link, _ = await _one_link(runtime)
    async with _listener(runtime) as client:
        response = await client.head(f"/{link.code}", headers={"User-Agent": "Mozilla/5.0 Safari"})
    assert response.status_code == 302
    [row] = await _links(runtime)
    assert (row.clicks, row.previews) == (0, 1)


@pytest.mark.parametrize("path", ["/Zz9Zz9Z", "/abc", "/a%00b%2Fc", "/" + "A" * 5000, "/%F0%9F%98%80%E2%80%AE",
                                  "/code'--", "/..%2F..%2Fetc"])
async def test_unknown_or_malformed_codes_get_a_404_page(runtime: Runtime, path: str) -> None:
    async with _listener(runtime) as client:
        response = await client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Link not found" in response.text


async def test_an_expired_link_answers_410(runtime: Runtime) -> None:
    link, _ = await _one_link(runtime)
    clock.freeze(NOW + timedelta(days=10))
    async with _listener(runtime) as client:
        response = await client.get(f"/{link.code}", headers={"User-Agent": "Mozilla/5.0 Safari"})
    assert response.status_code == 410 and response.headers["content-type"].startswith("text/html")
    assert "expired" in response.text
    clock.freeze(NOW + timedelta(days=10) - timedelta(seconds=1))
    async with _listener(runtime) as client:
        assert (await client.get(f"/{link.code}", headers={"User-Agent": "Mozilla/5.0"})).status_code == 302


async def test_named_routes_still_win(runtime: Runtime) -> None:
    async with _listener(runtime) as client:
        assert (await client.get("/healthz")).json()["database"] == "ok"


# --- report, goal, segment ------------------------------------------------------------------------


async def test_clicks_in_the_report_per_variant_with_the_click_through_rate(runtime: Runtime) -> None:
    await _settings(runtime, link_domain=DOMAIN)
    people = [{"user_id": f"u{n}", "name": f"P{n}"} for n in range(4)]
    campaign_id, _, ids, _ = await _campaign(runtime, people, what={"variants": [
        {"body": BODY, "split": 50}, {"body": "B: {{ 'https://b.example/x' | track }}", "split": 50}]},
        variants=["A", "A", "B", "B"])
    await _drain(runtime)
    async with runtime.factory() as session, session.begin():
        await session.execute(update(Message).where(Message.id.in_(ids)).values(state="delivered", finished_at=NOW))
    codes = {link.message_id: link.code for link in await _links(runtime)}
    browser = {"User-Agent": "Mozilla/5.0 Safari"}
    async with _listener(runtime) as client:
        for message_id in (ids[0], ids[0], ids[1], ids[2]):
            assert (await client.get(f"/{codes[message_id]}", headers=browser)).status_code == 302
        await client.get(f"/{codes[ids[3]]}", headers={"User-Agent": "WhatsApp/2.0"})  # a preview only
    async with runtime.factory() as session:
        report = await build_report(session, campaign_id)
    by_arm = {arm.arm: (arm.clicks, arm.unique_clicks, arm.click_rate) for arm in report.arms}
    assert by_arm == {"A": (3, 2, 1.0), "B": (1, 1, 0.5)}
    assert (report.total.clicks, report.total.unique_clicks, report.total.click_rate) == (4, 3, 0.75)
    assert report_dict(report)["total"]["unique_clicks"] == 3
    csv_text = report_csv(report)
    assert "clicks,unique_clicks,click_rate" in csv_text.splitlines()[0]
    assert "Clicks 4, unique 3, click-through 75.0% of delivered (A 2 100.0%; B 1 50.0%)" in report_lines(report)
    assert "Clicks 4 · unique 3 · click-through 75.0%" in summary_text(report).plain


async def test_a_click_can_be_the_campaign_goal(runtime: Runtime) -> None:
    link, campaign_id = await _one_link(runtime, goal={"event": "link_click", "window": "24h"})
    async with runtime.factory() as session, session.begin():  # sent a minute ago
        await session.execute(update(Message).values(sent_at=NOW - timedelta(minutes=1)))
    async with _listener(runtime) as client:
        await client.get(f"/{link.code}", headers={"User-Agent": "Mozilla/5.0 Safari"})
    async with runtime.factory() as session:
        report = await build_report(session, campaign_id)
    assert report.total.conversions == 1
    async with runtime.factory() as session, session.begin():
        await recompute(session, campaign_id)
    async with runtime.factory() as session:
        assert (await build_report(session, campaign_id)).total.conversions == 1


async def test_clicked_in_campaign_is_a_segment_condition(runtime: Runtime) -> None:
    from smsconsole.services.segments.compiler import segment_condition

    link, campaign_id = await _one_link(runtime)
    async with _listener(runtime) as client:
        await client.get(f"/{link.code}", headers={"User-Agent": "Mozilla/5.0 Safari"})
    definition = {"match": "all", "conditions": [{"event": "link_click", "did": True, "window": "ever", "where": [
        {"property": "campaign", "op": "equals", "value": f"C{campaign_id}"}]}]}
    other = copy.deepcopy(definition)
    other["conditions"][0]["where"][0]["value"] = f"C{campaign_id + 1}"
    async with runtime.factory() as session:
        clicked = list(await session.scalars(select(Profile.user_id).where(
            await segment_condition(session, definition))))
        none = list(await session.scalars(select(Profile.user_id).where(await segment_condition(session, other))))
    assert (clicked, none) == (["u1"], [])


async def test_the_preflight_blocks_a_tracking_body_without_a_domain(
        runtime: Runtime) -> None:
    from smsconsole.services.compliance.preflight import preflight_campaign

    await _campaign(runtime, [{"user_id": "u1", "name": "Ann"}])
    document = {**copy.deepcopy(DOCUMENT), "who": {"definition": {"conditions": [{"reachable": True}]}},
                "when": {"timezone": "UTC", "at": "2026-12-04 12:00"}}
    parsed, problems = parse_document(document, default_timezone="UTC", strict=True)
    assert problems == []
    async with runtime.factory() as session:
        checked = await preflight_campaign(session, parsed, now=NOW)
    [finding] = [f for f in checked.findings if f.code == "short_link_domain"]
    assert finding.severity == "block" and "set the short-link domain in Settings" in finding.fix
    await _settings(runtime, link_domain="https://go.example.com/with/a/much/longer/path/to/push/segments")
    async with runtime.factory() as session:
        checked = await preflight_campaign(session, parsed, now=NOW)
    assert not [f for f in checked.findings if f.code in ("short_link_domain", "personalization")]


async def test_a_code_taken_by_another_engine_meanwhile_is_redrawn_and_the_batch_written_again(
        runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    from smsconsole.engine import personalize

    await _settings(runtime, link_domain=DOMAIN)
    async with runtime.factory() as session, session.begin():  # what the other engine wrote
        await link_service.create_links(session, [link_service.NewLink("Racing1", "https://other.example", None, 0,
                                                                       None, None, None, None)], retention_days=1)
    draws = iter(["Racing1", "Fresh01", "Fresh02"])
    monkeypatch.setattr(link_service, "new_code", lambda: next(draws))
    monkeypatch.setattr(personalize, "new_code", lambda: next(draws))

    async def nothing_taken(session: Any, codes: Any) -> set[str]:  # the race: checked before the other wrote
        return set()

    monkeypatch.setattr(link_service, "taken_codes", nothing_taken)
    _, _, ids, _ = await _campaign(runtime, [{"user_id": "u1", "name": "Ann"}])
    await _drain(runtime)
    [message] = await _messages(runtime, ids)
    assert message.state == "sent" and message.body == f"Hi Ann, your cart: {DOMAIN}/Fresh01"
    assert {(link.code, link.message_id) for link in await _links(runtime)} == {("Racing1", None),
                                                                               ("Fresh01", ids[0])}


async def test_a_database_failure_is_a_503_page_never_a_500(runtime: Runtime, monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    from sqlalchemy.exc import OperationalError

    from smsconsole.listener import links as link_routes

    async def failing(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("SELECT … 'https://secret.example/?token=abc'", {}, Exception("database is locked"))

    monkeypatch.setattr(link_routes, "open_link", failing)
    async with _listener(runtime) as client:
        response = await client.get("/Ab3x9Kq", headers={"User-Agent": "Mozilla/5.0"})
    assert response.status_code == 503 and response.headers["content-type"].startswith("text/html")
    assert "secret" not in caplog.text and "OperationalError" in caplog.text


async def test_a_click_can_trigger_a_live_campaign(runtime: Runtime) -> None:
    link, campaign_id = await _one_link(runtime)
    since = NOW - timedelta(hours=3)
    document = {"name": "Clicked", "type": "action", "when": {"timezone": "UTC"},
                "who": {"trigger": {"event": "link_click", "where": [
                    {"property": "campaign", "op": "equals", "value": f"C{campaign_id}"}]}},
                "what": {"route": {"provider": "sb"}, "body": "Still thinking about {{ event.url }}?"}}
    async with runtime.factory() as session, session.begin():
        live = Campaign(name="Clicked", type="action", state="running", document=document, created_at=since,
                        updated_at=since, scheduled_at=since)
        session.add(live)
        await session.flush()
        session.add(CampaignRun(campaign_id=live.id, number=1, planned_at=since, state="live", document=document,
                                started_at=since, materialized_at=since, suppressed={}, updated_at=since))
        live_id = live.id
    async with _listener(runtime) as client:
        assert (await client.get(f"/{link.code}", headers={"User-Agent": "Mozilla/5.0"})).status_code == 302
    async with runtime.factory() as session:
        queued = list(await session.scalars(select(Message).where(Message.campaign_id == live_id)))
    assert [(m.profile_id, m.state) for m in queued] == [(link.profile_id, "queued")]


async def test_a_tracked_link_in_provider_options_is_made_too(runtime: Runtime) -> None:
    await _settings(runtime, link_domain=DOMAIN)
    _, _, ids, _ = await _campaign(runtime, [{"user_id": "u1", "name": "Ann"}], what={
        "body": "Your order ships today", "generic": {"template_variables": [
            "{{ 'https://shop.example.com/o/' | append: profile.user_id | track }}"]}})
    async with runtime.factory() as session, session.begin():  # rendered before (a retry): only the options render
        await session.execute(update(Message).where(Message.id == ids[0]).values(render=False,
                                                                                 body="Your order ships today"))
    await _drain(runtime)
    [message] = await _messages(runtime, ids)
    [link] = await _links(runtime)
    assert message.state == "sent" and (link.url, link.message_id) == ("https://shop.example.com/o/u1", ids[0])
