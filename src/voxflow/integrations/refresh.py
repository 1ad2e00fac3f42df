"""A connection's usable access token: refreshed shortly before it expires, or after the
provider refused it, by one holder at a time across processes.

Airtable's refresh tokens work once: two processes refreshing together would see one of them
answered `invalid_grant` and the connection wrongly marked for reconnection. So a refresh runs
under `distributed_lock`, re-reads the connection there (another holder may have refreshed it
meanwhile), and commits the rotated refresh token before the new access token is handed out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from voxflow.audit.service import Actor, record_audit
from voxflow.core.context import AppContext
from voxflow.core.db import record_change, utcnow
from voxflow.core.locks import LockTimeout, distributed_lock
from voxflow.integrations import oauth
from voxflow.integrations.models import Connection
from voxflow.integrations.oauth import TokenEndpointError, TokenSet
from voxflow.integrations.providers import providers, title_of
from voxflow.integrations.repository import (
    ACTIVE,
    NEEDS_REAUTH,
    ConnectionRepository,
    transaction,
)
from voxflow.tools.registry import ToolError
from voxflow.vault.crypto import VaultError
from voxflow.vault.vault import get_vault

log = structlog.get_logger("voxflow.integrations")

# Refresh this long before the provider's expiry, so a token never dies in flight.
REFRESH_MARGIN = timedelta(seconds=60)
# A token issued this recently that the provider refuses will not be helped by another.
JUST_ISSUED = timedelta(seconds=30)
LOCK_WAIT_SECONDS = 30.0
CONNECTION_TOPIC = "connection"
SETTINGS_HINT = "(Settings → Integrations)"


@dataclass(frozen=True)
class Usable:
    connection_id: str
    access_token: str = field(repr=False)
    expires_at: datetime | None


def cache_key(org_id: str, provider: str, name: str) -> str:
    # Names hold no control characters (schemas.ConnectionName), so \x1f cannot be ambiguous.
    return f"{org_id}\x1f{provider}\x1f{name}"


def record_connection_change(session: AsyncSession, connection: Connection) -> None:
    """Every process's token cache drops the connection once the transaction commits."""
    record_change(
        session,
        CONNECTION_TOPIC,
        cache_key(connection.org_id, connection.provider, connection.name),
    )


def expiring(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is not None and expires_at - now <= REFRESH_MARGIN


async def usable_token(
    context: AppContext,
    org_id: str,
    connection_id: str,
    *,
    actor: Actor,
    rejected: str | None = None,
) -> Usable:
    """The connection's access token, refreshed first when it is about to expire or when it is
    `rejected` (the provider answered 401 to it). Raises ToolError, safe to show."""
    connection, tokens = await _load(context, org_id, connection_id)
    if not _needs_refresh(connection, tokens, rejected):
        return Usable(connection.id, tokens.access_token, connection.expires_at)
    try:
        async with distributed_lock(
            context, f"connection:{connection_id}", wait_seconds=LOCK_WAIT_SECONDS
        ):
            return await _refresh_locked(context, org_id, connection_id, actor, rejected)
    except LockTimeout:
        title = title_of(context.settings, connection.provider)
        raise ToolError(
            f"{title} connection '{connection.name}' is busy refreshing elsewhere; try again",
            retryable=True,
        ) from None


async def _load(
    context: AppContext, org_id: str, connection_id: str
) -> tuple[Connection, TokenSet]:
    async with context.read_sessionmaker() as session:
        found = await ConnectionRepository(session).get_with_secret(org_id, connection_id)
    if found is None:
        raise ToolError(f"the connection {connection_id} no longer exists {SETTINGS_HINT}")
    connection, secret = found
    title = title_of(context.settings, connection.provider)
    if connection.status == NEEDS_REAUTH:
        raise ToolError(reconnect_message(title, connection))
    vault = await get_vault(context)
    try:
        tokens = TokenSet.from_bytes(vault.open_row(secret))
    except (VaultError, ValueError, KeyError):
        log.error("connection_tokens_unreadable", connection_id=connection.id)
        raise ToolError(f"{title} connection '{connection.name}' cannot be read") from None
    return connection, tokens


def reconnect_message(title: str, connection: Connection) -> str:
    reason = connection.last_error or "the provider no longer accepts its authorisation"
    return (
        f"{title} connection '{connection.name}' needs to be reconnected: {reason} {SETTINGS_HINT}"
    )


def _needs_refresh(connection: Connection, tokens: TokenSet, rejected: str | None) -> bool:
    if rejected is not None:
        return tokens.access_token == rejected
    return expiring(connection.expires_at, utcnow())


async def _refresh_locked(
    context: AppContext, org_id: str, connection_id: str, actor: Actor, rejected: str | None
) -> Usable:
    connection, tokens = await _load(context, org_id, connection_id)
    if not _needs_refresh(connection, tokens, rejected):
        return Usable(connection.id, tokens.access_token, connection.expires_at)  # done elsewhere
    provider = providers(context.settings).get(connection.provider)
    title = title_of(context.settings, connection.provider)
    now = utcnow()
    if rejected is not None and now - _issued_at(connection) < JUST_ISSUED:
        raise ToolError(
            f"{title} refused the token of connection '{connection.name}' that it issued moments "
            f"ago; check the connection's access, or reconnect it {SETTINGS_HINT}"
        )
    if provider is None or not provider.configured:
        raise ToolError(
            f"{title} is not configured on this server, so '{connection.name}' "
            "cannot be refreshed; ask an operator"
        )
    if not tokens.refresh_token:
        await _mark_needs_reauth(
            context,
            connection,
            actor,
            "the provider gave no refresh token, and the access token expired or was refused",
        )
        raise ToolError(reconnect_message(title, connection))
    try:
        fresh = await oauth.refresh(provider, tokens.refresh_token)
    except TokenEndpointError as exc:
        if exc.error == "invalid_grant":
            reason = "the provider refused the refresh token (invalid_grant)"
            await _mark_needs_reauth(context, connection, actor, reason)
            raise ToolError(reconnect_message(title, connection)) from None
        await _note_failure(context, connection, f"refresh failed: {exc}")
        raise ToolError(
            f"{title} connection '{connection.name}' could not be refreshed: "
            f"{exc.description}; try again later",
            retryable=True,
        ) from None
    try:
        await _save(
            context, connection, fresh, actor, rotated=fresh.refresh_token != tokens.refresh_token
        )
    except Exception:
        # A rotating provider has already spent the old refresh token: the connection will
        # need reconnecting, and this is the line that says why.
        log.exception("connection_refresh_not_saved", connection_id=connection.id)
        raise
    return Usable(connection.id, fresh.access_token, fresh.expires_at)


def _issued_at(connection: Connection) -> datetime:
    return connection.last_refreshed_at or connection.created_at


async def _save(
    context: AppContext, connection: Connection, tokens: TokenSet, actor: Actor, *, rotated: bool
) -> None:
    vault = await get_vault(context)
    now = utcnow()
    async with transaction(context) as session:
        found = await ConnectionRepository(session).get_with_secret(
            connection.org_id, connection.id
        )
        if found is None:
            return  # deleted meanwhile; its tokens go with it
        row, secret = found
        vault.seal_into(secret, tokens.to_bytes())
        secret.updated_at = now
        row.status = ACTIVE
        row.expires_at = tokens.expires_at
        row.scopes = tokens.scope or row.scopes
        row.last_refreshed_at = now
        row.last_error = None
        row.updated_at = now
        await record_audit(
            session,
            org_id=row.org_id,
            actor=actor,
            action="connection.refreshed",
            target_type="connection",
            target_id=row.id,
            target_name=row.name,
            detail={"provider": row.provider, "refresh_token_rotated": rotated},
        )
        record_connection_change(session, row)
    log.info("connection_refreshed", connection_id=connection.id, provider=connection.provider)


async def _mark_needs_reauth(
    context: AppContext, connection: Connection, actor: Actor, reason: str
) -> None:
    async with transaction(context) as session:
        row = await ConnectionRepository(session).get(connection.org_id, connection.id)
        if row is None:
            return
        row.status = NEEDS_REAUTH
        row.last_error = reason
        row.updated_at = utcnow()
        await record_audit(
            session,
            org_id=row.org_id,
            actor=actor,
            action="connection.needs_reauth",
            target_type="connection",
            target_id=row.id,
            target_name=row.name,
            detail={"provider": row.provider, "reason": reason},
        )
        record_connection_change(session, row)
    connection.status, connection.last_error = NEEDS_REAUTH, reason
    # Webhooks will carry this later; until then operators alert on the log event.
    log.warning(
        "connection_needs_reauth",
        org_id=connection.org_id,
        connection_id=connection.id,
        provider=connection.provider,
        reason=reason,
    )


async def _note_failure(context: AppContext, connection: Connection, error: str) -> None:
    async with transaction(context) as session:
        row = await ConnectionRepository(session).get(connection.org_id, connection.id)
        if row is not None:
            row.last_error = error
            row.updated_at = utcnow()
    log.warning(
        "connection_refresh_failed",
        connection_id=connection.id,
        provider=connection.provider,
        error=error,
    )
