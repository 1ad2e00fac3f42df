"""Rules for drafts and versions: optimistic concurrency, publish, diff, restore."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from voxflow.core.db import record_change, utcnow
from voxflow.core.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    ProblemItem,
)
from voxflow.core.ids import new_id
from voxflow.dsl import (
    Change,
    Finding,
    WorkflowDocument,
    check_structure,
    diff_documents,
    document_sha256,
    dump_canonical,
)
from voxflow.dsl.lint import ToolCatalog, lint
from voxflow.orgs.auth import AuthSubject
from voxflow.workflows.models import Workflow, WorkflowVersion
from voxflow.workflows.repository import WorkflowRepository

# Changes to a workflow row (draft, name, archive, latest version) are recorded under this
# topic, so the cached read views of it drop in every process once the change commits.
WORKFLOW_TOPIC = "workflow"


def etag_for(revision: int) -> str:
    return f'"{revision}"'


def check_if_match(if_match: str | None, workflow: Workflow) -> bool:
    """Refuse a write unless the client proves it saw the current draft (RFC 9110 If-Match).

    True when the client named the revision it read (not `*`): the write must then still find
    that revision when it happens.
    """
    current = etag_for(workflow.revision)
    if if_match is None:
        raise PreconditionRequired(
            "Send If-Match with the ETag from your last GET, so edits never silently overwrite.",
            errors=[ProblemItem(detail="required", parameter="If-Match")],
        )
    tags = [tag.strip() for tag in if_match.split(",")]
    if "*" in tags:
        return False
    if current in tags:
        return True
    raise _stale(workflow.revision)


def _stale(revision: int) -> PreconditionFailed:
    current = etag_for(revision)
    return PreconditionFailed(
        "The draft changed since you read it; GET it again and re-apply your edit.",
        headers={"ETag": current},
        current_etag=current,
    )


async def get_workflow(session: AsyncSession, auth: AuthSubject, workflow_id: str) -> Workflow:
    workflow = await WorkflowRepository(session).get(auth.org_id, workflow_id)
    if workflow is None:
        raise NotFound(f"No workflow {workflow_id}.")
    return workflow


def _refuse_archived(workflow: Workflow) -> None:
    if workflow.archived_at is not None:
        raise Conflict(f"Workflow {workflow.id} is archived; it can be read but not changed.")


def _check_storable(document: WorkflowDocument) -> None:
    # The name is also a column, and PostgreSQL text cannot hold NUL (the draft itself is JSON
    # text, where NUL is escaped). Refused on every backend alike.
    if "\x00" in document.name:
        detail = "The name must not contain NUL characters."
        raise InvalidInput(detail, errors=[ProblemItem(detail=detail, pointer="/name")])


async def create_workflow(
    session: AsyncSession, auth: AuthSubject, document: WorkflowDocument
) -> tuple[Workflow, list[Finding]]:
    _check_storable(document)
    canonical = dump_canonical(document)
    now = utcnow()
    workflow = Workflow(
        id=new_id("wf"),
        org_id=auth.org_id,
        name=document.name,
        draft=canonical,
        draft_sha256=document_sha256(canonical),
        revision=1,
        latest_version=0,
        created_at=now,
        updated_at=now,
    )
    session.add(workflow)
    await session.flush()
    return workflow, check_structure(document)


async def update_draft(
    session: AsyncSession,
    auth: AuthSubject,
    workflow_id: str,
    document: WorkflowDocument,
    if_match: str | None,
) -> tuple[Workflow, list[Finding]]:
    _check_storable(document)
    workflow = await get_workflow(session, auth, workflow_id)
    _refuse_archived(workflow)
    pinned = check_if_match(if_match, workflow)
    await _write_draft(session, workflow, dump_canonical(document), document.name, pinned=pinned)
    return workflow, check_structure(document)


async def _write_draft(
    session: AsyncSession, workflow: Workflow, canonical: str, name: str, *, pinned: bool
) -> None:
    """Store a new draft and bump the revision.

    `pinned`: If-Match named the revision read, so the write happens only if nobody saved in
    between; otherwise the client gets the 412 a stale If-Match gets.
    """
    repo = WorkflowRepository(session)
    sha, now = document_sha256(canonical), utcnow()
    record_change(session, WORKFLOW_TOPIC, workflow.id)
    revision = await repo.write_draft(
        workflow.org_id,
        workflow.id,
        expected_revision=workflow.revision if pinned else None,
        draft=canonical,
        draft_sha256=sha,
        name=name,
        updated_at=now,
    )
    if revision is None:
        current = await repo.current_revision(workflow.org_id, workflow.id)
        raise _stale(current if current is not None else workflow.revision)
    # Mirror the row into the loaded object without marking it dirty (no second UPDATE).
    stored = {"draft": canonical, "draft_sha256": sha, "name": name, "updated_at": now}
    for key, value in {**stored, "revision": revision}.items():
        set_committed_value(workflow, key, value)


async def archive(session: AsyncSession, auth: AuthSubject, workflow_id: str) -> None:
    workflow = await get_workflow(session, auth, workflow_id)
    if workflow.archived_at is None:
        record_change(session, WORKFLOW_TOPIC, workflow.id)
        workflow.archived_at = utcnow()
        await session.flush()


def draft_document(workflow: Workflow) -> WorkflowDocument:
    # Stored drafts were validated when saved, so reading them back skips validation.
    return WorkflowDocument.model_validate_json(workflow.draft)


# Checks that need more than the document: the org's connections (`voxflow.integrations`).
DocumentChecks = Callable[[WorkflowDocument], Awaitable[list[Finding]]]


async def _full_lint(
    document: WorkflowDocument, tools: ToolCatalog | None, checks: DocumentChecks | None
) -> list[Finding]:
    findings = lint(document, tools)
    if checks is not None:
        findings += await checks(document)
    return findings


async def validate(
    session: AsyncSession,
    auth: AuthSubject,
    workflow_id: str,
    tools: ToolCatalog | None,
    checks: DocumentChecks | None = None,
) -> list[Finding]:
    """Every finding of the full lint: errors block publishing, warnings do not."""
    workflow = await get_workflow(session, auth, workflow_id)
    return await _full_lint(draft_document(workflow), tools, checks)


async def publish(
    session: AsyncSession,
    auth: AuthSubject,
    workflow_id: str,
    tools: ToolCatalog | None,
    checks: DocumentChecks | None = None,
) -> WorkflowVersion:
    repo = WorkflowRepository(session)
    workflow = await get_workflow(session, auth, workflow_id)
    _refuse_archived(workflow)
    current = workflow.latest_version
    if (
        current
        and await repo.latest_version_sha(auth.org_id, workflow.id, current)
        == workflow.draft_sha256
    ):
        raise Conflict(f"Nothing to publish: the draft is identical to version {current}.")
    findings = await _full_lint(draft_document(workflow), tools, checks)
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        raise InvalidInput(
            "The draft has errors; fix them before publishing.",
            errors=[
                ProblemItem(detail=f"{f.code}: {f.message}", pointer=f.pointer) for f in errors
            ],
        )
    record_change(session, WORKFLOW_TOPIC, workflow.id)
    if not await repo.claim_next_version(auth.org_id, workflow.id, current):
        raise Conflict("Another publish of this workflow happened at the same time; try again.")
    version = WorkflowVersion(
        id=new_id("ver"),
        org_id=auth.org_id,
        workflow_id=workflow.id,
        number=current + 1,
        document=workflow.draft,
        sha256=workflow.draft_sha256,
        created_at=utcnow(),
        created_by=auth.actor,
    )
    session.add(version)
    await session.flush()
    # claim_next_version already stored it; only the loaded object needs to know.
    set_committed_value(workflow, "latest_version", current + 1)
    return version


async def get_version(
    session: AsyncSession, auth: AuthSubject, workflow_id: str, number: int
) -> WorkflowVersion:
    version = await WorkflowRepository(session).get_version(auth.org_id, workflow_id, number)
    if version is None:
        await get_workflow(session, auth, workflow_id)
        raise NotFound(f"Workflow {workflow_id} has no version {number}.")
    return version


async def list_versions(
    session: AsyncSession, auth: AuthSubject, workflow_id: str, *, after: int | None, limit: int
) -> Sequence[WorkflowVersion]:
    await get_workflow(session, auth, workflow_id)
    return await WorkflowRepository(session).list_versions(
        auth.org_id, workflow_id, after=after, limit=limit
    )


async def diff(
    session: AsyncSession, auth: AuthSubject, workflow_id: str, old: int, new: int
) -> list[Change]:
    before = await get_version(session, auth, workflow_id, old)
    after = await get_version(session, auth, workflow_id, new)
    return diff_documents(
        WorkflowDocument.model_validate_json(before.document),
        WorkflowDocument.model_validate_json(after.document),
    )


async def restore(
    session: AsyncSession,
    auth: AuthSubject,
    workflow_id: str,
    number: int,
    if_match: str | None,
) -> Workflow:
    """Copy a version into the draft. Creates no version; If-Match is honoured when sent."""
    version = await get_version(session, auth, workflow_id, number)
    workflow = await get_workflow(session, auth, workflow_id)
    _refuse_archived(workflow)
    pinned = if_match is not None and check_if_match(if_match, workflow)
    document = WorkflowDocument.model_validate_json(version.document)
    await _write_draft(session, workflow, version.document, document.name, pinned=pinned)
    return workflow
