"""What bench/voice_*.py share: a throwaway database and app, the bench workflow, voice calls.

The database is a temporary SQLite file, or a new database on a PostgreSQL server (dropped
after); the org, workflow, agent and calls are created through the API, as the tests do.
bench/ is not a package; benches put it on sys.path and import this module by name.
"""

from __future__ import annotations

import asyncio
import base64
import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from _support import deploy
from control_plane import database_url as pg_database_url
from control_plane import pg_execute
from fastapi import FastAPI

from sessions import BENCH_WORKFLOW, TURNS
from voxflow.api.app import create_app
from voxflow.core.context import AppContext
from voxflow.core.migrations import upgrade
from voxflow.core.settings import Settings
from voxflow.orgs import service as org_service
from voxflow.sessions.models import Call
from voxflow.sessions.repository import CallRepository

# The call the voice benches hold is bench/sessions.py's loop: each answer validated (integer
# + CEL), a branch picks a templated line, and the call is back at `ask`.
ANSWERS = TURNS


@dataclass
class VoiceBench:
    app: FastAPI
    context: AppContext
    http: httpx.AsyncClient
    org_id: str
    api_key: str
    agent_id: str
    backend: str
    database_url: str
    master_key: str

    def server_env(self, public_url: str) -> dict[str, str]:
        """The environment of a server process on the same database (no other VOXFLOW_*)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOXFLOW_")}
        return env | {
            "VOXFLOW_DATABASE_URL": self.database_url,
            "VOXFLOW_MASTER_KEY": self.master_key,
            "VOXFLOW_LOG_LEVEL": "warning",
            "VOXFLOW_API_RATE_LIMIT": "100000000/minute",
            "VOXFLOW_PUBLIC_URL": public_url,
        }

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    async def start_call(self) -> dict[str, Any]:
        """POST /v1/sessions in voice mode: session_id, audio_url (with its token)…"""
        response = await self.http.post(
            "/v1/sessions", json={"agent_id": self.agent_id, "mode": "voice"}, headers=self.headers
        )
        if response.status_code != 201:
            raise RuntimeError(f"POST /v1/sessions: {response.status_code} {response.text}")
        started: dict[str, Any] = response.json()
        return started

    async def call(self, session_id: str) -> Call:
        async with self.context.sessionmaker() as db:
            call = await CallRepository(db).get(self.org_id, session_id)
        if call is None:
            raise RuntimeError(f"no call {session_id}")
        return call


@asynccontextmanager
async def voice_bench(postgres: str | None, public_url: str = "") -> AsyncIterator[VoiceBench]:
    """A migrated throwaway database, the app on it (not served), an org and the bench agent."""
    created: str | None = None
    with tempfile.TemporaryDirectory(prefix="voxflow-bench-voice-") as folder:
        if postgres:
            created = f"voxflow_bench_voice_{uuid.uuid4().hex[:8]}"
            await asyncio.to_thread(pg_execute, postgres, f'CREATE DATABASE "{created}"')
            url = pg_database_url(postgres, created)
        else:
            url = f"sqlite+aiosqlite:///{Path(folder) / 'voxflow.db'}"
        try:
            await asyncio.to_thread(upgrade, url)
            master_key = base64.b64encode(os.urandom(32)).decode()
            settings = Settings(
                database_url=url,
                environment="test",
                log_level="warning",
                api_rate_limit="100000000/minute",
                master_key=master_key,
                public_url=public_url or "http://127.0.0.1:8000",
            )
            app = create_app(settings)
            context: AppContext = app.state.context
            async with context.sessionmaker() as session:
                org = await org_service.create_org(session, "bench")
                await session.commit()
            api_key = org.api_key.key
            transport = httpx.ASGITransport(app=app)
            try:
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://testserver", timeout=60
                ) as http:
                    agent_id = await deploy(http, api_key, "voice-bench", BENCH_WORKFLOW.encode())
                    backend = "postgresql" if postgres else "sqlite"
                    yield VoiceBench(
                        app, context, http, org.org.id, api_key, agent_id, backend, url, master_key
                    )
            finally:
                await context.close()
        finally:
            if created is not None and postgres:
                with suppress(Exception):
                    drop = f'DROP DATABASE IF EXISTS "{created}" WITH (FORCE)'
                    await asyncio.to_thread(pg_execute, postgres, drop)
