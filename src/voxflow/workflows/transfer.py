"""Export and import of workflows with every version: a JSON file that round-trips exactly."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from voxflow.core.errors import Conflict
from voxflow.core.ids import new_id
from voxflow.dsl import WorkflowDocument, document_sha256, dump_canonical
from voxflow.orgs.models import Organization
from voxflow.orgs.repository import OrgRepository
from voxflow.workflows.models import Workflow, WorkflowVersion
from voxflow.workflows.repository import WorkflowRepository


class ExportedVersion(BaseModel):
    number: int
    sha256: str
    created_at: datetime
    created_by: str | None
    document: dict[str, Any]


class ExportedWorkflow(BaseModel):
    id: str
    name: str
    revision: int
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None
    draft: dict[str, Any]
    versions: list[ExportedVersion]


class ExportedOrg(BaseModel):
    id: str
    name: str
    created_at: datetime
    workflows: list[ExportedWorkflow]


class ExportFile(BaseModel):
    format: Literal["voxflow-export/v1"] = "voxflow-export/v1"
    orgs: list[ExportedOrg]


def _document(canonical: str) -> dict[str, Any]:
    # Through the model, so an export never carries a document this version cannot read.
    return WorkflowDocument.model_validate_json(canonical).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )


async def export_orgs(session: AsyncSession, org_id: str | None) -> ExportFile:
    repo, workflows = OrgRepository(session), WorkflowRepository(session)
    if org_id is not None:
        org = await repo.get_org(org_id)
        orgs = [org] if org is not None else []
    else:
        orgs = list(await repo.list_orgs())
    exported = []
    for org in orgs:
        items = []
        for wf in await workflows.all_workflows(org.id):
            versions = [
                ExportedVersion(
                    number=v.number,
                    sha256=v.sha256,
                    created_at=v.created_at,
                    created_by=v.created_by,
                    document=_document(v.document),
                )
                for v in await workflows.all_versions(org.id, wf.id)
            ]
            items.append(
                ExportedWorkflow(
                    id=wf.id,
                    name=wf.name,
                    revision=wf.revision,
                    created_at=wf.created_at,
                    updated_at=wf.updated_at,
                    archived_at=wf.archived_at,
                    draft=_document(wf.draft),
                    versions=versions,
                )
            )
        exported.append(
            ExportedOrg(id=org.id, name=org.name, created_at=org.created_at, workflows=items)
        )
    return ExportFile(orgs=exported)


def _canonical(document: dict[str, Any]) -> str:
    return dump_canonical(WorkflowDocument.model_validate(document))


async def import_orgs(session: AsyncSession, data: ExportFile) -> tuple[int, int]:
    """Create what is missing; a workflow already present must match, or nothing is imported."""
    imported_workflows = imported_versions = 0
    for org in data.orgs:
        if await OrgRepository(session).get_org(org.id) is None:
            session.add(Organization(id=org.id, name=org.name, created_at=org.created_at))
            await session.flush()
        for wf in org.workflows:
            existing = await session.get(Workflow, wf.id)
            if existing is not None:
                if existing.org_id != org.id or existing.latest_version != len(wf.versions):
                    raise Conflict(f"Workflow {wf.id} already exists with other content.")
                continue
            draft = _canonical(wf.draft)
            session.add(
                Workflow(
                    id=wf.id,
                    org_id=org.id,
                    name=wf.name,
                    draft=draft,
                    draft_sha256=document_sha256(draft),
                    revision=wf.revision,
                    latest_version=len(wf.versions),
                    created_at=wf.created_at,
                    updated_at=wf.updated_at,
                    archived_at=wf.archived_at,
                )
            )
            await session.flush()
            imported_workflows += 1
            for expected, version in enumerate(wf.versions, start=1):
                document = _canonical(version.document)
                if version.number != expected or document_sha256(document) != version.sha256:
                    raise Conflict(
                        f"Workflow {wf.id} version {version.number} is damaged in the file."
                    )
                session.add(
                    WorkflowVersion(
                        id=new_id("ver"),
                        org_id=org.id,
                        workflow_id=wf.id,
                        number=version.number,
                        document=document,
                        sha256=version.sha256,
                        created_at=version.created_at,
                        created_by=version.created_by,
                    )
                )
                imported_versions += 1
    await session.flush()
    return imported_workflows, imported_versions
