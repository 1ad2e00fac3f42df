"""Access tokens of an org's connections, as tools ask for them (`ConnectionTokens`).

A tool call asks for a token on every request it makes, so answers come from a per-process
cache checked against the connection's epoch in Redis (`voxflow.core.cache`): a refresh,
a reconnection or a deletion in any process moves the epoch and the entry is dropped. Without
Redis nothing is cached, and each lookup reads the database and opens the vault row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from voxflow.audit.service import SYSTEM, Actor
from voxflow.core.cache import EpochCache
from voxflow.core.context import AppContext
from voxflow.integrations.providers import title_of
from voxflow.integrations.refresh import (
    CONNECTION_TOPIC,
    REFRESH_MARGIN,
    SETTINGS_HINT,
    Usable,
    cache_key,
    usable_token,
)
from voxflow.integrations.repository import ConnectionRepository
from voxflow.tools.registry import ToolError

# Only a backstop: every change moves the epoch, which every lookup checks.
CACHE_SECONDS = 300.0
CACHE_ENTRIES = 10_000
_MARGIN_SECONDS = REFRESH_MARGIN.total_seconds()


@dataclass(frozen=True)
class CachedToken:
    connection_id: str
    access_token: str = field(repr=False)
    # Wall-clock seconds: cheaper to compare on every lookup than datetimes.
    refresh_after: float


def token_cache(context: AppContext) -> EpochCache[CachedToken]:
    cache: EpochCache[CachedToken] | None = context.extras.get("connection_token_cache")
    if cache is None:
        cache = EpochCache[CachedToken](
            context.epochs,
            CONNECTION_TOPIC,
            ttl_seconds=CACHE_SECONDS,
            max_bytes=CACHE_ENTRIES,  # entries, as each counts 1
            size_of=lambda _entry: 1,
        )
        context.extras["connection_token_cache"] = cache
    return cache


class OrgConnections:
    """The `ConnectionTokens` of one org, for the tools of one call (or none)."""

    def __init__(self, context: AppContext, org_id: str, call_id: str | None = None) -> None:
        self.context = context
        self.org_id = org_id
        self.actor: Actor = Actor.call(call_id) if call_id else SYSTEM
        self._cache = token_cache(context)

    async def access_token(self, connection: str, *, provider: str) -> str:
        key = cache_key(self.org_id, provider, connection)
        epoch = await self._cache.epoch(key)
        cached = self._cache.get(key, epoch)
        if cached is not None and time.time() < cached.refresh_after:
            return cached.access_token
        usable = await self._usable(connection, provider, rejected=None)
        self._cache.put(key, _cached(usable), epoch)
        return usable.access_token

    async def refresh_rejected(self, connection: str, *, provider: str, rejected: str) -> str:
        usable = await self._usable(connection, provider, rejected=rejected)
        return usable.access_token

    async def _usable(self, name: str, provider: str, *, rejected: str | None) -> Usable:
        title = title_of(self.context.settings, provider)
        async with self.context.read_sessionmaker() as session:
            row = await ConnectionRepository(session).get_by_name(self.org_id, name)
        if row is None:
            raise ToolError(f"there is no {title} connection named '{name}' {SETTINGS_HINT}")
        if row.provider != provider:
            other = title_of(self.context.settings, row.provider)
            raise ToolError(f"connection '{name}' is a {other} connection, not {title}")
        return await usable_token(
            self.context, self.org_id, row.id, actor=self.actor, rejected=rejected
        )


def _cached(usable: Usable) -> CachedToken:
    refresh_after = (
        usable.expires_at.timestamp() - _MARGIN_SECONDS
        if usable.expires_at is not None
        else float("inf")
    )
    return CachedToken(usable.connection_id, usable.access_token, refresh_after)
