"""The receipts service (DESIGN.md invariant 4): receipts move a message forward only, a repeat is
a no-op, an early receipt waits for its message, and the parts of a long message resolve to one
status. Against a real database (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from sqlalchemy import func, select

from smsconsole import clock
from smsconsole.models import Message, Provider as ProviderRow, Receipt
from smsconsole.providers.base import SendOutcome, StatusReport
from smsconsole.runtime import Runtime
from smsconsole.services import providers
from smsconsole.services.receipts import (
    ApplyResult,
    apply_pending_receipts,
    apply_status_reports,
    message_receipts,
    part_rows,
    record_parts,
)


async def _provider(rt: Runtime, name: str = "sbx") -> int:
    async with rt.factory() as session, session.begin():
        await providers.create_provider(session, rt.box, kind="sandbox", name=name, values={}, actor="test")
        return int(await session.scalar(select(ProviderRow.id).where(ProviderRow.name == name)))


async def _message(rt: Runtime, provider_id: int, pmid: str | None, state: str = "sent",
                   part_ids: Sequence[str] = ()) -> int:
    now = clock.now()
    async with rt.factory() as session, session.begin():
        row = Message(kind="test", priority=0, provider_id=provider_id, provider_name="sbx", to_number="+14155550123",
                      body="hi", encoding="GSM-7", segments=max(1, len(part_ids)), state=state,
                      provider_message_id=pmid, attempts=1, created_at=now, updated_at=now,
                      sent_at=now if state == "sent" else None)
        session.add(row)
        await session.flush()
        if part_ids:
            outcome = SendOutcome(ref=str(row.id), provider_message_id=part_ids[0], part_ids=tuple(part_ids))
            await record_parts(session, part_rows(row.id, provider_id, outcome, now))
        return row.id


async def _apply(rt: Runtime, provider_id: int, *reports: StatusReport, via: str = "webhook") -> ApplyResult:
    async with rt.factory() as session, session.begin():
        return await apply_status_reports(session, provider_id, "sbx", reports, via)


async def _state(rt: Runtime, message_id: int) -> str:
    async with rt.factory() as session:
        return str(await session.scalar(select(Message.state).where(Message.id == message_id)))


def report(pmid: str, state: str | None, status: str | None = None, **extra: object) -> StatusReport:
    return StatusReport(provider_message_id=pmid, provider_status=status or (state or "weird"), state=state,
                        **extra)  # type: ignore[arg-type]


SEQUENCES = [
    pytest.param(["sent", "delivered"], "delivered", id="in-order"),
    pytest.param(["delivered", "sent"], "delivered", id="late-sent-never-moves-back"),
    pytest.param(["undelivered", "delivered"], "undelivered", id="first-final-wins"),
    pytest.param(["failed", "sent", "delivered"], "failed", id="failed-stays-failed"),
    pytest.param(["sent"], "sent", id="sent-stays-sent"),
    pytest.param([None], "sent", id="meaningless-status-ignored"),
]


@pytest.mark.parametrize(("states", "expected"), SEQUENCES)
async def test_status_only_moves_forward(runtime: Runtime, states: list[str | None], expected: str) -> None:
    provider_id = await _provider(runtime)
    message_id = await _message(runtime, provider_id, "P1")
    for state in states:
        await _apply(runtime, provider_id, report("P1", state))
    assert await _state(runtime, message_id) == expected


async def test_the_same_receipt_twice_is_a_no_op(runtime: Runtime) -> None:
    provider_id = await _provider(runtime)
    message_id = await _message(runtime, provider_id, "P1")
    first = await _apply(runtime, provider_id, report("P1", "delivered"))
    assert (first.stored, first.applied, first.changed) == (1, 1, 1)
    second = await _apply(runtime, provider_id, report("P1", "delivered"), report("P1", "delivered"))
    assert (second.stored, second.duplicates, second.changed) == (0, 2, 0)
    async with runtime.factory() as session:
        receipts = await message_receipts(session, message_id)
    assert [(r.state, r.via) for r in receipts] == [("delivered", "webhook")]
    assert await _state(runtime, message_id) == "delivered"


async def test_failed_receipt_records_code_and_reason(runtime: Runtime) -> None:
    provider_id = await _provider(runtime)
    message_id = await _message(runtime, provider_id, "P1")
    await _apply(runtime, provider_id, report("P1", "undelivered", "UNDELIV", error_code="30003"))
    async with runtime.factory() as session:
        row = await session.get(Message, message_id)
    assert row is not None and (row.state, row.error_code) == ("undelivered", "30003")
    assert "UNDELIV" in (row.reason or "") and row.finished_at is not None


async def test_unknown_is_settled_by_a_receipt_matched_by_our_reference(runtime: Runtime) -> None:
    provider_id = await _provider(runtime)
    message_id = await _message(runtime, provider_id, None, state="unknown")
    result = await _apply(runtime, provider_id, StatusReport(provider_message_id="X9", provider_status="DELIVRD",
                                                             state="delivered", ref=str(message_id)))
    assert result.applied == 1 and await _state(runtime, message_id) == "delivered"


async def test_queued_sending_and_suppressed_are_not_a_receipts_to_move(runtime: Runtime) -> None:
    provider_id = await _provider(runtime)
    ids = [await _message(runtime, provider_id, f"Q{n}", state=state)
           for n, state in enumerate(("queued", "sending", "suppressed"))]
    await _apply(runtime, provider_id, *(report(f"Q{n}", "delivered") for n in range(3)))
    assert [await _state(runtime, i) for i in ids] == ["queued", "sending", "suppressed"]


async def test_a_receipt_before_its_message_waits_then_applies(runtime: Runtime) -> None:
    provider_id = await _provider(runtime)
    early = await _apply(runtime, provider_id, report("LATE1", "delivered"), report("NEVER", "delivered"))
    assert (early.stored, early.pending) == (2, 2)
    message_id = await _message(runtime, provider_id, "LATE1")
    async with runtime.factory() as session, session.begin():
        assert await apply_pending_receipts(session) == 1
    assert await _state(runtime, message_id) == "delivered"
    async with runtime.factory() as session, session.begin():
        assert await apply_pending_receipts(session) == 0  # done once; the other still waits
        pending = await session.scalar(select(func.count()).select_from(Receipt).where(Receipt.applied_at.is_(None)))
    assert pending == 1


async def test_receipts_of_another_provider_do_not_match(runtime: Runtime) -> None:
    mine = await _provider(runtime, "sbx")
    other = await _provider(runtime, "other")
    message_id = await _message(runtime, mine, "SAME")
    result = await _apply(runtime, other, report("SAME", "failed"))
    assert result.pending == 1 and await _state(runtime, message_id) == "sent"


MULTIPART = [
    pytest.param([("A2", "delivered")], "sent", id="one-of-three-delivered"),
    pytest.param([("A1", "delivered"), ("A2", "delivered"), ("A3", "delivered")], "delivered", id="all-delivered"),
    pytest.param([("A3", "delivered"), ("A1", "delivered"), ("A2", "delivered")], "delivered", id="any-order"),
    pytest.param([("A1", "delivered"), ("A2", "undelivered")], "undelivered", id="one-part-undelivered"),
    pytest.param([("A1", "failed"), ("A2", "delivered"), ("A3", "delivered")], "failed", id="one-part-failed"),
    pytest.param([("A1", "delivered"), ("A1", "undelivered"), ("A2", "delivered"), ("A3", "delivered")],
                 "delivered", id="a-part-never-moves-back"),
]


@pytest.mark.parametrize(("receipts", "expected"), MULTIPART)
@pytest.mark.parametrize("batched", [False, True], ids=["one-by-one", "one-batch"])
async def test_parts_resolve_to_one_status(runtime: Runtime, receipts: list[tuple[str, str]], expected: str,
                                           batched: bool) -> None:
    provider_id = await _provider(runtime)
    message_id = await _message(runtime, provider_id, "A1", part_ids=("A1", "A2", "A3"))
    if batched:
        await _apply(runtime, provider_id, *(report(pmid, state) for pmid, state in receipts))
    else:
        for pmid, state in receipts:
            await _apply(runtime, provider_id, report(pmid, state))
    assert await _state(runtime, message_id) == expected


async def test_an_early_part_receipt_applies_when_the_parts_are_recorded(runtime: Runtime) -> None:
    provider_id = await _provider(runtime)
    await _apply(runtime, provider_id, report("B2", "delivered"), report("B1", "delivered"))
    message_id = await _message(runtime, provider_id, "B1", part_ids=("B1", "B2"))
    async with runtime.factory() as session, session.begin():
        assert await apply_pending_receipts(session) == 2
    assert await _state(runtime, message_id) == "delivered"


async def test_a_large_batch_applies_in_one_go(runtime: Runtime) -> None:
    provider_id = await _provider(runtime)
    ids = [await _message(runtime, provider_id, f"M{n}") for n in range(30)]
    result = await _apply(runtime, provider_id, *(report(f"M{n}", "delivered") for n in range(30)),
                          *(report(f"M{n}", "sent") for n in range(30)), via="poll")
    assert (result.stored, result.applied, result.changed) == (60, 60, 30)
    assert {await _state(runtime, i) for i in ids} == {"delivered"}


def test_part_rows_only_for_several_part_ids() -> None:
    now = clock.now()
    assert part_rows(1, 2, SendOutcome(ref="1", provider_message_id="X", part_ids=("X",)), now) == []
    rows = part_rows(1, 2, SendOutcome(ref="1", provider_message_id="X", part_ids=("X", "Y")), now)
    assert [(r["provider_message_id"], r["part"], r["state"]) for r in rows] == [("X", 1, "sent"), ("Y", 2, "sent")]
