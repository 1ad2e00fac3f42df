"""Per-process caches that every process stops serving the moment a change commits.

Each cached key has an epoch in Redis (a field of one hash per topic). A writer records the
change in its transaction (`voxflow.core.db.record_change`); once the commit succeeded the
epoch is bumped (`bump_epochs`, called by `AppContext.announce_changes`). Every lookup reads
the key's current epoch, so invalidation is immediate across processes, with no pub/sub
delivery delay: a credential revoked or a draft saved is never served old by anyone once
the write has answered. Lookups that arrive together share one round trip (`Coalescer`).

Without Redis, or while it is unreachable, nothing is served from the cache and callers go
to the database.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

import structlog
from cachetools import LRUCache
from redis.asyncio import Redis

from voxflow.core.coalesce import Coalescer
from voxflow.core.redis import REDIS_ERRORS

V = TypeVar("V")
log = structlog.get_logger("voxflow.cache")


def _epochs_key(topic: str) -> str:
    return f"voxflow:epochs:{topic}"


async def bump_epochs(redis: Redis | None, changes: Iterable[tuple[str, str]]) -> None:
    """Move the epoch of each `(topic, key)`; raises when Redis is unreachable.

    Call only after the change is committed: bumping before would let another process read
    the old row under the new epoch and keep it.
    """
    changes = list(changes)
    if redis is None or not changes:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for topic, key in changes:
            pipe.hincrby(_epochs_key(topic), key, 1)
        await pipe.execute()


# Committed changes are also published here, as JSON `[[topic, key], …]`, for listeners that
# must act on a change rather than check an epoch on each use (the runtime loader).
CHANGES_CHANNEL = "voxflow:changes"


async def publish_changes(redis: Redis | None, changes: Iterable[tuple[str, str]]) -> None:
    if redis is None:
        return
    payload = json.dumps(sorted([topic, key] for topic, key in changes))
    await redis.publish(CHANGES_CHANNEL, payload)


def parse_changes(payload: bytes | str) -> set[tuple[str, str]]:
    """The changes of one message on `CHANGES_CHANNEL` (empty for anything malformed)."""
    try:
        items = json.loads(payload)
        return {(str(topic), str(key)) for topic, key in items}
    except (ValueError, TypeError):
        return set()


class EpochReader:
    """Reads epochs for every `EpochCache` of a process; lookups made together, of any topic
    (a credential and a workflow, say), share one round trip."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._reads = Coalescer[tuple[str, str], bytes | str | None](self._read)

    async def read(self, topic: str, key: str) -> bytes | None:
        value = await self._reads.submit((_epochs_key(topic), key))
        return value.encode() if isinstance(value, str) else (value or b"0")

    async def _read(self, wanted: list[tuple[str, str]]) -> list[bytes | str | None]:
        hashes = {name for name, _ in wanted}
        if len(hashes) == 1:
            fields = [key for _, key in wanted]
            values: list[bytes | str | None] = await self._redis.hmget(hashes.pop(), fields)
            return values
        async with self._redis.pipeline(transaction=False) as pipe:
            order = sorted(hashes)
            for name in order:
                pipe.hmget(name, [key for wanted_name, key in wanted if wanted_name == name])
            replies = iter(await pipe.execute())
        by_hash = {name: iter(next(replies)) for name in order}
        return [next(by_hash[name]) for name, _ in wanted]


class EpochCache(Generic[V]):
    """An LRU of `topic` values, each stored with the epoch its key had when it was read.

    Use: `epoch = await cache.epoch(key)` *before* reading the source, then
    `cache.get(key, epoch)`, and on a miss `cache.put(key, value, epoch)`. A change committed
    between the epoch read and the source read leaves the stored entry one epoch behind, so
    it is dropped at the next lookup instead of served. Size is bounded in bytes (`size_of`);
    `ttl_seconds` is only a backstop.
    """

    def __init__(
        self,
        epochs: EpochReader | None,
        topic: str,
        *,
        ttl_seconds: float,
        max_bytes: int,
        size_of: Callable[[V], int],
    ) -> None:
        self._epochs = epochs
        self._topic = topic
        self._ttl = ttl_seconds
        self._size_of = size_of
        self._entries: LRUCache[str, tuple[V, bytes, float]] = LRUCache(
            maxsize=max_bytes, getsizeof=lambda entry: size_of(entry[0])
        )

    @property
    def enabled(self) -> bool:
        return self._epochs is not None and self._ttl > 0

    async def epoch(self, key: str) -> bytes | None:
        """The key's current epoch; None (cache off) without Redis or while it is unreachable."""
        if self._epochs is None or self._ttl <= 0:
            return None
        try:
            return await self._epochs.read(self._topic, key)
        except REDIS_ERRORS:
            log.warning("cache_epoch_unreachable", cache=self._topic)
            self._entries.clear()
            return None

    def get(self, key: str, epoch: bytes | None) -> V | None:
        if epoch is None:
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, stored_epoch, expires = entry
        if stored_epoch != epoch or expires < time.monotonic():
            self._entries.pop(key, None)
            return None
        return value

    def put(self, key: str, value: V, epoch: bytes | None) -> None:
        if epoch is None or self._size_of(value) > self._entries.maxsize:
            return
        self._entries[key] = (value, epoch, time.monotonic() + self._ttl)
