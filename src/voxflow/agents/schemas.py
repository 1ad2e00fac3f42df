from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    Field,
    StrictFloat,
    StrictInt,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic_core import PydanticCustomError

from voxflow.core.deps import NO_NUL

AGENT_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,99}$"


def _one_version_error(value: object, handler: ValidatorFunctionWrapHandler) -> object:
    # One error at the field itself, not one per union member (`/version/literal['latest']`).
    try:
        return handler(value)
    except ValidationError:
        raise PydanticCustomError(
            "version_choice", 'Input should be "latest" or a version number'
        ) from None


# Strict: `true` is not version 1, nor "2" version 2.
VersionChoice = Annotated[Literal["latest"] | StrictInt, WrapValidator(_one_version_error)]


class Canary(BaseModel):
    version: StrictInt = Field(
        ge=1, le=2**31 - 1, description="Version that receives the canary share"
    )
    percent: StrictFloat = Field(ge=0, le=100, description="Share of sessions sent to it, 0-100")


class AgentOverrides(BaseModel):
    settings: dict[str, Any] = Field(
        default_factory=dict, description="Workflow settings merged over the version's"
    )
    variables: dict[str, Any] = Field(
        default_factory=dict, description="Initial variable values merged over the version's"
    )


class AgentCreate(BaseModel):
    name: str = Field(pattern=AGENT_NAME_PATTERN, description="Unique in the org, e.g. `luigis`")
    workflow_id: str = Field(max_length=64, pattern=NO_NUL)
    version: VersionChoice = Field(
        default="latest", description='"latest" or a published version number'
    )
    canary: Canary | None = None
    overrides: AgentOverrides = Field(default_factory=AgentOverrides)
    record: bool = Field(
        default=False, description="Record voice calls: GET /v1/calls/{id}/recording (a WAV)"
    )


class AgentUpdate(BaseModel):
    """Only the fields sent change; send `canary: null` to stop a canary."""

    name: str | None = Field(default=None, pattern=AGENT_NAME_PATTERN)
    version: VersionChoice | None = None
    canary: Canary | None = None
    overrides: AgentOverrides | None = None
    record: bool | None = None


class AgentOut(BaseModel):
    id: str
    name: str
    workflow_id: str
    version: VersionChoice
    canary: Canary | None
    overrides: AgentOverrides
    record: bool
    created_at: datetime
    updated_at: datetime
