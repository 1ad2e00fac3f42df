"""EpochCache: per-process entries each process drops once a change to their key commits."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from support import make_settings
from voxflow.core.cache import EpochCache, EpochReader, bump_epochs
from voxflow.core.context import AppContext


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
def topic() -> str:
    return f"test-{uuid.uuid4().hex}"


def _cache(redis: Redis | None, topic: str, max_bytes: int = 1000) -> EpochCache[str]:
    reader = EpochReader(redis) if redis is not None else None
    return EpochCache[str](reader, topic, ttl_seconds=300, max_bytes=max_bytes, size_of=len)


async def _lookup(cache: EpochCache[str], key: str) -> str | None:
    return cache.get(key, await cache.epoch(key))


async def _cache_value(cache: EpochCache[str], key: str, value: str) -> None:
    cache.put(key, value, await cache.epoch(key))


async def test_a_value_is_served_until_a_change_of_its_key_is_announced(
    redis_url: str, topic: str
) -> None:
    this, other = _client(redis_url), _client(redis_url)
    here = _cache(this, topic)
    try:
        await _cache_value(here, "wf_1", "draft 1")
        await _cache_value(here, "wf_2", "draft 2")
        assert await _lookup(here, "wf_1") == "draft 1"

        await bump_epochs(other, [(topic, "wf_1")])  # another process committed a change

        assert await _lookup(here, "wf_1") is None
        assert await _lookup(here, "wf_2") == "draft 2"  # other keys keep their entries
    finally:
        await this.aclose()
        await other.aclose()


async def test_a_value_read_before_a_concurrent_change_is_never_served(
    redis_url: str, topic: str
) -> None:
    this, other = _client(redis_url), _client(redis_url)
    here = _cache(this, topic)
    try:
        epoch = await here.epoch("wf_1")  # 1. epoch read, then the row is read…
        await bump_epochs(other, [(topic, "wf_1")])  # 2. …while another process commits
        here.put("wf_1", "old draft", epoch)  # 3. the old row is stored under the old epoch

        assert await _lookup(here, "wf_1") is None
    finally:
        await this.aclose()
        await other.aclose()


async def test_without_redis_nothing_is_cached(topic: str) -> None:
    cache = _cache(None, topic)

    await _cache_value(cache, "wf_1", "draft")

    assert not cache.enabled
    assert await _lookup(cache, "wf_1") is None


async def test_the_cache_holds_at_most_its_byte_budget(redis_url: str, topic: str) -> None:
    client = _client(redis_url)
    cache = _cache(client, topic, max_bytes=10)
    try:
        await _cache_value(cache, "a", "aaaa")
        await _cache_value(cache, "b", "bbbb")
        await _cache_value(cache, "c", "cccc")  # 12 bytes: the least recently used goes
        await _cache_value(cache, "huge", "x" * 11)  # larger than the budget: not kept

        assert await _lookup(cache, "a") is None
        assert await _lookup(cache, "b") == "bbbb"
        assert await _lookup(cache, "c") == "cccc"
        assert await _lookup(cache, "huge") is None
    finally:
        await client.aclose()


async def test_concurrent_lookups_of_several_topics_each_get_their_current_epoch(
    redis_url: str, topic: str
) -> None:
    client = _client(redis_url)
    reader = EpochReader(client)
    drafts = EpochCache[str](reader, topic, ttl_seconds=300, max_bytes=100, size_of=len)
    keys = EpochCache[str](reader, f"{topic}-keys", ttl_seconds=300, max_bytes=100, size_of=len)
    try:
        await bump_epochs(client, [(topic, "wf_1"), (topic, "wf_1"), (topic, "wf_2")])
        await bump_epochs(client, [(f"{topic}-keys", "wf_1")])

        lookups = [drafts.epoch("wf_1"), drafts.epoch("wf_2"), drafts.epoch("wf_3")]
        lookups += [keys.epoch("wf_1"), keys.epoch("wf_2")]
        epochs = await asyncio.gather(*(lookups * 20))

        assert set(epochs[0::5]) == {b"2"}
        assert set(epochs[1::5]) == {b"1"}
        assert set(epochs[2::5]) == {b"0"}
        assert set(epochs[3::5]) == {b"1"}
        assert set(epochs[4::5]) == {b"0"}
    finally:
        await client.aclose()


async def test_nothing_is_served_during_a_redis_outage(link: RedisLink, topic: str) -> None:
    client = _client(link.url)
    cache = _cache(client, topic)
    try:
        await _cache_value(cache, "wf_1", "draft")

        await link.cut()

        assert await cache.epoch("wf_1") is None
        assert await _lookup(cache, "wf_1") is None
    finally:
        await client.aclose()


async def test_a_change_committed_during_an_outage_is_announced_when_redis_returns(
    link: RedisLink, redis_url: str, topic: str, tmp_path: Path
) -> None:
    # Process A cached a draft before the outage and does not look during it; process B
    # commits a change while Redis is unreachable. B must not leave A serving the old draft.
    reader = _client(redis_url)
    here = _cache(reader, topic)
    writer = AppContext.create(
        make_settings(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", redis_url=link.url)
    )
    try:
        await _cache_value(here, "wf_1", "old draft")
        await link.cut()

        await writer.announce_changes({(topic, "wf_1")})  # logged, kept, retried
        assert await _lookup(here, "wf_1") == "old draft"  # (only a hop we cut is down)

        await link.restore()
        for _ in range(100):
            if await _lookup(here, "wf_1") is None:
                break
            await asyncio.sleep(0.05)

        assert await _lookup(here, "wf_1") is None
    finally:
        await writer.close()
        await reader.aclose()
