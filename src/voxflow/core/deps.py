"""Typed FastAPI dependencies shared by every domain's routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Query, Request
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from voxflow.core.context import AppContext
from voxflow.core.db import session_scope


def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


ContextDep = Annotated[AppContext, Depends(get_context)]


async def get_session(context: ContextDep) -> AsyncIterator[AsyncSession]:
    async for session in session_scope(context.sessionmaker):
        yield session


# scope="function": the transaction commits before the response is sent, so a client
# never sees success for a write that then fails to commit.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


class PageParams(BaseModel):
    cursor: str | None = None
    limit: int = 50


def get_page_params(
    cursor: Annotated[
        str | None, Query(max_length=64, description="`next_cursor` from the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> PageParams:
    return PageParams(cursor=cursor, limit=limit)


PageDep = Annotated[PageParams, Depends(get_page_params)]
