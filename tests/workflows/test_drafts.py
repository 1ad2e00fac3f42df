"""Workflow drafts over HTTP: create, validate, list, read, edit with If-Match, archive."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import yaml

from support import (
    OrgHandle,
    create_workflow,
    publish,
    workflow_document,
)
from voxflow.agents import service as agent_service
from voxflow.agents.repository import AgentRepository
from voxflow.core.context import AppContext
from voxflow.dsl import dump_canonical, load_document

PROBLEM = "application/problem+json"


def broken_document() -> dict:
    """Valid against the schema, but `greet` leads to a node that does not exist."""
    document = workflow_document("Broken")
    document["nodes"][0]["next"] = "nowhere"
    return document


async def get_workflow(
    client: httpx.AsyncClient, org: OrgHandle, workflow_id: str
) -> httpx.Response:
    response = await client.get(f"/v1/workflows/{workflow_id}", headers=org.headers)
    assert response.status_code == 200, response.text
    return response


class TestCreate:
    async def test_from_json(
        self, client: httpx.AsyncClient, org: OrgHandle, luigis_yaml: bytes
    ) -> None:
        document = yaml.safe_load(luigis_yaml)
        response = await client.post("/v1/workflows", json=document, headers=org.headers)

        assert response.status_code == 201, response.text
        body = response.json()
        assert response.headers["location"] == f"/v1/workflows/{body['id']}"
        assert response.headers["etag"] == '"1"'
        assert body["findings"] == []
        assert body["name"] == "Luigi's bookings"
        assert (body["revision"], body["latest_version"], body["archived"]) == (1, 0, False)

    async def test_from_yaml(
        self, client: httpx.AsyncClient, org: OrgHandle, luigis_yaml: bytes
    ) -> None:
        response = await client.post(
            "/v1/workflows",
            content=luigis_yaml,
            headers={**org.headers, "Content-Type": "application/yaml"},
        )

        assert response.status_code == 201, response.text
        assert response.headers["etag"] == '"1"'
        assert response.headers["location"] == f"/v1/workflows/{response.json()['id']}"
        assert response.json()["findings"] == []
        assert response.json()["draft"]["nodes"][0]["id"] == "greet"

    async def test_a_structurally_broken_draft_is_saved_with_findings(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        response = await client.post("/v1/workflows", json=broken_document(), headers=org.headers)

        assert response.status_code == 201, response.text
        [finding] = response.json()["findings"]
        assert finding["severity"] == "error"
        assert finding["code"] == "unknown_node"
        assert finding["pointer"] == "/nodes/0/next"

        validated = await client.post(
            f"/v1/workflows/{response.json()['id']}/validate", headers=org.headers
        )
        assert validated.status_code == 200
        assert validated.json() == {"valid": False, "findings": [finding]}

    async def test_a_sound_draft_validates(self, client: httpx.AsyncClient, org: OrgHandle) -> None:
        workflow_id = await create_workflow(client, org)

        validated = await client.post(f"/v1/workflows/{workflow_id}/validate", headers=org.headers)

        assert validated.json() == {"valid": True, "findings": []}

    async def test_a_schema_invalid_body_is_a_422_pointing_into_the_document(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        document = workflow_document()
        document["nodes"][0]["text"] = 42

        response = await client.post("/v1/workflows", json=document, headers=org.headers)

        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM
        problem = response.json()
        assert problem["type"] == "/problems/invalid-input"
        assert "/nodes/0/text" in [error["pointer"] for error in problem["errors"]]

    async def test_a_yaml_syntax_error_is_a_400(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        response = await client.post(
            "/v1/workflows",
            content=b"schema: voxflow/v1\nnodes: [unclosed\n",
            headers={**org.headers, "Content-Type": "application/yaml"},
        )

        assert response.status_code == 400
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["status"] == 400

    async def test_nothing_is_stored_when_the_body_is_refused(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        await client.post("/v1/workflows", json={"schema": "voxflow/v1"}, headers=org.headers)

        listed = await client.get("/v1/workflows", headers=org.headers)

        assert listed.json()["items"] == []


class TestList:
    async def test_cursor_pagination_walks_every_workflow_once(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        created = {
            await create_workflow(client, org, workflow_document(f"flow {i}")) for i in range(5)
        }

        seen: list[str] = []
        pages: list[int] = []
        cursor: str | None = None
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/v1/workflows", params=params, headers=org.headers)).json()
            pages.append(len(page["items"]))
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break

        assert pages == [2, 2, 1]
        assert len(seen) == len(set(seen)) == 5
        assert set(seen) == created

    async def test_q_filters_by_name_in_any_case(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        for name in ("Pizza orders", "late PIZZA line", "Opening hours"):
            await create_workflow(client, org, workflow_document(name))

        found = await client.get("/v1/workflows", params={"q": "pizza"}, headers=org.headers)

        assert sorted(item["name"] for item in found.json()["items"]) == [
            "Pizza orders",
            "late PIZZA line",
        ]

    async def test_q_takes_like_wildcards_literally(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        for name in ("100% fresh", "plain"):
            await create_workflow(client, org, workflow_document(name))

        found = await client.get("/v1/workflows", params={"q": "%"}, headers=org.headers)

        assert [item["name"] for item in found.json()["items"]] == ["100% fresh"]


class TestRead:
    async def test_returns_the_draft_and_its_etag(
        self, client: httpx.AsyncClient, org: OrgHandle, luigis_yaml: bytes
    ) -> None:
        created = await client.post(
            "/v1/workflows",
            content=luigis_yaml,
            headers={**org.headers, "Content-Type": "application/yaml"},
        )

        got = await get_workflow(client, org, created.json()["id"])

        assert got.headers["etag"] == '"1"'
        body = got.json()
        expected = json.loads(dump_canonical(load_document(luigis_yaml, "application/yaml")))
        assert body["draft"] == expected
        assert {key: body[key] for key in ("id", "name", "revision", "archived")} == {
            "id": created.json()["id"],
            "name": "Luigi's bookings",
            "revision": 1,
            "archived": False,
        }

    async def test_an_unknown_id_is_a_404_problem(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        response = await client.get("/v1/workflows/wf_missing", headers=org.headers)

        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["type"] == "/problems/not-found"


class TestUpdate:
    async def test_without_if_match_is_428(self, client: httpx.AsyncClient, org: OrgHandle) -> None:
        workflow_id = await create_workflow(client, org)

        response = await client.put(
            f"/v1/workflows/{workflow_id}", json=workflow_document("new"), headers=org.headers
        )

        assert response.status_code == 428
        assert response.headers["content-type"] == PROBLEM
        assert (await get_workflow(client, org, workflow_id)).json()["name"] == "Opening hours"

    async def test_a_stale_if_match_is_412_with_the_current_etag(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        workflow_id = await create_workflow(client, org)

        response = await client.put(
            f"/v1/workflows/{workflow_id}",
            json=workflow_document("new"),
            headers={**org.headers, "If-Match": '"7"'},
        )

        assert response.status_code == 412
        assert response.headers["etag"] == '"1"'
        assert response.json()["type"] == "/problems/precondition-failed"

    async def test_the_current_etag_saves_and_bumps_it(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        workflow_id = await create_workflow(client, org)

        response = await client.put(
            f"/v1/workflows/{workflow_id}",
            json=broken_document(),
            headers={**org.headers, "If-Match": '"1"'},
        )

        assert response.status_code == 200, response.text
        assert response.headers["etag"] == '"2"'
        assert response.json()["revision"] == 2
        assert [f["pointer"] for f in response.json()["findings"]] == ["/nodes/0/next"]
        got = await get_workflow(client, org, workflow_id)
        assert got.headers["etag"] == '"2"'
        assert got.json()["name"] == "Broken"

    async def test_yaml_is_accepted_too(self, client: httpx.AsyncClient, org: OrgHandle) -> None:
        workflow_id = await create_workflow(client, org)

        response = await client.put(
            f"/v1/workflows/{workflow_id}",
            content=yaml.safe_dump(workflow_document("From YAML")).encode(),
            headers={**org.headers, "If-Match": '"1"', "Content-Type": "application/yaml"},
        )

        assert response.status_code == 200, response.text
        assert response.json()["name"] == "From YAML"

    async def test_the_second_of_two_editors_is_refused(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        workflow_id = await create_workflow(client, org)
        etag_a = (await get_workflow(client, org, workflow_id)).headers["etag"]
        etag_b = (await get_workflow(client, org, workflow_id)).headers["etag"]

        first = await client.put(
            f"/v1/workflows/{workflow_id}",
            json=workflow_document("edit A"),
            headers={**org.headers, "If-Match": etag_a},
        )
        second = await client.put(
            f"/v1/workflows/{workflow_id}",
            json=workflow_document("edit B"),
            headers={**org.headers, "If-Match": etag_b},
        )

        assert first.status_code == 200
        assert second.status_code == 412
        assert second.headers["etag"] == first.headers["etag"] == '"2"'
        assert (await get_workflow(client, org, workflow_id)).json()["name"] == "edit A"

    async def test_two_editors_saving_at_once_never_both_win(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        workflow_id = await create_workflow(client, org)

        responses = await asyncio.gather(
            *(
                client.put(
                    f"/v1/workflows/{workflow_id}",
                    json=workflow_document(f"edit {who}"),
                    headers={**org.headers, "If-Match": '"1"'},
                )
                for who in ("A", "B")
            )
        )

        assert sorted(r.status_code for r in responses) == [200, 412], [r.text for r in responses]
        [winner] = [r for r in responses if r.status_code == 200]
        got = await get_workflow(client, org, workflow_id)
        assert got.json()["name"] == winner.json()["name"]
        assert got.headers["etag"] == '"2"'


class TestArchive:
    @pytest.fixture
    async def archived(self, client: httpx.AsyncClient, org: OrgHandle) -> tuple[str, str]:
        """A published workflow with an agent following it, then archived."""
        workflow_id = await create_workflow(client, org)
        await publish(client, org, workflow_id)
        agent = await client.post(
            "/v1/agents", json={"name": "hours", "workflow_id": workflow_id}, headers=org.headers
        )
        assert agent.status_code == 201, agent.text
        deleted = await client.delete(f"/v1/workflows/{workflow_id}", headers=org.headers)
        assert deleted.status_code == 204
        return workflow_id, agent.json()["id"]

    async def test_hidden_from_the_list(
        self, client: httpx.AsyncClient, org: OrgHandle, archived: tuple[str, str]
    ) -> None:
        listed = await client.get("/v1/workflows", headers=org.headers)

        assert archived[0] not in [item["id"] for item in listed.json()["items"]]

    async def test_still_readable_and_marked_archived(
        self, client: httpx.AsyncClient, org: OrgHandle, archived: tuple[str, str]
    ) -> None:
        got = await get_workflow(client, org, archived[0])

        assert got.json()["archived"] is True
        versions = await client.get(f"/v1/workflows/{archived[0]}/versions", headers=org.headers)
        assert [v["number"] for v in versions.json()["items"]] == [1]
        version = await client.get(f"/v1/workflows/{archived[0]}/versions/1", headers=org.headers)
        assert version.status_code == 200

    async def test_its_agents_keep_resolving_their_version(
        self,
        client: httpx.AsyncClient,
        org: OrgHandle,
        context: AppContext,
        archived: tuple[str, str],
    ) -> None:
        assert (
            await client.get(f"/v1/agents/{archived[1]}", headers=org.headers)
        ).status_code == 200
        async with context.sessionmaker() as session:
            agent = await AgentRepository(session).get(org.id, archived[1])
            assert agent is not None
            assert await agent_service.resolve_version(session, agent, "caller-1") == 1

    async def test_it_can_no_longer_be_changed(
        self, client: httpx.AsyncClient, org: OrgHandle, archived: tuple[str, str]
    ) -> None:
        url = f"/v1/workflows/{archived[0]}"
        put = await client.put(
            url, json=workflow_document("again"), headers={**org.headers, "If-Match": '"1"'}
        )
        published = await client.post(f"{url}/publish", headers=org.headers)
        restored = await client.post(f"{url}/versions/1/restore", headers=org.headers)

        assert [put.status_code, published.status_code, restored.status_code] == [409, 409, 409]
        assert all(r.headers["content-type"] == PROBLEM for r in (put, published, restored))

    async def test_archiving_twice_is_harmless(
        self, client: httpx.AsyncClient, org: OrgHandle, archived: tuple[str, str]
    ) -> None:
        again = await client.delete(f"/v1/workflows/{archived[0]}", headers=org.headers)

        assert again.status_code == 204
        assert (await get_workflow(client, org, archived[0])).json()["archived"] is True
