"""Rules for orgs, people and credentials. Services flush; the request boundary commits."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from voxflow.core.context import AppContext
from voxflow.core.db import record_change, utcnow
from voxflow.core.errors import Conflict, Forbidden, NotFound, Unauthorized
from voxflow.core.ids import new_id
from voxflow.orgs.auth import API_KEY_TOPIC, AuthSubject
from voxflow.orgs.models import ApiKey, LoginSession, Membership, Organization, Role, User
from voxflow.orgs.repository import OrgRepository
from voxflow.orgs.tokens import (
    display_prefix,
    hash_password,
    new_api_key,
    new_session_token,
    token_hash,
    verify_password,
)


@dataclass(frozen=True)
class NewApiKey:
    record: ApiKey
    key: str


@dataclass(frozen=True)
class NewOrg:
    org: Organization
    api_key: NewApiKey


async def create_org(
    session: AsyncSession, name: str, *, owner_user_id: str | None = None
) -> NewOrg:
    org = Organization(id=new_id("org"), name=name.strip(), created_at=utcnow())
    session.add(org)
    await session.flush()
    if owner_user_id is not None:
        session.add(Membership(org_id=org.id, user_id=owner_user_id, role=Role.owner.value))
    key = await _add_api_key(session, org.id, "first key", Role.owner, created_by=owner_user_id)
    return NewOrg(org=org, api_key=key)


async def create_user(
    session: AsyncSession, email: str, password: str, *, org_id: str, role: Role
) -> User:
    repo = OrgRepository(session)
    if await repo.get_org(org_id) is None:
        raise NotFound(f"No organization {org_id}.")
    email = email.strip().lower()
    user = await repo.get_user_by_email(email)
    if user is None:
        # Argon2 takes a CPU-bound quarter second: off the event loop, or every request stalls.
        password_hash = await asyncio.to_thread(hash_password, password)
        user = User(id=new_id("usr"), email=email, password_hash=password_hash)
        session.add(user)
        await session.flush()
    elif await repo.get_membership(org_id, user.id) is not None:
        raise Conflict(f"{email} is already a member of {org_id}.")
    session.add(Membership(org_id=org_id, user_id=user.id, role=role.value))
    await session.flush()
    return user


async def login(
    context: AppContext, session: AsyncSession, email: str, password: str
) -> tuple[User, str]:
    user = await OrgRepository(session).get_user_by_email(email.strip().lower())
    verified = await asyncio.to_thread(
        verify_password, password, user.password_hash if user else None
    )
    if not verified or user is None:
        raise Unauthorized("Wrong email or password.")
    token = new_session_token()
    now = utcnow()
    session.add(
        LoginSession(
            id=new_id("ses"),
            user_id=user.id,
            token_hash=token_hash(token),
            created_at=now,
            expires_at=now + timedelta(hours=context.settings.session_ttl_hours),
        )
    )
    await session.flush()
    return user, token


async def logout(session: AsyncSession, login_session_id: str) -> None:
    login_session = await session.get(LoginSession, login_session_id)
    if login_session is not None:
        login_session.revoked_at = utcnow()
        await session.flush()


async def _add_api_key(
    session: AsyncSession, org_id: str, name: str, role: Role, *, created_by: str | None
) -> NewApiKey:
    key = new_api_key()
    record = ApiKey(
        id=new_id("key"),
        org_id=org_id,
        name=name,
        role=role.value,
        prefix=display_prefix(key),
        key_hash=token_hash(key),
        created_by=created_by,
        created_at=utcnow(),
    )
    session.add(record)
    await session.flush()
    return NewApiKey(record=record, key=key)


async def create_api_key(
    session: AsyncSession, auth: AuthSubject, name: str, role: Role
) -> NewApiKey:
    if not auth.role.allows(role):
        raise Forbidden(f"You cannot create a key with more rights ({role.value}) than your own.")
    return await _add_api_key(session, auth.org_id, name, role, created_by=auth.actor)


async def revoke_api_key(session: AsyncSession, auth: AuthSubject, key_id: str) -> None:
    key = await OrgRepository(session).get_api_key(auth.org_id, key_id)
    if key is None:
        raise NotFound(f"No API key {key_id}.")
    if not auth.role.allows(Role(key.role)):
        raise Forbidden(f"Only an {key.role} can revoke an {key.role} key.")
    key.revoked_at = utcnow()
    # Announced after the commit (session_scope), so no process can re-cache it as valid.
    record_change(session, API_KEY_TOPIC, key.key_hash)
