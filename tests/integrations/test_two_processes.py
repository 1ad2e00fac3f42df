"""Two real processes look up one expired token together: the provider sees one refresh.

Airtable's refresh tokens work once, so a second refresh would be answered `invalid_grant` and
the connection marked for reconnection. Each process (`token_worker.py`) makes 10 concurrent
lookups; a local token endpoint counts the refresh requests. With Redis the Redis lock keeps
them apart, without it PostgreSQL's advisory lock.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from integrations.oauth_support import stored_connection
from support import TEST_MASTER_KEY, make_settings, new_org
from voxflow.core.context import AppContext
from voxflow.core.db import utcnow
from voxflow.integrations.oauth import TokenSet

WORKER = Path(__file__).with_name("token_worker.py")
LOOKUPS_PER_PROCESS = 10


class TokenEndpoint:
    """A provider's token endpoint on a real socket; slow enough for every lookup to pile up."""

    def __init__(self) -> None:
        self.refresh_tokens: list[str] = []
        self.issued: list[str] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                sent = parse_qs(self.rfile.read(length).decode())
                time.sleep(0.3)
                token = f"access-{uuid.uuid4().hex}"
                endpoint.refresh_tokens.append(sent.get("refresh_token", [""])[0])
                endpoint.issued.append(token)
                body = json.dumps(
                    {"access_token": token, "token_type": "bearer", "expires_in": 3600}
                ).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@contextmanager
def token_endpoint() -> Iterator[TokenEndpoint]:
    endpoint = TokenEndpoint()
    thread = threading.Thread(target=endpoint.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield endpoint
    finally:
        endpoint.server.shutdown()
        endpoint.server.server_close()


def provider_settings(endpoint: TokenEndpoint) -> dict[str, str]:
    return {
        "generic_oauth_authorize_url": f"{endpoint.url}/authorize",
        "generic_oauth_token_url": f"{endpoint.url}/token",
        "generic_oauth_client_id": "acme-client",
        "generic_oauth_client_secret": "acme-secret",
    }


@asynccontextmanager
async def worker(
    env: dict[str, str], cwd: Path, org_id: str, name: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER),
        org_id,
        name,
        str(LOOKUPS_PER_PROCESS),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=env,
        cwd=cwd,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def report(process: asyncio.subprocess.Process, marker: bytes) -> bytes:
    assert process.stdout is not None
    async with asyncio.timeout(60):
        while True:
            line = await process.stdout.readline()
            if not line:
                raise AssertionError("the worker exited early (see its stderr)")
            if line.startswith(marker):
                return line[len(marker) :].strip()


@pytest.mark.slow
@pytest.mark.parametrize("lock", ["redis", "postgresql"])
async def test_one_refresh_across_two_processes(
    database_url: str, request: pytest.FixtureRequest, tmp_path: Path, lock: str
) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("a SQLite deployment is one process")
    redis_url = request.getfixturevalue("redis_url") if lock == "redis" else None
    with token_endpoint() as endpoint:
        settings = provider_settings(endpoint)
        context = AppContext.create(make_settings(database_url, redis_url=redis_url, **settings))
        try:
            org = await new_org(context)
            expired = TokenSet(
                access_token=f"access-{uuid.uuid4().hex}",
                refresh_token="refresh-1",
                token_type="Bearer",
                expires_at=utcnow() - timedelta(minutes=1),
                scope="",
            )
            connection = await stored_connection(
                context, org.id, provider="generic", name="CRM", tokens=expired
            )
        finally:
            await context.close()
        env = {
            **os.environ,
            "VOXFLOW_DATABASE_URL": database_url,
            "VOXFLOW_MASTER_KEY": TEST_MASTER_KEY,
            "VOXFLOW_ENVIRONMENT": "test",
            "NO_PROXY": "127.0.0.1",
            **{f"VOXFLOW_{key.upper()}": value for key, value in settings.items()},
        }
        env.pop("VOXFLOW_REDIS_URL", None)
        if redis_url:
            env["VOXFLOW_REDIS_URL"] = redis_url

        async with (
            worker(env, tmp_path, org.id, connection.name) as first,
            worker(env, tmp_path, org.id, connection.name) as second,
        ):
            for process in (first, second):
                await report(process, b"READY")
            for process in (first, second):
                assert process.stdin is not None
                process.stdin.write(b"go\n")
                await process.stdin.drain()
            results = [json.loads(await report(p, b"RESULT")) for p in (first, second)]
            for process in (first, second):
                assert await process.wait() == 0

    assert endpoint.refresh_tokens == ["refresh-1"]
    assert [len(tokens) for tokens in results] == [LOOKUPS_PER_PROCESS] * 2
    assert {token for tokens in results for token in tokens} == set(endpoint.issued)
