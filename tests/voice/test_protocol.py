"""The audio WebSocket's protocol over a real socket (offline models; no speech needed)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from support import Deployed
from voice.conftest import audio_url, call_record, start_voice_session, voice_client


async def test_ready_comes_first_and_hangup_ends_the_call(
    client: httpx.AsyncClient, luigis_agent: Deployed, live_url: str
) -> None:
    started = await start_voice_session(client, luigis_agent)
    async with voice_client(audio_url(started, live_url)) as voice:
        await voice.wait_message("ready")
        assert voice.messages[0] == {
            "type": "ready",
            "input_sample_rate": 16000,
            "output_sample_rate": 24000,
        }
        greeting = await voice.wait_message("transcript", role="agent")
        assert "book a table" in greeting["text"]
        await voice.ws.send(json.dumps({"type": "hangup"}))
        end = await voice.wait_message("end")
        assert await voice.wait_closed() == 1000

    assert end == {"type": "end", "outcome": "abandoned"}
    record = await call_record(client, luigis_agent, started["session_id"])
    assert record["outcome"] == "abandoned"


async def test_bad_frames_get_an_error_and_the_call_goes_on(
    client: httpx.AsyncClient, luigis_agent: Deployed, live_url: str
) -> None:
    started = await start_voice_session(client, luigis_agent)
    async with voice_client(audio_url(started, live_url)) as voice:
        await voice.wait_message("ready")
        await voice.ws.send(b"\x00" * 641)  # odd: not PCM16
        await voice.wait_message("error", code="bad_audio")
        await voice.ws.send("not json")
        await voice.wait_message("error", code="bad_message")
        await voice.ws.send(json.dumps({"type": "dance"}))
        await voice.wait_for(lambda: len(voice.of_type("error")) == 3, what="3 errors")
        await voice.ws.send(b"\x00" * 640)  # a good frame still goes through
        await asyncio.sleep(0.2)
        assert not voice.closed
        await voice.ws.send(json.dumps({"type": "hangup"}))
        await voice.wait_message("end")


async def test_audio_faster_than_real_time_closes_with_1008(
    client: httpx.AsyncClient, luigis_agent: Deployed, live_url: str
) -> None:
    started = await start_voice_session(client, luigis_agent)
    async with voice_client(audio_url(started, live_url)) as voice:
        await voice.wait_message("ready")
        for _ in range(60):  # 6 s of audio at once
            if voice.closed:
                break
            try:
                await voice.ws.send(b"\x00" * 3200)
            except ConnectionClosed:
                break
        await voice.wait_message("error", code="too_much_audio")
        assert await voice.wait_closed() == 1008

    record = await call_record(client, luigis_agent, started["session_id"])
    assert record["outcome"] == "abandoned"


async def test_leaving_ends_the_call_abandoned_with_its_turns_kept(
    client: httpx.AsyncClient, luigis_agent: Deployed, live_url: str
) -> None:
    started = await start_voice_session(client, luigis_agent)
    call_id = started["session_id"]
    turn = await client.post(
        f"/v1/sessions/{call_id}/turns",
        json={"text": "a table please"},
        headers=luigis_agent.org.headers,
    )
    assert turn.status_code == 200, turn.text
    async with voice_client(audio_url(started, live_url)) as voice:
        await voice.wait_message("ready")
        await asyncio.sleep(0.3)

    record = await call_record(client, luigis_agent, call_id)
    assert record["outcome"] == "abandoned"
    roles = [(t["role"], t["text"]) for t in record["transcript"]]
    assert roles[:3] == [
        ("agent", "Hi, this is Luigi's. Would you like to book a table?"),
        ("user", "a table please"),
        ("agent", "For how many people?"),
    ]


async def test_a_wrong_token_or_a_text_session_closes_with_4404(
    client: httpx.AsyncClient, luigis_agent: Deployed, live_url: str
) -> None:
    started = await start_voice_session(client, luigis_agent)
    wrong = audio_url(started, live_url).split("?token=")[0] + "?token=nope"
    text = await client.post(
        "/v1/sessions", json={"agent_id": luigis_agent.agent_id}, headers=luigis_agent.org.headers
    )
    text_url = f"ws://{live_url}/v1/sessions/{text.json()['session_id']}/audio?token="
    text_url += text.json()["stream_url"].split("?token=")[1]
    for url in (wrong, text_url, f"ws://{live_url}/v1/sessions/call_nope/audio"):
        async with connect(url) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), timeout=10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4404
