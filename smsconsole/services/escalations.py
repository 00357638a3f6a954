"""Escalation of transactional messages: "if not delivered within N minutes, send again through
group B" or "POST an alert to this webhook". Steps are rows (message_escalations), so they
survive restarts; the engine's escalation chore calls `run_escalations` every few seconds.

Receipts drive it: a step whose message, or a resend of it, is delivered is cancelled; a due step
is claimed with a conditional UPDATE (pending → firing), so it fires once even when two ticks
overlap. A resend never goes through a provider that the message or an earlier resend already
went through: it goes through the first enabled provider of the group not used before (one whose
circuit breaker is open only when no other is left), and when none is left the step is `skipped`
with that reason and nothing is sent. When a resend goes while the message (or an earlier resend)
still waits in the queue, the waiting one is suppressed ("escalated: …"), so the person gets one
copy, not two. A webhook step is at most once: claimed before the POST, its answer recorded after;
a step left `firing` by an engine that stopped mid-POST becomes `failed` ("interrupted") after
STUCK_AFTER and is not posted again."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from smsconsole import clock
from smsconsole.models import (
    IdempotencyKey,
    Message,
    MessageAttempt,
    MessageEscalation,
    ProviderGroup,
    ProviderGroupMember,
)
from smsconsole.models import Provider as ProviderRow
from smsconsole.services.transactional import IDEMPOTENCY_TTL, KIND, forget_expired_keys

log = logging.getLogger("smsconsole.escalations")

ESCALATION_SECONDS = 5.0  # the engine chore's interval
WEBHOOK_TIMEOUT_SECONDS = 5.0
DUE_BATCH = 100
STUCK_AFTER = timedelta(seconds=60)  # a webhook step `firing` this long: its engine stopped mid-POST
INTERRUPTED = "interrupted: the engine stopped while posting the alert; not posted again (a webhook step fires at most once)"


def _delivered_in_chain() -> Any:
    """True for a step whose message, or a message an earlier step of it sent, is delivered."""
    sibling = aliased(MessageEscalation)
    return exists(select(Message.id).where(
        Message.state == "delivered",
        or_(Message.id == MessageEscalation.message_id,
            Message.id.in_(select(sibling.sent_message_id).where(sibling.message_id == MessageEscalation.message_id,
                                                                 sibling.sent_message_id.is_not(None)))),
    ))


async def cancel_delivered(session: AsyncSession) -> int:
    """Cancel every pending step whose message got through: one statement. The caller commits."""
    result = await session.execute(
        update(MessageEscalation).where(MessageEscalation.state == "pending", _delivered_in_chain())
        .values(state="cancelled", result="delivered before this step was due", fired_at=clock.now())
        .execution_options(synchronize_session=False))
    return result.rowcount or 0  # type: ignore[attr-defined]


async def fail_interrupted(session: AsyncSession, now: Any) -> int:
    """Steps left `firing` for STUCK_AFTER (only a webhook step is `firing` across a commit; the
    engine stopped while it posted, or the POST raised): `failed`, never posted again."""
    result = await session.execute(
        update(MessageEscalation).where(MessageEscalation.state == "firing",
                                        MessageEscalation.fired_at <= now - STUCK_AFTER)
        .values(state="failed", result=INTERRUPTED).execution_options(synchronize_session=False))
    if result.rowcount:  # type: ignore[attr-defined]
        log.warning("%d escalation step(s) were interrupted while posting their alert; marked failed",
                    result.rowcount)  # type: ignore[attr-defined]
    return result.rowcount or 0  # type: ignore[attr-defined]


async def run_escalations(factory: async_sessionmaker[AsyncSession], client: httpx.AsyncClient) -> int:
    """One tick: cancel the steps of delivered messages, forget expired idempotency keys, fire the
    due steps (oldest first, at most DUE_BATCH). How many steps fired."""
    now = clock.now()
    async with factory() as session:  # reads first: an idle tick takes no write lock
        pending = await session.scalar(select(MessageEscalation.id).where(MessageEscalation.state == "pending").limit(1))
        expired = await session.scalar(select(IdempotencyKey.id).where(
            IdempotencyKey.created_at <= now - IDEMPOTENCY_TTL).limit(1))
        stuck = await session.scalar(select(MessageEscalation.id).where(
            MessageEscalation.state == "firing", MessageEscalation.fired_at <= now - STUCK_AFTER).limit(1))
    if pending is not None or expired is not None or stuck is not None:
        async with factory() as session, session.begin():
            if pending is not None:
                await cancel_delivered(session)
            if expired is not None:
                await forget_expired_keys(session)
            if stuck is not None:
                await fail_interrupted(session, now)
    async with factory() as session:
        due = list(await session.scalars(
            select(MessageEscalation.id).where(MessageEscalation.state == "pending",
                                               MessageEscalation.due_at <= clock.now())
            .order_by(MessageEscalation.due_at, MessageEscalation.id).limit(DUE_BATCH)))
    fired = 0
    for step_id in due:
        try:
            fired += await fire_step(factory, client, step_id)
        except Exception:  # one step's failure must not stop the others; it stays `firing`
            log.exception("escalation step %s failed", step_id)
    return fired


async def fire_step(factory: async_sessionmaker[AsyncSession], client: httpx.AsyncClient, step_id: int) -> bool:
    """Fire one due step, if it is still pending (False when another tick took it)."""
    now = clock.now()
    async with factory() as session, session.begin():
        claimed = await session.execute(
            update(MessageEscalation).where(MessageEscalation.id == step_id, MessageEscalation.state == "pending")
            .values(state="firing", fired_at=now).execution_options(synchronize_session=False))
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return False
        step = await session.get(MessageEscalation, step_id, populate_existing=True)
        assert step is not None
        root = await session.get(Message, step.message_id)
        chain = await _chain(session, step.message_id)
        if root is None:  # pragma: no cover - the message cascade-deletes its steps
            step.state, step.result = "skipped", "the message is gone"
            return True
        if await session.scalar(select(Message.id).where(Message.id.in_(chain), Message.state == "delivered").limit(1)):
            step.state, step.result = "cancelled", "delivered before this step was due"
            return True
        if step.action == "group":
            await _resend(session, step, root, chain)
            return True
        payload = _alert(step, root, chain)
        url = step.webhook_url or ""
    state, status, result = await _post(client, url, payload)
    async with factory() as session, session.begin():
        await session.execute(update(MessageEscalation).where(MessageEscalation.id == step_id)
                              .values(state=state, http_status=status, result=result)
                              .execution_options(synchronize_session=False))
    return True


async def _chain(session: AsyncSession, message_id: int) -> list[int]:
    """The message and every resend its steps made."""
    sent = await session.scalars(select(MessageEscalation.sent_message_id).where(
        MessageEscalation.message_id == message_id, MessageEscalation.sent_message_id.is_not(None)))
    return [message_id, *(i for i in sent if i is not None)]


async def _resend(session: AsyncSession, step: MessageEscalation, root: Message, chain: list[int]) -> None:
    group = await session.scalar(select(ProviderGroup).where(ProviderGroup.name == step.group_name))
    if group is None:
        step.state, step.result = "skipped", f"no provider group named {step.group_name!r} any more; nothing sent"
        return
    used_ids = set(await session.scalars(select(MessageAttempt.provider_id).where(
        MessageAttempt.message_id.in_(chain), MessageAttempt.provider_id.is_not(None))))
    used_ids |= set(await session.scalars(select(Message.provider_id).where(
        Message.id.in_(chain), Message.provider_id.is_not(None))))
    members = (await session.execute(
        select(ProviderRow.id, ProviderRow.name, ProviderRow.circuit_state)
        .join(ProviderGroupMember, ProviderGroupMember.provider_id == ProviderRow.id)
        .where(ProviderGroupMember.group_id == group.id, ProviderRow.enabled.is_(True))
        .order_by(ProviderGroupMember.position))).all()
    # In the group's order, a provider whose circuit is open (failing now) last.
    fresh = [(pid, name) for pid, name, circuit in sorted(members, key=lambda m: m[2] == "open")
             if pid not in used_ids]
    if not fresh:
        used = sorted(set(await session.scalars(select(ProviderRow.name).where(ProviderRow.id.in_(used_ids))))) or ["none"]
        step.state = "skipped"
        step.result = (f"no enabled provider of group {group.name!r} left that this message has not gone through "
                       f"(used: {', '.join(used)}); nothing sent")
        return
    provider_id, provider_name = fresh[0]
    now = clock.now()
    row = Message(
        kind=KIND, priority=root.priority, provider_id=provider_id, provider_name=provider_name, group_id=group.id,
        profile_id=root.profile_id, country=root.country, to_number=root.to_number, sender=root.sender,
        body=root.body, encoding=root.encoding, segments=root.segments, state="queued", attempts=0,
        created_at=now, updated_at=now,
    )
    session.add(row)
    await session.flush()
    # a copy still waiting in the queue would make two: it stays behind (claimed ones are already leaving)
    held = await session.execute(
        update(Message).where(Message.id.in_(chain), Message.state == "queued")
        .values(state="suppressed", reason=f"escalated: sent again as message {row.id} through {provider_name}",
                finished_at=now, updated_at=now).execution_options(synchronize_session=False))
    step.state, step.sent_message_id = "fired", row.id
    step.result = f"sent again as message {row.id} through {provider_name} (group {group.name})" + (
        "; the copy still queued was suppressed" if held.rowcount else "")  # type: ignore[attr-defined]


def _alert(step: MessageEscalation, root: Message, chain: list[int]) -> dict[str, Any]:
    def iso(moment: Any) -> str | None:
        return moment.isoformat().replace("+00:00", "Z") if moment is not None else None

    return {
        "event": "message.not_delivered",
        "message": {"id": root.id, "to": root.to_number, "state": root.state, "reason": root.reason,
                    "provider": root.provider_name, "created_at": iso(root.created_at), "sent_at": iso(root.sent_at)},
        "escalation": {"after_minutes": step.after_minutes, "due_at": iso(step.due_at), "resends": chain[1:]},
    }


async def _post(client: httpx.AsyncClient, url: str, payload: dict[str, Any]) -> tuple[str, int | None, str]:
    try:
        response = await client.post(url, json=payload, timeout=WEBHOOK_TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        return "failed", None, f"the alert webhook did not answer: {type(exc).__name__}"
    if response.is_success:
        return "fired", response.status_code, f"alert posted (HTTP {response.status_code})"
    return "failed", response.status_code, f"the alert webhook answered HTTP {response.status_code}"

