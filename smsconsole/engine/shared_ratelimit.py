"""Provider rate limits shared by every worker on PostgreSQL: the token buckets live in the
rate_buckets table and run on the database server's clock, so a provider's limit holds across
processes and machines together, not per process.

A worker takes tokens a block at a time (BLOCK_SECONDS of the provider's rate, at least what the
chunk needs) in one statement that refills the bucket for the time passed and takes the block. A
bucket may go into debt (the block is bigger than what is left, or several workers take at once):
the taker waits the debt out (debt / rate) before using the block, so the long-run rate is exact
however many workers draw from it. Tokens a worker took and did not use (it stopped, or died) are
lost: the rate errs only on the low side. Priority traffic has no reserve here (the in-process
limiter's BULK_RESERVE); it still goes first through each provider's concurrency lanes. A 429's
pause holds in the process that got it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsconsole.engine.ratelimit import BURST_SECONDS, RateLimiter

BLOCK_SECONDS = 0.05  # a worker takes this much of the rate per trip to the database

TAKE = text("""
INSERT INTO rate_buckets (key, rate, tokens, updated)
VALUES (:key, CAST(:rate AS double precision), CAST(:capacity AS double precision) - CAST(:want AS double precision),
        extract(epoch from clock_timestamp()))
ON CONFLICT (key) DO UPDATE SET
    rate = EXCLUDED.rate,
    tokens = LEAST(CAST(:capacity AS double precision), rate_buckets.tokens
                   + GREATEST(0, EXCLUDED.updated - rate_buckets.updated) * EXCLUDED.rate)
             - CAST(:want AS double precision),
    updated = GREATEST(rate_buckets.updated, EXCLUDED.updated)
RETURNING tokens
""")


@dataclass
class SharedBucket:
    key: str
    rate: float
    local: float = 0.0  # tokens taken from the database and not used yet
    usable_at: float = 0.0  # monotonic time from which they may be used (the block's debt paid)


class SharedRateLimiter(RateLimiter):
    """The RateLimiter interface (buckets, acquire, pause) over the shared table."""

    def __init__(self, factory: async_sessionmaker[AsyncSession]) -> None:
        super().__init__()
        self.factory = factory
        self._shared: dict[str, SharedBucket] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _shared_bucket(self, key: str, rate: float | None) -> SharedBucket | None:
        if not rate or rate <= 0:
            self._shared.pop(key, None)
            return None
        bucket = self._shared.get(key)
        if bucket is None or bucket.rate != rate:
            bucket = self._shared[key] = SharedBucket(key, float(rate))
        return bucket

    def buckets(self, provider_id: int, sender: str | None, rate: float | None,  # type: ignore[override]
                sender_rate: float | None) -> list[SharedBucket]:
        found = [self._shared_bucket(f"provider:{provider_id}", rate)]
        if sender_rate:
            found.append(self._shared_bucket(f"provider:{provider_id}:sender:{sender or ''}", sender_rate))
        return [b for b in found if b is not None]

    async def acquire(self, provider_id: int, buckets: list[SharedBucket], segments: int, *,  # type: ignore[override]
                      priority: bool) -> None:
        paused = self._paused_until.get(provider_id, 0.0) - time.monotonic()
        if paused > 0:
            await asyncio.sleep(paused)
        ready = 0.0
        for bucket in buckets:
            ready = max(ready, await self._take(bucket, segments))
        wait = ready - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)

    async def _take(self, bucket: SharedBucket, segments: int) -> float:
        """Take `segments` from the bucket's local block, fetching a new block when it runs short;
        returns the monotonic time from which they may be used."""
        lock = self._locks.setdefault(bucket.key, asyncio.Lock())
        async with lock:
            if bucket.local < segments:
                want = max(segments - bucket.local, bucket.rate * BLOCK_SECONDS)
                capacity = max(1.0, bucket.rate * BURST_SECONDS)
                async with self.factory() as session, session.begin():
                    left = float(await session.scalar(TAKE, {"key": bucket.key, "rate": bucket.rate,
                                                             "capacity": capacity, "want": want}))
                debt = max(0.0, -left) / bucket.rate
                bucket.usable_at = max(bucket.usable_at, time.monotonic() + debt)
                bucket.local += want
            bucket.local -= segments
            return bucket.usable_at

    def pause(self, provider_id: int, seconds: float) -> None:
        until = time.monotonic() + seconds
        if until > self._paused_until.get(provider_id, 0.0):
            self._paused_until[provider_id] = until
