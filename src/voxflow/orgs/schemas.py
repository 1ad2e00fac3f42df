from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from voxflow.core.deps import NO_NUL
from voxflow.orgs.models import Role


class LoginRequest(BaseModel):
    email: EmailStr
    password: str = Field(min_length=1, max_length=1024)


class OrgCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200, pattern=NO_NUL)


class OrgOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    created_at: datetime


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    email: str
    created_at: datetime


class MembershipOut(BaseModel):
    org_id: str
    org_name: str
    role: Role


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    role: Role = Field(
        default=Role.admin, description="What the key may do; at most the creator's own role"
    )


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    prefix: str = Field(description="First characters of the key, to recognise it")
    role: Role
    created_at: datetime
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The key itself: shown this once, store it now")


class OrgCreated(BaseModel):
    org: OrgOut
    api_key: ApiKeyCreated


class Me(BaseModel):
    user: UserOut | None = Field(description="The person logged in; null for an API key")
    memberships: list[MembershipOut]
    org_id: str | None = Field(description="The org this request acts in")
    role: Role | None
    api_key: ApiKeyOut | None = None
