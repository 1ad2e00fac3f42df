from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from voxflow.integrations.return_to import MAX_RETURN_TO, check_return_to

# What workflows call a connection by (`connection: "Sales CRM"`): free text on one line.
ConnectionName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$"
    ),
]
ReturnTo = Annotated[str, Field(max_length=MAX_RETURN_TO), AfterValidator(check_return_to)]


class ProviderOut(BaseModel):
    name: str = Field(description="`airtable`, `generic`")
    title: str
    configured: bool = Field(description="false until the server has the provider's client id")
    scopes: list[str]


class ConnectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ConnectionName = Field(description="Unique in the org; workflows use it")
    return_to: ReturnTo = Field(
        default="/",
        description="A path on this site to come back to, e.g. `/settings/integrations`",
    )


class ConnectStarted(BaseModel):
    authorize_url: str = Field(description="Send the browser here")
    expires_at: datetime = Field(description="Finish at the provider before this")


class ConnectionOut(BaseModel):
    id: str
    name: str
    provider: str
    status: Literal["active", "needs_reauth"]
    scopes: list[str]
    expires_at: datetime | None = Field(description="When the current access token expires")
    created_at: datetime
    created_by: str
    last_refreshed_at: datetime | None
    last_error: str | None


class ConnectionTestResult(BaseModel):
    ok: bool
    status: int | None = Field(description="HTTP status of the provider's test request")
    detail: str
