from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status
from fastapi.responses import RedirectResponse

from voxflow.core.deps import NO_NUL, ContextDep, PageDep, SessionDep
from voxflow.core.errors import Forbidden, problem_responses
from voxflow.core.pagination import Page, build_page
from voxflow.core.routing import ApiRoute
from voxflow.integrations import flow, service
from voxflow.integrations.repository import ConnectionRepository
from voxflow.integrations.schemas import (
    ConnectionOut,
    ConnectionTestResult,
    ConnectRequest,
    ConnectStarted,
    ProviderOut,
)
from voxflow.orgs.auth import AdminDep, ApiKeyPrincipal, MemberDep, PrincipalDep

router = APIRouter(prefix="/v1/integrations", tags=["integrations"], route_class=ApiRoute)
ConnectionID = Annotated[
    str, Path(max_length=64, pattern=NO_NUL, description="Connection id (`con_…`)")
]
ProviderName = Annotated[
    str, Path(max_length=40, pattern=NO_NUL, description="Provider name (`airtable`, …)")
]
READ_ERRORS = problem_responses(401, 403, 404, 429)
WRITE_ERRORS = problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 429)
_REDIRECT: dict[int | str, dict[str, Any]] = {
    303: {
        "description": "Back to `return_to`, with `connection=<id>` or `error` and "
        "`error_description` in its query",
        "headers": {"Location": {"schema": {"type": "string"}}},
    }
}


def _param(max_length: int, description: str) -> Any:
    return Query(max_length=max_length, pattern=NO_NUL, description=description)


@router.get("/providers", response_model=list[ProviderOut], responses=READ_ERRORS)
async def list_providers(_auth: MemberDep, context: ContextDep) -> list[ProviderOut]:
    return service.list_providers(context.settings)


@router.post(
    "/{provider}/connect",
    status_code=status.HTTP_201_CREATED,
    response_model=ConnectStarted,
    responses=WRITE_ERRORS,
)
async def connect(
    provider: ProviderName,
    body: ConnectRequest,
    auth: AdminDep,
    context: ContextDep,
    session: SessionDep,
) -> ConnectStarted:
    """Start connecting an account: send the browser to `authorize_url`. Needs a signed-in
    admin (not an API key): the provider sends that person's browser back to the callback."""
    return await flow.start_connect(context, session, auth, provider, body)


@router.get(
    "/oauth/callback",
    status_code=status.HTTP_303_SEE_OTHER,
    response_class=RedirectResponse,
    responses={**_REDIRECT, **problem_responses(400, 401, 403, 422, 429)},
)
async def oauth_callback(
    principal: PrincipalDep,
    context: ContextDep,
    state: Annotated[str | None, _param(512, "The state sent with the authorisation")] = None,
    code: Annotated[str | None, _param(4096, "The authorisation code")] = None,
    error: Annotated[str | None, _param(200, "The provider's error code")] = None,
    error_description: Annotated[str | None, _param(2000, "The provider's reason")] = None,
) -> RedirectResponse:
    """Where the provider sends the browser back. A state that is unknown, used, expired or
    started by someone else answers 400; anything after that returns to `return_to`."""
    if isinstance(principal, ApiKeyPrincipal):
        raise Forbidden("The OAuth callback completes in the browser that started connecting.")
    params = flow.CallbackParams(
        state=state, code=code, error=error, error_description=error_description
    )
    location = await flow.complete_callback(context, principal.user_id, params)
    # The URL that brought the browser here carried a code; nothing of it should be kept.
    return RedirectResponse(
        location,
        status_code=status.HTTP_303_SEE_OTHER,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


@router.get("/connections", response_model=Page[ConnectionOut], responses=READ_ERRORS)
async def list_connections(
    auth: MemberDep, session: SessionDep, page: PageDep
) -> Page[ConnectionOut]:
    rows = await ConnectionRepository(session).list(
        auth.org_id, after=page.cursor, limit=page.limit + 1
    )
    return build_page(rows, page.limit, service.to_out, lambda c: c.id)


@router.get("/connections/{connection_id}", response_model=ConnectionOut, responses=READ_ERRORS)
async def get_connection(
    connection_id: ConnectionID, auth: MemberDep, session: SessionDep
) -> ConnectionOut:
    return service.to_out(await service.get_connection(session, auth, connection_id))


@router.delete(
    "/connections/{connection_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=READ_ERRORS,
)
async def delete_connection(
    connection_id: ConnectionID, auth: AdminDep, context: ContextDep
) -> None:
    """Revoke the tokens at the provider where it supports that, then forget them."""
    await service.delete_connection(context, auth, connection_id)


@router.post(
    "/connections/{connection_id}/test",
    response_model=ConnectionTestResult,
    responses=READ_ERRORS,
)
async def test_connection(
    connection_id: ConnectionID, auth: MemberDep, context: ContextDep, session: SessionDep
) -> ConnectionTestResult:
    """Make the provider's test request with the connection's token (refreshed if due)."""
    return await service.check_connection(context, session, auth, connection_id)
