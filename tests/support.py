"""Helpers the tests share: settings for a test app, orgs created through the service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from fastapi import FastAPI

from voxflow.core.context import AppContext
from voxflow.core.settings import Settings
from voxflow.orgs import service as org_service

# A fixed vault key for tests (32 bytes of 0x01); tests of key files and rotation set their own.
TEST_MASTER_KEY = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "environment": "test",
        "login_rate_limit": "1000/minute",
        "api_rate_limit": "100000/minute",
        "log_format": "json",
        "master_key": TEST_MASTER_KEY,
    }
    values.update(overrides)
    return Settings.model_validate(values)


@dataclass(frozen=True)
class OrgHandle:
    id: str
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


async def new_org(context: AppContext, name: str = "acme") -> OrgHandle:
    async with context.sessionmaker() as session:
        created = await org_service.create_org(session, name)
        await session.commit()
    return OrgHandle(id=created.org.id, api_key=created.api_key.key)


@dataclass(frozen=True)
class UserHandle:
    id: str
    email: str
    password: str


async def new_user(
    context: AppContext,
    org_id: str,
    role: str = "member",
    *,
    email: str | None = None,
    password: str | None = None,
) -> UserHandle:
    """A person who can log in, created through the service (as `voxflow users create` does)."""
    import uuid

    from voxflow.orgs.models import Role

    email = email or f"user-{uuid.uuid4().hex[:12]}@example.com"
    password = password or f"pw-{uuid.uuid4().hex}"
    async with context.sessionmaker() as session:
        user = await org_service.create_user(
            session, email, password, org_id=org_id, role=Role(role)
        )
        await session.commit()
    return UserHandle(id=user.id, email=email, password=password)


async def login_headers(client: httpx.AsyncClient, user: UserHandle) -> dict[str, str]:
    """Log in and return headers that replay the session cookie explicitly."""
    response = await client.post(
        "/v1/auth/login", json={"email": user.email, "password": user.password}
    )
    assert response.status_code == 200, response.text
    token = response.cookies["voxflow_session"]
    client.cookies.clear()
    return {"Cookie": f"voxflow_session={token}"}


def client_for(app: FastAPI, host: str = "10.9.9.9") -> httpx.AsyncClient:
    """A client for `app` whose requests come from the IP address `host`."""
    transport = httpx.ASGITransport(app=app, client=(host, 1234))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@asynccontextmanager
async def configured_app(database_url: str, **overrides: object) -> AsyncIterator[FastAPI]:
    """A separately configured app (one "process") on `database_url`, closed afterwards."""
    from voxflow.api.app import create_app

    application = create_app(make_settings(database_url, **overrides))
    try:
        yield application
    finally:
        await application.state.context.close()


# --- workflows and agents through the API (tests/workflows, tests/agents, tests/api) ---


def workflow_document(
    name: str = "Opening hours", greeting: str = "We're open 5 to 11 pm."
) -> dict:
    """A small valid `voxflow/v1` document (JSON-ready): greet, then end."""
    return {
        "schema": "voxflow/v1",
        "name": name,
        "start": "greet",
        "nodes": [
            {"id": "greet", "type": "say", "text": greeting, "next": "bye"},
            {"id": "bye", "type": "end", "text": "Goodbye!"},
        ],
    }


async def create_workflow(
    client: httpx.AsyncClient, org: OrgHandle, document: dict | None = None
) -> str:
    """POST a JSON document as `org`; returns the new workflow id."""
    response = await client.post(
        "/v1/workflows", json=document or workflow_document(), headers=org.headers
    )
    assert response.status_code == 201, response.text
    workflow_id: str = response.json()["id"]
    return workflow_id


async def replace_draft(
    client: httpx.AsyncClient, org: OrgHandle, workflow_id: str, document: dict
) -> httpx.Response:
    """Read the draft's ETag and PUT `document` with it, as an editor would."""
    etag = (await client.get(f"/v1/workflows/{workflow_id}", headers=org.headers)).headers["etag"]
    response = await client.put(
        f"/v1/workflows/{workflow_id}", json=document, headers={**org.headers, "If-Match": etag}
    )
    assert response.status_code == 200, response.text
    return response


async def publish(client: httpx.AsyncClient, org: OrgHandle, workflow_id: str) -> int:
    """Publish the draft; returns the new version number."""
    response = await client.post(f"/v1/workflows/{workflow_id}/publish", headers=org.headers)
    assert response.status_code == 201, response.text
    number: int = response.json()["number"]
    return number


@dataclass(frozen=True)
class Deployed:
    """A workflow published once and an agent on it, in `org`."""

    org: OrgHandle
    workflow_id: str
    agent_id: str


async def deploy(
    client: httpx.AsyncClient, org: OrgHandle, document_yaml: bytes, name: str = "luigis"
) -> Deployed:
    created = await client.post(
        "/v1/workflows",
        content=document_yaml,
        headers={**org.headers, "Content-Type": "application/yaml"},
    )
    assert created.status_code == 201, created.text
    workflow_id: str = created.json()["id"]
    await publish(client, org, workflow_id)
    agent = await client.post(
        "/v1/agents", json={"name": name, "workflow_id": workflow_id}, headers=org.headers
    )
    assert agent.status_code == 201, agent.text
    return Deployed(org, workflow_id, agent.json()["id"])


async def any_in_files(paths: list[Path], needles: list[str]) -> bool:
    """Whether any of `needles` occurs in any of the files, read by another process.

    Never read a live SQLite database file in the test process itself: closing that descriptor
    drops every POSIX lock the process holds on the file, SQLite's included, and the open
    connections of other tests then read stale or broken pages.
    """
    if not paths:
        return False
    patterns = [argument for needle in needles for argument in ("-e", needle)]
    grep = await asyncio.create_subprocess_exec(
        "grep", "-a", "-F", "-q", *patterns, *map(str, paths)
    )
    return await grep.wait() == 0
