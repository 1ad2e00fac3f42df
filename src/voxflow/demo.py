"""Demo content for the first `make run`: an org, an owner, a key and Luigi's agent."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from voxflow.agents import service as agents
from voxflow.agents.schemas import AgentCreate
from voxflow.dsl import load_document
from voxflow.orgs import service as orgs
from voxflow.orgs.auth import AuthSubject
from voxflow.orgs.models import Role
from voxflow.orgs.repository import OrgRepository
from voxflow.orgs.tokens import generate_password
from voxflow.workflows import service as workflows

DEMO_ORG = "demo"
DEMO_EMAIL = "owner@demo.example.com"


@dataclass(frozen=True)
class DemoCreated:
    org_id: str
    email: str
    password: str
    api_key: str
    agent_id: str
    workflow_id: str


async def load_demo(session: AsyncSession, example_yaml: bytes) -> DemoCreated | None:
    """Create the demo once; return None (and change nothing) when it already exists."""
    if await OrgRepository(session).find_org_by_name(DEMO_ORG) is not None:
        return None
    new = await orgs.create_org(session, DEMO_ORG)
    password = generate_password()
    await orgs.create_user(session, DEMO_EMAIL, password, org_id=new.org.id, role=Role.owner)
    auth = AuthSubject(new.org.id, Role.owner, api_key_id=new.api_key.record.id)
    document = load_document(example_yaml, "application/yaml")
    workflow, _ = await workflows.create_workflow(session, auth, document)
    await workflows.publish(session, auth, workflow.id, None)  # Luigi's calls no tools
    agent = await agents.create_agent(
        session, auth, AgentCreate(name="luigis", workflow_id=workflow.id, version="latest")
    )
    return DemoCreated(
        org_id=new.org.id,
        email=DEMO_EMAIL,
        password=password,
        api_key=new.api_key.key,
        agent_id=agent.id,
        workflow_id=workflow.id,
    )
