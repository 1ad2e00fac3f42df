from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from voxflow.agents import service
from voxflow.agents.repository import AgentRepository
from voxflow.agents.schemas import AgentCreate, AgentOut, AgentUpdate
from voxflow.core.deps import NO_NUL, PageDep, SessionDep
from voxflow.core.errors import problem_responses
from voxflow.core.pagination import Page, build_page
from voxflow.core.routing import ApiRoute
from voxflow.orgs.auth import AdminDep, MemberDep

router = APIRouter(prefix="/v1/agents", tags=["agents"], route_class=ApiRoute)
AgentID = Annotated[str, Path(max_length=64, pattern=NO_NUL, description="Agent id (`agt_…`)")]
READ_ERRORS = problem_responses(401, 403, 404, 429)
WRITE_ERRORS = problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 429)


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=AgentOut, responses=WRITE_ERRORS
)
async def create_agent(body: AgentCreate, auth: AdminDep, session: SessionDep) -> AgentOut:
    """Deploy a workflow: pin a version (or follow `latest`), optionally with a canary."""
    return service.to_out(await service.create_agent(session, auth, body))


@router.get("", response_model=Page[AgentOut], responses=READ_ERRORS)
async def list_agents(auth: MemberDep, session: SessionDep, page: PageDep) -> Page[AgentOut]:
    rows = await AgentRepository(session).list(auth.org_id, after=page.cursor, limit=page.limit + 1)
    return build_page(rows, page.limit, service.to_out, lambda a: a.id)


@router.get("/{agent_id}", response_model=AgentOut, responses=READ_ERRORS)
async def get_agent(agent_id: AgentID, auth: MemberDep, session: SessionDep) -> AgentOut:
    return service.to_out(await service.get_agent(session, auth, agent_id))


@router.patch("/{agent_id}", response_model=AgentOut, responses=WRITE_ERRORS)
async def update_agent(
    agent_id: AgentID, body: AgentUpdate, auth: AdminDep, session: SessionDep
) -> AgentOut:
    """Change only the fields sent; roll back by setting `version` to an older number."""
    return service.to_out(await service.update_agent(session, auth, agent_id, body))


@router.delete("/{agent_id}", status_code=status.HTTP_204_NO_CONTENT, responses=READ_ERRORS)
async def delete_agent(agent_id: AgentID, auth: AdminDep, session: SessionDep) -> None:
    await service.delete_agent(session, auth, agent_id)
