"""Agents over HTTP: deployments of a workflow version with canary and overrides."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from support import OrgHandle, create_workflow, publish

PROBLEM = "application/problem+json"


async def create_agent(client: httpx.AsyncClient, org: OrgHandle, **body: Any) -> httpx.Response:
    return await client.post("/v1/agents", json={"name": "luigis", **body}, headers=org.headers)


def pointers(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    return [error.get("pointer") for error in response.json()["errors"]]


class TestCreate:
    async def test_follows_latest_by_default(
        self, client: httpx.AsyncClient, org: OrgHandle, workflow_id: str
    ) -> None:
        response = await create_agent(client, org, workflow_id=workflow_id)

        assert response.status_code == 201, response.text
        body = response.json()
        assert body["id"].startswith("agt_")
        assert {k: body[k] for k in ("name", "workflow_id", "version", "canary")} == {
            "name": "luigis",
            "workflow_id": workflow_id,
            "version": "latest",
            "canary": None,
        }
        assert body["overrides"] == {"settings": {}, "variables": {}}

    async def test_pins_an_existing_version(
        self, client: httpx.AsyncClient, org: OrgHandle, workflow_id: str
    ) -> None:
        response = await create_agent(client, org, workflow_id=workflow_id, version=1)

        assert response.status_code == 201, response.text
        assert response.json()["version"] == 1

    @pytest.mark.parametrize("version", [3, 0, -1])
    async def test_a_version_that_does_not_exist_is_a_422_at_version(
        self, client: httpx.AsyncClient, org: OrgHandle, workflow_id: str, version: int
    ) -> None:
        response = await create_agent(client, org, workflow_id=workflow_id, version=version)

        assert pointers(response) == ["/version"]

    @pytest.mark.parametrize("version", [True, "2", 1.5])
    async def test_a_version_that_is_not_a_number_is_refused(
        self, client: httpx.AsyncClient, org: OrgHandle, workflow_id: str, version: object
    ) -> None:
        response = await create_agent(client, org, workflow_id=workflow_id, version=version)

        assert pointers(response) == ["/version"]

    @pytest.mark.parametrize("version", ["latest", 1])
    async def test_a_workflow_never_published_cannot_be_deployed(
        self, client: httpx.AsyncClient, org: OrgHandle, version: object
    ) -> None:
        unpublished = await create_workflow(client, org)

        response = await create_agent(client, org, workflow_id=unpublished, version=version)

        assert pointers(response) == ["/version"]

    async def test_an_unknown_workflow_is_a_422_at_workflow_id(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        response = await create_agent(client, org, workflow_id="wf_missing")

        assert pointers(response) == ["/workflow_id"]

    async def test_another_orgs_workflow_is_like_a_missing_one(
        self, client: httpx.AsyncClient, other_org: OrgHandle, workflow_id: str
    ) -> None:
        response = await create_agent(client, other_org, workflow_id=workflow_id)

        assert pointers(response) == ["/workflow_id"]
        assert workflow_id in response.json()["detail"]

    async def test_names_follow_the_pattern(
        self, client: httpx.AsyncClient, org: OrgHandle, workflow_id: str
    ) -> None:
        response = await client.post(
            "/v1/agents", json={"name": "Luigi's", "workflow_id": workflow_id}, headers=org.headers
        )

        assert pointers(response) == ["/name"]


class TestNames:
    async def test_a_name_is_unique_in_the_org(
        self, client: httpx.AsyncClient, org: OrgHandle, workflow_id: str
    ) -> None:
        assert (await create_agent(client, org, workflow_id=workflow_id)).status_code == 201

        again = await create_agent(client, org, workflow_id=workflow_id)

        assert again.status_code == 409
        assert again.headers["content-type"] == PROBLEM

    async def test_renaming_onto_a_taken_name_is_a_409(
        self, client: httpx.AsyncClient, org: OrgHandle, workflow_id: str
    ) -> None:
        await create_agent(client, org, workflow_id=workflow_id)
        other = (
            await client.post(
                "/v1/agents",
                json={"name": "pizza", "workflow_id": workflow_id},
                headers=org.headers,
            )
        ).json()

        response = await client.patch(
            f"/v1/agents/{other['id']}", json={"name": "luigis"}, headers=org.headers
        )

        assert response.status_code == 409

    async def test_creating_the_same_name_at_once_gives_one_agent(
        self, client: httpx.AsyncClient, org: OrgHandle, workflow_id: str
    ) -> None:
        responses = await asyncio.gather(
            *(create_agent(client, org, workflow_id=workflow_id) for _ in range(3))
        )

        assert sorted(r.status_code for r in responses) == [201, 409, 409]
        listed = (await client.get("/v1/agents", headers=org.headers)).json()["items"]
        assert [a["name"] for a in listed] == ["luigis"]

    async def test_renaming_two_agents_to_one_name_at_once_gives_one_a_409(
        self, client: httpx.AsyncClient, org: OrgHandle, workflow_id: str
    ) -> None:
        ids = []
        for name in ("first", "second"):
            response = await client.post(
                "/v1/agents", json={"name": name, "workflow_id": workflow_id}, headers=org.headers
            )
            ids.append(response.json()["id"])

        responses = await asyncio.gather(
            *(
                client.patch(f"/v1/agents/{i}", json={"name": "same"}, headers=org.headers)
                for i in ids
            )
        )

        assert sorted(r.status_code for r in responses) == [200, 409], [r.text for r in responses]
        names = sorted(
            a["name"] for a in (await client.get("/v1/agents", headers=org.headers)).json()["items"]
        )
        assert names in (["first", "same"], ["same", "second"])

    async def test_a_deleted_agents_name_can_be_reused(
        self, client: httpx.AsyncClient, org: OrgHandle, workflow_id: str
    ) -> None:
        first = (await create_agent(client, org, workflow_id=workflow_id)).json()
        deleted = await client.delete(f"/v1/agents/{first['id']}", headers=org.headers)
        assert deleted.status_code == 204

        again = await create_agent(client, org, workflow_id=workflow_id)

        assert again.status_code == 201, again.text
        assert again.json()["id"] != first["id"]

    async def test_another_org_may_use_the_same_name(
        self,
        client: httpx.AsyncClient,
        org: OrgHandle,
        other_org: OrgHandle,
        workflow_id: str,
    ) -> None:
        await create_agent(client, org, workflow_id=workflow_id)
        theirs = await create_workflow(client, other_org)
        await publish(client, other_org, theirs)

        response = await create_agent(client, other_org, workflow_id=theirs)

        assert response.status_code == 201, response.text


class TestCanary:
    async def test_a_canary_is_stored(
        self, client: httpx.AsyncClient, org: OrgHandle, workflow_id: str
    ) -> None:
        canary = {"version": 2, "percent": 10}

        response = await create_agent(
            client, org, workflow_id=workflow_id, version=1, canary=canary
        )

        assert response.status_code == 201, response.text
        assert response.json()["canary"] == {"version": 2, "percent": 10.0}

    async def test_a_canary_version_that_does_not_exist_is_a_422(
        self, client: httpx.AsyncClient, org: OrgHandle, workflow_id: str
    ) -> None:
        canary = {"version": 7, "percent": 10}

        response = await create_agent(client, org, workflow_id=workflow_id, canary=canary)

        assert pointers(response) == ["/canary/version"]

    @pytest.mark.parametrize("percent", [-1, 100.5, True])
    async def test_a_percent_outside_0_to_100_is_a_422(
        self, client: httpx.AsyncClient, org: OrgHandle, workflow_id: str, percent: object
    ) -> None:
        canary = {"version": 1, "percent": percent}

        response = await create_agent(client, org, workflow_id=workflow_id, canary=canary)

        assert pointers(response) == ["/canary/percent"]

    async def test_patch_with_null_removes_it_and_without_it_keeps_it(
        self, client: httpx.AsyncClient, org: OrgHandle, workflow_id: str
    ) -> None:
        canary = {"version": 2, "percent": 25}
        agent = (
            await create_agent(client, org, workflow_id=workflow_id, version=1, canary=canary)
        ).json()
        url = f"/v1/agents/{agent['id']}"

        kept = await client.patch(url, json={"name": "renamed"}, headers=org.headers)
        removed = await client.patch(url, json={"canary": None}, headers=org.headers)

        assert kept.json()["canary"] == {"version": 2, "percent": 25.0}
        assert removed.status_code == 200
        assert removed.json()["canary"] is None
        assert (await client.get(url, headers=org.headers)).json()["canary"] is None

    async def test_patch_checks_the_canary_version(
        self, client: httpx.AsyncClient, org: OrgHandle, workflow_id: str
    ) -> None:
        agent = (await create_agent(client, org, workflow_id=workflow_id)).json()

        response = await client.patch(
            f"/v1/agents/{agent['id']}",
            json={"canary": {"version": 3, "percent": 5}},
            headers=org.headers,
        )

        assert pointers(response) == ["/canary/version"]


class TestOverrides:
    async def test_valid_settings_are_kept(
        self, client: httpx.AsyncClient, org: OrgHandle, workflow_id: str
    ) -> None:
        overrides = {"settings": {"language": "it", "max_duration_s": 120}, "variables": {"x": 1}}

        response = await create_agent(client, org, workflow_id=workflow_id, overrides=overrides)

        assert response.status_code == 201, response.text
        assert response.json()["overrides"] == overrides

    @pytest.mark.parametrize(
        ("settings", "pointer"),
        [
            ({"max_duration_s": "long"}, "/overrides/settings/max_duration_s"),
            ({"interruptions": "no"}, "/overrides/settings/interruptions"),
            ({"voice": "alto"}, "/overrides/settings/voice"),
            ({"global_routes": [{"to": 5}]}, "/overrides/settings/global_routes/0/to"),
        ],
    )
    async def test_settings_are_checked_against_workflow_settings(
        self,
        client: httpx.AsyncClient,
        org: OrgHandle,
        workflow_id: str,
        settings: dict[str, object],
        pointer: str,
    ) -> None:
        response = await create_agent(
            client, org, workflow_id=workflow_id, overrides={"settings": settings}
        )

        assert pointers(response) == [pointer]

    async def test_patch_checks_them_too(
        self, client: httpx.AsyncClient, org: OrgHandle, workflow_id: str
    ) -> None:
        agent = (await create_agent(client, org, workflow_id=workflow_id)).json()

        response = await client.patch(
            f"/v1/agents/{agent['id']}",
            json={"overrides": {"settings": {"max_duration_s": 0}}},
            headers=org.headers,
        )

        assert pointers(response) == ["/overrides/settings/max_duration_s"]


class TestReadUpdateDelete:
    async def test_get_returns_what_was_created(
        self, client: httpx.AsyncClient, org: OrgHandle, workflow_id: str
    ) -> None:
        created = (await create_agent(client, org, workflow_id=workflow_id, version=2)).json()

        got = await client.get(f"/v1/agents/{created['id']}", headers=org.headers)

        assert got.status_code == 200
        assert got.json() == created

    async def test_list_is_cursor_paginated(
        self, client: httpx.AsyncClient, org: OrgHandle, workflow_id: str
    ) -> None:
        created = []
        for name in ("a", "b", "c"):
            response = await client.post(
                "/v1/agents", json={"name": name, "workflow_id": workflow_id}, headers=org.headers
            )
            created.append(response.json()["id"])

        first = (await client.get("/v1/agents", params={"limit": 2}, headers=org.headers)).json()
        rest = (
            await client.get(
                "/v1/agents",
                params={"limit": 2, "cursor": first["next_cursor"]},
                headers=org.headers,
            )
        ).json()

        seen = [a["id"] for a in first["items"] + rest["items"]]
        assert sorted(seen) == sorted(created)
        assert rest["next_cursor"] is None

    async def test_patch_changes_only_what_is_sent(
        self, client: httpx.AsyncClient, org: OrgHandle, workflow_id: str
    ) -> None:
        overrides = {"settings": {"language": "it"}, "variables": {}}
        created = (
            await create_agent(client, org, workflow_id=workflow_id, version=2, overrides=overrides)
        ).json()

        rolled_back = await client.patch(
            f"/v1/agents/{created['id']}", json={"version": 1}, headers=org.headers
        )

        assert rolled_back.status_code == 200, rolled_back.text
        body = rolled_back.json()
        assert body["version"] == 1
        assert (body["name"], body["overrides"]) == ("luigis", overrides)
        following = await client.patch(
            f"/v1/agents/{created['id']}", json={"version": "latest"}, headers=org.headers
        )
        assert following.json()["version"] == "latest"

    async def test_patch_refuses_a_missing_version(
        self, client: httpx.AsyncClient, org: OrgHandle, workflow_id: str
    ) -> None:
        created = (await create_agent(client, org, workflow_id=workflow_id)).json()

        response = await client.patch(
            f"/v1/agents/{created['id']}", json={"version": 9}, headers=org.headers
        )

        assert pointers(response) == ["/version"]

    async def test_a_deleted_agent_is_gone(
        self, client: httpx.AsyncClient, org: OrgHandle, workflow_id: str
    ) -> None:
        created = (await create_agent(client, org, workflow_id=workflow_id)).json()
        url = f"/v1/agents/{created['id']}"

        assert (await client.delete(url, headers=org.headers)).status_code == 204

        assert (await client.get(url, headers=org.headers)).status_code == 404
        assert (await client.patch(url, json={"name": "x"}, headers=org.headers)).status_code == 404
        assert (await client.delete(url, headers=org.headers)).status_code == 404
        listed = (await client.get("/v1/agents", headers=org.headers)).json()["items"]
        assert created["id"] not in [a["id"] for a in listed]
