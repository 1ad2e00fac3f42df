"""Calls started and ended over the API put `call.started` and `call.ended` in the outbox."""

from __future__ import annotations

import json
from datetime import datetime

from standardwebhooks import Webhook as Verifier

from support import Deployed, create_workflow, deploy, publish
from webhooks.webhook_support import Hooks, Receiver


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def talk_to_completion(hooks: Hooks, deployed: Deployed) -> str:
    started = await hooks.client.post(
        "/v1/sessions", json={"agent_id": deployed.agent_id}, headers=hooks.org.headers
    )
    assert started.status_code == 201, started.text
    session_id: str = started.json()["session_id"]
    for line in ("yes please", "four", "tomorrow", "Ana"):
        reply = await hooks.client.post(
            f"/v1/sessions/{session_id}/turns", json={"text": line}, headers=hooks.org.headers
        )
        assert reply.status_code == 200, reply.text
    assert reply.json()["outcome"] == "completed"
    return session_id


class TestCallEvents:
    async def test_a_session_started_and_ended_over_the_api_sends_both_events(
        self, hooks: Hooks, receiver: Receiver, luigis_yaml: bytes
    ) -> None:
        deployed = await deploy(hooks.client, hooks.org, luigis_yaml)
        webhook_id, secret = await hooks.create(receiver.url())

        call_id = await talk_to_completion(hooks, deployed)
        queued = await hooks.deliveries(webhook_id)
        assert await hooks.deliver() == 2

        assert sorted(d["event_type"] for d in queued["items"]) == ["call.ended", "call.started"]
        payloads = {
            body["type"]: body
            for body in (Verifier(secret).verify(r.body, r.headers) for r in receiver.requests)
        }
        started = payloads["call.started"]["data"]
        assert started == {
            "call_id": call_id,
            "agent_id": deployed.agent_id,
            "workflow_id": deployed.workflow_id,
            "version": 1,
            "mode": "text",
            "started_at": started["started_at"],
        }
        ended = payloads["call.ended"]["data"]
        assert ended["call_id"] == call_id
        assert ended["outcome"] == "completed"
        assert ended["variables"]["party_size"] == 4
        assert ended["duration_ms"] == round(
            (at(ended["ended_at"]) - at(ended["started_at"])).total_seconds() * 1000, 1
        )
        transcript = ended["transcript"]
        assert [turn["role"] for turn in transcript[:3]] == ["agent", "user", "agent"]
        assert transcript[1]["text"] == "yes please"
        assert "Thanks Ana" in transcript[-1]["text"]
        assert all(set(turn) == {"role", "text", "at"} for turn in transcript)
        call = await hooks.client.get(f"/v1/calls/{call_id}", headers=hooks.org.headers)
        assert len(transcript) == len([t for t in call.json()["transcript"] if t["text"]])

    async def test_an_endpoint_gets_only_the_events_it_subscribed_to(
        self, hooks: Hooks, receiver: Receiver, luigis_yaml: bytes
    ) -> None:
        deployed = await deploy(hooks.client, hooks.org, luigis_yaml)
        webhook_id, _ = await hooks.create(receiver.url(), events=["call.ended"])

        await talk_to_completion(hooks, deployed)

        queued = await hooks.deliveries(webhook_id)
        assert [d["event_type"] for d in queued["items"]] == ["call.ended"]

    async def test_a_call_that_ends_as_it_starts_sends_both_at_once(
        self, hooks: Hooks, receiver: Receiver
    ) -> None:
        workflow_id = await create_workflow(hooks.client, hooks.org)  # greets, then ends
        await publish(hooks.client, hooks.org, workflow_id)
        agent = await hooks.client.post(
            "/v1/agents",
            json={"name": "hours", "workflow_id": workflow_id},
            headers=hooks.org.headers,
        )
        webhook_id, _ = await hooks.create(receiver.url())

        started = await hooks.client.post(
            "/v1/sessions", json={"agent_id": agent.json()["id"]}, headers=hooks.org.headers
        )

        assert started.json()["ended"] is True
        queued = await hooks.deliveries(webhook_id)
        assert sorted(d["event_type"] for d in queued["items"]) == ["call.ended", "call.started"]
        await hooks.deliver()
        ended = next(json.loads(r.body) for r in receiver.requests if b'"call.ended"' in r.body)[
            "data"
        ]
        assert ended["outcome"] == "completed"
        assert [t["role"] for t in ended["transcript"]] == ["agent"]

    async def test_no_webhook_no_outbox_rows(
        self, hooks: Hooks, receiver: Receiver, luigis_yaml: bytes
    ) -> None:
        deployed = await deploy(hooks.client, hooks.org, luigis_yaml)
        await talk_to_completion(hooks, deployed)

        assert await hooks.deliver() == 0
        assert receiver.requests == []
