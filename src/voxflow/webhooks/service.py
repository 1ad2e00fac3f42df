"""Rules for an org's webhooks: public http(s) endpoints, a vaulted secret, every change audited."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets

import httpx
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from voxflow.audit.service import Actor, record_audit
from voxflow.core.db import utcnow
from voxflow.core.errors import InvalidInput, NotFound, ProblemItem
from voxflow.core.ids import new_id
from voxflow.orgs.auth import AuthSubject
from voxflow.tools.network import AddressPolicy, HostResolutionError, resolve_host
from voxflow.vault.models import Secret
from voxflow.vault.vault import Vault
from voxflow.webhooks.models import Webhook, WebhookDelivery
from voxflow.webhooks.repository import (
    WEBHOOK_KIND,
    WebhookRepository,
    secret_name,
    subscribed_events,
)
from voxflow.webhooks.schemas import (
    DeliveryOut,
    EventType,
    WebhookCreate,
    WebhookOut,
    WebhookUpdate,
)

SECRET_PREFIX = "whsec_"  # noqa: S105 (the Standard Webhooks prefix, not a password)
SECRET_BYTES = 32
RESOLVE_TIMEOUT_S = 5.0


def new_signing_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and the base64 of random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def to_out(webhook: Webhook) -> WebhookOut:
    events: list[EventType] = json.loads(webhook.events)
    return WebhookOut(
        id=webhook.id,
        url=webhook.url,
        events=events,
        description=webhook.description,
        created_by=webhook.created_by,
        created_at=webhook.created_at,
        updated_at=webhook.updated_at,
    )


def delivery_out(delivery: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut.model_validate(delivery, from_attributes=True)


async def check_url(url: str, policy: AddressPolicy) -> None:
    """Refuse an endpoint on a non-public address, as the sender would (422 at `/url`).

    Checked again at every delivery, where it counts: DNS may answer differently later.
    """
    if policy.allow_private_networks:
        return
    parsed = httpx.URL(url)
    host = parsed.host
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_S):
            addresses = await resolve_host(host, port)
    except (TimeoutError, HostResolutionError):
        raise _invalid_url(f"Could not resolve {host}; is the host name right?") from None
    for address in addresses:
        reason = policy.refusal_reason(address)
        if reason is not None:
            raise _invalid_url(
                f"{host} resolves to a {reason} address; webhooks go to public addresses only."
            )


async def create_webhook(
    session: AsyncSession,
    vault: Vault,
    auth: AuthSubject,
    data: WebhookCreate,
    policy: AddressPolicy,
) -> tuple[Webhook, str]:
    """The new endpoint and its signing secret (the only time the secret leaves the vault)."""
    await check_url(data.url, policy)
    webhook_id, now, actor = new_id("wh"), utcnow(), Actor.of(auth)
    secret = new_signing_secret()
    row = Secret(
        id=new_id("sec"),
        org_id=auth.org_id,
        kind=WEBHOOK_KIND,
        name=secret_name(webhook_id),
        description="",
        created_by=actor.id,
        created_at=now,
        updated_at=now,
    )
    vault.seal_into(row, secret.encode())
    session.add(row)
    await session.flush()  # the webhook's foreign key needs the row
    webhook = Webhook(
        id=webhook_id,
        org_id=auth.org_id,
        url=data.url,
        events=json.dumps(data.events),
        description=data.description,
        secret_id=row.id,
        created_by=actor.id,
        created_at=now,
        updated_at=now,
    )
    session.add(webhook)
    await session.flush()
    await _audit(session, auth, "webhook.created", webhook)
    return webhook, secret


async def get_webhook(session: AsyncSession, auth: AuthSubject, webhook_id: str) -> Webhook:
    webhook = await WebhookRepository(session).get(auth.org_id, webhook_id)
    if webhook is None:
        raise NotFound(f"No webhook {webhook_id}.")
    return webhook


async def update_webhook(
    session: AsyncSession,
    auth: AuthSubject,
    webhook_id: str,
    data: WebhookUpdate,
    policy: AddressPolicy,
) -> Webhook:
    webhook = await get_webhook(session, auth, webhook_id)
    if data.url is not None:
        await check_url(data.url, policy)
        webhook.url = data.url
    if data.events is not None:
        webhook.events = json.dumps(data.events)
    if data.description is not None:
        webhook.description = data.description
    webhook.updated_at = utcnow()
    await session.flush()
    await _audit(session, auth, "webhook.updated", webhook)
    return webhook


async def rotate_secret(
    session: AsyncSession, vault: Vault, auth: AuthSubject, webhook_id: str
) -> str:
    """A new signing secret; deliveries sent from now on are signed with it only."""
    webhook = await get_webhook(session, auth, webhook_id)
    row = await WebhookRepository(session).secret(webhook)
    if row is None:  # the foreign key forbids it; a 404 rather than a 500 all the same
        raise NotFound(f"No webhook {webhook_id}.")
    secret = new_signing_secret()
    vault.seal_into(row, secret.encode())  # a new data key too
    row.updated_at = webhook.updated_at = utcnow()
    await session.flush()
    await _audit(session, auth, "webhook.secret_rotated", webhook)
    return secret


async def delete_webhook(session: AsyncSession, auth: AuthSubject, webhook_id: str) -> None:
    """The endpoint, its delivery log (by cascade) and its secret, erased."""
    webhook = await get_webhook(session, auth, webhook_id)
    await _audit(session, auth, "webhook.deleted", webhook)
    await session.execute(delete(Webhook).where(Webhook.id == webhook.id))
    await session.execute(
        delete(Secret).where(Secret.org_id == auth.org_id, Secret.id == webhook.secret_id)
    )


async def _audit(session: AsyncSession, auth: AuthSubject, action: str, webhook: Webhook) -> None:
    # The host only: a URL's path or query may carry a token of the receiver's.
    await record_audit(
        session,
        org_id=auth.org_id,
        actor=Actor.of(auth),
        action=action,
        target_type="webhook",
        target_id=webhook.id,
        target_name=httpx.URL(webhook.url).host,
        detail={"events": list(subscribed_events(webhook))},
    )


def _invalid_url(detail: str) -> InvalidInput:
    return InvalidInput(detail, errors=[ProblemItem(detail=detail, pointer="/url")])
