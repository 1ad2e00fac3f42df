from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status

from voxflow.core.deps import NO_NUL, ContextDep, PageDep, SessionDep
from voxflow.core.errors import BadRequest, InvalidInput, ProblemItem, problem_responses
from voxflow.core.pagination import Page, build_page
from voxflow.core.routing import ApiRoute
from voxflow.dsl import DocumentInvalid, WorkflowDocument, load_document
from voxflow.integrations.checks import org_checks
from voxflow.orgs.auth import AdminDep, MemberDep
from voxflow.tools.configured import configured_tools
from voxflow.workflows import service
from voxflow.workflows.draft_view import read_draft_view
from voxflow.workflows.models import Workflow, WorkflowVersion
from voxflow.workflows.repository import WorkflowRepository
from voxflow.workflows.schemas import (
    ValidationReport,
    VersionDiff,
    VersionOut,
    VersionSummary,
    WorkflowOut,
    WorkflowSaved,
    WorkflowSummary,
)

router = APIRouter(prefix="/v1/workflows", tags=["workflows"], route_class=ApiRoute)

WorkflowID = Annotated[str, Path(max_length=64, pattern=NO_NUL, description="Workflow id (`wf_…`)")]
MAX_VERSION = 2**31 - 1  # the version-number column is a 32-bit integer
VersionNumber = Annotated[int, Path(ge=1, le=MAX_VERSION, description="Version number")]
IfMatch = Annotated[str | None, Header(max_length=200, description="ETag of the draft you edited")]
DOCUMENT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A `voxflow/v1` workflow document, as JSON or YAML",
        "content": {
            media: {"schema": {"$ref": "#/components/schemas/WorkflowDocument"}}
            for media in ("application/json", "application/yaml", "text/yaml")
        },
    }
}
READ_ERRORS = problem_responses(401, 403, 404, 429)
WRITE_ERRORS = problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 429)


async def document_body(request: Request) -> WorkflowDocument:
    media_type = request.headers.get("content-type", "application/json")
    try:
        return load_document(await request.body(), media_type)
    except DocumentInvalid as exc:
        items = [ProblemItem(detail=f.message, pointer=f.pointer) for f in exc.findings]
        if any(f.code == "syntax" for f in exc.findings):
            raise BadRequest("The body is not valid JSON or YAML.", errors=items) from None
        raise InvalidInput("The workflow document is invalid.", errors=items) from None


DocumentDep = Annotated[WorkflowDocument, Depends(document_body)]


def _summary(workflow: Workflow) -> dict[str, Any]:
    return {
        "id": workflow.id,
        "name": workflow.name,
        "revision": workflow.revision,
        "latest_version": workflow.latest_version,
        "created_at": workflow.created_at,
        "updated_at": workflow.updated_at,
        "archived": workflow.archived_at is not None,
    }


def _saved(workflow: Workflow, findings: list[Any], response: Response) -> WorkflowSaved:
    response.headers["ETag"] = service.etag_for(workflow.revision)
    return WorkflowSaved(
        **_summary(workflow), draft=service.draft_document(workflow), findings=findings
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=WorkflowSaved,
    response_model_exclude_none=True,
    responses=WRITE_ERRORS,
    openapi_extra=DOCUMENT_BODY,
)
async def create_workflow(
    document: DocumentDep, auth: MemberDep, session: SessionDep, response: Response
) -> WorkflowSaved:
    """Create a workflow from a document (JSON or YAML); it becomes the draft."""
    workflow, findings = await service.create_workflow(session, auth, document)
    response.headers["Location"] = f"/v1/workflows/{workflow.id}"
    return _saved(workflow, findings, response)


@router.get("", response_model=Page[WorkflowSummary], responses=READ_ERRORS)
async def list_workflows(
    auth: MemberDep,
    session: SessionDep,
    page: PageDep,
    q: Annotated[
        str | None,
        Query(max_length=200, pattern=NO_NUL, description="Name contains (any case)"),
    ] = None,
) -> Page[WorkflowSummary]:
    rows = await WorkflowRepository(session).list(
        auth.org_id, name_contains=q, after=page.cursor, limit=page.limit + 1
    )
    return build_page(rows, page.limit, lambda w: WorkflowSummary(**_summary(w)), lambda w: w.id)


@router.get(
    "/{workflow_id}",
    response_model=WorkflowOut,
    responses=READ_ERRORS,
    response_description="The workflow with its draft; the ETag header identifies the draft",
)
async def get_workflow(workflow_id: WorkflowID, auth: MemberDep, context: ContextDep) -> Response:
    view = await read_draft_view(context, auth, workflow_id)
    return Response(view.body, media_type="application/json", headers={"ETag": view.etag})


@router.put(
    "/{workflow_id}",
    response_model=WorkflowSaved,
    response_model_exclude_none=True,
    responses=problem_responses(400, 401, 403, 404, 409, 412, 413, 415, 422, 428, 429),
    openapi_extra=DOCUMENT_BODY,
)
async def update_workflow(
    workflow_id: WorkflowID,
    document: DocumentDep,
    auth: MemberDep,
    session: SessionDep,
    response: Response,
    if_match: IfMatch = None,
) -> WorkflowSaved:
    """Replace the draft. Requires `If-Match` with the ETag you read (428 without, 412 if stale)."""
    workflow, findings = await service.update_draft(session, auth, workflow_id, document, if_match)
    return _saved(workflow, findings, response)


@router.delete("/{workflow_id}", status_code=status.HTTP_204_NO_CONTENT, responses=READ_ERRORS)
async def archive_workflow(workflow_id: WorkflowID, auth: AdminDep, session: SessionDep) -> None:
    """Archive: hidden from lists; versions are kept and agents using it keep working."""
    await service.archive(session, auth, workflow_id)


@router.post("/{workflow_id}/validate", response_model=ValidationReport, responses=READ_ERRORS)
async def validate_workflow(
    workflow_id: WorkflowID, auth: MemberDep, session: SessionDep, context: ContextDep
) -> ValidationReport:
    """Check the draft and return every finding, each with a JSON pointer."""
    findings = await service.validate(
        session, auth, workflow_id, configured_tools(context), org_checks(context, auth.org_id)
    )
    return ValidationReport(valid=all(f.severity != "error" for f in findings), findings=findings)


def _version_out(version: WorkflowVersion) -> VersionOut:
    return VersionOut(
        workflow_id=version.workflow_id,
        number=version.number,
        sha256=version.sha256,
        created_at=version.created_at,
        created_by=version.created_by,
        document=WorkflowDocument.model_validate_json(version.document),
    )


@router.post(
    "/{workflow_id}/publish",
    status_code=status.HTTP_201_CREATED,
    response_model=VersionSummary,
    responses=problem_responses(401, 403, 404, 409, 422, 429),
)
async def publish_workflow(
    workflow_id: WorkflowID,
    auth: AdminDep,
    session: SessionDep,
    context: ContextDep,
    response: Response,
) -> VersionSummary:
    """Publish the draft as the next immutable version (409 when nothing changed)."""
    version = await service.publish(
        session, auth, workflow_id, configured_tools(context), org_checks(context, auth.org_id)
    )
    response.headers["Location"] = f"/v1/workflows/{workflow_id}/versions/{version.number}"
    return VersionSummary.model_validate(version)


@router.get(
    "/{workflow_id}/versions",
    response_model=Page[VersionSummary],
    responses=problem_responses(400, 401, 403, 404, 429),
)
async def list_versions(
    workflow_id: WorkflowID, auth: MemberDep, session: SessionDep, page: PageDep
) -> Page[VersionSummary]:
    after = _version_cursor(page.cursor)
    rows = await service.list_versions(
        session, auth, workflow_id, after=after, limit=page.limit + 1
    )
    return build_page(rows, page.limit, VersionSummary.model_validate, lambda v: str(v.number))


def _version_cursor(cursor: str | None) -> int | None:
    # Empty means "from the start", as in every other list.
    if not cursor:
        return None
    # str.isdigit() also holds for superscripts and non-ASCII digits, which int() refuses or reads
    # as other numbers; a cursor this list hands out is ASCII digits within the column's range.
    if not (cursor.isascii() and cursor.isdigit()) or int(cursor) > MAX_VERSION:
        raise BadRequest(
            "Invalid cursor.",
            errors=[ProblemItem(detail="not a cursor from this list", parameter="cursor")],
        )
    return int(cursor)


@router.get(
    "/{workflow_id}/versions/{number}",
    response_model=VersionOut,
    response_model_exclude_none=True,
    responses=READ_ERRORS,
)
async def get_version(
    workflow_id: WorkflowID,
    number: VersionNumber,
    auth: MemberDep,
    session: SessionDep,
    response: Response,
) -> VersionOut:
    version = await service.get_version(session, auth, workflow_id, number)
    # Versions never change, so a client may keep this forever.
    response.headers["ETag"] = f'"{version.sha256}"'
    response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    return _version_out(version)


@router.get(
    "/{workflow_id}/versions/{old}/diff/{new}", response_model=VersionDiff, responses=READ_ERRORS
)
async def diff_versions(
    workflow_id: WorkflowID,
    old: VersionNumber,
    new: VersionNumber,
    auth: MemberDep,
    session: SessionDep,
) -> VersionDiff:
    """What changed from version `old` to version `new`: nodes added, removed and changed."""
    changes = await service.diff(session, auth, workflow_id, old, new)
    return VersionDiff(workflow_id=workflow_id, from_version=old, to_version=new, changes=changes)


@router.post(
    "/{workflow_id}/versions/{number}/restore",
    response_model=WorkflowOut,
    response_model_exclude_none=True,
    responses=problem_responses(401, 403, 404, 409, 412, 429),
)
async def restore_version(
    workflow_id: WorkflowID,
    number: VersionNumber,
    auth: MemberDep,
    session: SessionDep,
    response: Response,
    if_match: IfMatch = None,
) -> WorkflowOut:
    """Copy a version into the draft (creates no version; publish to make it live)."""
    workflow = await service.restore(session, auth, workflow_id, number, if_match)
    response.headers["ETag"] = service.etag_for(workflow.revision)
    return WorkflowOut(**_summary(workflow), draft=service.draft_document(workflow))
