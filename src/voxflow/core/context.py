"""What one running process shares between requests: settings, database, Redis, limits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from voxflow.core.cache import EpochReader, bump_epochs, publish_changes
from voxflow.core.db import Change, create_engine, create_sessionmaker
from voxflow.core.ratelimit import RateLimits
from voxflow.core.redis import REDIS_ERRORS, create_redis
from voxflow.core.settings import Settings

log = structlog.get_logger("voxflow.context")


@dataclass
class AppContext:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    # Same engine and pool, no transaction: for requests that only read.
    read_sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis | None
    # What every per-process cache reads its epochs through (None without Redis: no caching).
    epochs: EpochReader | None
    rate_limits: RateLimits
    # Domains keep their per-process helpers here (credential cache, …) by name.
    extras: dict[str, Any] = field(default_factory=dict)
    # Called in this process with every committed change set (the runtime loader listens);
    # other processes hear of them through Redis pub/sub (`CHANGES_CHANNEL`).
    change_listeners: list[Callable[[set[Change]], None]] = field(default_factory=list)
    _unannounced: set[Change] = field(default_factory=set)
    _announcer: asyncio.Task[None] | None = None

    @classmethod
    def create(cls, settings: Settings) -> AppContext:
        engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
        redis = create_redis(settings.redis_url)
        return cls(
            settings=settings,
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            read_sessionmaker=create_sessionmaker(engine, autocommit=True),
            redis=redis,
            epochs=EpochReader(redis) if redis is not None else None,
            rate_limits=RateLimits(settings.redis_url),
        )

    async def announce_changes(self, changes: set[Change]) -> None:
        """Committed changes (`record_change`): every process's caches drop those keys.

        If Redis is unreachable the change is already committed and cannot be undone, so the
        announcement is retried in the background until it lands; meanwhile no process can
        validate a cached entry, so none is served.
        """
        for listener in self.change_listeners:
            listener(changes)
        try:
            await bump_epochs(self.redis, changes)
            await publish_changes(self.redis, changes)
        except REDIS_ERRORS:
            log.warning("changes_unannounced", changes=len(changes), retrying=True)
            self._unannounced |= changes
            if self._announcer is None or self._announcer.done():
                self._announcer = asyncio.create_task(self._announce_until_delivered())

    async def _announce_until_delivered(self) -> None:
        delay = 0.05
        while self._unannounced:
            await asyncio.sleep(delay)
            pending = set(self._unannounced)
            try:
                await bump_epochs(self.redis, pending)
                await publish_changes(self.redis, pending)
            except REDIS_ERRORS:
                delay = min(delay * 2, 2.0)
                continue
            self._unannounced -= pending
            log.info("changes_announced", changes=len(pending))

    async def close(self) -> None:
        if self._announcer is not None:
            self._announcer.cancel()
        await self.engine.dispose()
        if self.redis is not None:
            await self.redis.aclose()
