"""Queries for orgs, users, memberships, API keys and login sessions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from voxflow.orgs.models import ApiKey, LoginSession, Membership, Organization, User


class OrgRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_org(self, org_id: str) -> Organization | None:
        return await self.session.get(Organization, org_id)

    async def find_org_by_name(self, name: str) -> Organization | None:
        result = await self.session.execute(
            select(Organization).where(Organization.name == name).order_by(Organization.id)
        )
        return result.scalars().first()

    async def list_orgs(self) -> Sequence[Organization]:
        return (
            (await self.session.execute(select(Organization).order_by(Organization.id)))
            .scalars()
            .all()
        )

    async def get_user(self, user_id: str) -> User | None:
        return await self.session.get(User, user_id)

    async def get_user_by_email(self, email: str) -> User | None:
        result = await self.session.execute(select(User).where(User.email == email.lower()))
        return result.scalar_one_or_none()

    async def get_membership(self, org_id: str, user_id: str) -> Membership | None:
        return await self.session.get(Membership, (org_id, user_id))

    async def memberships_of(self, user_id: str) -> Sequence[tuple[Membership, Organization]]:
        result = await self.session.execute(
            select(Membership, Organization)
            .join(Organization, Organization.id == Membership.org_id)
            .where(Membership.user_id == user_id)
            .order_by(Membership.created_at, Membership.org_id)
        )
        return [(m, o) for m, o in result.all()]

    async def get_active_api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        result = await self.session.execute(
            select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
        )
        return result.scalar_one_or_none()

    async def get_api_key(self, org_id: str, key_id: str) -> ApiKey | None:
        result = await self.session.execute(
            select(ApiKey).where(
                ApiKey.org_id == org_id, ApiKey.id == key_id, ApiKey.revoked_at.is_(None)
            )
        )
        return result.scalar_one_or_none()

    async def list_api_keys(
        self, org_id: str, *, after: str | None, limit: int
    ) -> Sequence[ApiKey]:
        query = select(ApiKey).where(ApiKey.org_id == org_id, ApiKey.revoked_at.is_(None))
        if after:
            query = query.where(ApiKey.id > after)
        result = await self.session.execute(query.order_by(ApiKey.id).limit(limit))
        return result.scalars().all()

    async def touch_api_key(self, key_id: str, when: datetime) -> None:
        await self.session.execute(
            update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=when)
        )

    async def get_live_login_session(self, token_hash: str, now: datetime) -> LoginSession | None:
        result = await self.session.execute(
            select(LoginSession).where(
                LoginSession.token_hash == token_hash,
                LoginSession.revoked_at.is_(None),
                LoginSession.expires_at > now,
            )
        )
        return result.scalar_one_or_none()
