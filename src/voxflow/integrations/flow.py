"""Connecting an account: the authorisation code flow with PKCE (RFC 6749, 7636, 9700).

`start_connect` stores a single-use `state` (as its SHA-256), bound to the signed-in person,
their org and the provider, with the PKCE verifier; `complete_callback` accepts the provider's
answer only for that state, once, within 10 minutes, from that same person, and exchanges the
code at that state's provider only. Every refusal creates nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from voxflow.audit.service import Actor
from voxflow.core.context import AppContext
from voxflow.core.db import utcnow
from voxflow.core.errors import BadRequest, Conflict, Forbidden, NotFound
from voxflow.core.settings import Settings
from voxflow.integrations import oauth, service
from voxflow.integrations.models import OAuthState
from voxflow.integrations.oauth import TokenEndpointError
from voxflow.integrations.pkce import new_code_verifier, new_state, state_id
from voxflow.integrations.providers import OAuthProvider, providers
from voxflow.integrations.repository import (
    ConnectionRepository,
    OAuthStateRepository,
    transaction,
)
from voxflow.integrations.return_to import with_query
from voxflow.integrations.schemas import ConnectRequest, ConnectStarted
from voxflow.orgs.auth import AuthSubject
from voxflow.orgs.models import Role
from voxflow.orgs.repository import OrgRepository
from voxflow.vault.vault import get_vault

log = structlog.get_logger("voxflow.integrations")

STATE_LIFETIME = timedelta(minutes=10)
# Expired states are kept a while so a late callback hears "expired", not "unknown".
STATE_KEPT = timedelta(days=1)
CALLBACK_PATH = "/v1/integrations/oauth/callback"


def redirect_uri(settings: Settings) -> str:
    """The one redirect URI, registered at every provider and sent in both requests."""
    return settings.public_url.rstrip("/") + CALLBACK_PATH


def configured_provider(settings: Settings, name: str) -> OAuthProvider:
    provider = providers(settings).get(name)
    if provider is None:
        known = ", ".join(sorted(providers(settings)))
        raise NotFound(f"No provider {name!r}; this server knows: {known}.")
    if not provider.configured:
        raise Conflict(provider.not_configured_reason())
    return provider


async def start_connect(
    context: AppContext,
    session: AsyncSession,
    auth: AuthSubject,
    provider_name: str,
    data: ConnectRequest,
) -> ConnectStarted:
    if auth.user_id is None:
        raise Forbidden(
            "Connecting an account needs a signed-in person: the provider sends their browser "
            "back here, and an API key has no browser. Sign in and connect from the web app."
        )
    provider = configured_provider(context.settings, provider_name)
    existing = await ConnectionRepository(session).get_by_name(auth.org_id, data.name)
    if existing is not None and not service.reconnectable(existing, provider):
        raise _name_taken(data.name)
    now = utcnow()
    states = OAuthStateRepository(session)
    await states.purge(now - STATE_KEPT)
    state, verifier = new_state(), new_code_verifier()
    callback = redirect_uri(context.settings)
    row = OAuthState(
        id=state_id(state),
        org_id=auth.org_id,
        user_id=auth.user_id,
        provider=provider.name,
        connection_name=data.name,
        return_to=data.return_to,
        redirect_uri=callback,
        code_verifier=verifier,
        created_at=now,
        expires_at=now + STATE_LIFETIME,
    )
    session.add(row)
    await session.flush()
    url = oauth.authorization_url(
        provider, redirect_uri=callback, state=state, code_verifier=verifier
    )
    return ConnectStarted(authorize_url=url, expires_at=row.expires_at)


@dataclass(frozen=True)
class Pending:
    """An authorisation whose state the callback has just consumed."""

    org_id: str
    provider: OAuthProvider
    connection_name: str
    return_to: str
    redirect_uri: str
    code_verifier: str = field(repr=False)


@dataclass(frozen=True)
class CallbackParams:
    state: str | None
    code: str | None
    error: str | None
    error_description: str | None


class StateRefused(BadRequest):
    """The callback's state is unusable: there is no return_to to trust, so a problem answers."""

    slug = "oauth-state-refused"


async def complete_callback(context: AppContext, user_id: str, params: CallbackParams) -> str:
    """Where to send the browser: `return_to` with `connection=<id>` or `error=…`.

    Raises StateRefused when the state is unknown, used, expired, or not this person's.
    """
    if not params.state:
        raise StateRefused("The callback has no state; start connecting again.")
    state = await _consume_state(context, user_id, params.state)
    provider = state.provider
    if params.error:
        description = params.error_description or "the provider did not authorise the connection"
        return _failed(state, params.error, description)
    if not params.code:
        return _failed(state, "invalid_request", "the provider sent neither a code nor an error")
    try:
        tokens = await oauth.exchange_code(
            provider,
            code=params.code,
            code_verifier=state.code_verifier,
            redirect_uri=state.redirect_uri,
        )
    except TokenEndpointError as exc:
        log.warning(
            "connection_token_exchange_failed",
            provider=provider.name,
            error=exc.error,
            detail=exc.description,
        )
        return _failed(state, "token_exchange_failed", f"{provider.title}: {exc.description}")
    vault = await get_vault(context)
    actor = Actor("user", user_id)
    try:
        async with transaction(context) as session:
            existing = await ConnectionRepository(session).get_by_name(
                state.org_id, state.connection_name
            )
            if existing is None:
                connection = await service.create_connection(
                    session,
                    vault,
                    org_id=state.org_id,
                    provider=provider,
                    name=state.connection_name,
                    tokens=tokens,
                    actor=actor,
                )
            elif service.reconnectable(existing, provider):
                connection = await service.reconnect(session, vault, existing, tokens, actor)
            else:
                raise _NameTaken
    except (IntegrityError, _NameTaken):  # taken while the person was at the provider
        await service.revoke_quietly(provider, tokens, reason="name_taken")
        return _failed(state, "name_taken", _name_taken(state.connection_name).detail)
    return with_query(state.return_to, connection=connection.id)


async def _consume_state(context: AppContext, user_id: str, state_value: str) -> Pending:
    now = utcnow()
    async with transaction(context) as session:
        states = OAuthStateRepository(session)
        state = await states.get(state_id(state_value))
        if state is None:
            raise StateRefused("Unknown state: this link is not from a connect started here.")
        if state.used_at is not None:
            raise StateRefused("This authorisation was already completed; start again.")
        if state.expires_at <= now:
            raise StateRefused("This authorisation expired (10 minutes); start connecting again.")
        if state.user_id != user_id:
            raise StateRefused("This authorisation was started by someone else; start your own.")
        membership = await OrgRepository(session).get_membership(state.org_id, user_id)
        if membership is None or not Role(membership.role).allows(Role.admin):
            raise StateRefused(
                "You are no longer an admin of the organization this authorisation is for."
            )
        # The provider is the one bound to the state: the callback URL names none, and a
        # code is only ever sent to the token endpoint of the provider it was asked of.
        provider = providers(context.settings).get(state.provider)
        if provider is None or not provider.configured:
            raise StateRefused(f"The provider {state.provider!r} is no longer configured here.")
        pending = Pending(
            org_id=state.org_id,
            provider=provider,
            connection_name=state.connection_name,
            return_to=state.return_to,
            redirect_uri=state.redirect_uri,
            code_verifier=state.code_verifier,
        )
        if not await states.consume(state.id, now):
            raise StateRefused("This authorisation was already completed; start again.")
    return pending


def _failed(state: Pending, error: str, description: str) -> str:
    return with_query(
        state.return_to,
        error=oauth.safe_error_code(error),
        error_description=oauth.safe_text(description),
    )


class _NameTaken(Exception):
    pass


def _name_taken(name: str) -> Conflict:
    return Conflict(
        f"A connection named {name!r} already exists; pick another name (only a connection "
        "that needs reconnecting can be connected again under its name)."
    )
