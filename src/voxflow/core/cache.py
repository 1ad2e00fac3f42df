"""A per-process cache whose entries all drop the moment any process bumps a Redis epoch.

Each lookup reads one small counter from Redis; a writer bumps it after committing. That
makes invalidation immediate across processes without pub/sub delivery delays. Without
Redis, or while it is unreachable, the cache stays empty and callers go to the database.
"""

from __future__ import annotations

import time
from typing import Generic, TypeVar

import structlog
from redis.asyncio import Redis

from voxflow.core.redis import REDIS_ERRORS

V = TypeVar("V")
log = structlog.get_logger("voxflow.cache")


class EpochCache(Generic[V]):
    def __init__(
        self, redis: Redis | None, name: str, *, ttl_seconds: float, max_entries: int = 10_000
    ):
        self._redis = redis
        self._epoch_key = f"voxflow:epoch:{name}"
        self._ttl = ttl_seconds
        self._max = max_entries
        self._entries: dict[str, tuple[V, float]] = {}
        self._epoch: bytes | None = None

    @property
    def enabled(self) -> bool:
        return self._redis is not None and self._ttl > 0

    async def _current_epoch(self) -> bytes | None:
        assert self._redis is not None
        try:
            epoch: bytes | str | None = await self._redis.get(self._epoch_key)
        except REDIS_ERRORS:
            log.warning("cache_epoch_unreachable", cache=self._epoch_key)
            self._entries.clear()
            # Forget the epoch too: a value put now could not be invalidated (a bump made
            # during the outage is lost), so `put` must refuse it until Redis answers again.
            self._epoch = None
            return None
        return epoch.encode() if isinstance(epoch, str) else (epoch or b"0")

    async def get(self, key: str) -> V | None:
        if not self.enabled:
            return None
        epoch = await self._current_epoch()
        if epoch is None:
            return None
        if epoch != self._epoch:
            self._entries.clear()
            self._epoch = epoch
            return None
        entry = self._entries.get(key)
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def put(self, key: str, value: V) -> None:
        if not self.enabled or self._epoch is None:
            return
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[key] = (value, time.monotonic() + self._ttl)

    async def invalidate_everywhere(self) -> None:
        """Call after the change is committed, or another process may re-cache the old value."""
        self._entries.clear()
        self._epoch = None
        if self._redis is None:
            return
        try:
            await self._redis.incr(self._epoch_key)
        except REDIS_ERRORS:
            # Other processes cannot have cached anything while Redis is unreachable
            # (their lookups fail the same way), so nothing stale survives.
            log.warning("cache_invalidate_unreachable", cache=self._epoch_key)
