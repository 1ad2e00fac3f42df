"""Sessions fixtures: Luigi's published behind an agent, and a real server for WebSockets."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from support import Deployed, OrgHandle, deploy


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
