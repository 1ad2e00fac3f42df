"""Connection and OAuth-state queries; connections always filtered by org id."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import cast

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from voxflow.core.context import AppContext
from voxflow.core.db import session_scope
from voxflow.integrations.models import Connection, OAuthState
from voxflow.vault.models import Secret

CONNECTION_KIND = "connection"
ACTIVE = "active"
NEEDS_REAUTH = "needs_reauth"


def secret_name(connection_id: str) -> str:
    return f"connection:{connection_id}"


@asynccontextmanager
async def transaction(context: AppContext) -> AsyncIterator[AsyncSession]:
    """One committed unit of work outside a request, announcing its changes like a request.

    The OAuth flow talks to the provider between its writes, and must not hold a transaction
    (on SQLite, the whole database) while it waits on the network.
    """
    scope = cast(
        AsyncGenerator[AsyncSession, None],
        session_scope(context.sessionmaker, on_commit=context.announce_changes),
    )
    session = await anext(scope)
    try:
        yield session
    except BaseException as exc:
        await scope.athrow(exc)  # rolls back and raises `exc` again
        raise
    await anext(scope, None)  # commits, then announces


class ConnectionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, org_id: str, connection_id: str) -> Connection | None:
        return await self.session.scalar(
            select(Connection).where(Connection.org_id == org_id, Connection.id == connection_id)
        )

    async def get_by_name(self, org_id: str, name: str) -> Connection | None:
        return await self.session.scalar(
            select(Connection).where(Connection.org_id == org_id, Connection.name == name)
        )

    async def get_with_secret(
        self, org_id: str, connection_id: str
    ) -> tuple[Connection, Secret] | None:
        row = (
            await self.session.execute(
                select(Connection, Secret)
                .join(Secret, Secret.id == Connection.secret_id)
                .where(
                    Connection.org_id == org_id,
                    Connection.id == connection_id,
                    Secret.org_id == org_id,
                )
            )
        ).first()
        return (row[0], row[1]) if row is not None else None

    async def list(self, org_id: str, *, after: str | None, limit: int) -> Sequence[Connection]:
        query = select(Connection).where(Connection.org_id == org_id)
        if after:
            query = query.where(Connection.id > after)
        result = await self.session.scalars(query.order_by(Connection.id).limit(limit))
        return result.all()

    async def delete(self, connection: Connection) -> None:
        # The connection first: it holds the foreign key to its vault row.
        await self.session.execute(delete(Connection).where(Connection.id == connection.id))
        await self.session.execute(
            delete(Secret).where(
                Secret.id == connection.secret_id, Secret.org_id == connection.org_id
            )
        )


class OAuthStateRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, state_id: str) -> OAuthState | None:
        return await self.session.get(OAuthState, state_id)

    async def consume(self, state_id: str, now: datetime) -> bool:
        """Mark the state used; False when it already was (or has expired).

        One conditional UPDATE, so of two callbacks racing with the same state, the database
        lets exactly one through.
        """
        result = await self.session.execute(
            update(OAuthState)
            .where(
                OAuthState.id == state_id,
                OAuthState.used_at.is_(None),
                OAuthState.expires_at > now,
            )
            # The verifier is of no use once its code is spent; nothing keeps it past this.
            .values(used_at=now, code_verifier="")
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def purge(self, expired_before: datetime) -> None:
        await self.session.execute(delete(OAuthState).where(OAuthState.expires_at < expired_before))
