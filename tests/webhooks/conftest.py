"""Webhook fixtures: a real HTTP endpoint on 127.0.0.1, and an app that may deliver to it.

The only fake is at the HTTP boundary: the receiver is a real server answering with scripted
statuses; requests go through the SSRF-guarded transport (private networks allowed).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import uvicorn

from support import client_for, configured_app, new_org
from voxflow.core.context import AppContext
from voxflow.webhooks.delivery import close_sender
from webhooks.webhook_support import Hooks, Receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    endpoint = Receiver()
    config = uvicorn.Config(endpoint, host="127.0.0.1", port=0, lifespan="off", log_config=None)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers a flag, not an event)
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    endpoint.base_url = f"http://127.0.0.1:{port}"
    yield endpoint
    server.should_exit = True
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest.fixture
async def hooks(database_url: str) -> AsyncIterator[Hooks]:
    async with configured_app(database_url, webhooks_allow_private_networks=True) as app:
        context: AppContext = app.state.context
        org = await new_org(context, "hooks")
        async with client_for(app) as client:
            yield Hooks(app, client, org)
        await close_sender(context)
