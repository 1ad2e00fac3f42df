"""The outbox sender, driven with a fake clock against a real local endpoint."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any

from standardwebhooks import Webhook as Verifier
from structlog.testing import capture_logs

from support import configured_app
from voxflow.core.context import AppContext
from voxflow.core.db import utcnow
from voxflow.webhooks.delivery import (
    BACKOFF,
    GIVE_UP_AFTER,
    close_sender,
    deliver_due,
    retry_delay,
)
from webhooks.webhook_support import Hooks, Receiver, enqueue_event


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def only(page: dict[str, Any]) -> dict[str, Any]:
    assert len(page["items"]) == 1, page
    item: dict[str, Any] = page["items"][0]
    return item


class TestSigning:
    async def test_the_body_verifies_with_the_secret_per_standard_webhooks(
        self, hooks: Hooks, receiver: Receiver
    ) -> None:
        webhook_id, secret = await hooks.create(receiver.url())
        [delivery_id] = await enqueue_event(hooks.context, hooks.org.id, {"call_id": "call_1"})

        assert await hooks.deliver() == 1

        [request] = receiver.requests
        assert request.path == "/hook"
        assert request.headers["content-type"] == "application/json"
        assert request.headers["webhook-id"] == delivery_id
        payload = Verifier(secret).verify(request.body, request.headers)
        assert payload["type"] == "call.started"
        assert payload["data"] == {"call_id": "call_1"}
        delivery = only(await hooks.deliveries(webhook_id))
        assert delivery["status"] == "delivered"
        assert (delivery["attempts"], delivery["last_status_code"]) == (1, 200)
        assert delivery["next_attempt_at"] is None
        assert delivery["delivered_at"] is not None

    async def test_after_rotation_only_the_new_secret_verifies(
        self, hooks: Hooks, receiver: Receiver
    ) -> None:
        webhook_id, old = await hooks.create(receiver.url())
        rotated = await hooks.client.post(
            f"/v1/webhooks/{webhook_id}/rotate-secret", headers=hooks.org.headers
        )
        await enqueue_event(hooks.context, hooks.org.id)

        await hooks.deliver()

        [request] = receiver.requests
        Verifier(rotated.json()["secret"]).verify(request.body, request.headers)
        assert _fails_to_verify(old, request.body, request.headers)

    async def test_the_secret_never_reaches_the_logs(
        self, hooks: Hooks, receiver: Receiver
    ) -> None:
        receiver.statuses = [500]
        with capture_logs() as logs:
            webhook_id, secret = await hooks.create(receiver.url())
            await enqueue_event(hooks.context, hooks.org.id)
            await hooks.deliver()
            await hooks.deliver(utcnow() + timedelta(minutes=1))

        assert {"webhook_attempt_failed", "webhook_delivered"} <= {e["event"] for e in logs}
        assert secret not in repr(logs)
        assert secret.removeprefix("whsec_") not in repr(logs)
        listed = await hooks.client.get("/v1/webhooks", headers=hooks.org.headers)
        assert secret not in listed.text
        assert secret not in json.dumps(await hooks.deliveries(webhook_id))


def _fails_to_verify(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    try:
        Verifier(secret).verify(body, headers)
    except Exception:
        return True
    return False


class TestRetries:
    async def test_a_500_then_a_200_is_delivered_on_the_second_attempt(
        self, hooks: Hooks, receiver: Receiver
    ) -> None:
        receiver.statuses = [500]
        webhook_id, _ = await hooks.create(receiver.url())
        await enqueue_event(hooks.context, hooks.org.id)
        now = utcnow()

        assert await hooks.deliver(now) == 1
        failed = only(await hooks.deliveries(webhook_id))
        assert (failed["status"], failed["attempts"], failed["last_status_code"]) == (
            "pending",
            1,
            500,
        )
        assert "HTTP 500" in failed["last_error"]
        wait = at(failed["next_attempt_at"]) - now
        assert BACKOFF[0] * 0.8 <= wait <= BACKOFF[0] * 1.2
        assert await hooks.deliver(now + timedelta(seconds=1)) == 0  # not due yet

        assert await hooks.deliver(now + timedelta(seconds=10)) == 1

        delivered = only(await hooks.deliveries(webhook_id))
        assert (delivered["status"], delivered["attempts"]) == ("delivered", 2)
        assert (delivered["last_status_code"], delivered["last_error"]) == (200, None)
        assert len(receiver.requests) == 2
        assert receiver.requests[0].headers["webhook-id"] == delivered["id"]
        assert receiver.requests[1].headers["webhook-id"] == delivered["id"]

    async def test_an_endpoint_failing_for_a_day_fails_the_delivery(
        self, hooks: Hooks, receiver: Receiver
    ) -> None:
        receiver.statuses = [503] * 10
        webhook_id, _ = await hooks.create(receiver.url())
        await enqueue_event(hooks.context, hooks.org.id)
        now = utcnow()
        await hooks.deliver(now)
        await hooks.deliver(now + timedelta(hours=23, minutes=59))
        last_try = only(await hooks.deliveries(webhook_id))
        assert at(last_try["next_attempt_at"]) <= at(last_try["created_at"]) + GIVE_UP_AFTER

        assert await hooks.deliver(now + timedelta(hours=25)) == 1

        failed = only(await hooks.deliveries(webhook_id))
        assert (failed["status"], failed["attempts"]) == ("failed", 3)
        assert failed["next_attempt_at"] is None
        assert await hooks.deliver(now + timedelta(hours=48)) == 0
        assert len(receiver.requests) == 3

    async def test_unreachable_endpoints_are_retried_with_the_reason(
        self, hooks: Hooks, receiver: Receiver
    ) -> None:
        webhook_id, _ = await hooks.create("http://127.0.0.1:9/nobody-listens")
        await enqueue_event(hooks.context, hooks.org.id)

        await hooks.deliver()

        delivery = only(await hooks.deliveries(webhook_id))
        assert (delivery["status"], delivery["last_status_code"]) == ("pending", None)
        assert delivery["last_error"] == "ConnectError while sending to 127.0.0.1"

    def test_the_backoff_grows_with_jitter_and_is_capped(self) -> None:
        assert BACKOFF[0] * 0.8 <= retry_delay(1) <= BACKOFF[0] * 1.2
        assert BACKOFF[2] * 0.8 <= retry_delay(3) <= BACKOFF[2] * 1.2
        assert len({retry_delay(4) for _ in range(5)}) > 1
        assert retry_delay(500) <= BACKOFF[-1] * 1.2


class TestDurability:
    async def test_a_new_process_delivers_what_was_pending(
        self, hooks: Hooks, receiver: Receiver, database_url: str
    ) -> None:
        webhook_id, secret = await hooks.create(receiver.url())
        await enqueue_event(hooks.context, hooks.org.id)

        async with configured_app(database_url, webhooks_allow_private_networks=True) as app:
            restarted: AppContext = app.state.context
            assert await deliver_due(restarted, org_id=hooks.org.id) == 1
            await close_sender(restarted)

        [request] = receiver.requests
        Verifier(secret).verify(request.body, request.headers)
        assert only(await hooks.deliveries(webhook_id))["status"] == "delivered"

    async def test_the_address_guard_applies_again_at_delivery(
        self, hooks: Hooks, receiver: Receiver, database_url: str
    ) -> None:
        webhook_id, _ = await hooks.create(receiver.url())
        await enqueue_event(hooks.context, hooks.org.id)

        # The operator took the allowance back: the endpoint is on loopback.
        async with configured_app(database_url) as app:
            strict: AppContext = app.state.context
            assert await deliver_due(strict, org_id=hooks.org.id) == 1
            await close_sender(strict)

        assert receiver.requests == []
        delivery = only(await hooks.deliveries(webhook_id))
        assert delivery["status"] == "pending"
        assert "refused to connect to 127.0.0.1" in delivery["last_error"]

    async def test_deleting_a_webhook_drops_its_pending_deliveries(
        self, hooks: Hooks, receiver: Receiver
    ) -> None:
        webhook_id, _ = await hooks.create(receiver.url())
        await enqueue_event(hooks.context, hooks.org.id)

        gone = await hooks.client.delete(f"/v1/webhooks/{webhook_id}", headers=hooks.org.headers)

        assert gone.status_code == 204
        assert await hooks.deliver() == 0
        assert receiver.requests == []


class TestDeliveryLog:
    async def test_deliveries_are_paged_newest_first(
        self, hooks: Hooks, receiver: Receiver
    ) -> None:
        webhook_id, _ = await hooks.create(receiver.url())
        ids = []
        for n in range(3):
            ids += await enqueue_event(hooks.context, hooks.org.id, {"n": n})
            await asyncio.sleep(0.002)  # ids order by the millisecond they were made in

        first = await hooks.deliveries(webhook_id, limit=2)
        second = await hooks.deliveries(webhook_id, limit=2, cursor=first["next_cursor"])

        assert [d["id"] for d in first["items"]] == ids[:0:-1]
        assert [d["id"] for d in second["items"]] == ids[:1]
        assert second["next_cursor"] is None
        assert set(first["items"][0]) == {
            "id",
            "event_type",
            "status",
            "attempts",
            "last_status_code",
            "last_error",
            "created_at",
            "delivered_at",
            "next_attempt_at",
        }

    async def test_members_read_the_log(self, hooks: Hooks, receiver: Receiver) -> None:
        webhook_id, _ = await hooks.create(receiver.url())
        key = await hooks.client.post(
            "/v1/api-keys", json={"name": "reader", "role": "member"}, headers=hooks.org.headers
        )
        member = {"Authorization": f"Bearer {key.json()['key']}"}

        response = await hooks.client.get(f"/v1/webhooks/{webhook_id}/deliveries", headers=member)

        assert response.status_code == 200


class TestSeveralSenders:
    async def test_two_processes_never_send_the_same_delivery_twice(
        self, hooks: Hooks, receiver: Receiver, database_url: str
    ) -> None:
        await hooks.create(receiver.url())
        ids = []
        for n in range(6):
            ids += await enqueue_event(hooks.context, hooks.org.id, {"n": n})

        async with configured_app(database_url, webhooks_allow_private_networks=True) as app:
            other: AppContext = app.state.context
            tried = await asyncio.gather(
                deliver_due(hooks.context, org_id=hooks.org.id),
                deliver_due(other, org_id=hooks.org.id),
            )
            await close_sender(other)

        assert sum(tried) == 6
        assert sorted(r.headers["webhook-id"] for r in receiver.requests) == sorted(ids)


class TestTheLoop:
    async def test_the_server_delivers_in_the_background_and_stops_cleanly(
        self, hooks: Hooks, receiver: Receiver, database_url: str
    ) -> None:
        webhook_id, _ = await hooks.create(receiver.url())
        settings = {"webhooks_allow_private_networks": True, "webhooks_poll_interval_s": 0.05}

        async with (
            configured_app(database_url, **settings) as app,
            app.router.lifespan_context(app),
        ):
            await enqueue_event(hooks.context, hooks.org.id)
            async with asyncio.timeout(10):
                while not receiver.requests:  # noqa: ASYNC110 (polling the endpoint's record)
                    await asyncio.sleep(0.02)

        assert only(await hooks.deliveries(webhook_id))["status"] == "delivered"
        assert not [t for t in asyncio.all_tasks() if t.get_name() == "webhook-delivery"]
