"""The request middleware: request ids, one log line per request, and no secrets in logs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import structlog
from structlog.testing import capture_logs

from support import OrgHandle, login_headers, new_user
from voxflow.core.context import AppContext


@pytest.fixture
def logs() -> Iterator[list[dict[str, Any]]]:
    """Every structlog event while the test runs, with the bound request id merged in."""
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as entries:
        yield entries


def _request_lines(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == "request"]


class TestRequestId:
    async def test_a_sent_request_id_is_echoed(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz", headers={"X-Request-ID": "edge-7f3a.1:2_x"})

        assert response.headers["x-request-id"] == "edge-7f3a.1:2_x"

    async def test_one_is_generated_when_none_is_sent(self, client: httpx.AsyncClient) -> None:
        first = await client.get("/healthz")
        second = await client.get("/healthz")

        assert re.fullmatch(r"[0-9a-f]{32}", first.headers["x-request-id"])
        assert first.headers["x-request-id"] != second.headers["x-request-id"]

    @pytest.mark.parametrize("unsafe", ["two words", "x" * 129, "line\tbreak", "{json}"])
    async def test_an_unsafe_request_id_is_replaced(
        self, client: httpx.AsyncClient, unsafe: str
    ) -> None:
        response = await client.get("/healthz", headers={"X-Request-ID": unsafe})

        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])

    async def test_error_responses_carry_it_too(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/v1/workflows", headers={"X-Request-ID": "req-401"})

        assert response.status_code == 401
        assert response.headers["x-request-id"] == "req-401"
        assert response.json()["request_id"] == "req-401"


class TestRequestLog:
    async def test_one_line_with_method_route_template_status_duration_and_request_id(
        self,
        client: httpx.AsyncClient,
        org: OrgHandle,
        luigis_yaml: bytes,
        logs: list[dict[str, Any]],
    ) -> None:
        created = await client.post(
            "/v1/workflows",
            content=luigis_yaml,
            headers={**org.headers, "Content-Type": "application/yaml"},
        )
        logs.clear()

        response = await client.get(
            f"/v1/workflows/{created.json()['id']}",
            headers={**org.headers, "X-Request-ID": "req-log-1"},
        )

        assert response.status_code == 200
        [line] = _request_lines(logs)
        assert line["method"] == "GET"
        assert line["route"] == "/v1/workflows/{workflow_id}"
        assert line["status"] == 200
        assert isinstance(line["duration_ms"], float)
        assert line["duration_ms"] >= 0
        assert line["request_id"] == "req-log-1"
        assert line["log_level"] == "info"

    async def test_unmatched_routes_and_errors_are_logged_with_their_status(
        self, client: httpx.AsyncClient, logs: list[dict[str, Any]]
    ) -> None:
        await client.get("/no/such/route")
        await client.get("/v1/me")

        lines = _request_lines(logs)
        assert [(line["route"], line["status"]) for line in lines] == [
            ("<unmatched>", 404),
            ("/v1/me", 401),
        ]
        assert all(line["request_id"] for line in lines)

    async def test_the_request_id_is_unbound_after_the_request(
        self, client: httpx.AsyncClient
    ) -> None:
        await client.get("/healthz", headers={"X-Request-ID": "req-leak"})

        assert "request_id" not in structlog.contextvars.get_contextvars()


class TestNoSecretsInLogs:
    async def test_passwords_keys_and_session_tokens_never_reach_the_logs(
        self,
        client: httpx.AsyncClient,
        context: AppContext,
        org: OrgHandle,
        logs: list[dict[str, Any]],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        user = await new_user(context, org.id, "admin")
        caplog.set_level("DEBUG")

        failed = await client.post(
            "/v1/auth/login", json={"email": user.email, "password": user.password + "-typo"}
        )
        session = await login_headers(client, user)
        created = await client.post("/v1/api-keys", json={"name": "ci"}, headers=session)
        new_key = created.json()["key"]
        await client.get("/v1/me", headers={"Authorization": f"Bearer {new_key}"})
        await client.get("/v1/workflows", headers=org.headers)
        await client.get("/v1/me", headers={"Authorization": f"Bearer {new_key}x"})
        await client.post("/v1/auth/logout", headers=session)
        await client.get("/v1/me", headers=session)

        assert failed.status_code == 401
        assert created.status_code == 201
        captured = repr(logs) + caplog.text
        assert len(_request_lines(logs)) == 8
        secrets = {
            "password": user.password,
            "api key": new_key,
            "org api key": org.api_key,
            "session token": session["Cookie"].split("=", 1)[1],
        }
        for what, secret in secrets.items():
            assert secret not in captured, f"the {what} appears in the logs"
