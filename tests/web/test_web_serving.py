"""The built web app is served at `/` behind every API route; without a build, `/` says so."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from support import client_for, make_settings
from voxflow.api.app import create_app

INDEX = "<!doctype html><title>Voxflow</title><div id=root data-test=built></div>"


def assert_no_such_route(response: httpx.Response) -> None:
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "No such route."


async def _client(tmp_path: Path, dist: Path) -> AsyncIterator[httpx.AsyncClient]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'web.db'}"
    app = create_app(make_settings(url), check_migrations=False, web_dist=dist)
    try:
        async with client_for(app) as client:
            yield client
    finally:
        await app.state.context.close()


@pytest.fixture
async def built(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text(INDEX)
    (dist / "assets" / "index-abc123.js").write_text("console.log('voxflow')")
    async for client in _client(tmp_path, dist):
        yield client


@pytest.fixture
async def unbuilt(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(tmp_path, tmp_path / "no-dist"):
        yield client


class TestBuilt:
    async def test_root_is_the_app(self, built: httpx.AsyncClient) -> None:
        response = await built.get("/")

        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert "data-test=built" in response.text
        assert (await built.head("/")).status_code == 200

    async def test_assets_are_served(self, built: httpx.AsyncClient) -> None:
        response = await built.get("/assets/index-abc123.js")

        assert response.status_code == 200
        assert "javascript" in response.headers["content-type"]
        assert response.text == "console.log('voxflow')"

    async def test_api_routes_still_answer(self, built: httpx.AsyncClient) -> None:
        assert (await built.get("/healthz")).json() == {"status": "ok"}
        assert (await built.get("/metrics")).status_code == 200
        docs = await built.get("/docs")
        assert docs.status_code == 200
        assert "swagger" in docs.text.lower()
        openapi = (await built.get("/openapi.json")).json()
        assert "/v1/agents" in openapi["paths"]
        assert "/" not in openapi["paths"]

    async def test_api_auth_is_not_bypassed(self, built: httpx.AsyncClient) -> None:
        response = await built.get("/v1/agents")

        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", "/v1/nope"),
            ("GET", "/v1"),
            ("POST", "/v1/nope"),
            ("DELETE", "/v1/agents/x/y/z"),
            ("GET", "/missing.js"),
            ("POST", "/"),
            ("PUT", "/assets/index-abc123.js"),
            ("GET", "/docs/nope"),
            ("BREW", "/"),
        ],
    )
    async def test_anything_else_is_the_json_404(
        self, built: httpx.AsyncClient, method: str, path: str
    ) -> None:
        assert_no_such_route(await built.request(method, path))

    async def test_wrong_methods_on_api_routes_stay_405(self, built: httpx.AsyncClient) -> None:
        for method, path in (("DELETE", "/healthz"), ("GET", "/v1/auth/login"), ("PUT", "/")):
            response = await built.request(method, path)
            assert response.status_code == (404 if path == "/" else 405), (method, path)

    async def test_no_escape_from_the_build(self, built: httpx.AsyncClient) -> None:
        assert_no_such_route(await built.get("/../web.db"))
        assert_no_such_route(await built.get("/assets/../../web.db"))


class TestNotBuilt:
    async def test_root_says_how_to_build(self, unbuilt: httpx.AsyncClient) -> None:
        response = await unbuilt.get("/")

        assert response.status_code == 200
        assert "make web" in response.json()["detail"]
        assert response.json()["docs"] == "/docs"

    async def test_unknown_paths_are_the_json_404(self, unbuilt: httpx.AsyncClient) -> None:
        assert_no_such_route(await unbuilt.get("/v1/nope"))
        assert_no_such_route(await unbuilt.get("/index.html"))
        assert (await unbuilt.get("/healthz")).status_code == 200
