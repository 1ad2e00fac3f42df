"""The application factory: one FastAPI app wired from settings."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from voxflow.agents.routes import router as agents_router
from voxflow.api.health import router as health_router
from voxflow.api.metrics import Metrics
from voxflow.api.middleware import RequestMiddleware
from voxflow.api.web import DEFAULT_WEB_DIST, mount_web
from voxflow.audit.routes import router as audit_router
from voxflow.core.context import AppContext
from voxflow.core.errors import PROBLEM_MEDIA_TYPE, Problem, install_error_handlers
from voxflow.core.logging import configure_logging
from voxflow.core.migrations import is_at_head
from voxflow.core.settings import Settings, get_settings
from voxflow.integrations.routes import router as integrations_router
from voxflow.orgs.auth import SECURITY_SCHEMES, needs_credentials
from voxflow.orgs.routes import router as orgs_router
from voxflow.runtime import runtime_loader
from voxflow.sessions.call_routes import router as calls_router
from voxflow.sessions.routes import router as sessions_router
from voxflow.vault.routes import router as secrets_router
from voxflow.vault.vault import get_vault
from voxflow.voice.retention import RetentionLoop
from voxflow.voice.routes import router as voice_router
from voxflow.webhooks.delivery import DeliveryLoop
from voxflow.webhooks.routes import router as webhooks_router
from voxflow.workflows.routes import router as workflows_router

API_DESCRIPTION = """Design, version, test and run voice AI agents as workflows.

Authenticate with `Authorization: Bearer <api key>` or the session cookie set by
`POST /v1/auth/login`. Every error is `application/problem+json` (RFC 9457).
"""


ROUTERS = (
    health_router,
    orgs_router,
    workflows_router,
    agents_router,
    sessions_router,
    calls_router,
    integrations_router,
    secrets_router,
    webhooks_router,
    audit_router,
    voice_router,
)


class DatabaseBehind(RuntimeError):
    pass


def create_app(
    settings: Settings | None = None,
    *,
    check_migrations: bool = True,
    web_dist: Path | None = DEFAULT_WEB_DIST,
) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_format)
    if settings.sentry_dsn is not None:
        import sentry_sdk

        sentry_sdk.init(dsn=settings.sentry_dsn.get_secret_value(), send_default_pii=False)

    context = AppContext.create(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if check_migrations and not await is_at_head(context.engine):
            await context.close()
            raise DatabaseBehind("the database is behind the code: run: voxflow db upgrade")
        # Fails the start, before serving anything, without the key to the stored secrets.
        await get_vault(context)
        await runtime_loader(context).start()
        webhook_deliveries = DeliveryLoop(context)
        webhook_deliveries.start()
        recording_retention = RetentionLoop(context)
        recording_retention.start()
        _freeze_startup_heap()
        yield
        await webhook_deliveries.stop()
        await recording_retention.stop()
        await runtime_loader(context).close()
        await context.close()

    app = FastAPI(
        title="Voxflow",
        version="0.1.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        redirect_slashes=False,
        # Voxflow exports Prometheus metrics and Sentry errors. FastAPI's OpenTelemetry hooks
        # would look up the global providers on every request for nothing.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.context = context
    app.state.metrics = Metrics(context.engine)
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    # Last: the web app's mount matches every path the API routes above did not.
    mount_web(app, web_dist)
    app.add_middleware(
        RequestMiddleware, metrics=app.state.metrics, max_body_bytes=settings.max_body_bytes
    )
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _freeze_startup_heap() -> None:
    """Keep what start-up built out of the garbage collector's full passes.

    Modules, the app and its routes live until the process exits, yet every full collection
    re-scans them all: under load that stalled the event loop ~100 ms every second or two
    (measured), which was the p99 of every route. Frozen objects are still freed by reference
    counting; only cycles among them are never collected.
    """
    gc.collect()
    gc.freeze()


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault(
        "Problem", Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    )
    _problems_everywhere(schema)
    _security_where_needed(schema)
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    app.openapi_schema = schema
    return schema


def _security_where_needed(schema: dict[str, Any]) -> None:
    schema["components"]["securitySchemes"] = SECURITY_SCHEMES
    either: list[dict[str, list[str]]] = [{name: []} for name in SECURITY_SCHEMES]
    routes = (route for router in ROUTERS for route in router.routes)
    for route in routes:
        if isinstance(route, APIRoute) and needs_credentials(route.dependant):
            for method in route.methods or ():
                schema["paths"][route.path_format][method.lower()]["security"] = either


def _problems_everywhere(schema: dict[str, Any]) -> None:
    """FastAPI documents its own 422 shape; ours is problem+json, and any route may answer 500."""
    problem = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            if "422" in responses:
                responses["422"] = {"description": "Invalid input", "content": problem}
            if operation.get("parameters") and "422" not in responses:
                responses["422"] = {"description": "Invalid input", "content": problem}
            if "requestBody" in operation:
                # Any body may be malformed, too large or in a media type the route does not take.
                for code, description in _BODY_PROBLEMS.items():
                    responses.setdefault(code, {"description": description, "content": problem})
            responses.setdefault("500", {"description": "Unexpected error", "content": problem})


_BODY_PROBLEMS = {
    "400": "The body is not valid JSON (or YAML)",
    "413": "The body is too large",
    "415": "Unsupported Content-Type",
    "422": "Invalid input",
}
