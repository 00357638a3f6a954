"""Provider rate limits: token buckets counted in message segments, as providers count them.

A bucket refills at `rate` segments per second up to a bounded burst. A message larger than the
burst still goes (the bucket goes into debt and later messages wait), so the long-run rate is
exact. Priority traffic (tests, auto-responses, transactional) only needs its own segments; bulk
traffic must leave a reserve in the bucket, so a waiting priority message is served first.

Written here rather than taken from aiolimiter: the tests run the bucket on a virtual clock
(aiolimiter reads the event loop's clock), a message may be larger than the burst, and the
priority reserve is not something a plain limiter offers."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

BURST_SECONDS = 0.5  # the bucket holds at most this many seconds of traffic
BULK_RESERVE = 0.2  # share of the burst that bulk traffic leaves for priority traffic


@dataclass
class TokenBucket:
    rate: float  # segments per second
    clock: Clock = time.monotonic
    burst_seconds: float = BURST_SECONDS
    tokens: float = field(init=False)
    updated: float = field(init=False)

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError("a rate limit must be greater than 0")
        self.capacity = max(1.0, self.rate * self.burst_seconds)
        self.tokens = self.capacity
        self.updated = self.clock()

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def wait_time(self, amount: float, reserve: float = 0.0) -> float:
        """Seconds until `amount` segments may go (0: now). `reserve` is a share of the burst that
        must stay in the bucket after a bulk message is admitted."""
        now = self.clock()
        self._refill(now)
        need = min(amount, self.capacity) + reserve * self.capacity
        need = min(need, self.capacity)
        wait = max(0.0, (need - self.tokens) / self.rate)
        return wait

    def take(self, amount: float) -> None:
        self._refill(self.clock())
        self.tokens -= amount


class RateLimiter:
    """The buckets of every provider and (provider, sender), rebuilt when a limit changes."""

    def __init__(self, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep) -> None:
        self.clock = clock
        self.sleep = sleep
        self._buckets: dict[tuple[int, str | None], TokenBucket] = {}
        self._paused_until: dict[int, float] = {}

    def _bucket(self, key: tuple[int, str | None], rate: float | None) -> TokenBucket | None:
        if not rate or rate <= 0:
            self._buckets.pop(key, None)
            return None
        bucket = self._buckets.get(key)
        if bucket is None or bucket.rate != rate:
            bucket = self._buckets[key] = TokenBucket(rate, self.clock)
        return bucket

    def buckets(self, provider_id: int, sender: str | None, rate: float | None,
                sender_rate: float | None) -> list[TokenBucket]:
        found = [self._bucket((provider_id, None), rate)]
        if sender_rate:
            found.append(self._bucket((provider_id, f"sender:{sender or ''}"), sender_rate))
        return [b for b in found if b is not None]

    async def acquire(self, provider_id: int, buckets: list[TokenBucket], segments: int, *,
                      priority: bool) -> None:
        """Wait until every bucket admits `segments` (and no pause holds the provider), then take
        them from all at once."""
        if not buckets and provider_id not in self._paused_until:
            return
        reserve = 0.0 if priority else BULK_RESERVE
        while True:
            paused = self._paused_until.get(provider_id, 0.0) - self.clock()
            wait = max([paused, *(b.wait_time(segments, reserve) for b in buckets)])
            if wait <= 1e-9:  # float rounding must not leave a sleeper waiting for nothing
                for bucket in buckets:
                    bucket.take(segments)
                return
            await self.sleep(wait)

    def pause(self, provider_id: int, seconds: float) -> None:
        """The provider asked us to slow down (429 with Retry-After): nothing goes for `seconds`."""
        until = self.clock() + seconds
        if until > self._paused_until.get(provider_id, 0.0):
            self._paused_until[provider_id] = until


class Lanes:
    """Per-provider concurrency with a reserved share for priority traffic."""

    def __init__(self, size: int, reserve: float) -> None:
        reserved = max(1, round(size * reserve)) if size > 1 else 0
        self.total = asyncio.Semaphore(size)
        self.bulk = asyncio.Semaphore(max(1, size - reserved))

    @contextlib.asynccontextmanager
    async def slot(self, priority: bool):  # type: ignore[no-untyped-def]
        if priority:
            async with self.total:
                yield
        else:
            async with self.bulk, self.total:
                yield
