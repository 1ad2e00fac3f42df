from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from voxflow.core.deps import NO_NUL, ContextDep, PageDep, SessionDep
from voxflow.core.errors import problem_responses
from voxflow.core.pagination import Page, build_page
from voxflow.core.routing import ApiRoute
from voxflow.orgs.auth import AdminDep, MemberDep
from voxflow.vault.vault import get_vault
from voxflow.webhooks import service
from voxflow.webhooks.delivery import address_policy
from voxflow.webhooks.repository import WebhookRepository
from voxflow.webhooks.schemas import (
    DeliveryOut,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
    WebhookSecret,
    WebhookUpdate,
)

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], route_class=ApiRoute)
WebhookID = Annotated[str, Path(max_length=64, pattern=NO_NUL, description="Webhook id (`wh_…`)")]
READ_ERRORS = problem_responses(401, 403, 404, 429)
WRITE_ERRORS = problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 429)


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=WebhookCreated, responses=WRITE_ERRORS
)
async def create_webhook(
    body: WebhookCreate, auth: AdminDep, session: SessionDep, context: ContextDep
) -> WebhookCreated:
    """Send call events to an endpoint, signed per Standard Webhooks.

    The answer holds the signing secret: the only time it is shown.
    """
    vault = await get_vault(context)
    webhook, secret = await service.create_webhook(
        session, vault, auth, body, address_policy(context.settings)
    )
    return WebhookCreated(**service.to_out(webhook).model_dump(), secret=secret)


@router.get("", response_model=Page[WebhookOut], responses=READ_ERRORS)
async def list_webhooks(auth: MemberDep, session: SessionDep, page: PageDep) -> Page[WebhookOut]:
    rows = await WebhookRepository(session).list(
        auth.org_id, after=page.cursor, limit=page.limit + 1
    )
    return build_page(rows, page.limit, service.to_out, lambda webhook: webhook.id)


@router.get("/{webhook_id}", response_model=WebhookOut, responses=READ_ERRORS)
async def get_webhook(webhook_id: WebhookID, auth: MemberDep, session: SessionDep) -> WebhookOut:
    return service.to_out(await service.get_webhook(session, auth, webhook_id))


@router.patch("/{webhook_id}", response_model=WebhookOut, responses=WRITE_ERRORS)
async def update_webhook(
    webhook_id: WebhookID,
    body: WebhookUpdate,
    auth: AdminDep,
    session: SessionDep,
    context: ContextDep,
) -> WebhookOut:
    """Change only the fields sent; deliveries already queued go to the new URL."""
    webhook = await service.update_webhook(
        session, auth, webhook_id, body, address_policy(context.settings)
    )
    return service.to_out(webhook)


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, responses=READ_ERRORS)
async def delete_webhook(webhook_id: WebhookID, auth: AdminDep, session: SessionDep) -> None:
    """Erase the endpoint, its secret and its delivery log; pending deliveries are dropped."""
    await service.delete_webhook(session, auth, webhook_id)


@router.post("/{webhook_id}/rotate-secret", response_model=WebhookSecret, responses=READ_ERRORS)
async def rotate_secret(
    webhook_id: WebhookID, auth: AdminDep, session: SessionDep, context: ContextDep
) -> WebhookSecret:
    """Replace the signing secret at once (shown only now); later deliveries use the new one."""
    vault = await get_vault(context)
    return WebhookSecret(secret=await service.rotate_secret(session, vault, auth, webhook_id))


@router.get("/{webhook_id}/deliveries", response_model=Page[DeliveryOut], responses=READ_ERRORS)
async def list_deliveries(
    webhook_id: WebhookID, auth: MemberDep, session: SessionDep, page: PageDep
) -> Page[DeliveryOut]:
    """What was sent to the endpoint and how it went, newest first."""
    webhook = await service.get_webhook(session, auth, webhook_id)
    rows = await WebhookRepository(session).deliveries(
        auth.org_id, webhook.id, before=page.cursor, limit=page.limit + 1
    )
    return build_page(rows, page.limit, service.delivery_out, lambda delivery: delivery.id)
