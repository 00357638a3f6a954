"""The campaigns service an operator drives (services/campaigns/crud.py and lifecycle.py): drafts
keep whatever was filled in, scheduling names every problem at once, edits are checked again,
pause/resume/stop move the campaign's outbox rows set-based, duplicate and soft delete. On a
frozen clock (Monday 2 March 2026, 09:00 UTC; London is on GMT until 29 March), on SQLite and
PostgreSQL; outbox rows and runs are written directly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from smsconsole import clock
from smsconsole.models import AuditEntry, Campaign, CampaignRun, Message
from smsconsole.runtime import Runtime
from smsconsole.services import segments
from smsconsole.services.campaigns import crud, runs
from smsconsole.services.errors import Conflict, NotFound, ValidationError
from tests.integration.dispatch_support import add_group, add_provider

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def document(**sections: Any) -> dict[str, Any]:
    """A complete one-time campaign, with `sections` replacing whole top-level entries."""
    base: dict[str, Any] = {
        "name": "Spring sale",
        "type": "one_time",
        "when": {"timezone": "Europe/London", "at": "2026-03-10 10:00"},
        "who": {"segment": "Londoners", "safety_limit": 1000},
        "what": {"route": {"group": "uk"}, "body": 'Hi {{ profile.name | default: "there" }}, 20% off today'},
    }
    return {**base, **sections}


@pytest.fixture
async def world(runtime: Runtime) -> Runtime:
    """A saved segment "Londoners", a Sandbox provider "sandbox" in a group "uk"."""
    clock.freeze(NOW)
    async with runtime.factory() as session, session.begin():
        await segments.create_segment(session, name="Londoners", definition={"conditions": []}, actor="test")
    await add_group(runtime, "uk", [await add_provider(runtime, "sandbox")])
    return runtime


async def call(rt: Runtime, action: Any, *args: Any, **kwargs: Any) -> Any:
    async with rt.factory() as session, session.begin():
        return await action(session, *args, **kwargs)


async def problems_of(rt: Runtime, action: Any, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        await call(rt, action, *args, **kwargs)
    return caught.value.problems


async def scheduled(rt: Runtime, doc: dict[str, Any] | None = None) -> crud.CampaignView:
    view = await call(rt, crud.create_campaign, doc or document(), actor="test")
    return await call(rt, crud.schedule_campaign, view.code, actor="test")


async def add_run(rt: Runtime, campaign_id: int, *, state: str = "running", planned_at: datetime = NOW,
                  number: int = 1, materialized: bool = True, reason: str | None = None) -> int:
    async with rt.factory() as session, session.begin():
        run = CampaignRun(campaign_id=campaign_id, number=number, planned_at=planned_at, state=state, reason=reason,
                          started_at=planned_at, materialized_at=planned_at if materialized else None,
                          suppressed={}, updated_at=planned_at)
        session.add(run)
        await session.flush()
        return run.id


async def add_messages(rt: Runtime, campaign_id: int | None, run_id: int | None, *states: str) -> list[int]:
    async with rt.factory() as session, session.begin():
        rows = [Message(kind="campaign" if campaign_id else "test", to_number=f"+4474001234{i:02d}", body="",
                        encoding="GSM-7", segments=1, state=state, campaign_id=campaign_id, run_id=run_id,
                        variant="A", render=True, priority=0, attempts=0, created_at=NOW, updated_at=NOW,
                        sent_at=NOW if state == "sent" else None,
                        dedupe_key=f"run:{run_id}:profile:{i}:{campaign_id}")
                for i, state in enumerate(states)]
        session.add_all(rows)
        await session.flush()
        return [row.id for row in rows]


async def states(rt: Runtime, message_ids: list[int]) -> list[tuple[str, str | None]]:
    async with rt.factory() as session:
        rows = await session.execute(select(Message.state, Message.reason).where(Message.id.in_(message_ids))
                                     .order_by(Message.id))
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def run_state(rt: Runtime, run_id: int) -> tuple[str, str | None]:
    async with rt.factory() as session:
        run = await session.get(CampaignRun, run_id)
        assert run is not None
        return run.state, run.reason


async def audit_actions(rt: Runtime) -> list[str]:
    async with rt.factory() as session:
        return list(await session.scalars(select(AuditEntry.action).where(AuditEntry.action.like("campaign.%"))
                                          .order_by(AuditEntry.id)))


# --- drafts -----------------------------------------------------------------------------------


async def test_a_draft_keeps_whatever_was_filled_in(world: Runtime) -> None:
    view = await call(world, crud.create_campaign, {"name": "  Spring   sale ", "type": "recurring",
                                                    "when": {"at": "whenever"}}, actor="ana")
    assert (view.code, view.name, view.type, view.state, view.next_run_at) == ("C1", "Spring sale", "recurring",
                                                                               "draft", None)
    assert view.document == {"name": "Spring sale", "type": "recurring", "when": {"at": "whenever"}}
    partial = await call(world, crud.create_campaign, {"name": "No type yet"}, actor="ana")
    assert (partial.type, partial.document) == ("one_time", {"name": "No type yet"})

    assert await problems_of(world, crud.create_campaign, {"when": {}}, actor="ana") == [
        ("name", "give the campaign a name")]
    assert await problems_of(world, crud.create_campaign, {"name": "Spring sale"}, actor="ana") == [
        ("name", "a campaign named 'Spring sale' already exists")]
    assert (await problems_of(world, crud.create_campaign, {"name": "C7"}, actor="ana"))[0][0] == "name"
    assert await problems_of(world, crud.create_campaign, ["not", "a", "table"], actor="ana") == [
        ("document", "must be a table of fields (name, type, when, who, what)")]
    assert await audit_actions(world) == ["campaign.create", "campaign.create"]


async def test_a_campaign_is_found_by_id_code_or_name(world: Runtime) -> None:
    view = await call(world, crud.create_campaign, {"name": "Spring sale"}, actor="test")
    for ref in (view.id, str(view.id), view.code, view.code.lower(), " Spring sale "):
        assert (await call(world, crud.get_campaign, ref)).id == view.id
    with pytest.raises(NotFound, match="no campaign 'C99'"):
        await call(world, crud.get_campaign, "C99")


# --- scheduling -------------------------------------------------------------------------------


async def test_scheduling_names_every_problem_at_once(world: Runtime) -> None:
    draft = await call(world, crud.create_campaign, document(
        when={"timezone": "Europe/London", "at": "24/12/2026 10:00"},
        who={"segment": "Nobody"},
        what={"route": {"group": "nowhere"}, "body": "Hi {{ profile.name }"},
    ), actor="test")
    problems = dict(await problems_of(world, crud.schedule_campaign, draft.code, actor="test"))
    assert problems.keys() == {"when.at", "who.segment", "what.route.group", "what.body"}
    assert problems["when.at"].startswith("must be a date and time as YYYY-MM-DD HH:MM")
    assert problems["who.segment"] == "no segment named 'Nobody'"
    assert problems["what.route.group"] == "no provider group named 'nowhere'"
    assert problems["what.body"].startswith("line 1, column ")
    assert (await call(world, crud.get_campaign, draft.code)).state == "draft"

    unknown = await call(world, crud.create_campaign, document(
        name="Ad hoc", who={"definition": {"conditions": [{"property": "shoe_size", "op": "equals", "value": 9}]}},
        what={"route": {"provider": "nobody"}, "body": "{{ customer.name }}"}), actor="test")
    problems = await problems_of(world, crud.schedule_campaign, unknown.code, actor="test")
    assert [field for field, _ in problems] == ["who.definition.conditions[0].property", "what.route.provider",
                                                "what.body"]

    assert problems[1][1] == "no provider named 'nobody'" and "unknown variable 'customer'" in problems[2][1]


@pytest.mark.parametrize(("when", "type_", "field"), [
    ({"at": "2026-03-02 08:59"}, "one_time", "when.at"),
    ({"dates": ["2026-01-01 10:00", "2026-03-01 10:00"]}, "multiple_dates", "when.dates"),
    ({"recurrence": {"every": "day", "time": "10:00", "start": "2026-01-01", "end": "2026-03-01"}}, "recurring",
     "when.recurrence"),
], ids=["one-time-past", "dates-past", "recurrence-ended"])
async def test_scheduling_needs_a_run_in_the_future(world: Runtime, when: dict[str, Any], type_: str,
                                                    field: str) -> None:
    draft = await call(world, crud.create_campaign, document(type=type_, when={"timezone": "UTC", **when}),
                       actor="test")
    problems = await problems_of(world, crud.schedule_campaign, draft.code, actor="test")
    assert [name for name, _ in problems] == [field]


async def test_scheduling_checks_the_personalized_generic_values_too(world: Runtime) -> None:
    draft = await call(world, crud.create_campaign, document(what={
        "route": {"group": "uk"}, "body": "Hi",
        "generic": {"template_variables": ["{{ profile.name }}", "{{ profile.name"],
                    "body_values": {"coupon": "{% if %}"}, "header_values": {"X-Key": "{{ not checked"}}}),
        actor="test")
    problems = dict(await problems_of(world, crud.schedule_campaign, draft.code, actor="test"))
    assert problems.keys() == {"what.generic.template_variables.2", "what.generic.body_values.coupon"}
    assert all(reason.startswith("line 1, column ") for reason in problems.values())

async def test_scheduling_plans_the_first_run(world: Runtime) -> None:
    view = await scheduled(world)
    assert (view.state, view.scheduled_at) == ("scheduled", NOW)
    assert view.next_run_at == datetime(2026, 3, 10, 10, 0, tzinfo=UTC)  # 10:00 GMT

    monthly = await scheduled(world, document(name="Month end", type="recurring", when={
        "timezone": "Europe/London",
        "recurrence": {"every": "month", "day_of_month": 31, "time": "10:00", "start": "2026-04-01"}}))
    assert monthly.next_run_at == datetime(2026, 4, 30, 9, 0, tzinfo=UTC)  # the 30th, 10:00 BST
    assert await call(world, crud.upcoming_runs, monthly.code, limit=3) == [
        datetime(2026, 4, 30, 9, 0, tzinfo=UTC), datetime(2026, 5, 31, 9, 0, tzinfo=UTC),
        datetime(2026, 6, 30, 9, 0, tzinfo=UTC)]

    now = await scheduled(world, document(name="Right now", when={"at": "now"}))
    assert now.next_run_at == NOW

    with pytest.raises(Conflict, match="is scheduled: cannot schedule it"):
        await call(world, crud.schedule_campaign, view.code, actor="test")
    assert (await audit_actions(world)).count("campaign.schedule") == 3


async def test_check_campaign_lists_what_scheduling_asks_for(world: Runtime) -> None:
    draft = await call(world, crud.create_campaign, {"name": "Half done", "type": "one_time"}, actor="test")
    assert [field for field, _ in await call(world, crud.check_campaign, draft.code)] == [
        "when.at", "who.segment", "what.body"]
    ready = await call(world, crud.create_campaign, document(name="Ready"), actor="test")
    assert await call(world, crud.check_campaign, ready.code) == []


# --- editing ----------------------------------------------------------------------------------


async def test_a_scheduled_campaign_is_edited_and_checked_again(world: Runtime) -> None:
    view = await scheduled(world)
    bad = document(what={"route": {"group": "uk"}, "body": "{% if %}"}, when={"at": "2020-01-01 10:00"})
    problems = await problems_of(world, crud.update_campaign, view.code, bad, actor="test")
    assert [field for field, _ in problems] == ["what.body", "when.at"]
    assert (await call(world, crud.get_campaign, view.code)).document == document()

    later = document(name="Spring sale, later", when={"timezone": "Europe/London", "at": "2026-04-10 10:00"})
    edited = await call(world, crud.update_campaign, "Spring sale", later, actor="test")
    assert (edited.name, edited.state, edited.next_run_at) == (
        "Spring sale, later", "scheduled", datetime(2026, 4, 10, 9, 0, tzinfo=UTC))
    async with world.factory() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "campaign.update"))
        assert entry is not None and entry.details["fields"] == ["name", "when"]
        assert entry.details["previous_name"] == "Spring sale"

    await add_run(world, view.id, state="completed", planned_at=datetime(2026, 4, 10, 9, 0, tzinfo=UTC))
    await call(world, crud.stop_campaign, view.code, actor="test")
    with pytest.raises(Conflict, match="is stopped: it cannot be changed"):
        await call(world, crud.update_campaign, view.code, later, actor="test")


async def test_a_running_campaign_edits_future_runs_only(world: Runtime) -> None:
    daily = document(type="recurring", when={"timezone": "UTC", "recurrence": {"every": "day", "time": "10:00"}})
    view = await scheduled(world, daily)
    assert view.next_run_at == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    run = await add_run(world, view.id, planned_at=datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    clock.freeze(datetime(2026, 3, 2, 10, 5, tzinfo=UTC))
    async with world.factory() as session, session.begin():
        row = await session.get(Campaign, view.id)
        assert row is not None
        row.state = "running"
    evening = document(type="recurring", when={"timezone": "UTC", "recurrence": {"every": "day", "time": "09:00"}})
    edited = await call(world, crud.update_campaign, view.code, evening, actor="test")
    assert (edited.state, edited.next_run_at) == ("running", datetime(2026, 3, 3, 9, 0, tzinfo=UTC))
    assert edited.last_run is not None and edited.last_run.id == run

    once = await scheduled(world, document(name="Once", when={"at": "now"}))
    await add_run(world, once.id, planned_at=clock.now())
    raised = document(name="Once", when={"at": "now"}, who={"segment": "Londoners", "safety_limit": 5000})
    edited = await call(world, crud.update_campaign, once.code, raised, actor="test")
    assert edited.next_run_at is None  # a one-time campaign runs once


# --- pause, resume, stop ------------------------------------------------------------------------


async def test_pause_holds_the_queue_and_resume_releases_it(world: Runtime) -> None:
    view = await scheduled(world)
    run = await add_run(world, view.id)
    mine = await add_messages(world, view.id, run, "queued", "queued", "sent", "claimed")
    other = await add_messages(world, None, None, "queued")

    paused = await call(world, crud.pause_campaign, view.code, actor="test")
    assert paused.state == "paused" and await run_state(world, run) == ("paused", None)
    assert await states(world, mine) == [("held", None), ("held", None), ("sent", None), ("claimed", None)]
    assert await states(world, other) == [("queued", None)]
    with pytest.raises(Conflict, match="is paused: cannot pause it"):
        await call(world, crud.pause_campaign, view.code, actor="test")

    resumed = await call(world, crud.resume_campaign, view.code, actor="test")
    assert resumed.state == "running" and await run_state(world, run) == ("running", None)
    assert await states(world, mine) == [("queued", None), ("queued", None), ("sent", None), ("claimed", None)]
    with pytest.raises(Conflict, match="is running: cannot resume it"):
        await call(world, crud.resume_campaign, view.code, actor="test")
    assert await audit_actions(world) == ["campaign.create", "campaign.schedule", "campaign.pause", "campaign.resume"]


async def test_a_run_paused_before_its_rows_were_written_goes_back_to_materializing(world: Runtime) -> None:
    view = await scheduled(world)
    run = await add_run(world, view.id, state="materializing", materialized=False)
    await call(world, crud.pause_campaign, view.code, actor="test")
    assert await run_state(world, run) == ("paused", None)
    await call(world, crud.resume_campaign, view.code, actor="test")
    assert await run_state(world, run) == ("materializing", None)


async def test_a_paused_campaign_without_runs_resumes_as_scheduled(world: Runtime) -> None:
    view = await scheduled(world)
    await call(world, crud.pause_campaign, view.code, actor="test")
    resumed = await call(world, crud.resume_campaign, view.code, actor="test")
    assert (resumed.state, resumed.next_run_at) == ("scheduled", view.next_run_at)


async def test_stop_suppresses_what_was_waiting(world: Runtime) -> None:
    view = await scheduled(world)
    run = await add_run(world, view.id)
    mine = await add_messages(world, view.id, run, "queued", "held", "sent", "delivered")
    other = await add_messages(world, None, None, "queued")
    stopped = await call(world, crud.stop_campaign, view.code, actor="test")
    assert (stopped.state, stopped.next_run_at) == ("stopped", None)
    assert await run_state(world, run) == ("stopped", "stopped by an operator")
    assert await states(world, mine) == [("suppressed", "campaign stopped"), ("suppressed", "campaign stopped"),
                                         ("sent", None), ("delivered", None)]
    assert await states(world, other) == [("queued", None)]
    for action in (crud.pause_campaign, crud.resume_campaign, crud.stop_campaign):
        with pytest.raises(Conflict, match="is stopped"):
            await call(world, action, view.code, actor="test")
    draft = await call(world, crud.create_campaign, {"name": "Draft"}, actor="test")
    with pytest.raises(Conflict, match="is draft: cannot stop it"):
        await call(world, crud.stop_campaign, draft.code, actor="test")


async def test_a_blocked_campaign_resumes_after_its_limit_is_raised(world: Runtime) -> None:
    view = await scheduled(world, document(when={"at": "now"}))
    run = await add_run(world, view.id, state="blocked", reason="1,200 qualify, more than the safety limit 1,000",
                        materialized=False)
    async with world.factory() as session, session.begin():
        row = await session.get(Campaign, view.id)
        assert row is not None
        row.state, row.next_run_at = "blocked", None
        row.blocked_reason = "run 1: 1,200 qualify, more than the safety limit 1,000"
    clock.freeze(NOW + timedelta(hours=3))
    raised = document(when={"at": "now"}, who={"segment": "Londoners", "safety_limit": 2000})
    edited = await call(world, crud.update_campaign, view.code, raised, actor="test")
    assert (edited.state, edited.blocked_reason is not None) == ("blocked", True)

    resumed = await call(world, crud.resume_campaign, view.code, actor="test")
    assert (resumed.state, resumed.blocked_reason, resumed.next_run_at) == ("scheduled", None, None)
    assert await run_state(world, run) == ("planned", None)
    # the engine takes the planned run up again, whatever its age, and checks it again (no one qualifies now)
    assert await runs.start_due_runs(world.factory, now=clock.now()) == [run]
    assert await run_state(world, run) == ("materializing", None)


# --- duplicate, delete, segments in use -----------------------------------------------------------


async def test_duplicate_makes_a_new_draft(world: Runtime) -> None:
    view = await scheduled(world)
    first = await call(world, crud.duplicate_campaign, view.code, actor="test")
    second = await call(world, crud.duplicate_campaign, view.code, actor="test")
    named = await call(world, crud.duplicate_campaign, view.code, new_name="Autumn sale", actor="test")
    assert [(v.name, v.state) for v in (first, second, named)] == [
        ("Copy of Spring sale", "draft"), ("Copy of Spring sale (2)", "draft"), ("Autumn sale", "draft")]
    assert named.document == {**document(), "name": "Autumn sale"} and named.next_run_at is None
    assert await problems_of(world, crud.duplicate_campaign, view.code, new_name="Autumn sale", actor="test") == [
        ("name", "a campaign named 'Autumn sale' already exists")]


async def test_delete_is_soft_and_keeps_the_history(world: Runtime) -> None:
    view = await scheduled(world)
    run = await add_run(world, view.id)
    sent, waiting = await add_messages(world, view.id, run, "sent", "queued")
    await call(world, crud.delete_campaign, view.code, actor="test")

    with pytest.raises(NotFound):
        await call(world, crud.get_campaign, view.code)
    assert await call(world, crud.list_campaigns) == []
    assert await states(world, [sent, waiting]) == [("sent", None), ("suppressed", "campaign stopped")]
    async with world.factory() as session:
        row = await session.get(Campaign, view.id)
        assert row is not None and row.deleted_at == NOW and row.state == "stopped"
        assert await session.scalar(select(func.count()).select_from(Message).where(Message.campaign_id == view.id)) == 2
        assert await session.get(CampaignRun, run) is not None
    again = await call(world, crud.create_campaign, document(), actor="test")  # the name is free again
    assert again.code != view.code
    assert (await audit_actions(world))[-3:] == ["campaign.stop", "campaign.delete", "campaign.create"]


async def test_a_segment_used_by_an_active_campaign_cannot_be_deleted(world: Runtime) -> None:
    await call(world, crud.create_campaign, document(name="Draft only"), actor="test")
    async with world.factory() as session:
        segment_id = (await segments.get_segment(session, "Londoners")).id
        assert await segments.campaigns_using_segment(session, segment_id) == []
    view = await scheduled(world)
    await call(world, crud.pause_campaign, view.code, actor="test")
    async with world.factory() as session:
        assert await segments.campaigns_using_segment(session, segment_id) == ["Spring sale"]
    with pytest.raises(Conflict, match="used by scheduled campaign"):
        await call(world, segments.delete_segment, "Londoners", actor="test")
    await call(world, crud.stop_campaign, view.code, actor="test")
    await call(world, segments.delete_segment, "Londoners", actor="test")


# --- reading -----------------------------------------------------------------------------------


async def test_list_and_runs_carry_the_latest_run_and_its_counts(world: Runtime) -> None:
    view = await scheduled(world)
    draft = await call(world, crud.create_campaign, {"name": "Draft"}, actor="test")
    first = await add_run(world, view.id, state="completed", number=1)
    second = await add_run(world, view.id, number=2, planned_at=NOW + timedelta(days=1))
    await add_messages(world, view.id, first, "sent", "delivered", "failed")
    await add_messages(world, view.id, second, "queued", "queued", "sent")

    listed = await call(world, crud.list_campaigns)
    assert [(v.code, v.last_run.number if v.last_run else None) for v in listed] == [(view.code, 2), (draft.code, None)]
    runs = await call(world, crud.list_runs, view.code)
    assert [(r.number, r.state) for r in runs] == [(2, "running"), (1, "completed")]
    assert runs[0].counts is not None and (runs[0].counts.queued, runs[0].counts.sent) == (2, 1)
    assert runs[1].counts is not None and (runs[1].counts.delivered, runs[1].counts.failed) == (1, 1)
