"""Every error is RFC 9457 problem+json with type, title, status, detail and request_id."""

from __future__ import annotations

from collections.abc import AsyncIterator
from http import HTTPStatus
from typing import Any

import httpx
import pytest

from support import OrgHandle, client_for, configured_app

YAML = {"Content-Type": "application/yaml"}
ONE_MIB = 1024 * 1024


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"] == HTTPStatus(status).phrase
    assert body["type"].startswith("/problems/")
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert body["request_id"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


@pytest.fixture
async def workflow(client: httpx.AsyncClient, org: OrgHandle, luigis_yaml: bytes) -> str:
    created = await client.post(
        "/v1/workflows", content=luigis_yaml, headers={**org.headers, **YAML}
    )
    assert created.status_code == 201, created.text
    workflow_id: str = created.json()["id"]
    return workflow_id


class TestClientErrors:
    async def test_400_for_malformed_json(self, client: httpx.AsyncClient, org: OrgHandle) -> None:
        response = await client.post(
            "/v1/api-keys",
            content=b'{"name": "ci",',
            headers={**org.headers, "Content-Type": "application/json"},
        )

        body = assert_problem(response, 400)
        assert "JSON" in body["detail"]

    async def test_400_for_a_malformed_workflow_document(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        response = await client.post(
            "/v1/workflows", content=b"nodes: [", headers={**org.headers, **YAML}
        )

        assert_problem(response, 400)

    async def test_401_without_credentials(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/v1/workflows")

        assert_problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"

    async def test_403_when_a_key_asks_for_another_org(
        self, client: httpx.AsyncClient, org: OrgHandle, other_org: OrgHandle
    ) -> None:
        response = await client.get(
            "/v1/workflows", headers={**org.headers, "Voxflow-Org": other_org.id}
        )

        assert_problem(response, 403)

    async def test_404_for_an_unknown_route(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.get("/v1/no-such-thing"), 404)

    async def test_404_for_an_unknown_resource(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        response = await client.get("/v1/workflows/wf_doesnotexist", headers=org.headers)

        body = assert_problem(response, 404)
        assert "wf_doesnotexist" in body["detail"]

    async def test_404_for_another_orgs_resource(
        self, client: httpx.AsyncClient, other_org: OrgHandle, workflow: str
    ) -> None:
        assert_problem(
            await client.get(f"/v1/workflows/{workflow}", headers=other_org.headers), 404
        )

    async def test_405_for_a_method_the_route_lacks(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        response = await client.delete("/v1/me", headers=org.headers)

        assert_problem(response, 405)
        assert response.headers["allow"] == "GET"

    async def test_409_when_publishing_an_unchanged_draft(
        self, client: httpx.AsyncClient, org: OrgHandle, workflow: str
    ) -> None:
        first = await client.post(f"/v1/workflows/{workflow}/publish", headers=org.headers)
        again = await client.post(f"/v1/workflows/{workflow}/publish", headers=org.headers)

        assert first.status_code == 201
        assert_problem(again, 409)

    async def test_415_for_a_form_body_to_a_json_route(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        response = await client.post("/v1/api-keys", data={"name": "ci"}, headers=org.headers)

        body = assert_problem(response, 415)
        assert "application/json" in body["detail"]

    async def test_422_points_at_the_exact_body_field(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        response = await client.post(
            "/v1/api-keys", json={"name": "", "role": "member"}, headers=org.headers
        )

        body = assert_problem(response, 422)
        assert [e["pointer"] for e in body["errors"]] == ["/name"]
        assert all(e["detail"] for e in body["errors"])

    async def test_422_points_into_nested_fields(
        self, client: httpx.AsyncClient, org: OrgHandle, workflow: str
    ) -> None:
        response = await client.post(
            "/v1/agents",
            json={"name": "luigis", "workflow_id": workflow, "canary": {"version": 0}},
            headers=org.headers,
        )

        body = assert_problem(response, 422)
        assert {e["pointer"] for e in body["errors"]} == {"/canary/version", "/canary/percent"}

    async def test_429_when_over_the_rate_limit(self, database_url: str, org: OrgHandle) -> None:
        async with (
            configured_app(database_url, api_rate_limit="1/minute") as app,
            client_for(app) as client,
        ):
            await client.get("/v1/me", headers=org.headers)
            response = await client.get("/v1/me", headers=org.headers)

        assert_problem(response, 429)
        assert response.headers["retry-after"].isdigit()


class TestConditionalWrites:
    """`PUT /v1/workflows/{id}` replaces the draft only for a client that saw the current one."""

    async def test_428_without_if_match(
        self, client: httpx.AsyncClient, org: OrgHandle, workflow: str, luigis_yaml: bytes
    ) -> None:
        response = await client.put(
            f"/v1/workflows/{workflow}", content=luigis_yaml, headers={**org.headers, **YAML}
        )

        body = assert_problem(response, 428)
        assert [e["parameter"] for e in body["errors"]] == ["If-Match"]

    async def test_412_with_a_stale_etag(
        self, client: httpx.AsyncClient, org: OrgHandle, workflow: str, luigis_yaml: bytes
    ) -> None:
        headers = {**org.headers, **YAML, "If-Match": '"1"'}
        saved = await client.put(f"/v1/workflows/{workflow}", content=luigis_yaml, headers=headers)

        stale = await client.put(f"/v1/workflows/{workflow}", content=luigis_yaml, headers=headers)

        assert saved.status_code == 200
        assert saved.headers["etag"] == '"2"'
        body = assert_problem(stale, 412)
        assert stale.headers["etag"] == '"2"'
        assert body["current_etag"] == '"2"'


class TestBodyTooLarge:
    async def test_413_with_a_content_length_over_one_mib(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        big = b'{"name": "' + b"x" * ONE_MIB + b'"}'

        response = await client.post(
            "/v1/api-keys",
            content=big,
            headers={**org.headers, "Content-Type": "application/json"},
        )

        body = assert_problem(response, 413)
        assert body["type"] == "/problems/payload-too-large"

    @pytest.mark.parametrize(
        ("path", "content_type"),
        [("/v1/api-keys", "application/json"), ("/v1/workflows", "application/yaml")],
    )
    async def test_413_for_a_streamed_body_over_one_mib(
        self, client: httpx.AsyncClient, org: OrgHandle, path: str, content_type: str
    ) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"name": "'
            for _ in range(17):
                yield b"x" * 65536
            yield b'"}'

        response = await client.post(
            path, content=chunks(), headers={**org.headers, "Content-Type": content_type}
        )

        assert "content-length" not in response.request.headers  # really sent chunked
        body = assert_problem(response, 413)
        assert body["type"] == "/problems/payload-too-large"

    async def test_a_body_just_under_the_limit_is_read(
        self, client: httpx.AsyncClient, org: OrgHandle
    ) -> None:
        body = b'{"name": "' + b"x" * (ONE_MIB - 100) + b'"}'

        response = await client.post(
            "/v1/api-keys",
            content=body,
            headers={**org.headers, "Content-Type": "application/json"},
        )

        assert_problem(response, 422)  # read and validated: the name is too long


class TestUnexpectedError:
    async def test_500_hides_the_internals_and_carries_the_request_id(
        self, database_url: str
    ) -> None:
        async def explode() -> None:
            raise RuntimeError("secret internals")

        async with configured_app(database_url) as app:
            app.add_api_route("/test-only/explode", explode)
            async with client_for(app) as client:
                response = await client.get(
                    "/test-only/explode", headers={"X-Request-ID": "req-explode-1"}
                )

        body = assert_problem(response, 500)
        assert body["request_id"] == "req-explode-1"
        assert "secret internals" not in response.text
        assert "Traceback" not in response.text
        assert "RuntimeError" not in response.text
