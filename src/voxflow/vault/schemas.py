from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, SecretStr

# What `{{ secrets.NAME }}` can read: a Jinja attribute name.
SECRET_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,99}$"  # noqa: S105
MAX_SECRET_BYTES = 64 * 1024


class SecretCreate(BaseModel):
    name: str = Field(pattern=SECRET_NAME_PATTERN, description="e.g. `CRM_API_KEY`")
    # SecretStr: the value never shows in a repr, a log line or a validation error.
    value: SecretStr = Field(min_length=1, max_length=MAX_SECRET_BYTES)
    description: str = Field(default="", max_length=500)


class SecretUpdate(BaseModel):
    value: SecretStr = Field(min_length=1, max_length=MAX_SECRET_BYTES)
    description: str | None = Field(default=None, max_length=500)


class SecretOut(BaseModel):
    """A secret's metadata: the value is never returned, not even to its author."""

    name: str
    description: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    last_used_at: datetime | None
