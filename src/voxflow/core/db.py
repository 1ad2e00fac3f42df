"""Async SQLAlchemy engine, sessions and the declarative base shared by every domain."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every backend (SQLite hands back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=False
    )


def _ensure_sqlite_dir(url: str) -> None:
    from pathlib import Path

    path = url.split(":///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the writer; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create_sessionmaker(
    engine: AsyncEngine, *, autocommit: bool = False
) -> async_sessionmaker[AsyncSession]:
    """Sessions on `engine`; with `autocommit`, every statement commits on its own.

    An autocommit session never sends BEGIN or COMMIT: one round trip per query instead of
    three, for requests that only read (see `voxflow.core.deps.get_session`).
    """
    bind = engine.execution_options(isolation_level="AUTOCOMMIT") if autocommit else engine
    return async_sessionmaker(bind, expire_on_commit=False, autoflush=False)


Change = tuple[str, str]
OnCommit = Callable[[set[Change]], Awaitable[None]]
_CHANGES = "voxflow.changes"


def record_change(session: AsyncSession, topic: str, key: str) -> None:
    """Note that `key` of `topic` (say, one workflow) changes in this transaction.

    `session_scope` hands the set to its `on_commit` once the commit succeeded, so caches in
    every process can drop what they hold for it; a rollback discards it.
    """
    session.info.setdefault(_CHANGES, set()).add((topic, key))


async def session_scope(
    sessionmaker: async_sessionmaker[AsyncSession], *, on_commit: OnCommit | None = None
) -> AsyncIterator[AsyncSession]:
    """One transaction per unit of work: commit on success, roll back on any error."""
    session = sessionmaker()
    try:
        yield session
        # A session nothing used (say, a request whose credential came from the cache) has
        # no transaction: committing it would only cost time.
        if session.in_transaction():
            await session.commit()
    except BaseException:
        session.info.pop(_CHANGES, None)
        await session.rollback()
        raise
    finally:
        # Likewise an unused session holds no connection and no objects, and closing it would
        # cost a greenlet hop on every cached read.
        if session.in_transaction() or session.identity_map:
            await session.close()
    changes: set[Change] | None = session.info.pop(_CHANGES, None)
    if changes and on_commit is not None:
        await on_commit(changes)
