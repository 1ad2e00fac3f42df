"""The token cache (epochs in Redis) and the lock that keeps refreshes one at a time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import respx
from sqlalchemy import event

from integrations.oauth_support import (
    ACME_TOKEN_URL,
    OAUTH_SETTINGS,
    Person,
    issued_an_hour_ago,
    stored_connection,
    token_response,
    unique,
)
from support import make_settings
from voxflow.core.context import AppContext
from voxflow.core.db import utcnow
from voxflow.core.locks import LockTimeout, distributed_lock
from voxflow.integrations.oauth import TokenSet
from voxflow.integrations.service import delete_connection
from voxflow.integrations.tokens import OrgConnections
from voxflow.orgs.auth import AuthSubject
from voxflow.orgs.models import Role
from voxflow.tools.registry import ToolError


def tokens() -> TokenSet:
    return TokenSet(
        access_token=unique("access"),
        refresh_token=unique("refresh"),
        token_type="Bearer",
        expires_at=utcnow() + timedelta(minutes=50),
        scope="contacts.read",
    )


@pytest.fixture
async def processes(database_url: str, redis_url: str) -> AsyncIterator[list[AppContext]]:
    """Two contexts on one database and one Redis, as two server processes have."""
    contexts = [
        AppContext.create(make_settings(database_url, redis_url=redis_url, **OAUTH_SETTINGS))
        for _ in range(2)
    ]
    yield contexts
    for context in contexts:
        await context.close()


@contextmanager
def counting_statements(context: AppContext) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(context.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(context.engine.sync_engine, "before_cursor_execute", record)


class TestWarmCache:
    async def test_warm_lookups_read_no_database(
        self, processes: list[AppContext], admin: Person
    ) -> None:
        context = processes[0]
        stored = tokens()
        connection = await stored_connection(
            context, admin.org_id, provider="generic", tokens=stored
        )
        connections = OrgConnections(context, admin.org_id)
        await connections.access_token(connection.name, provider="generic")

        # How fast that is, is bench/vault.py's business (no timing in unit tests).
        with counting_statements(context) as statements:
            for _ in range(30):
                token = await connections.access_token(connection.name, provider="generic")

        assert token == stored.access_token
        assert statements == []

    async def test_a_refresh_elsewhere_reaches_this_process_cache(
        self, processes: list[AppContext], admin: Person, network: respx.MockRouter
    ) -> None:
        here, there = processes
        answer = token_response()
        network.post(ACME_TOKEN_URL).respond(json=answer)
        stored = tokens()
        connection = await stored_connection(here, admin.org_id, provider="generic", tokens=stored)
        await issued_an_hour_ago(here, connection.id)
        assert (
            await OrgConnections(here, admin.org_id).access_token(
                connection.name, provider="generic"
            )
            == stored.access_token
        )

        await OrgConnections(there, admin.org_id).refresh_rejected(
            connection.name, provider="generic", rejected=stored.access_token
        )

        assert (
            await OrgConnections(here, admin.org_id).access_token(
                connection.name, provider="generic"
            )
            == answer["access_token"]
        )

    async def test_a_deletion_elsewhere_reaches_this_process_cache(
        self, processes: list[AppContext], admin: Person, network: respx.MockRouter
    ) -> None:
        here, there = processes
        network.post(url__regex=".*revoke").respond(200)
        connection = await stored_connection(
            here, admin.org_id, provider="generic", tokens=tokens()
        )
        connections = OrgConnections(here, admin.org_id)
        await connections.access_token(connection.name, provider="generic")

        auth = AuthSubject(admin.org_id, Role.admin, user_id=admin.user.id)
        await delete_connection(there, auth, connection.id)

        with pytest.raises(ToolError, match="no Acme CRM connection"):
            await connections.access_token(connection.name, provider="generic")


class TestDistributedLock:
    @pytest.mark.parametrize("with_redis", [True, False])
    async def test_two_processes_never_hold_a_key_together(
        self, database_url: str, request: pytest.FixtureRequest, with_redis: bool
    ) -> None:
        if database_url.startswith("sqlite") and not with_redis:
            pytest.skip("SQLite deployments are one process: the lock is in-process only")
        redis_url = request.getfixturevalue("redis_url") if with_redis else None
        contexts = [
            AppContext.create(make_settings(database_url, redis_url=redis_url)) for _ in range(2)
        ]
        key = unique("key")
        holding: list[int] = []
        overlaps = 0

        async def hold(context: AppContext) -> None:
            nonlocal overlaps
            async with distributed_lock(context, key, wait_seconds=10):
                holding.append(1)
                overlaps += len(holding) > 1
                await asyncio.sleep(0.01)
                holding.pop()

        try:
            await asyncio.gather(*(hold(contexts[i % 2]) for i in range(12)))
        finally:
            for context in contexts:
                await context.close()

        assert overlaps == 0

    @pytest.mark.parametrize("with_redis", [True, False])
    async def test_a_wait_longer_than_allowed_is_a_lock_timeout(
        self, database_url: str, request: pytest.FixtureRequest, with_redis: bool
    ) -> None:
        redis_url = request.getfixturevalue("redis_url") if with_redis else None
        contexts = [
            AppContext.create(make_settings(database_url, redis_url=redis_url)) for _ in range(2)
        ]
        # On SQLite only a lock within one process excludes anything.
        second = (
            contexts[0] if database_url.startswith("sqlite") and not with_redis else contexts[1]
        )
        key = unique("key")
        try:
            async with distributed_lock(contexts[0], key, wait_seconds=5):
                with pytest.raises(LockTimeout):
                    async with distributed_lock(second, key, wait_seconds=0.2):
                        pass
            async with distributed_lock(second, key, wait_seconds=1):
                pass  # free again once released
        finally:
            for context in contexts:
                await context.close()
