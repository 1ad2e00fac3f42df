"""Who is calling: an API key (Bearer) or a logged-in person (session cookie).

Routes declare what they need with `AuthDep` (`Authenticator(Role.member)`, …), so a
route's signature says who may call it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from voxflow.core.cache import EpochCache
from voxflow.core.context import AppContext
from voxflow.core.db import utcnow
from voxflow.core.errors import BadRequest, Forbidden, ProblemItem, Unauthorized
from voxflow.orgs.models import Role
from voxflow.orgs.repository import OrgRepository
from voxflow.orgs.tokens import API_KEY_PREFIX, token_hash

SESSION_COOKIE = "voxflow_session"
ORG_HEADER = "Voxflow-Org"

# How OpenAPI documents the two credentials; `get_principal` reads them.
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "HTTPBearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key: `Authorization: Bearer vf_…`",
    },
    "APIKeyCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": SESSION_COOKIE,
        "description": "Set by /v1/auth/login",
    },
}


@dataclass(frozen=True)
class ApiKeyPrincipal:
    key_id: str
    org_id: str
    role: Role


@dataclass(frozen=True)
class UserPrincipal:
    user_id: str
    login_session_id: str


Principal = ApiKeyPrincipal | UserPrincipal


@dataclass(frozen=True)
class AuthSubject:
    """The org a request acts in and with which role; every service call takes one."""

    org_id: str
    role: Role
    user_id: str | None = None
    api_key_id: str | None = None

    @property
    def actor(self) -> str:
        return self.user_id or self.api_key_id or "system"


# Revoking a key records a change of its hash under this topic (`record_change`), so every
# process stops accepting it from its cache as soon as the revocation commits.
API_KEY_TOPIC = "api_key"


def credential_cache(context: AppContext) -> EpochCache[ApiKeyPrincipal]:
    cache: EpochCache[ApiKeyPrincipal] | None = context.extras.get("api_key_cache")
    if cache is None:
        cache = EpochCache[ApiKeyPrincipal](
            context.epochs,
            API_KEY_TOPIC,
            ttl_seconds=context.settings.auth_cache_seconds,
            max_bytes=10_000,  # entries, as each counts 1
            size_of=lambda _principal: 1,
        )
        context.extras["api_key_cache"] = cache
    return cache


async def _api_key_principal(context: AppContext, api_key: str) -> ApiKeyPrincipal:
    digest = token_hash(api_key)
    cache = credential_cache(context)
    epoch = await cache.epoch(digest)
    principal = cache.get(digest, epoch)
    if principal is not None:
        return principal
    async with context.read_sessionmaker() as session:
        key = await OrgRepository(session).get_active_api_key_by_hash(digest)
        if key is None:
            raise Unauthorized(
                "The API key is unknown or revoked.", headers={"WWW-Authenticate": "Bearer"}
            )
        await _touch_api_key(context, session, key.id)
    principal = ApiKeyPrincipal(key_id=key.id, org_id=key.org_id, role=Role(key.role))
    cache.put(digest, principal, epoch)
    return principal


async def _touch_api_key(context: AppContext, session: AsyncSession, key_id: str) -> None:
    # "Last used" to the minute is enough; writing it on every request would cost a write.
    touched: dict[str, float] = context.extras.setdefault("api_key_touched", {})
    now = time.monotonic()
    if now - touched.get(key_id, -1e9) < context.settings.api_key_touch_seconds:
        return
    touched[key_id] = now
    await OrgRepository(session).touch_api_key(key_id, utcnow())


async def get_principal(request: HTTPConnection) -> Principal:
    """The caller's credential: an API key (`Authorization: Bearer vf_…`) or the login cookie.

    Read from the request directly rather than through FastAPI's security dependencies, and
    the database is opened only when the credential cache cannot answer: this runs on every
    request, and a cached read of a workflow then needs no session at all. The schemes are
    still documented in OpenAPI (`SECURITY_SCHEMES`, added by the app).
    """
    context: AppContext = request.app.state.context
    scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
    bearer = bearer.strip()
    if scheme.lower() == "bearer" and bearer:
        if not bearer.startswith(API_KEY_PREFIX):
            raise Unauthorized(
                "Bearer tokens are Voxflow API keys starting with 'vf_'.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        key = await _api_key_principal(context, bearer)
        await context.rate_limits.hit(context.settings.api_rate_limit, "api", key.key_id)
        return key
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        async with context.read_sessionmaker() as session:
            login = await OrgRepository(session).get_live_login_session(
                token_hash(cookie), utcnow()
            )
        if login is None:
            raise Unauthorized("The session has expired or was logged out; log in again.")
        await context.rate_limits.hit(context.settings.api_rate_limit, "user", login.user_id)
        return UserPrincipal(user_id=login.user_id, login_session_id=login.id)
    raise Unauthorized(
        "Authenticate with `Authorization: Bearer <api key>` or log in.",
        headers={"WWW-Authenticate": "Bearer"},
    )


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def needs_credentials(dependant: Dependant) -> bool:
    """Whether a route authenticates its caller (for its OpenAPI `security`)."""
    return any(
        dependency.call is get_principal or needs_credentials(dependency)
        for dependency in dependant.dependencies
    )


class Authenticator:
    """Dependency: the caller's org and role, refused unless the role is at least `minimum`."""

    def __init__(self, minimum: Role) -> None:
        self.minimum = minimum

    async def __call__(self, request: Request, principal: PrincipalDep) -> AuthSubject:
        wanted_org = request.headers.get(ORG_HEADER)
        if isinstance(principal, ApiKeyPrincipal):
            if wanted_org and wanted_org != principal.org_id:
                raise Forbidden("This API key belongs to another organization.")
            subject = AuthSubject(principal.org_id, principal.role, api_key_id=principal.key_id)
        else:
            context: AppContext = request.app.state.context
            async with context.read_sessionmaker() as session:
                subject = await _pick_membership(session, principal.user_id, wanted_org)
        if not subject.role.allows(self.minimum):
            raise Forbidden(
                f"This needs the {self.minimum.value} role; you are {subject.role.value}."
            )
        return subject


async def _pick_membership(
    session: AsyncSession, user_id: str, wanted_org: str | None
) -> AuthSubject:
    memberships = await OrgRepository(session).memberships_of(user_id)
    if wanted_org:
        for membership, _org in memberships:
            if membership.org_id == wanted_org:
                return AuthSubject(membership.org_id, Role(membership.role), user_id=user_id)
        raise Forbidden("You are not a member of that organization.")
    if len(memberships) == 1:
        membership = memberships[0][0]
        return AuthSubject(membership.org_id, Role(membership.role), user_id=user_id)
    if not memberships:
        raise Forbidden("You are not a member of any organization yet.")
    raise BadRequest(
        f"You belong to several organizations: name one with the {ORG_HEADER} header.",
        errors=[ProblemItem(detail="required with several memberships", parameter=ORG_HEADER)],
    )


MemberDep = Annotated[AuthSubject, Depends(Authenticator(Role.member))]
AdminDep = Annotated[AuthSubject, Depends(Authenticator(Role.admin))]
OwnerDep = Annotated[AuthSubject, Depends(Authenticator(Role.owner))]
