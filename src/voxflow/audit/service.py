"""Writing the audit log: in the same transaction as the operation it records.

So an operation whose audit row cannot be written fails as a whole (the row is flushed at
once, and a failed flush rolls the transaction back), and a recorded event always happened.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from pydantic import JsonValue
from sqlalchemy.ext.asyncio import AsyncSession

from voxflow.audit.models import AuditEvent
from voxflow.core.ids import new_id
from voxflow.orgs.auth import AuthSubject

ActorType = Literal["user", "api_key", "call", "system"]


@dataclass(frozen=True)
class Actor:
    type: ActorType
    id: str

    @classmethod
    def of(cls, auth: AuthSubject) -> Actor:
        if auth.user_id is not None:
            return cls("user", auth.user_id)
        if auth.api_key_id is not None:
            return cls("api_key", auth.api_key_id)
        return SYSTEM

    @classmethod
    def call(cls, call_id: str) -> Actor:
        return cls("call", call_id)


SYSTEM = Actor("system", "")


async def record_audit(
    session: AsyncSession,
    *,
    org_id: str,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: str,
    target_name: str = "",
    detail: dict[str, JsonValue] | None = None,
) -> None:
    """Add an audit event to the session's transaction; raises if it cannot be written."""
    session.add(
        AuditEvent(
            id=new_id("aud"),
            org_id=org_id,
            actor_type=actor.type,
            actor_id=actor.id,
            action=action,
            target_type=target_type,
            target_id=target_id,
            target_name=target_name,
            detail=json.dumps(detail or {}, separators=(",", ":")),
        )
    )
    await session.flush()
