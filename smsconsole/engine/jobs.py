"""What the dispatcher carries for each claimed message on its way through its route, and the
attempts it makes: shared by the dispatcher, the send gate (engine/gate.py) and the outcome
writer (engine/outcomes.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from smsconsole.engine.routing import ProviderEntry
from smsconsole.providers.base import ProviderError, SendOutcome


@dataclass(eq=False)
class Job:
    """One claimed message on its way through its route."""

    row: Any  # engine/claims.Claimed, or as personalize.py rendered it (the same fields)
    route: tuple[int, ...]
    via: str
    options: Mapping[str, str] = field(default_factory=dict)  # provider options (campaign DLT, Generic values)
    position: int = 0  # index into route of the provider to try next
    priority: bool = False
    retried_429: bool = False
    skipped_open: bool = False  # a provider was passed over because its circuit was open
    errors: list[ProviderError] = field(default_factory=list)
    final: dict[str, Any] | None = None  # the message's new columns once decided
    parts: list[dict[str, Any]] = field(default_factory=list)
    admitted: bool = False  # marked `sending` by the gate (its request may leave)
    abandoned: bool = False  # the gate refused it: no longer ours to send or settle
    handed_to: int | None = None  # the provider whose bind it went back to the queue for (engine/binds.py)

    @property
    def attempt(self) -> int:
        """This dispatch round's attempt number (the row's count is raised by the gate)."""
        return self.row.attempts + 1


# A message's new columns: its job (None when it was settled before any route), its id, the change.
Final = tuple[Job | None, int, dict[str, Any]]


@dataclass
class Attempt:
    message_id: int
    provider: ProviderEntry
    started_at: datetime
    finished_at: datetime
    outcome: SendOutcome | None
    error: ProviderError | None
