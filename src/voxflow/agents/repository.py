"""Agent queries, always filtered by org id; deleted agents are invisible."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from voxflow.agents.models import Agent


class AgentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, org_id: str, agent_id: str) -> Agent | None:
        result = await self.session.execute(
            select(Agent).where(
                Agent.org_id == org_id, Agent.id == agent_id, Agent.deleted_at.is_(None)
            )
        )
        return result.scalar_one_or_none()

    async def get_by_name(self, org_id: str, name: str) -> Agent | None:
        result = await self.session.execute(
            select(Agent).where(
                Agent.org_id == org_id, Agent.name == name, Agent.deleted_at.is_(None)
            )
        )
        return result.scalar_one_or_none()

    async def list(self, org_id: str, *, after: str | None, limit: int) -> Sequence[Agent]:
        query = select(Agent).where(Agent.org_id == org_id, Agent.deleted_at.is_(None))
        if after:
            query = query.where(Agent.id > after)
        result = await self.session.execute(query.order_by(Agent.id).limit(limit))
        return result.scalars().all()
