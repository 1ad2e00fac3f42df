"""Typed FastAPI dependencies shared by every domain's routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Query, Request
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from voxflow.core.context import AppContext
from voxflow.core.db import session_scope


# Dependencies are `async def` even when they do not await: FastAPI runs a plain `def` in a
# worker thread, and that hop costs more than the work on every request.
async def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


ContextDep = Annotated[AppContext, Depends(get_context)]


_READ_METHODS = frozenset({"GET", "HEAD"})


async def get_session(connection: HTTPConnection) -> AsyncIterator[AsyncSession]:
    # The context comes from the app, not from ContextDep: FastAPI re-walks a dependency's own
    # dependencies at every place it is used, and this one is used on every route.
    context: AppContext = connection.app.state.context
    # A GET only reads, and under READ COMMITTED (PostgreSQL's default) every statement sees
    # its own snapshot with or without a transaction around it; without one, a read costs one
    # round trip instead of BEGIN, SELECT, COMMIT. Everything else runs in one transaction.
    read_only = connection.scope.get("method") in _READ_METHODS
    sessionmaker = context.read_sessionmaker if read_only else context.sessionmaker
    async for session in session_scope(sessionmaker, on_commit=context.announce_changes):
        yield session


# scope="function": the transaction commits before the response is sent, so a client
# never sees success for a write that then fails to commit.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


# PostgreSQL text cannot hold NUL: a NUL in a value that reaches a query would fail there (500).
# Parameters and names that reach the database use this pattern, so such input is a 422.
NO_NUL = r"^[^\x00]*$"


class PageParams(BaseModel):
    cursor: str | None = None
    limit: int = 50


async def get_page_params(
    cursor: Annotated[
        str | None,
        Query(max_length=64, pattern=NO_NUL, description="`next_cursor` from the previous page"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> PageParams:
    return PageParams(cursor=cursor, limit=limit)


PageDep = Annotated[PageParams, Depends(get_page_params)]
