"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text

from voxflow.api.metrics import Metrics
from voxflow.core.deps import ContextDep
from voxflow.core.migrations import is_at_head
from voxflow.core.redis import redis_reachable
from voxflow.core.routing import ApiRoute

router = APIRouter(tags=["health"], route_class=ApiRoute)

CheckStatus = Literal["ok", "failed", "degraded", "not_configured"]


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, CheckStatus]
    detail: str | None = None


@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> Health:
    return Health()


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A required check failed"}},
    summary="Ready to serve: database reachable and migrated; Redis optional",
)
async def readyz(context: ContextDep) -> JSONResponse:
    checks: dict[str, CheckStatus] = {}
    failures: list[str] = []
    try:
        async with context.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = "failed"
        failures.append(f"database unreachable ({type(exc).__name__})")
    if checks["database"] == "ok":
        at_head = await is_at_head(context.engine)
        checks["migrations"] = "ok" if at_head else "failed"
        if not at_head:
            failures.append("migrations behind head: run voxflow db upgrade")
    else:
        checks["migrations"] = "failed"
    if context.redis is None:
        checks["redis"] = "not_configured"
    else:
        checks["redis"] = "ok" if await redis_reachable(context.redis) else "degraded"
    ready = not failures
    body = Readiness(
        status="ready" if ready else "not_ready",
        checks=checks,
        detail="; ".join(failures) or None,
    )
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
    summary="Prometheus metrics of this process",
)
async def metrics(request: Request) -> Response:
    registry: Metrics = request.app.state.metrics
    return Response(generate_latest(registry.registry), media_type=CONTENT_TYPE_LATEST)
