"""Event imports and live campaigns, on both databases with a frozen clock: an import triggers
nothing unless the operator allows it for that import (a backfill of old events texts nobody even
then), a re-imported file sends once, and only event imports take the choice — in the service, the
CLI (`--trigger-campaigns`) and the console's import screen (a checkbox shown for events, off)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select
from textual.widgets import Checkbox, Input, Select, Static

from smsconsole import clock
from smsconsole.app import SmsConsoleApp
from smsconsole.models import AuditEntry, Campaign, CampaignLiveDay, CampaignRun, Message, Profile
from smsconsole.runtime import Runtime
from smsconsole.screens.audience.importing import ImportScreen
from smsconsole.services import imports
from smsconsole.services import profiles as P
from smsconsole.services.errors import ValidationError
from tests.conftest import make_config
from tests.tui.support import make_app, wait_for

NOW = datetime(2026, 12, 24, 10, 0, tzinfo=UTC)
LIVE_SINCE = NOW - timedelta(hours=3)
DEFAULTS = P.AudienceDefaults(region="GB", timezone="UTC")
DOCUMENT = {"name": "Order thanks", "type": "action", "when": {"timezone": "UTC"},
            "who": {"trigger": {"event": "order", "where": [{"property": "amount", "op": "greater", "value": 100}]}},
            "what": {"route": {}, "body": "Thanks for your order of {{ event.amount }}"}}
EVENTS = (
    "user_id,name,at,amount\n"
    "u0,order,2026-12-24T09:58:00Z,120\n"
    "u1,order,2026-12-24T09:59:00Z,150\n"
    "u1,order,2026-12-24T09:59:30Z,20\n"
    "u0,page_view,2026-12-24T09:59:00Z,500\n"
)


async def prepare(rt: Runtime) -> int:
    """Two subscribed people (u0, u1) and a live single-action campaign on orders over 100."""
    async with rt.factory() as session, session.begin():
        await session.execute(insert(Profile), [
            {"user_id": f"u{n}", "phone": f"+4477009{n:05d}", "phone_raw": None, "phone_status": "valid",
             "sms_capable": True, "country": "GB", "timezone": None, "subscription": "subscribed", "properties": {},
             "subscription_at": LIVE_SINCE, "created_at": LIVE_SINCE, "updated_at": LIVE_SINCE} for n in range(2)])
        # the catalog knows the order's amount, as it would after the first order
        await P.record_events(session, [P.prepare_event(
            {"user_id": "u0", "name": "order", "at": "2026-01-01T00:00:00Z", "properties": {"amount": 1}}, DEFAULTS)],
            source="api", defaults=DEFAULTS)
        campaign = Campaign(name=DOCUMENT["name"], type="action", state="running", document=DOCUMENT,
                            created_at=LIVE_SINCE, updated_at=LIVE_SINCE, scheduled_at=LIVE_SINCE)
        session.add(campaign)
        await session.flush()
        session.add(CampaignRun(campaign_id=campaign.id, number=1, planned_at=LIVE_SINCE, state="live",
                                document=DOCUMENT, started_at=LIVE_SINCE, materialized_at=LIVE_SINCE, suppressed={},
                                updated_at=LIVE_SINCE))
        return campaign.id


async def outbox(rt: Runtime) -> list[tuple[int | None, int | None]]:
    async with rt.factory() as session:
        rows = await session.execute(select(Message.profile_id, Message.event_id).where(Message.kind == "campaign")
                                     .order_by(Message.id))
        return [tuple(row) for row in rows.all()]  # type: ignore[misc]


async def late(rt: Runtime) -> int:
    async with rt.factory() as session:
        return int(await session.scalar(select(CampaignLiveDay.late)) or 0)


async def run(rt: Runtime, path: Path, kind: str = "events", **options: Any) -> imports.ImportSummary:
    return await imports.run_import(rt.factory, path, kind, actor="tester", defaults=DEFAULTS, **options)


async def test_imported_events_trigger_nothing_unless_the_import_allows_it(runtime: Runtime, tmp_path: Path) -> None:
    clock.freeze(NOW)
    await prepare(runtime)
    source = tmp_path / "events.csv"
    source.write_text(EVENTS, encoding="utf-8")
    quiet = await run(runtime, source)
    assert (quiet.events_recorded, quiet.triggered_campaigns, quiet.campaign_messages) == (4, False, 0)
    assert await outbox(runtime) == []
    # The same events imported again with the choice on are no new events: still nothing.
    again = await run(runtime, source, trigger_campaigns=True)
    assert (again.events_recorded, again.duplicates, again.campaign_messages) == (0, 4, 0)
    assert await outbox(runtime) == []

    fresh = tmp_path / "fresh.csv"
    fresh.write_text(EVENTS.replace("09:5", "09:4"), encoding="utf-8")
    allowed = await run(runtime, fresh, trigger_campaigns=True)
    assert (allowed.events_recorded, allowed.triggered_campaigns, allowed.campaign_messages) == (4, True, 2)
    assert len(await outbox(runtime)) == 2
    # Re-importing that file sends nothing more.
    repeated = await run(runtime, fresh, trigger_campaigns=True)
    assert (repeated.events_recorded, repeated.campaign_messages) == (0, 0)
    assert len(await outbox(runtime)) == 2
    async with runtime.factory() as session:
        details = [entry.details for entry in await session.scalars(
            select(AuditEntry).where(AuditEntry.action == "import.events").order_by(AuditEntry.id))]
    assert [d.get("campaign_messages") for d in details] == [None, 0, 2, 0]


async def test_a_backfill_of_old_events_texts_nobody_even_when_allowed(runtime: Runtime, tmp_path: Path) -> None:
    clock.freeze(NOW)
    await prepare(runtime)
    source = tmp_path / "backfill.csv"
    source.write_text("user_id,name,at,amount\n"
                      "u0,order,2025-12-24T09:58:00Z,120\n"  # last year: before the campaign went live
                      "u1,order,2026-12-24T08:00:00Z,150\n",  # live then, but two hours old: late
                      encoding="utf-8")
    summary = await run(runtime, source, trigger_campaigns=True)
    assert (summary.events_recorded, summary.campaign_messages) == (2, 0)
    assert await outbox(runtime) == []
    assert await late(runtime) == 1


async def test_only_event_imports_take_the_choice(runtime: Runtime, tmp_path: Path) -> None:
    source = tmp_path / "people.csv"
    source.write_text("user_id,phone\nu9,+447700900123\n", encoding="utf-8")
    with pytest.raises(ValidationError) as caught:
        await run(runtime, source, "profiles", trigger_campaigns=True)
    assert caught.value.problems == [("trigger_campaigns", "only imported events can trigger live campaigns")]


def test_the_cli_flag_allows_an_import_to_trigger(cli, tmp_path: Path, database_url: str) -> None:  # type: ignore[no-untyped-def]
    clock.freeze(NOW)

    async def setup() -> None:
        rt = await Runtime.open(make_config(tmp_path, database_url))
        try:
            await prepare(rt)
        finally:
            await rt.close()

    asyncio.run(setup())
    source = tmp_path / "events.csv"
    source.write_text(EVENTS, encoding="utf-8")
    code, out, _ = cli("import", "events", str(source))
    assert code == 0 and "live campaigns" not in out
    fresh = tmp_path / "fresh.csv"
    fresh.write_text(EVENTS.replace("09:5", "09:4"), encoding="utf-8")
    code, out, _ = cli("import", "events", str(fresh), "--trigger-campaigns")
    assert code == 0
    assert "live campaigns: 2 messages queued for the imported events" in out
    code, out, err = cli("import", "profiles", str(fresh), "--trigger-campaigns")
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        "smsconsole: error: --trigger-campaigns applies to event imports only (smsconsole import events FILE)"]


async def test_the_import_screen_offers_the_choice_for_events_off_by_default(runtime: Runtime, tmp_path: Path) -> None:
    clock.freeze(NOW)
    await prepare(runtime)
    source = tmp_path / "events.csv"
    source.write_text(EVENTS, encoding="utf-8")
    app: SmsConsoleApp = make_app(runtime.config, runtime)
    async with app.run_test(size=(100, 40)) as pilot:
        await app.push_screen(ImportScreen("profiles"))
        await wait_for(pilot, lambda: isinstance(app.screen, ImportScreen), what="the import screen")
        screen = app.screen
        assert isinstance(screen, ImportScreen)
        trigger = screen.query_one("#import-trigger", Checkbox)
        assert not trigger.display  # profiles: no choice
        screen.query_one("#import-kind", Select).value = "events"
        await wait_for(pilot, lambda: trigger.display, what="the choice for events")
        assert trigger.value is False
        screen.query_one("#import-path", Input).value = str(source)
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.preview is not None, what="the preview")
        trigger.value = True
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: screen.query_one("#import-summary").display, what="the summary")
        summary = str(screen.query_one("#import-summary-text", Static).render())
    assert "Live campaigns: 2 messages queued for these events" in summary
    assert len(await outbox(runtime)) == 2
