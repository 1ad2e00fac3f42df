"""Secrets as a running call reads them: at the moment a tool needs them, audited per read."""

from __future__ import annotations

from collections.abc import Collection, Mapping

import structlog
from sqlalchemy import update

from voxflow.audit.service import Actor, record_audit
from voxflow.core.context import AppContext
from voxflow.core.db import utcnow
from voxflow.engine.secrets import SecretUnavailable
from voxflow.vault.crypto import VaultError
from voxflow.vault.models import Secret
from voxflow.vault.repository import SecretRepository
from voxflow.vault.vault import get_vault

log = structlog.get_logger("voxflow.vault")


class CallSecrets:
    """The `Secrets` of one call (`voxflow.engine.secrets`): the org's secrets, by name."""

    def __init__(self, context: AppContext, org_id: str, call_id: str) -> None:
        self.context = context
        self.org_id = org_id
        self.call_id = call_id

    async def resolve_present(self, names: Collection[str]) -> Mapping[str, str]:
        """The values of those of `names` the org has set (each read audited); absent ones are
        left out. A secret that exists but cannot be opened still raises `SecretUnavailable`."""
        async with self.context.sessionmaker() as session:
            rows = await SecretRepository(session).by_names(self.org_id, names)
            present = [row.name for row in rows]
        return await self.resolve(present) if present else {}

    async def resolve(self, names: Collection[str]) -> Mapping[str, str]:
        vault = await get_vault(self.context)
        async with self.context.sessionmaker() as session:
            rows = {
                row.name: row
                for row in await SecretRepository(session).by_names(self.org_id, names)
            }
            missing = sorted(set(names) - rows.keys())
            if missing:
                listed = ", ".join(missing)
                raise SecretUnavailable(f"secret {listed} is not set (add it under Secrets)")
            values: dict[str, str] = {}
            for name, row in rows.items():
                try:
                    values[name] = vault.open_row(row).decode()
                except (VaultError, UnicodeDecodeError):
                    log.error("secret_unreadable", secret=row.id, call=self.call_id)
                    raise SecretUnavailable(f"secret {name} cannot be read") from None
                # Every read is on the record: which call read which secret, never the value.
                await record_audit(
                    session,
                    org_id=self.org_id,
                    actor=Actor.call(self.call_id),
                    action="secret.read",
                    target_type="secret",
                    target_id=row.id,
                    target_name=name,
                )
            await session.execute(
                update(Secret)
                .where(Secret.id.in_([row.id for row in rows.values()]))
                .values(last_used_at=utcnow())
            )
            await session.commit()
        return values
