"""The runtime loader in one process: which version an agent runs, overrides, caching."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from support import OrgHandle, create_workflow, make_settings, publish, replace_draft
from support import workflow_document as document
from voxflow.agents.models import Agent
from voxflow.agents.repository import AgentRepository
from voxflow.agents.service import resolve_version
from voxflow.core.context import AppContext
from voxflow.core.errors import Conflict, NotFound
from voxflow.core.ids import new_id
from voxflow.dsl import dump_canonical, parse_document
from voxflow.runtime import RuntimeLoader, runtime_loader
from voxflow.workflows.models import Workflow


@pytest.fixture
async def workflow_id(client: httpx.AsyncClient, org: OrgHandle) -> str:
    """A workflow with versions 1 and 2 published."""
    workflow_id = await create_workflow(client, org, document(greeting="Version one."))
    await publish(client, org, workflow_id)
    await replace_draft(client, org, workflow_id, document(greeting="Version two."))
    await publish(client, org, workflow_id)
    return workflow_id


@pytest.fixture
async def loader(context: AppContext) -> AsyncIterator[RuntimeLoader]:
    """A loader of its own (not the process's shared one), so no test sees another's cache."""
    instance = RuntimeLoader(context)
    await instance.start()
    yield instance
    await instance.close()


async def deploy(client: httpx.AsyncClient, org: OrgHandle, workflow_id: str, **body: Any) -> str:
    response = await client.post(
        "/v1/agents",
        json={"name": f"agent-{new_id('x')[-8:].lower()}", "workflow_id": workflow_id, **body},
        headers=org.headers,
    )
    assert response.status_code == 201, response.text
    agent_id: str = response.json()["id"]
    return agent_id


async def patch_agent(
    client: httpx.AsyncClient, org: OrgHandle, agent_id: str, **body: Any
) -> None:
    response = await client.patch(f"/v1/agents/{agent_id}", json=body, headers=org.headers)
    assert response.status_code == 200, response.text


def greeting(compiled: Any) -> str:
    text: str = compiled.node("greet").text
    return text


@contextmanager
def counting_queries(context: AppContext) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(context.engine.sync_engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(context.engine.sync_engine, "before_cursor_execute", count)


class TestWhichVersion:
    async def test_an_agent_on_latest_runs_the_newest_version(
        self, client: httpx.AsyncClient, org: OrgHandle, workflow_id: str, loader: RuntimeLoader
    ) -> None:
        agent_id = await deploy(client, org, workflow_id)

        loaded = await loader.load_agent(org.id, agent_id, "caller-1")

        assert (loaded.agent_id, loaded.org_id, loaded.workflow_id) == (
            agent_id,
            org.id,
            workflow_id,
        )
        assert loaded.version_number == 2
        assert loaded.compiled.id == loaded.version_id
        assert greeting(loaded.compiled) == "Version two."

    async def test_a_pinned_agent_runs_its_pin(
        self, client: httpx.AsyncClient, org: OrgHandle, workflow_id: str, loader: RuntimeLoader
    ) -> None:
        agent_id = await deploy(client, org, workflow_id, version=1)

        loaded = await loader.load_agent(org.id, agent_id, "caller-1")

        assert loaded.version_number == 1
        assert greeting(loaded.compiled) == "Version one."

    async def test_the_canary_is_chosen_per_session_key_as_the_service_does(
        self,
        client: httpx.AsyncClient,
        org: OrgHandle,
        context: AppContext,
        workflow_id: str,
        loader: RuntimeLoader,
    ) -> None:
        canary = {"version": 2, "percent": 30}
        agent_id = await deploy(client, org, workflow_id, version=1, canary=canary)
        keys = [f"caller-{n}" for n in range(300)]

        loaded = [(await loader.load_agent(org.id, agent_id, key)).version_number for key in keys]

        async with context.sessionmaker() as session:
            agent = await AgentRepository(session).get(org.id, agent_id)
            assert agent is not None
            expected = [await resolve_version(session, agent, key) for key in keys]
        assert loaded == expected
        assert set(loaded) == {1, 2}

    async def test_nothing_published_is_a_conflict(
        self, org: OrgHandle, context: AppContext, loader: RuntimeLoader
    ) -> None:
        # The API refuses such an agent; a row written otherwise must still fail cleanly.
        draft = dump_canonical(parse_document(document()))
        workflow = Workflow(
            id=new_id("wf"), org_id=org.id, name="unpublished", draft=draft, draft_sha256="0" * 64
        )
        agent = Agent(id=new_id("agt"), org_id=org.id, name="early", workflow_id=workflow.id)
        async with context.sessionmaker() as session:
            session.add(workflow)
            await session.flush()
            session.add(agent)
            await session.commit()

        with pytest.raises(Conflict, match="no published version"):
            await loader.load_agent(org.id, agent.id, "caller-1")


class TestNotFound:
    async def test_another_orgs_agent_is_not_found_even_when_cached(
        self,
        client: httpx.AsyncClient,
        org: OrgHandle,
        other_org: OrgHandle,
        workflow_id: str,
        loader: RuntimeLoader,
    ) -> None:
        agent_id = await deploy(client, org, workflow_id)

        with pytest.raises(NotFound):
            await loader.load_agent(other_org.id, agent_id, "caller-1")
        await loader.load_agent(org.id, agent_id, "caller-1")
        with pytest.raises(NotFound):
            await loader.load_agent(other_org.id, agent_id, "caller-1")
        with pytest.raises(NotFound):
            await loader.load_version(other_org.id, workflow_id, 1)

    async def test_a_deleted_agent_is_not_found_at_once(
        self, client: httpx.AsyncClient, org: OrgHandle, workflow_id: str, loader: RuntimeLoader
    ) -> None:
        agent_id = await deploy(client, org, workflow_id)
        await loader.load_agent(org.id, agent_id, "caller-1")

        deleted = await client.delete(f"/v1/agents/{agent_id}", headers=org.headers)
        assert deleted.status_code == 204

        with pytest.raises(NotFound):
            await loader.load_agent(org.id, agent_id, "caller-1")

    async def test_unknown_agent_and_version(
        self, org: OrgHandle, workflow_id: str, loader: RuntimeLoader
    ) -> None:
        with pytest.raises(NotFound):
            await loader.load_agent(org.id, "agt_missing", "caller-1")
        with pytest.raises(NotFound, match="no version 9"):
            await loader.load_version(org.id, workflow_id, 9)


class TestOverrides:
    async def test_settings_are_merged_and_variables_handed_out(
        self, client: httpx.AsyncClient, org: OrgHandle, workflow_id: str, loader: RuntimeLoader
    ) -> None:
        overrides = {"settings": {"language": "de"}, "variables": {"guest_name": "Ana"}}
        agent_id = await deploy(client, org, workflow_id, overrides=overrides)

        loaded = await loader.load_agent(org.id, agent_id, "caller-1")

        assert loaded.compiled.document.settings.language == "de"
        assert loaded.compiled.document.settings.max_duration_s == 600  # the version's own
        assert loaded.variables == {"guest_name": "Ana"}
        assert loaded.compiled.id == loaded.version_id
        plain = await loader.load_version(org.id, workflow_id, 2)
        assert plain.document.settings.language == "en"

    async def test_overridden_global_routes_are_compiled(
        self, client: httpx.AsyncClient, org: OrgHandle, workflow_id: str, loader: RuntimeLoader
    ) -> None:
        route = {"to": "bye", "intent": "leave", "examples": ["bye"], "when": "true"}
        overrides = {"settings": {"global_routes": [route]}}
        agent_id = await deploy(client, org, workflow_id, overrides=overrides)

        loaded = await loader.load_agent(org.id, agent_id, "caller-1")

        assert "/settings/global_routes/0/when" in loaded.compiled.conditions

    async def test_agents_with_equal_overrides_share_one_compiled_version(
        self, client: httpx.AsyncClient, org: OrgHandle, workflow_id: str, loader: RuntimeLoader
    ) -> None:
        overrides = {"settings": {"language": "fr", "tts": "piper"}}
        first = await deploy(client, org, workflow_id, overrides=overrides)
        second = await deploy(client, org, workflow_id, overrides=overrides)
        plain = await deploy(client, org, workflow_id, overrides={"variables": {"a": 1}})

        a = await loader.load_agent(org.id, first, "k")
        b = await loader.load_agent(org.id, second, "k")
        c = await loader.load_agent(org.id, plain, "k")

        assert a.compiled is b.compiled
        assert c.compiled is await loader.load_version(org.id, workflow_id, 2)
        assert a.compiled is not c.compiled

    async def test_changed_overrides_apply_to_the_next_load(
        self, client: httpx.AsyncClient, org: OrgHandle, workflow_id: str, loader: RuntimeLoader
    ) -> None:
        agent_id = await deploy(client, org, workflow_id)
        await loader.load_agent(org.id, agent_id, "k")

        await patch_agent(client, org, agent_id, overrides={"settings": {"language": "it"}})

        loaded = await loader.load_agent(org.id, agent_id, "k")
        assert loaded.compiled.document.settings.language == "it"


class TestChangesInThisProcess:
    async def test_a_publish_is_seen_by_the_next_load(
        self, client: httpx.AsyncClient, org: OrgHandle, workflow_id: str, loader: RuntimeLoader
    ) -> None:
        agent_id = await deploy(client, org, workflow_id)
        assert (await loader.load_agent(org.id, agent_id, "k")).version_number == 2

        await replace_draft(client, org, workflow_id, document(greeting="Version three."))
        await publish(client, org, workflow_id)

        loaded = await loader.load_agent(org.id, agent_id, "k")
        assert loaded.version_number == 3
        assert greeting(loaded.compiled) == "Version three."

    async def test_a_re_pin_is_seen_by_the_next_load(
        self, client: httpx.AsyncClient, org: OrgHandle, workflow_id: str, loader: RuntimeLoader
    ) -> None:
        agent_id = await deploy(client, org, workflow_id)
        assert (await loader.load_agent(org.id, agent_id, "k")).version_number == 2

        await patch_agent(client, org, agent_id, version=1)
        assert (await loader.load_agent(org.id, agent_id, "k")).version_number == 1

        await patch_agent(client, org, agent_id, version="latest")
        assert (await loader.load_agent(org.id, agent_id, "k")).version_number == 2

    async def test_a_read_overtaken_by_a_change_is_not_kept(
        self,
        client: httpx.AsyncClient,
        org: OrgHandle,
        context: AppContext,
        workflow_id: str,
        loader: RuntimeLoader,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        agent_id = await deploy(client, org, workflow_id)
        original = AgentRepository.get

        async def read_then_change(self: AgentRepository, org_id: str, agent: str) -> Any:
            row = await original(self, org_id, agent)
            for listener in context.change_listeners:  # a commit lands while we read
                listener({("agent", agent)})
            return row

        monkeypatch.setattr(AgentRepository, "get", read_then_change)
        await loader.load_agent(org.id, agent_id, "k")
        monkeypatch.setattr(AgentRepository, "get", original)

        with counting_queries(context) as statements:
            await loader.load_agent(org.id, agent_id, "k")
        assert any("FROM agents" in statement for statement in statements)


class TestCaches:
    async def test_a_cached_load_touches_no_database(
        self,
        client: httpx.AsyncClient,
        org: OrgHandle,
        context: AppContext,
        workflow_id: str,
        loader: RuntimeLoader,
    ) -> None:
        agent_id = await deploy(client, org, workflow_id, canary={"version": 1, "percent": 50})
        keys = [f"caller-{n}" for n in range(50)]
        for key in keys:  # both versions compiled and cached
            await loader.load_agent(org.id, agent_id, key)

        with counting_queries(context) as statements:
            again = [await loader.load_agent(org.id, agent_id, key) for key in keys]

        assert statements == []
        assert {loaded.version_number for loaded in again} == {1, 2}
        for loaded in again:
            version = await loader.load_version(org.id, workflow_id, loaded.version_number)
            assert loaded.compiled is version

    async def test_a_compiled_version_is_the_same_object_on_each_hit(
        self, org: OrgHandle, workflow_id: str, loader: RuntimeLoader
    ) -> None:
        first = await loader.load_version(org.id, workflow_id, 1)

        assert await loader.load_version(org.id, workflow_id, 1) is first
        assert await loader.load_version(org.id, workflow_id, 2) is not first

    async def test_sessions_starting_together_share_one_read_and_compile(
        self, org: OrgHandle, context: AppContext, workflow_id: str, loader: RuntimeLoader
    ) -> None:
        with counting_queries(context) as statements:
            loaded = await asyncio.gather(
                *(loader.load_version(org.id, workflow_id, 1) for _ in range(20))
            )

        assert len({id(compiled) for compiled in loaded}) == 1
        assert sum("FROM workflow_versions" in s for s in statements) == 1

    async def test_the_least_recently_used_version_is_evicted(
        self, client: httpx.AsyncClient, org: OrgHandle, database_url: str, workflow_id: str
    ) -> None:
        await replace_draft(client, org, workflow_id, document(greeting="Version three."))
        await publish(client, org, workflow_id)
        small = AppContext.create(make_settings(database_url, runtime_cache_versions=2))
        loader = RuntimeLoader(small)
        try:
            one = await loader.load_version(org.id, workflow_id, 1)
            two = await loader.load_version(org.id, workflow_id, 2)
            assert await loader.load_version(org.id, workflow_id, 1) is one  # 1 is now recent
            three = await loader.load_version(org.id, workflow_id, 3)  # evicts 2

            assert await loader.load_version(org.id, workflow_id, 1) is one
            assert await loader.load_version(org.id, workflow_id, 3) is three
            assert await loader.load_version(org.id, workflow_id, 2) is not two
        finally:
            await loader.close()
            await small.close()

    async def test_the_process_keeps_one_loader(self, context: AppContext) -> None:
        shared = runtime_loader(context)

        assert runtime_loader(context) is shared
        await shared.close()
        assert runtime_loader(context) is not shared
        await runtime_loader(context).close()


class TestWithoutRedis:
    async def test_another_process_change_is_seen_after_the_ttl(
        self,
        client: httpx.AsyncClient,
        org: OrgHandle,
        database_url: str,
        workflow_id: str,
    ) -> None:
        # A second context stands for another process: it hears nothing of this one's commits.
        ttl = 1.0
        elsewhere = AppContext.create(make_settings(database_url, runtime_resolution_ttl_s=ttl))
        loader = RuntimeLoader(elsewhere)
        await loader.start()
        try:
            agent_id = await deploy(client, org, workflow_id)
            loaded_at = time.monotonic()
            assert (await loader.load_agent(org.id, agent_id, "k")).version_number == 2
            assert not loader.listening

            await patch_agent(client, org, agent_id, version=1)
            if time.monotonic() - loaded_at < ttl * 0.8:  # still within the TTL: cached
                assert (await loader.load_agent(org.id, agent_id, "k")).version_number == 2

            await asyncio.sleep(max(0.0, loaded_at + ttl - time.monotonic()) + 0.01)
            assert (await loader.load_agent(org.id, agent_id, "k")).version_number == 1
        finally:
            await loader.close()
            await elsewhere.close()
