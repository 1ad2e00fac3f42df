"""Liveness, readiness (database, migrations, optional Redis) and Prometheus metrics."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from support import OrgHandle, client_for, configured_app, make_settings
from voxflow.api.app import create_app

CLOSED_REDIS = "redis://127.0.0.1:1/0"
CLOSED_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:1/voxflow"


async def test_healthz_is_200(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


class TestReadyz:
    async def test_ready_when_the_database_is_reachable_and_migrated(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/readyz")

        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ready"
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["migrations"] == "ok"
        assert body["checks"]["redis"] == "not_configured"

    async def test_503_naming_migrations_on_an_unmigrated_database(self, tmp_path: Path) -> None:
        url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        app = create_app(make_settings(url), check_migrations=False)
        try:
            async with client_for(app) as client:
                response = await client.get("/readyz")
        finally:
            await app.state.context.close()

        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "not_ready"
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["migrations"] == "failed"
        assert "migrations" in body["detail"]
        assert "voxflow db upgrade" in body["detail"]

    async def test_503_naming_the_database_when_it_is_unreachable(self) -> None:
        app = create_app(make_settings(CLOSED_POSTGRES), check_migrations=False)
        try:
            async with client_for(app) as client:
                response = await client.get("/readyz")
        finally:
            await app.state.context.close()

        assert response.status_code == 503
        body = response.json()
        assert body["checks"]["database"] == "failed"
        assert "database" in body["detail"]

    async def test_ready_but_degraded_when_redis_is_unreachable(self, database_url: str) -> None:
        async with (
            configured_app(database_url, redis_url=CLOSED_REDIS) as app,
            client_for(app) as client,
        ):
            response = await client.get("/readyz")

        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ready"
        assert body["checks"]["redis"] == "degraded"

    async def test_redis_ok_when_reachable(self, database_url: str, redis_url: str) -> None:
        async with (
            configured_app(database_url, redis_url=redis_url) as app,
            client_for(app) as client,
        ):
            response = await client.get("/readyz")

        assert response.status_code == 200
        assert response.json()["checks"]["redis"] == "ok"


class TestMetrics:
    @staticmethod
    def _sample(text: str, name: str, **labels: str) -> float | None:
        for line in text.splitlines():
            if not line.startswith(name + "{"):
                continue
            series, value = line.rsplit(" ", 1)
            found = dict(re.findall(r'(\w+)="([^"]*)"', series))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(value)
        return None

    async def test_requests_are_counted_by_route_template(
        self, database_url: str, org: OrgHandle, luigis_yaml: bytes
    ) -> None:
        async with configured_app(database_url) as app, client_for(app) as client:
            created = await client.post(
                "/v1/workflows",
                content=luigis_yaml,
                headers={**org.headers, "Content-Type": "application/yaml"},
            )
            workflow_id = created.json()["id"]
            for _ in range(2):
                await client.get(f"/v1/workflows/{workflow_id}", headers=org.headers)
            await client.get("/v1/workflows/wf_missing", headers=org.headers)
            await client.get("/no/such/route")
            response = await client.get("/metrics")

        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        text = response.text
        sample = self._sample
        assert workflow_id not in text
        assert "wf_missing" not in text
        route = "/v1/workflows/{workflow_id}"
        counter = "voxflow_http_requests_total"
        assert sample(text, counter, method="GET", route=route, status="200") == 2
        assert sample(text, counter, method="GET", route=route, status="404") == 1
        assert sample(text, counter, method="POST", route="/v1/workflows", status="201") == 1
        assert sample(text, counter, method="GET", route="<unmatched>", status="404") == 1
        assert sample(text, "voxflow_http_request_duration_seconds_count", route=route) == 3

    async def test_invented_methods_share_one_label(self, database_url: str) -> None:
        # The method comes from the client: one series per invented method would grow forever.
        async with configured_app(database_url) as app, client_for(app) as client:
            for method in ("BREW", "WHEN", "BREW2"):
                await client.request(method, "/healthz")
            text = (await client.get("/metrics")).text

        assert "BREW" not in text
        assert "WHEN" not in text
        counter = "voxflow_http_requests_total"
        assert self._sample(text, counter, method="OTHER", route="/healthz", status="405") == 3

    async def test_database_pool_gauges_are_exposed(self, client: httpx.AsyncClient) -> None:
        text = (await client.get("/metrics")).text

        assert re.search(r"^voxflow_db_pool_size \d", text, re.MULTILINE)
        assert re.search(r"^voxflow_db_pool_connections_in_use \d", text, re.MULTILINE)
