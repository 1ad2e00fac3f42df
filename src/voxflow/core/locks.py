"""One holder at a time per key, across every process that shares the database.

    async with distributed_lock(context, f"connection:{connection_id}", wait_seconds=30):
        ...  # re-read what the lock protects: another holder may have changed it

Which lock guards the key depends on what the deployment has: a Redis lock when Redis is
configured (and reachable), else a PostgreSQL advisory lock, else (SQLite, one process) only
the in-process lock. The in-process lock is always taken first, so a process sends at most one
waiter per key to Redis or PostgreSQL, and holds at most one extra database connection per key.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from weakref import WeakValueDictionary

import structlog
from redis.asyncio.lock import Lock as RedisLock
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from voxflow.core.context import AppContext
from voxflow.core.redis import REDIS_ERRORS

log = structlog.get_logger("voxflow.locks")

# A holder that outlives this is presumed dead (Redis frees its lock); work under a lock
# must have shorter timeouts of its own.
DEFAULT_LEASE_SECONDS = 60.0
_REDIS_POLL_SECONDS = 0.02
_LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE when lock_timeout ran out


class LockTimeout(Exception):
    """The lock stayed taken for the whole wait."""


@asynccontextmanager
async def distributed_lock(
    context: AppContext,
    key: str,
    *,
    wait_seconds: float,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
) -> AsyncIterator[None]:
    """Hold `key` for the block; raises LockTimeout after waiting `wait_seconds`."""
    deadline = time.monotonic() + wait_seconds
    local = _local_lock(context, key)
    try:
        async with asyncio.timeout(wait_seconds):
            await local.acquire()
    except TimeoutError:
        raise LockTimeout(f"{key} stayed locked for {wait_seconds:g} s") from None
    try:
        async with _shared_lock(context, key, deadline, lease_seconds):
            yield
    finally:
        local.release()


def _local_lock(context: AppContext, key: str) -> asyncio.Lock:
    # Weak values: a key's lock lives while someone holds or awaits it, then goes away.
    locks: WeakValueDictionary[str, asyncio.Lock] = context.extras.setdefault(
        "locks", WeakValueDictionary()
    )
    lock = locks.get(key)
    if lock is None:
        lock = asyncio.Lock()
        locks[key] = lock
    return lock


@asynccontextmanager
async def _shared_lock(
    context: AppContext, key: str, deadline: float, lease: float
) -> AsyncIterator[None]:
    redis_lock = await _acquire_redis(context, key, deadline, lease)
    if redis_lock is not None:
        try:
            yield
        finally:
            await _release_redis(redis_lock, key)
    elif not context.settings.is_sqlite:
        async with _postgres_lock(context, key, deadline):
            yield
    else:
        yield


async def _acquire_redis(
    context: AppContext, key: str, deadline: float, lease: float
) -> RedisLock | None:
    """The held Redis lock; None when there is no Redis or it cannot be reached."""
    if context.redis is None:
        return None
    lock = context.redis.lock(
        f"voxflow:lock:{key}",
        timeout=lease,
        sleep=_REDIS_POLL_SECONDS,
        blocking_timeout=max(deadline - time.monotonic(), 0.0),
    )
    try:
        acquired = await lock.acquire()
    except REDIS_ERRORS:
        # Losing Redis degrades to the database's lock rather than stopping the work.
        log.warning("lock_redis_unreachable", key=key)
        return None
    if not acquired:
        raise LockTimeout(f"{key} stayed locked")
    return lock


async def _release_redis(lock: RedisLock, key: str) -> None:
    try:
        await lock.release()
    except REDIS_ERRORS:
        # Expired (held past its lease) or Redis went away: either way it is no longer ours.
        log.warning("lock_release_failed", key=key)


@asynccontextmanager
async def _postgres_lock(context: AppContext, key: str, deadline: float) -> AsyncIterator[None]:
    # A transaction-level lock on a connection of its own: whatever happens in the block, the
    # transaction ends with it and PostgreSQL frees the lock, even if the connection breaks.
    wait_ms = max(int((deadline - time.monotonic()) * 1000), 1)
    async with context.engine.connect() as connection, connection.begin():
        await connection.execute(text(f"SET LOCAL lock_timeout = {wait_ms}"))
        try:
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_key(key)}
            )
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
                raise LockTimeout(f"{key} stayed locked") from None
            raise
        yield


def advisory_key(key: str) -> int:
    """PostgreSQL advisory locks take a signed 64-bit number."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
