"""Imports every domain's models so `Base.metadata` knows all tables (Alembic, tests)."""

from voxflow.agents.models import Agent
from voxflow.core.db import Base
from voxflow.orgs.models import ApiKey, LoginSession, Membership, Organization, User
from voxflow.sessions.models import Call, CallTurn
from voxflow.workflows.models import Workflow, WorkflowVersion

__all__ = [
    "Agent",
    "ApiKey",
    "Base",
    "Call",
    "CallTurn",
    "LoginSession",
    "Membership",
    "Organization",
    "User",
    "Workflow",
    "WorkflowVersion",
]
