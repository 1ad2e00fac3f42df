"""Helpers the tests share: settings for a test app, orgs created through the service."""

from __future__ import annotations

from dataclasses import dataclass

from voxflow.core.context import AppContext
from voxflow.core.settings import Settings
from voxflow.orgs import service as org_service


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "environment": "test",
        "login_rate_limit": "1000/minute",
        "api_rate_limit": "100000/minute",
        "log_format": "json",
    }
    values.update(overrides)
    return Settings.model_validate(values)


@dataclass(frozen=True)
class OrgHandle:
    id: str
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


async def new_org(context: AppContext, name: str = "acme") -> OrgHandle:
    async with context.sessionmaker() as session:
        created = await org_service.create_org(session, name)
        await session.commit()
    return OrgHandle(id=created.org.id, api_key=created.api_key.key)
