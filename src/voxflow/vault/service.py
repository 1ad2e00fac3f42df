"""Secrets a team stores for its workflows: create, replace, delete; every change audited."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from voxflow.audit.service import Actor, record_audit
from voxflow.core.db import utcnow
from voxflow.core.errors import Conflict, NotFound
from voxflow.core.ids import new_id
from voxflow.orgs.auth import AuthSubject
from voxflow.vault.models import Secret
from voxflow.vault.repository import SECRET, SecretRepository
from voxflow.vault.schemas import SecretCreate, SecretOut, SecretUpdate
from voxflow.vault.vault import Vault


def to_out(secret: Secret) -> SecretOut:
    return SecretOut(
        name=secret.name,
        description=secret.description,
        created_by=secret.created_by,
        created_at=secret.created_at,
        updated_at=secret.updated_at,
        last_used_at=secret.last_used_at,
    )


async def create_secret(
    session: AsyncSession, vault: Vault, auth: AuthSubject, data: SecretCreate
) -> Secret:
    if await SecretRepository(session).get_by_name(auth.org_id, data.name) is not None:
        raise _taken(data.name)
    now = utcnow()
    secret = Secret(
        id=new_id("sec"),
        org_id=auth.org_id,
        kind=SECRET,
        name=data.name,
        description=data.description,
        created_by=Actor.of(auth).id,
        created_at=now,
        updated_at=now,
    )
    vault.seal_into(secret, data.value.get_secret_value().encode())
    session.add(secret)
    try:
        await session.flush()
    except IntegrityError:  # a concurrent create of the same name won the unique index
        raise _taken(data.name) from None
    await _audit(session, auth, "secret.created", secret)
    return secret


async def get_secret(session: AsyncSession, auth: AuthSubject, name: str) -> Secret:
    secret = await SecretRepository(session).get_by_name(auth.org_id, name)
    if secret is None:
        raise NotFound(f"No secret named {name!r}.")
    return secret


async def replace_secret(
    session: AsyncSession, vault: Vault, auth: AuthSubject, name: str, data: SecretUpdate
) -> Secret:
    secret = await get_secret(session, auth, name)
    # A new data key too: nothing of the old value's encryption is reused.
    vault.seal_into(secret, data.value.get_secret_value().encode())
    if data.description is not None:
        secret.description = data.description
    secret.updated_at = utcnow()
    await session.flush()
    await _audit(session, auth, "secret.updated", secret)
    return secret


async def delete_secret(session: AsyncSession, auth: AuthSubject, name: str) -> None:
    secret = await get_secret(session, auth, name)
    await _audit(session, auth, "secret.deleted", secret)
    await session.execute(delete(Secret).where(Secret.id == secret.id))


async def _audit(session: AsyncSession, auth: AuthSubject, action: str, secret: Secret) -> None:
    await record_audit(
        session,
        org_id=auth.org_id,
        actor=Actor.of(auth),
        action=action,
        target_type="secret",
        target_id=secret.id,
        target_name=secret.name,
    )


def _taken(name: str) -> Conflict:
    return Conflict(f"A secret named {name!r} already exists; PUT /v1/secrets/{name} replaces it.")
