"""Audit events of one org, newest first."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from voxflow.audit.models import AuditEvent


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list(
        self,
        org_id: str,
        *,
        before: str | None,
        limit: int,
        action: str | None = None,
        target_id: str | None = None,
    ) -> Sequence[AuditEvent]:
        query = select(AuditEvent).where(AuditEvent.org_id == org_id)
        if before:
            query = query.where(AuditEvent.id < before)
        if action:
            # "secret" matches every secret.* action; "secret.read" only that one.
            query = query.where(
                AuditEvent.action == action
                if "." in action
                else AuditEvent.action.startswith(f"{action}.", autoescape=True)
            )
        if target_id:
            query = query.where(AuditEvent.target_id == target_id)
        result = await self.session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit))
        return result.all()
