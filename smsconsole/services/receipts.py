"""Delivery receipts: the one room both doors (webhook listener, pollers) hand their reports to.

Every report is kept as a `receipts` row; it moves its message forward only (DESIGN.md invariant
4: queued → sending → sent → delivered | undelivered | failed, and `unknown` can be settled), so a
late or repeated receipt is a no-op: one row per (provider, provider message id, provider status,
part), kept by a unique key, so even concurrent replays store one. A receipt whose message is not known yet stays pending
(`applied_at` NULL) and is applied when the message appears. Long messages whose provider gives
each part its own id (`message_parts`) resolve to one status: delivered when every part is, failed
or undelivered as soon as one part is. The caller owns the commit: the listener commits before it
answers 2xx, the pollers commit before the cursor moves on (in the same transaction).

Prices: a receipt that says what its message cost sets `messages.price` (the provider's later word
wins over its send answer); one without a price never clears a known one. A part's receipt (a part
with its own id, Vonage) prices one part: it sets the message's price only when none is known yet,
as that part's price times the message's parts, since the send answer already summed every part
and a provider charges each part of one message to one destination alike. A receipt kept pending
(its message not recorded yet) keeps its price in the receipts row and prices the message when it is
applied."""

from __future__ import annotations

import hashlib
import logging
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole import clock
from smsconsole.models import Message, MessagePart, Receipt
from smsconsole.providers.base import SendOutcome, StatusReport
from smsconsole.services.receipts_batch import _chunks, _Item, look_up, settle

log = logging.getLogger("smsconsole.receipts")

PENDING_WINDOW = timedelta(days=3)  # early receipts are retried this long
ID_MAX = 128  # characters a provider's message id column holds
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # NUL (PostgreSQL refuses it) and lone surrogates (not UTF-8)


def safe_text(value: str) -> str:
    """Text as it can be stored on either database: NULs dropped, lone surrogates replaced by U+FFFD.
    A genuine message with such bytes is kept (a STOP followed by a NUL is still a STOP)."""
    if value.isascii() and "\x00" not in value:  # the common case, without the regex (no surrogate is ASCII)
        return value
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


_receipts = Receipt.__table__
_SEEN_NO_PROVIDER = select(_receipts.c.provider_message_id, _receipts.c.provider_status, _receipts.c.part).where(
    _receipts.c.provider_id.is_(None), _receipts.c.provider_message_id.in_(bindparam("keys", expanding=True)))
_STORE = {  # a concurrent replay may have stored some since they were looked up: those insert nothing
    "postgresql": postgresql.insert(_receipts).on_conflict_do_nothing().returning(_receipts.c.id),
    "sqlite": sqlite.insert(_receipts).on_conflict_do_nothing().returning(_receipts.c.id),
}


# --- the door both doors lead to ------------------------------------------------------------


async def apply_status_reports(
    session: AsyncSession, provider_id: int | None, provider_name: str | None,
    reports: Sequence[StatusReport], via: str,
) -> ApplyResult:
    """Store `reports` (one provider's) as receipts and move their messages forward. A handful of
    queries per batch, whatever its size. The caller commits."""
    now = clock.now()
    reports = [_storable(report) for report in reports]
    if session.new or session.dirty or session.deleted:
        await session.flush()  # the statements below run on the connection, past the session's autoflush
    conn = await session.connection()
    seen: set[tuple[str, str, int]] = set()
    items: list[_Item] = []
    duplicates = 0
    keys = sorted({_key_id(r) for r in reports if _key_id(r)})
    found = None
    if provider_id is None:  # a provider since removed: kept, matched to nothing
        for chunk in _chunks(keys):
            rows = await conn.execute(_SEEN_NO_PROVIDER, {"keys": chunk})
            seen.update((pmid, status, part) for pmid, status, part in rows)
    elif keys:  # one statement: what is stored already, and the parts and messages named
        found = await look_up(conn, provider_id, keys, {r.provider_message_id for r in reports
                                                        if r.provider_message_id})
        seen.update(found.stored)
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
    changed = await settle(conn, provider_id, items, now, found)
    stored = len(items)
    if items:
        inserted = await conn.execute(_STORE[conn.dialect.name],
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
    conn = await session.connection()
    for provider_id, items in groups.items():
        await settle(conn, provider_id, items, now)
        matched = [{"id": i.receipt_id, "message_id": i.message_id, "applied_at": now}
                   for i in items if i.message_id is not None]
        if matched:  # ORM bulk UPDATE by primary key: one executemany
            await session.execute(update(Receipt), matched, execution_options={"synchronize_session": False})
            applied += len(matched)
    return applied


# --- matching and moving forward: receipts_batch.py ----------------------------------------------


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
        "price": report.price, "price_currency": (report.price_currency or None) and report.price_currency[:3],
        # A receipt matched now, or saying nothing new (no state, no price), needs no retry later.
        "applied_at": now if (item.message_id is not None or (report.state is None and report.price is None))
        else None,
    }


def _report_of(row: Receipt) -> StatusReport:
    return StatusReport(
        provider_message_id=row.provider_message_id or None, provider_status=row.provider_status, state=row.state,
        at=row.occurred_at, recipient=row.recipient, error_code=row.error_code, reason=row.reason,
        part=row.part or None, parts=row.parts, price=row.price, price_currency=row.price_currency,
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
