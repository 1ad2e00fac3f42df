"""The web app (web/, built by `make web` into web/dist), served at `/` after every API route."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

# src/voxflow/api/web.py → the repository's web/dist (the project installs editable).
DEFAULT_WEB_DIST = Path(__file__).resolve().parents[3] / "web" / "dist"

# Paths the web app never answers, whatever files the build holds: the API's own.
_API_PREFIXES = ("/v1/", "/docs/", "/redoc/")
_READ_METHODS = frozenset({"GET", "HEAD"})


class WebApp(StaticFiles):
    """The built files, with `index.html` for `/`; a missing file is the API's JSON 404."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if scope["method"] not in _READ_METHODS:
            raise HTTPException(status_code=404)
        return await super().get_response(path, scope)


class WebMount(Mount):
    """Matches only what no API route claims: GET/HEAD outside the API's paths, and only as a
    partial match. The router prefers any route's full match and an earlier route's partial
    one (a 405 for the wrong method), so the API answers exactly as it does without the web
    app: a mistyped `/v1/...` call is still the JSON 404 problem, never index.html.
    """

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or scope["method"] not in _READ_METHODS:
            return Match.NONE, {}
        if f"{scope['path']}/".startswith(_API_PREFIXES):
            return Match.NONE, {}
        match, child_scope = super().matches(scope)
        return (Match.PARTIAL, child_scope) if match is Match.FULL else (match, child_scope)


def web_not_built() -> JSONResponse:
    return JSONResponse(
        {
            "title": "Voxflow API",
            "detail": "The web app is not built: run `make web` (or `make run`), then reload.",
            "docs": "/docs",
        }
    )


def mount_web(app: FastAPI, dist: Path | None) -> None:
    """Serve `dist` at `/` if it holds a build; otherwise `/` says how to build it."""
    if dist is not None and (dist / "index.html").is_file():
        app.router.routes.append(WebMount("/", app=WebApp(directory=dist, html=True), name="web"))
    else:
        app.add_api_route("/", web_not_built, methods=["GET"], include_in_schema=False)
