"""session_scope: one transaction per unit of work; recorded changes announced after commit."""

from __future__ import annotations

from contextlib import asynccontextmanager

import pytest
from sqlalchemy import text

from voxflow.core.context import AppContext
from voxflow.core.db import Change, record_change, session_scope

# As FastAPI runs it for SessionDep: an error in the request is thrown into the generator.
unit_of_work = asynccontextmanager(session_scope)


class Announcements:
    def __init__(self) -> None:
        self.received: list[set[Change]] = []

    async def __call__(self, changes: set[Change]) -> None:
        self.received.append(changes)


async def test_changes_are_announced_once_the_commit_succeeded(context: AppContext) -> None:
    announced = Announcements()

    async with unit_of_work(context.sessionmaker, on_commit=announced) as session:
        await session.execute(text("SELECT 1"))
        record_change(session, "workflow", "wf_1")
        record_change(session, "workflow", "wf_1")
        record_change(session, "api_key", "abc")
        assert announced.received == []  # not before the commit

    assert announced.received == [{("workflow", "wf_1"), ("api_key", "abc")}]


async def test_a_rolled_back_unit_of_work_announces_nothing(context: AppContext) -> None:
    announced = Announcements()

    async def failing_request() -> None:
        async with unit_of_work(context.sessionmaker, on_commit=announced) as session:
            record_change(session, "workflow", "wf_1")
            raise RuntimeError("the request failed")

    with pytest.raises(RuntimeError):
        await failing_request()

    assert announced.received == []


async def test_a_unit_of_work_without_changes_announces_nothing(context: AppContext) -> None:
    announced = Announcements()

    async with unit_of_work(context.sessionmaker, on_commit=announced) as session:
        await session.execute(text("SELECT 1"))

    assert announced.received == []
