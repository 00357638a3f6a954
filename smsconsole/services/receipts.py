"""Delivery receipts: the one room both doors (webhook listener, pollers) hand their reports to.

Every report is kept as a `receipts` row; it moves its message forward only (DESIGN.md invariant
4: queued → sending → sent → delivered | undelivered | failed, and `unknown` can be settled), so a
late or repeated receipt is a no-op: one row per (provider, provider message id, provider status,
part), kept by a unique key, so even concurrent replays store one. A receipt whose message is not known yet stays pending
(`applied_at` NULL) and is applied when the message appears. Long messages whose provider gives
each part its own id (`message_parts`) resolve to one status: delivered when every part is, failed
or undelivered as soon as one part is. The caller owns the commit: the listener commits before it
answers 2xx, the pollers commit before the cursor moves on (in the same transaction)."""

from __future__ import annotations

import hashlib
import logging
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole import clock
from smsconsole.models import Message, MessagePart, Receipt
from smsconsole.providers.base import SendOutcome, StatusReport

log = logging.getLogger("smsconsole.receipts")

FINAL_STATES = ("delivered", "undelivered", "failed")
# How far along a message is; a receipt only ever raises it. `unknown` sits below `sent`, so any
# receipt settles it; queued, sending and suppressed messages are never touched by a receipt.
_RANK = {"unknown": 1, "sent": 2, "delivered": 3, "undelivered": 3, "failed": 3}
_SETTLEABLE = ("sent", "unknown")
PENDING_WINDOW = timedelta(days=3)  # early receipts are retried this long
CHUNK = 500  # ids per IN (...) list
ID_MAX = 128  # characters a provider's message id column holds
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # NUL (PostgreSQL refuses it) and lone surrogates (not UTF-8)


def safe_text(value: str) -> str:
    """Text as it can be stored on either database: NULs dropped, lone surrogates replaced by U+FFFD.
    A genuine message with such bytes is kept (a STOP followed by a NUL is still a STOP)."""
    return _UNSTORABLE.sub(lambda found: "" if found.group() == "\x00" else "\ufffd", value)


def stored_id(value: str | None) -> str | None:
    """A provider's message id as stored and looked up: safe text, and past 128 characters its head
    and a hash of the whole, so the same id always gives the same key and two ids never share one."""
    if value is None:
        return None
    text = safe_text(value)
    if len(text) <= ID_MAX:
        return text
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
    return f"{text[:ID_MAX - len(digest) - 1]}~{digest}"


def _key_id(report: StatusReport) -> str:
    """What identifies a receipt's message in its unique key: the provider's id, else our echoed
    reference (so receipts of two messages that carry only a reference never clash)."""
    if report.provider_message_id:
        return report.provider_message_id
    return (stored_id(f"ref:{report.ref}") or "") if report.ref else ""


def _storable(report: StatusReport) -> StatusReport:
    def text(value: str | None, limit: int | None = None) -> str | None:
        return None if value is None else safe_text(value)[:limit] if limit else safe_text(value)

    return replace(report, provider_message_id=stored_id(report.provider_message_id),
                   provider_status=text(report.provider_status, 64) or "", recipient=text(report.recipient, 32),
                   error_code=text(report.error_code, 32), reason=text(report.reason), ref=text(report.ref),
                   part=report.part or 0)


@dataclass(frozen=True)
class ApplyResult:
    received: int  # reports handed in
    stored: int  # new receipt rows
    duplicates: int  # reports already stored: nothing done
    applied: int  # receipts matched to their message
    pending: int  # kept until their message appears
    changed: int  # messages whose status moved forward


@dataclass
class _Item:
    """One receipt being matched: a new report, or a pending row being retried."""

    report: StatusReport
    receipt_id: int | None = None
    message_id: int | None = None


def _chunks(values: Sequence[Any]) -> list[Sequence[Any]]:
    return [values[i:i + CHUNK] for i in range(0, len(values), CHUNK)] or []


# --- the door both doors lead to ------------------------------------------------------------


async def apply_status_reports(
    session: AsyncSession, provider_id: int | None, provider_name: str | None,
    reports: Sequence[StatusReport], via: str,
) -> ApplyResult:
    """Store `reports` (one provider's) as receipts and move their messages forward. A handful of
    queries per batch, whatever its size. The caller commits."""
    now = clock.now()
    reports = [_storable(report) for report in reports]
    seen: set[tuple[str, str, int]] = set()
    items: list[_Item] = []
    duplicates = 0
    keys = sorted({_key_id(r) for r in reports if _key_id(r)})
    if keys:
        for chunk in _chunks(keys):
            rows = await session.execute(
                select(Receipt.provider_message_id, Receipt.provider_status, Receipt.part)
                .where(_same_provider(Receipt.provider_id, provider_id), Receipt.provider_message_id.in_(chunk))
            )
            seen.update((pmid, status, part) for pmid, status, part in rows)
    for report in reports:
        if not report.provider_message_id and not report.ref:
            log.info("receipt from %s with neither a message id nor a reference ignored", provider_name)
            continue
        key = (_key_id(report), report.provider_status, report.part or 0)
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        items.append(_Item(report))
    changed = await _settle(session, provider_id, items, now)
    stored = len(items)
    if items:  # a concurrent replay may have stored some since they were looked up: those insert nothing
        dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
        inserted = await session.execute(
            dialect.insert(Receipt).on_conflict_do_nothing().returning(Receipt.__table__.c.id),
            [_receipt_row(item, provider_id, provider_name, via, now) for item in items])
        stored = len(inserted.all())
        duplicates += len(items) - stored
    applied = min(stored, sum(1 for item in items if item.message_id is not None))
    for item in items:
        if item.report.state is None:
            log.info("%s: provider status %r of %s means nothing new; kept, not applied", provider_name,
                     item.report.provider_status, item.report.provider_message_id)
    return ApplyResult(received=len(reports), stored=stored, duplicates=duplicates, applied=applied,
                       pending=max(0, stored - applied), changed=changed)


async def apply_pending_receipts(session: AsyncSession, *, limit: int = 1000) -> int:
    """Apply receipts that arrived before their message was recorded and whose message is now
    known. Only matched ones are read (a join), so unmatched ones cost nothing. Returns how many
    were applied. The caller commits."""
    now = clock.now()
    since = now - PENDING_WINDOW
    pending = (Receipt.applied_at.is_(None), Receipt.received_at >= since)
    by_message = (
        select(Receipt).join(Message, and_(Message.provider_id == Receipt.provider_id,
                                           Message.provider_message_id == Receipt.provider_message_id))
        .where(*pending).order_by(Receipt.id).limit(limit)
    )
    by_part = (
        select(Receipt).join(MessagePart, and_(MessagePart.provider_id == Receipt.provider_id,
                                               MessagePart.provider_message_id == Receipt.provider_message_id))
        .where(*pending).order_by(Receipt.id).limit(limit)
    )
    rows: dict[int, Receipt] = {}
    for query in (by_message, by_part):
        for row in await session.scalars(query):
            rows[row.id] = row
    if not rows:
        return 0
    groups: dict[int | None, list[_Item]] = defaultdict(list)
    for row in sorted(rows.values(), key=lambda r: r.id):
        groups[row.provider_id].append(_Item(_report_of(row), receipt_id=row.id))
    applied = 0
    for provider_id, items in groups.items():
        await _settle(session, provider_id, items, now)
        matched = [{"id": i.receipt_id, "message_id": i.message_id, "applied_at": now}
                   for i in items if i.message_id is not None]
        if matched:  # ORM bulk UPDATE by primary key: one executemany
            await session.execute(update(Receipt), matched, execution_options={"synchronize_session": False})
            applied += len(matched)
    return applied


# --- matching and moving forward -------------------------------------------------------------


def _same_provider(column: Any, provider_id: int | None) -> Any:
    return column.is_(None) if provider_id is None else column == provider_id


async def _settle(session: AsyncSession, provider_id: int | None, items: list[_Item], now: datetime) -> int:
    """Match items to messages (by part id, message id, or our echoed reference) and move those
    messages forward. Sets `item.message_id`; returns how many messages changed."""
    if not items or provider_id is None:
        return 0
    keys = sorted({i.report.provider_message_id for i in items if i.report.provider_message_id})
    part_of: dict[str, tuple[int, int]] = {}  # part's provider id → (part row id, message id)
    message_of: dict[str, int] = {}
    for chunk in _chunks(keys):
        for part_id, pmid, message_id in await session.execute(
            select(MessagePart.id, MessagePart.provider_message_id, MessagePart.message_id)
            .where(MessagePart.provider_id == provider_id, MessagePart.provider_message_id.in_(chunk))
        ):
            part_of[pmid] = (part_id, message_id)
        for message_id, pmid in await session.execute(
            select(Message.id, Message.provider_message_id)
            .where(Message.provider_id == provider_id, Message.provider_message_id.in_(chunk))
        ):
            message_of[pmid] = message_id
    refs = sorted({int(i.report.ref) for i in items
                   if i.report.ref and re.fullmatch(r"\d{1,18}", i.report.ref)
                   and i.report.provider_message_id not in part_of and i.report.provider_message_id not in message_of})
    by_ref: set[int] = set()
    for chunk in _chunks(refs):
        by_ref.update(await session.scalars(
            select(Message.id).where(Message.id.in_(chunk), Message.provider_id == provider_id)))
    for item in items:
        pmid = item.report.provider_message_id or ""
        if pmid in part_of:
            item.message_id = part_of[pmid][1]
        elif pmid in message_of:
            item.message_id = message_of[pmid]
        elif item.report.ref and item.report.ref.isdigit() and int(item.report.ref) in by_ref:
            item.message_id = int(item.report.ref)
    message_ids = sorted({i.message_id for i in items if i.message_id is not None})
    if not message_ids:
        return 0
    # Lock the messages (PostgreSQL) so two receipts for parts of one message resolve in turn.
    states: dict[int, str] = {}
    for chunk in _chunks(message_ids):
        query = select(Message.id, Message.state).where(Message.id.in_(chunk)).order_by(Message.id)
        if session.bind.dialect.name == "postgresql":
            query = query.with_for_update()
        states.update({mid: state for mid, state in await session.execute(query)})
    # Parts first: each part moves forward on its own, then its message follows the parts.
    part_changes: dict[int, str] = {}
    for item in items:
        pmid = item.report.provider_message_id or ""
        state = item.report.state
        if pmid in part_of and state in FINAL_STATES and part_of[pmid][0] not in part_changes:
            part_changes[part_of[pmid][0]] = state
    if part_changes:
        for state in FINAL_STATES:
            ids = [pid for pid, s in part_changes.items() if s == state]
            for chunk in _chunks(ids):
                await session.execute(update(MessagePart).where(MessagePart.id.in_(chunk), MessagePart.state == "sent")
                                      .values(state=state, updated_at=now).execution_options(synchronize_session=False))
    part_messages = sorted({part_of[i.report.provider_message_id or ""][1] for i in items
                            if (i.report.provider_message_id or "") in part_of})
    parts_by_message: dict[int, list[str]] = defaultdict(list)
    for chunk in _chunks(part_messages):
        for message_id, state in await session.execute(
            select(MessagePart.message_id, MessagePart.state).where(MessagePart.message_id.in_(chunk))
        ):
            parts_by_message[message_id].append(state)
    # Where each message goes: the furthest state its receipts (or parts) reach, first final wins.
    target: dict[int, str] = {}
    detail: dict[int, StatusReport] = {}
    for item in items:
        mid, report = item.message_id, item.report
        if mid is None or report.state is None:
            continue
        if mid in parts_by_message:
            state = _resolve_parts(parts_by_message[mid])
        else:
            state = report.state
        current = target.get(mid, states.get(mid, ""))
        if current not in _RANK or current in FINAL_STATES or _RANK[state] <= _RANK[current]:
            continue  # queued/sending/suppressed are not a receipt's to move; finals never move
        target[mid] = state
        detail[mid] = report
    changed = 0
    for state in ("sent", *FINAL_STATES):
        rows = [mid for mid, s in target.items() if s == state]
        allowed = [s for s in _SETTLEABLE if _RANK[s] < _RANK[state]]
        for mid in rows:
            values: dict[str, Any] = {"state": state, "updated_at": now}
            report = detail[mid]
            if state in FINAL_STATES:
                values["finished_at"] = now
            if state in ("failed", "undelivered"):
                values["error_code"] = (report.error_code or None) and report.error_code[:32]
                values["reason"] = report.reason or (
                    f"the provider reported {report.provider_status}"
                    + (f" (error {report.error_code})" if report.error_code else ""))
            elif state == "delivered":
                values["reason"] = None
            else:  # an unknown send settled as sent
                values["reason"] = "the provider's receipt shows it accepted this message"
            result = await session.execute(
                update(Message).where(Message.id == mid, Message.state.in_(allowed)).values(**values)
                .execution_options(synchronize_session=False))
            changed += result.rowcount or 0
    return changed


def _resolve_parts(states: list[str]) -> str:
    if "failed" in states:
        return "failed"
    if "undelivered" in states:
        return "undelivered"
    if states and all(s == "delivered" for s in states):
        return "delivered"
    return "sent"


def _receipt_row(item: _Item, provider_id: int | None, provider_name: str | None, via: str,
                 now: datetime) -> dict[str, Any]:
    report = item.report
    return {
        "provider_id": provider_id, "provider_name": provider_name,
        "provider_message_id": _key_id(report),
        "message_id": item.message_id, "recipient": (report.recipient or None) and report.recipient[:32],
        "provider_status": (report.provider_status or "")[:64], "state": report.state,
        "error_code": (report.error_code or None) and report.error_code[:32],
        "error_kind": report.error_kind.value if report.error_kind else None,
        "reason": report.reason, "part": report.part, "parts": report.parts, "via": via[:8],
        "occurred_at": report.at, "received_at": now,
        # A receipt saying nothing new, or matched now, needs no retry later.
        "applied_at": now if (item.message_id is not None or report.state is None) else None,
    }


def _report_of(row: Receipt) -> StatusReport:
    return StatusReport(
        provider_message_id=row.provider_message_id or None, provider_status=row.provider_status, state=row.state,
        at=row.occurred_at, recipient=row.recipient, error_code=row.error_code, reason=row.reason,
        part=row.part or None, parts=row.parts,
    )


# --- what the dispatcher writes for long messages -----------------------------------------------


def part_rows(message_id: int, provider_id: int | None, outcome: SendOutcome, now: datetime) -> list[dict[str, Any]]:
    """Rows for `message_parts` when a provider gave each part its own id (one receipt per part):
    the dispatcher inserts them with the message's `sent` update, in the same transaction."""
    if len(outcome.part_ids) < 2:
        return []
    return [{"message_id": message_id, "provider_id": provider_id, "provider_message_id": stored_id(part_id),
             "part": index, "state": "sent", "updated_at": now}
            for index, part_id in enumerate(outcome.part_ids, start=1) if part_id]


async def record_parts(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `part_rows(...)` output (one executemany)."""
    if rows:
        await session.execute(insert(MessagePart), list(rows))


# --- looking at receipts ------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceiptView:
    id: int
    provider_name: str | None
    provider_message_id: str
    message_id: int | None
    provider_status: str
    state: str | None
    error_code: str | None
    part: int | None
    via: str
    received_at: datetime
    applied_at: datetime | None


async def message_receipts(session: AsyncSession, message_id: int) -> list[ReceiptView]:
    """A message's receipts in the order they arrived."""
    rows = await session.scalars(select(Receipt).where(Receipt.message_id == message_id).order_by(Receipt.id))
    return [ReceiptView(r.id, r.provider_name, r.provider_message_id, r.message_id, r.provider_status, r.state,
                        r.error_code, r.part or None, r.via, r.received_at, r.applied_at) for r in rows]
