"""A call spoken over the audio WebSocket: espeak-ng speech in real time, offline STT and TTS."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable

import httpx
import numpy as np
import pytest

from support import Deployed
from voice.conftest import (
    audio_url,
    call_record,
    rms,
    start_voice_session,
    voice_client,
)
from voxflow.core.settings import Settings
from voxflow.voice.offline import shared_models
from voxflow.voice.whisper import transcribe_pcm16

pytestmark = pytest.mark.slow

BOOK = "I would like to book a table"


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


async def test_a_spoken_turn_advances_the_flow_and_the_agent_answers_aloud(
    client: httpx.AsyncClient,
    luigis_agent: Deployed,
    live_url: str,
    speech: Callable[[str], bytes],
) -> None:
    started = await start_voice_session(client, luigis_agent)
    async with voice_client(audio_url(started, live_url)) as voice:
        await voice.wait_message("ready")
        await voice.wait_message("transcript", role="agent")
        await voice.wait_audio_quiet()  # let the greeting play out
        greeting_end = len(voice.audio)

        await voice.speak(speech(BOOK))
        # Interim transcripts come while the caller speaks; the final one is the turn.
        heard = await voice.wait_message("transcript", role="user", final=True)
        await voice.wait_message("node", id="ask_party")
        reply = await voice.wait_message("transcript", role="agent", text="For how many people?")
        await voice.wait_for(lambda: len(voice.audio) > greeting_end, what="the answer's audio")
        await voice.wait_audio_quiet()
        answer = bytes(voice.audio[greeting_end:])

    assert {"table", "book"} & words(heard["text"]), heard
    assert reply["final"] is True
    assert rms(answer) > 500, "the agent's answer is silent"
    models = await shared_models(Settings())
    text = await asyncio.to_thread(transcribe_pcm16, models, answer, 24000)
    assert {"many", "people"} & words(text), text

    record = await call_record(client, luigis_agent, started["session_id"])
    assert record["outcome"] == "abandoned"
    user_turns = [t for t in record["transcript"] if t["role"] == "user"]
    assert user_turns[0]["text"] == heard["text"]
    answered = next(t for t in record["transcript"] if t["text"] == "For how many people?")
    timings = answered["timings"]
    assert set(timings) >= {"transcript_ms", "engine_ms", "first_tts_byte_ms", "first_audio_ms"}
    assert 0 < timings["first_tts_byte_ms"] <= timings["first_audio_ms"] < 10_000
    print("voice turn timings (ms):", timings)


async def test_speaking_over_the_agent_clears_its_audio(
    client: httpx.AsyncClient,
    luigis_agent: Deployed,
    live_url: str,
    speech: Callable[[str], bytes],
) -> None:
    started = await start_voice_session(client, luigis_agent)
    async with voice_client(audio_url(started, live_url)) as voice:
        await voice.wait_message("ready")
        await voice.wait_for(lambda: voice.audio, what="the greeting's audio")
        pcm = speech(BOOK)
        loud = np.flatnonzero(np.abs(np.frombuffer(pcm, np.int16)) > 1000)
        onset_s = loud[0] / 16000 if loud.size else 0.0
        began = time.monotonic()
        speaking = asyncio.create_task(voice.speak(pcm))  # while the greeting (~3.5 s) plays
        await voice.wait_message("clear")
        # A figure for docs/api.md, not an assertion (the machine is shared).
        print(f"barge-in: clear {(time.monotonic() - began - onset_s) * 1000:.0f} ms after onset")
        cleared_at = len(voice.audio)
        await speaking
        await voice.wait_message("node", id="ask_party")

    greeting_s = cleared_at / 2 / 24000
    assert greeting_s < 3.0, f"{greeting_s:.2f} s of greeting sent before the barge-in"
    assert np.frombuffer(bytes(voice.audio), np.int16).size > 0


async def test_a_spoken_call_to_its_end_closes_with_the_outcome(
    client: httpx.AsyncClient,
    luigis_agent: Deployed,
    live_url: str,
    speech: Callable[[str], bytes],
) -> None:
    started = await start_voice_session(client, luigis_agent)
    async with voice_client(audio_url(started, live_url)) as voice:
        await voice.wait_message("ready")
        await voice.wait_message("transcript", role="agent")
        await voice.wait_audio_quiet()
        await voice.speak(speech("What are your opening hours"))
        await voice.wait_message("node", id="hours")
        end = await voice.wait_message("end", within=30)
        assert await voice.wait_closed() == 1000

    assert end == {"type": "end", "outcome": "completed"}
    # The last line played out before the end: ~3 s of "We're open … see you soon!".
    assert len(voice.audio) / 2 / 24000 > 4.0
    record = await call_record(client, luigis_agent, started["session_id"])
    assert record["outcome"] == "completed"
    assert record["node_path"][-2:] == ["hours", "bye"]
