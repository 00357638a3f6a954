"""A circuit breaker per provider: consecutive transient or configuration failures take it out of
rotation (open) for a cool-down; then one probe message goes (half-open) and its success puts the
provider back (closed), its failure opens the circuit again for a longer cool-down.

The engine's breaker lives in memory and is written to the provider row (circuit_state,
circuit_failures, circuit_until, health) whenever it changes, so Home and Groups show it live and
a restarted engine resumes from it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from smsconsole import clock

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass
class Circuit:
    state: str = CLOSED
    failures: int = 0  # consecutive
    until: datetime | None = None  # open: out of rotation until then
    opened: int = 0  # times opened in a row without a success: lengthens the cool-down
    probing: bool = False  # half-open: the probe is in flight
    detail: str | None = None
    misconfigured: bool = False  # the last failure was a configuration error: unhealthy at once


@dataclass(frozen=True)
class CircuitSnapshot:
    """What goes to the provider row."""

    state: str
    failures: int
    until: datetime | None
    health: str
    detail: str | None


class CircuitBreaker:
    def __init__(self, threshold: int = 5, cooldown: float = 30.0, max_cooldown: float = 300.0) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.max_cooldown = max_cooldown
        self._circuits: dict[int, Circuit] = {}
        self._dirty: set[int] = set()

    def seed(self, provider_id: int, state: str, failures: int, until: datetime | None) -> None:
        """Start from what the provider row says (a restarted engine resumes the circuit)."""
        if provider_id in self._circuits:
            return
        if state == HALF_OPEN:  # the probe of a dead engine: probe again
            state, until = OPEN, until or clock.now()
        self._circuits[provider_id] = Circuit(state=state if state in (CLOSED, OPEN) else CLOSED,
                                              failures=failures, until=until,
                                              opened=1 if state == OPEN else 0)

    def _get(self, provider_id: int) -> Circuit:
        circuit = self._circuits.get(provider_id)
        if circuit is None:
            circuit = self._circuits[provider_id] = Circuit()
        return circuit

    def _tick(self, provider_id: int, circuit: Circuit) -> None:
        if circuit.state == OPEN and circuit.until is not None and clock.now() >= circuit.until:
            circuit.state, circuit.probing = HALF_OPEN, False
            self._dirty.add(provider_id)

    def available(self, provider_id: int) -> bool:
        """In rotation: closed, or half-open with no probe in flight yet."""
        circuit = self._get(provider_id)
        self._tick(provider_id, circuit)
        return circuit.state == CLOSED or (circuit.state == HALF_OPEN and not circuit.probing)

    def try_acquire(self, provider_id: int) -> bool:
        """May a request go to this provider now? Half-open hands out one probe ticket."""
        circuit = self._get(provider_id)
        self._tick(provider_id, circuit)
        if circuit.state == CLOSED:
            return True
        if circuit.state == HALF_OPEN and not circuit.probing:
            circuit.probing = True
            return True
        return False

    def reopens_at(self, provider_id: int) -> datetime | None:
        circuit = self._get(provider_id)
        return circuit.until if circuit.state == OPEN else None

    def succeeded(self, provider_id: int) -> None:
        circuit = self._get(provider_id)
        if circuit.state != CLOSED or circuit.failures or circuit.detail is None:
            self._dirty.add(provider_id)
        circuit.state, circuit.failures, circuit.until, circuit.opened, circuit.probing = CLOSED, 0, None, 0, False
        circuit.detail, circuit.misconfigured = "sending", False

    def failed(self, provider_id: int, detail: str, *, configuration: bool = False) -> None:
        """A transient or configuration failure (not a message's own permanent error)."""
        circuit = self._get(provider_id)
        circuit.failures += 1
        circuit.detail = detail
        circuit.misconfigured = configuration
        self._dirty.add(provider_id)
        if circuit.state == HALF_OPEN or (circuit.state == CLOSED and circuit.failures >= self.threshold):
            seconds = min(self.max_cooldown, self.cooldown * (2 ** circuit.opened))
            circuit.state, circuit.probing = OPEN, False
            circuit.until = clock.now() + timedelta(seconds=seconds)
            circuit.opened += 1

    def neutral(self, provider_id: int) -> None:
        """A request whose outcome says nothing of the provider's health (e.g. unknown): a probe
        ticket is handed back."""
        circuit = self._get(provider_id)
        circuit.probing = False

    def snapshot(self, provider_id: int) -> CircuitSnapshot:
        circuit = self._get(provider_id)
        if circuit.state == OPEN:
            until = circuit.until.strftime("%H:%M:%S") if circuit.until else "?"
            health = "unhealthy"
            detail = f"out of rotation until {until} UTC after {circuit.failures} failures in a row: {circuit.detail}"
        elif circuit.state == HALF_OPEN:
            health, detail = "unhealthy", f"probing after failures: {circuit.detail}"
        elif circuit.failures and circuit.misconfigured:
            health, detail = "unhealthy", f"configuration: {circuit.detail}"
        elif circuit.failures:
            health, detail = "healthy", f"{circuit.failures} failure(s) in a row: {circuit.detail}"
        else:
            health, detail = "healthy", circuit.detail or "sending"
        return CircuitSnapshot(circuit.state, circuit.failures, circuit.until, health, detail)

    def take_dirty(self) -> dict[int, CircuitSnapshot]:
        """Snapshots of the circuits that changed since the last call."""
        dirty, self._dirty = self._dirty, set()
        return {provider_id: self.snapshot(provider_id) for provider_id in dirty}
