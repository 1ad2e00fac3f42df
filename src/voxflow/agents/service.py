"""Rules for agents: what version they point at, canary shares, overrides."""

from __future__ import annotations

import hashlib
import json

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from voxflow.agents.models import Agent
from voxflow.agents.repository import AgentRepository
from voxflow.agents.schemas import (
    AgentCreate,
    AgentOut,
    AgentOverrides,
    AgentUpdate,
    Canary,
    VersionChoice,
)
from voxflow.core.db import record_change, utcnow
from voxflow.core.errors import Conflict, InvalidInput, NotFound, ProblemItem, json_pointer
from voxflow.core.ids import new_id
from voxflow.dsl import WorkflowSettings
from voxflow.orgs.auth import AuthSubject
from voxflow.workflows.models import Workflow
from voxflow.workflows.repository import WorkflowRepository

# Changes to an agent (pin, canary, overrides, deletion) are announced under this topic after
# commit, so processes that resolved the agent before resolve it again (`voxflow.runtime`).
AGENT_TOPIC = "agent"


def _invalid(pointer: str, detail: str) -> InvalidInput:
    return InvalidInput(detail, errors=[ProblemItem(detail=detail, pointer=pointer)])


async def _workflow_for(session: AsyncSession, auth: AuthSubject, workflow_id: str) -> Workflow:
    workflow = await WorkflowRepository(session).get(auth.org_id, workflow_id)
    if workflow is None:
        raise _invalid("/workflow_id", f"No workflow {workflow_id}.")
    return workflow


def _check_version(workflow: Workflow, version: VersionChoice, pointer: str) -> None:
    # Versions are numbered 1..latest_version without gaps, so a range check suffices.
    if version == "latest":
        if workflow.latest_version == 0:
            raise _invalid(
                pointer, f"Workflow {workflow.id} has no published version yet; publish it first."
            )
    elif not 1 <= version <= workflow.latest_version:
        raise _invalid(
            pointer,
            f"Workflow {workflow.id} has no version {version} (latest: {workflow.latest_version}).",
        )


def _check_overrides(overrides: AgentOverrides) -> None:
    try:
        WorkflowSettings.model_validate(overrides.settings)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise _invalid(
            json_pointer(["overrides", "settings", *first["loc"]]),
            f"Invalid setting: {first['msg']}",
        ) from None


async def _check_name_free(
    session: AsyncSession, auth: AuthSubject, name: str, agent_id: str | None = None
) -> None:
    existing = await AgentRepository(session).get_by_name(auth.org_id, name)
    if existing is not None and existing.id != agent_id:
        raise _name_taken(name)


def _name_taken(name: str) -> Conflict:
    return Conflict(f"An agent named {name!r} already exists.")


async def _flush(session: AsyncSession, agent: Agent) -> None:
    """Flush, turning a lost race for a name into the 409 the check above gives.

    Two requests can both find a name free and both write it; the unique index on live names
    lets only one through. (The agent row has no other constraint a request could break.)
    """
    name = agent.name  # read before: after a failed flush the object cannot be loaded
    record_change(session, AGENT_TOPIC, agent.id)
    try:
        await session.flush()
    except IntegrityError:
        raise _name_taken(name) from None


def _apply_canary(agent: Agent, canary: Canary | None) -> None:
    agent.canary_version = canary.version if canary else None
    agent.canary_percent = canary.percent if canary else None


async def create_agent(session: AsyncSession, auth: AuthSubject, data: AgentCreate) -> Agent:
    workflow = await _workflow_for(session, auth, data.workflow_id)
    if workflow.archived_at is not None:
        raise _invalid("/workflow_id", f"Workflow {workflow.id} is archived.")
    _check_version(workflow, data.version, "/version")
    if data.canary:
        _check_version(workflow, data.canary.version, "/canary/version")
    _check_overrides(data.overrides)
    await _check_name_free(session, auth, data.name)
    now = utcnow()
    agent = Agent(
        id=new_id("agt"),
        org_id=auth.org_id,
        name=data.name,
        workflow_id=workflow.id,
        pinned_version=None if data.version == "latest" else data.version,
        overrides=data.overrides.model_dump_json(),
        record=data.record,
        created_at=now,
        updated_at=now,
    )
    _apply_canary(agent, data.canary)
    session.add(agent)
    await _flush(session, agent)
    return agent


async def get_agent(session: AsyncSession, auth: AuthSubject, agent_id: str) -> Agent:
    agent = await AgentRepository(session).get(auth.org_id, agent_id)
    if agent is None:
        raise NotFound(f"No agent {agent_id}.")
    return agent


async def update_agent(
    session: AsyncSession, auth: AuthSubject, agent_id: str, data: AgentUpdate
) -> Agent:
    agent = await get_agent(session, auth, agent_id)
    sent = data.model_fields_set
    # The workflow may be archived since; it still exists, so its versions can be checked.
    workflow = await _workflow_for(session, auth, agent.workflow_id)
    if data.name is not None and data.name != agent.name:
        await _check_name_free(session, auth, data.name, agent.id)
        agent.name = data.name
    if data.version is not None:
        _check_version(workflow, data.version, "/version")
        agent.pinned_version = None if data.version == "latest" else data.version
    if "canary" in sent:
        if data.canary is not None:
            _check_version(workflow, data.canary.version, "/canary/version")
        _apply_canary(agent, data.canary)
    if data.overrides is not None:
        _check_overrides(data.overrides)
        agent.overrides = data.overrides.model_dump_json()
    if data.record is not None:
        agent.record = data.record
    agent.updated_at = utcnow()
    await _flush(session, agent)
    return agent


async def delete_agent(session: AsyncSession, auth: AuthSubject, agent_id: str) -> None:
    agent = await get_agent(session, auth, agent_id)
    agent.deleted_at = utcnow()
    record_change(session, AGENT_TOPIC, agent.id)
    await session.flush()


def to_out(agent: Agent) -> AgentOut:
    canary = None
    if agent.canary_version is not None and agent.canary_percent is not None:
        canary = Canary(version=agent.canary_version, percent=agent.canary_percent)
    return AgentOut(
        id=agent.id,
        name=agent.name,
        workflow_id=agent.workflow_id,
        version="latest" if agent.pinned_version is None else agent.pinned_version,
        canary=canary,
        overrides=AgentOverrides.model_validate(json.loads(agent.overrides)),
        record=agent.record,
        created_at=agent.created_at,
        updated_at=agent.updated_at,
    )


def canary_bucket(agent_id: str, session_key: str) -> float:
    """A stable number in [0, 100) per (agent, session key): the same caller always lands alike."""
    digest = hashlib.sha256(f"{agent_id}\x00{session_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


async def resolve_version(session: AsyncSession, agent: Agent, session_key: str) -> int:
    """The version a new session of this agent runs: canary share first, else pinned or latest."""
    canary, percent = agent.canary_version, agent.canary_percent
    if canary is not None and percent and canary_bucket(agent.id, session_key) < percent:
        return canary
    if agent.pinned_version is not None:
        return agent.pinned_version
    workflow = await session.get(Workflow, agent.workflow_id)
    if workflow is None or workflow.latest_version == 0:
        raise Conflict(f"Agent {agent.name} has no published version to run.")
    return workflow.latest_version
