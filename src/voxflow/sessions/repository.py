"""Call and turn queries, always filtered by org id."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from voxflow.sessions.models import Call, CallTurn


class CallRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, org_id: str, call_id: str) -> Call | None:
        result = await self.session.execute(
            select(Call).where(Call.org_id == org_id, Call.id == call_id)
        )
        return result.scalar_one_or_none()

    async def get_by_stream_token(self, call_id: str, token_hash: str) -> Call | None:
        result = await self.session.execute(
            select(Call).where(Call.id == call_id, Call.stream_token_hash == token_hash)
        )
        return result.scalar_one_or_none()

    async def list(
        self,
        org_id: str,
        *,
        agent_id: str | None,
        version: int | None,
        outcome: str | None,
        started_after: datetime | None,
        started_before: datetime | None,
        after: str | None,
        limit: int,
    ) -> Sequence[Call]:
        query = select(Call).where(Call.org_id == org_id)
        if agent_id is not None:
            query = query.where(Call.agent_id == agent_id)
        if version is not None:
            query = query.where(Call.version_number == version)
        if outcome == "active":
            query = query.where(Call.outcome.is_(None))
        elif outcome is not None:
            query = query.where(Call.outcome == outcome)
        if started_after is not None:
            query = query.where(Call.started_at >= started_after)
        if started_before is not None:
            query = query.where(Call.started_at < started_before)
        if after is not None:
            query = query.where(Call.id < after)
        # Newest first: ids sort by creation time.
        result = await self.session.execute(query.order_by(Call.id.desc()).limit(limit))
        return result.scalars().all()

    async def turns(self, org_id: str, call_id: str) -> Sequence[CallTurn]:
        result = await self.session.execute(
            select(CallTurn)
            .where(CallTurn.org_id == org_id, CallTurn.call_id == call_id)
            .order_by(CallTurn.seq)
        )
        return result.scalars().all()

    async def save_progress(
        self,
        call: Call,
        *,
        expected_turns: int,
        state: str,
        outcome: str | None,
        now: datetime,
    ) -> bool:
        """Store the state after a turn unless another turn was stored first (compare-and-set)."""
        values: dict[str, object] = {
            "state": state,
            "turn_count": expected_turns + 1,
            "updated_at": now,
            "outcome": outcome,
        }
        if outcome is not None:
            values["ended_at"] = now
            values["stream_token_hash"] = None
        result = await self.session.execute(
            update(Call)
            .where(
                Call.org_id == call.org_id,
                Call.id == call.id,
                Call.turn_count == expected_turns,
                Call.outcome.is_(None),
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)
