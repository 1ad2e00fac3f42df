"""Optional Redis: cross-process signals, shared rate limits. Everything works without it."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import RedisError

REDIS_ERRORS = (RedisError, OSError, TimeoutError)


def create_redis(url: str | None) -> Redis | None:
    if not url:
        return None
    return Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)


async def redis_reachable(redis: Redis) -> bool:
    try:
        return bool(await redis.ping())
    except REDIS_ERRORS:
        return False
