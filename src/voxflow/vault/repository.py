"""Secret rows, always filtered by org id; `kind="secret"` rows are the ones teams name."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from voxflow.vault.models import Secret

SECRET = "secret"  # noqa: S105 (a row kind, not a password)


class SecretRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_name(self, org_id: str, name: str) -> Secret | None:
        return await self.session.scalar(
            select(Secret).where(
                Secret.org_id == org_id, Secret.kind == SECRET, Secret.name == name
            )
        )

    async def by_names(self, org_id: str, names: Collection[str]) -> Sequence[Secret]:
        result = await self.session.scalars(
            select(Secret).where(
                Secret.org_id == org_id, Secret.kind == SECRET, Secret.name.in_(list(names))
            )
        )
        return result.all()

    async def list(self, org_id: str, *, after: str | None, limit: int) -> Sequence[Secret]:
        query = select(Secret).where(Secret.org_id == org_id, Secret.kind == SECRET)
        if after:
            query = query.where(Secret.name > after)
        result = await self.session.scalars(query.order_by(Secret.name).limit(limit))
        return result.all()
