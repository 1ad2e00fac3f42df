from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status

from voxflow.core.deps import NO_NUL, ContextDep, PageDep, SessionDep
from voxflow.core.errors import Forbidden, Unauthorized, problem_responses
from voxflow.core.pagination import Page, build_page
from voxflow.core.routing import ApiRoute
from voxflow.orgs import service
from voxflow.orgs.auth import (
    ORG_HEADER,
    SESSION_COOKIE,
    AdminDep,
    ApiKeyPrincipal,
    Authenticator,
    PrincipalDep,
    UserPrincipal,
)
from voxflow.orgs.models import Role
from voxflow.orgs.repository import OrgRepository
from voxflow.orgs.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    LoginRequest,
    Me,
    MembershipOut,
    OrgCreate,
    OrgCreated,
    OrgOut,
    UserOut,
)

router = APIRouter(prefix="/v1", route_class=ApiRoute)
ApiKeyID = Annotated[str, Path(max_length=64, pattern=NO_NUL, description="API key id (`key_…`)")]
AUTH_ERRORS = problem_responses(401, 403, 429)


def _api_key_created(new: service.NewApiKey) -> ApiKeyCreated:
    return ApiKeyCreated(**ApiKeyOut.model_validate(new.record).model_dump(), key=new.key)


@router.post(
    "/auth/login",
    tags=["auth"],
    response_model=Me,
    responses=problem_responses(401, 422, 429),
    summary="Log in with email and password; sets the session cookie",
)
async def login(
    body: LoginRequest,
    request: Request,
    response: Response,
    context: ContextDep,
    session: SessionDep,
) -> Me:
    limits, limit = context.rate_limits, context.settings.login_rate_limit
    await limits.hit(
        limit, "login-ip", request.client.host if request.client else "?", precise=True
    )
    await limits.hit(limit, "login-email", body.email.lower(), precise=True)
    user, token = await service.login(context, session, body.email, body.password)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=context.settings.session_ttl_hours * 3600,
        httponly=True,
        samesite="lax",
        secure=context.settings.secure_cookies or request.url.scheme == "https",
        path="/",
    )
    return await _me_for_user(session, user.id)


@router.post(
    "/auth/logout",
    tags=["auth"],
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401),
    summary="Log out: the session is revoked on the server",
)
async def logout(principal: PrincipalDep, session: SessionDep, response: Response) -> None:
    if isinstance(principal, UserPrincipal):
        await service.logout(session, principal.login_session_id)
    response.delete_cookie(SESSION_COOKIE, path="/")


async def _me_for_user(session: SessionDep, user_id: str) -> Me:
    repo = OrgRepository(session)
    user = await repo.get_user(user_id)
    memberships = [
        MembershipOut(org_id=m.org_id, org_name=o.name, role=Role(m.role))
        for m, o in await repo.memberships_of(user_id)
    ]
    only = memberships[0] if len(memberships) == 1 else None
    return Me(
        user=UserOut.model_validate(user),
        memberships=memberships,
        org_id=only.org_id if only else None,
        role=only.role if only else None,
    )


@router.get("/me", tags=["auth"], response_model=Me, responses=AUTH_ERRORS)
async def me(principal: PrincipalDep, session: SessionDep, request: Request) -> Me:
    """The caller: a person with their memberships, or an API key with its org and role."""
    if isinstance(principal, ApiKeyPrincipal):
        key = await OrgRepository(session).get_api_key(principal.org_id, principal.key_id)
        if key is None:  # revoked since it was authenticated (e.g. from a cached credential)
            raise Unauthorized(
                "The API key is unknown or revoked.", headers={"WWW-Authenticate": "Bearer"}
            )
        return Me(
            user=None,
            memberships=[],
            org_id=principal.org_id,
            role=principal.role,
            api_key=ApiKeyOut.model_validate(key),
        )
    result = await _me_for_user(session, principal.user_id)
    # Without Voxflow-Org a person in several orgs gets their memberships to pick from
    # (org_id stays null); with it, the org is resolved as for any org route (403 if foreign).
    if request.headers.get(ORG_HEADER):
        subject = await Authenticator(Role.member)(request, principal)
        result.org_id, result.role = subject.org_id, subject.role
    return result


@router.post(
    "/orgs",
    tags=["orgs"],
    status_code=status.HTTP_201_CREATED,
    response_model=OrgCreated,
    responses=problem_responses(401, 403, 422, 429),
)
async def create_org(body: OrgCreate, principal: PrincipalDep, session: SessionDep) -> OrgCreated:
    """Create an organization owned by the logged-in person; returns its first API key once."""
    if not isinstance(principal, UserPrincipal):
        raise Forbidden("Log in as a person to create an organization; API keys belong to one org.")
    new = await service.create_org(session, body.name, owner_user_id=principal.user_id)
    return OrgCreated(org=OrgOut.model_validate(new.org), api_key=_api_key_created(new.api_key))


@router.post(
    "/api-keys",
    tags=["api-keys"],
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    responses=problem_responses(401, 403, 422, 429),
)
async def create_api_key(body: ApiKeyCreate, auth: AdminDep, session: SessionDep) -> ApiKeyCreated:
    """Create an API key. The value is in this response only: store it now."""
    return _api_key_created(await service.create_api_key(session, auth, body.name, body.role))


@router.get("/api-keys", tags=["api-keys"], response_model=Page[ApiKeyOut], responses=AUTH_ERRORS)
async def list_api_keys(auth: AdminDep, session: SessionDep, page: PageDep) -> Page[ApiKeyOut]:
    rows = await OrgRepository(session).list_api_keys(
        auth.org_id, after=page.cursor, limit=page.limit + 1
    )
    return build_page(rows, page.limit, ApiKeyOut.model_validate, lambda k: k.id)


@router.delete(
    "/api-keys/{key_id}",
    tags=["api-keys"],
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 429),
)
async def revoke_api_key(key_id: ApiKeyID, auth: AdminDep, session: SessionDep) -> None:
    """Revoke a key: it fails on the very next request, in every process."""
    await service.revoke_api_key(session, auth, key_id)
