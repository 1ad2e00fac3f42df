"""Hears the changes other processes commit: one Redis pub/sub subscription, kept alive.

Writers publish every committed change set on `CHANGES_CHANNEL` (`AppContext.announce_changes`).
A subscriber hands each message's changes to its owner within a round trip. Pub/sub keeps
nothing for absent listeners, so while the connection is down (Redis restarting, network)
messages are lost: `listening` is False then, and the owner must not trust what it cached
(the runtime loader falls back to an age limit). Each (re)subscription calls `on_subscribed`
so the owner can drop whatever it may have missed.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from voxflow.core.cache import CHANGES_CHANNEL, parse_changes
from voxflow.core.db import Change
from voxflow.core.redis import REDIS_ERRORS

log = structlog.get_logger("voxflow.runtime")

_FIRST_RETRY_S = 0.05
_MAX_RETRY_S = 2.0


class ChangeSubscriber:
    """Subscribes to `CHANGES_CHANNEL` in a background task and reconnects when it breaks."""

    def __init__(
        self,
        redis_url: str,
        *,
        on_changes: Callable[[set[Change]], None],
        on_subscribed: Callable[[], None],
    ) -> None:
        # How the subscription shows in Redis `CLIENT LIST`, so an operator (or a test) can find
        # this process's connection.
        self.name = f"voxflow-runtime-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        # A client of its own: the subscription holds its connection for good, and redis-py's
        # transparent retries are off so that a broken connection reaches `_run`, which knows
        # that messages were lost meanwhile.
        self._redis = Redis.from_url(
            redis_url,
            socket_connect_timeout=1.0,
            socket_timeout=1.0,
            retry=Retry(NoBackoff(), 0),
            client_name=self.name,
        )
        self._on_changes = on_changes
        self._on_subscribed = on_subscribed
        self._listening = False
        self._retry_in = _FIRST_RETRY_S
        self._first_attempt = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def listening(self) -> bool:
        """Whether every change published from now on will reach `on_changes`."""
        return self._listening

    async def start(self, wait_s: float = 2.0) -> None:
        """Start the task; wait until the first subscription succeeded or failed (≤ `wait_s`)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)
        with suppress(TimeoutError):
            await asyncio.wait_for(self._first_attempt.wait(), wait_s)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        self._listening = False
        with suppress(*REDIS_ERRORS):
            await self._redis.aclose()

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
                reason = "unsubscribed"
            except asyncio.CancelledError:
                raise
            except REDIS_ERRORS as exc:
                reason = type(exc).__name__
            except Exception:
                # Nothing a message holds may stop the subscription: log it and carry on.
                log.exception("runtime_subscriber_failed")
                reason = "error"
            if self._listening:
                log.warning("runtime_subscription_lost", reason=reason, subscriber=self.name)
                self._retry_in = _FIRST_RETRY_S
            else:
                log.warning("runtime_subscribe_failed", reason=reason, retry_in_s=self._retry_in)
            self._listening = False
            self._first_attempt.set()
            await asyncio.sleep(self._retry_in)
            self._retry_in = min(self._retry_in * 2, _MAX_RETRY_S)

    async def _listen(self) -> None:
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(CHANGES_CHANNEL)
            async for message in pubsub.listen():
                self._handle(message)
        finally:
            # Cancelled or broken: the connection goes either way; closing it must not raise.
            with suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "subscribe":
            # Before `listening` turns on: whatever the owner holds may predate changes whose
            # messages were lost while nobody listened.
            self._on_subscribed()
            self._listening = True
            self._retry_in = _FIRST_RETRY_S
            self._first_attempt.set()
            log.info("runtime_subscribed", channel=CHANGES_CHANNEL, subscriber=self.name)
        elif kind == "message":
            data = message.get("data")
            changes = parse_changes(data) if isinstance(data, bytes | str) else set()
            if changes:
                self._on_changes(changes)
            else:
                log.warning("runtime_change_message_ignored", size=len(str(data)))
