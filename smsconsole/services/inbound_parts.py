"""Long replies made whole. A provider forwards a reply longer than one SMS as parts (SMPP UDH or
SAR TLVs, Vonage concat-*), each an `InboundReport` with `part`, `parts` and `concat_ref`. Each part
is held in `inbound_parts` (in the caller's transaction, so it is answered only once committed)
until every part of its set — (provider, sender, reference, part count) — is there; the whole text,
parts in order, then goes through the replies pipeline once (keywords, STOP, the Inbox), dated at
the first part to arrive and identified by the lowest-numbered part's provider message id.

- A part delivered again (a provider retry) changes nothing, also after its set went through:
  finished parts are kept for FINISHED_KEPT. A different text under a finished set's key is a new
  message reusing the reference (phones cycle through 256): the finished set is forgotten.
- A set still incomplete after HOLD is not lost: the engine's chore (`flush_held_parts`) sends the
  parts present through the pipeline as one message, each missing part marked in the text.
- Arrivals and the chore take the set's lock (an advisory lock on PostgreSQL; SQLite writes one
  transaction at a time) and claim parts with `done_at IS NULL`, so two of them never record a
  set twice."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsconsole import clock
from smsconsole.models import InboundPart
from smsconsole.providers.base import InboundReport
from smsconsole.services.receipts import safe_text, stored_id

log = logging.getLogger("smsconsole.replies")

HOLD = timedelta(minutes=10)  # an incomplete set waits this long for its missing parts
FINISHED_KEPT = timedelta(days=1)  # a finished set's parts, to recognise a provider's late retry
MAX_PARTS = 255  # a UDH counts parts in one byte
FLUSH_BATCH = 100  # sets one chore turn sends through at most
FLUSH_SECONDS = 30.0  # the engine chore's interval
MISSING = "…[part {part} of {parts} missing]…"


class Whole(NamedTuple):
    """A set ready for the replies pipeline: the message it makes and the parts it was made of."""

    provider_id: int | None
    provider_name: str | None
    via: str
    report: InboundReport
    received_at: datetime
    part_ids: list[int]


def is_part(report: InboundReport) -> bool:
    """Whether this report is one part of a longer message (else it is a message by itself)."""
    return (bool(report.concat_ref) and report.parts is not None and 1 < report.parts <= MAX_PARTS
            and report.part is not None and 1 <= report.part <= report.parts)


def set_key(provider_id: int | None, sender: str, concat_ref: str, parts: int) -> str:
    basis = "\x1f".join((str(provider_id or ""), sender, concat_ref, str(parts)))
    return hashlib.sha256(basis.encode("utf-8")).hexdigest()


async def hold_part(session: AsyncSession, *, provider_id: int | None, provider_name: str | None,
                    report: InboundReport, via: str) -> Whole | int | None:
    """Hold one part (`is_part(report)`). Returns the Whole when this part completed its set, the
    inbound message id its set became when it is a repeat of a part already recorded, else None
    (held, or a repeat of a part still held). The caller commits."""
    assert report.part is not None and report.parts is not None and report.concat_ref
    now = clock.now()
    sender = safe_text(report.sender or "").strip()[:64]
    text = safe_text(report.text or "")
    key = set_key(provider_id, sender, safe_text(report.concat_ref), report.parts)
    await _lock(session, key)
    seen = (await session.execute(select(InboundPart.done_at, InboundPart.text, InboundPart.inbound_id).where(
        InboundPart.set_key == key, InboundPart.part == report.part))).first()
    if seen is not None:
        done_at, seen_text, inbound_id = seen
        if done_at is None:
            return None  # a repeat of a part still held
        if seen_text == text:
            return inbound_id  # a repeat of a part already recorded
        await session.execute(delete(InboundPart).where(InboundPart.set_key == key, InboundPart.done_at.is_not(None)))
    session.add(InboundPart(
        set_key=key, part=report.part, parts=report.parts, provider_id=provider_id,
        provider_name=provider_name, provider_message_id=stored_id(report.provider_message_id) or None,
        sender=sender, recipient=safe_text(report.recipient)[:64] if report.recipient else None, text=text,
        via=via[:8], occurred_at=report.at, received_at=now,
    ))
    await session.flush()
    held = await session.scalar(select(func.count()).select_from(InboundPart).where(
        InboundPart.set_key == key, InboundPart.done_at.is_(None)))
    if (held or 0) < report.parts:
        return None
    return await _claim(session, key, now)


async def mark_recorded(session: AsyncSession, whole: Whole, inbound_id: int) -> None:
    """Note the inbound message a set became on its parts (a later retry of one answers with it)."""
    await session.execute(update(InboundPart).where(InboundPart.id.in_(whole.part_ids)).values(inbound_id=inbound_id)
                          .execution_options(synchronize_session=False))


async def flush_held_parts(factory: async_sessionmaker[AsyncSession]) -> int:
    """One chore turn: send every set held longer than HOLD (or complete, should an arrival have
    left one) through the replies pipeline, its missing parts marked, each set in its own
    transaction; forget finished sets older than FINISHED_KEPT. How many messages it recorded."""
    # lazy: replies imports this module
    from smsconsole.services.replies import record_whole

    now = clock.now()
    async with factory() as session:  # reads first: an idle turn takes no write lock
        due = list(await session.scalars(
            select(InboundPart.set_key).where(InboundPart.done_at.is_(None)).group_by(InboundPart.set_key)
            .having(or_(func.min(InboundPart.received_at) <= now - HOLD,
                        func.count() >= func.max(InboundPart.parts)))
            .order_by(func.min(InboundPart.received_at)).limit(FLUSH_BATCH)))
        stale = await session.scalar(select(InboundPart.id).where(InboundPart.done_at <= now - FINISHED_KEPT).limit(1))
    if stale is not None:
        async with factory() as session, session.begin():
            await session.execute(delete(InboundPart).where(InboundPart.done_at <= now - FINISHED_KEPT))
    recorded = 0
    for key in due:
        try:
            async with factory() as session, session.begin():
                await _lock(session, key)
                whole = await _claim(session, key, now)
                if whole is not None:
                    await record_whole(session, whole)
                    recorded += 1
        except Exception as exc:  # one set that cannot be recorded must not hold up the others
            log.error("a held long reply could not be recorded (set %s…): %s: %s", key[:12], type(exc).__name__, exc)
    return recorded


async def _lock(session: AsyncSession, key: str) -> None:
    """Serialize the transactions that touch one set (PostgreSQL; SQLite has one writer at a time)."""
    if session.bind.dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(int.from_bytes(bytes.fromhex(key[:16]), signed=True))))


async def _claim(session: AsyncSession, key: str, now: datetime) -> Whole | None:
    """Mark the set's held parts done and make them one message; None when none were left."""
    claimed = list((await session.execute(
        update(InboundPart).where(InboundPart.set_key == key, InboundPart.done_at.is_(None)).values(done_at=now)
        .returning(InboundPart.id).execution_options(synchronize_session=False))).scalars())
    if not claimed:
        return None
    rows = list(await session.scalars(select(InboundPart).where(InboundPart.id.in_(claimed))
                                      .order_by(InboundPart.part).execution_options(populate_existing=True)))
    return assemble(rows)


def assemble(rows: Sequence[InboundPart]) -> Whole:
    """The message a set's parts make (ordered by part): their texts in order, a marker for each
    part missing; the lowest-numbered part's ids and addresses, the earliest arrival's time."""
    first = rows[0]
    parts = max(row.parts for row in rows)
    texts = {row.part: row.text for row in rows}
    text = "".join(texts[n] if n in texts else MISSING.format(part=n, parts=parts) for n in range(1, parts + 1))
    report = InboundReport(provider_message_id=first.provider_message_id, sender=first.sender,
                           recipient=first.recipient, text=text, at=first.occurred_at)
    return Whole(first.provider_id, first.provider_name, first.via, report, min(row.received_at for row in rows),
                 [row.id for row in rows])
