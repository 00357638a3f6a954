"""Guards run when a message is claimed, just before it is sent (DESIGN.md invariant 1): each one
may suppress a message with a reason. The recipients' profiles are loaded once per batch.

To add a guard (frequency caps, DND / quiet hours arrive with campaigns), write a function
`(ClaimedMessage, GuardContext) -> str | None` returning the suppression reason, and append it to
GUARDS, or give the dispatcher its own list. Anything a guard needs per message belongs in
GuardContext, loaded in `load_context` with one query per batch."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from smsconsole.models import Profile

# Kinds exempt from consent: an auto-response (a STOP confirmation, a HELP answer) must reach the
# person who just wrote to us, even after STOP.
CONSENT_EXEMPT_KINDS = frozenset({"auto"})
# Kinds that need an explicit opt-in (subscription "subscribed"); others only need "not opted out".
OPT_IN_REQUIRED_KINDS = frozenset({"campaign"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ClaimedMessage(Protocol):
    id: int
    kind: str
    profile_id: int | None
    to_number: str


@dataclass(frozen=True)
class Recipient:
    profile_id: int
    subscription: str  # subscribed | unsubscribed | never
    subscription_at: datetime | None = None


@dataclass
class GuardContext:
    by_profile: dict[int, Recipient] = field(default_factory=dict)
    by_phone: dict[str, list[Recipient]] = field(default_factory=dict)

    def recipients(self, message: ClaimedMessage) -> list[Recipient]:
        """The profile a message names, else every profile with its number."""
        if message.profile_id is not None:
            found = self.by_profile.get(message.profile_id)
            return [found] if found else []
        return self.by_phone.get(message.to_number, [])

    def number_opted_out(self, number: str) -> bool:
        """An opt-out belongs to the phone number: the number is opted out when the latest
        subscription change among the profiles holding it is an unsubscribe (a later, explicit
        opt-in of one of them, such as START, gives the number back; ties go to the opt-out)."""
        holders = self.by_phone.get(number, [])
        changed = [r for r in holders if r.subscription in ("subscribed", "unsubscribed")]
        if not changed:
            return False
        latest = max(changed, key=lambda r: (r.subscription_at or _EPOCH, r.subscription == "unsubscribed"))
        return latest.subscription == "unsubscribed"


Guard = Callable[[ClaimedMessage, GuardContext], str | None]


def consent_guard(message: ClaimedMessage, context: GuardContext) -> str | None:
    """Never to the opted-out (the profile, or the number whoever holds it); campaign traffic only
    to those who opted in."""
    if message.kind in CONSENT_EXEMPT_KINDS:
        return None
    recipients = context.recipients(message)
    if any(r.subscription == "unsubscribed" for r in recipients):
        return "the recipient unsubscribed from SMS"
    if context.number_opted_out(message.to_number):
        return "this number unsubscribed from SMS (on another profile holding it)"
    if message.kind in OPT_IN_REQUIRED_KINDS and not any(r.subscription == "subscribed" for r in recipients):
        return "the recipient never opted in to SMS" if recipients else "no profile with this number has opted in to SMS"
    return None


GUARDS: list[Guard] = [consent_guard]


async def load_context(session: AsyncSession, messages: Iterable[ClaimedMessage]) -> GuardContext:
    """The profiles of a batch's recipients: by id where a message names one, and every profile
    holding each message's number (an opt-out on any of them counts). One query per batch."""
    messages = [m for m in messages if m.kind not in CONSENT_EXEMPT_KINDS]
    profile_ids = {m.profile_id for m in messages if m.profile_id is not None}
    phones = {m.to_number for m in messages}
    context = GuardContext()
    if not profile_ids and not phones:
        return context
    for profile_id, phone, subscription, at in await session.execute(
        select(Profile.id, Profile.phone, Profile.subscription, Profile.subscription_at)
        .where(or_(Profile.id.in_(profile_ids), Profile.phone.in_(phones)))
    ):
        recipient = Recipient(profile_id, subscription, at)
        if profile_id in profile_ids:
            context.by_profile[profile_id] = recipient
        if phone in phones:
            context.by_phone.setdefault(phone, []).append(recipient)
    return context


def check(message: ClaimedMessage, context: GuardContext, guards: Iterable[Guard]) -> str | None:
    """The first suppression reason a guard gives, or None."""
    for guard in guards:
        reason = guard(message, context)
        if reason:
            return reason
    return None
