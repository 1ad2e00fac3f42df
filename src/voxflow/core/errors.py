"""Domain errors and the one place that turns every error into RFC 9457 problem+json."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_MEDIA_TYPE = "application/problem+json"
request_id_var: ContextVar[str] = ContextVar("request_id", default="")
log = structlog.get_logger("voxflow.errors")


class ProblemItem(BaseModel):
    """One reason a request was refused, located in the body (pointer) or a parameter."""

    detail: str
    pointer: str | None = Field(default=None, description="RFC 6901 pointer into the body")
    parameter: str | None = Field(default=None, description="query, path or header name")


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    request_id: str = ""
    errors: list[ProblemItem] | None = None


class VoxflowError(Exception):
    status: int = 400
    slug: str = "bad-request"

    def __init__(
        self,
        detail: str,
        *,
        errors: Sequence[ProblemItem] | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors) if errors is not None else None
        self.headers = dict(headers or {})
        self.extra = extra


class BadRequest(VoxflowError):
    status, slug = 400, "bad-request"


class Unauthorized(VoxflowError):
    status, slug = 401, "unauthorized"


class Forbidden(VoxflowError):
    status, slug = 403, "forbidden"


class NotFound(VoxflowError):
    status, slug = 404, "not-found"


class Conflict(VoxflowError):
    status, slug = 409, "conflict"


class PreconditionFailed(VoxflowError):
    status, slug = 412, "precondition-failed"


class PayloadTooLarge(VoxflowError):
    status, slug = 413, "payload-too-large"


class UnsupportedMediaType(VoxflowError):
    status, slug = 415, "unsupported-media-type"


class InvalidInput(VoxflowError):
    status, slug = 422, "invalid-input"


class PreconditionRequired(VoxflowError):
    status, slug = 428, "precondition-required"


class RateLimited(VoxflowError):
    status, slug = 429, "rate-limited"


def problem_body(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    errors: Sequence[ProblemItem] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body: dict[str, Any] = {
        "type": f"/problems/{slug or phrase.lower().replace(' ', '-')}",
        "title": phrase,
        "status": status,
        "detail": detail,
        "request_id": request_id_var.get(),
    }
    if errors is not None:
        body["errors"] = [e.model_dump(exclude_none=True) for e in errors]
    if extra:
        body.update(extra)
    return body


def problem_response(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    errors: Sequence[ProblemItem] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, detail, slug=slug, errors=errors, extra=extra),
        status_code=status,
        headers=dict(headers or {}),
        media_type=PROBLEM_MEDIA_TYPE,
    )


def validation_items(errors: Sequence[Any]) -> tuple[list[ProblemItem], bool]:
    """Map FastAPI validation errors to items; also say whether the JSON itself was malformed."""
    items: list[ProblemItem] = []
    malformed = False
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        message = str(error.get("msg", "invalid"))
        if error.get("type") == "json_invalid":
            malformed = True
            ctx = error.get("ctx") or {}
            message = f"malformed JSON: {ctx.get('error', message)}"
            items.append(ProblemItem(detail=message, pointer=""))
        elif loc and loc[0] == "body":
            items.append(ProblemItem(detail=message, pointer=json_pointer(loc[1:])))
        elif loc:
            name = loc[1] if len(loc) > 1 else loc[0]
            items.append(ProblemItem(detail=f"{loc[0]} parameter: {message}", parameter=name))
        else:
            items.append(ProblemItem(detail=message, pointer=""))
    return items, malformed


def json_pointer(parts: Sequence[object]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


async def _voxflow_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, VoxflowError)
    return problem_response(
        exc.status,
        exc.detail,
        slug=exc.slug,
        errors=exc.errors,
        headers=exc.headers,
        extra=exc.extra,
    )


async def _request_validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    items, malformed = validation_items(exc.errors())
    if malformed:
        return problem_response(
            400, "The body is not valid JSON.", slug="malformed-body", errors=items
        )
    return problem_response(
        422, "The request has invalid fields.", slug="invalid-input", errors=items
    )


async def _http_exception(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and detail == "Not Found":
        detail = "No such route."
    # A 413 raised while reading the body (see the request middleware) reads like ours.
    slug = PayloadTooLarge.slug if exc.status_code == PayloadTooLarge.status else None
    return problem_response(exc.status_code, detail, slug=slug, headers=exc.headers)


async def _unhandled(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled_error", error_type=type(exc).__name__)
    return problem_response(500, "An unexpected error occurred; it has been logged.")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(VoxflowError, _voxflow_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(Exception, _unhandled)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting problem+json errors of a route."""
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
