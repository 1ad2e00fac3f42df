from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query

from voxflow.audit.models import AuditEvent
from voxflow.audit.repository import AuditRepository
from voxflow.audit.schemas import AuditEventOut
from voxflow.core.deps import NO_NUL, PageDep, SessionDep
from voxflow.core.errors import problem_responses
from voxflow.core.pagination import Page, build_page
from voxflow.core.routing import ApiRoute
from voxflow.orgs.auth import AdminDep

router = APIRouter(prefix="/v1/audit", tags=["audit"], route_class=ApiRoute)


def to_out(event: AuditEvent) -> AuditEventOut:
    return AuditEventOut(
        id=event.id,
        occurred_at=event.occurred_at,
        actor_type=event.actor_type,
        actor_id=event.actor_id,
        action=event.action,
        target_type=event.target_type,
        target_id=event.target_id,
        target_name=event.target_name,
        detail=json.loads(event.detail),
    )


@router.get("", response_model=Page[AuditEventOut], responses=problem_responses(401, 403, 429))
async def list_audit_events(
    auth: AdminDep,
    session: SessionDep,
    page: PageDep,
    action: Annotated[
        str | None,
        Query(
            max_length=40,
            pattern=r"^[a-z_]+(\.[a-z_]+)?$",
            description="`secret.read`, or `secret` for every secret action",
        ),
    ] = None,
    target_id: Annotated[str | None, Query(max_length=40, pattern=NO_NUL)] = None,
) -> Page[AuditEventOut]:
    """Who created, changed, deleted or read which secret or connection, newest first.

    Admins only. Events never hold a secret's value.
    """
    rows = await AuditRepository(session).list(
        auth.org_id,
        before=page.cursor,
        limit=page.limit + 1,
        action=action,
        target_id=target_id,
    )
    return build_page(rows, page.limit, to_out, lambda event: event.id)
