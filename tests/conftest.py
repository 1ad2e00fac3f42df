"""Shared fixtures: every database test runs on SQLite and on PostgreSQL.

The PostgreSQL server at VOXFLOW_TEST_POSTGRES_URL (default: the local one) gets a throwaway
database per run. When it is unreachable the PostgreSQL half is skipped with a loud warning,
except in CI (CI=true), where that is a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from support import Deployed, OrgHandle, deploy, make_settings, new_org
from voxflow.api.app import create_app
from voxflow.core.context import AppContext
from voxflow.core.migrations import upgrade

POSTGRES_URL = os.environ.get(
    "VOXFLOW_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("VOXFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
BACKENDS = ["sqlite", "postgresql"]


def _admin_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _pg_execute(url: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(_admin_dsn(url), timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def _create_pg_database() -> str | None:
    name = f"voxflow_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_pg_execute(POSTGRES_URL, f'CREATE DATABASE "{name}"'))
    except (TimeoutError, OSError, ConnectionError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {POSTGRES_URL} is unreachable in CI: {exc}")
        warnings.warn(
            f"\n\n*** PostgreSQL unreachable ({exc}): PostgreSQL tests are SKIPPED ***\n",
            stacklevel=1,
        )
        return None
    return POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"


def _drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    asyncio.run(_pg_execute(POSTGRES_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated, empty database of each backend, shared by the tests of one session."""
    yield from migrated_database(request.param, tmp_path_factory.mktemp("db"))


def migrated_database(backend: str, folder: Path) -> Iterator[str]:
    """A new migrated database on `backend` (a file in `folder` for SQLite), dropped after."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{folder / 'voxflow.db'}"
        upgrade(url)
        yield url
        return
    url = _create_pg_database()
    if url is None:
        pytest.skip("PostgreSQL unreachable")
    try:
        upgrade(url)
        yield url
    finally:
        _drop_pg_database(url)


@pytest.fixture(scope="session")
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(database_url))
    yield application
    await application.state.context.close()


@pytest.fixture(scope="session")
def context(app: FastAPI) -> AppContext:
    ctx: AppContext = app.state.context
    return ctx


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(f"10.0.{uuid.uuid4().int % 250}.1", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def org(context: AppContext) -> OrgHandle:
    """A fresh org with an owner API key: tests never see each other's data."""
    return await new_org(context)


@pytest.fixture
async def other_org(context: AppContext) -> OrgHandle:
    return await new_org(context, "other")


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="session")
def luigis_yaml() -> bytes:
    return (EXAMPLES / "luigis.yaml").read_bytes()


@pytest.fixture
async def luigis_agent(client: httpx.AsyncClient, org: OrgHandle, luigis_yaml: bytes) -> Deployed:
    return await deploy(client, org, luigis_yaml)


@pytest.fixture
async def live_url(app: FastAPI) -> AsyncIterator[str]:
    """The app served by uvicorn on a free port of 127.0.0.1, in this event loop."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_config=None)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers a flag, not an event)
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"127.0.0.1:{port}"
    server.should_exit = True
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _redis_reachable(url: str) -> bool:
    from redis import Redis
    from redis.exceptions import RedisError

    client = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        return bool(client.ping())
    except (RedisError, OSError):
        return False
    finally:
        client.close()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The real Redis (db 15) for tests of cross-process behaviour; skipped when unreachable."""
    if not _redis_reachable(REDIS_URL):
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis at {REDIS_URL} is unreachable in CI")
        pytest.skip(f"Redis at {REDIS_URL} is unreachable")
    return REDIS_URL
