"""Rate limits and the priority lane on a virtual clock (no wall time: a minute runs in
milliseconds). No database."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random

import pytest

from smsconsole.engine.ratelimit import RateLimiter


class VirtualTime:
    """A clock that jumps to the next sleeper's wake-up whenever every task is waiting."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(seconds, 0.0), next(self._order), future))
        await future

    async def run_until(self, end: float) -> None:
        yields = 20  # at first every task must start; later a woken task needs a couple of turns
        while True:
            for _ in range(yields):  # let every runnable task reach its next sleep
                await asyncio.sleep(0)
            yields = 4
            if not self._sleepers or self._sleepers[0][0] > end:
                self.now = end
                return
            wake, _, future = heapq.heappop(self._sleepers)
            self.now = max(self.now, wake)
            future.set_result(None)


async def _send_for(limiter: RateLimiter, time: VirtualTime, seconds: float, workers: int, *,
                    rate: float | None, sender_rate: float | None = None, senders: tuple[str, ...] = ("A",),
                    priority: bool = False, seed: int = 1) -> dict[str, int]:
    """Workers (spread over the senders) send messages of 1–3 segments as fast as the limiter lets
    them; returns the segments sent per sender."""
    rng = random.Random(seed)
    sent: dict[str, int] = dict.fromkeys(senders, 0)

    async def worker(sender: str) -> None:
        while True:
            segments = rng.choice((1, 1, 2, 3))
            buckets = limiter.buckets(1, sender, rate, sender_rate)
            await limiter.acquire(1, buckets, segments, priority=priority)
            if time.now >= seconds:
                return
            sent[sender] += segments
            await time.sleep(0.001)  # the request itself

    tasks = [asyncio.create_task(worker(senders[n % len(senders)])) for n in range(workers)]
    await time.run_until(seconds)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return sent


@pytest.mark.parametrize("rate", [1.0, 7.5, 50.0, 400.0])
async def test_achieved_rate_is_within_5_percent_of_the_limit_over_a_minute(rate: float) -> None:
    time = VirtualTime()
    limiter = RateLimiter(clock=time.clock, sleep=time.sleep)
    sent = await _send_for(limiter, time, 60.0, workers=16, rate=rate)
    achieved = sum(sent.values()) / 60.0
    assert abs(achieved - rate) <= 0.05 * rate, achieved


async def test_sender_limit_holds_inside_the_provider_limit() -> None:
    time = VirtualTime()
    limiter = RateLimiter(clock=time.clock, sleep=time.sleep)
    sent = await _send_for(limiter, time, 60.0, workers=16, rate=100.0, sender_rate=10.0, senders=("A", "B", "C"))
    for sender in ("A", "B", "C"):
        assert abs(sent[sender] / 60.0 - 10.0) <= 0.05 * 10.0, sent
    assert sum(sent.values()) / 60.0 <= 100.0 * 1.05


async def test_priority_traffic_overtakes_saturated_bulk_traffic() -> None:
    time = VirtualTime()
    limiter = RateLimiter(clock=time.clock, sleep=time.sleep)
    bulk = asyncio.create_task(_send_for(limiter, time, 30.0, workers=16, rate=20.0))
    await asyncio.sleep(0)
    waits: list[float] = []

    async def priority_message() -> None:
        await time.sleep(10.0)  # arrives while bulk traffic saturates the provider
        asked = time.now
        await limiter.acquire(1, limiter.buckets(1, "A", 20.0, None), 1, priority=True)
        waits.append(time.now - asked)

    asyncio.get_running_loop().create_task(priority_message())
    await bulk
    assert waits and waits[0] <= 1 / 20.0 + 1e-9  # at most one segment's time, not behind the queue


async def test_a_message_larger_than_the_burst_still_goes_and_the_rate_holds() -> None:
    time = VirtualTime()
    limiter = RateLimiter(clock=time.clock, sleep=time.sleep)
    admitted = 0

    async def worker() -> None:
        nonlocal admitted
        while True:
            await limiter.acquire(1, limiter.buckets(1, None, 1.0, None), 6, priority=False)
            if time.now >= 60:
                return
            admitted += 6

    task = asyncio.create_task(worker())
    await time.run_until(60.0)
    task.cancel()
    assert 54 <= admitted <= 66


async def test_a_429_pause_stops_everything_for_its_retry_after() -> None:
    time = VirtualTime()
    limiter = RateLimiter(clock=time.clock, sleep=time.sleep)
    limiter.pause(1, 1.5)
    done: list[float] = []

    async def one() -> None:
        await limiter.acquire(1, [], 1, priority=True)
        done.append(time.now)

    task = asyncio.create_task(one())
    await time.run_until(5.0)
    await task
    assert done == [1.5]
