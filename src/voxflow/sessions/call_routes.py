"""Call records: list, read one, turn one into a scenario test."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import FileResponse

from voxflow.core.deps import NO_NUL, ContextDep, PageDep, SessionDep
from voxflow.core.errors import NotFound, problem_responses
from voxflow.core.pagination import Page, build_page
from voxflow.core.routing import ApiRoute
from voxflow.orgs.auth import MemberDep
from voxflow.sessions import records
from voxflow.sessions.repository import CallRepository
from voxflow.sessions.schemas import CallOut, CallSummary
from voxflow.voice.retention import recording_of
from voxflow.workflows.repository import WorkflowRepository

router = APIRouter(prefix="/v1/calls", tags=["calls"], route_class=ApiRoute)
CallID = Annotated[str, Path(max_length=64, pattern=NO_NUL, description="Call id (`call_…`)")]
READ_ERRORS = problem_responses(401, 403, 404, 429)


@router.get("", response_model=Page[CallSummary], responses=READ_ERRORS)
async def list_calls(
    auth: MemberDep,
    session: SessionDep,
    page: PageDep,
    agent_id: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    outcome: Annotated[
        Literal["completed", "transferred", "failed", "timeout", "abandoned", "active"] | None,
        Query(description="An outcome, or `active` for calls still running"),
    ] = None,
    started_after: Annotated[datetime | None, Query(description="ISO 8601, inclusive")] = None,
    started_before: Annotated[datetime | None, Query(description="ISO 8601, exclusive")] = None,
) -> Page[CallSummary]:
    """Newest first."""
    rows = await CallRepository(session).list(
        auth.org_id,
        agent_id=agent_id,
        version=version,
        outcome=outcome,
        started_after=started_after,
        started_before=started_before,
        after=page.cursor,
        limit=page.limit + 1,
    )
    return build_page(rows, page.limit, records.summary, lambda call: call.id)


@router.get("/{call_id}", response_model=CallOut, responses=READ_ERRORS)
async def get_call(call_id: CallID, auth: MemberDep, session: SessionDep) -> CallOut:
    """The transcript, the path through the graph, the variables, the outcome, the timings."""
    repo = CallRepository(session)
    call = await repo.get(auth.org_id, call_id)
    if call is None:
        raise NotFound(f"No call {call_id}.")
    return records.record(call, list(await repo.turns(auth.org_id, call_id)))


@router.post(
    "/{call_id}/scenario",
    responses={
        **READ_ERRORS,
        200: {"content": {"application/yaml": {}}, "description": "A scenario file"},
    },
    response_class=Response,
)
async def call_scenario(call_id: CallID, auth: MemberDep, session: SessionDep) -> Response:
    """A `voxflow test` scenario replaying this call (tool results stubbed from the record)."""
    repo = CallRepository(session)
    call = await repo.get(auth.org_id, call_id)
    if call is None:
        raise NotFound(f"No call {call_id}.")
    version = await WorkflowRepository(session).get_version(
        auth.org_id, call.workflow_id, call.version_number
    )
    if version is None:
        raise NotFound(f"The version call {call_id} ran no longer exists.")
    text = records.scenario_yaml(
        call, list(await repo.turns(auth.org_id, call_id)), json.loads(version.document)
    )
    return Response(
        text,
        media_type="application/yaml",
        headers={"Content-Disposition": f'attachment; filename="{call_id}.scenario.yaml"'},
    )


@router.get(
    "/{call_id}/recording",
    responses={
        **READ_ERRORS,
        200: {"content": {"audio/wav": {}}, "description": "Stereo WAV: caller left, agent right"},
    },
    response_class=FileResponse,
)
async def call_recording(call_id: CallID, auth: MemberDep, context: ContextDep) -> FileResponse:
    """The call's recording (agents with `record: true`), until the retention deletes it."""
    path = await recording_of(context, auth.org_id, call_id)
    return FileResponse(path, media_type="audio/wav", filename=f"{call_id}.wav")
