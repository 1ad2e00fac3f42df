"""What one running process shares between requests: settings, database, Redis, limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from voxflow.core.db import create_engine, create_sessionmaker
from voxflow.core.ratelimit import RateLimits
from voxflow.core.redis import create_redis
from voxflow.core.settings import Settings


@dataclass
class AppContext:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    # Same engine and pool, no transaction: for requests that only read.
    read_sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis | None
    rate_limits: RateLimits
    # Domains keep their per-process helpers here (credential cache, …) by name.
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, settings: Settings) -> AppContext:
        engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
        return cls(
            settings=settings,
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            read_sessionmaker=create_sessionmaker(engine, autocommit=True),
            redis=create_redis(settings.redis_url),
            rate_limits=RateLimits(settings.redis_url),
        )

    async def close(self) -> None:
        await self.engine.dispose()
        if self.redis is not None:
            await self.redis.aclose()
