"""Editing a live campaign through the campaign service (both databases, frozen clock): a date
campaign whose offset changes has its pending due day cancelled, and the engine's scheduler
writes the new day on its next rebuild (a finished backfill starts again after an edit)."""

from __future__ import annotations

from datetime import date

from smsconsole import clock
from smsconsole.engine.campaigns import CampaignScheduler
from smsconsole.runtime import Runtime
from smsconsole.services.campaigns import crud
from smsconsole.services.campaigns.live import due
from smsconsole.services.campaigns.runs import start_due_runs
from tests.integration.dispatch_support import add_provider
from tests.integration.test_live_due import NOW, date_document, dues, the_live, upsert


async def test_an_edited_offset_moves_the_due_day_through_the_service_and_the_engine(runtime: Runtime) -> None:
    clock.freeze(NOW)
    await add_provider(runtime, "sb")
    [person] = await upsert(runtime, [{"user_id": "ann", "phone": "+447400123401", "optin_at": NOW.isoformat(),
                                       "travel_date": "2026-12-10"}])
    document = date_document(route={"provider": "sb"})
    async with runtime.factory() as session, session.begin():
        view = await crud.create_campaign(session, document, actor="test")
        await crud.schedule_campaign(session, view.code, actor="test")
    await start_due_runs(runtime.factory, now=NOW)
    scheduler = CampaignScheduler(runtime.factory)
    await scheduler.start()
    try:
        async def settled() -> list[tuple[object, ...]]:
            for task in list(scheduler._tasks):  # the backfill tasks the rebuild spawned
                await task
            return [(r[0], r[2], r[3]) for r in await dues(runtime, view.id)]

        await scheduler.rebuild()
        assert await settled() == [(person, date(2026, 12, 9), "pending")]
        edited = {**document, "who": {**document["who"], "trigger": {**document["who"]["trigger"], "offset_days": -3}}}
        async with runtime.factory() as session, session.begin():
            await crud.update_campaign(session, view.code, edited, actor="test")
        assert await settled() == [(person, date(2026, 12, 9), "cancelled")]
        await scheduler.rebuild()
        assert await settled() == [(person, date(2026, 12, 7), "pending"), (person, date(2026, 12, 9), "cancelled")]
        assert (await the_live(runtime)).trigger.offset_days == -3
    finally:
        await scheduler.stop()
    assert {r[5] for r in await dues(runtime, view.id) if r[3] == "cancelled"} == {due.REASON_RULE}
