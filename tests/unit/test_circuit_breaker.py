"""The circuit breaker's states: open after consecutive failures only, one half-open probe at a
time, a failed probe's growing cool-down, and only changes written. No database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from smsconsole import clock
from smsconsole.engine.circuit import CircuitBreaker

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_circuit_opens_after_consecutive_failures_only() -> None:
    clock.freeze(T0)
    breaker = CircuitBreaker(threshold=3, cooldown=30)
    breaker.failed(1, "503")
    breaker.failed(1, "503")
    breaker.succeeded(1)  # not consecutive any more
    breaker.failed(1, "503")
    breaker.failed(1, "503")
    assert breaker.available(1)
    breaker.failed(1, "503")
    assert not breaker.available(1) and not breaker.try_acquire(1)
    snap = breaker.snapshot(1)
    assert (snap.state, snap.failures, snap.until, snap.health) == ("open", 3, T0 + timedelta(seconds=30), "unhealthy")


def test_half_open_lets_exactly_one_probe_through() -> None:
    clock.freeze(T0)
    breaker = CircuitBreaker(threshold=1, cooldown=30)
    breaker.failed(1, "timeout")
    clock.freeze(T0 + timedelta(seconds=31))
    assert breaker.try_acquire(1)
    assert breaker.snapshot(1).state == "half_open"
    assert not breaker.try_acquire(1) and not breaker.available(1)  # one probe at a time
    breaker.succeeded(1)
    assert breaker.snapshot(1).state == "closed" and breaker.try_acquire(1) and breaker.try_acquire(1)


def test_a_failed_probe_doubles_the_cool_down_up_to_a_cap() -> None:
    clock.freeze(T0)
    breaker = CircuitBreaker(threshold=1, cooldown=30, max_cooldown=100)
    breaker.failed(1, "x")
    for expected in (60, 100, 100):
        until = breaker.snapshot(1).until
        assert until is not None
        clock.freeze(until)
        assert breaker.try_acquire(1)
        breaker.failed(1, "x")
        assert breaker.snapshot(1).until == until + timedelta(seconds=expected)


def test_only_changes_are_written_and_a_restart_resumes_an_open_circuit() -> None:
    clock.freeze(T0)
    breaker = CircuitBreaker(threshold=1, cooldown=30)
    breaker.succeeded(2)
    breaker.failed(1, "503")
    assert set(breaker.take_dirty()) == {1, 2}
    breaker.succeeded(2)
    assert breaker.take_dirty() == {}
    restarted = CircuitBreaker(threshold=1, cooldown=30)
    restarted.seed(1, "open", 1, T0 + timedelta(seconds=30))
    assert not restarted.available(1)
    restarted.seed(3, "half_open", 1, T0)  # a dead engine's probe: probe again
    assert restarted.try_acquire(3)
