"""Matching a batch of receipts to their messages and moving those messages forward, in a handful
of set-based statements per batch whatever its size (receipts.py is the door; this is the room).

Every statement is built once, at import, as a Core statement with bound parameters (expanding
`IN` lists), and executed on the session's connection: no per-call statement building, no ORM
compilation, and SQLAlchemy's compiled cache keyed on a statement it has already seen. A batch of
receipts costs: one lookup of parts, one of messages (with their state, locked on PostgreSQL),
one per state the batch moves messages to, and the price updates when receipts carry prices.
See receipts.py for the rules (monotonic status, parts, prices)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    bindparam,
    func,
    literal,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from smsconsole.models import Message, MessagePart, Receipt
from smsconsole.providers.base import StatusReport
from smsconsole.services import rollup_batch

FINAL_STATES = ("delivered", "undelivered", "failed")
# How far along a message is; a receipt only ever raises it. `unknown` sits below `sent`, so any
# receipt settles it; queued, sending and suppressed messages are never touched by a receipt.
_RANK = {"unknown": 1, "sent": 2, "delivered": 3, "undelivered": 3, "failed": 3}
_SETTLEABLE = ("sent", "unknown")
CHUNK = 500  # ids per IN (...) list
_REF = re.compile(r"\d{1,18}")


@dataclass
class _Item:
    """One receipt being matched: a new report, or a pending row being retried."""

    report: StatusReport
    receipt_id: int | None = None
    message_id: int | None = None


def _chunks(values: Sequence[Any]) -> list[Sequence[Any]]:
    return [values[i:i + CHUNK] for i in range(0, len(values), CHUNK)] or []


# --- the statements, built once ----------------------------------------------------------------

_messages = Message.__table__
_parts = MessagePart.__table__
_ids = bindparam("ids", expanding=True)
_keys = bindparam("keys", expanding=True)
_allowed = bindparam("allowed", expanding=True)

_receipts = Receipt.__table__
# Everything a batch needs to know, in one round trip: which of its receipts are stored already
# (kind 0: key, status, part), and which parts (1: key, part row, message) and messages (2: key,
# message, state) its provider's ids name. Messages are not locked here: every UPDATE below is
# guarded by the states it may move from, so a concurrent writer is never undone; messages with
# parts are locked when read again (below), so their parts resolve in turn.
_LOOKUP = union_all(
    select(literal(0, Integer).label("kind"), _receipts.c.provider_message_id.label("key"),
           null().label("row_id"), _receipts.c.part.label("number"), _receipts.c.provider_status.label("text"))
    .where(_receipts.c.provider_id == bindparam("pid"), _receipts.c.provider_message_id.in_(
        bindparam("stored", expanding=True))),
    select(literal(1, Integer), _parts.c.provider_message_id, _parts.c.id, _parts.c.message_id,
           null().cast(String))
    .where(_parts.c.provider_id == bindparam("pid"), _parts.c.provider_message_id.in_(_keys)),
    select(literal(2, Integer), _messages.c.provider_message_id, _messages.c.id, null(), _messages.c.state)
    .where(_messages.c.provider_id == bindparam("pid"), _messages.c.provider_message_id.in_(_keys)),
)
_MESSAGES_BY_ID = (select(_messages.c.id, _messages.c.state, _messages.c.provider_id)
                   .where(_messages.c.id.in_(_ids)).order_by(_messages.c.id))
_MESSAGES_BY_ID_LOCKED = _MESSAGES_BY_ID.with_for_update()
_PART_STATES = select(_parts.c.message_id, _parts.c.state).where(_parts.c.message_id.in_(_ids))
_PART_COUNTS = (select(_parts.c.message_id, func.count()).where(_parts.c.message_id.in_(_ids))
                .group_by(_parts.c.message_id))
_SET_PARTS = (update(_parts).where(_parts.c.id.in_(_ids), _parts.c.state == "sent")
              .values(state=bindparam("state"), updated_at=bindparam("now")))
_SET_SENT = (update(_messages).where(_messages.c.id.in_(_ids), _messages.c.state.in_(_allowed))
             .values(state="sent", updated_at=bindparam("now"), reason=bindparam("reason")))
_SET_DELIVERED = (update(_messages).where(_messages.c.id.in_(_ids), _messages.c.state.in_(_allowed))
                  .values(state="delivered", updated_at=bindparam("now"), finished_at=bindparam("now"), reason=None))
_SET_FAILED = (update(_messages).where(_messages.c.id.in_(_ids), _messages.c.state.in_(_allowed))
               .values(state=bindparam("state"), updated_at=bindparam("now"), finished_at=bindparam("now"),
                       error_code=bindparam("error_code"), reason=bindparam("reason")))
_SET_PRICE = (update(_messages).where(_messages.c.id == bindparam("b_id"))
              .values(price=bindparam("b_price"), price_currency=bindparam("b_currency"),
                      updated_at=bindparam("b_now")))
_FILL_PRICE = (update(_messages).where(_messages.c.id == bindparam("b_id"), _messages.c.price.is_(None))
               .values(price=bindparam("b_price"), price_currency=bindparam("b_currency"),
                       updated_at=bindparam("b_now")))
_SENT_REASON = "the provider's receipt shows it accepted this message"


# --- matching and moving forward -------------------------------------------------------------


@dataclass
class Found:
    """What `look_up` found for a batch of one provider's receipts."""

    stored: set[tuple[str, str, int]]  # (receipt key, provider status, part) already stored
    part_of: dict[str, tuple[int, int]]  # part's provider id → (part row id, message id)
    message_of: dict[str, int]  # message's provider id → message id
    states: dict[int, str]  # message id → state


async def look_up(conn: AsyncConnection, provider_id: int, stored_keys: Sequence[str],
                  keys: Sequence[str]) -> Found:
    """Which receipts (by `stored_keys`) are stored already, and the parts and messages `keys`
    name: one statement per CHUNK ids."""
    found = Found(set(), {}, {}, {})
    stored_keys, keys = sorted(stored_keys), sorted(keys)
    for index in range(0, max(len(stored_keys), len(keys)), CHUNK):
        rows = await conn.execute(_LOOKUP, {"pid": provider_id, "stored": stored_keys[index:index + CHUNK],
                                            "keys": keys[index:index + CHUNK]})
        for kind, key, row_id, number, text in rows:
            if kind == 0:
                found.stored.add((key, text, number))
            elif kind == 1:
                found.part_of[key] = (row_id, number)
            elif key not in found.message_of or row_id > found.message_of[key]:  # the latest of a reused id
                found.message_of[key] = row_id
                found.states[row_id] = text
    return found


async def settle(conn: AsyncConnection, provider_id: int | None, items: list[_Item], now: datetime,
                 found: Found | None = None) -> int:
    """Match items to messages (by part id, message id, or our echoed reference) and move those
    messages forward. Sets `item.message_id`; returns how many messages changed. `found` is what
    `look_up` gave for these items' ids, when the caller looked them up already."""
    if not items or provider_id is None:
        return 0
    locking = conn.dialect.name == "postgresql"  # so two receipts for parts of one message resolve in turn
    if found is None:
        found = await look_up(conn, provider_id, (), {i.report.provider_message_id for i in items
                                                      if i.report.provider_message_id})
    part_of, message_of, states = found.part_of, found.message_of, found.states
    refs = {int(i.report.ref) for i in items
            if i.report.ref and _REF.fullmatch(i.report.ref)
            and i.report.provider_message_id not in part_of and i.report.provider_message_id not in message_of}
    # Read (and on PostgreSQL lock) the messages of parts, and those our reference names (if this provider's).
    part_messages = {message_id for _, message_id in part_of.values()}
    others = sorted(refs | part_messages)
    by_ref: set[int] = set()
    for chunk in _chunks(others):
        for message_id, state, owner in await conn.execute(
                _MESSAGES_BY_ID_LOCKED if locking else _MESSAGES_BY_ID, {"ids": chunk}):
            states[message_id] = state
            if message_id in refs and owner == provider_id:
                by_ref.add(message_id)
    for item in items:
        pmid = item.report.provider_message_id or ""
        if pmid in part_of:
            item.message_id = part_of[pmid][1]
        elif pmid in message_of:
            item.message_id = message_of[pmid]
        elif item.report.ref and item.report.ref.isdigit() and int(item.report.ref) in by_ref:
            item.message_id = int(item.report.ref)
    if not any(i.message_id is not None for i in items):
        return 0
    # The rollups move once for the whole batch (on SQLite; per statement on PostgreSQL).
    matched = {i.message_id for i in items if i.message_id is not None}
    async with rollup_batch.deferred(conn, matched):
        await _record_prices(conn, items, part_of, now)
        # Parts first: each part moves forward on its own, then its message follows the parts.
        part_changes: dict[int, str] = {}
        for item in items:
            pmid = item.report.provider_message_id or ""
            state = item.report.state
            if pmid in part_of and state in FINAL_STATES and part_of[pmid][0] not in part_changes:
                part_changes[part_of[pmid][0]] = state
        for state in FINAL_STATES:
            ids = sorted(pid for pid, s in part_changes.items() if s == state)
            for chunk in _chunks(ids):
                await conn.execute(_SET_PARTS, {"ids": chunk, "state": state, "now": now})
        resolving = sorted({part_of[i.report.provider_message_id or ""][1] for i in items
                            if (i.report.provider_message_id or "") in part_of})
        parts_by_message: dict[int, list[str]] = defaultdict(list)
        for chunk in _chunks(resolving):
            for message_id, state in await conn.execute(_PART_STATES, {"ids": chunk}):
                parts_by_message[message_id].append(state)
        # Where each message goes: the furthest state its receipts (or parts) reach, first final wins.
        target: dict[int, str] = {}
        detail: dict[int, StatusReport] = {}
        for item in items:
            mid, report = item.message_id, item.report
            if mid is None or report.state is None:
                continue
            state = _resolve_parts(parts_by_message[mid]) if mid in parts_by_message else report.state
            current = target.get(mid, states.get(mid, ""))
            if current not in _RANK or current in FINAL_STATES or _RANK[state] <= _RANK[current]:
                continue  # queued/sending/suppressed are not a receipt's to move; finals never move
            target[mid] = state
            detail[mid] = report
        # One UPDATE per state (and, for failures, per distinct code and reason), each guarded by the
        # states it may move from, so a concurrent writer that got there first is never undone.
        groups: dict[tuple[str, str | None, str | None], list[int]] = defaultdict(list)
        for mid, state in target.items():
            report = detail[mid]
            if state in ("failed", "undelivered"):
                reason = report.reason or (f"the provider reported {report.provider_status}"
                                           + (f" (error {report.error_code})" if report.error_code else ""))
                groups[(state, (report.error_code or None) and report.error_code[:32], reason)].append(mid)
            else:
                groups[(state, None, None)].append(mid)
        changed = 0
        for (state, error_code, reason), mids in groups.items():
            allowed = [s for s in _SETTLEABLE if _RANK[s] < _RANK[state]]
            for chunk in _chunks(sorted(mids)):
                params: dict[str, Any] = {"ids": chunk, "allowed": allowed, "now": now}
                if state == "delivered":
                    statement = _SET_DELIVERED
                elif state == "sent":  # an unknown send settled as sent
                    statement, params["reason"] = _SET_SENT, _SENT_REASON
                else:
                    statement = _SET_FAILED
                    params.update(state=state, error_code=error_code, reason=reason)
                result = await conn.execute(statement, params)
                changed += result.rowcount or 0
    return changed


async def _record_prices(conn: AsyncConnection, items: list[_Item], part_of: dict[str, tuple[int, int]],
                         now: datetime) -> None:
    """Set the price of matched messages whose receipt says one (see receipts.py): a whole
    message's receipt replaces it, a part's receipt fills it in when unknown."""
    priced = [i for i in items if i.message_id is not None and i.report.price is not None]
    if not priced:
        return
    priced_parts = [i for i in priced if (i.report.provider_message_id or "") in part_of]
    whole: dict[int, StatusReport] = {}
    for item in priced:
        if (item.report.provider_message_id or "") not in part_of and item.message_id is not None:
            whole[item.message_id] = item.report  # the last one of the batch wins
    if whole:
        await conn.execute(_SET_PRICE, [{"b_id": mid, "b_price": r.price, "b_currency": r.price_currency,
                                         "b_now": now} for mid, r in sorted(whole.items())])
    by_message = {item.message_id: item.report for item in priced_parts if item.message_id not in whole}
    if not by_message:
        return
    counts: dict[int, int] = {}
    for chunk in _chunks(sorted(by_message)):
        counts.update({mid: count for mid, count in await conn.execute(_PART_COUNTS, {"ids": chunk})})
    await conn.execute(_FILL_PRICE, [
        {"b_id": mid, "b_price": round((report.price or 0) * max(counts.get(mid, 1), report.parts or 0, 1), 6),
         "b_currency": report.price_currency, "b_now": now} for mid, report in sorted(by_message.items())])


def _resolve_parts(states: list[str]) -> str:
    if "failed" in states:
        return "failed"
    if "undelivered" in states:
        return "undelivered"
    if states and all(s == "delivered" for s in states):
        return "delivered"
    return "sent"
