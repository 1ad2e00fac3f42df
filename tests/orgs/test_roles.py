"""Roles: members read and edit drafts; admins also publish, deploy and manage keys."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from support import OrgHandle, login_headers, new_user
from voxflow.core.context import AppContext

YAML = {"Content-Type": "application/yaml"}


@dataclass(frozen=True)
class Caller:
    role: str
    headers: dict[str, str]


async def _api_key(client: httpx.AsyncClient, org: OrgHandle, role: str) -> Caller:
    response = await client.post(
        "/v1/api-keys", json={"name": f"{role} key", "role": role}, headers=org.headers
    )
    assert response.status_code == 201, response.text
    assert response.json()["role"] == role
    return Caller(role, {"Authorization": f"Bearer {response.json()['key']}"})


@pytest.fixture
async def member(client: httpx.AsyncClient, org: OrgHandle) -> Caller:
    return await _api_key(client, org, "member")


@pytest.fixture
async def admin(client: httpx.AsyncClient, org: OrgHandle) -> Caller:
    return await _api_key(client, org, "admin")


@pytest.fixture
async def workflow_id(client: httpx.AsyncClient, org: OrgHandle, luigis_yaml: bytes) -> str:
    created = await client.post(
        "/v1/workflows", content=luigis_yaml, headers={**org.headers, **YAML}
    )
    assert created.status_code == 201, created.text
    published = await client.post(
        f"/v1/workflows/{created.json()['id']}/publish", headers=org.headers
    )
    assert published.status_code == 201, published.text
    workflow: str = created.json()["id"]
    return workflow


def _assert_forbidden(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def _edit_draft(
    client: httpx.AsyncClient, caller: Caller, workflow_id: str, luigis_yaml: bytes
) -> httpx.Response:
    current = await client.get(f"/v1/workflows/{workflow_id}", headers=caller.headers)
    assert current.status_code == 200
    edited = luigis_yaml.replace(b"name: Luigi's bookings", b"name: Luigi's (edited)")
    return await client.put(
        f"/v1/workflows/{workflow_id}",
        content=edited,
        headers={**caller.headers, **YAML, "If-Match": current.headers["etag"]},
    )


class TestMember:
    async def test_reads_workflows_versions_agents_and_itself(
        self, client: httpx.AsyncClient, member: Caller, workflow_id: str
    ) -> None:
        for path in (
            "/v1/workflows",
            f"/v1/workflows/{workflow_id}",
            f"/v1/workflows/{workflow_id}/versions",
            f"/v1/workflows/{workflow_id}/versions/1",
            "/v1/agents",
            "/v1/me",
        ):
            response = await client.get(path, headers=member.headers)
            assert response.status_code == 200, (path, response.text)

    async def test_creates_and_edits_drafts(
        self, client: httpx.AsyncClient, member: Caller, workflow_id: str, luigis_yaml: bytes
    ) -> None:
        created = await client.post(
            "/v1/workflows", content=luigis_yaml, headers={**member.headers, **YAML}
        )
        edited = await _edit_draft(client, member, workflow_id, luigis_yaml)

        assert created.status_code == 201, created.text
        assert edited.status_code == 200, edited.text
        assert edited.json()["name"] == "Luigi's (edited)"

    async def test_cannot_publish(
        self, client: httpx.AsyncClient, member: Caller, workflow_id: str, luigis_yaml: bytes
    ) -> None:
        await _edit_draft(client, member, workflow_id, luigis_yaml)

        response = await client.post(f"/v1/workflows/{workflow_id}/publish", headers=member.headers)

        _assert_forbidden(response)
        assert "admin" in response.json()["detail"]

    async def test_cannot_create_agents(
        self, client: httpx.AsyncClient, member: Caller, workflow_id: str
    ) -> None:
        response = await client.post(
            "/v1/agents",
            json={"name": "luigis", "workflow_id": workflow_id},
            headers=member.headers,
        )

        _assert_forbidden(response)

    async def test_cannot_create_or_list_api_keys(
        self, client: httpx.AsyncClient, member: Caller
    ) -> None:
        created = await client.post(
            "/v1/api-keys", json={"name": "mine", "role": "member"}, headers=member.headers
        )
        listed = await client.get("/v1/api-keys", headers=member.headers)

        _assert_forbidden(created)
        _assert_forbidden(listed)


class TestAdmin:
    async def test_publishes(
        self, client: httpx.AsyncClient, admin: Caller, workflow_id: str, luigis_yaml: bytes
    ) -> None:
        await _edit_draft(client, admin, workflow_id, luigis_yaml)

        response = await client.post(f"/v1/workflows/{workflow_id}/publish", headers=admin.headers)

        assert response.status_code == 201, response.text
        assert response.json()["number"] == 2

    async def test_creates_agents(
        self, client: httpx.AsyncClient, admin: Caller, workflow_id: str
    ) -> None:
        response = await client.post(
            "/v1/agents", json={"name": "luigis", "workflow_id": workflow_id}, headers=admin.headers
        )

        assert response.status_code == 201, response.text

    async def test_manages_member_and_admin_keys(
        self, client: httpx.AsyncClient, admin: Caller
    ) -> None:
        created = []
        for role in ("member", "admin"):
            response = await client.post(
                "/v1/api-keys", json={"name": f"new {role}", "role": role}, headers=admin.headers
            )
            assert response.status_code == 201, response.text
            created.append(response.json()["id"])
        listed = await client.get("/v1/api-keys", headers=admin.headers)
        revoked = await client.delete(f"/v1/api-keys/{created[0]}", headers=admin.headers)

        assert listed.status_code == 200
        assert set(created) <= {item["id"] for item in listed.json()["items"]}
        assert revoked.status_code == 204

    async def test_cannot_create_an_owner_key(
        self, client: httpx.AsyncClient, admin: Caller
    ) -> None:
        response = await client.post(
            "/v1/api-keys", json={"name": "escalate", "role": "owner"}, headers=admin.headers
        )

        _assert_forbidden(response)

    async def test_cannot_revoke_an_owner_key(
        self, client: httpx.AsyncClient, org: OrgHandle, admin: Caller
    ) -> None:
        owner_keys = await client.get("/v1/api-keys", headers=org.headers)
        owner_key = next(k for k in owner_keys.json()["items"] if k["role"] == "owner")

        response = await client.delete(f"/v1/api-keys/{owner_key['id']}", headers=admin.headers)

        _assert_forbidden(response)
        assert (await client.get("/v1/me", headers=org.headers)).status_code == 200


class TestPeople:
    """The same rules hold for a logged-in person, by the role of their membership."""

    async def test_a_member_cannot_publish_but_an_admin_can(
        self,
        client: httpx.AsyncClient,
        context: AppContext,
        org: OrgHandle,
        workflow_id: str,
        luigis_yaml: bytes,
    ) -> None:
        member = Caller("member", await login_headers(client, await new_user(context, org.id)))
        admin = Caller(
            "admin", await login_headers(client, await new_user(context, org.id, "admin"))
        )
        edited = await _edit_draft(client, member, workflow_id, luigis_yaml)

        refused = await client.post(f"/v1/workflows/{workflow_id}/publish", headers=member.headers)
        published = await client.post(f"/v1/workflows/{workflow_id}/publish", headers=admin.headers)

        assert edited.status_code == 200
        _assert_forbidden(refused)
        assert published.status_code == 201
