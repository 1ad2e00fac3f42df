"""Webhook and delivery queries; everything an org reads is filtered by its id."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from voxflow.vault.models import Secret
from voxflow.webhooks.models import Webhook, WebhookDelivery

WEBHOOK_KIND = "webhook"  # the vault row kind of signing secrets
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


def secret_name(webhook_id: str) -> str:
    return f"webhook:{webhook_id}"


def subscribed_events(webhook: Webhook) -> list[str]:
    events: list[str] = json.loads(webhook.events)
    return events


class WebhookRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, org_id: str, webhook_id: str) -> Webhook | None:
        return await self.session.scalar(
            select(Webhook).where(Webhook.org_id == org_id, Webhook.id == webhook_id)
        )

    async def list(self, org_id: str, *, after: str | None, limit: int) -> Sequence[Webhook]:
        query = select(Webhook).where(Webhook.org_id == org_id)
        if after:
            query = query.where(Webhook.id > after)
        result = await self.session.scalars(query.order_by(Webhook.id).limit(limit))
        return result.all()

    async def subscribed(self, org_id: str, event_type: str) -> Sequence[Webhook]:
        # An org has a handful of endpoints: filtering the JSON list here beats a JSON query
        # that differs between SQLite and PostgreSQL.
        result = await self.session.scalars(
            select(Webhook).where(Webhook.org_id == org_id).order_by(Webhook.id)
        )
        return [hook for hook in result.all() if event_type in subscribed_events(hook)]

    async def secret(self, webhook: Webhook) -> Secret | None:
        return await self.session.scalar(
            select(Secret).where(Secret.org_id == webhook.org_id, Secret.id == webhook.secret_id)
        )

    async def deliveries(
        self, org_id: str, webhook_id: str, *, before: str | None, limit: int
    ) -> Sequence[WebhookDelivery]:
        query = select(WebhookDelivery).where(
            WebhookDelivery.org_id == org_id, WebhookDelivery.webhook_id == webhook_id
        )
        if before:
            query = query.where(WebhookDelivery.id < before)
        # Newest first: ids sort by creation time.
        result = await self.session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit))
        return result.all()


class DeliveryRepository:
    """The outbox as the sender sees it, across orgs."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_due(
        self, now: datetime, *, limit: int, org_id: str | None, skip_locked: bool
    ) -> Sequence[Row[WebhookDelivery, str, Secret]]:
        """Due deliveries with their endpoint's URL and secret row, oldest due first.

        With `skip_locked` (PostgreSQL) the rows stay locked until the transaction ends and
        rows another process holds are passed over, so concurrent senders never pick the same.
        """
        query = (
            select(WebhookDelivery, Webhook.url, Secret)
            .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .join(Secret, Secret.id == Webhook.secret_id)
            .where(WebhookDelivery.status == PENDING, WebhookDelivery.next_attempt_at <= now)
        )
        if org_id is not None:
            query = query.where(WebhookDelivery.org_id == org_id)
        query = query.order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(limit)
        if skip_locked:
            query = query.with_for_update(skip_locked=True, of=WebhookDelivery)
        result = await self.session.execute(query)
        return result.all()

    async def claim(self, delivery_id: str, *, due_at: datetime, until: datetime) -> bool:
        """Push a due row's next attempt to `until`, unless someone claimed it first.

        The row lock makes this certain on PostgreSQL; on SQLite the compare-and-set does.
        """
        result = await self.session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status == PENDING,
                WebhookDelivery.next_attempt_at == due_at,
            )
            .values(next_attempt_at=until)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def record_attempt(
        self,
        delivery_id: str,
        *,
        attempts: int,
        status: str,
        status_code: int | None,
        error: str | None,
        next_attempt_at: datetime | None,
        delivered_at: datetime | None,
    ) -> None:
        await self.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == PENDING)
            .values(
                attempts=attempts,
                status=status,
                last_status_code=status_code,
                last_error=error,
                next_attempt_at=next_attempt_at,
                delivered_at=delivered_at,
            )
            .execution_options(synchronize_session=False)
        )
