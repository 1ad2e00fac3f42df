"""Which version a new session of an agent runs: pinned, latest, or the canary's share."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from support import OrgHandle, publish, replace_draft, workflow_document
from voxflow.agents.models import Agent
from voxflow.agents.repository import AgentRepository
from voxflow.agents.service import resolve_version
from voxflow.core.context import AppContext

KEYS = [f"caller-{n}" for n in range(10_000)]


async def deploy(client: httpx.AsyncClient, org: OrgHandle, **body: Any) -> str:
    response = await client.post("/v1/agents", json={"name": "luigis", **body}, headers=org.headers)
    assert response.status_code == 201, response.text
    agent_id: str = response.json()["id"]
    return agent_id


async def resolve_all(
    context: AppContext, org: OrgHandle, agent_id: str, keys: list[str]
) -> list[int]:
    async with context.sessionmaker() as session:
        agent: Agent | None = await AgentRepository(session).get(org.id, agent_id)
        assert agent is not None
        return [await resolve_version(session, agent, key) for key in keys]


class TestResolveVersion:
    async def test_a_pinned_agent_runs_its_version(
        self, client: httpx.AsyncClient, org: OrgHandle, context: AppContext, workflow_id: str
    ) -> None:
        agent_id = await deploy(client, org, workflow_id=workflow_id, version=1)

        assert set(await resolve_all(context, org, agent_id, KEYS[:50])) == {1}

    async def test_latest_follows_each_new_publish(
        self, client: httpx.AsyncClient, org: OrgHandle, context: AppContext, workflow_id: str
    ) -> None:
        agent_id = await deploy(client, org, workflow_id=workflow_id)
        assert await resolve_all(context, org, agent_id, ["a"]) == [2]

        await replace_draft(client, org, workflow_id, workflow_document(greeting="Three."))
        await publish(client, org, workflow_id)

        assert await resolve_all(context, org, agent_id, ["a"]) == [3]

    async def test_a_rollback_takes_effect_for_new_sessions(
        self, client: httpx.AsyncClient, org: OrgHandle, context: AppContext, workflow_id: str
    ) -> None:
        agent_id = await deploy(client, org, workflow_id=workflow_id)

        patched = await client.patch(
            f"/v1/agents/{agent_id}", json={"version": 1}, headers=org.headers
        )
        assert patched.status_code == 200

        assert await resolve_all(context, org, agent_id, ["a", "b"]) == [1, 1]

    async def test_the_same_session_key_always_gets_the_same_version(
        self, client: httpx.AsyncClient, org: OrgHandle, context: AppContext, workflow_id: str
    ) -> None:
        canary = {"version": 2, "percent": 50}
        agent_id = await deploy(client, org, workflow_id=workflow_id, version=1, canary=canary)

        first = await resolve_all(context, org, agent_id, KEYS[:200])
        again = await resolve_all(context, org, agent_id, KEYS[:200])

        assert first == again
        assert set(first) == {1, 2}

    @pytest.mark.parametrize("percent", [10, 50])
    async def test_the_canary_gets_its_share_of_session_keys(
        self,
        client: httpx.AsyncClient,
        org: OrgHandle,
        context: AppContext,
        workflow_id: str,
        percent: int,
    ) -> None:
        canary = {"version": 2, "percent": percent}
        agent_id = await deploy(client, org, workflow_id=workflow_id, version=1, canary=canary)

        versions = await resolve_all(context, org, agent_id, KEYS)

        share = 100 * versions.count(2) / len(KEYS)
        assert percent - 2 <= share <= percent + 2, share
        assert set(versions) == {1, 2}

    @pytest.mark.parametrize(("percent", "expected"), [(0, {1}), (100, {2})])
    async def test_0_and_100_percent_are_none_and_all(
        self,
        client: httpx.AsyncClient,
        org: OrgHandle,
        context: AppContext,
        workflow_id: str,
        percent: int,
        expected: set[int],
    ) -> None:
        canary = {"version": 2, "percent": percent}
        agent_id = await deploy(client, org, workflow_id=workflow_id, version=1, canary=canary)

        assert set(await resolve_all(context, org, agent_id, KEYS[:500])) == expected

    async def test_a_removed_canary_sends_everyone_to_the_pinned_version(
        self, client: httpx.AsyncClient, org: OrgHandle, context: AppContext, workflow_id: str
    ) -> None:
        canary = {"version": 2, "percent": 50}
        agent_id = await deploy(client, org, workflow_id=workflow_id, version=1, canary=canary)

        await client.patch(f"/v1/agents/{agent_id}", json={"canary": None}, headers=org.headers)

        assert set(await resolve_all(context, org, agent_id, KEYS[:500])) == {1}
