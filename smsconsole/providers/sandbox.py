"""The built-in Sandbox: needs no account, accepts messages and keeps them, and fails on demand
(recipients matching a pattern, or a share of all messages) so a new user sees every outcome."""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Sequence

from smsconsole.providers.base import (
    Capabilities,
    ConfigField,
    ConnectionCheck,
    OutboundMessage,
    PermanentError,
    Provider,
    SendOutcome,
    TransientError,
)


def _regex(value: str) -> str | None:
    try:
        re.compile(value)
    except re.error as exc:
        return f"is not a valid regular expression: {exc}"
    return None


def _percent(value: str) -> str | None:
    try:
        number = float(value)
    except ValueError:
        return "must be a number from 0 to 100"
    return None if 0 <= number <= 100 else "must be a number from 0 to 100"


class SandboxProvider(Provider):
    kind = "sandbox"
    display_name = "Sandbox"
    description = "Built in, no account needed: accepts messages and can be told to fail."
    config_fields = (
        ConfigField("sender", "Sender", help="Shown as the sender of sandbox messages", default="SANDBOX"),
        ConfigField(
            "fail_pattern", "Fail numbers matching", validator=_regex, placeholder=r"^\+1555",
            help="A regular expression; recipients that match fail permanently",
        ),
        ConfigField(
            "failure_rate", "Failure rate (%)", validator=_percent, default="0",
            help="Share of other messages that fail with a transient error, 0–100",
        ),
    )
    capabilities = Capabilities(max_batch=1, max_body_chars=1600)

    def __init__(self, *args: object, rng: random.Random | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._rng = rng or random.Random()
        self.accepted: list[OutboundMessage] = []

    async def send(self, messages: Sequence[OutboundMessage]) -> list[SendOutcome]:
        outcomes = []
        pattern = self.setting("fail_pattern")
        rate = float(self.setting("failure_rate") or 0)
        for message in messages:
            if pattern and re.search(pattern, message.to):
                error = PermanentError("sandbox: recipient matches the fail pattern", code="SANDBOX-REJECTED")
                outcomes.append(SendOutcome(ref=message.ref, error=error))
            elif rate and self._rng.random() * 100 < rate:
                error = TransientError("sandbox: simulated transient failure", code="SANDBOX-TRANSIENT")
                outcomes.append(SendOutcome(ref=message.ref, error=error))
            else:
                self.accepted.append(message)
                outcomes.append(
                    SendOutcome(ref=message.ref, provider_message_id=f"SBX{uuid.uuid4().hex[:20].upper()}",
                                provider_status="accepted")
                )
        return outcomes

    async def check_connection(self) -> ConnectionCheck:
        return ConnectionCheck(ok=True, detail="sandbox is always reachable; no message leaves this machine")
