from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

AGENT_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,99}$"
VersionChoice = Literal["latest"] | int


class Canary(BaseModel):
    version: int = Field(ge=1, le=2**31 - 1, description="Version that receives the canary share")
    percent: float = Field(ge=0, le=100, description="Share of sessions sent to it, 0-100")


class AgentOverrides(BaseModel):
    settings: dict[str, Any] = Field(
        default_factory=dict, description="Workflow settings merged over the version's"
    )
    variables: dict[str, Any] = Field(
        default_factory=dict, description="Initial variable values merged over the version's"
    )


class AgentCreate(BaseModel):
    name: str = Field(pattern=AGENT_NAME_PATTERN, description="Unique in the org, e.g. `luigis`")
    workflow_id: str = Field(max_length=64)
    version: VersionChoice = Field(
        default="latest", description='"latest" or a published version number'
    )
    canary: Canary | None = None
    overrides: AgentOverrides = Field(default_factory=AgentOverrides)


class AgentUpdate(BaseModel):
    """Only the fields sent change; send `canary: null` to stop a canary."""

    name: str | None = Field(default=None, pattern=AGENT_NAME_PATTERN)
    version: VersionChoice | None = None
    canary: Canary | None = None
    overrides: AgentOverrides | None = None


class AgentOut(BaseModel):
    id: str
    name: str
    workflow_id: str
    version: VersionChoice
    canary: Canary | None
    overrides: AgentOverrides
    created_at: datetime
    updated_at: datetime
