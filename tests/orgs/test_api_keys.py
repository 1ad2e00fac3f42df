"""API keys: shown once, stored only as a hash, listed without their value, revoked at once."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from support import OrgHandle, client_for, configured_app, new_org
from voxflow.core.context import AppContext
from voxflow.orgs.auth import credential_cache

KEY_SHAPE = re.compile(r"^vf_[A-Za-z0-9_-]{43}$")


async def _create_key(
    client: httpx.AsyncClient, org: OrgHandle, name: str = "ci", role: str = "member"
) -> dict[str, Any]:
    response = await client.post(
        "/v1/api-keys", json={"name": name, "role": role}, headers=org.headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class TestCreate:
    async def test_returns_the_value_once_with_the_vf_prefix(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        created = await _create_key(client, org, "deploy bot", "admin")

        assert KEY_SHAPE.match(created["key"]), created["key"]
        assert created["key"].startswith(created["prefix"])
        assert created["name"] == "deploy bot"
        assert created["role"] == "admin"
        assert created["last_used_at"] is None

    async def test_the_new_key_works_in_its_org(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        created = await _create_key(client, org)

        me = await client.get("/v1/me", headers=_bearer(created["key"]))

        assert me.status_code == 200
        assert (me.json()["org_id"], me.json()["role"]) == (org.id, "member")
        assert me.json()["api_key"]["id"] == created["id"]
        assert "key" not in me.json()["api_key"]

    async def test_every_key_is_different(self, client: httpx.AsyncClient, org: OrgHandle) -> None:
        keys = {(await _create_key(client, org))["key"] for _ in range(3)}

        assert len(keys) == 3


class TestList:
    async def test_lists_prefix_name_created_and_last_used_never_the_value(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        created = await _create_key(client, org, "reporting")
        await client.get("/v1/me", headers=_bearer(created["key"]))

        response = await client.get("/v1/api-keys", headers=org.headers)

        assert response.status_code == 200
        assert created["key"] not in response.text
        assert org.api_key not in response.text
        listed = {item["id"]: item for item in response.json()["items"]}
        item = listed[created["id"]]
        assert "key" not in item
        assert item["prefix"] == created["prefix"]
        assert item["name"] == "reporting"
        assert item["created_at"] == created["created_at"]
        assert item["last_used_at"] is not None

    async def test_lists_only_the_callers_org(
        self, client: httpx.AsyncClient, org: OrgHandle, other_org: OrgHandle
    ) -> None:
        theirs = await _create_key(client, other_org)

        response = await client.get("/v1/api-keys", headers=org.headers)

        assert theirs["id"] not in {item["id"] for item in response.json()["items"]}


class TestStorage:
    async def test_the_database_holds_only_a_hash(
        self, client: httpx.AsyncClient, context: AppContext, org: OrgHandle
    ) -> None:
        created = await _create_key(client, org)

        async with context.sessionmaker() as session:
            rows = (await session.execute(text("SELECT * FROM api_keys"))).all()
        stored = [str(value) for row in rows for value in row]

        assert created["prefix"] in stored  # the row is there…
        for value in stored:  # …but no column holds either key
            assert created["key"] not in value
            assert org.api_key not in value
            assert created["key"][len(created["prefix"]) :] not in value


class TestRevoke:
    async def test_the_very_next_request_with_the_key_is_401(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        created = await _create_key(client, org)
        assert (await client.get("/v1/me", headers=_bearer(created["key"]))).status_code == 200

        revoked = await client.delete(f"/v1/api-keys/{created['id']}", headers=org.headers)
        after = await client.get("/v1/me", headers=_bearer(created["key"]))

        assert revoked.status_code == 204
        assert after.status_code == 401
        assert after.headers["content-type"] == "application/problem+json"

    async def test_a_revoked_key_leaves_the_list(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        created = await _create_key(client, org)

        await client.delete(f"/v1/api-keys/{created['id']}", headers=org.headers)
        response = await client.get("/v1/api-keys", headers=org.headers)

        assert created["id"] not in {item["id"] for item in response.json()["items"]}

    async def test_revoking_twice_is_404(self, client: httpx.AsyncClient, org: OrgHandle) -> None:
        created = await _create_key(client, org)

        await client.delete(f"/v1/api-keys/{created['id']}", headers=org.headers)
        again = await client.delete(f"/v1/api-keys/{created['id']}", headers=org.headers)

        assert again.status_code == 404

    async def test_another_orgs_key_cannot_be_revoked(
        self, client: httpx.AsyncClient, org: OrgHandle, other_org: OrgHandle
    ) -> None:
        theirs = await _create_key(client, other_org)

        response = await client.delete(f"/v1/api-keys/{theirs['id']}", headers=org.headers)

        assert response.status_code == 404
        assert (await client.get("/v1/me", headers=_bearer(theirs["key"]))).status_code == 200


class TestRevokeAcrossProcesses:
    """Two app instances on one database stand for two server processes."""

    async def _revoke_on_a_then_use_on_b(
        self, database_url: str, context: AppContext, **settings: object
    ) -> tuple[httpx.Response, bool]:
        """Returns B's answer after A revoked the key, and whether B caches credentials."""
        org = await new_org(context)
        async with (
            configured_app(database_url, **settings) as app_a,
            configured_app(database_url, **settings) as app_b,
            client_for(app_a) as a,
            client_for(app_b) as b,
        ):
            key = await _create_key(a, org)
            for process in (a, b, a, b):  # both processes have seen (and may cache) the key
                assert (await process.get("/v1/me", headers=_bearer(key["key"]))).status_code == 200

            revoked = await a.delete(f"/v1/api-keys/{key['id']}", headers=org.headers)
            assert revoked.status_code == 204
            response = await b.get("/v1/me", headers=_bearer(key["key"]))
            assert (await a.get("/v1/me", headers=_bearer(key["key"]))).status_code == 401
            return response, credential_cache(app_b.state.context).enabled

    async def test_with_redis_and_auth_caching_the_other_process_refuses_it(
        self, database_url: str, context: AppContext, redis_url: str
    ) -> None:
        response, cached = await self._revoke_on_a_then_use_on_b(
            database_url, context, redis_url=redis_url, auth_cache_seconds=300
        )

        assert cached
        assert response.status_code == 401

    async def test_without_redis_the_other_process_refuses_it(
        self, database_url: str, context: AppContext
    ) -> None:
        response, cached = await self._revoke_on_a_then_use_on_b(database_url, context)

        assert not cached
        assert response.status_code == 401


@pytest.mark.parametrize("bearer", ["not-a-voxflow-key", "vf_" + "x" * 43])
async def test_an_unknown_bearer_token_is_401(client: httpx.AsyncClient, bearer: str) -> None:
    response = await client.get("/v1/me", headers=_bearer(bearer))

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
