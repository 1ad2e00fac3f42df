"""The session stream over a real WebSocket: protocol, queueing, errors, hang-ups."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from support import Deployed


async def open_session(client: httpx.AsyncClient, deployed: Deployed) -> dict[str, Any]:
    response = await client.post(
        "/v1/sessions", json={"agent_id": deployed.agent_id}, headers=deployed.org.headers
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def stream_url(started: dict[str, Any], live_url: str) -> str:
    # The URL names the configured public address; the test server listens elsewhere.
    path = started["stream_url"].split("/v1/", 1)[1]
    return f"ws://{live_url}/v1/{path}"


async def receive_until(ws: ClientConnection, kind: str) -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = []
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
        received.append(message)
        if message["type"] == kind:
            return received


async def receive_greeting(ws: ClientConnection) -> list[dict[str, Any]]:
    """The replay of the start: greet, its line, then the node that waits."""
    messages = await receive_until(ws, "agent_text")
    messages.append(json.loads(await asyncio.wait_for(ws.recv(), timeout=10)))
    assert messages[-1] == {"type": "node", "id": "intent"}
    return messages


async def close_code(ws: ClientConnection) -> int:
    """Wait for the server to close the connection; its close code."""
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), timeout=10)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


def agent_texts(messages: list[dict[str, Any]]) -> str:
    return " ".join(m["text"] for m in messages if m["type"] == "agent_text")


async def test_a_call_over_the_stream_from_greeting_to_end(
    client: httpx.AsyncClient, luigis_agent: Deployed, live_url: str
) -> None:
    started = await open_session(client, luigis_agent)
    async with connect(stream_url(started, live_url)) as ws:
        greeting = await receive_greeting(ws)
        assert "book a table" in agent_texts(greeting)

        await ws.send(json.dumps({"type": "user_text", "text": "opening hours"}))
        messages = await receive_until(ws, "end")

        assert {"type": "node", "id": "hours"} in messages
        assert "open 5 to 11" in agent_texts(messages)
        assert messages[-1] == {"type": "end", "outcome": "completed"}
        code = await close_code(ws)
    assert code == 1000


async def test_bad_messages_get_an_error_and_the_session_goes_on(
    client: httpx.AsyncClient, luigis_agent: Deployed, live_url: str
) -> None:
    started = await open_session(client, luigis_agent)
    async with connect(stream_url(started, live_url)) as ws:
        await receive_greeting(ws)
        for bad in ("not json", json.dumps({"type": "dance"}), json.dumps([1, 2])):
            await ws.send(bad)
            error = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
            assert error["type"] == "error"
            assert error["code"] == "bad_message"

        await ws.send(json.dumps({"type": "user_text", "text": "yes please"}))
        messages = await receive_until(ws, "agent_text")

    assert {"type": "node", "id": "ask_party"} in messages


async def test_turns_sent_together_are_answered_in_order(
    client: httpx.AsyncClient, luigis_agent: Deployed, live_url: str
) -> None:
    started = await open_session(client, luigis_agent)
    async with connect(stream_url(started, live_url)) as ws:
        await receive_greeting(ws)
        for line in ("yes please", "four", "tomorrow", "Ana"):
            await ws.send(json.dumps({"type": "user_text", "text": line}))
        messages = await receive_until(ws, "end")

    nodes = [m["id"] for m in messages if m["type"] == "node"]
    assert nodes == ["ask_party", "size_check", "ask_day", "ask_name", "bye"]
    assert messages[-1]["outcome"] == "completed"


async def test_leaving_mid_call_ends_it_abandoned_with_its_turns_kept(
    client: httpx.AsyncClient, luigis_agent: Deployed, live_url: str
) -> None:
    started = await open_session(client, luigis_agent)
    async with connect(stream_url(started, live_url)) as ws:
        await receive_greeting(ws)
        await ws.send(json.dumps({"type": "user_text", "text": "yes please"}))
        await receive_until(ws, "agent_text")

    call: dict[str, Any] = {}
    for _ in range(100):
        call = (
            await client.get(f"/v1/calls/{started['session_id']}", headers=luigis_agent.org.headers)
        ).json()
        if call["outcome"] is not None:
            break
        await asyncio.sleep(0.05)
    assert call["outcome"] == "abandoned"
    assert [t["role"] for t in call["transcript"]] == ["agent", "user", "agent", "agent"]


async def test_an_unknown_session_closes_with_4404(luigis_agent: Deployed, live_url: str) -> None:
    async with connect(f"ws://{live_url}/v1/sessions/call_nope/stream?token=abc") as ws:
        code = await close_code(ws)
    assert code == 4404


async def test_no_credential_closes_with_4401(luigis_agent: Deployed, live_url: str) -> None:
    async with connect(f"ws://{live_url}/v1/sessions/call_nope/stream") as ws:
        code = await close_code(ws)
    assert code == 4401


async def test_an_api_key_header_opens_the_stream_too(
    client: httpx.AsyncClient, luigis_agent: Deployed, live_url: str
) -> None:
    started = await open_session(client, luigis_agent)
    url = f"ws://{live_url}/v1/sessions/{started['session_id']}/stream"
    async with connect(url, additional_headers=luigis_agent.org.headers) as ws:
        greeting = await receive_until(ws, "agent_text")

    assert "book a table" in agent_texts(greeting)


async def test_a_frame_over_64_kib_closes_with_1009(
    client: httpx.AsyncClient, luigis_agent: Deployed, live_url: str
) -> None:
    started = await open_session(client, luigis_agent)
    async with connect(stream_url(started, live_url), max_size=None) as ws:
        await receive_greeting(ws)
        await ws.send(json.dumps({"type": "user_text", "text": "x" * 70_000}))
        code = await close_code(ws)
    assert code == 1009
