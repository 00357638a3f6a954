"""The built-in Sandbox: needs no account, accepts messages and keeps them, and fails on demand
(recipients matching a pattern, or a share of all messages) so a new user sees every outcome.

It also produces delivery receipts: what becomes of each message (delivered, undelivered or
failed, from the receipt settings) is decided when it is sent and written into its message id,
with the time it was sent, so `fetch_statuses` can answer from the id alone after the receipt
delay, with no store — the engine asks it like any provider's status API."""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from smsconsole import clock

from smsconsole.providers.base import (
    Capabilities,
    ConfigField,
    ConnectionCheck,
    ErrorKind,
    ErrorRule,
    ErrorRules,
    OutboundMessage,
    Provider,
    SendOutcome,
    StatusReport,
)

# SBX + sent time (ms since the epoch, 12 hex digits) + outcome letter + 8 random hex digits.
_ID = re.compile(r"SBX([0-9A-F]{12})([DUF])([0-9A-F]{8})")
_OUTCOMES = {"D": ("DELIVRD", "delivered", None), "U": ("UNDELIV", "undelivered", "SANDBOX-UNDELIVERED"),
             "F": ("REJECTD", "failed", "SANDBOX-FAILED")}

# The refusals the sandbox simulates.
_REJECTED = ErrorRule("SANDBOX-REJECTED", ErrorKind.PERMANENT, "sandbox: recipient matches the fail pattern")
_TRANSIENT = ErrorRule("SANDBOX-TRANSIENT", ErrorKind.TRANSIENT, "sandbox: simulated transient failure")
ERROR_RULES = ErrorRules(_REJECTED, _TRANSIENT)


def _regex(value: str) -> str | None:
    try:
        re.compile(value)
    except re.error as exc:
        return f"is not a valid regular expression: {exc}"
    return None


def _seconds(value: str) -> str | None:
    try:
        number = float(value)
    except ValueError:
        return "must be a number of seconds from 0 to 3600"
    return None if 0 <= number <= 3600 else "must be a number of seconds from 0 to 3600"


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
        ConfigField(
            "receipt_delay", "Receipt delay (s)", validator=_seconds, default="2",
            help="Seconds after sending when the delivery receipt arrives, 0–3600",
        ),
        ConfigField(
            "undelivered_pattern", "Undelivered for numbers matching", validator=_regex, placeholder=r"^\+1555000",
            help="A regular expression; accepted messages to matching recipients get an 'undelivered' receipt",
        ),
        ConfigField(
            "undelivered_rate", "Undelivered rate (%)", validator=_percent, default="0",
            help="Share of other accepted messages whose receipt says 'undelivered', 0–100",
        ),
        ConfigField(
            "failed_receipt_pattern", "Failed receipt for numbers matching", validator=_regex,
            placeholder=r"^\+1555999",
            help="A regular expression; accepted messages to matching recipients get a 'failed' receipt",
        ),
    )
    capabilities = Capabilities(max_batch=1, max_body_chars=1600,
                                status_lookup=True, receipt_delay_field="receipt_delay")

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
                outcomes.append(SendOutcome(ref=message.ref, error=_REJECTED.error(code=_REJECTED.code)))
            elif rate and self._rng.random() * 100 < rate:
                outcomes.append(SendOutcome(ref=message.ref, error=_TRANSIENT.error(code=_TRANSIENT.code)))
            else:
                self.accepted.append(message)
                outcomes.append(
                    SendOutcome(ref=message.ref, provider_message_id=self._message_id(message.to),
                                provider_status="accepted")
                )
        return outcomes

    def _message_id(self, to: str) -> str:
        failed, undelivered = self.setting("failed_receipt_pattern"), self.setting("undelivered_pattern")
        rate = float(self.setting("undelivered_rate") or 0)
        if failed and re.search(failed, to):
            letter = "F"
        elif (undelivered and re.search(undelivered, to)) or (rate and self._rng.random() * 100 < rate):
            letter = "U"
        else:
            letter = "D"
        millis = int(clock.now().timestamp() * 1000)
        return f"SBX{millis:012X}{letter}{uuid.uuid4().hex[:8].upper()}"

    @property
    def receipt_delay(self) -> float:
        return float(self.setting("receipt_delay") or 0)

    async def fetch_statuses(self, provider_message_ids: Sequence[str]) -> list[StatusReport]:
        """The receipt of every message whose receipt delay has passed; nothing yet for the others
        (and nothing for ids this sandbox did not issue)."""
        now = clock.now()
        delay = timedelta(seconds=self.receipt_delay)
        reports = []
        for provider_message_id in provider_message_ids:
            match = _ID.fullmatch(provider_message_id or "")
            if match is None:
                continue
            sent = datetime.fromtimestamp(int(match.group(1), 16) / 1000, UTC)
            if now < sent + delay:
                continue
            status, state, code = _OUTCOMES[match.group(2)]
            reports.append(StatusReport(
                provider_message_id=provider_message_id, provider_status=status, state=state, at=sent + delay,
                error_code=code, error_kind=ErrorKind.PERMANENT if state == "failed" else (
                    ErrorKind.TRANSIENT if state == "undelivered" else None),
                reason={"undelivered": "sandbox: the handset was unreachable (undelivered pattern or rate)",
                        "failed": "sandbox: the carrier rejected it (failed receipt pattern)"}.get(state),
            ))
        return reports

    async def check_connection(self) -> ConnectionCheck:
        return ConnectionCheck(ok=True, detail="sandbox is always reachable; no message leaves this machine")
