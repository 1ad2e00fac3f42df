from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from voxflow.dsl import Change, Finding, WorkflowDocument


class WorkflowSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    revision: int = Field(description="Increases on every draft save; the ETag is derived from it")
    latest_version: int = Field(description="Newest published version number; 0 before the first")
    created_at: datetime
    updated_at: datetime
    archived: bool = False


class WorkflowOut(WorkflowSummary):
    draft: WorkflowDocument


class WorkflowSaved(WorkflowOut):
    findings: list[Finding] = Field(
        description="Structural problems of the draft; publishing refuses errors"
    )


class ValidationReport(BaseModel):
    valid: bool = Field(description="True when no finding is an error")
    findings: list[Finding]


class VersionSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    number: int
    sha256: str = Field(description="SHA-256 of the canonical JSON document")
    created_at: datetime
    created_by: str | None


class VersionOut(VersionSummary):
    workflow_id: str
    document: WorkflowDocument


class VersionDiff(BaseModel):
    workflow_id: str
    from_version: int
    to_version: int
    changes: list[Change]
