"""EpochCache: per-process entries that every process drops when any one bumps the epoch."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from voxflow.core.cache import EpochCache


class RedisLink:
    """A TCP hop in front of the real Redis that a test can cut and restore: a network outage."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/15"

    async def restore(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        for writer in self._writers:
            writer.close()
        for pipe in self._pipes:
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        self._writers.clear()
        self._pipes.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers |= {writer, up_writer}
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            pipe = asyncio.create_task(self._pipe(source, sink))
            self._pipes.add(pipe)
            pipe.add_done_callback(self._pipes.discard)

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        sink.close()


def _client(url: str) -> Redis:
    return Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)


@pytest.fixture
async def link(redis_url: str) -> AsyncIterator[RedisLink]:
    host, port = redis_url.split("//", 1)[1].split("/", 1)[0].split(":")
    hop = RedisLink((host, int(port)))
    await hop.restore()
    yield hop
    with contextlib.suppress(AssertionError):
        await hop.cut()


@pytest.fixture
def cache_name() -> str:
    return f"test-{uuid.uuid4().hex}"


async def test_a_value_is_served_from_the_cache_until_the_epoch_moves(
    redis_url: str, cache_name: str
) -> None:
    this, other = _client(redis_url), _client(redis_url)
    here = EpochCache[str](this, cache_name, ttl_seconds=300)
    elsewhere = EpochCache[str](other, cache_name, ttl_seconds=300)
    try:
        assert await here.get("key") is None
        here.put("key", "value")
        assert await here.get("key") == "value"

        await elsewhere.invalidate_everywhere()

        assert await here.get("key") is None
    finally:
        await this.aclose()
        await other.aclose()


async def test_without_redis_nothing_is_cached(cache_name: str) -> None:
    cache = EpochCache[str](None, cache_name, ttl_seconds=300)

    await cache.get("key")
    cache.put("key", "value")

    assert not cache.enabled
    assert await cache.get("key") is None


async def test_nothing_cached_during_a_redis_outage_survives_it(
    link: RedisLink, cache_name: str
) -> None:
    # Two processes behind the same network path to Redis.
    this, other = _client(link.url), _client(link.url)
    here = EpochCache[str](this, cache_name, ttl_seconds=300)
    elsewhere = EpochCache[str](other, cache_name, ttl_seconds=300)
    try:
        await here.get("key")
        here.put("key", "valid")
        assert await here.get("key") == "valid"

        await link.cut()
        assert await here.get("key") is None  # the lookup falls through to the database…
        here.put("key", "valid")  # …which still says valid, and the caller caches it
        await elsewhere.invalidate_everywhere()  # then it is revoked: the bump cannot land
        await link.restore()

        assert await here.get("key") is None
    finally:
        await this.aclose()
        await other.aclose()
