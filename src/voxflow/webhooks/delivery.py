"""The outbox sender: POST due deliveries, signed per Standard Webhooks, retrying for a day.

    delivered = await deliver_due(context)          # what the loop runs every few seconds
    loop = DeliveryLoop(context); loop.start(); …; await loop.stop()

Each pass claims due rows in one short transaction (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so
several processes share the work without sending a row twice) by pushing their next attempt a
lease ahead, sends them with no transaction open, then records each outcome. A process that
dies mid-send leaves its rows to be claimed again when the lease runs out: delivery is at least
once, and the `webhook-id` header lets the receiver drop a repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
import structlog
from standardwebhooks import Webhook as Signer

from voxflow.core.context import AppContext
from voxflow.core.db import utcnow
from voxflow.core.settings import Settings
from voxflow.tools.network import (
    AddressPolicy,
    AddressRefusedError,
    GuardedNetworkBackend,
    GuardedTransport,
    HostResolutionError,
)
from voxflow.vault.crypto import VaultError
from voxflow.vault.vault import get_vault
from voxflow.webhooks.repository import DELIVERED, FAILED, PENDING, DeliveryRepository

log = structlog.get_logger("voxflow.webhooks")

TIMEOUT_S = 10.0
# Waits after the 1st, 2nd, … failed attempt (±20 % jitter), the last one repeating.
BACKOFF = tuple(timedelta(seconds=s) for s in (5, 30, 120, 600, 3600, 3 * 3600, 6 * 3600))
GIVE_UP_AFTER = timedelta(hours=24)
# Longer than a send can take: a claimed row is due again only if its sender died.
CLAIM_LEASE = timedelta(seconds=60)
BATCH = 20
_SENDER = "webhook_sender"


def retry_delay(failed_attempts: int, rng: random.Random | None = None) -> timedelta:
    base = BACKOFF[min(failed_attempts, len(BACKOFF)) - 1]
    return base * (rng or random).uniform(0.8, 1.2)


def address_policy(settings: Settings) -> AddressPolicy:
    return AddressPolicy(allow_private_networks=settings.webhooks_allow_private_networks)


@dataclass(frozen=True)
class Attempt:
    status_code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookSender:
    """One reused httpx client whose connections go through the SSRF guard."""

    def __init__(self, policy: AddressPolicy) -> None:
        self._client = httpx.AsyncClient(
            transport=GuardedTransport(GuardedNetworkBackend(policy)),
            trust_env=False,  # else proxy settings from the environment bypass the guard
            follow_redirects=False,  # a redirect is a failed attempt, never a new target
            timeout=TIMEOUT_S,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, url: str, msg_id: str, payload: str, secret: str) -> Attempt:
        # The receiver checks the timestamp against its own clock: always the real time.
        timestamp = utcnow()
        headers = {
            "content-type": "application/json",
            "user-agent": "Voxflow-Webhooks/1",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(timestamp.timestamp())),
            "webhook-signature": Signer(secret).sign(msg_id, timestamp, payload),
        }
        host = httpx.URL(url).host
        try:
            async with asyncio.timeout(TIMEOUT_S):
                # Streamed and closed unread: the answer's status is all we keep.
                async with self._client.stream(
                    "POST", url, content=payload.encode(), headers=headers
                ) as response:
                    status = response.status_code
        except (TimeoutError, httpx.TimeoutException):
            return Attempt(None, f"request to {host} timed out after {TIMEOUT_S:g} s")
        except (AddressRefusedError, HostResolutionError) as exc:
            return Attempt(None, str(exc))  # names the host only
        except httpx.HTTPError as exc:
            # The class name, not the message: a message may quote the URL and its query.
            return Attempt(None, f"{type(exc).__name__} while sending to {host}")
        if 200 <= status < 300:
            return Attempt(status, None)
        return Attempt(status, f"{host} answered HTTP {status}")


def sender(context: AppContext) -> WebhookSender:
    found: WebhookSender | None = context.extras.get(_SENDER)
    if found is None:
        found = context.extras[_SENDER] = WebhookSender(address_policy(context.settings))
    return found


async def close_sender(context: AppContext) -> None:
    found: WebhookSender | None = context.extras.pop(_SENDER, None)
    if found is not None:
        await found.aclose()


@dataclass(frozen=True)
class _Claimed:
    id: str
    org_id: str
    webhook_id: str
    url: str
    payload: str
    secret: str = field(repr=False)
    attempts: int
    created_at: datetime


async def deliver_due(
    context: AppContext, *, now: datetime | None = None, org_id: str | None = None
) -> int:
    """Send what is due at `now` (default: the clock), at most one batch; how many were tried.

    `org_id` limits the pass to one org's deliveries (tests drive the clock per org with it).
    """
    now = now or utcnow()
    claimed = await _claim(context, now, org_id)
    if not claimed:
        return 0
    client = sender(context)
    attempts = await asyncio.gather(
        *(client.send(row.url, row.id, row.payload, row.secret) for row in claimed)
    )
    async with context.sessionmaker() as session, session.begin():
        repository = DeliveryRepository(session)
        for row, attempt in zip(claimed, attempts, strict=True):
            await _record(repository, row, attempt, now)
    return len(claimed)


async def _claim(context: AppContext, now: datetime, org_id: str | None) -> list[_Claimed]:
    vault = await get_vault(context)
    claimed: list[_Claimed] = []
    async with context.sessionmaker() as session, session.begin():
        repository = DeliveryRepository(session)
        rows = await repository.lock_due(
            now, limit=BATCH, org_id=org_id, skip_locked=not context.settings.is_sqlite
        )
        for delivery, url, secret_row in rows:
            assert delivery.next_attempt_at is not None  # pending rows always have one
            if not await repository.claim(
                delivery.id, due_at=delivery.next_attempt_at, until=now + CLAIM_LEASE
            ):
                continue
            try:
                secret = vault.open_row(secret_row).decode()
            except VaultError:
                log.error("webhook_secret_unreadable", webhook_id=delivery.webhook_id)
                continue  # retried after the lease, once the vault has its key back
            claimed.append(
                _Claimed(
                    id=delivery.id,
                    org_id=delivery.org_id,
                    webhook_id=delivery.webhook_id,
                    url=url,
                    payload=delivery.payload,
                    secret=secret,
                    attempts=delivery.attempts,
                    created_at=delivery.created_at,
                )
            )
    return claimed


async def _record(
    repository: DeliveryRepository, row: _Claimed, attempt: Attempt, now: datetime
) -> None:
    attempts = row.attempts + 1
    fields = {"delivery_id": row.id, "webhook_id": row.webhook_id, "org_id": row.org_id}
    if attempt.ok:
        await repository.record_attempt(
            row.id,
            attempts=attempts,
            status=DELIVERED,
            status_code=attempt.status_code,
            error=None,
            next_attempt_at=None,
            delivered_at=now,
        )
        log.info("webhook_delivered", **fields, attempts=attempts, status=attempt.status_code)
        return
    deadline = row.created_at + GIVE_UP_AFTER
    give_up = now >= deadline
    await repository.record_attempt(
        row.id,
        attempts=attempts,
        status=FAILED if give_up else PENDING,
        status_code=attempt.status_code,
        error=attempt.error,
        # The last try falls on the deadline itself rather than past it.
        next_attempt_at=None if give_up else min(now + retry_delay(attempts), deadline),
        delivered_at=None,
    )
    log.warning(
        "webhook_failed" if give_up else "webhook_attempt_failed",
        **fields,
        attempts=attempts,
        status=attempt.status_code,
        error=attempt.error,
    )


class DeliveryLoop:
    """The process's one sender task: a pass every `webhooks_poll_interval_s` (at once after
    a full batch), until `stop`."""

    def __init__(self, context: AppContext) -> None:
        self._context = context
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="webhook-delivery")

    async def stop(self) -> None:
        """Let the pass in flight finish (its sends time out within 10 s), then close."""
        self._stopping.set()
        if self._task is not None:
            with contextlib.suppress(TimeoutError):  # wait_for cancelled it
                await asyncio.wait_for(self._task, TIMEOUT_S + 5)
            self._task = None
        await close_sender(self._context)

    async def _run(self) -> None:
        interval = self._context.settings.webhooks_poll_interval_s
        while not self._stopping.is_set():
            tried = 0
            try:
                tried = await deliver_due(self._context)
            except Exception:
                log.exception("webhook_pass_failed")
            if tried < BATCH:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), interval)
