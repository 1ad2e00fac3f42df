"""Workflow and version queries, always filtered by org id."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Row, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from voxflow.workflows.models import Workflow, WorkflowVersion

_workflows = Workflow.__table__
# Reading one workflow is the API's hot path. The query is built once, from table columns with
# bound parameters: building a statement and running the ORM's compile step cost more than the
# query itself, and the route needs plain columns, not an ORM object.
_DRAFT_VIEW = select(
    _workflows.c.id,
    _workflows.c.name,
    _workflows.c.revision,
    _workflows.c.latest_version,
    _workflows.c.created_at,
    _workflows.c.updated_at,
    _workflows.c.archived_at,
    _workflows.c.draft,
).where(_workflows.c.org_id == bindparam("org_id"), _workflows.c.id == bindparam("workflow_id"))


DraftView = Row[str, str, int, int, datetime, datetime, datetime | None, str]


class WorkflowRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, org_id: str, workflow_id: str) -> Workflow | None:
        result = await self.session.execute(
            select(Workflow).where(Workflow.org_id == org_id, Workflow.id == workflow_id)
        )
        return result.scalar_one_or_none()

    async def get_draft_view(self, org_id: str, workflow_id: str) -> DraftView | None:
        """The columns a read returns, without building an ORM object: reads are the hot path."""
        result = await self.session.execute(
            _DRAFT_VIEW, {"org_id": org_id, "workflow_id": workflow_id}
        )
        return result.first()

    async def list(
        self, org_id: str, *, name_contains: str | None, after: str | None, limit: int
    ) -> Sequence[Workflow]:
        query = select(Workflow).where(Workflow.org_id == org_id, Workflow.archived_at.is_(None))
        if name_contains:
            query = query.where(
                func.lower(Workflow.name).contains(name_contains.lower(), autoescape=True)
            )
        if after:
            query = query.where(Workflow.id > after)
        result = await self.session.execute(query.order_by(Workflow.id).limit(limit))
        return result.scalars().all()

    async def write_draft(
        self,
        org_id: str,
        workflow_id: str,
        *,
        expected_revision: int | None,
        draft: str,
        draft_sha256: str,
        name: str,
        updated_at: datetime,
    ) -> int | None:
        """Replace the draft and bump the revision; None when it is no longer `expected_revision`.

        One conditional UPDATE (compare-and-set), so two editors who read the same revision can
        never both write: the database lets only the first one match.
        """
        query = update(Workflow).where(Workflow.org_id == org_id, Workflow.id == workflow_id)
        if expected_revision is not None:
            query = query.where(Workflow.revision == expected_revision)
        result = await self.session.execute(
            query.values(
                draft=draft,
                draft_sha256=draft_sha256,
                name=name,
                revision=Workflow.revision + 1,
                updated_at=updated_at,
            )
            .returning(Workflow.revision)
            .execution_options(synchronize_session=False)
        )
        return result.scalar_one_or_none()

    async def current_revision(self, org_id: str, workflow_id: str) -> int | None:
        result = await self.session.execute(
            select(Workflow.revision).where(Workflow.org_id == org_id, Workflow.id == workflow_id)
        )
        return result.scalar_one_or_none()

    async def claim_next_version(self, org_id: str, workflow_id: str, current: int) -> bool:
        """Move latest_version from `current` to `current + 1` unless someone else did first."""
        result = await self.session.execute(
            update(Workflow)
            .where(
                Workflow.org_id == org_id,
                Workflow.id == workflow_id,
                Workflow.latest_version == current,
            )
            .values(latest_version=current + 1)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def get_version(
        self, org_id: str, workflow_id: str, number: int
    ) -> WorkflowVersion | None:
        result = await self.session.execute(
            select(WorkflowVersion).where(
                WorkflowVersion.org_id == org_id,
                WorkflowVersion.workflow_id == workflow_id,
                WorkflowVersion.number == number,
            )
        )
        return result.scalar_one_or_none()

    async def latest_version_sha(self, org_id: str, workflow_id: str, number: int) -> str | None:
        result = await self.session.execute(
            select(WorkflowVersion.sha256).where(
                WorkflowVersion.org_id == org_id,
                WorkflowVersion.workflow_id == workflow_id,
                WorkflowVersion.number == number,
            )
        )
        return result.scalar_one_or_none()

    async def list_versions(
        self, org_id: str, workflow_id: str, *, after: int | None, limit: int
    ) -> Sequence[WorkflowVersion]:
        query = select(WorkflowVersion).where(
            WorkflowVersion.org_id == org_id, WorkflowVersion.workflow_id == workflow_id
        )
        if after is not None:
            query = query.where(WorkflowVersion.number > after)
        result = await self.session.execute(query.order_by(WorkflowVersion.number).limit(limit))
        return result.scalars().all()

    async def all_versions(self, org_id: str, workflow_id: str) -> Sequence[WorkflowVersion]:
        result = await self.session.execute(
            select(WorkflowVersion)
            .where(WorkflowVersion.org_id == org_id, WorkflowVersion.workflow_id == workflow_id)
            .order_by(WorkflowVersion.number)
        )
        return result.scalars().all()

    async def all_workflows(self, org_id: str) -> Sequence[Workflow]:
        result = await self.session.execute(
            select(Workflow).where(Workflow.org_id == org_id).order_by(Workflow.id)
        )
        return result.scalars().all()
