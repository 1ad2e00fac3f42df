"""WorkflowAgent and the audio I/O in a real (roomless) AgentSession with instant fakes."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from livekit import rtc
from livekit.agents import AgentSession, StopResponse, llm, stt

from support import Deployed
from voice.conftest import call_record, start_voice_session
from voice.fakes import InstantTTS
from voxflow.core.context import AppContext
from voxflow.sessions.live import LiveCall
from voxflow.sessions.repository import CallRepository
from voxflow.sessions.service import opening_line
from voxflow.voice.agent import APOLOGY, TurnTimer, WorkflowAgent
from voxflow.voice.audio_transport import AudioRateGuard, PacedAudioOutput, PushAudioInput
from voxflow.voice.call import run_call
from voxflow.voice.offline import VoiceModels
from voxflow.voice.whisper import WhisperSTT


async def test_the_engine_decides_and_the_agent_speaks_its_lines(
    client: httpx.AsyncClient, luigis_agent: Deployed, context: AppContext
) -> None:
    started = await start_voice_session(client, luigis_agent)
    async with context.sessionmaker() as db:
        call = await CallRepository(db).get(luigis_agent.org.id, started["session_id"])
    assert call is not None
    sent: list[dict[str, Any]] = []
    audio: list[bytes] = []
    timings: list[tuple[int, dict[str, float]]] = []
    stores: list[asyncio.Task[None]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def send_audio(data: bytes) -> None:
        audio.append(data)

    def timed(seq: int, figures: dict[str, float]) -> None:
        timings.append((seq, figures))
        stores.append(asyncio.create_task(live.store_timings(seq, figures)))

    fake_tts = InstantTTS()
    timer = TurnTimer(timed)
    session: AgentSession[None] = AgentSession(
        tts=fake_tts, vad=None, turn_handling={"turn_detection": "manual"}, user_away_timeout=None
    )
    output = PacedAudioOutput(send_audio, sample_rate=24000, lead_s=1.0)
    output.on("playback_started", lambda _event: timer.frame_sent())
    output.start()
    session.input.audio = PushAudioInput()
    session.output.audio = output
    greeting = await opening_line(context, call)
    live = await LiveCall.open(context, call)
    agent = WorkflowAgent(live, send=send, greeting=greeting, timer=timer)
    await session.start(agent, record=False)
    try:
        for line in ("opening hours",):
            message = llm.ChatMessage(role="user", content=[line])
            with pytest.raises(StopResponse):
                await agent.on_user_turn_completed(llm.ChatContext(), message)
        outcome = await asyncio.wait_for(agent.finished, timeout=10)
    finally:
        await session.aclose()
        await output.aclose()
    await asyncio.gather(*stores)

    assert outcome == "completed"
    # Non-streaming TTS is fed sentence by sentence.
    assert " ".join(fake_tts.lines) == (
        "Hi, this is Luigi's. Would you like to book a table? "
        "We're open 5 to 11 pm every day. Thanks, see you soon!"
    )
    assert audio, "no agent audio was sent"
    kinds = [m["type"] for m in sent]
    # Each node is announced before its line, as the engine enters it.
    assert kinds == ["transcript", "node", "transcript", "node", "transcript", "end"]
    assert [m["id"] for m in sent if m["type"] == "node"] == ["hours", "bye"]
    assert sent[-1] == {"type": "end", "outcome": "completed"}
    assert [seq for seq, _ in timings] == [2]
    record = await call_record(client, luigis_agent, call.id)
    assert record["outcome"] == "completed"
    assert [t["role"] for t in record["transcript"]] == ["agent", "user", "agent"]
    assert record["transcript"][2]["timings"] == json.loads(json.dumps(timings[0][1]))


async def test_barge_in_clears_the_audio_and_reports_the_played_position() -> None:
    sent: list[bytes] = []
    cleared = asyncio.Event()

    async def send_audio(data: bytes) -> None:
        sent.append(data)

    async def on_clear() -> None:
        cleared.set()

    output = PacedAudioOutput(send_audio, sample_rate=24000, on_clear=on_clear, lead_s=0.1)
    finished: list[Any] = []
    output.on("playback_finished", finished.append)
    output.start()
    for _ in range(100):  # 2 s of audio in 20 ms frames
        await output.capture_frame(rtc.AudioFrame(b"\x01\x00" * 480, 24000, 1, 480))
    output.flush()
    await asyncio.sleep(0.3)
    output.clear_buffer()
    await asyncio.wait_for(cleared.wait(), timeout=1)
    await asyncio.sleep(0.1)
    await output.aclose()

    assert finished
    assert finished[0].interrupted
    assert 0.2 <= finished[0].playback_position <= 0.5
    assert 10 <= len(sent) <= 25  # ~0.3 s played + 0.1 s lead, not the whole 2 s


def test_the_rate_guard_allows_real_time_and_refuses_floods() -> None:
    guard = AudioRateGuard(sample_rate=16000, max_ratio=1.0, window_s=3.0)
    assert all(guard.add(640, now=i * 0.02) for i in range(500))  # 10 s in real time
    flood = AudioRateGuard(sample_rate=16000, max_ratio=1.0, window_s=3.0)
    results = [flood.add(3200, now=0.001 * i) for i in range(50)]  # 5 s at once
    assert results[0]
    assert not results[-1]


class FailingWhisper(WhisperSTT):
    def __init__(self) -> None:
        super().__init__(model=None)
        self.attempts = 0

    def transcribe(self, audio: Any) -> str:
        self.attempts += 1
        raise RuntimeError("the model crashed")


@pytest.mark.slow
async def test_a_failing_stt_is_retried_once_then_the_agent_asks_again(
    client: httpx.AsyncClient,
    luigis_agent: Deployed,
    context: AppContext,
    speech: Callable[[str], bytes],
) -> None:
    started = await start_voice_session(client, luigis_agent)
    async with context.sessionmaker() as db:
        call = await CallRepository(db).get(luigis_agent.org.id, started["session_id"])
    assert call is not None
    from livekit.plugins import silero

    vad = silero.VAD.load(min_silence_duration=0.4)
    models = VoiceModels(whisper=None, hibari=None, vad=vad, tts_lock=threading.Lock())
    whisper, fake_tts = FailingWhisper(), InstantTTS()
    sent: list[dict[str, Any]] = []
    got_error = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "transcript" and message["text"] == APOLOGY:
            got_error.set()

    async def drop(_data: bytes) -> None:
        pass

    audio_in = PushAudioInput()
    output = PacedAudioOutput(drop, sample_rate=24000)
    output.start()
    stop = asyncio.Event()
    running = asyncio.create_task(
        run_call(
            context,
            call,
            audio_input=audio_in,
            audio_output=output,
            send=send,
            stop=stop,
            models=models,
            stt_override=stt.StreamAdapter(stt=whisper, vad=vad),
            tts_override=fake_tts,
        )
    )
    pcm = speech("I would like to book a table") + b"\x00\x00" * 16000
    for offset in range(0, len(pcm), 640):
        audio_in.push_pcm16(pcm[offset : offset + 640])
        await asyncio.sleep(0.02)
    await asyncio.wait_for(got_error.wait(), timeout=10)
    stop.set()
    assert await running is None
    await output.aclose()

    assert whisper.attempts == 2
    assert {"type": "error", "code": "stt_failed"}.items() <= next(
        m for m in sent if m["type"] == "error"
    ).items()
    assert APOLOGY in " ".join(fake_tts.lines)
