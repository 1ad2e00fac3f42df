"""Rules for an org's connections: store, reconnect, read, test, delete.

(The authorisation that leads to storing one is `flow.py`.)
"""

from __future__ import annotations

import httpx2
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from voxflow.audit.service import Actor, record_audit
from voxflow.core.context import AppContext
from voxflow.core.db import utcnow
from voxflow.core.errors import Conflict, NotFound
from voxflow.core.ids import new_id
from voxflow.core.locks import LockTimeout, distributed_lock
from voxflow.core.settings import Settings
from voxflow.integrations import oauth
from voxflow.integrations.models import Connection
from voxflow.integrations.oauth import TokenEndpointError, TokenSet
from voxflow.integrations.providers import OAuthProvider, providers, title_of
from voxflow.integrations.refresh import (
    LOCK_WAIT_SECONDS,
    record_connection_change,
    usable_token,
)
from voxflow.integrations.repository import (
    ACTIVE,
    CONNECTION_KIND,
    NEEDS_REAUTH,
    ConnectionRepository,
    secret_name,
    transaction,
)
from voxflow.integrations.schemas import ConnectionOut, ConnectionTestResult, ProviderOut
from voxflow.orgs.auth import AuthSubject
from voxflow.tools.registry import ToolError
from voxflow.vault.crypto import VaultError
from voxflow.vault.models import Secret
from voxflow.vault.vault import Vault, get_vault

log = structlog.get_logger("voxflow.integrations")


def list_providers(settings: Settings) -> list[ProviderOut]:
    return [
        ProviderOut(
            name=provider.name,
            title=provider.title,
            configured=provider.configured,
            scopes=list(provider.scopes),
        )
        for provider in providers(settings).values()
    ]


async def create_connection(
    session: AsyncSession,
    vault: Vault,
    *,
    org_id: str,
    provider: OAuthProvider,
    name: str,
    tokens: TokenSet,
    actor: Actor,
) -> Connection:
    """A connection and its vault row, audited; raises IntegrityError when `name` is taken."""
    now = utcnow()
    connection_id = new_id("con")
    secret = Secret(
        id=new_id("sec"),
        org_id=org_id,
        kind=CONNECTION_KIND,
        name=secret_name(connection_id),
        created_by=actor.id,
        created_at=now,
        updated_at=now,
    )
    vault.seal_into(secret, tokens.to_bytes())
    session.add(secret)
    await session.flush()  # the connection's foreign key needs the row
    connection = Connection(
        id=connection_id,
        org_id=org_id,
        provider=provider.name,
        name=name,
        status=ACTIVE,
        secret_id=secret.id,
        scopes=tokens.scope,
        expires_at=tokens.expires_at,
        created_by=actor.id,
        created_at=now,
        updated_at=now,
    )
    session.add(connection)
    await session.flush()
    await record_audit(
        session,
        org_id=org_id,
        actor=actor,
        action="connection.created",
        target_type="connection",
        target_id=connection.id,
        target_name=name,
        detail={"provider": provider.name, "scopes": tokens.scope},
    )
    record_connection_change(session, connection)
    return connection


def reconnectable(connection: Connection, provider: OAuthProvider) -> bool:
    """A connection the provider stopped honouring is connected again under its own name,
    so the workflows that use it need no change."""
    return connection.status == NEEDS_REAUTH and connection.provider == provider.name


async def reconnect(
    session: AsyncSession, vault: Vault, connection: Connection, tokens: TokenSet, actor: Actor
) -> Connection:
    """New tokens for a connection that needed reconnecting; it is active again."""
    found = await ConnectionRepository(session).get_with_secret(connection.org_id, connection.id)
    if found is None:
        raise NotFound(f"No connection {connection.id}.")
    secret = found[1]
    now = utcnow()
    vault.seal_into(secret, tokens.to_bytes())
    secret.updated_at = now
    connection.status = ACTIVE
    connection.last_error = None
    connection.scopes = tokens.scope
    connection.expires_at = tokens.expires_at
    connection.last_refreshed_at = now
    connection.updated_at = now
    await session.flush()
    await record_audit(
        session,
        org_id=connection.org_id,
        actor=actor,
        action="connection.reconnected",
        target_type="connection",
        target_id=connection.id,
        target_name=connection.name,
        detail={"provider": connection.provider, "scopes": tokens.scope},
    )
    record_connection_change(session, connection)
    return connection


async def revoke_quietly(provider: OAuthProvider, tokens: TokenSet, *, reason: str) -> bool | None:
    """Revoke at the provider when it can; None when it cannot. Failures are only logged:
    the tokens are about to be forgotten either way."""
    if provider.revocation_url is None:
        return None
    try:
        await oauth.revoke(provider, tokens)
    except TokenEndpointError as exc:
        log.warning(
            "connection_revoke_failed", provider=provider.name, reason=reason, error=str(exc)
        )
        return False
    return True


async def get_connection(
    session: AsyncSession, auth: AuthSubject, connection_id: str
) -> Connection:
    connection = await ConnectionRepository(session).get(auth.org_id, connection_id)
    if connection is None:
        raise NotFound(f"No connection {connection_id}.")
    return connection


async def delete_connection(context: AppContext, auth: AuthSubject, connection_id: str) -> None:
    """Revoke at the provider (best effort), then forget the tokens and the connection.

    Under the connection's refresh lock, so a refresh cannot write tokens back meanwhile.
    """
    async with context.read_sessionmaker() as session:
        await get_connection(session, auth, connection_id)
    try:
        async with distributed_lock(
            context, f"connection:{connection_id}", wait_seconds=LOCK_WAIT_SECONDS
        ):
            await _revoke_and_delete(context, auth, connection_id)
    except LockTimeout:
        raise Conflict("The connection is being refreshed; try deleting it again.") from None


async def _revoke_and_delete(context: AppContext, auth: AuthSubject, connection_id: str) -> None:
    async with context.read_sessionmaker() as session:
        found = await ConnectionRepository(session).get_with_secret(auth.org_id, connection_id)
    if found is None:
        raise NotFound(f"No connection {connection_id}.")
    connection, secret = found
    revoked = None
    provider = providers(context.settings).get(connection.provider)
    if provider is not None and provider.configured:
        vault = await get_vault(context)
        try:
            tokens = TokenSet.from_bytes(vault.open_row(secret))
        except (VaultError, ValueError, KeyError):
            log.error("connection_tokens_unreadable", connection_id=connection.id)
        else:
            revoked = await revoke_quietly(provider, tokens, reason="deleted")
    async with transaction(context) as session:
        row = await ConnectionRepository(session).get(auth.org_id, connection_id)
        if row is None:
            raise NotFound(f"No connection {connection_id}.")
        await record_audit(
            session,
            org_id=auth.org_id,
            actor=Actor.of(auth),
            action="connection.deleted",
            target_type="connection",
            target_id=row.id,
            target_name=row.name,
            detail={"provider": row.provider, "revoked_at_provider": revoked},
        )
        await ConnectionRepository(session).delete(row)
        record_connection_change(session, row)


async def check_connection(
    context: AppContext, session: AsyncSession, auth: AuthSubject, connection_id: str
) -> ConnectionTestResult:
    """Call the provider's test URL with the token (refreshing it first when due)."""
    connection = await get_connection(session, auth, connection_id)
    result = await _probe(context, auth, connection)
    await record_audit(
        session,
        org_id=auth.org_id,
        actor=Actor.of(auth),
        action="connection.tested",
        target_type="connection",
        target_id=connection.id,
        target_name=connection.name,
        detail={"ok": result.ok, "status": result.status},
    )
    return result


async def _probe(
    context: AppContext, auth: AuthSubject, connection: Connection
) -> ConnectionTestResult:
    title = title_of(context.settings, connection.provider)
    provider = providers(context.settings).get(connection.provider)
    if provider is None or not provider.configured:
        return ConnectionTestResult(
            ok=False, status=None, detail=f"{title} is not configured on this server."
        )
    actor = Actor.of(auth)
    try:
        usable = await usable_token(context, auth.org_id, connection.id, actor=actor)
        if provider.test_url is None:
            return ConnectionTestResult(
                ok=True,
                status=None,
                detail=f"{title} has no test request; the connection holds a current token.",
            )
        status = await oauth.probe(provider, provider.test_url, usable.access_token)
        if status == 401:
            usable = await usable_token(
                context, auth.org_id, connection.id, actor=actor, rejected=usable.access_token
            )
            status = await oauth.probe(provider, provider.test_url, usable.access_token)
    except ToolError as exc:
        return ConnectionTestResult(ok=False, status=None, detail=exc.message)
    except LockTimeout:
        return ConnectionTestResult(ok=False, status=None, detail="The connection is busy; retry.")
    except httpx2.HTTPError as exc:
        return ConnectionTestResult(
            ok=False, status=None, detail=f"{title} could not be reached ({type(exc).__name__})."
        )
    if 200 <= status < 300:
        return ConnectionTestResult(ok=True, status=status, detail=f"{title} accepted the token.")
    return ConnectionTestResult(
        ok=False, status=status, detail=f"{title} answered HTTP {status} to the test request."
    )


def to_out(connection: Connection) -> ConnectionOut:
    return ConnectionOut(
        id=connection.id,
        name=connection.name,
        provider=connection.provider,
        status="needs_reauth" if connection.status == NEEDS_REAUTH else "active",
        scopes=connection.scopes.split(),
        expires_at=connection.expires_at,
        created_at=connection.created_at,
        created_by=connection.created_by,
        last_refreshed_at=connection.last_refreshed_at,
        last_error=connection.last_error,
    )
