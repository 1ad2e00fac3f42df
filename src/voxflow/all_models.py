"""Imports every domain's models so `Base.metadata` knows all tables (Alembic, tests)."""

from voxflow.agents.models import Agent
from voxflow.audit.models import AuditEvent
from voxflow.core.db import Base
from voxflow.integrations.models import Connection, OAuthState
from voxflow.orgs.models import ApiKey, LoginSession, Membership, Organization, User
from voxflow.sessions.models import Call, CallTurn
from voxflow.vault.models import Secret
from voxflow.webhooks.models import Webhook, WebhookDelivery
from voxflow.workflows.models import Workflow, WorkflowVersion

__all__ = [
    "Agent",
    "ApiKey",
    "AuditEvent",
    "Base",
    "Call",
    "CallTurn",
    "Connection",
    "LoginSession",
    "Membership",
    "OAuthState",
    "Organization",
    "Secret",
    "User",
    "Webhook",
    "WebhookDelivery",
    "Workflow",
    "WorkflowVersion",
]
