"""Changes reach the runtime loaders of other processes: real processes, real Redis, one database.

A child process (`OBSERVER`) loads an agent in a tight loop and reports each new version it
sees, with the time (`time.monotonic()` is system-wide on Linux, so both processes share it).
This process changes the agent or publishes and notes when the change committed.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI

from support import (
    OrgHandle,
    client_for,
    configured_app,
    create_workflow,
    make_settings,
    new_org,
    publish,
    replace_draft,
    workflow_document,
)
from voxflow.core.cache import CHANGES_CHANNEL
from voxflow.core.context import AppContext
from voxflow.runtime import RuntimeLoader

# Generous against a busy CI machine; bench/loader.py measures the real figure (target 100 ms).
CROSS_PROCESS_BOUND_S = 1.0

OBSERVER = """
import asyncio, json, sys, time
from voxflow.core.context import AppContext
from voxflow.core.logging import configure_logging
from voxflow.core.settings import Settings
from voxflow.runtime import RuntimeLoader

async def main(database_url, redis_url, ttl, org_id, agent_id, changes):
    configure_logging("warning", "json")  # logs to stderr: stdout carries the reports
    settings = Settings(
        database_url=database_url, redis_url=redis_url or None,
        runtime_resolution_ttl_s=float(ttl), environment="test",
    )
    context = AppContext.create(settings)
    loader = RuntimeLoader(context)
    await loader.start()
    seen = (await loader.load_agent(org_id, agent_id, "caller")).version_number
    print("REPORT", json.dumps({"version": seen, "listening": loader.listening}), flush=True)
    deadline = time.monotonic() + 60
    while changes and time.monotonic() < deadline:
        version = (await loader.load_agent(org_id, agent_id, "caller")).version_number
        if version != seen:
            seen, changes = version, changes - 1
            print("REPORT", json.dumps({"version": seen, "at": time.monotonic()}), flush=True)
        await asyncio.sleep(0.001)
    await loader.close()
    await context.close()

asyncio.run(main(*sys.argv[1:6], int(sys.argv[6])))
"""


class Observer:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def report(self, timeout_s: float = 30.0) -> dict[str, Any]:
        assert self.process.stdout is not None
        async with asyncio.timeout(timeout_s):
            while True:
                line = await self.process.stdout.readline()
                if not line:
                    raise AssertionError("the observer exited early (see its stderr)")
                if line.startswith(b"REPORT "):
                    report: dict[str, Any] = json.loads(line[len(b"REPORT ") :])
                    return report


@asynccontextmanager
async def observer(
    database_url: str, redis_url: str, ttl_s: float, org: OrgHandle, agent_id: str, changes: int
) -> AsyncIterator[Observer]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        OBSERVER,
        database_url,
        redis_url,
        str(ttl_s),
        org.id,
        agent_id,
        str(changes),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        yield Observer(process)
        async with asyncio.timeout(30):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


class Deployment:
    """An org, a workflow with versions 1 and 2, and an agent on latest, made over HTTP."""

    def __init__(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        self.context: AppContext = app.state.context
        self.client = client
        self.commits: list[float] = []
        # Called right after each commit, before the change is published.
        self.context.change_listeners.append(lambda _changes: self.commits.append(time.monotonic()))

    async def setup(self) -> None:
        self.org = await new_org(self.context)
        self.workflow_id = await create_workflow(self.client, self.org)
        await publish(self.client, self.org, self.workflow_id)
        await self.publish_another()
        response = await self.client.post(
            "/v1/agents",
            json={"name": "luigis", "workflow_id": self.workflow_id},
            headers=self.org.headers,
        )
        assert response.status_code == 201, response.text
        self.agent_id: str = response.json()["id"]

    async def publish_another(self) -> float:
        draft = workflow_document(greeting=f"Version at {time.monotonic()}")
        await replace_draft(self.client, self.org, self.workflow_id, draft)
        await publish(self.client, self.org, self.workflow_id)
        return self.commits[-1]

    async def pin(self, version: int | str) -> float:
        response = await self.client.patch(
            f"/v1/agents/{self.agent_id}", json={"version": version}, headers=self.org.headers
        )
        assert response.status_code == 200, response.text
        return self.commits[-1]


@asynccontextmanager
async def deployment(database_url: str, **settings: Any) -> AsyncIterator[Deployment]:
    async with configured_app(database_url, **settings) as app, client_for(app) as client:
        deployed = Deployment(app, client)
        await deployed.setup()
        yield deployed


class TestWithRedis:
    async def test_re_pins_and_publishes_reach_the_other_process(
        self, database_url: str, redis_url: str
    ) -> None:
        async with deployment(database_url, redis_url=redis_url) as deployed:
            args = (database_url, redis_url, 30.0, deployed.org, deployed.agent_id, 3)
            async with observer(*args) as child:
                assert await child.report() == {"version": 2, "listening": True}

                changes: list[tuple[Callable[[], Awaitable[float]], int]] = [
                    (lambda: deployed.pin(1), 1),
                    (lambda: deployed.pin("latest"), 2),
                    (deployed.publish_another, 3),
                ]
                for change, expected in changes:
                    committed = await change()
                    report = await child.report()
                    assert report["version"] == expected
                    assert report["at"] - committed < CROSS_PROCESS_BOUND_S, report


class TestWithoutRedis:
    async def test_the_other_process_sees_a_change_within_the_ttl(self, database_url: str) -> None:
        ttl = 0.3
        async with deployment(database_url) as deployed:
            args = (database_url, "", ttl, deployed.org, deployed.agent_id, 1)
            async with observer(*args) as child:
                assert await child.report() == {"version": 2, "listening": False}

                committed = await deployed.pin(1)

                report = await child.report()
                assert report["version"] == 1
                assert report["at"] - committed < ttl + CROSS_PROCESS_BOUND_S, report


class RedisRelay:
    """A TCP relay to the real Redis that can be cut and restored, as a Redis restart would."""

    def __init__(self, redis_url: str) -> None:
        target = urlsplit(redis_url)
        self.target = (target.hostname or "127.0.0.1", target.port or 6379)
        self.db = target.path
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}{self.db}"

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()
        self._server = None

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        self._writers |= {writer, upstream_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))


async def wait_until(condition: Any, timeout_s: float) -> float:
    started = time.monotonic()
    async with asyncio.timeout(timeout_s):
        while True:
            if condition():
                break
            await asyncio.sleep(0.005)
    return time.monotonic() - started


async def poll_until(load: Any, expected: int, timeout_s: float) -> float:
    """Seconds until `await load()` returns `expected`."""
    started = time.monotonic()
    async with asyncio.timeout(timeout_s):
        while True:
            if await load() == expected:
                break
            await asyncio.sleep(0.005)
    return time.monotonic() - started


class TestSubscriptionLost:
    async def test_the_ttl_applies_until_resubscribed(
        self, database_url: str, redis_url: str
    ) -> None:
        ttl = 2.0
        relay = RedisRelay(redis_url)
        await relay.open()
        away = AppContext.create(
            make_settings(database_url, redis_url=relay.url, runtime_resolution_ttl_s=ttl)
        )
        loader = RuntimeLoader(away)
        try:
            async with deployment(database_url, redis_url=redis_url) as deployed:
                await loader.start()
                assert loader.listening
                org, agent_id = deployed.org.id, deployed.agent_id

                async def version() -> int:
                    return (await loader.load_agent(org, agent_id, "k")).version_number

                assert await version() == 2
                loaded_at = time.monotonic()

                await relay.cut()
                await wait_until(lambda: not loader.listening, 2.0)
                await deployed.pin(1)
                # The message is lost with the connection: only the TTL brings the change.
                if time.monotonic() - loaded_at < ttl * 0.8:
                    assert await version() == 2
                await poll_until(version, 1, ttl + CROSS_PROCESS_BOUND_S)

                await relay.open()
                await wait_until(lambda: loader.listening, 5.0)
                assert await version() == 1  # cached again, trusted until a change arrives
                await deployed.pin("latest")
                assert await poll_until(version, 2, ttl) < CROSS_PROCESS_BOUND_S
        finally:
            await loader.close()
            await away.close()
            await relay.cut()

    async def test_malformed_messages_do_not_stop_the_subscription(
        self, database_url: str, redis_url: str
    ) -> None:
        ttl = 30.0
        async with deployment(database_url, redis_url=redis_url) as deployed:
            elsewhere = AppContext.create(
                make_settings(database_url, redis_url=redis_url, runtime_resolution_ttl_s=ttl)
            )
            loader = RuntimeLoader(elsewhere)
            org, agent_id = deployed.org.id, deployed.agent_id

            async def version() -> int:
                return (await loader.load_agent(org, agent_id, "k")).version_number

            try:
                await loader.start()
                assert await version() == 2
                assert elsewhere.redis is not None
                for garbage in (b"\xff\x00", b"{}", b"[1, 2, 3]", b'[["agent"]]', b"null"):
                    await elsewhere.redis.publish(CHANGES_CHANNEL, garbage)

                await deployed.pin(1)

                assert await poll_until(version, 1, ttl) < CROSS_PROCESS_BOUND_S
                assert loader.listening
            finally:
                await loader.close()
                await elsewhere.close()
