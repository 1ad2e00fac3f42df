"""Rate limits with the `limits` library: shared in Redis when configured, else in memory.

If Redis stops answering, limits fall back to this process's memory instead of failing
requests: a degraded limit is better than an outage.

API traffic uses fixed windows, and concurrent hits of one key in one process share a Redis
round trip (`Coalescer`): one INCRBY of n answers n hits, in arrival order, exactly as n
INCRs would have, so coalescing never lets more through than the limit.
"""

from __future__ import annotations

import math
import time

import structlog
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter, RateLimiter
from limits.errors import StorageError

from voxflow.core.coalesce import Coalescer
from voxflow.core.errors import RateLimited

log = structlog.get_logger("voxflow.ratelimit")


class RateLimits:
    def __init__(self, redis_url: str | None) -> None:
        self._memory = MemoryStorage()
        self._redis: Storage | None = None
        if redis_url:
            uri = "async+" + redis_url
            self._redis = RedisStorage(
                uri, wrap_exceptions=True, implementation="redispy", socket_timeout=1.0
            )
        self._parsed: dict[str, list[RateLimitItem]] = {}
        self._counting: dict[str, Coalescer[None, bool]] = {}

    def _limiter(self, storage: Storage, precise: bool) -> RateLimiter:
        # Moving windows are exact but keep one entry per hit: use them for the small
        # login limits, and cheap fixed windows for high-volume API traffic.
        return MovingWindowRateLimiter(storage) if precise else FixedWindowRateLimiter(storage)

    async def hit(self, limit: str, *identifiers: str, precise: bool = False) -> None:
        """Count one hit; raise RateLimited (429 with Retry-After) when over the limit.

        `limit` may list several ("10/minute;100/hour", as settings accept): each one holds.
        """
        items = self._parsed.get(limit) or self._parsed.setdefault(limit, parse_many(limit))
        for item in items:
            await self._hit(limit, item, identifiers, precise)

    async def _hit(
        self, limit: str, item: RateLimitItem, identifiers: tuple[str, ...], precise: bool
    ) -> None:
        storage: Storage = self._memory
        if self._redis is not None:
            storage = self._redis
        try:
            allowed, limiter = await self._try(storage, item, identifiers, precise)
        except StorageError:
            log.warning("rate_limit_storage_unreachable", fallback="memory")
            allowed, limiter = await self._try(self._memory, item, identifiers, precise)
        if allowed:
            return
        try:
            stats = await limiter.get_window_stats(item, *identifiers)
            retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        except StorageError:  # Redis went away since the hit: the whole window is safe
            retry_after = item.get_expiry()
        raise RateLimited(
            f"Too many requests; limit is {limit}. Retry in {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
        )

    async def _try(
        self, storage: Storage, item: RateLimitItem, identifiers: tuple[str, ...], precise: bool
    ) -> tuple[bool, RateLimiter]:
        limiter = self._limiter(storage, precise)
        if precise or storage is not self._redis:
            return await limiter.hit(item, *identifiers), limiter
        return await self._coalesced_hit(storage, item, identifiers), limiter

    async def _coalesced_hit(
        self, storage: Storage, item: RateLimitItem, identifiers: tuple[str, ...]
    ) -> bool:
        # What FixedWindowRateLimiter.hit does (INCR, compare), for n waiting hits at once.
        key = item.key_for(*identifiers)
        counter = self._counting.get(key)
        if counter is None:

            async def count(hits: list[None]) -> list[bool]:
                total = await storage.incr(key, item.get_expiry(), amount=len(hits))
                before = total - len(hits)
                return [before + n <= item.amount for n in range(1, len(hits) + 1)]

            counter = self._counting[key] = Coalescer(count)
        try:
            return await counter.submit(None)
        finally:
            if counter.idle and self._counting.get(key) is counter:
                del self._counting[key]
