"""Helpers of the webhook tests: the recording endpoint, an org that has webhooks, events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from fastapi import FastAPI

from support import OrgHandle
from voxflow.core.context import AppContext
from voxflow.webhooks import events
from voxflow.webhooks.delivery import deliver_due


@dataclass(frozen=True)
class Received:
    path: str
    body: bytes
    headers: dict[str, str]


@dataclass
class Receiver:
    """An ASGI endpoint that records each request and answers `statuses` in order, then 200."""

    statuses: list[int] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    base_url: str = ""

    def url(self, path: str = "/hook") -> str:
        return self.base_url + path

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {name.decode(): value.decode() for name, value in scope["headers"]}
        self.requests.append(Received(scope["path"], body, headers))
        status = self.statuses.pop(0) if self.statuses else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


@dataclass(frozen=True)
class Hooks:
    """An org on an app whose operator allows private networks (the receiver is local)."""

    app: FastAPI
    client: httpx.AsyncClient
    org: OrgHandle

    @property
    def context(self) -> AppContext:
        context: AppContext = self.app.state.context
        return context

    async def create(
        self, url: str, events: list[str] | None = None, **body: Any
    ) -> tuple[str, str]:
        """A webhook for `events` (default: both); its id and signing secret."""
        response = await self.client.post(
            "/v1/webhooks",
            json={"url": url, "events": events or ["call.started", "call.ended"], **body},
            headers=self.org.headers,
        )
        assert response.status_code == 201, response.text
        created = response.json()
        return created["id"], created["secret"]

    async def deliver(self, now: datetime | None = None) -> int:
        """One pass of the sender over this org's deliveries, at `now`."""
        return await deliver_due(self.context, now=now, org_id=self.org.id)

    async def deliveries(self, webhook_id: str, **params: Any) -> dict[str, Any]:
        response = await self.client.get(
            f"/v1/webhooks/{webhook_id}/deliveries", params=params, headers=self.org.headers
        )
        assert response.status_code == 200, response.text
        page: dict[str, Any] = response.json()
        return page


async def enqueue_event(
    context: AppContext, org_id: str, data: dict[str, Any] | None = None
) -> list[str]:
    """A `call.started` event in the outbox, as a call would write it; the delivery ids."""
    async with context.sessionmaker() as session, session.begin():
        rows = await events.enqueue(session, org_id, "call.started", data or {"call_id": "c1"})
    return [row.id for row in rows]
