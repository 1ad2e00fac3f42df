"""Call events into the outbox: one delivery row per subscribed endpoint, written in the
caller's transaction, so the event exists exactly when the change it reports was committed.

The body follows the Standard Webhooks payload shape: `{"type", "timestamp", "data"}`.
"""

from __future__ import annotations

import json
from datetime import datetime

from pydantic import JsonValue
from sqlalchemy.ext.asyncio import AsyncSession

from voxflow.core.db import utcnow
from voxflow.core.ids import new_id
from voxflow.sessions.models import Call
from voxflow.sessions.repository import CallRepository
from voxflow.webhooks.models import WebhookDelivery
from voxflow.webhooks.repository import PENDING, WebhookRepository
from voxflow.webhooks.schemas import EventType


async def enqueue(
    session: AsyncSession,
    org_id: str,
    event_type: EventType,
    data: dict[str, JsonValue],
    *,
    now: datetime | None = None,
) -> list[WebhookDelivery]:
    """Add `event_type` for every endpoint of the org subscribed to it (due at once)."""
    now = now or utcnow()
    hooks = await WebhookRepository(session).subscribed(org_id, event_type)
    if not hooks:
        return []
    body = {"type": event_type, "timestamp": now.isoformat(), "data": data}
    payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    deliveries = [
        WebhookDelivery(
            id=new_id("msg"),
            org_id=org_id,
            webhook_id=hook.id,
            event_type=event_type,
            payload=payload,
            status=PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        for hook in hooks
    ]
    session.add_all(deliveries)
    await session.flush()
    return deliveries


async def call_started(session: AsyncSession, call: Call) -> None:
    """`call.started` for a call just added to the session, and `call.ended` with it when the
    call ended on its very first reply."""
    await enqueue(session, call.org_id, "call.started", {**_call_fields(call)}, now=call.started_at)
    if call.outcome is not None:
        await call_ended(session, call.org_id, call.id)


async def call_ended(session: AsyncSession, org_id: str, call_id: str) -> None:
    """`call.ended` for a call whose outcome this session's transaction stores."""
    if not await WebhookRepository(session).subscribed(org_id, "call.ended"):
        return  # spare reading the transcript
    await session.flush()  # the final turn and outcome, as the transaction holds them
    repository = CallRepository(session)
    call = await repository.get(org_id, call_id)
    if call is None or call.outcome is None:
        return
    await session.refresh(call)  # an UPDATE without synchronisation may have changed it
    turns = await repository.turns(org_id, call_id)
    ended_at = call.ended_at or utcnow()
    variables: dict[str, JsonValue] = json.loads(call.state).get("variables", {})
    data: dict[str, JsonValue] = {
        **_call_fields(call),
        "outcome": call.outcome,
        "ended_at": ended_at.isoformat(),
        "duration_ms": round((ended_at - call.started_at).total_seconds() * 1000, 1),
        "variables": variables,
        "transcript": [
            {"role": turn.role, "text": turn.text, "at": turn.created_at.isoformat()}
            for turn in turns
            if turn.text
        ],
    }
    await enqueue(session, org_id, "call.ended", data, now=ended_at)


def _call_fields(call: Call) -> dict[str, JsonValue]:
    return {
        "call_id": call.id,
        "agent_id": call.agent_id,
        "workflow_id": call.workflow_id,
        "version": call.version_number,
        "mode": call.mode,
        "started_at": call.started_at.isoformat(),
    }
